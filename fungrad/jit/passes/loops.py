"""Loops in the compiler: a loop step (:mod:`fungrad.jit.loops`) lowered, scheduled and emitted
as a loop of the runner, its body compiled once.

*Lowering* (:func:`lower_loop`): the body's steps are lowered into the same
:class:`~fungrad.jit.passes.lower.Lowering` as the rest of the program (one storage space:
the body reads the program's values — its free Vars — where they lie), between

- copies of ``init`` into the *carry buffers* (the body's carry inputs, ``c_in``), before the
  loop; ``xs`` made C-contiguous, so that each step's slice is one contiguous row;
- and, at each step, ``rowcopy`` instructions: row ``i`` of each ``xs`` leaf into the body's
  ``x`` input, the carry before the step into row ``i`` of the saved carries, ``y`` into row
  ``i`` of the stacked ``ys``, and the new carry into the carry buffers (through a copy of
  its own when it is one of them: a body that swaps two carries) — unless the body's group
  stores it there itself (:func:`_store_in_place`, decided at emission).

The final carry *is* the carry buffers (a view of them): no copy after the loop. The result
is one :class:`~fungrad.jit.ir.Node` of kind ``"loop"``; its body nodes are fused into groups
(:func:`schedule_body`, the scheduler's own fusion) and its buffers planned by
:func:`item_rw`: every value the body touches is live for the whole loop, so no buffer inside
it is shared with anything else. *Emission* (:func:`emit_loop`) writes ``LOOP``, the body,
the copies and ``ENDLOOP`` (:data:`fungrad.jit.backend.isa.LOOP_HEAD`); a while_loop's
condition runs first in the body and a ``BREAK`` leaves the loop when it is false. The
counter lives in a runtime scalar slot.

What is not compiled raises :class:`~fungrad.jit.ir.Unsupported` and the loop runs as a
Python step (:class:`~fungrad.jit.loops.LoopStep`) with a
:class:`~fungrad.errors.JitFallbackWarning` naming it: a body step without a compiled form,
a dtype the buffers do not hold. A while_loop differentiated in reverse mode runs as that
Python step by design (its saved carries' length is its traced trip count, see
:mod:`fungrad.jit.loops`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ...errors import JitFallbackWarning
from ..backend import isa
from ..backend import kernels_ew as KE
from ..backend.isa import MEM
from ..ir import BUFFER_DTYPES, FLOATS, Const, Node, Own, Unsupported, View, c_strides
from ..program import Step, Var

__all__ = ["lower_loop", "schedule_body", "item_rw", "emit_loop"]


def _root(low: Any, vid: int) -> int:
    st = low.storage.get(vid)
    return st.base if isinstance(st, View) else vid


# --------------------------------------------------------------------------------------------
# lowering
# --------------------------------------------------------------------------------------------


def lower_loop(low: Any, step: Step) -> None:
    """Lower loop step ``step`` (see the module docstring); raise Unsupported if it cannot be
    compiled (after warning, unless that is by design)."""
    sp = step.fn.spec
    if sp.kind == "while" and sp.trips is not None:
        raise Unsupported("a reverse-mode while_loop runs as a Python step (its trip count)")
    try:
        _lower(low, step, sp)
    except Unsupported as why:
        warnings.warn(f"fg.jit: {sp.name} is not compiled as a loop ({why}); it runs as a "
                      "Python loop over its traced body (right, but slower)",
                      JitFallbackWarning, stacklevel=2)
        raise


def _cdt(v: Var) -> np.dtype:
    """The compute dtype of an elementwise copy into ``v``."""
    return v.dtype if v.dtype in FLOATS else np.dtype(np.float64)


def _check_dtype(v: Var, what: str) -> None:
    if v.dtype not in BUFFER_DTYPES:
        raise Unsupported(f"{what} of dtype {v.dtype}")


def _materialize(low: Any, a: Any, like: Var, force: bool = False) -> Var:
    """``a`` as a C-contiguous buffer value of ``like``'s shape and dtype: itself, or a copy."""
    if (not force and type(a) is Var and low.is_array(a) and low.contiguous(a)
            and a.dtype == like.dtype and a.shape == like.shape):
        return a
    out = low.new_var(like.shape, like.dtype)
    low.ew("copy", (a,), out, _cdt(like))
    return out


