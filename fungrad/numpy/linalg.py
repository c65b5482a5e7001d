"""``numpy.linalg``, differentiable: ``fungrad.numpy.linalg`` (``fnp.linalg``).

Each function has NumPy's name, signature and result type (``SlogdetResult``, ``EighResult``,
``SVDResult``, ``QRResult`` hold Tensors when given Tensors) and runs registered ops, so it
differentiates to any order; ``np.linalg.det(t)`` on a Tensor dispatches here too. Stacks of
matrices ``(..., M, N)`` work wherever NumPy allows them. A singular or non-positive-definite
matrix raises :class:`fungrad.errors.LinAlgError`, which names the op and is also NumPy's
``LinAlgError`` (re-exported here). Complex matrices work throughout, with fungrad's complex
convention (see the README). Names not defined here are NumPy's own, which refuse Tensors that
require grad rather than drop their gradient.

>>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
>>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
>>> fg.grad(lambda m: fnp.linalg.slogdet(m).logabsdet)(a)  # inv(a).T
array([[ 0.6, -0.2],
       [-0.2,  0.4]])
"""

from __future__ import annotations

import operator
from typing import Any

import numpy
from numpy.linalg import LinAlgError

from .. import primitives as ops
from ..errors import ShapeError
from ..primitives.linalg import swap_last
from ..recording import is_grad_enabled
from ..tensor import Tensor
from ._linalg_extra import (
    cond, lstsq, matrix_power, multi_dot, tensorinv, tensorsolve,
)
from . import _products, _selection
from ._linalg_norms import as_array, matrix_norm, norm, vector_norm
from ._wrap import NoValue, implements, nondiff, plain
from ..typing import array_function

try:  # NumPy >= 2.0 returns these named tuples
    from numpy.linalg._linalg import EigResult, EighResult, QRResult, SlogdetResult, SVDResult
except ImportError:  # pragma: no cover
    from collections import namedtuple

    EigResult = namedtuple("EigResult", "eigenvalues eigenvectors")  # type: ignore[no-redef]
    EighResult = namedtuple("EighResult", "eigenvalues eigenvectors")  # type: ignore[no-redef]
    QRResult = namedtuple("QRResult", "Q R")  # type: ignore[no-redef]
    SlogdetResult = namedtuple("SlogdetResult", "sign logabsdet")  # type: ignore[no-redef]
    SVDResult = namedtuple("SVDResult", "U S Vh")  # type: ignore[no-redef]

__all__ = [
    "LinAlgError", "inv", "det", "slogdet", "solve", "cholesky", "eigh", "eigvalsh", "eig",
    "eigvals", "svd",
    "svdvals", "pinv", "qr", "matrix_power", "lstsq", "norm", "matrix_norm", "vector_norm",
    "multi_dot", "cond", "tensorinv", "tensorsolve", "matmul", "matrix_transpose", "vecdot",
    "trace", "diagonal", "outer", "cross", "tensordot",
]

nondiff(numpy.linalg.matrix_rank)  # an integer: no gradient


