"""The rest of ``numpy.linalg`` that differentiates, composed from registered ops:
``matrix_power``, ``multi_dot``, ``lstsq``, ``cond``, ``tensorinv``, ``tensorsolve``."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy

from .. import primitives as ops
from ..errors import DTypeError, LinAlgError, ShapeError
from ._linalg_norms import as_array, norm
from ._wrap import no_out, plain
from ..typing import array_function

__all__ = ["matrix_power", "multi_dot", "lstsq", "cond", "tensorinv", "tensorsolve"]


def _shape(x: Any) -> tuple:
    return tuple(numpy.shape(plain(x)))


@array_function
def matrix_power(a: Any, n: int) -> Any:
    """``a`` multiplied by itself ``n`` times (``n < 0``: powers of ``inv(a)``; 0: the
    identity), as ``numpy.linalg.matrix_power``, by repeated squaring.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.linalg.matrix_power(np.array([[1.0, 1.0], [0.0, 1.0]]), 3)
    array([[1., 3.],
           [0., 1.]])
    >>> fg.grad(lambda x: fnp.linalg.matrix_power(x, -1)[0, 0])(np.array([[2.0]]))
    array([[-0.25]])
    """
    try:
        n = operator.index(n)
    except TypeError:
        raise DTypeError(f"matrix_power: the exponent must be an integer, got {n!r}") from None
    a = as_array(a)
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(f"matrix_power: a must be square (..., M, M), got shape {shape}")
    if n == 0:  # the identity, connected to a with a zero gradient
        dtype = numpy.result_type(plain(a))
        eye = numpy.broadcast_to(numpy.eye(shape[-1], dtype=dtype), shape)
        return ops.where(numpy.zeros(shape, dtype=bool), a, eye)
    base = ops.inv(a) if n < 0 else a
    k, result = abs(n), None
    while True:  # powers of one matrix commute: multiply in the squares for the set bits
        if k & 1:
            result = base if result is None else ops.matmul(result, base)
        k >>= 1
        if not k:
            return result
        base = ops.matmul(base, base)


def multi_dot(arrays: Any, *, out: Any = None) -> Any:
    """The product of a chain of matrices in the cheapest order, as
    ``numpy.linalg.multi_dot``: the first array may be a 1-D row vector, the last a 1-D
    column vector, the others are 2-D.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.multi_dot([np.ones(2), np.eye(2), np.ones((2, 3)), np.ones(3)])
    np.float64(6.0)
    """
    no_out("multi_dot", out)
    arrays = [as_array(x) for x in arrays]
    if len(arrays) < 2:
        raise ShapeError(f"multi_dot: expects at least two arrays, got {len(arrays)}")
    row, col = len(_shape(arrays[0])) == 1, len(_shape(arrays[-1])) == 1
    if row:
        arrays[0] = ops.reshape(arrays[0], shape=(1, -1))
    if col:
        arrays[-1] = ops.reshape(arrays[-1], shape=(-1, 1))
    for i, x in enumerate(arrays):
        if len(_shape(x)) != 2:
            raise ShapeError(f"multi_dot: array {i} has shape {_shape(x)}; all must be 2-D "
                             "(the first and last may be 1-D)")
    dims = [_shape(x)[0] for x in arrays] + [_shape(arrays[-1])[1]]
    result = _product(arrays, _cheapest_splits(dims), 0, len(arrays) - 1)
    if row and col:
        return ops.getitem(result, index=(0, 0))
    return ops.reshape(result, shape=(-1,)) if row or col else result


def _cheapest_splits(dims: list) -> list:
    """Matrix-chain order: ``split[i][j]`` is where to split the product of matrices i..j
    (matrix i is ``dims[i] x dims[i + 1]``) to need the fewest multiplications."""
    n = len(dims) - 1
    cost: list[list[float]] = [[0.0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _product(arrays: list, split: list, i: int, j: int) -> Any:
    if i == j:
        return arrays[i]
    k = split[i][j]
    return ops.matmul(_product(arrays, split, i, k), _product(arrays, split, k + 1, j))


def lstsq(a: Any, b: Any, rcond: Any = None) -> tuple:
    """The least-squares solution of ``a @ x = b``, as ``numpy.linalg.lstsq``: the tuple
    ``(x, residuals, rank, s)``, with ``x = pinv(a) @ b`` (the minimum-norm solution).

    Differentiable (``x``, ``residuals`` and the singular values ``s``) where ``a`` has full
    rank; ``residuals`` holds the squared residual norms when ``a`` is tall and of full rank,
    else it is empty.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> x, res, rank, s = fnp.linalg.lstsq(np.array([[1.0], [1.0]]), np.array([1.0, 3.0]))
    >>> x, res, int(rank)
    (array([2.]), array([2.]), 1)
    """
    a, b = as_array(a), as_array(b)
    sa, sb = _shape(a), _shape(b)
    if len(sa) != 2 or len(sb) not in (1, 2) or sb[0] != sa[0]:
        raise LinAlgError(f"lstsq: a must be 2-D (M, N) and b of shape (M,) or (M, K) with the "
                          f"same M, got shapes {sa} and {sb}")
    m, n = sa
    x = ops.matmul(ops.pinv(a) if rcond is None else ops.pinv(a, rtol=plain(rcond)), b)
    s = ops.svd(a)[1]
    s_data = numpy.asarray(plain(s))
    tol = numpy.finfo(s_data.dtype).eps * max(m, n) if rcond is None else plain(rcond)
    rank = numpy.int32(numpy.sum(s_data > tol * s_data[0])) if s_data.size else numpy.int32(0)
    if rank == n and m > n:
        r = b - ops.matmul(a, x)
        residuals = ops.sum(r * r, axis=0)
        if len(sb) == 1:
            residuals = ops.reshape(residuals, shape=(1,))
    else:
        residuals = numpy.empty((0,), dtype=s_data.dtype)
    return x, residuals, rank, s


@array_function
def cond(x: Any, p: Any = None) -> Any:
    """The condition number of a matrix (or each of a stack) in norm ``p``, as
    ``numpy.linalg.cond``: the ratio of extreme singular values for ``p`` in (None, 2, -2),
    else ``norm(x, p) * norm(inv(x), p)``. Infinite for a singular matrix (which has no
    gradient: it raises if ``x`` requires one).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.linalg.cond(np.diag([1.0, 4.0])))
    4.0
    """
    x = as_array(x)
    shape = _shape(x)
    if len(shape) < 2 or 0 in shape[-2:]:
        raise LinAlgError(f"cond: needs non-empty matrices (..., M, N), got shape {shape}")
    if p is None or p == 2 or p == -2:
        s = ops.svd(x)[1]
        big, small = s[..., 0], s[..., -1]
        with numpy.errstate(divide="ignore", invalid="ignore"):
            return small / big if p == -2 else big / small
    try:
        inverse = ops.inv(x)
    except LinAlgError:
        if getattr(x, "requires_grad", False):
            raise
        return numpy.linalg.cond(plain(x), p)
    return norm(x, p, axis=(-2, -1)) * norm(inverse, p, axis=(-2, -1))


@array_function
def tensorinv(a: Any, ind: int = 2) -> Any:
    """The inverse of ``a`` for ``tensordot`` over its first ``ind`` axes, as
    ``numpy.linalg.tensorinv``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.tensorinv(2.0 * np.eye(4).reshape(4, 2, 2), ind=1).shape
    (2, 2, 4)
    """
    a = as_array(a)
    shape = _shape(a)
    if ind <= 0:
        raise ShapeError(f"tensorinv: ind must be a positive integer, got {ind!r}")
    rows = math.prod(shape[ind:])
    inverse = ops.inv(ops.reshape(a, shape=(rows, -1)))
    return ops.reshape(inverse, shape=shape[ind:] + shape[:ind])


def tensorsolve(a: Any, b: Any, axes: Any = None) -> Any:
    """The ``x`` with ``tensordot(a, x, axes=x.ndim) == b``, as ``numpy.linalg.tensorsolve``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.tensorsolve(np.eye(6).reshape(2, 3, 6), np.ones((2, 3))).shape
    (6,)
    """
    a, b = as_array(a), as_array(b)
    nd = len(_shape(a))
    if axes is not None:
        order = [k for k in range(nd) if k not in [ax % nd for ax in axes]]
        a = ops.transpose(a, axes=tuple(order) + tuple(ax % nd for ax in axes))
    sa, nb = _shape(a), len(_shape(b))
    unknown = sa[nb:]
    size = math.prod(unknown)
    if math.prod(sa) != size * size:
        raise LinAlgError(f"tensorsolve: a of shape {sa} must satisfy prod(a.shape[b.ndim:]) "
                          f"== prod(a.shape[:b.ndim]) for b with {nb} dimensions")
    x = ops.solve(ops.reshape(a, shape=(size, size)), ops.reshape(b, shape=(-1,)))
    return ops.reshape(x, shape=unknown)