def _lower(low: Any, step: Step, sp: Any) -> None:
    k, n, m = sp.k, sp.n, sp.m
    args = [low.arg(a) for a in step.inputs]
    outs = step.outputs
    p = len(sp.y_out)
    finals, ys, saved = outs[:n], outs[n:n + p], outs[n + p:]
    _check_values(sp, outs)
    # the body's values are the program's values too (their shapes, for the buffers)
    low.extra_vars.extend(list(sp.c_in) + list(sp.x_in)
                          + [o for s in sp.all_steps() for o in s.outputs])
    rows = _row_carries(low, sp)
    xs_c = _carry_and_xs(low, sp, args[k:k + n], args[k + n:k + n + m], rows)
    cond_nodes, body_nodes, flag, c_src, y_src, s_src = _lower_body(low, sp, rows)
    for v in ys + saved:  # (no rows: a constant, never written)
        low.storage[v.id] = Own() if v.size else Const(np.empty(v.shape, v.dtype))
    for j, (v, c) in enumerate(zip(finals, sp.c_in)):
        if j in rows:
            _rows_view(low, v, rows[j], sp, "final")
        else:
            low.make_view(v, c, 0, c_strides(c.shape))
    _outputs_in_rows(low, sp, rows, ys, saved, y_src, s_src)
    keep = [v for v in c_src + y_src + s_src if v is not None] + (
        [flag] if flag is not None else [])
    inner = _live(low, cond_nodes + body_nodes, keep)
    cond_nodes = [nd for nd in cond_nodes if id(nd) in inner]
    body_nodes = [nd for nd in body_nodes if id(nd) in inner]
    reads = _outside_reads(low, sp, cond_nodes + body_nodes, c_src + y_src + s_src)
    counter = low.runtime_scalar(None)
    node_args = tuple(sp.c_in) + tuple(rows.values()) + tuple(xs_c) + tuple(reads)
    carries = tuple(rows[j] if j in rows else c for j, c in enumerate(sp.c_in))
    low.nodes.append(Node("loop", sp.name, node_args, tuple(ys) + tuple(saved) + carries,
                          params={"spec": sp, "xs": xs_c, "cond": cond_nodes,
                                  "body": body_nodes, "flag": flag, "c_src": c_src,
                                  "y_src": y_src, "s_src": s_src, "ys": list(ys),
                                  "saved": list(saved), "rows": rows,
                                  "counter": counter.index, "items": None,
                                  "keep_roots": {v.id for v in keep}},
                          step=step))


def _row_carries(low: Any, sp: Any) -> dict[int, Var]:
    """The carry leaves that live in the rows of their saved carries: ``{leaf: rows}``.

    A scan that saves carry ``j`` (for its VJP) keeps it in one buffer of ``length + 1``
    rows: the step at row ``t`` reads the carry in row ``t`` and its group stores the new
    carry straight into row ``t + 1`` (from the end for a reverse scan: ``t + 1`` and
    ``t``). The saved carries are rows ``0..length-1`` (``1..length``), the final carry the
    last row written, and a ``y`` that is the new carry (a residual, see
    :mod:`fungrad.jit.residuals`) the other ``length`` rows: no copy of the carry per step,
    no store of the saved carry, no store of that ``y``."""
    rows: dict[int, Var] = {}
    if sp.kind != "scan":
        return rows
    for j in sp.kept:
        c, out = sp.c_in[j], sp.c_out[j]
        if c.dtype not in FLOATS or (type(out) is Var and out.id == c.id):
            continue  # (an unchanged carry would need a copy per step anyway)
        r = low.new_var((sp.length + 1,) + tuple(c.shape), c.dtype)
        low.storage[r.id] = Own()
        rows[j] = r
    return rows


