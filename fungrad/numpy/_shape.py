"""Shape, joining and array construction under NumPy's names, on registered ops.

``array`` and ``asarray`` of a (nested) list holding Tensors stack them differentiably. Axis
moves (``swapaxes``, ``moveaxis``, ``rollaxis``) are transposes; ``ravel`` and ``atleast_*d``
are reshapes.
"""

from __future__ import annotations

import operator
from typing import Any, Sequence, Union

import numpy

from .. import primitives as ops
from ..errors import DTypeError, ShapeError
from ..primitives.shape import normalize_axes, shape_of
from ..tensor import Tensor
from ._wrap import NoValue, cast, data_of, implements, is_array_value, no_out, plain
from ..typing import array_function

__all__ = ["array", "asarray", "full", "full_like", "copy", "reshape", "transpose", "squeeze", "expand_dims",
           "broadcast_to", "concatenate", "stack", "where", "clip",
           "ravel", "swapaxes", "moveaxis", "rollaxis", "atleast_1d", "atleast_2d",
           "atleast_3d", "broadcast_arrays"]

Array = Union[numpy.ndarray, Tensor]  # what fungrad.numpy functions return


def _holds_tensor(obj: Any) -> bool:
    """Whether ``obj`` is or holds a Tensor (or a batched or traced array, which NumPy cannot
    convert either)."""
    if isinstance(obj, Tensor) or (is_array_value(obj) and not isinstance(obj, numpy.ndarray)):
        return True
    return isinstance(obj, (list, tuple)) and any(_holds_tensor(x) for x in obj)


def _stacked(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        return ops.stack([_stacked(x) for x in obj], axis=0)
    return obj


def array(object: Any, dtype: Any = None, *, copy: bool = True, order: str = "K",  # noqa: A002
          subok: bool = False, ndmin: int = 0, like: Any = None) -> Array:
    """An array from ``object``, as ``numpy.array``; Tensors in it stay differentiable.

    A Tensor gives a copy (a Tensor); a list holding Tensors gives their stack (a Tensor);
    anything else gives ``numpy.array(object)``.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.sum(fnp.array([x[0] * x[1], x[1]])))(np.array([2.0, 3.0]))
    array([3., 3.])
    """
    if not _holds_tensor(object):
        return numpy.array(object, dtype=dtype, copy=copy, order=order, subok=subok,  # type: ignore[call-overload]
                           ndmin=ndmin)
    out = _stacked(object)
    out = ops.copy(out) if copy and isinstance(object, Tensor) else out
    out = cast(out, dtype)
    if ndmin > out.ndim:
        out = ops.reshape(out, shape=(1,) * (ndmin - out.ndim) + out.shape)
    return out


@array_function
def asarray(a: Any, dtype: Any = None, order: str | None = None, *, device: Any = None,
            copy: bool | None = None, like: Any = None) -> Array:
    """``a`` as an array, as ``numpy.asarray``: a Tensor is returned as is (cast to ``dtype``
    if given), a list holding Tensors is stacked (differentiably).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.asarray([1.0, 2.0])
    array([1., 2.])
    """
    if not _holds_tensor(a):
        return numpy.asarray(a, dtype=dtype, order=order, copy=copy)  # type: ignore[arg-type]
    out = cast(_stacked(a), dtype)
    return ops.copy(out) if copy else out


def full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C", *,
         device: Any = None, like: Any = None) -> Array:
    """An array of ``shape`` filled with ``fill_value`` (broadcast), as ``numpy.full``;
    differentiable in ``fill_value``: its gradient is the sum over the copies.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda c: fnp.sum(fnp.full((2, 3), c) * np.arange(6.0).reshape(2, 3)))(1.0)
    array(15.)
    >>> fnp.full(2, 7)
    array([7, 7])
    """
    if not _holds_tensor(fill_value):
        return numpy.full(shape, fill_value, dtype=dtype, order=order)  # type: ignore[call-overload]
    shape = (shape,) if numpy.ndim(shape) == 0 else tuple(shape)
    return ops.copy(ops.broadcast_to(cast(_stacked(fill_value), dtype), shape=shape))


