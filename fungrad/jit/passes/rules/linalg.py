"""Lowering rules of reductions and products: sums, means, maxima and minima over adjacent
axes, ``sum_to`` (a broadcast's gradient), matmul and the affine map."""

from __future__ import annotations

import numpy as np

from ....primitives.shape import normalize_axes
from ...backend.native import gemm_addresses
from ...ir import FLOATS, Unsupported, View, c_strides
from ...program import Step, Var
from ..lowering import MATMUL_BLAS_MIN, Lowering, registered, rule

__all__: list[str] = []


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
    if not a.shape or len(b.shape) not in (1, 2) or out.dtype not in FLOATS:
        raise Unsupported("matmul of other ranks")
    if a.dtype != out.dtype or b.dtype != out.dtype:
        raise Unsupported("mixed dtypes")
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


for _kind in ("sum", "mean", "max", "min"):
    rule(registered(_kind))(_reduce(_kind))
rule(registered("sum_to"))(_sum_to)
rule(registered("matmul"), registered("mm"))(_matmul)
rule(registered("affine"))(_affine)