def _row_offsets(sp: Any, size: int) -> dict[str, int]:
    """Element offsets in a carry's rows buffer: of the rows read at step ``t`` (the window
    adds ``size * t``), of the rows written, of the first saved carry, of the first new carry,
    of the initial carry and of the final one."""
    if sp.reverse:  # steps t = length-1 .. 0: the carry before step t in row t + 1
        return {"read": size, "write": 0, "saved": size, "new": 0, "init": sp.length * size,
                "final": 0}
    return {"read": 0, "write": size, "saved": 0, "new": size, "init": 0,
            "final": sp.length * size}


def _rows_view(low: Any, v: Var, rows: Var, sp: Any, where: str) -> None:
    """``v`` (one carry, or ``length`` of them) as a view of the rows buffer at ``where``."""
    size = int(np.prod(rows.shape[1:], dtype=np.int64))
    low.storage[v.id] = View(rows.id, _row_offsets(sp, size)[where], tuple(v.shape),
                             c_strides(v.shape))


def _outputs_in_rows(low: Any, sp: Any, rows: dict, ys: list, saved: list, y_src: list,
                     s_src: list) -> None:
    """The saved carries of the row carries, and the ys that are their new value, as views of
    the rows (their stores at each step dropped: ``None`` in ``s_src``/``y_src``)."""
    new_of = {sp.c_out[j].id: j for j in rows if type(sp.c_out[j]) is Var}
    for q, (v, y) in enumerate(zip(sp.y_out, ys)):
        j = new_of.get(v.id) if type(v) is Var else None
        if j is not None and y.size:
            _rows_view(low, y, rows[j], sp, "new")
            y_src[q] = None
    for r, (j, sv) in enumerate(zip(sp.kept, saved)):
        if j in rows and sv.size:
            _rows_view(low, sv, rows[j], sp, "saved")
            s_src[r] = None


def _check_values(sp: Any, outs: tuple) -> None:
    """Every loop value in a dtype the buffers hold; no empty carry leaf."""
    for v in list(sp.c_in) + list(sp.x_in) + list(outs):
        _check_dtype(v, "a loop value")
    if any(0 in v.shape for v in sp.c_in):
        raise Unsupported("an empty carry leaf")


def _carry_and_xs(low: Any, sp: Any, init: list, xs: list, rows: dict) -> list:
    """Copy ``init`` into the carry buffers (before the loop: a row carry's into its first
    row); return the ``xs`` made C-contiguous (each step's slice one row), the body's ``x``
    inputs buffers of their own."""
    for j, (v, a) in enumerate(zip(sp.c_in, init)):
        if j not in rows:
            low.ew("copy", (a,), v, _cdt(v))
            continue
        target = low.new_var(v.shape, v.dtype)
        _rows_view(low, target, rows[j], sp, "init")
        low.nodes.append(Node("ew", "copy", (a,), (target,), dtype=_cdt(v),
                              params={"into": rows[j]}, step=low.step))
        low.storage[v.id] = Own()  # (a window onto the row read at each step)
    xs_c = []
    for x in xs:
        if type(x) is not Var or not low.is_array(x):
            raise Unsupported("xs that is not an array")
        xs_c.append(low.contiguous_copy(x))
    for v in sp.x_in:
        low.storage[v.id] = Own()
    return xs_c


