"""Lowering rules of reductions and products: sums, means, maxima and minima over any axes
(a block per run of adjacent ones), variance, standard deviation, logsumexp, softmax over
any axes, the L2 norm and the mean squared error composed of them, ``sum_to`` (a broadcast's gradient), matmul and the affine map."""

from __future__ import annotations

import numpy as np

from ....primitives.shape import normalize_axes
from ...backend.native import gemm_addresses
from ...ir import FLOATS, Unsupported, View, c_strides
from ...program import Step, Var
from ..lowering import MATMUL_BLAS_MIN, Lowering, registered, rule

__all__: list[str] = []


def _reduce(low: Lowering, step: Step) -> None:
    """``sum``, ``mean``, ``max`` and ``min`` (the op's name is the block's kind)."""
    x, out, axes, _ = _reduce_input(low, step)
    _reduce_axes(low, step.op.name, x, out, axes)


def _reduce_axes(low: Lowering, kind: str, x: Var, out: Var, axes: tuple) -> None:
    """``out`` = the reduction ``kind`` of ``x`` over the sorted ``axes``, one block per run of
    adjacent axes (``out`` has the reduced elements in order: any shape of that size)."""
    if not axes:
        low.ew("copy", (x,), out, out.dtype)
        return
    start = max(i for i, a in enumerate(axes) if i == 0 or a != axes[i - 1] + 1)
    if start:  # not adjacent: the last run first; the axes before it keep their numbers
        last = axes[start:]
        part = low.new_var(tuple(n for i, n in enumerate(x.shape) if i not in last), out.dtype)
        _reduce_axes(low, kind, x, part, last)
        _reduce_axes(low, kind, part, out, axes[:start])
        return
    x = low.contiguous_copy(x)
    shape = x.shape
    A = int(np.prod(shape[:axes[0]], dtype=np.int64))
    R = int(np.prod(shape[axes[0]:axes[-1] + 1], dtype=np.int64))
    C = int(np.prod(shape[axes[-1] + 1:], dtype=np.int64))
    scale = 1.0 / R if kind == "mean" else None
    low.block("reduce", (x,), out, out.dtype, kind=kind, A=A, R=R, C=C, scale=scale)


def _reduce_input(low: Lowering, step: Step) -> tuple[Var, Var, tuple, tuple]:
    """``(x, out, axes, kept shape)`` of a float reduction step the rules below compose."""
    x, out = step.inputs[0], step.outputs[0]
    if (type(x) is not Var or not low.is_array(x) or out.dtype not in FLOATS
            or x.dtype != out.dtype or x.size == 0):
        raise Unsupported(f"{step.op.name} input")
    axes = normalize_axes(step.op.name, step.params.get("axis"), len(x.shape))
    return x, out, axes, tuple(1 if i in axes else n for i, n in enumerate(x.shape))


def _moment(low: Lowering, step: Step) -> None:
    """``var`` and ``std`` as numpy computes them: the mean, the squared deviations' sum,
    divided by ``max(n - ddof, 0)``; the square root for std."""
    x, out, axes, kept = _reduce_input(low, step)
    dt = out.dtype
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    dof = float(max(n - step.params.get("ddof", 0), 0))
    mean, dev, sq, total = (low.new_var(kept, dt), low.new_var(x.shape, dt),
                            low.new_var(x.shape, dt), low.new_var(out.shape, dt))
    _reduce_axes(low, "mean", x, mean, axes)
    low.ew("subtract", (x, mean), dev, dt)
    low.ew("multiply", (dev, dev), sq, dt)
    _reduce_axes(low, "sum", sq, total, axes)
    if step.op.name == "var":
        low.ew("divide", (total, dof), out, dt)
        return
    var = low.new_var(out.shape, dt)
    low.ew("divide", (total, dof), var, dt)
    low.ew("sqrt", (var,), out, dt)


def _l2norm(low: Lowering, step: Step) -> None:
    """``sqrt(sum(x * x))`` over the axes, as the op's eager form (real x)."""
    x, out, axes, _ = _reduce_input(low, step)
    square, total = low.new_var(x.shape, out.dtype), low.new_var(out.shape, out.dtype)
    low.ew("multiply", (x, x), square, out.dtype)
    _reduce_axes(low, "sum", square, total, axes)
    low.ew("sqrt", (total,), out, out.dtype)


def _mse(low: Lowering, step: Step) -> None:
    """``mean((pred - target) ** 2)`` over every element (of the broadcast shape)."""
    pred, target = (low.arg(a) for a in step.inputs)
    out = step.outputs[0]
    shape = np.broadcast_shapes(*(a.shape for a in (pred, target) if type(a) is Var))
    if out.dtype not in FLOATS or not all(n > 0 for n in shape):
        raise Unsupported("mse input")
    diff, square = low.new_var(shape, out.dtype), low.new_var(shape, out.dtype)
    low.ew("subtract", (pred, target), diff, out.dtype)
    low.ew("multiply", (diff, diff), square, out.dtype)
    _reduce_axes(low, "mean", square, out, tuple(range(len(shape))))


def _shifted_exp(low: Lowering, x: Var, axes: tuple, kept: tuple, finite: bool) -> tuple:
    """``(m, z, exp(z), sum(exp(z)))`` for ``z = x - m``, ``m`` the maximum over ``axes``
    (kept: shape ``kept``; 0 where not finite if ``finite``, as logsumexp and log_softmax
    shift; softmax's is the plain maximum). The sum has the kept shape too."""
    dt = x.dtype
    top, z, e, total = (low.new_var(kept, dt), low.new_var(x.shape, dt),
                        low.new_var(x.shape, dt), low.new_var(kept, dt))
    _reduce_axes(low, "max", x, top, axes)
    m = top
    if finite:
        is_finite, m = low.new_var(kept, np.dtype(bool)), low.new_var(kept, dt)
        low.ew("isfinite", (top,), is_finite, dt)
        low.ew("where", (is_finite, top, 0.0), m, dt)
    low.ew("subtract", (x, m), z, dt)
    low.ew("exp", (z,), e, dt)
    _reduce_axes(low, "sum", e, total, axes)
    return m, z, e, total


