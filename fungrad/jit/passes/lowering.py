"""The state of lowering one program, and the table of lowering rules by op.

:class:`Lowering` holds what lowering has made so far: storages by Var id, nodes, scalar
slots; its methods make views, elementwise and block nodes and Python steps. A *rule* turns
one program step into nodes (or raises :class:`~fungrad.jit.ir.Unsupported`, and the step
runs in Python); rules are registered with :func:`rule` against the op object they lower (or
the NumPy/operator callable a step calls), one module per op family in
:mod:`fungrad.jit.passes.rules`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...registry import Op, lookup
from ..backend.kernels_ew import SUB
from ..ir import (
    BUFFER_DTYPES, FLOATS, Const, Node, Own, PyObj, Scalar, Unsupported, View, c_strides,
    is_c_contiguous,
)
from ..program import Program, Step, Var, var_refs

__all__ = ["Lowering", "rule", "registered", "RULES", "sub_view", "view_index", "view_of",
           "compute_dtype", "MATMUL_BLAS_MIN", "program_roots"]

#: matmuls with at least this many multiply-adds go to BLAS (NumPy), smaller ones to loops
MATMUL_BLAS_MIN = 48 * 48 * 48

#: op object (or called function) -> its lowering rule ``(low, step) -> None``
RULES: dict[Any, Callable] = {}

#: each float dtype by itself: ``dtype`` given as one of them (or anything equal and hashing
#: alike) maps to the dtype object without a call to ``np.dtype``
_FLOAT_DTYPE = {dt: dt for dt in FLOATS}
#: elementwise ops whose int64 results float64 registers compute exactly (below 2**53: ids,
#: counters — a loop's step count)
_INT_EXACT = frozenset({"copy", "add", "subtract", "negative", "maximum",
                        "minimum", "abs", "where"})
_BOOL, _INT64 = np.dtype(np.bool_), np.dtype(np.int64)
#: the storage of every value a node produces (an ``Own`` holds nothing: one serves all)
_OWN = Own()


def registered(name: str) -> Op:
    """The registered op object named ``name`` (rules are keyed by the object)."""
    return lookup(name)


def rule(*targets: Any) -> Callable:
    """Decorator: register ``fn(low, step)`` as the lowering rule of each op object (or
    called function) in ``targets``."""
    def deco(fn: Callable) -> Callable:
        for t in targets:
            RULES[t] = fn
        return fn
    return deco


class Lowering:
    """State while lowering one program: storages by Var id, nodes, scalar slots."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.storage: dict[int, Any] = {}
        self.nodes: list[Node] = []
        self.n_vars = program.n_vars
        self.extra_vars: list[Var] = []
        self.n_runtime_scalars = 0
        self.consts: list[float] = []
        self.ext_vars: list[Var] = []
        self.step: Step | None = None  # the step being lowered (block nodes remember it)
        self.fallbacks: list[tuple[str, str]] = []  # (step, why) of steps run with NumPy
        # accumulation while lowering (:meth:`add_scatter`): the scatters not yet summed,
        # Var id -> (zero fill node, copy node, the copy's position in ``nodes``); the
        # running sums, Var id -> (Var of the sum's buffer, position of the last node that
        # wrote that buffer before any term was added into it); the nodes the folds made
        # useless (dropped at the end of lowering), the copies they made adds and the Vars
        # those adds read (for :func:`~fungrad.jit.passes.rewrite.accumulate`)
        self.scatters: dict[int, tuple[Node, Node, int]] = {}
        self.sums: dict[int, tuple[Var, int]] = {}
        self.dropped: set[Node] = set()  # (a Node hashes by identity)
        self.folded: set[int] = set()
        self.folded_reads: set[int] = set()
        self._reads: tuple | None = None  # (reads per Var id, roots): made on the first need
        self.in_loop = 0  # > 0 while a loop's body is lowered (passes/loops.py): no sums then

    # -- values ------------------------------------------------------------------------------

    def all_vars(self):
        """Every Var of the lowered program: inputs, step outputs, then those lowering added."""
        p = self.program
        for v, _ in p.inputs:
            yield v
        for s in p.steps:
            yield from s.outputs
        yield from self.extra_vars

    def vars_by_id(self) -> dict[int, Var]:
        """Var id -> Var, for every Var of :meth:`all_vars` (made without a generator: a
        chain's 54,000 Vars)."""
        p = self.program
        out = {v.id: v for v, _ in p.inputs}
        out.update({v.id: v for s in p.steps for v in s.outputs})
        out.update({v.id: v for v in self.extra_vars})
        return out

    def new_var(self, shape: tuple, dtype) -> Var:
        dt = _FLOAT_DTYPE.get(dtype)  # (np.dtype(...) costs 0.25 us: 12,000 calls a chain)
        v = Var(self.n_vars, tuple(shape), np.dtype(dtype) if dt is None else dt)
        self.n_vars += 1
        self.extra_vars.append(v)
        return v

    def runtime_scalar(self, weak) -> Scalar:
        s = Scalar(True, self.n_runtime_scalars, weak=weak)
        self.n_runtime_scalars += 1
        return s

    def const_var(self, value: Any) -> Var | float:
        """A constant argument as a Var with Const storage (PyObj if not an array), or a float."""
        if type(value) is float or type(value) is int and -2 ** 53 <= value <= 2 ** 53:
            return float(value)  # (what the NumPy path below makes of a Python number)
        arr = np.asarray(value)
        if arr.ndim == 0 and arr.dtype.kind in "biuf":
            if arr.dtype.kind in "iu" and not -2 ** 53 <= int(arr) <= 2 ** 53:
                # a float64 register would round it: the step runs in NumPy, exactly
                raise Unsupported("an integer constant beyond 2**53")
            return float(arr)
        v = self.new_var(arr.shape, arr.dtype)
        if arr.dtype in BUFFER_DTYPES:
            self.storage[v.id] = Const(arr)
        else:
            self.storage[v.id] = PyObj()
        return v

    def arg(self, x: Any) -> Var | float:
        return x if type(x) is Var else self.const_var(x)

    def kind_of(self, v: Var | float) -> str:
        if type(v) is not Var:
            return "scalar"
        st = self.storage.get(v.id)
        return type(st).__name__.lower() if st is not None else "missing"

    def is_array(self, v) -> bool:
        """An array value the kernels can read (buffer dtype, not a Python object)."""
        if type(v) is not Var:
            return False
        st = self.storage[v.id]
        return not isinstance(st, (PyObj, Scalar)) and v.dtype in BUFFER_DTYPES

    def layout(self, v: Var) -> tuple[int, int, tuple]:
        """(root var id, element offset, element strides) of an array value."""
        st = self.storage[v.id]
        if isinstance(st, View):
            return st.base, st.offset, st.strides
        return v.id, 0, c_strides(v.shape)

    def contiguous(self, v: Var) -> bool:
        _, _, strides = self.layout(v)
        return is_c_contiguous(v.shape, strides)

    def move_root(self, v: Var, base: int, views: set[int] | None = None) -> None:
        """Make root value ``v`` live C-contiguous at the start of root ``base``'s buffer
        (a rewrite computing it there), and rebase the views of ``v`` with it: a view always
        names a root, never another view. ``views``: the ids of ``v``'s views if known (else
        every storage is scanned)."""
        if views is None:
            views = {vid for vid, st in self.storage.items()
                     if isinstance(st, View) and st.base == v.id}
        for vid in views:
            st = self.storage[vid]
            if isinstance(st, View) and st.base == v.id:
                self.storage[vid] = View(base, st.offset, st.shape, st.strides)
        self.storage[v.id] = View(base, 0, v.shape, c_strides(v.shape))

    def make_view(self, out: Var, src: Var, offset: int, strides: tuple) -> None:
        base, off0, _ = self.layout(src)
        self.storage[out.id] = View(base, off0 + offset, out.shape, tuple(strides))

    def alias(self, out: Var, src: Var | float) -> None:
        """``out`` is ``src`` (same shape and dtype): share its storage, no copy (program
        values are never written in place)."""
        if type(src) is not Var:
            self.storage[out.id] = Scalar(False, value=src, weak=out.weak)
            return
        st = self.storage[src.id]
        if isinstance(st, Scalar):
            self.storage[out.id] = st
            return
        if isinstance(st, PyObj) or out.dtype != src.dtype or out.shape != src.shape:
            raise Unsupported("alias")
        self.make_view(out, src, 0, self.layout(src)[2])

    def contiguous_copy(self, v: Var) -> Var:
        """``v`` itself if C-contiguous, else an elementwise copy into a new buffer (int64
        indices pass through float64 registers: exact below 2**53)."""
        if self.contiguous(v):
            return v
        out = self.new_var(v.shape, v.dtype)
        self.ew("copy", (v,), out, v.dtype if v.dtype in FLOATS else np.dtype(np.float64))
        return out

    # -- accumulation ------------------------------------------------------------------------

    def add_scatter(self, a: Var, b: Var, out: Var) -> bool:
        """Lower ``out = a + b`` where a term is a ``scatter_index`` (a zero fill plus a copy
        into a slice) as that copy adding into the running sum's buffer, the fill and the add
        left out: what :func:`~fungrad.jit.passes.rewrite.accumulate` would make of them
        (its conditions, on the whole program: each of the two values read by this add
        only, neither leaving the program, the sum complete before the copy), made here so
        that the stacked gradient of an unrolled chain (one scatter per layer) costs no
        nodes that the rewrite then removes. False (nothing done): lower the add as usual.
        ``a`` and ``b`` are Vars of ``out``'s shape and float dtype. Not in a loop's body:
        its add runs at each step (the rewrite does not reach into bodies either)."""
        if self.in_loop or not (a.shape == b.shape == out.shape
                                and a.dtype == b.dtype == out.dtype):
            return False
        scatters, sums, storage = self.scatters, self.sums, self.storage
        for acc, term in ((a, b), (b, a)):  # (the rewrite's order)
            made = scatters.get(term.id)
            if made is None:
                continue
            head = sums.get(acc.id)
            if head is None:
                first = scatters.get(acc.id)
                if first is None:
                    continue
                head = (acc, first[2])
            root, written = head
            fill, copy, at = made
            if written > at or not self._read_once(acc, term, root):
                continue
            target = copy.out[0]
            old = self.new_var(target.shape, target.dtype)
            st = storage[target.id]
            storage[old.id] = storage[target.id] = View(root.id, st.offset, st.shape,
                                                        st.strides)
            copy.op, copy.args, copy.params = "add", (old,) + copy.args, {"into": root}
            self.folded.add(id(copy))
            self.folded_reads.add(old.id)
            self.dropped.add(fill)
            storage[term.id] = storage[out.id] = View(root.id, 0, out.shape,
                                                      c_strides(out.shape))
            del scatters[term.id]
            if acc.id in scatters:
                del scatters[acc.id]
            else:
                sums.pop(acc.id, None)
            sums[out.id] = head
            return True
        return False

    def _read_once(self, acc: Var, term: Var, root: Var) -> bool:
        """Whether ``acc`` and ``term`` are each read by one step of the program (the add),
        and neither they nor the sum's buffer ``root`` leave it (nothing else can then view
        or read them: the rewrite's consumer and live-view conditions)."""
        if self._reads is None:  # (read by the steps from the first scatter's on: after
            p = self.program  # the values asked about are made)
            first = self.scatters[next(iter(self.scatters))][0].step  # (a program step)
            steps = p.steps[p.steps.index(first):]
            ids = [v.id for s in steps for v in s.inputs if type(v) is Var]
            ids.extend(v.id for s in steps if s.dynamic for v in var_refs(s.params))
            self._reads = (np.bincount(np.array(ids, dtype=np.int64),
                                       minlength=p.n_vars).tolist(), program_roots(p))
        reads, roots = self._reads
        return (reads[acc.id] == 1 and reads[term.id] == 1
                and acc.id not in roots and term.id not in roots and root.id not in roots)

    # -- nodes -------------------------------------------------------------------------------

    def ew(self, op: str, args: tuple, out: Var, dtype) -> None:
        if op not in SUB:
            raise Unsupported(op)
        dt = _FLOAT_DTYPE.get(dtype)  # (isinstance(dtype, np.dtype) costs 0.2 us: hot)
        if dt is None:
            dt = np.dtype(dtype)
            if dt not in FLOATS:
                raise Unsupported(f"elementwise {op} in {dt}")
        storage = self.storage
        for a in args:  # each an array with a buffer, or a number (is_array, inline: hot)
            if type(a) is Var:
                kind = type(storage[a.id])
                if kind is not Scalar and (kind is PyObj or a.dtype not in BUFFER_DTYPES):
                    raise Unsupported("elementwise input without a buffer")
        odt = out.dtype
        if odt not in FLOATS and odt != _BOOL and not (op in _INT_EXACT and odt == _INT64):
            raise Unsupported(f"elementwise output of dtype {odt}")  # (int64: exact in f64)
        storage[out.id] = _OWN
        self.nodes.append(Node("ew", op, args if type(args) is tuple else tuple(args), (out,),
                               dt, None, self.step))

    def block(self, op: str, args: tuple, out: Var, dtype, **params) -> None:
        self.storage[out.id] = _OWN
        dt = _FLOAT_DTYPE.get(dtype)
        self.nodes.append(Node("block", op, tuple(args), (out,),
                               dtype=np.dtype(dtype) if dt is None else dt, params=params,
                               step=self.step))

    def python(self, step: Step) -> None:
        outs = []
        for v in step.outputs:
            if v.weak is not None and v.weak is not complex:
                self.storage[v.id] = self.runtime_scalar(v.weak)
            elif v.dtype in BUFFER_DTYPES:
                self.storage[v.id] = _OWN
            else:
                self.storage[v.id] = PyObj()
            outs.append(v)
        self.nodes.append(Node("py", getattr(step.fn, "__name__", "call"), (), tuple(outs),
                               step=step))



