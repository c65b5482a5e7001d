"""Selecting elements under NumPy's names: take, take_along_axis, select, sort, partition,
tril/triu, diag, diagonal, diagflat and trace.

Gathers run on ``index_select`` (whose VJP adds rows back with the scatter kernel), after
moving the gathered axis first (``take``) or flattening with linear indices
(``take_along_axis``); ``sort`` and ``partition`` gather the values along NumPy's
permutation, so their gradient goes through it. Triangles are ``where`` with a constant mask;
diagonals are the ``diagonal`` / ``diag_embed`` pair.
"""

from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy

from .. import primitives as ops
from ..errors import DTypeError, IndexRangeError, ShapeError
from ..primitives.shape import normalize_axes, shape_of
from ._shape import Array, _permuted, _reshaped, operand, ravel
from ._wrap import cast, data_of, implements, known_values, no_out, plain
from ..typing import array_function

__all__ = ["take", "take_along_axis", "select", "sort", "partition", "tril", "triu", "diag",
           "diagonal", "diagflat", "trace"]


def _indices(name: str, indices: Any) -> Any:
    """Integer ``indices`` as an array (batched under fg.vmap, traced under fg.jit)."""
    idx = data_of(indices)
    if idx.dtype.kind not in "iu":
        if idx.size == 0:  # [] is float64 to NumPy: an empty selection
            return numpy.zeros(idx.shape, dtype=numpy.intp)
        raise DTypeError(f"{name}: indices must be integers, got dtype {idx.dtype}")
    return idx


