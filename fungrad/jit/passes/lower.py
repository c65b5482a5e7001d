"""Lowering: each program step becomes a view, an elementwise node, a block node or a Python
step, and each value gets a storage.

- *Views* cost nothing at run time: ``reshape`` of a contiguous value, ``transpose``,
  ``squeeze``/``expand_dims``, ``broadcast_to``, basic indexing (``w[i]`` is the row at an
  offset), ``identity`` and copies (program values are never written in place).
- *Elementwise nodes* (``EW``) are fused later into groups (:mod:`fungrad.jit.passes.schedule`).
- *Block nodes* map one step to one kernel: matmul, reductions, gathers and scatters of rows,
  softmax cross-entropy and its gradient, the LSTM cell and its gradient, row softmax.
- Anything else — a user's ``defop``, an op added later, a NumPy call — becomes a *Python
  step* that runs the step's own function on NumPy views of the buffers. So every op works
  compiled; the compiled ones are just faster.

The storages and nodes it produces are defined in :mod:`fungrad.jit.ir`.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from ...ops.indexing import is_advanced
from ...ops.shape import normalize_axes
from ..backend.kernels_ew import SUB
from ..backend.native import gemm_addresses
from ..ir import (
    BUFFER_DTYPES, FLOATS, Const, Ext, Node, Own, PyObj, Scalar, Unsupported, View, c_strides,
    is_c_contiguous,
)
from ..program import Program, Step, Var
from .. import traced as _traced
from .. import tracer as _tracer

__all__ = ["lower", "Lowering", "MATMUL_BLAS_MIN"]

#: matmuls with at least this many multiply-adds go to BLAS (NumPy), smaller ones to loops
MATMUL_BLAS_MIN = 48 * 48 * 48


#: elementwise ops whose int64 results float64 registers compute exactly (below 2**53: ids,
#: counters — a loop's step count)
_INT_EXACT = frozenset({"copy", "add", "subtract", "multiply", "negative", "maximum",
                        "minimum", "abs", "where"})


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

    # -- values ------------------------------------------------------------------------------

    def all_vars(self):
        """Every Var of the lowered program: inputs, step outputs, then those lowering added."""
        p = self.program
        for v, _ in p.inputs:
            yield v
        for s in p.steps:
            yield from s.outputs
        yield from self.extra_vars

    def new_var(self, shape: tuple, dtype) -> Var:
        v = Var(self.n_vars, tuple(shape), np.dtype(dtype))
        self.n_vars += 1
        self.extra_vars.append(v)
        return v

    def runtime_scalar(self, weak) -> Scalar:
        s = Scalar(True, self.n_runtime_scalars, weak=weak)
        self.n_runtime_scalars += 1
        return s

    def const_var(self, value: Any) -> Var | float:
        """A constant argument as a Var with Const/Scalar storage, or a float."""
        arr = np.asarray(value)
        if arr.ndim == 0 and arr.dtype.kind in "biuf":
            return float(arr)
        v = self.new_var(arr.shape, arr.dtype)
        if arr.ndim == 0:
            self.storage[v.id] = Scalar(False, value=float(arr))
        elif arr.dtype in BUFFER_DTYPES:
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

    def make_view(self, out: Var, src: Var, offset: int, strides: tuple) -> None:
        base, off0, _ = self.layout(src)
        self.storage[out.id] = View(base, off0 + offset, out.shape, tuple(strides))

    def alias(self, out: Var, src: Var | float) -> None:
        """``out`` is ``src`` (same shape and dtype): share its storage, no copy (program
        values are never written in place)."""
        if type(src) is not Var:
            self.storage[out.id] = Scalar(False, value=float(src), weak=out.weak)
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

    # -- nodes -------------------------------------------------------------------------------

    def ew(self, op: str, args: tuple, out: Var, dtype) -> None:
        if op not in SUB:
            raise Unsupported(op)
        dt = np.dtype(dtype)
        if dt not in FLOATS:
            raise Unsupported(f"elementwise {op} in {dt}")
        for a in args:
            if type(a) is Var and not (self.is_array(a) or self.kind_of(a) == "scalar"):
                raise Unsupported("elementwise input without a buffer")
        if out.dtype not in FLOATS and out.dtype != np.dtype(np.bool_) and not (
                op in _INT_EXACT and out.dtype == np.dtype(np.int64)):  # (exact in float64)
            raise Unsupported(f"elementwise output of dtype {out.dtype}")
        self.storage[out.id] = Own()
        self.nodes.append(Node("ew", op, tuple(args), (out,), dtype=dt))

    def block(self, op: str, args: tuple, out: Var, dtype, **params) -> None:
        self.storage[out.id] = Own()
        self.nodes.append(Node("block", op, tuple(args), (out,), dtype=np.dtype(dtype),
                               params=params, step=self.step))

    def python(self, step: Step) -> None:
        outs = []
        for v in step.outputs:
            if v.weak is not None and v.weak is not complex:
                self.storage[v.id] = self.runtime_scalar(v.weak)
            elif v.dtype in BUFFER_DTYPES:
                self.storage[v.id] = Own()
            else:
                self.storage[v.id] = PyObj()
            outs.append(v)
        self.nodes.append(Node("py", getattr(step.fn, "__name__", "call"), (), tuple(outs),
                               step=step))



# --------------------------------------------------------------------------------------------
# the step handlers
# --------------------------------------------------------------------------------------------


def lower(program: Program) -> Lowering:
    """Lower every step of ``program`` (see the module docstring)."""
    low = Lowering(program)
    for var, _ in program.inputs:
        if var.weak is not None and var.weak is not complex:
            low.storage[var.id] = low.runtime_scalar(var.weak)
        elif var.weak is None and var.dtype in BUFFER_DTYPES:
            low.storage[var.id] = Ext(len(low.ext_vars))
            low.ext_vars.append(var)
        else:
            low.storage[var.id] = PyObj()
    for step in program.steps:
        low.step = step
        handler = _handler(step)
        if handler is not None:
            mark = len(low.nodes)
            try:
                handler(low, step)
                continue
            except Unsupported as why:
                del low.nodes[mark:]
                for v in step.outputs:
                    low.storage.pop(v.id, None)
                low.fallbacks.append((step.name, str(why)))
        else:
            low.fallbacks.append((step.name, "no compiled form"))
        low.python(step)
    return low


def _handler(step: Step):
    rule = getattr(step.fn, "jit_lower", None)  # a step that brings its own rule (a loop)
    if rule is not None:
        return rule
    if step.op is not None:
        return _OP_HANDLERS.get(step.op.name)
    if isinstance(step.fn, _tracer._Check):
        return _bounds_check if step.fn.bounds is not None else None
    return _CALL_HANDLERS.get(step.fn)


def _bounds_check(low: Lowering, step: Step) -> None:
    """A Python check of ``lo <= ids < hi`` (an Embedding's): a compiled range check; the
    Python check runs only when it fails, to raise eager's error."""
    ids = low.arg(step.inputs[0])
    if type(ids) is not Var or not low.is_array(ids) or ids.dtype != np.dtype(np.int64):
        raise Unsupported("bounds of a non-int64 array")
    ids = low.contiguous_copy(ids)
    lo, hi = step.fn.bounds
    low.nodes.append(Node("block", "bounds", (ids,), (), dtype=np.dtype(np.int64),
                          params={"count": ids.size, "lo": int(lo), "hi": int(hi),
                                  "keep": True}, step=step))


def _elementwise(name: str):
    def handle(low: Lowering, step: Step) -> None:
        out = step.outputs[0]
        if step.params or out.weak is not None:
            raise Unsupported("parameters")
        args = tuple(low.arg(a) for a in step.inputs)
        low.ew(name, args, out, _compute_dtype(low, out, args))
    return handle


def _compute_dtype(low: Lowering, out: Var, args: tuple) -> np.dtype:
    if out.dtype in FLOATS:
        return out.dtype
    dts = [a.dtype for a in args if type(a) is Var and a.weak is None
           and not isinstance(low.storage.get(a.id), Scalar)]
    dt = np.result_type(*dts) if dts else np.dtype(np.float64)
    return dt if dt in FLOATS else np.dtype(np.float64)


def _where(low: Lowering, step: Step) -> None:
    out = step.outputs[0]
    args = tuple(low.arg(a) for a in step.inputs)
    low.ew("where", args, out, _compute_dtype(low, out, args[1:]))


def _clip(low: Lowering, step: Step) -> None:
    out = step.outputs[0]
    x = low.arg(step.inputs[0])
    lo, hi = step.params.get("a_min"), step.params.get("a_max")
    if any(type(b) is Var or isinstance(b, np.ndarray) for b in (lo, hi)):
        raise Unsupported("array bounds")
    cur = x
    if lo is not None:
        nxt = out if hi is None else low.new_var(out.shape, out.dtype)
        low.ew("maximum", (cur, float(lo)), nxt, out.dtype)
        cur = nxt
    if hi is not None:
        low.ew("minimum", (cur, float(hi)), out, out.dtype)
    if lo is None and hi is None:
        low.ew("copy", (cur,), out, out.dtype)


def _astype(low: Lowering, step: Step) -> None:
    out = step.outputs[0]
    x = low.arg(step.inputs[0])
    if type(x) is Var and x.dtype == out.dtype:
        low.alias(out, x)
        return
    if out.dtype not in FLOATS:
        raise Unsupported("cast to a non-float dtype")
    low.ew("copy", (x,), out, out.dtype)


def _identity(low: Lowering, step: Step) -> None:
    x = step.inputs[0]
    out = step.outputs[0]
    if type(x) is not Var:  # a constant (the tracer's "const" step)
        arr = np.asarray(x)
        if out.weak is not None or arr.ndim == 0 and arr.dtype.kind in "biuf":
            low.storage[out.id] = Scalar(False, value=float(arr) if arr.dtype.kind in "biuf"
                                         else 0.0, weak=out.weak)
            if arr.dtype.kind not in "biuf":
                raise Unsupported("non-numeric constant")
        elif arr.dtype in BUFFER_DTYPES:
            low.storage[out.id] = Const(arr)
        else:
            raise Unsupported("constant of another dtype")
        return
    low.alias(out, x)


def _reshape(low: Lowering, step: Step) -> None:
    x, out = step.inputs[0], step.outputs[0]
    if type(x) is not Var or not low.is_array(x):
        raise Unsupported("reshape of a non-buffer")
    if out.size == 0:
        raise Unsupported("empty")
    if not low.contiguous(x):
        x = low.contiguous_copy(x)
    low.make_view(out, x, 0, c_strides(out.shape))


def _fake(shape: tuple, strides: tuple) -> np.ndarray:
    """An int8 array with element strides as byte strides: index it to compute a view."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.int8), shape=shape, strides=strides)


def sub_view(shape: tuple, strides: tuple, fn) -> tuple[int, tuple, tuple]:
    """(element offset, shape, element strides) of ``fn(a)`` for an array ``a`` of ``shape``
    and element ``strides``, computed by NumPy on a stand-in. ``fn`` must return a view of
    its argument: an integer index that selects one element must be written ``a[i, ...]``
    (see :func:`view_index`), since ``a[i]`` would give a NumPy scalar, a copy whose address
    says nothing about the offset (the 0-d out-of-bounds class of issue 18)."""
    fake = _fake(shape, strides)
    v = fn(fake)
    if not isinstance(v, np.ndarray) or v.base is None:
        raise Unsupported("an index that is not a view")
    offset = v.__array_interface__["data"][0] - fake.__array_interface__["data"][0]
    return offset, tuple(v.shape), tuple(v.strides)


def view_index(index):
    """``index`` with a trailing Ellipsis, so that indexing always returns a view (0-d for an
    element), never a scalar copy."""
    if isinstance(index, tuple):
        return index if any(i is Ellipsis for i in index) else index + (Ellipsis,)
    return index if index is Ellipsis else (index, Ellipsis)


def _view_of(low: Lowering, x: Var, out: Var, fn) -> None:
    if type(x) is not Var or not low.is_array(x):
        raise Unsupported("view of a non-buffer")
    _, _, strides = low.layout(x)
    if any(s < 0 for s in strides):
        raise Unsupported("negative strides")
    offset, shape, vstrides = sub_view(x.shape, strides, fn)
    if shape != out.shape:
        raise Unsupported("view shape")
    if any(s < 0 for s in vstrides):
        raise Unsupported("negative strides")
    low.make_view(out, x, offset, vstrides)


def _transpose(low, step):
    axes = step.params.get("axes")
    _view_of(low, step.inputs[0], step.outputs[0], lambda a: np.transpose(a, axes))


def _squeeze(low, step):
    _view_of(low, step.inputs[0], step.outputs[0],
             lambda a: np.squeeze(a, step.params.get("axis")))


def _expand_dims(low, step):
    _view_of(low, step.inputs[0], step.outputs[0],
             lambda a: np.expand_dims(a, step.params["axis"]))


def _broadcast_to(low, step):
    x = step.inputs[0]
    if type(x) is Var and isinstance(low.storage[x.id], Scalar):
        low.storage[step.outputs[0].id] = low.storage[x.id]
        return
    _view_of(low, x, step.outputs[0], lambda a: np.broadcast_to(a, step.params["shape"]))


def _expand(low, step):
    dim, copies = step.params["dim"], step.params["copies"]
    _view_of(low, step.inputs[0], step.outputs[0],
             lambda a: np.broadcast_to(np.expand_dims(a, dim),
                                       a.shape[:dim] + (copies,) + a.shape[dim:]))


def _getitem(low: Lowering, step: Step) -> None:
    x, out = step.inputs[0], step.outputs[0]
    index = step.params["index"]
    if not is_advanced(index) and not step.dynamic:
        _view_of(low, x, out, lambda a: a[view_index(index)])
        return
    idx = index
    if type(idx) is not Var and not isinstance(idx, np.ndarray):
        raise Unsupported("advanced index other than one integer array")
    _gather(low, x, low.arg(idx), out)


def _gather(low: Lowering, x: Var, idx, out: Var) -> None:
    if type(x) is not Var or not low.is_array(x) or x.dtype not in FLOATS or not x.shape:
        raise Unsupported("gather source")
    if type(idx) is not Var or not low.is_array(idx) or idx.dtype != np.dtype(np.int64):
        raise Unsupported("gather indices")
    x = low.contiguous_copy(x)
    idx = low.contiguous_copy(idx)
    row = int(np.prod(x.shape[1:], dtype=np.int64))
    low.block("gather", (x, idx), out, x.dtype, count=idx.size, rows=x.shape[0], row=row)


def _index_select(low, step):
    _gather(low, step.inputs[0], low.arg(step.inputs[1]), step.outputs[0])


def _scatter_rows(low: Lowering, values, idx, out: Var, rows: int) -> None:
    if type(values) is not Var or not low.is_array(values) or out.dtype not in FLOATS:
        raise Unsupported("scatter values")
    if values.dtype != out.dtype:
        raise Unsupported("scatter dtype")
    if type(idx) is not Var or not low.is_array(idx) or idx.dtype != np.dtype(np.int64):
        raise Unsupported("scatter indices")
    idx = low.contiguous_copy(idx)
    row = int(np.prod(out.shape[1:], dtype=np.int64))
    k = len(idx.shape)
    _, _, strides = low.layout(values)
    row_shape = values.shape[k:]
    if k in (1, 2) and row_shape == out.shape[1:] and (
            row <= 1 or strides[k:] == c_strides(row_shape)):
        # the values' rows are read where they are, even broadcast along the index axes
        inner = 1 if k == 1 else idx.shape[1]
        vs_out, vs_in = strides[0], (0 if k == 1 else strides[1])
    else:
        values = low.contiguous_copy(values)
        inner, vs_out, vs_in = 1, row, 0
    low.block("scatter", (values, idx), out, out.dtype, count=idx.size, rows=rows, row=row,
              inner=inner, vs_out=vs_out, vs_in=vs_in)


def _scatter_add(low, step):
    _scatter_rows(low, step.inputs[0], low.arg(step.inputs[1]), step.outputs[0],
                  step.params["n_rows"])


def _scatter_index(low: Lowering, step: Step) -> None:
    g, out = step.inputs[0], step.outputs[0]
    index, shape = step.params["index"], tuple(step.params["shape"])
    if is_advanced(index) or step.dynamic:
        if type(index) is Var or isinstance(index, np.ndarray):
            _scatter_rows(low, g, low.arg(index), out, shape[0])
            return
        raise Unsupported("scatter with a tuple index")
    if out.dtype not in FLOATS or type(g) is not Var:
        raise Unsupported("scatter_index")
    low.block("fill", (), out, out.dtype, value=0.0)
    offset, vshape, vstrides = sub_view(shape, c_strides(shape), lambda a: a[view_index(index)])
    target = low.new_var(vshape, out.dtype)
    low.storage[target.id] = View(out.id, offset, vshape, vstrides)
    low.nodes.append(Node("ew", "copy", (g,), (target,), dtype=out.dtype,
                          params={"into": out}))


def _reduce(kind: str):
    def handle(low: Lowering, step: Step) -> None:
        x, out = step.inputs[0], step.outputs[0]
        if type(x) is not Var or not low.is_array(x) or out.dtype not in FLOATS:
            raise Unsupported("reduce input")
        if x.dtype != out.dtype or x.size == 0:
            raise Unsupported("reduce dtype")
        axes = normalize_axes(kind, step.params.get("axis"), len(x.shape))
        _reduce_axes(low, kind, x, out, axes)
    return handle


def _reduce_axes(low: Lowering, kind: str, x: Var, out: Var, axes: tuple) -> None:
    if not axes:
        low.ew("copy", (x,), out, out.dtype)
        return
    if list(axes) != list(range(axes[0], axes[-1] + 1)):
        raise Unsupported("reduce over axes that are not adjacent")
    x = low.contiguous_copy(x)
    shape = x.shape
    A = int(np.prod(shape[:axes[0]], dtype=np.int64))
    R = int(np.prod(shape[axes[0]:axes[-1] + 1], dtype=np.int64))
    C = int(np.prod(shape[axes[-1] + 1:], dtype=np.int64))
    scale = 1.0 / R if kind == "mean" else None
    low.block("reduce", (x,), out, out.dtype, kind=kind, A=A, R=R, C=C, scale=scale)


def _sum_to(low: Lowering, step: Step) -> None:
    x, out = step.inputs[0], step.outputs[0]
    if type(x) is not Var or not low.is_array(x) or out.dtype not in FLOATS:
        raise Unsupported("sum_to")
    shape = tuple(step.params["shape"])
    lead = len(x.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and x.shape[lead + i] != 1)
    _reduce_axes(low, "sum", x, out, axes)


def _matmul(low: Lowering, step: Step) -> None:
    a, b = (low.arg(x) for x in step.inputs)
    out = step.outputs[0]
    if not (type(a) is Var and type(b) is Var and low.is_array(a) and low.is_array(b)):
        raise Unsupported("matmul operands")
    if len(a.shape) < 2 or len(b.shape) != 2 or out.dtype not in FLOATS:
        raise Unsupported("matmul of other ranks")
    if a.dtype != out.dtype or b.dtype != out.dtype:
        raise Unsupported("mixed dtypes")
    K, N = b.shape
    M = a.size // K if K else 0
    if 0 in (M, K, N):
        raise Unsupported("empty")
    if M * K * N >= MATMUL_BLAS_MIN and not gemm_addresses()[0]:
        raise Unsupported("large, and no BLAS the runner can call: NumPy's matmul")
    if len(a.shape) == 2:
        low.block("matmul", (a, b), out, out.dtype, M=M, K=K, N=N)
        return
    product = low.new_var((M, N), out.dtype)  # (..., K) @ (K, N): one (M, K) @ (K, N)
    low.block("matmul", (_as_matrix(low, a, M, K), b), product, out.dtype, M=M, K=K, N=N)
    low.make_view(out, product, 0, c_strides(out.shape))


def _as_matrix(low: Lowering, x: Var, rows: int, cols: int) -> Var:
    """``x`` seen as a (rows, cols) matrix: itself if 2-d, else a view of a contiguous copy."""
    if len(x.shape) == 2:
        return x
    x = low.contiguous_copy(x)
    m = low.new_var((rows, cols), x.dtype)
    low.make_view(m, x, 0, (cols, 1))
    return m


def _affine(low: Lowering, step: Step) -> None:
    """``x @ w + b``: ``b`` broadcast into the output, then the matmul adds into it (BLAS's
    ``beta = 1``, or the loops' accumulate)."""
    x, w, b = (low.arg(v) for v in step.inputs)
    out = step.outputs[0]
    if not all(type(v) is Var and low.is_array(v) for v in (x, w, b)):
        raise Unsupported("affine operands")
    if out.dtype not in FLOATS or any(v.dtype != out.dtype for v in (x, w, b)):
        raise Unsupported("affine dtypes")
    if len(w.shape) != 2 or not x.shape:
        raise Unsupported("affine ranks")
    K, N = w.shape
    M = x.size // K if K else 0
    if 0 in (M, K, N):
        raise Unsupported("empty")
    if M * K * N >= MATMUL_BLAS_MIN and not gemm_addresses()[0]:
        raise Unsupported("large, and no BLAS the runner can call: NumPy's matmul")
    x2 = _as_matrix(low, x, M, K)
    acc = low.new_var((M, N), out.dtype)
    low.ew("copy", (b,), acc, out.dtype)
    product = low.new_var((M, N), out.dtype)
    low.block("matmul", (x2, w), product, out.dtype, M=M, K=K, N=N, acc=True, after=acc)
    low.storage[product.id] = View(acc.id, 0, (M, N), (N, 1))
    low.storage[out.id] = View(acc.id, 0, out.shape, c_strides(out.shape))


def _bag_operands(low: Lowering, idx) -> tuple[Var, int]:
    if type(idx) is not Var or not low.is_array(idx) or idx.dtype != np.dtype(np.int64) \
            or not idx.shape or idx.shape[-1] == 0:
        raise Unsupported("bag indices")
    return low.contiguous_copy(idx), idx.shape[-1]


def _embedding_bag(low: Lowering, step: Step) -> None:
    """A gather that sums each bag's rows as it reads them (then scales, for the mean)."""
    table, out = low.arg(step.inputs[0]), step.outputs[0]
    if type(table) is not Var or not low.is_array(table) or len(table.shape) != 2 \
            or table.dtype not in FLOATS or out.dtype != table.dtype:
        raise Unsupported("bag table")
    idx, length = _bag_operands(low, low.arg(step.inputs[1]))
    table = low.contiguous_copy(table)
    rows, dim = table.shape
    summed = out if step.params.get("mode", "sum") == "sum" else low.new_var(out.shape, out.dtype)
    low.block("gather", (table, idx), summed, out.dtype, count=idx.size, rows=rows, row=dim,
              sum_r=length)
    if summed is not out:
        low.ew("multiply", (summed, 1.0 / length), out, out.dtype)


def _embedding_bag_grad(low: Lowering, step: Step) -> None:
    """Each bag's cotangent row added at every index of the bag: a scatter reading one value
    row per ``length`` indices."""
    g, out = low.arg(step.inputs[0]), step.outputs[0]
    if type(g) is not Var or not low.is_array(g) or g.dtype != out.dtype \
            or out.dtype not in FLOATS or len(out.shape) != 2:
        raise Unsupported("bag cotangent")
    idx, length = _bag_operands(low, low.arg(step.inputs[1]))
    if g.shape != idx.shape[:-1] + out.shape[1:]:
        raise Unsupported("bag shapes")
    if step.params.get("mode", "sum") == "mean":
        scaled = low.new_var(g.shape, g.dtype)
        low.ew("multiply", (g, 1.0 / length), scaled, g.dtype)
        g = scaled
    g = low.contiguous_copy(g)
    dim = out.shape[1]
    low.block("scatter", (g, idx), out, out.dtype, count=idx.size, rows=out.shape[0], row=dim,
              inner=length, vs_out=dim, vs_in=0)


# -- lstm_sequence: the recurrence unrolled into per-step matmuls and fused elementwise groups


class _Seq:
    """Helpers to lower one LSTM recurrence: views of step ``t`` and of gate columns, new
    (B, H) values, and stores into parts of an output buffer."""

    def __init__(self, low: Lowering, dtype, batch: int, hid: int) -> None:
        self.low, self.dt, self.B, self.H = low, np.dtype(dtype), batch, hid

    def view(self, x: Var, shape: tuple, fn) -> Var:
        v = self.low.new_var(shape, x.dtype)
        _view_of(self.low, x, v, fn)
        return v

    def step(self, x: Var, t: int) -> Var:
        return self.view(x, x.shape[1:], lambda a: a[t])

    def gate(self, x: Var, k: int) -> Var:
        H = self.H
        return self.view(x, (x.shape[0], H), lambda a: a[:, k * H:(k + 1) * H])

    def ew(self, op: str, *args) -> Var:
        out = self.low.new_var((self.B, self.H), self.dt)
        self.low.ew(op, args, out, self.dt)
        return out

    def store(self, value, root: Var, fn, shape: tuple) -> None:
        target = self.view(root, shape, fn)
        self.low.nodes.append(Node("ew", "copy", (value,), (target,), dtype=self.dt,
                                   params={"into": root}))

    def matmul(self, a: Var, b: Var, out: Var | None = None) -> Var:
        M, K = a.shape
        N = b.shape[1]
        out = out if out is not None else self.low.new_var((M, N), self.dt)
        self.low.block("matmul", (a, b), out, self.dt, M=M, K=K, N=N)
        return out


def _seq_operands(low: Lowering, step: Step, n_arrays: int) -> list:
    args = [low.arg(v) for v in step.inputs]
    for a in args[-n_arrays:]:
        if type(a) is not Var or not low.is_array(a) or a.dtype not in FLOATS:
            raise Unsupported("lstm_sequence operands")
    dt = args[-1].dtype
    if any(type(a) is Var and a.dtype != dt for a in args):
        raise Unsupported("lstm_sequence dtypes")
    return args


def _lstm_sequence(low: Lowering, step: Step) -> None:
    xp, w_hh, h0, c0 = _seq_operands(low, step, 4)
    T, B, H4 = xp.shape
    H = H4 // 4
    if 0 in (T, B, H):
        raise Unsupported("empty")
    hs, cs, acts = step.outputs
    for v in (hs, cs, acts):
        low.storage[v.id] = Own()
    q = _Seq(low, xp.dtype, B, H)
    h_prev, c_prev = h0, c0
    for t in range(T):
        pre = q.matmul(h_prev, w_hh)  # (B, 4H), then + xp[t] in the fused group
        x_t = q.step(xp, t)
        a = [q.ew("add", q.gate(pre, k), q.gate(x_t, k)) for k in range(4)]
        i, f, o = (q.ew("sigmoid", a[k]) for k in (0, 1, 3))
        g = q.ew("tanh", a[2])
        c = q.ew("add", q.ew("multiply", f, c_prev), q.ew("multiply", i, g))
        h = q.ew("multiply", o, q.ew("tanh", c))
        for k, v in enumerate((i, f, g, o)):
            q.store(v, acts, lambda arr, t=t, k=k: arr[t, :, k * H:(k + 1) * H], (B, H))
        q.store(c, cs, lambda arr, t=t: arr[t], (B, H))
        q.store(h, hs, lambda arr, t=t: arr[t], (B, H))
        h_prev, c_prev = q.step(hs, t), q.step(cs, t)


def _lstm_sequence_grad(low: Lowering, step: Step) -> None:
    g_hs, g_cs, g_acts, cs, acts, c0, w_hh = _seq_operands(low, step, 4)
    T, B, H4 = acts.shape
    H = H4 // 4
    if 0 in (T, B, H):
        raise Unsupported("empty")
    grads = []
    for g in (g_hs, g_cs, g_acts):
        if type(g) is not Var:
            if g != 0.0:
                raise Unsupported("a nonzero scalar cotangent")
            grads.append(None)
        elif not low.is_array(g) or g.shape != (acts.shape if g is g_acts else cs.shape):
            raise Unsupported("lstm_sequence_grad cotangents")
        else:
            grads.append(g)
    g_hs, g_cs, g_acts = grads
    dxp, dh_out, dc_out = step.outputs
    low.storage[dxp.id] = Own()
    q = _Seq(low, acts.dtype, B, H)
    w_t = q.view(w_hh, (H4, H), lambda a: a.T)
    one = 1.0
    dh = dc = None
    for t in range(T - 1, -1, -1):
        if g_hs is not None:
            g_t = q.step(g_hs, t)
            dh = g_t if dh is None else q.ew("add", dh, g_t)
        if g_cs is not None:
            g_t = q.step(g_cs, t)
            dc = g_t if dc is None else q.ew("add", dc, g_t)
        a_t = q.step(acts, t)
        i, f, g, o = (q.gate(a_t, k) for k in range(4))
        c_prev = q.step(cs, t - 1) if t else c0
        tc = q.ew("tanh", q.step(cs, t))
        dct = dc
        if dh is not None:
            dtc = q.ew("multiply", q.ew("multiply", dh, o),
                       q.ew("subtract", one, q.ew("multiply", tc, tc)))
            dct = dtc if dct is None else q.ew("add", dtc, dct)
        d = [None] * 4
        if dct is not None:
            d[0] = q.ew("multiply", q.ew("multiply", dct, g),
                        q.ew("multiply", i, q.ew("subtract", one, i)))
            d[1] = q.ew("multiply", q.ew("multiply", dct, c_prev),
                        q.ew("multiply", f, q.ew("subtract", one, f)))
            d[2] = q.ew("multiply", q.ew("multiply", dct, i),
                        q.ew("subtract", one, q.ew("multiply", g, g)))
        if dh is not None:
            d[3] = q.ew("multiply", q.ew("multiply", dh, tc),
                        q.ew("multiply", o, q.ew("subtract", one, o)))
        if g_acts is not None:
            ga = q.step(g_acts, t)
            for k, a in enumerate((i, f, g, o)):
                deriv = (q.ew("subtract", one, q.ew("multiply", a, a)) if k == 2 else
                         q.ew("multiply", a, q.ew("subtract", one, a)))
                extra = q.ew("multiply", q.gate(ga, k), deriv)
                d[k] = extra if d[k] is None else q.ew("add", d[k], extra)
        for k in range(4):
            q.store(0.0 if d[k] is None else d[k], dxp,
                    lambda arr, t=t, k=k: arr[t, :, k * H:(k + 1) * H], (B, H))
        dh = q.matmul(q.step(dxp, t), w_t, dh_out if t == 0 else None)
        dc = None if dct is None else q.ew("multiply", dct, f)
    if dc is None:
        low.block("fill", (), dc_out, dc_out.dtype, value=0.0)
    else:
        low.ew("copy", (dc,), dc_out, dc_out.dtype)


def _xent(low: Lowering, step: Step) -> None:
    logits, targets = low.arg(step.inputs[0]), low.arg(step.inputs[1])
    out = step.outputs[0]
    if not (low.is_array(logits) and low.is_array(targets)) or logits.dtype not in FLOATS:
        raise Unsupported("cross_entropy operands")
    if targets.dtype != np.dtype(np.int64) or out.dtype != logits.dtype:
        raise Unsupported("cross_entropy targets")
    C = logits.shape[-1] if logits.shape else 0
    N = logits.size // C if C else 0
    if targets.size != N or N == 0:
        raise Unsupported("cross_entropy shapes")
    logits = low.contiguous_copy(logits)
    targets = low.contiguous_copy(targets)
    low.block("xent", (logits, targets), out, out.dtype, N=N, C=C)


def _xent_grad(low: Lowering, step: Step) -> None:
    g, logits, targets = (low.arg(x) for x in step.inputs)
    out = step.outputs[0]
    if not all(low.is_array(v) for v in (logits, targets)) or logits.dtype not in FLOATS:
        raise Unsupported("cross_entropy_grad operands")
    if targets.dtype != np.dtype(np.int64) or out.dtype != logits.dtype:
        raise Unsupported("cross_entropy_grad targets")
    if type(g) is Var and low.is_array(g):
        if g.size != 1 or g.dtype != out.dtype:
            raise Unsupported("cross_entropy_grad g")
        g = low.contiguous_copy(g)
    elif low.kind_of(g) != "scalar":
        raise Unsupported("cross_entropy_grad g")
    C = logits.shape[-1]
    N = logits.size // C if C else 0
    if targets.size != N or N == 0:
        raise Unsupported("cross_entropy_grad shapes")
    logits = low.contiguous_copy(logits)
    targets = low.contiguous_copy(targets)
    low.block("xent_grad", (g, logits, targets), out, out.dtype, N=N, C=C)


def _lstm(grad: bool):
    def handle(low: Lowering, step: Step) -> None:
        args = tuple(low.arg(x) for x in step.inputs)
        out = step.outputs[0]
        if not all(low.is_array(v) and v.dtype == out.dtype for v in args):
            raise Unsupported("lstm operands")
        if out.dtype not in FLOATS or any(len(v.shape) != 2 for v in args):
            raise Unsupported("lstm ranks")
        args = tuple(low.contiguous_copy(v) for v in args)
        B, H = args[-1].shape
        low.block("lstm_grad" if grad else "lstm", args, out, out.dtype, B=B, H=H)
    return handle


def _rows(kind: str):
    def handle(low: Lowering, step: Step) -> None:
        x, out = step.inputs[0], step.outputs[0]
        if type(x) is not Var or not low.is_array(x) or x.dtype not in FLOATS or not x.shape:
            raise Unsupported("rows input")
        axis = normalize_axes(kind, step.params.get("axis", -1), len(x.shape))
        if axis != (len(x.shape) - 1,) or x.size == 0 or out.dtype != x.dtype:
            raise Unsupported("softmax over another axis")
        x = low.contiguous_copy(x)
        C = x.shape[-1]
        low.block("rows", (x,), out, out.dtype, kind=kind, N=x.size // C, C=C)
    return handle


def _join(stack: bool):
    def handle(low: Lowering, step: Step) -> None:
        out = step.outputs[0]
        if out.dtype not in FLOATS or step.dynamic:
            raise Unsupported("join dtype")
        arrays = [low.arg(a) for a in step.inputs]
        if step.params.get("axis", 0) is None or any(
                type(a) is Var and len(a.shape) + stack != len(out.shape) for a in arrays):
            raise Unsupported("joining flattened arrays")
        axis = normalize_axes("stack" if stack else "concatenate", step.params.get("axis", 0),
                              len(out.shape))[0]
        low.storage[out.id] = Own()
        start = 0
        full = c_strides(out.shape)
        for a in arrays:
            if type(a) is Var and not low.is_array(a) and low.kind_of(a) != "scalar":
                raise Unsupported("join of a non-buffer")
            width = 1 if stack else (a.shape[axis] if type(a) is Var else 1)
            index = (slice(None),) * axis + ((start,) if stack else (slice(start,
                                                                           start + width),))
            offset, vshape, vstrides = sub_view(out.shape, full,
                                                lambda o, i=index: o[view_index(i)])
            target = low.new_var(vshape, out.dtype)
            low.storage[target.id] = View(out.id, offset, vshape, vstrides)
            low.nodes.append(Node("ew", "copy", (a,), (target,), dtype=out.dtype,
                                  params={"into": out}))
            start += width
    return handle


def _compare(name: str):
    def handle(low: Lowering, step: Step) -> None:
        out = step.outputs[0]
        if out.weak is not None or step.params:
            raise Unsupported("Python values")
        args = tuple(low.arg(a) for a in step.inputs)
        if not all(type(a) is not Var or low.is_array(a) or low.kind_of(a) == "scalar"
                   for a in args):
            raise Unsupported("compare operands")
        low.ew(name, args, out, _compute_dtype(low, out, args))
    return handle


def _assign_like(low: Lowering, step: Step) -> None:
    target, value = step.inputs
    out = step.outputs[0]
    low.ew("copy", (low.arg(value),), out, out.dtype)


def _setitem(low: Lowering, step: Step) -> None:
    x, value = step.inputs
    out = step.outputs[0]
    index = step.params["index"]
    whole = index is Ellipsis or index == slice(None) or (
        isinstance(index, tuple) and all(i is Ellipsis or i == slice(None) for i in index))
    if not whole or step.dynamic:
        raise Unsupported("partial item assignment")
    low.ew("copy", (low.arg(value),), out, out.dtype)


_ELEMENTWISE = ["add", "subtract", "multiply", "divide", "negative", "power", "exp", "log",
                "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "abs", "sign",
                "maximum", "minimum"]

_OP_HANDLERS = {name: _elementwise(name) for name in _ELEMENTWISE}
_OP_HANDLERS.update({
    "where": _where, "clip": _clip, "astype": _astype, "identity": _identity,
    "reshape": _reshape, "transpose": _transpose, "squeeze": _squeeze,
    "expand_dims": _expand_dims, "broadcast_to": _broadcast_to, "expand": _expand,
    "getitem": _getitem, "index_select": _index_select, "scatter_add": _scatter_add,
    "scatter_index": _scatter_index, "sum": _reduce("sum"), "mean": _reduce("mean"),
    "max": _reduce("max"), "min": _reduce("min"), "sum_to": _sum_to, "matmul": _matmul,
    "mm": _matmul, "affine": _affine, "embedding_bag": _embedding_bag,
    "embedding_bag_grad": _embedding_bag_grad, "lstm_sequence": _lstm_sequence,
    "lstm_sequence_grad": _lstm_sequence_grad,
    "cross_entropy": _xent, "cross_entropy_grad": _xent_grad,
    "lstm_cell": _lstm(False), "lstm_cell_grad": _lstm(True),
    "softmax": _rows("softmax"), "log_softmax": _rows("log_softmax"),
    "concatenate": _join(False), "stack": _join(True),
})

_CALL_HANDLERS = {
    operator.lt: _compare("less"), operator.le: _compare("less_equal"),
    operator.gt: _compare("greater"), operator.ge: _compare("greater_equal"),
    operator.eq: _compare("equal"), operator.ne: _compare("not_equal"),
    np.less: _compare("less"), np.less_equal: _compare("less_equal"),
    np.greater: _compare("greater"), np.greater_equal: _compare("greater_equal"),
    np.equal: _compare("equal"), np.not_equal: _compare("not_equal"),
    np.logical_and: _compare("logical_and"), np.logical_or: _compare("logical_or"),
    np.logical_xor: _compare("logical_xor"), np.logical_not: _compare("logical_not"),
    np.isfinite: _compare("isfinite"), np.floor: _compare("floor"),
    _traced._assign_like: _assign_like, _traced._copy: lambda low, s: low.alias(
        s.outputs[0], s.inputs[0]),
    _traced._setitem: _setitem,
    _tracer._identity: _identity,
}