def program_roots(program: Program) -> set[int]:
    """Ids of the values that leave ``program``: its outputs and its effects' values."""
    roots = {v.id for v in program.outputs if type(v) is Var}
    for e in program.effects:
        roots.update(v.id for v in var_refs(e.ref))
    return roots


# --------------------------------------------------------------------------------------------
# the step handlers


#: (shape, strides) -> a read-only stand-in and its address (a program views the same layout
#: thousands of times, ``w[i]`` per layer: ``as_strided`` took 15 us of a 20 us view)
_FAKES: dict[tuple, tuple[np.ndarray, int]] = {}


def _fake(shape: tuple, strides: tuple) -> tuple[np.ndarray, int]:
    """An int8 array with element strides as byte strides (index it to compute a view), and
    its data address."""
    got = _FAKES.get((shape, strides))
    if got is None:
        if len(_FAKES) >= 1024:
            _FAKES.clear()
        fake = np.lib.stride_tricks.as_strided(np.zeros(1, np.int8), shape=shape,
                                               strides=strides, writeable=False)
        got = _FAKES[(shape, strides)] = (fake, fake.__array_interface__["data"][0])
    return got


def sub_view(shape: tuple, strides: tuple, fn) -> tuple[int, tuple, tuple]:
    """(element offset, shape, element strides) of ``fn(a)`` for an array ``a`` of ``shape``
    and element ``strides``, computed by NumPy on a stand-in. ``fn`` must return a view of
    its argument: an integer index that selects one element must be written ``a[i, ...]``
    (see :func:`view_index`), since ``a[i]`` would give a NumPy scalar, a copy whose address
    says nothing about the offset (writes outside buffers around 0-d values followed)."""
    fake, address = _fake(tuple(shape), tuple(strides))
    v = fn(fake)
    if not isinstance(v, np.ndarray) or v.base is None:
        raise Unsupported("an index that is not a view")
    offset = v.__array_interface__["data"][0] - address
    return offset, tuple(v.shape), tuple(v.strides)