def _in_range(name: str, idx: Any, n: int, axis: int, mode: str = "raise") -> Any:
    """``idx`` as indices in ``0..n-1``: checked (``mode='raise'``), wrapped or clipped.

    Indices computed under fg.jit are not known when traced: they are wrapped, unchecked."""
    if mode == "wrap":
        return idx % n if n else _in_range(name, idx, n, axis)
    if mode == "clip":
        return numpy.clip(idx, 0, n - 1) if n else _in_range(name, idx, n, axis)
    if mode != "raise":
        raise ShapeError(f"{name}: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    known = known_values(idx)
    if known is not None and known.size:
        lo, hi = known.min(), known.max()
        if lo < -n or hi >= n:
            bad = lo if lo < -n else hi
            raise IndexRangeError(f"{name}: index {bad} is out of range for axis {axis} of "
                                  f"length {n} (valid: {-n}..{n - 1})")
        if lo >= 0:
            return idx
    return idx % n if n else idx


@array_function
@implements(numpy.take)
def take(a: Any, indices: Any, axis: int | None = None, out: None = None,
         mode: str = "raise") -> Array:
    """Elements of ``a`` at integer ``indices`` along ``axis`` (of the flattened array when
    None), as ``numpy.take``; ``mode`` 'raise', 'wrap' or 'clip'. Repeated indices
    accumulate their gradients.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.take(np.arange(6.0).reshape(2, 3), [2, 0], axis=1)
    array([[2., 0.],
           [5., 3.]])
    >>> fg.grad(lambda x: fnp.sum(fnp.take(x, [1, 1, 0])))(np.zeros(3))
    array([1., 2., 0.])
    """
    no_out("take", out)
    a = operand(a)
    idx = _indices("take", indices)
    if axis is None:
        a, ax = ravel(a), 0
    else:
        ax = normalize_axes("take", axis, len(shape_of(a)))[0]
    shape = shape_of(a)
    idx = _in_range("take", idx, shape[ax], ax, mode)
    picked = ops.index_select(_permuted(a, [ax] + [i for i in range(len(shape)) if i != ax]),
                              idx)
    k = idx.ndim  # index_select put the index's axes first: move them to where axis was
    return _permuted(picked, list(range(k, k + ax)) + list(range(k))
                     + list(range(k + ax, k + len(shape) - 1)))


@array_function
@implements(numpy.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: int | None = -1) -> Array:
    """Values of ``arr`` at ``indices`` along ``axis`` (indices has arr's number of
    dimensions, its other axes broadcasting against arr's), as ``numpy.take_along_axis``:
    what ``argsort``/``argmax(..., keepdims=True)`` index with.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> x = np.array([[3.0, 1.0], [2.0, 5.0]])
    >>> fnp.take_along_axis(x, np.argsort(x, axis=1), axis=1)
    array([[1., 3.],
           [2., 5.]])
    """
    arr = operand(arr)
    idx = _indices("take_along_axis", indices)
    if axis is None:
        if idx.ndim != 1:
            raise ShapeError(f"take_along_axis: with axis=None the indices must be 1-D, got "
                             f"shape {idx.shape}")
        arr, ax = ravel(arr), 0
    else:
        ax = normalize_axes("take_along_axis", axis, len(shape_of(arr)))[0]
    shape = shape_of(arr)
    if idx.ndim != len(shape):
        raise ShapeError(f"take_along_axis: indices of shape {idx.shape} and arr of shape "
                         f"{shape} must have the same number of dimensions")
    idx = _in_range("take_along_axis", idx, shape[ax], ax)
    flat = _linear_index(shape, idx, ax)
    return ops.index_select(_reshaped(arr, (int(numpy.prod(shape)),)), flat)


def _linear_index(shape: tuple, idx: Any, ax: int) -> Any:
    """Positions in the flattened array of ``shape`` of the elements at ``idx`` along ``ax``
    and at every position (broadcast against ``idx``) along the other axes."""
    nd = len(shape)
    try:
        numpy.broadcast_shapes(idx.shape, tuple(1 if d == ax else n for d, n in enumerate(shape)))
    except ValueError:
        raise ShapeError(f"take_along_axis: indices of shape {idx.shape} do not broadcast "
                         f"against arr of shape {shape} outside axis {ax}") from None
    strides = numpy.cumprod((1,) + shape[:0:-1])[::-1]  # element strides, C order
    flat = idx * strides[ax]
    for d in range(nd):
        if d != ax:
            coord = numpy.arange(shape[d]).reshape((1,) * d + (-1,) + (1,) * (nd - d - 1))
            flat = flat + coord * strides[d]
    return flat


@implements(numpy.select)
def select(condlist: Sequence, choicelist: Sequence, default: Any = 0) -> Array:
    """Elementwise, the choice of the first true condition (``default`` where none is), as
    ``numpy.select``; unselected choices get zero gradient.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> x = np.array([-1.0, 0.5, 2.0])
    >>> fnp.select([x < 0, x > 1], [-x, x * 10], default=x)
    array([ 1. ,  0.5, 20. ])
    """
    if len(condlist) != len(choicelist):
        raise ShapeError(f"select: {len(condlist)} conditions but {len(choicelist)} choices; "
                         "give one choice per condition")
    if not condlist:
        raise ShapeError("select: the condition list is empty")
    result = _weak(default)
    for k in range(len(condlist) - 1, -1, -1):  # the first true condition wins: apply it last
        cond = data_of(condlist[k])
        if cond.dtype != bool:
            raise DTypeError(f"select: condition {k} has dtype {cond.dtype}; conditions must "
                             "be boolean arrays")
        result = ops.where(cond, _weak(choicelist[k]), result)
    return result


def _weak(x: Any) -> Any:
    """Python numbers stay numbers (so they do not promote float32, as in NumPy)."""
    return x if isinstance(x, (int, float, bool)) else operand(x)


def _along(name: str, a: Any, axis: Any) -> tuple[Array, int]:
    a = operand(a)
    if axis is None:
        return ravel(a), 0
    return a, normalize_axes(name, axis, len(shape_of(a)))[0]


@array_function
@implements(numpy.sort)
def sort(a: Any, axis: int | None = -1, kind: str | None = None, order: None = None, *,
         stable: bool | None = None) -> Array:
    """A sorted copy of ``a`` along ``axis`` (flattened when None), as ``numpy.sort``. The
    gradient goes through the sorting permutation.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.sort(np.array([3.0, 1.0, 2.0]))
    array([1., 2., 3.])
    >>> fg.grad(lambda x: fnp.sort(x)[0])(np.array([3.0, 1.0, 2.0]))
    array([0., 1., 0.])
    """
    if order is not None:
        raise ShapeError("sort: order= (fields of structured arrays) is not supported")
    a, ax = _along("sort", a, axis)
    how: dict[str, Any] = {k: v for k, v in (("kind", kind), ("stable", stable))
                           if v is not None}
    perm = numpy.argsort(data_of(a), axis=ax, **how)
    return take_along_axis(a, perm, axis=ax)


@array_function
@implements(numpy.partition)
def partition(a: Any, kth: Any, axis: int | None = -1, kind: str = "introselect",
              order: None = None) -> Array:
    """A copy of ``a`` with the ``kth`` element(s) in sorted position, smaller ones before and
    larger ones after, as ``numpy.partition``. The gradient goes through the permutation.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.partition(np.array([3.0, 1.0, 4.0, 2.0]), 1)[1])
    2.0
    """
    if order is not None:
        raise ShapeError("partition: order= (fields of structured arrays) is not supported")
    a, ax = _along("partition", a, axis)
    perm = numpy.argpartition(data_of(a), plain(kth), axis=ax, kind=kind)  # type: ignore[arg-type]
    return take_along_axis(a, perm, axis=ax)


# -- triangles and diagonals ------------------------------------------------------------------


def _triangle(m: Array, keep: numpy.ndarray) -> Array:
    return ops.where(keep, m, numpy.zeros((), dtype=plain(m).dtype))


def _matrix_shape(name: str, m: Array) -> tuple:
    shape = shape_of(m)
    if not shape:
        raise ShapeError(f"{name}: needs an array of at least 1 dimension, got a 0-d array")
    return shape[-2:]


@array_function
@implements(numpy.tril)
def tril(m: Any, k: int = 0) -> Array:
    """The lower triangle (on and below diagonal ``k``) of the last two axes, zeros above, as
    ``numpy.tril``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.tril(np.ones((2, 2)))
    array([[1., 0.],
           [1., 1.]])
    """
    m = operand(m)
    return _triangle(m, numpy.tri(*_matrix_shape("tril", m), k=k, dtype=bool))  # type: ignore[call-overload]


@array_function
@implements(numpy.triu)
def triu(m: Any, k: int = 0) -> Array:
    """The upper triangle (on and above diagonal ``k``) of the last two axes, zeros below, as
    ``numpy.triu``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.triu(np.ones((2, 2)))
    array([[1., 1.],
           [0., 1.]])
    """
    m = operand(m)
    return _triangle(m, ~numpy.tri(*_matrix_shape("triu", m), k=k - 1, dtype=bool))  # type: ignore[call-overload]


@array_function
@implements(numpy.diag)
def diag(v: Any, k: int = 0) -> Array:
    """The ``k``-th diagonal of a 2-D array, or a 2-D array with a 1-D ``v`` on its ``k``-th
    diagonal, as ``numpy.diag``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.diag(np.array([1.0, 2.0]))
    array([[1., 0.],
           [0., 2.]])
    """
    v = operand(v)
    shape = shape_of(v)
    if len(shape) == 1:
        n = shape[0] + builtins.abs(k)
        return ops.diag_embed(v, shape=(n, n), offset=k, axis1=0, axis2=1)
    if len(shape) == 2:
        return ops.diagonal(v, offset=k)
    raise ShapeError(f"diag: input must be 1-D or 2-D, got shape {shape}")


@array_function
@implements(numpy.diagflat)
def diagflat(v: Any, k: int = 0) -> Array:
    """A 2-D array with the flattened input on its ``k``-th diagonal, as ``numpy.diagflat``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.diagflat(np.array([[1.0, 2.0]]), k=1).shape
    (3, 3)
    """
    return diag(ravel(v), k)


@array_function
@implements(numpy.diagonal)
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Array:
    """The diagonal at ``offset`` of the plane (``axis1``, ``axis2``), as the last axis, as
    ``numpy.diagonal`` (a copy, not a read-only view).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.diagonal(np.arange(8.0).reshape(2, 2, 2), axis1=1, axis2=2)
    array([[0., 3.],
           [4., 7.]])
    """
    return ops.diagonal(operand(a), offset=offset, axis1=axis1, axis2=axis2)


@array_function
@implements(numpy.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: None = None) -> Array:
    """The sum along the diagonal at ``offset`` of the plane (``axis1``, ``axis2``), as
    ``numpy.trace``.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> float(fnp.trace(np.arange(4.0).reshape(2, 2)))
    3.0
    >>> fg.grad(lambda x: fnp.trace(x, offset=1))(np.zeros((2, 3)))
    array([[0., 1., 0.],
           [0., 0., 1.]])
    """
    no_out("trace", out)
    d = ops.diagonal(cast(operand(a), dtype), offset=offset, axis1=axis1, axis2=axis2)
    return ops.sum(d, axis=-1)
