"""Helpers shared by the linear-algebra ops: input checks, LAPACK failures that name the op,
and constant matrices (identities, triangle weights) in the dtype of the values they meet.

Constants are made in the dtype of the arrays they multiply: a float64 identity would turn a
float32 gradient into a float64 one.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import DTypeError, LinAlgError, ShapeError
from ..registry import unwrap
from .elementwise import conj, is_complex
from .linalg import swap_last

__all__ = ["float_dtype", "require_matrices", "lapack", "eye", "triangle_weights",
           "matrix_dims", "mH", "hermitian_part"]


def float_dtype(x: Any) -> np.dtype:
    """The floating dtype of ``x``'s values (float64 for integers and booleans, the precision
    of the parts for complex values)."""
    dt = np.result_type(unwrap(x))
    if dt.kind == "c":
        return np.finfo(dt).dtype
    return dt if dt.kind == "f" else np.dtype(np.float64)


def matrix_dims(x: Any) -> tuple[int, int]:
    """``(m, n)``: the sizes of the last two axes of an ndarray or Tensor."""
    shape = np.shape(unwrap(x))
    return int(shape[-2]), int(shape[-1])


def require_matrices(op: str, a: Any, *, square: bool = True, name: str = "a") -> np.ndarray:
    """``a`` as an ndarray of real or complex matrices ``(..., M, N)`` (square if asked), or
    an error naming the op, what it got and what it expects."""
    a = np.asarray(a)
    if a.dtype.kind not in "biufc":
        raise DTypeError(f"{op}: {name} must hold numbers, got dtype {a.dtype}")
    if a.ndim < 2:
        raise ShapeError(f"{op}: {name} must be a matrix or a stack of matrices (..., M, N), "
                         f"got shape {a.shape}")
    if square and a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{op}: {name} must be square (..., M, M), got shape {a.shape}")
    return a


def lapack(op: str, fn: Callable, *arrays: np.ndarray, problem: str, fix: str) -> Any:
    """``fn(*arrays)``, with NumPy's LinAlgError turned into fungrad's, naming the op.

    The error is also a ``numpy.linalg.LinAlgError``, so code catching NumPy's keeps working.
    """
    try:
        return fn(*arrays)
    except np.linalg.LinAlgError as e:
        shapes = " and ".join(str(np.shape(a)) for a in arrays)
        raise LinAlgError(f"{op}: {problem} (NumPy: {e}; shape {shapes}, dtype "
                          f"{np.result_type(*arrays)}). {fix}") from None


def eye(n: int, dtype: np.dtype) -> np.ndarray:
    """The ``n`` x ``n`` identity in ``dtype``."""
    return np.eye(n, dtype=dtype)


def triangle_weights(n: int, dtype: np.dtype, *, lower: bool, diagonal: float,
                     inside: float, outside: float = 0.0) -> np.ndarray:
    """An ``n`` x ``n`` array: ``inside`` strictly within the lower (or upper) triangle,
    ``diagonal`` on the diagonal, ``outside`` elsewhere. Multiplying by it selects, halves or
    doubles parts of a matrix with an op that is itself differentiable."""
    i, j = np.indices((n, n))
    within = i > j if lower else i < j
    w = np.where(within, inside, outside)
    w[i == j] = diagonal
    return w.astype(dtype)


def mH(x: Any) -> Any:
    """The conjugate transpose of (a stack of) matrices; for real ones, the transpose."""
    return conj(swap_last(x)) if is_complex(x) else swap_last(x)


def hermitian_part(x: Any) -> Any:
    """``(x + xᴴ) / 2``: the symmetric part of a real matrix, the Hermitian part of a complex
    one. A cotangent of a Hermitian (symmetric) matrix is defined up to its anti-Hermitian
    part, which pairs with no Hermitian change."""
    return (x + mH(x)) * 0.5