def index_view(shape: tuple, strides: tuple, index) -> tuple[int, tuple, tuple]:
    """``sub_view(shape, strides, lambda a: a[view_index(index)])``: a Python ``int``
    ``index`` in range (``w[i]``, per layer of an unrolled chain) is computed here (row
    ``i``: offset ``i * strides[0]``, the rest of the layout), anything else by NumPy."""
    if type(index) is int and shape and -shape[0] <= index < shape[0]:
        i = index + shape[0] if index < 0 else index
        return i * strides[0], tuple(shape[1:]), tuple(strides[1:])
    return sub_view(shape, strides, lambda a: a[view_index(index)])


def view_index(index):
    """``index`` with a trailing Ellipsis, so that indexing always returns a view (0-d for an
    element), never a scalar copy."""
    if isinstance(index, tuple):
        return index if any(i is Ellipsis for i in index) else index + (Ellipsis,)
    return index if index is Ellipsis else (index, Ellipsis)


def view_of(low: Lowering, x: Var, out: Var, fn, index=None) -> None:
    """``out`` is the view ``fn(x)`` of ``x`` (``index``, if given: the view
    ``x[view_index(index)]``, see :func:`index_view`, and ``fn`` is not called)."""
    st = low.storage[x.id] if type(x) is Var else None
    kind = type(st)  # (is_array, layout and make_view inline: a chain's w[i] and b[i])
    if st is None or kind is PyObj or kind is Scalar or x.dtype not in BUFFER_DTYPES:
        raise Unsupported("view of a non-buffer")
    if kind is View:
        base, offset, strides = st.base, st.offset, st.strides
        if strides and min(strides) < 0:
            raise Unsupported("negative strides")
    else:  # (a root: C-contiguous)
        base, offset, strides = x.id, 0, c_strides(x.shape)
    shape = x.shape
    if type(index) is int and shape and -shape[0] <= index < shape[0]:
        offset += (index + shape[0] if index < 0 else index) * strides[0]
        vshape, vstrides = tuple(shape[1:]), strides[1:]  # (index_view's row, inline)
    else:
        at, vshape, vstrides = (sub_view(shape, strides, fn) if index is None
                                else index_view(shape, strides, index))
        offset += at
    if vshape != out.shape:
        raise Unsupported("view shape")
    if vstrides and min(vstrides) < 0:
        raise Unsupported("negative strides")
    low.storage[out.id] = View(base, offset, out.shape, tuple(vstrides))


def compute_dtype(low: Lowering, out: Var, args: tuple) -> np.dtype:
    if out.dtype in FLOATS:
        return out.dtype
    dts = [a.dtype for a in args if type(a) is Var and a.weak is None
           and not isinstance(low.storage.get(a.id), Scalar)]
    dt = np.result_type(*dts) if dts else np.dtype(np.float64)
    return dt if dt in FLOATS else np.dtype(np.float64)
