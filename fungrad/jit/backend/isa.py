"""The runner's instruction format, written once: one named layout per instruction.

A program is one ``int64`` array of instructions. Emission writes each instruction with
:func:`encode` (fields by name), the kernels read their fields by name (``code[pc + F.a]``,
``F`` a layout below: a named tuple of word positions, a compile-time constant for Numba) and
the verifier (:mod:`fungrad.jit.passes.verify`) decodes them by name with :func:`decode` and
checks every operand region with :data:`REGIONS`. Nothing else knows a word's position.

- A *block* instruction is ``[BLOCK, length, slot, fields...]``: ``slot`` picks the kernel
  in the runner's table.
- *Control* instructions run a contiguous segment of the code array as a loop
  (:mod:`fungrad.jit.passes.loops`): ``LOOP`` (:data:`LOOP_HEAD`) sets its counter ``S[sidx]``
  to 0 and jumps past its ``ENDLOOP`` when the trip count is 0; ``ENDLOOP``
  (:data:`LOOP_END`) adds one to the counter and jumps back to the first instruction of the
  body until it reaches ``count`` (``count < 0``: until a ``BREAK``); ``BREAK``
  (:data:`LOOP_BREAK`) jumps past the loop when the boolean at ``buf[off]`` is false (a
  while_loop's condition); ``WINDOW`` (:data:`LOOP_WINDOW`) points a *window* buffer (an
  entry of the address table with no memory of its own) at row ``i`` of another buffer, so
  that a body reads its ``x`` slice, and writes its ``y``, in place. Jumps are relative to
  the instruction's own position.
- A fused elementwise *group* is a header ``[EW, length, ...]`` (:data:`EW_HEAD`) and
  ``n_ops`` records of :data:`W` words: a register op (:data:`OP`) or a memory transfer
  (:data:`MEM`: load, store or accumulate between a register and a strided buffer region;
  :data:`SCALAR`: a number broadcast into a register).

>>> words = encode(FILL, sub=0, x=2, x_off=0, count=4, k=1)
>>> words[:3], decode(words, 0, FILL)["count"]
([1, 8, 0], 4)
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable

__all__ = ["EW", "BLOCK", "LOOP", "ENDLOOP", "BREAK", "WINDOW", "CONTROL", "LOOP_HEAD",
           "LOOP_END", "LOOP_BREAK", "LOOP_WINDOW", "ROWCOPY", "control", "W", "HEAD", "EW_HEAD",
           "OP", "MEM", "SCALAR", "BLOCKS", "REGIONS", "BLOCK_SLOT", "encode", "record",
           "packer", "group_head", "decode", "block_length", "Region", "ELEMENTWISE_BLOCKS"]

EW, BLOCK = 0, 1
LOOP, ENDLOOP, BREAK, WINDOW = 2, 3, 4, 5  # control instructions (see the module docstring)
CONTROL = (LOOP, ENDLOOP, BREAK, WINDOW)
W = 10  # words per record of a group


def _layout(name: str, fields: str, first: int):
    """A named tuple type whose instance maps each field to its word position."""
    names = fields.split()
    cls = namedtuple(name, names)  # type: ignore[misc]
    return cls(*range(first, first + len(names)))


# -- a fused elementwise group ----------------------------------------------------------------

#: the group's header: iteration space (d0, d1, d2, d3) walked in tiles of ``T`` elements;
#: registers are ``stride`` elements apart
EW_HEAD = _layout("EwHead", "kind length f64 d0 d1 d2 d3 n_ops T stride", 0)
HEAD = len(EW_HEAD)
#: a register op: ``dst = sub(a, b, c)`` (unused inputs 0)
OP = _layout("Op", "slot sub dst a b c", 0)
#: a load/store: register ``reg`` <-> ``buf[off + i0*s0 + i1*s1 + i2*s2 + i3*s3]``
MEM = _layout("Mem", "slot sub reg buf off s0 s1 s2 s3", 0)
#: a number into register ``reg``: ``S[index]`` (runtime) or ``K[index]`` (constant)
SCALAR = _layout("Scalar", "slot sub reg index", 0)

# -- control instructions: [kind, length, fields...] -------------------------------------------

#: ``S[sidx] = 0``; with ``count == 0`` jump ``exit`` words ahead (past the ENDLOOP)
LOOP_HEAD = _layout("LoopHead", "kind length sidx count exit", 0)
#: ``S[sidx] += 1``; jump ``back`` words back (to the body's first instruction) while
#: ``S[sidx] < count`` (or for ever when ``count < 0``)
LOOP_END = _layout("LoopEnd", "kind length sidx count back", 0)
#: jump ``exit`` words ahead when the bool (one byte) ``buf[off]`` is false
LOOP_BREAK = _layout("LoopBreak", "kind length buf off exit", 0)
#: ``addrs[win] = addrs[parent] + (off + step * i) * isz``, ``i`` the counter ``S[sidx]``
#: (``n - 1 - S[sidx]`` with ``rev``); ``dir`` 0: the body reads the window (an ``x``
#: slice), 1: it writes it (a row of ``ys`` or of the saved carries)
LOOP_WINDOW = _layout("LoopWindow", "kind length win parent off step sidx rev n isz dir", 0)


def control(layout: Any, **fields: int) -> list[int]:
    """The words of a control instruction (``kind`` and ``length`` filled in)."""
    kind = {"LoopHead": LOOP, "LoopEnd": ENDLOOP, "LoopBreak": BREAK,
            "LoopWindow": WINDOW}[type(layout).__name__]
    fields = dict(fields, kind=kind, length=len(layout))
    return [int(fields[n]) for n in layout._fields]


# -- block instructions: [BLOCK, length, slot, fields...] --------------------------------------

BLOCK_SLOT = 2  # [BLOCK, length, slot, fields...]
_B = 3  # the first field's position

MATMUL = _layout("Matmul", "sub a a_off a_rs a_cs b b_off b_rs b_cs c c_off c_rs M K N acc", _B)
REDUCE = _layout("Reduce", "kind x x_off y y_off A R C kscale", _B)
GATHER = _layout("Gather", "sum_r t t_off idx idx_off out out_off count rows row", _B)
BOUNDS = _layout("Bounds", "idx idx_off count lo hi", _B)
SCATTER = _layout("Scatter", "mode v v_off idx idx_off out out_off count rows row inner vs_out "
                  "vs_in skind sindex", _B)
SGD_ROWS = _layout("SgdRows", "v v_off idx idx_off w w_off g g_off count rows row inner "
                   "vs_out vs_in skind sindex", _B)
#: ``out = w - lr * (g + t); zeroed = 0`` over ``n`` contiguous elements, ``lr`` a number
#: (``skind``/``sindex``): the book's SGD step on a parameter whose ``.grad`` accumulates
#: ``t`` and is then zeroed; ``out``/``w`` and ``zeroed``/``g`` may be the same elements
SGD_DENSE = _layout("SgdDense", "t t_off g g_off w w_off out out_off zeroed zeroed_off n "
                    "skind sindex", _B)
XENT = _layout("Xent", "sub x x_off t t_off out out_off N C", _B)
XENT_GRAD = _layout("XentGrad", "sub g g_off x x_off t t_off out out_off N C", _B)
ROWS = _layout("Rows", "kind x x_off out out_off N C", _B)
LSTM = _layout("Lstm", "sub g g_off cp cp_off out out_off B H", _B)
LSTM_GRAD = _layout("LstmGrad", "sub d d_off g g_off cp cp_off out out_off B H", _B)
FILL = _layout("Fill", "sub x x_off count k", _B)
#: inside a loop: ``count`` contiguous elements from ``src[src_off + src_t * i]`` to
#: ``dst[dst_off + dst_t * i]``, ``i`` the counter ``S[sidx]`` (``n - 1 - S[sidx]`` with
#: ``rev``); a step of 0 copies the same elements at every iteration (a carry)
ROWCOPY = _layout("RowCopy", "src src_off src_t dst dst_off dst_t count sidx rev n", _B)

#: kernel group name -> its layout
BLOCKS = {"matmul": MATMUL, "reduce": REDUCE, "gather": GATHER, "bounds": BOUNDS,
          "scatter": SCATTER, "sgd_rows": SGD_ROWS, "sgd_dense": SGD_DENSE, "xent": XENT,
          "xent_grad": XENT_GRAD,
          "rows": ROWS, "lstm": LSTM, "lstm_grad": LSTM_GRAD, "fill": FILL,
          "rowcopy": ROWCOPY}


def encode(layout: Any, **fields: int) -> list[int]:
    """The words of a block instruction, ``fields`` given by name (every one, no other)."""
    names = layout._fields
    if set(fields) != set(names):
        missing = sorted(set(names) - set(fields))
        extra = sorted(set(fields) - set(names))
        raise ValueError(f"{type(layout).__name__}: missing fields {missing}, unknown {extra}")
    return [BLOCK, _B + len(names), 0] + [int(fields[n]) for n in names]


def record(layout: Any, **fields: int) -> list[int]:
    """The ``W`` words of one record of a group (``OP``, ``MEM`` or ``SCALAR``), fields by
    name (unnamed trailing words are 0)."""
    words = [0] * W
    for name, value in fields.items():
        words[getattr(layout, name)] = int(value)
    return words


def packer(layout: Any, fields: str) -> Callable[[tuple], list[int]]:
    """A function making the ``W`` words of one record of ``layout`` from a tuple of the
    values of ``fields`` (names, in that order; the other words 0): what :func:`record`
    makes, without naming the fields per record (a group of 40,000 records is emitted in
    one pass).

    >>> pack = packer(OP, "slot sub dst a b c")
    >>> pack((3, 1, 2, 0, 1, 0)) == record(OP, slot=3, sub=1, dst=2, a=0, b=1, c=0)
    True
    """
    cols = [getattr(layout, name) for name in fields.split()]
    if cols == list(range(len(cols))):  # the fields lead the record, in order
        pad = [0] * (W - len(cols))
        return lambda values: [*values, *pad]

    def pack(values: tuple) -> list[int]:
        words = [0] * W
        for c, v in zip(cols, values):
            words[c] = v
        return words
    return pack


def group_head(**fields: int) -> list[int]:
    """The header of a fused group (every field of :data:`EW_HEAD` but ``kind``)."""
    fields = dict(fields, kind=EW)
    return [int(fields[n]) for n in EW_HEAD._fields]


def decode(code, pc: int, layout: Any) -> dict:
    """The fields of the instruction at ``pc`` read with ``layout``, by name."""
    first = layout[0]
    return dict(zip(layout._fields, code[pc + first:pc + first + len(layout)]))


def block_length(layout: Any) -> int:
    """Words of a block instruction of ``layout`` (header included)."""
    return _B + len(layout)


# -- operand regions: what each block kernel reads and writes --------------------------------

#: one operand: ``(buffer field, offset field, shape, strides, role, access)``; ``role`` names
#: the operand for the emitter's notes, its dtype is the kernel's (``"f"``) or int64 (``"i"``);
#: ``access`` is ``"r"``, ``"w"`` or ``"rw"``.
Region = namedtuple("Region", "role buf off shape strides dtype access")


#: kernels that read and write element ``i`` of each region at the same index ``i``, each
#: element read before it is written: an output region may be exactly an input's region
#: (an update in place), which the verifier allows for them only
ELEMENTWISE_BLOCKS = frozenset({"sgd_dense"})


def REGIONS(name: str, f: dict) -> list[Region]:
    """The buffer regions block instruction ``name`` touches, from its decoded fields ``f``.
    Shapes and strides are in elements (a region of shape ``()`` is one element)."""
    if name == "matmul":
        c_access = "rw" if f["acc"] else "w"
        return [Region("a", f["a"], f["a_off"], (f["M"], f["K"]), (f["a_rs"], f["a_cs"]), "f", "r"),
                Region("b", f["b"], f["b_off"], (f["K"], f["N"]), (f["b_rs"], f["b_cs"]), "f", "r"),
                Region("out", f["c"], f["c_off"], (f["M"], f["N"]), (f["c_rs"], 1), "f",
                       c_access)]
    if name == "reduce":
        A, R, C = f["A"], f["R"], f["C"]
        return [Region("x", f["x"], f["x_off"], (A * R * C,), (1,), "f", "r"),
                Region("out", f["y"], f["y_off"], (A * C,), (1,), "f", "w")]
    if name == "gather":
        n_out = f["count"] // f["sum_r"] if f["sum_r"] else f["count"]
        return [Region("x", f["t"], f["t_off"], (f["rows"] * f["row"],), (1,), "f", "r"),
                Region("idx", f["idx"], f["idx_off"], (f["count"],), (1,), "i", "r"),
                Region("out", f["out"], f["out_off"], (n_out * f["row"],), (1,), "f", "w")]
    if name == "bounds":
        return [Region("idx", f["idx"], f["idx_off"], (f["count"],), (1,), "i", "r")]
    if name in ("scatter", "sgd_rows"):
        inner = max(f["inner"], 1)
        values = Region("values", f["v"], f["v_off"], (f["count"] // inner, inner, f["row"]),
                        (f["vs_out"], f["vs_in"], 1), "f", "r")
        idx = Region("idx", f["idx"], f["idx_off"], (f["count"],), (1,), "i", "r")
        if name == "sgd_rows":
            size = (f["rows"] * f["row"],)
            return [values, idx, Region("out", f["w"], f["w_off"], size, (1,), "f", "rw"),
                    Region("grad", f["g"], f["g_off"], size, (1,), "f", "rw")]
        if f["mode"] == 2:  # SCATTER_CHECK: reads the indices only
            return [idx]
        access = "w" if f["mode"] == 1 else "rw"  # SCATTER_ZERO zeroes the table first
        return [values, idx, Region("out", f["out"], f["out_off"], (f["rows"] * f["row"],),
                                    (1,), "f", access)]
    if name == "sgd_dense":
        size = (f["n"],)
        return [Region("term", f["t"], f["t_off"], size, (1,), "f", "r"),
                Region("grad", f["g"], f["g_off"], size, (1,), "f", "r"),
                Region("w", f["w"], f["w_off"], size, (1,), "f", "r"),
                Region("out", f["out"], f["out_off"], size, (1,), "f", "w"),
                Region("zeroed", f["zeroed"], f["zeroed_off"], size, (1,), "f", "w")]
    if name == "xent":
        N, C = f["N"], f["C"]
        return [Region("x", f["x"], f["x_off"], (N * C,), (1,), "f", "r"),
                Region("targets", f["t"], f["t_off"], (N,), (1,), "i", "r"),
                Region("out", f["out"], f["out_off"], (), (), "f", "w")]
    if name == "xent_grad":
        N, C = f["N"], f["C"]
        out = [Region("x", f["x"], f["x_off"], (N * C,), (1,), "f", "r"),
               Region("targets", f["t"], f["t_off"], (N,), (1,), "i", "r"),
               Region("out", f["out"], f["out_off"], (N * C,), (1,), "f", "w")]
        if f["g"] >= 0:
            out.insert(0, Region("g", f["g"], f["g_off"], (), (), "f", "r"))
        return out
    if name == "rows":
        n = f["N"] * f["C"]
        return [Region("x", f["x"], f["x_off"], (n,), (1,), "f", "r"),
                Region("out", f["out"], f["out_off"], (n,), (1,), "f", "w")]
    if name == "lstm":
        B, H = f["B"], f["H"]
        return [Region("gates", f["g"], f["g_off"], (B * 4 * H,), (1,), "f", "r"),
                Region("c_prev", f["cp"], f["cp_off"], (B * H,), (1,), "f", "r"),
                Region("out", f["out"], f["out_off"], (B * 2 * H,), (1,), "f", "w")]
    if name == "lstm_grad":
        B, H = f["B"], f["H"]
        return [Region("d", f["d"], f["d_off"], (B * 2 * H,), (1,), "f", "r"),
                Region("gates", f["g"], f["g_off"], (B * 4 * H,), (1,), "f", "r"),
                Region("c_prev", f["cp"], f["cp_off"], (B * H,), (1,), "f", "r"),
                Region("out", f["out"], f["out_off"], (B * 5 * H,), (1,), "f", "w")]
    if name == "fill":
        return [Region("out", f["x"], f["x_off"], (f["count"],), (1,), "f", "w")]
    if name == "rowcopy":  # every row any iteration touches
        return [_rows_region("src", f["src"], f["src_off"], f["src_t"], f["n"], f["count"], "r"),
                _rows_region("dst", f["dst"], f["dst_off"], f["dst_t"], f["n"], f["count"],
                             "w")]
    raise KeyError(name)


def _rows_region(role: str, buf: int, off: int, step: int, n: int, count: int,
                 access: str) -> Region:
    if step == 0:
        return Region(role, buf, off, (count,), (1,), "f", access)
    return Region(role, buf, off, (n, count), (step, 1), "f", access)