@array_function
@implements(numpy.linalg.inv)
def inv(a: Any) -> Any:
    """The inverse of a square matrix (or each of a stack), as ``numpy.linalg.inv``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.inv(np.array([[2.0, 0.0], [0.0, 4.0]]))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    return ops.inv(a)


@array_function
@implements(numpy.linalg.det)
def det(a: Any) -> Any:
    """The determinant of a square matrix (or each of a stack), as ``numpy.linalg.det``.

    Its gradient is ``det(a) * inv(a).T``; at a singular matrix it raises.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(fnp.linalg.det)(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[ 4., -3.],
           [-2.,  1.]])
    """
    return ops.det(a)


@implements(numpy.linalg.slogdet)
def slogdet(a: Any) -> SlogdetResult:
    """``SlogdetResult(sign, logabsdet)`` of the determinant, as ``numpy.linalg.slogdet``;
    stable where ``det`` over- or underflows. The sign has no gradient.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> sign, logabsdet = fnp.linalg.slogdet(np.diag([-2.0, 3.0]))
    >>> float(sign), round(float(logabsdet), 4)
    (-1.0, 1.7918)
    """
    return SlogdetResult(*ops.slogdet(a))


@implements(numpy.linalg.solve)
def solve(a: Any, b: Any) -> Any:
    """The solution ``x`` of ``a @ x = b``, as ``numpy.linalg.solve``: ``b`` of shape
    ``(M,)`` or ``(..., M, K)``, stacks broadcasting. Its gradient solves with ``a.T``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([1.0, 1.0]))
    array([0.5 , 0.25])
    """
    return ops.solve(a, b)


@array_function
@implements(numpy.linalg.cholesky)
def cholesky(a: Any, /, *, upper: bool = False) -> Any:
    """The Cholesky factor of a symmetric positive definite matrix, as
    ``numpy.linalg.cholesky``: lower ``L`` with ``a = L @ L.T`` (``upper=True``: ``L.T``).
    Only that triangle of ``a`` is read, and differentiated.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]))
    array([[2., 0.],
           [1., 1.]])
    """
    return ops.cholesky(a, upper=bool(upper))


@implements(numpy.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> EighResult:  # noqa: N803 (NumPy's name)
    """``EighResult(eigenvalues, eigenvectors)`` of a symmetric matrix, as
    ``numpy.linalg.eigh`` (ascending; only the ``UPLO`` triangle is read). The eigenvectors'
    gradient needs distinct eigenvalues; that of the eigenvalues alone does not.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda m: fnp.linalg.eigh(m).eigenvalues[-1])(np.diag([1.0, 2.0]))
    array([[0., 0.],
           [0., 1.]])
    """
    return EighResult(*ops.eigh(a, UPLO=UPLO))


@array_function
@implements(numpy.linalg.eigvalsh)
def eigvalsh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    """The eigenvalues (ascending) of a symmetric matrix, as ``numpy.linalg.eigvalsh``;
    differentiable also where eigenvalues repeat.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.eigvalsh(np.array([[2.0, 1.0], [1.0, 2.0]]))
    array([1., 3.])
    """
    return ops.eigh(a, UPLO=UPLO)[0]


@implements(numpy.linalg.eig)
def eig(a: Any) -> EigResult:
    """``EigResult(eigenvalues, eigenvectors)`` of a square matrix, as ``numpy.linalg.eig``
    (complex unless every eigenvalue is real; eigenvectors in columns of unit norm). The
    eigenvectors are defined up to a phase each: differentiate functions of them that do not
    depend on it (``abs(v)``); their gradient needs distinct eigenvalues.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.linalg.eig(np.array([[2.0, 1.0], [0.0, 3.0]])).eigenvalues
    array([2., 3.])
    >>> fg.grad(lambda m: fnp.sum(fnp.abs(fnp.linalg.eig(m).eigenvalues)))(
    ...     np.array([[0.0, -1.0], [1.0, 0.0]]))  # |w| = sqrt(|bc|) for w = +-i
    array([[ 0., -1.],
           [ 1.,  0.]])
    """
    return EigResult(*ops.eig(a))


@array_function
@implements(numpy.linalg.eigvals)
def eigvals(a: Any) -> Any:
    """The eigenvalues of a square matrix, as ``numpy.linalg.eigvals``; differentiable also
    where eigenvalues repeat.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.eigvals(np.array([[0.0, -1.0], [1.0, 0.0]]))
    array([0.+1.j, 0.-1.j])
    """
    return ops.eig(a)[0]


@implements(numpy.linalg.svd)
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    """``SVDResult(U, S, Vh)`` with ``a = U @ diag(S) @ Vh``, or ``S`` alone with
    ``compute_uv=False``, as ``numpy.linalg.svd``.

    The singular vectors' gradient needs distinct nonzero singular values; that of ``S``
    alone does not. With ``full_matrices=True`` (NumPy's default) a non-square matrix gets
    extra columns of ``U`` (or rows of ``Vh``) that are an arbitrary basis: differentiating
    through them raises (use ``full_matrices=False``). ``hermitian`` is accepted and ignored:
    the result is that of the general algorithm.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.svd(np.array([[3.0, 0.0], [0.0, -4.0]]), compute_uv=False)
    array([4., 3.])
    """
    if not compute_uv:
        return ops.svd(a)[1]
    return SVDResult(*ops.svd(a, full_matrices=bool(full_matrices)))


@array_function
@implements(numpy.linalg.svdvals)
def svdvals(x: Any, /) -> Any:
    """The singular values (descending), as ``numpy.linalg.svdvals``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.svdvals(np.array([[0.0, 2.0], [1.0, 0.0]]))
    array([2., 1.])
    """
    return ops.svd(x)[1]


@array_function
@implements(numpy.linalg.pinv)
def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = NoValue) -> Any:
    """The Moore-Penrose pseudo-inverse, as ``numpy.linalg.pinv``: singular values below
    ``rcond`` (or ``rtol``) times the largest are dropped. Differentiable where ``a`` has full
    rank; ``hermitian`` is accepted and ignored.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.pinv(np.array([[1.0], [1.0]]))
    array([[0.5, 0.5]])
    """
    if rcond is not None and rtol is not NoValue:
        raise TypeError("pinv: give rcond or rtol, not both")
    tol = rtol if rtol is not NoValue else rcond
    if tol is None:
        return ops.pinv(a)
    return ops.pinv(a, rtol=plain(tol))


@implements(numpy.linalg.qr)
def qr(a: Any, mode: str = "reduced") -> Any:
    """``QRResult(Q, R)``, as ``numpy.linalg.qr``: ``mode='reduced'`` (the default) and
    ``'r'`` (``R`` alone) differentiate where the leading square block of ``a`` has full rank;
    ``'complete'`` too for ``M <= N`` (where it is the same). A tall matrix's ``'complete'``
    ``Q`` has extra columns that are an arbitrary basis, and ``'raw'`` is LAPACK's internal
    form: those run NumPy's on values that need no gradient, and refuse those that do.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> q, r = fnp.linalg.qr(np.array([[3.0, 1.0], [4.0, 2.0]]))
    >>> np.allclose(q @ r, [[3.0, 1.0], [4.0, 2.0]])
    True
    """
    if mode not in ("reduced", "complete", "r", "raw"):
        raise ShapeError(f"qr: unknown mode {mode!r} (use 'reduced', 'complete', 'r' or 'raw')")
    shape = numpy.shape(plain(a))
    if mode == "raw" or (mode == "complete" and len(shape) >= 2 and shape[-2] > shape[-1]):
        if _needs_grad(a):
            raise ShapeError(
                f"qr: mode={mode!r} for a matrix of shape {shape} has no derivative ('raw' is "
                "LAPACK's internal form; a tall matrix's 'complete' Q adds an arbitrary basis); "
                "use mode='reduced', or pass a.detach() if no gradient is needed")
        result = numpy.linalg.qr(plain(a), mode=mode)  # type: ignore[call-overload]
        if not isinstance(a, Tensor):
            return result
        tensors = [Tensor(x) for x in result]
        return QRResult(*tensors) if isinstance(result, QRResult) else tuple(tensors)  # type: ignore[arg-type]
    q, r = ops.qr(a)
    return r if mode == "r" else QRResult(q, r)


def _needs_grad(x: Any) -> bool:
    return isinstance(x, Tensor) and x.requires_grad and is_grad_enabled()


# -- NumPy 2's array-API spellings ----------------------------------------------------------------


@implements(numpy.linalg.matmul)
def matmul(x1: Any, x2: Any, /) -> Any:
    """The matrix product, as ``numpy.linalg.matmul``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.matmul(np.eye(2), np.array([1.0, 2.0]))
    array([1., 2.])
    """
    return ops.matmul(x1, x2)


@array_function
@implements(numpy.linalg.matrix_transpose)
def matrix_transpose(x: Any, /) -> Any:
    """The last two axes swapped, as ``numpy.linalg.matrix_transpose``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.matrix_transpose(np.arange(6.0).reshape(1, 2, 3)).shape
    (1, 3, 2)
    """
    x = as_array(x)
    if numpy.ndim(plain(x)) < 2:
        raise ShapeError(f"matrix_transpose: needs at least 2 dimensions, got shape "
                         f"{numpy.shape(plain(x))}")
    return swap_last(x)


@implements(numpy.linalg.vecdot)
def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """The dot product of vectors along ``axis`` (broadcasting), the first conjugated if
    complex, as ``numpy.linalg.vecdot``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.vecdot(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0]))
    array([3., 7.])
    """
    if numpy.iscomplexobj(plain(x1)):
        x1 = ops.conj(x1)
    return ops.sum(ops.multiply(x1, x2), axis=operator.index(axis))


@array_function
@implements(numpy.linalg.trace)
def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """The sum of the diagonal of the last two axes, as ``numpy.linalg.trace`` (through
    ``fungrad.numpy.trace``).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.linalg.trace(np.eye(3)))
    3.0
    """
    return _selection.trace(x, offset=offset, axis1=-2, axis2=-1, dtype=dtype)


@array_function
@implements(numpy.linalg.diagonal)
def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """The diagonal of the last two axes, as ``numpy.linalg.diagonal`` (through
    ``fungrad.numpy.diagonal``).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.diagonal(np.eye(2))
    array([1., 1.])
    """
    return _selection.diagonal(x, offset=offset, axis1=-2, axis2=-1)


@implements(numpy.linalg.outer)
def outer(x1: Any, x2: Any, /) -> Any:
    """The outer product of two vectors, as ``numpy.linalg.outer`` (through
    ``fungrad.numpy.outer``).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.outer(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    array([[1., 0.],
           [2., 0.]])
    """
    for x in (x1, x2):
        if numpy.ndim(plain(x)) != 1:
            raise ShapeError(f"outer: expects 1-D vectors, got shape {numpy.shape(plain(x))} "
                             "(numpy.outer flattens; numpy.linalg.outer does not)")
    return _products.outer(x1, x2)


@implements(numpy.linalg.cross)
def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """The cross product of 3-vectors along ``axis``, as ``numpy.linalg.cross`` (through
    ``fungrad.numpy.cross``).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.cross(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    array([0., 0., 1.])
    """
    for x in (x1, x2):
        shape = numpy.shape(plain(x))
        if not shape or shape[axis] != 3:
            raise ShapeError(f"cross: numpy.linalg.cross needs 3-vectors along axis {axis}, "
                             f"got shape {shape}")
    return _products.cross(x1, x2, axis=axis)


@implements(numpy.linalg.tensordot)
def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    """Sum products over ``axes``, as ``numpy.linalg.tensordot`` (through
    ``fungrad.numpy.tensordot``).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.linalg.tensordot(np.eye(2), np.eye(2)))
    2.0
    """
    return _products.tensordot(x1, x2, axes=axes)


for _f, _np_f in [(matrix_power, numpy.linalg.matrix_power), (lstsq, numpy.linalg.lstsq),
                  (norm, numpy.linalg.norm), (matrix_norm, numpy.linalg.matrix_norm),
                  (vector_norm, numpy.linalg.vector_norm), (multi_dot, numpy.linalg.multi_dot),
                  (cond, numpy.linalg.cond), (tensorinv, numpy.linalg.tensorinv),
                  (tensorsolve, numpy.linalg.tensorsolve)]:
    implements(_np_f)(_f)  # type: ignore[arg-type, type-var]
del _f, _np_f


def __getattr__(name: str):
    # what fungrad does not define is numpy.linalg's own
    try:
        return getattr(numpy.linalg, name)
    except AttributeError:
        raise AttributeError(f"module 'fungrad.numpy.linalg' (and numpy.linalg) has no "
                             f"attribute {name!r}") from None


def __dir__() -> list[str]:
    # what tab completion should offer: our functions and numpy.linalg's, not our helpers
    return sorted(set(__all__) | {n for n in dir(numpy.linalg) if not n.startswith("_")})