@implements(numpy.full_like)
def full_like(a: Any, fill_value: Any, dtype: Any = None, order: str = "K", subok: bool = True,
              shape: Any = None, *, device: Any = None) -> Array:
    """An array like ``a`` (its shape and dtype unless given) filled with ``fill_value``, as
    ``numpy.full_like``; differentiable in ``fill_value`` (``a`` gives only a shape).

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda c: fnp.sum(fnp.full_like(np.zeros(3), c)))(2.0)
    array(3.)
    """
    if not _holds_tensor(fill_value) and (
            isinstance(a, numpy.ndarray) or not (is_array_value(a) or _holds_tensor(a))):
        return numpy.full_like(a, fill_value, dtype=dtype, order=order,  # type: ignore[call-overload]
                               subok=subok, shape=shape)
    a = data_of(a)  # a Tensor's, or (under vmap / jit) one example's value: only its shape
    return full(a.shape if shape is None else shape, fill_value,
                dtype=a.dtype if dtype is None else dtype)


@array_function
def copy(a: Any, order: str = "K", subok: bool = False) -> Array:
    """A copy of ``a`` with its own memory (differentiable), as ``numpy.copy``.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.copy(fg.Tensor([1.0, 2.0], autograd=True)).creation_op
    'copy'
    """
    return ops.copy(a) if isinstance(a, Tensor) or _holds_tensor(a) else numpy.copy(a)


implements(numpy.copy)(copy)


@array_function
@implements(numpy.reshape)
def reshape(a: Any, /, shape: Any = None, order: str = "C", *, newshape: Any = None,
            copy: bool | None = None) -> Array:
    """``a`` in a new shape, as ``numpy.reshape``, reading and writing the elements in C
    order (``order='C'``) or Fortran order (``order='F'``).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.reshape(np.arange(6.0), (2, 3), order="F")
    array([[0., 2., 4.],
           [1., 3., 5.]])
    """
    shape = newshape if shape is None else shape
    if shape is None:
        raise TypeError("reshape: missing the shape")
    shape = (shape,) if numpy.ndim(shape) == 0 else tuple(shape)
    if order == "F":  # Fortran order is C order on the reversed axes
        a = operand(a)
        reversed_in = tuple(range(len(shape_of(a)) - 1, -1, -1))
        out = ops.reshape(_permuted(a, reversed_in), shape=shape[::-1])
        return _permuted(out, tuple(range(len(shape) - 1, -1, -1)))
    if order not in ("C", "A"):
        raise ShapeError(f"reshape: order={order!r} is not supported ('C' or 'F')")
    return ops.reshape(a, shape=shape)


@array_function
@implements(numpy.transpose)
def transpose(a: Any, axes: Any = None) -> Array:
    """Permute the axes (reverse them when ``axes`` is None), as ``numpy.transpose``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.transpose(np.zeros((2, 3, 4)), (2, 0, 1)).shape
    (4, 2, 3)
    """
    return ops.transpose(a, axes=None if axes is None else tuple(axes))


@array_function
@implements(numpy.squeeze)
def squeeze(a: Any, axis: Any = None) -> Array:
    """Drop axes of length one, as ``numpy.squeeze``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.squeeze(np.zeros((1, 2, 1))).shape
    (2,)
    """
    return ops.squeeze(a, axis=axis)


@array_function
@implements(numpy.expand_dims)
def expand_dims(a: Any, axis: Any) -> Array:
    """A new axis of length one at ``axis``, as ``numpy.expand_dims``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.expand_dims(np.zeros(2), -1).shape
    (2, 1)
    """
    return ops.expand_dims(a, axis=axis)


@array_function
@implements(numpy.broadcast_to)
def broadcast_to(array: Any, shape: Any, subok: bool = False) -> Array:  # noqa: A002
    """Broadcast to ``shape``, as ``numpy.broadcast_to`` (differentiable: its transpose sums).

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.sum(fnp.broadcast_to(x, (3, 2))))(np.zeros(2))
    array([3., 3.])
    """
    shape = (shape,) if numpy.ndim(shape) == 0 else tuple(shape)
    return ops.broadcast_to(array, shape=shape)


@implements(numpy.concatenate)
def concatenate(arrays: Sequence, /, axis: int | None = 0, out: None = None, *,
                dtype: Any = None, casting: str = "same_kind") -> Array:
    """Join arrays along an existing axis (all flattened when ``axis`` is None), as
    ``numpy.concatenate``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.concatenate([np.zeros((1, 2)), np.ones(3)], axis=None)
    array([0., 0., 1., 1., 1.])
    """
    no_out("concatenate", out)
    return ops.concatenate([cast(operand(a), dtype) for a in arrays], axis=axis)