def _lower_body(low: Any, sp: Any, rows: dict) -> tuple:
    """Lower the condition's and the body's steps; return their nodes (taken out of the
    program's), the condition's flag, and the values the loop keeps at each step: the new
    carry (None where unchanged), ``y`` and the saved carries, each a buffer of its own."""
    from .lower import _rule as _handler  # noqa: PLC0415 (lower imports this module's caller)

    body_mark = len(low.nodes)
    outer_step = low.step
    low.in_loop += 1
    try:
        for s in sp.cond_steps:
            _lower_step(low, s, _handler, sp.name)
        flag = None
        if sp.kind == "while":
            like = Var(-1, (), np.dtype(np.bool_))
            flag = _materialize(low, low.arg(sp.flag), like)
        cond_end = len(low.nodes)
        for s in sp.steps:
            _lower_step(low, s, _handler, sp.name)
        c_roots = {v.id for v in sp.c_in}
        c_src: list = []
        for j, (v, c) in enumerate(zip(sp.c_out, sp.c_in)):
            a = low.arg(v)
            if type(a) is Var and a.id == c.id:
                c_src.append(None)  # unchanged
                continue
            aliased = type(a) is Var and _root(low, a.id) in c_roots
            # (a row carry's: stored by the body's group into a window onto the next row)
            c_src.append(_materialize(low, a, c, force=aliased or j in rows))
        # y and the saved carries are stored by the body's own group into windows onto
        # their rows (a copy of their own: only it writes the window)
        y_src = [_materialize(low, low.arg(v), v, force=True) for v in sp.y_out]
        s_src = [_materialize(low, sp.c_in[j], sp.c_in[j], force=True) for j in sp.kept]
    finally:
        low.step = outer_step
        low.in_loop -= 1
    cond_nodes = low.nodes[body_mark:cond_end]
    body_nodes = low.nodes[cond_end:]
    del low.nodes[body_mark:]
    return cond_nodes, body_nodes, flag, c_src, y_src, s_src


def _outside_reads(low: Any, sp: Any, nodes: list, kept: list) -> list:
    """The values from outside the loop its nodes (and the values it keeps) read."""
    made = {v.id for v in list(sp.c_in) + list(sp.x_in)}
    for nd in _walk(nodes):
        made.update(o.id for o in nd.out)
        made.update(_root(low, o.id) for o in nd.out)
    reads: dict[int, Var] = {}
    for nd in _walk(nodes):
        for v in nd.in_vars():
            if v.id not in made and _root(low, v.id) not in made:
                reads.setdefault(v.id, v)
    for v in kept:
        if v is not None and v.id not in made and _root(low, v.id) not in made:
            reads.setdefault(v.id, v)
    return list(reads.values())


def _lower_step(low: Any, s: Step, handler_of: Any, name: str) -> None:
    low.step = s
    handler = handler_of(s)
    if handler is None:
        raise Unsupported(f"its body's step {s.name!r} has no compiled form")
    try:
        handler(low, s)
    except Unsupported as why:
        raise Unsupported(f"its body's step {s.name!r}: {why}") from None


def _walk(nodes: list) -> list:
    """``nodes`` and, recursively, the nodes of the loops among them."""
    out = []
    for nd in nodes:
        out.append(nd)
        if nd.kind == "loop":
            out.extend(_walk(nd.params["cond"] + nd.params["body"]))
    return out


def _live(low: Any, nodes: list, keep: list) -> set[int]:
    """ids of the body nodes that what the loop keeps (its new carry, ys, condition) needs."""
    need: set[int] = set()
    for v in keep:
        need.add(v.id)
        need.add(_root(low, v.id))
    live: set[int] = set()
    for nd in reversed(nodes):
        outs = {o.id for o in nd.out} | {_root(low, o.id) for o in nd.out}
        into = nd.params.get("into")
        if into is not None:
            outs.add(into.id)
        if not (outs & need) and not nd.params.get("keep"):
            continue
        live.add(id(nd))
        for v in nd.in_vars():
            need.add(v.id)
            need.add(_root(low, v.id))
    return live


# --------------------------------------------------------------------------------------------
# scheduling and buffers
# --------------------------------------------------------------------------------------------