def _logsumexp(low: Lowering, step: Step) -> None:
    """``log(sum(exp(x - m))) + m`` for ``m`` the maximum (0 where it is not finite), as the
    op's eager form."""
    x, out, axes, kept = _reduce_input(low, step)
    m, _, _, total = _shifted_exp(low, x, axes, kept, finite=True)
    log = low.new_var(kept, out.dtype)
    low.ew("log", (total,), log, out.dtype)
    if out.shape != kept:  # without keepdims: the same elements, in order, in out's shape
        log, m = (_reshaped(low, v, out.shape) for v in (log, m))
    low.ew("add", (log, m), out, out.dtype)


def _reshaped(low: Lowering, v: Var, shape: tuple) -> Var:
    """A view of the C-contiguous ``v`` in another ``shape`` of its size."""
    view = low.new_var(shape, v.dtype)
    low.make_view(view, v, 0, c_strides(shape))
    return view


def softmax_over(low: Lowering, kind: str, x: Var, out: Var, axes: tuple) -> None:
    """``softmax`` (``e / sum(e)``) or ``log_softmax`` (``z - log(sum(exp(z)))``) over any
    ``axes``, composed as the ops' eager forms (the row kernel does the last axis)."""
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    dt = out.dtype
    _, z, e, total = _shifted_exp(low, x, axes, kept, finite=kind == "log_softmax")
    if kind == "softmax":
        low.ew("divide", (e, total), out, dt)
        return
    log = low.new_var(kept, dt)
    low.ew("log", (total,), log, dt)
    low.ew("subtract", (z, log), out, dt)


def _sum_to(low: Lowering, step: Step) -> None:
    x, out = step.inputs[0], step.outputs[0]
    if type(x) is not Var or not low.is_array(x) or out.dtype not in FLOATS:
        raise Unsupported("sum_to")
    shape = tuple(step.params["shape"])
    lead = len(x.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and x.shape[lead + i] != 1)
    _reduce_axes(low, "sum", x, out, axes)


def _cast(low: Lowering, v: Var, dtype) -> Var:
    """``v`` in ``dtype``: itself, or a copy cast as NumPy casts a mixed product's operand
    (``float32 @ float64`` multiplies in float64)."""
    if v.dtype == dtype:
        return v
    if v.dtype not in FLOATS:
        raise Unsupported(f"matmul of a {v.dtype} operand")
    cast = low.new_var(v.shape, dtype)
    low.ew("copy", (v,), cast, dtype)
    return cast


def _matmul(low: Lowering, step: Step) -> None:
    a, b = (low.arg(x) for x in step.inputs)
    out = step.outputs[0]
    if not (type(a) is Var and type(b) is Var and low.is_array(a) and low.is_array(b)):
        raise Unsupported("matmul operands")
    if not a.shape or len(b.shape) not in (1, 2) or out.dtype not in FLOATS:
        raise Unsupported("matmul of other ranks")
    a, b = _cast(low, a, out.dtype), _cast(low, b, out.dtype)
    if len(b.shape) == 1:  # (..., K) @ (K,): b as a (K, 1) column (an RNN's h @ w too)
        b = _as_matrix(low, b, b.shape[0], 1)
    M, K, N = _gemm_sizes(a, b)
    if len(a.shape) == 2 and out.shape == (M, N):
        low.block("matmul", (a, b), out, out.dtype, M=M, K=K, N=N)
        return
    product = low.new_var((M, N), out.dtype)  # (..., K) @ (K, N): one (M, K) @ (K, N)
    low.block("matmul", (_as_matrix(low, a, M, K), b), product, out.dtype, M=M, K=K, N=N)
    low.make_view(out, product, 0, c_strides(out.shape))


def _gemm_sizes(a: Var, b: Var) -> tuple[int, int, int]:
    """``(M, K, N)`` of ``a @ b`` with ``b`` a (K, N) matrix and ``a``'s rows flattened to M;
    Unsupported when empty, or too large for the loops with no BLAS to call."""
    K, N = b.shape
    M = a.size // K if K else 0
    if 0 in (M, K, N):
        raise Unsupported("empty")
    if M * K * N >= MATMUL_BLAS_MIN and not gemm_addresses()[0]:
        raise Unsupported("large, and no BLAS the runner can call: NumPy's matmul")
    return M, K, N


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
    M, K, N = _gemm_sizes(x, w)
    x2 = _as_matrix(low, x, M, K)
    acc = low.new_var((M, N), out.dtype)
    low.ew("copy", (b,), acc, out.dtype)
    product = low.new_var((M, N), out.dtype)
    low.block("matmul", (x2, w), product, out.dtype, M=M, K=K, N=N, acc=True, after=acc)
    low.storage[product.id] = View(acc.id, 0, (M, N), (N, 1))
    low.storage[out.id] = View(acc.id, 0, out.shape, c_strides(out.shape))


rule(*(registered(kind) for kind in ("sum", "mean", "max", "min")))(_reduce)
rule(registered("sum_to"))(_sum_to)
rule(registered("var"), registered("std"))(_moment)
rule(registered("logsumexp"))(_logsumexp)
rule(registered("l2norm"))(_l2norm)
rule(registered("mse"))(_mse)
rule(registered("matmul"), registered("mm"))(_matmul)
rule(registered("affine"))(_affine)