@implements(numpy.stack)
def stack(arrays: Sequence, axis: int = 0, out: None = None, *, dtype: Any = None,
          casting: str = "same_kind") -> Array:
    """Join arrays of one shape along a new axis, as ``numpy.stack``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.stack([np.zeros(2), np.ones(2)], axis=-1).shape
    (2, 2)
    """
    no_out("stack", out)
    return ops.stack([cast(a, dtype) for a in arrays], axis=axis)


@implements(numpy.where)
def where(condition, x=NoValue, y=NoValue):
    """``where(condition, x, y)`` selects elementwise (the unselected branch gets zero
    gradient); ``where(condition)`` returns the indices of the true elements, as NumPy.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.where(np.array([True, False]), 1.0, 2.0)
    array([1., 2.])
    """
    if x is NoValue and y is NoValue:
        return numpy.nonzero(data_of(operand(condition)))
    if x is NoValue or y is NoValue:
        raise TypeError("where: give both x and y, or neither")
    return ops.where(plain(condition), x, y)


@implements(numpy.clip)
def clip(a, a_min=NoValue, a_max=NoValue, out=None, *, min=NoValue, max=NoValue,  # noqa: A002
         **kwargs):
    """Limit values to [a_min, a_max], as ``numpy.clip``; the gradient is zero where clipped."""
    no_out("clip", out)
    lo = a_min if a_min is not NoValue else min
    hi = a_max if a_max is not NoValue else max
    lo = None if lo is NoValue else lo
    hi = None if hi is NoValue else hi
    return ops.clip(a, a_min=lo, a_max=hi)


# -- operands, axes ------------------------------------------------------------------------------


def operand(a: Any) -> Array:
    """``a`` as an op input: Tensors and ndarrays as they are, a list holding Tensors stacked
    (differentiably), anything else as an ndarray.

    >>> operand([1.0, 2.0])
    array([1., 2.])
    """
    if isinstance(a, (Tensor, numpy.ndarray)) or is_array_value(a):
        return a  # (also fg.vmap's batched and fg.jit's traced arrays: never converted)
    if _holds_tensor(a):
        return _stacked(a)
    return numpy.asarray(a)


def axis_list(name: str, axes: Any, ndim: int) -> list[int]:
    """``axes`` (an int or a sequence of ints) as non-negative ints in the given order,
    checked: in range and without repeats.

    >>> axis_list("moveaxis", (-1, 0), 3)
    [2, 0]
    """
    items = [axes] if numpy.ndim(axes) == 0 else list(axes)
    out = [normalize_axes(name, a, ndim)[0] for a in items]
    if len(set(out)) != len(out):
        raise ShapeError(f"{name}: repeated axis in {axes!r}")
    return out


def _permuted(a: Array, perm: Sequence[int]) -> Array:
    perm = tuple(perm)
    return a if perm == tuple(range(len(perm))) else ops.transpose(a, axes=perm)


def _reshaped(a: Array, shape: tuple) -> Array:
    return a if shape_of(a) == tuple(shape) else ops.reshape(a, shape=tuple(shape))


# -- flattening and moving axes -------------------------------------------------------------------


@array_function
@implements(numpy.ravel)
def ravel(a: Any, order: str = "C") -> Array:
    """The elements as one axis, as ``numpy.ravel`` (orders 'C', 'F', 'A' and 'K').

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.ravel(np.arange(4.0).reshape(2, 2), order="F")
    array([0., 2., 1., 3.])
    >>> fg.grad(lambda x: fnp.ravel(x)[1])(np.zeros((2, 2)))
    array([[0., 1.],
           [0., 0.]])
    """
    a = operand(a)
    data = plain(a)
    if order == "F" or (order in ("A", "K") and data.flags.f_contiguous
                        and not data.flags.c_contiguous):
        a = _permuted(a, range(data.ndim - 1, -1, -1))
    elif order == "K":  # memory order, keeping each axis's direction (as NumPy does)
        a = _permuted(a, sorted(range(data.ndim), key=lambda i: -abs(data.strides[i])))
    elif order not in ("C", "A"):
        raise ShapeError(f"ravel: order must be 'C', 'F', 'A' or 'K', got {order!r}")
    return _reshaped(a, (data.size,))


@array_function
@implements(numpy.swapaxes)
def swapaxes(a: Any, axis1: int, axis2: int) -> Array:
    """``a`` with two axes interchanged, as ``numpy.swapaxes``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.swapaxes(np.zeros((2, 3, 4)), 0, 2).shape
    (4, 3, 2)
    """
    a = operand(a)
    nd = len(shape_of(a))
    i, j = (normalize_axes("swapaxes", ax, nd)[0] for ax in (axis1, axis2))
    perm = list(range(nd))
    perm[i], perm[j] = j, i
    return ops.transpose(a, axes=tuple(perm))


