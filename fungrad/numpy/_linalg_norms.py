"""``numpy.linalg.norm``, ``vector_norm`` and ``matrix_norm``, composed from registered ops.

The Euclidean and Frobenius norms are the op ``l2norm`` (gradient 0 at 0, not NaN); the
others are sums and extrema of absolute values, or of singular values (``'nuc'``, 2, -2).
General p-norms get a zero gradient at zero too (p > 1).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy

from .. import primitives as ops
from .._keywords import keepdim_alias
from ..errors import ShapeError
from ._shape import asarray
from ._wrap import plain
from ..typing import array_function

__all__ = ["norm", "vector_norm", "matrix_norm", "as_array"]


def as_array(x: Any) -> Any:
    """A list or tuple as one array (Tensors in it stacked, differentiably); else ``x``."""
    return asarray(x) if isinstance(x, (list, tuple)) else x


def _floating(x: Any) -> Any:
    """``x`` as an array of floats or complex numbers (integers and booleans cast to float64),
    as numpy.linalg.norm does; a complex array's norms are those of its moduli."""
    x = as_array(x)
    dt = numpy.result_type(plain(x))
    return x if dt.kind in "fc" else ops.astype(x, dtype="float64")


def _axes(axis: Any, nd: int) -> tuple:
    if isinstance(axis, tuple):
        items = axis
    else:
        try:
            items = (operator.index(axis),)
        except TypeError:
            raise TypeError("norm: 'axis' must be None, an integer or a tuple of integers, got "
                            f"{axis!r}") from None
    out = []
    for a in items:
        a = operator.index(a)
        if not -nd <= a < nd:
            raise ShapeError(f"norm: axis {a} is out of range for an array of {nd} dimensions")
        out.append(a % nd)
    return tuple(out)


@array_function
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A002
    """A vector or matrix norm, as ``numpy.linalg.norm`` (every ``ord`` NumPy has: ``None``,
    ``'fro'``, ``'nuc'``, ``inf``, ``-inf``, 0, 1, -1, 2, -2 and other numbers for vectors).

    ``axis`` is ``None`` (all of a 1-D or 2-D array, any array when ``ord`` is ``None``), an
    int (vector norms) or a pair (matrix norms). The gradient of the 2-norm at 0 is 0, as in
    PyTorch.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.linalg.norm(np.array([3.0, -4.0])), fnp.linalg.norm(np.array([3.0, -4.0]), ord=1)
    (np.float64(5.0), np.float64(7.0))
    >>> fg.grad(fnp.linalg.norm)(np.zeros(2))
    array([0., 0.])
    """
    x = _floating(x)
    nd = numpy.ndim(plain(x))
    keepdims = bool(keepdims)
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            return ops.l2norm(x, axis=None, keepdims=keepdims)
        if nd not in (1, 2):
            raise ShapeError(f"norm: ord={ord!r} needs a 1-D or 2-D array (or an axis), got "
                             f"{nd} dimensions")
        axis = tuple(range(nd))
    axes = _axes(axis, nd)
    if len(axes) == 1:
        return _vector(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise ShapeError(f"norm: duplicate axes {axis!r}")
        return _matrix(x, ord, axes, keepdims)
    raise ShapeError(f"norm: axis must name one axis (a vector norm) or two (a matrix norm), "
                     f"got {axis!r}")


def _vector(x: Any, ord: Any, axis: int, keepdims: bool) -> Any:  # noqa: A002
    kw = {"axis": axis, "keepdims": keepdims}
    if ord is None or ord == 2:
        return ops.l2norm(x, **kw)
    if isinstance(ord, str):
        raise ShapeError(f"norm: invalid norm order {ord!r} for vectors")
    if ord == math.inf:
        return ops.max(ops.abs(x), **kw)
    if ord == -math.inf:
        return ops.min(ops.abs(x), **kw)
    if ord == 0:  # how many are nonzero: piecewise constant, so a zero gradient
        return ops.sum(ops.sign(ops.abs(x)), **kw)
    if ord == 1:
        return ops.sum(ops.abs(x), **kw)
    p = float(ord)
    total = ops.sum(ops.abs(x) ** p, **kw)
    nonzero = plain(total) != 0  # power's gradient at 0 is infinite: keep it out of the graph
    return ops.where(nonzero, ops.where(nonzero, total, 1.0) ** (1.0 / p), 0.0)


def _matrix(x: Any, ord: Any, axes: tuple, keepdims: bool) -> Any:  # noqa: A002
    row, col = axes
    if ord in (None, "fro", "f"):
        out = ops.l2norm(x, axis=axes)
    elif ord in (2, -2, "nuc"):
        s = _singular_values(x, row, col)
        out = ops.sum(s, axis=-1) if ord == "nuc" else (ops.max if ord == 2 else ops.min)(
            s, axis=-1)
    elif ord in (1, -1, math.inf, -math.inf):
        # 1: the largest column sum of |x| (sum over rows); inf: the largest row sum
        summed, other = (row, col) if ord in (1, -1) else (col, row)
        sums = ops.sum(ops.abs(x), axis=summed)
        pick = ops.max if ord in (1, math.inf) else ops.min
        out = pick(sums, axis=other - (other > summed))
    else:
        raise ShapeError(f"norm: invalid norm order {ord!r} for matrices")
    if keepdims:
        shape = list(numpy.shape(plain(x)))
        shape[row] = shape[col] = 1
        out = ops.reshape(out, shape=tuple(shape))
    return out


def _singular_values(x: Any, row: int, col: int) -> Any:
    nd = numpy.ndim(plain(x))
    perm = tuple(i for i in range(nd) if i not in (row, col)) + (row, col)
    if perm != tuple(range(nd)):
        x = ops.transpose(x, axes=perm)
    return ops.svd(x)[1]


@array_function
def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False,
                ord: Any = 2) -> Any:  # noqa: A002
    """A vector norm over ``axis`` (all axes when ``None``, or a tuple of axes taken as one
    flattened vector), as ``numpy.linalg.vector_norm``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.vector_norm(np.ones((2, 3)), axis=(0, 1), ord=1)
    np.float64(6.0)
    """
    x = _floating(x)
    shape = numpy.shape(plain(x))
    nd = len(shape)
    axes = tuple(range(nd)) if axis is None else _axes(axis, nd)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"vector_norm: duplicate axes {axis!r}")
    if ord is None or ord == 2:
        return ops.l2norm(x, axis=axes, keepdims=bool(keepdims))
    rest = tuple(i for i in range(nd) if i not in axes)
    if axes + rest != tuple(range(nd)):
        x = ops.transpose(x, axes=axes + rest)
    flat = ops.reshape(x, shape=(-1,) + tuple(shape[i] for i in rest))
    out = norm(flat, ord=ord, axis=0)
    if keepdims:
        out = ops.reshape(out, shape=tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return out


@array_function
def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:  # noqa: A002
    """A matrix norm of the last two axes, as ``numpy.linalg.matrix_norm``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.linalg.matrix_norm(np.diag([3.0, 4.0]), ord="nuc")
    np.float64(7.0)
    """
    x = as_array(x)
    if numpy.ndim(plain(x)) < 2:
        raise ShapeError(f"matrix_norm: needs at least 2 dimensions, got shape "
                         f"{numpy.shape(plain(x))}")
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


# PyTorch's keepdim= too (fnp.linalg.norm(x, axis=1, keepdim=True))
norm = keepdim_alias(norm)
vector_norm = keepdim_alias(vector_norm)
matrix_norm = keepdim_alias(matrix_norm)