def schedule_body(low: Any, node: Node) -> tuple[list, list]:
    """The loop's condition and body fused into items (once; kept on the node)."""
    p = node.params
    if p["items"] is None:
        from .schedule import _fuse  # noqa: PLC0415

        roots = set(p["keep_roots"])
        roots.update(_root(low, r) for r in list(roots))
        p["items"] = (_fuse(low, p["cond"], set(), roots), _fuse(low, p["body"], set(), roots))
    return p["items"]


def item_rw(low: Any, node: Node, sched: Any, item_rw_of: Any) -> tuple[set, set]:
    """(roots read, roots written) by the loop as one item: everything its body touches, so
    that every buffer inside the loop lives for the whole loop."""
    p = node.params
    sp = p["spec"]
    reads = {_root(low, v.id) for v in node.in_vars()}
    writes = {v.id for v in list(sp.c_in) + list(p["rows"].values()) + p["ys"] + p["saved"]}
    cond_items, body_items = schedule_body(low, node)
    for it in cond_items + body_items:
        r, w = item_rw_of(low, it, sched)
        reads |= r
        writes |= w
    for v in p["c_src"] + [p["flag"]]:
        if v is not None:
            reads.add(_root(low, v.id))
    reads |= writes  # (written values are read again at the next step)
    windows = _windows(node)  # no memory of their own (emit_loop points them at rows)
    return reads - windows, writes - windows


def _windows(node: Node) -> set[int]:
    p = node.params
    sp = p["spec"]
    rows = [sp.c_in[j] for j in p["rows"]] + [p["c_src"][j] for j in p["rows"]]
    return {v.id for v in list(sp.x_in) + p["y_src"] + p["s_src"] + rows if v is not None}


# --------------------------------------------------------------------------------------------
# emission
# --------------------------------------------------------------------------------------------


def emit_loop(low: Any, plan: Any, sched: Any, node: Node, emit_item: Any) -> None:
    """Encode the loop (see the module docstring); ``emit_item(item)`` encodes one body item."""
    from .emit import Buffer, _operand  # noqa: PLC0415

    p = node.params
    sp = p["spec"]
    sidx = p["counter"]
    count = sp.length if sp.kind == "scan" else -1
    n_rows = max(sp.length or 0, 0)
    rev = int(bool(sp.reverse))
    cond_items, body_items = schedule_body(low, node)

    def rowcopy(src: Var, dst: Var, src_row: bool, dst_row: bool, size: int,
                dtype: np.dtype) -> None:
        sb, so, _ = _operand(low, plan, src)
        db, do, _ = _operand(low, plan, dst)
        words = isa.encode(isa.ROWCOPY, src=sb, src_off=so, src_t=size if src_row else 0,
                           dst=db, dst_off=do, dst_t=size if dst_row else 0, count=size,
                           sidx=sidx, rev=rev, n=n_rows)
        words[isa.BLOCK_SLOT] = plan.slot("rowcopy", dtype)
        plan.notes[len(plan.code)] = (node, {"src": _root(low, src.id),
                                             "dst": _root(low, dst.id)})
        plan.code.extend(words)

    def window(var: Var, parent: Var, direction: int, off: int = 0) -> None:
        """``var``'s buffer: a window onto row ``i`` of ``parent`` (set at each step), ``off``
        elements further."""
        b = len(plan.buffers)
        plan.buffers.append(Buffer("window", var.dtype, var.size))
        plan.buf_of[var.id] = b
        if not var.size:
            return  # (nothing reads or writes it)
        pb, po, _ = _operand(low, plan, parent)
        po += off
        plan.notes[len(plan.code)] = (node, {"win": var.id, "parent": _root(low, parent.id)})
        plan.code.extend(isa.control(isa.LOOP_WINDOW, win=b, parent=pb, off=po, step=var.size,
                                     sidx=sidx, rev=rev, n=n_rows, isz=var.dtype.itemsize,
                                     dir=direction))

    head = len(plan.code)
    plan.code.extend(isa.control(isa.LOOP_HEAD, sidx=sidx, count=count, exit=0))
    top = len(plan.code)
    for it in cond_items:
        emit_item(it)
    brk = None
    if sp.kind == "while":
        fb, fo, _ = _operand(low, plan, p["flag"])
        brk = len(plan.code)
        plan.notes[brk] = (node, _root(low, p["flag"].id))
        plan.code.extend(isa.control(isa.LOOP_BREAK, buf=fb, off=fo, exit=0))
    for x, v in zip(p["xs"], sp.x_in):
        window(v, x, 0)
    for j, r in p["rows"].items():  # the carry in row t, the new carry into the next
        at = _row_offsets(sp, sp.c_in[j].size)
        window(sp.c_in[j], r, 0, at["read"])
        window(p["c_src"][j], r, 1, at["write"])
    for src, sv in zip(p["s_src"], p["saved"]):
        if src is not None:
            window(src, sv, 1)
    for src, yv in zip(p["y_src"], p["ys"]):
        if src is not None:
            window(src, yv, 1)
    body = len(plan.code)
    for it in body_items:
        emit_item(it)
    in_place = _new_carries(low, plan, p, body, rowcopy)
    end = len(plan.code)
    if in_place:  # the verifier: the carry buffers hold the new carries, then the next step's
        plan.notes[end] = (node, {"carries": in_place})
    plan.code.extend(isa.control(isa.LOOP_END, sidx=sidx, count=count, back=end - top))
    after = len(plan.code)
    plan.code[head + isa.LOOP_HEAD.exit] = after - head
    if brk is not None:
        plan.code[brk + isa.LOOP_BREAK.exit] = after - brk