@array_function
@implements(numpy.moveaxis)
def moveaxis(a: Any, source: Any, destination: Any) -> Array:
    """Axes ``source`` moved to positions ``destination``, the others keeping their order, as
    ``numpy.moveaxis``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.moveaxis(np.zeros((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    a = operand(a)
    nd = len(shape_of(a))
    src = axis_list("moveaxis", source, nd)
    dst = axis_list("moveaxis", destination, nd)
    if len(src) != len(dst):
        raise ShapeError(f"moveaxis: source {source!r} and destination {destination!r} must "
                         "name the same number of axes")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return ops.transpose(a, axes=tuple(order))


@array_function
@implements(numpy.rollaxis)
def rollaxis(a: Any, axis: int, start: int = 0) -> Array:
    """Axis ``axis`` moved to just before position ``start``, as ``numpy.rollaxis``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.rollaxis(np.zeros((2, 3, 4)), 2).shape
    (4, 2, 3)
    """
    a = operand(a)
    nd = len(shape_of(a))
    axis = normalize_axes("rollaxis", axis, nd)[0]
    start = operator.index(start)
    if not -nd <= start <= nd:
        raise ShapeError(f"rollaxis: start {start} is out of range for an array of {nd} "
                         f"dimensions (valid: {-nd}..{nd})")
    if start < 0:
        start += nd
    if axis < start:
        start -= 1
    order = [i for i in range(nd) if i != axis]
    order.insert(start, axis)
    return ops.transpose(a, axes=tuple(order))


# -- at least n dimensions -------------------------------------------------------------------------


def _at_least(a: Any, n: int) -> Array:
    a = operand(a)
    shape = shape_of(a)
    if len(shape) >= n:
        return a
    if n == 3 and len(shape) > 0:  # NumPy's rule: (k,) -> (1, k, 1), (m, k) -> (m, k, 1)
        return ops.reshape(a, shape=((1,) + shape if len(shape) == 1 else shape) + (1,))
    return ops.reshape(a, shape=(1,) * (n - len(shape)) + shape)


def _at_least_all(arys: tuple, n: int) -> Any:
    out = tuple(_at_least(a, n) for a in arys)
    return out[0] if len(out) == 1 else out


@implements(numpy.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    """Each input with at least one dimension (one array, or a tuple for several), as
    ``numpy.atleast_1d``.

    >>> import fungrad.numpy as fnp
    >>> fnp.atleast_1d(2.0)
    array([2.])
    """
    return _at_least_all(arys, 1)


@implements(numpy.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    """Each input with at least two dimensions (a vector becomes a row), as
    ``numpy.atleast_2d``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.atleast_2d(np.ones(3)).shape
    (1, 3)
    """
    return _at_least_all(arys, 2)


@implements(numpy.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    """Each input with at least three dimensions (``(k,)`` becomes ``(1, k, 1)``, ``(m, k)``
    becomes ``(m, k, 1)``), as ``numpy.atleast_3d``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.atleast_3d(np.ones((2, 3))).shape
    (2, 3, 1)
    """
    return _at_least_all(arys, 3)


@implements(numpy.broadcast_arrays)
def broadcast_arrays(*args: Any, subok: bool = False) -> tuple:
    """The inputs broadcast against each other, as ``numpy.broadcast_arrays`` (a tuple).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> [x.shape for x in fnp.broadcast_arrays(np.ones(3), np.ones((2, 1)))]
    [(2, 3), (2, 3)]
    """
    arrays = [operand(a) for a in args]
    try:
        shape = numpy.broadcast_shapes(*(shape_of(a) for a in arrays))
    except ValueError:
        shapes = ", ".join(str(shape_of(a)) for a in arrays)
        raise ShapeError(f"broadcast_arrays: shapes {shapes} do not broadcast") from None
    return tuple(ops.broadcast_to(a, shape=shape) for a in arrays)


def _int_tuple(name: str, what: str, value: Any) -> Any:
    """An int, or a tuple of ints, from NumPy's int/sequence/array arguments."""
    value = plain(value)
    try:
        if numpy.ndim(value) == 0:
            return operator.index(value)
        return tuple(operator.index(v) for v in numpy.asarray(value).tolist())
    except TypeError:
        raise DTypeError(f"{name}: {what} must be an int or a sequence of ints, got "
                         f"{value!r}") from None