def _new_carries(low: Any, plan: Any, p: dict, body: int, rowcopy: Any) -> list:
    """Each changed carry's new value into the carry buffer at the end of a step (the body
    emitted from ``body`` on): stored there by the body itself (:func:`_store_in_place`) or
    copied (``rowcopy``). Returns the in-place ones for the ENDLOOP's note: ``(carry buffer,
    size, new carry's value, carry's value)`` each."""
    from .emit import _operand  # noqa: PLC0415

    in_place = []
    srcs = [src.id for src in p["c_src"] if src is not None]
    for j, (src, c) in enumerate(zip(p["c_src"], p["spec"].c_in)):
        if src is None or j in p["rows"]:
            continue
        cb, co, _ = _operand(low, plan, c)
        sb, so, _ = _operand(low, plan, src)
        if (co == 0 and so == 0 and srcs.count(src.id) == 1
                and _store_in_place(plan, body, len(plan.code), sb, cb)):
            in_place.append((cb, c.size, _root(low, src.id), c.id))
        else:
            rowcopy(src, c, False, False, c.size, c.dtype)
    return in_place


def _store_in_place(plan: Any, start: int, stop: int, src: int, carry: int) -> bool:
    """Make the body ``code[start:stop]`` store a carry's new value (buffer ``src``) straight
    into the carry's buffer ``carry``, saving the copy at the end of each step, when that
    cannot change what the body reads: every reference to ``src`` is a load or store of a
    fused group, the first group that references it (``P``) stores it first (a plain store),
    loads the old carry only before that store and through the same elements in the same
    order (a tile loads an element, then stores over it), nothing stores into the carry and
    nothing after ``P`` reads it. Patches
    the records and returns True, or changes nothing and returns False. (The verifier checks
    the result: a read of the old carry after the store would read another value.)"""
    code = plan.code
    kernel = {slot: key[0] for key, slot in plan.kernels.items()}
    first = None  # position of P
    patch = []
    pc = start
    while pc < stop:
        refs = _references(plan, kernel, pc)
        if refs is None:  # a block or control instruction
            reads, writes = _instruction_buffers(plan, kernel, pc)
            if src in reads | writes or carry in writes or (first is not None and carry in reads):
                return False
        else:
            if any(b == src for _, b, _, _ in refs) and first is None:
                if next(sub for _, b, sub, _ in refs if b == src) != KE.STORE:
                    return False  # (read or added to before it is stored: not a new value)
                first = pc
                stored = None
                for q, b, sub, walk in refs:
                    if b == src and sub != KE.LOAD:
                        stored = stored or walk
                        if walk != stored:
                            return False
                    elif b == carry and (stored is not None or sub != KE.LOAD):
                        return False
                loads = [walk for _, b, _, walk in refs if b == carry]
                if any(walk != stored for walk in loads):
                    return False
            elif any(b == carry and (first is not None or sub != KE.LOAD)
                     for _, b, sub, _ in refs):
                return False
            patch.extend(q for q, b, _, _ in refs if b == src)
        pc += code[pc + isa.EW_HEAD.length]
    if first is None:
        return False
    for q in patch:
        code[q + MEM.buf] = carry
    return True


def _references(plan: Any, kernel: dict, pc: int) -> list | None:
    """A fused group's loads and stores: ``(record position, buffer, sub-op, (offset,
    strides))`` each; None for another instruction."""
    code = plan.code
    if code[pc] != isa.EW:
        return None
    out = []
    for k in range(code[pc + isa.EW_HEAD.n_ops]):
        q = pc + isa.HEAD + k * isa.W
        sub = code[q + MEM.sub]
        if kernel[code[q + MEM.slot]] in ("mem", "cast") and sub in (
                KE.LOAD, KE.STORE, KE.STORE_ADD):
            out.append((q, code[q + MEM.buf], sub, tuple(code[q + MEM.off:q + MEM.s3 + 1])))
    return out


def _instruction_buffers(plan: Any, kernel: dict, pc: int) -> tuple[set, set]:
    """(buffers read, buffers written) by a block or control instruction (an ENDLOOP: the
    carry buffers its loop's body stores in place, whose notes name them)."""
    code = plan.code
    kind = code[pc]
    if kind == isa.WINDOW:
        win, parent = code[pc + isa.LOOP_WINDOW.win], code[pc + isa.LOOP_WINDOW.parent]
        return {win, parent}, {win, parent}
    if kind == isa.BREAK:
        return {code[pc + isa.LOOP_BREAK.buf]}, set()
    if kind == isa.ENDLOOP:  # an inner loop's carries stored in place (its note)
        note = plan.notes.get(pc)
        held = {c[0] for c in (note[1].get("carries", ()) if note else ())}
        return held, held
    if kind == isa.LOOP:
        return set(), set()
    name = kernel[code[pc + isa.BLOCK_SLOT]]
    regions = isa.REGIONS(name, isa.decode(code, pc, isa.BLOCKS[name]))
    return ({r.buf for r in regions if "r" in r.access},
            {r.buf for r in regions if "w" in r.access})


# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------


def verify_control(v: Any, pc: int, length: int, start: int, stop: int) -> None:
    """Check the control instruction at ``pc`` for the verifier ``v``
    (:mod:`fungrad.jit.passes.verify`): its length, its counter slot, its jump inside the
    segment ``[start, stop)`` and onto the right instruction, and a BREAK's flag (a bool
    inside its buffer, written before it is read)."""
    from .verify import _Fail  # noqa: PLC0415

    code = v.plan.code
    kind = code[pc]
    layout = {isa.LOOP: isa.LOOP_HEAD, isa.ENDLOOP: isa.LOOP_END,
              isa.BREAK: isa.LOOP_BREAK, isa.WINDOW: isa.LOOP_WINDOW}[kind]
    name = type(layout).__name__
    if length != len(layout):
        raise _Fail(f"{name} at {pc}: {length} words, the runner reads {len(layout)}", "emit")
    f = isa.decode(code, pc, layout)
    if kind == isa.WINDOW:
        _verify_window(v, pc, f, _Fail)
        return
    if kind == isa.BREAK:
        b = f["buf"]
        span = v.region(b, np.dtype(np.bool_), f["off"], (), (), "loop condition")
        note = v.plan.notes.get(pc)
        v.read(b, span, note[1] if note else -1, "loop condition")
        target = pc + f["exit"]
    else:
        v.scalar(-2, f["sidx"], f"{name} counter")
        target = pc + f["exit"] if kind == isa.LOOP else pc - f["back"]
        if kind == isa.ENDLOOP:
            _verify_carries(v, pc)
            head = _head_of(code, target)
            if head is None or code[head + isa.LOOP_HEAD.sidx] != f["sidx"]:
                raise _Fail(f"ENDLOOP at {pc} jumps back to {target}, not to the start of "
                            "its loop's body", "emit (loops)")
    if not start <= target <= stop or (kind != isa.ENDLOOP and target <= pc):
        raise _Fail(f"{name} at {pc} jumps to {target}, outside its segment "
                    f"[{start}, {stop}) or backwards", "emit (loops)")
    if kind != isa.ENDLOOP:  # past an ENDLOOP of the same counter
        end = target - len(isa.LOOP_END)
        if end < 0 or code[end] != isa.ENDLOOP or (
                kind == isa.LOOP and code[end + isa.LOOP_END.sidx] != f["sidx"]):
            raise _Fail(f"{name} at {pc} leaves to {target}, which does not follow its "
                        "loop's ENDLOOP", "emit (loops)")


def _verify_carries(v: Any, pc: int) -> None:
    """At the end of a step, each carry the body stored in place (``emit_loop``) holds the new
    carry, which is the carry the next step (or the code after the loop) reads."""
    note = v.plan.notes.get(pc)
    for b, size, new, carry in (note[1].get("carries", ()) if note else ()):
        span = v.region(b, v.buffers[b].dtype, 0, (size,), (1,), "loop carry")
        v.read(b, span, new, "the new carry at the end of a step")
        v.write(b, span, carry, "the carry of the next step")


def _verify_window(v: Any, pc: int, f: dict, fail: Any) -> None:
    """A WINDOW: a window buffer of one row, every row of its parent inside the parent, the
    parent read (an ``x`` slice) or written (the rows the body stores through it)."""
    win, parent = f["win"], f["parent"]
    if not 0 <= parent < len(v.buffers):
        raise fail(f"window at {pc}: parent buffer {parent} of {len(v.buffers)}", "emit")
    dtype = v.buffers[parent].dtype
    v.region(win, dtype, 0, (), (), "window")
    wbuf = v.buffers[win]
    if wbuf.kind != "window" or wbuf.size != f["step"] or f["isz"] != dtype.itemsize:
        raise fail(f"window at {pc}: buffer {win} ({wbuf.kind}, {wbuf.size} elements) as a "
                   f"window of rows of {f['step']} elements of {f['isz']} bytes of {dtype}",
                   "emit (loops)")
    v.scalar(-2, f["sidx"], "window counter")
    note = v.plan.notes.get(pc, (None, {}))[1]
    span = v.region(parent, dtype, f["off"], (f["n"], f["step"]), (f["step"], 1),
                    "window rows")
    if f["dir"] == 0:
        v.read(parent, span, note.get("parent", -1), "window rows")
        v.write(win, v.extent(win, 0, (f["step"],), (1,), "window"), note.get("win", -1),
                "window")
    else:
        v.write(parent, span, note.get("parent", -1), "window rows")


def _head_of(code: list, top: int) -> int | None:
    """The LOOP instruction just before position ``top`` (a body's first instruction)."""
    head = top - len(isa.LOOP_HEAD)
    return head if head >= 0 and code[head] == isa.LOOP else None
