"""Shape, joining, selection and array construction under NumPy's names, on registered ops.

``array`` and ``asarray`` of a (nested) list holding Tensors stack them differentiably.
"""

from __future__ import annotations

import numpy

from .. import ops
from ..errors import ShapeError
from ..tensor import Tensor
from ._wrap import NoValue, cast, implements, no_out, plain

__all__ = ["array", "asarray", "copy", "reshape", "transpose", "squeeze", "expand_dims",
           "broadcast_to", "concatenate", "stack", "where", "clip"]


def _holds_tensor(obj) -> bool:
    if isinstance(obj, Tensor):
        return True
    return isinstance(obj, (list, tuple)) and any(_holds_tensor(x) for x in obj)


def _stacked(obj):
    if isinstance(obj, (list, tuple)):
        return ops.stack([_stacked(x) for x in obj], axis=0)
    return obj


def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0,  # noqa: A002
          like=None):
    """An array from ``object``, as ``numpy.array``; Tensors in it stay differentiable.

    A Tensor gives a copy (a Tensor); a list holding Tensors gives their stack (a Tensor);
    anything else gives ``numpy.array(object)``.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.sum(fnp.array([x[0] * x[1], x[1]])))(np.array([2.0, 3.0]))
    array([3., 3.])
    """
    if not _holds_tensor(object):
        return numpy.array(object, dtype=dtype, copy=copy, order=order, subok=subok,
                           ndmin=ndmin)
    out = _stacked(object)
    out = ops.copy(out) if copy and isinstance(object, Tensor) else out
    out = cast(out, dtype)
    if ndmin > out.ndim:
        out = ops.reshape(out, shape=(1,) * (ndmin - out.ndim) + out.shape)
    return out


def asarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    """``a`` as an array, as ``numpy.asarray``: a Tensor is returned as is (cast to ``dtype``
    if given), a list holding Tensors is stacked (differentiably).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.asarray([1.0, 2.0])
    array([1., 2.])
    """
    if not _holds_tensor(a):
        return numpy.asarray(a, dtype=dtype, order=order, copy=copy)
    out = cast(_stacked(a), dtype)
    return ops.copy(out) if copy else out


def copy(a, order="K", subok=False):
    """A copy of ``a`` with its own memory (differentiable), as ``numpy.copy``."""
    return ops.copy(a) if isinstance(a, Tensor) or _holds_tensor(a) else numpy.copy(a)


implements(numpy.copy)(copy)


@implements(numpy.reshape)
def reshape(a, /, shape=None, order="C", *, newshape=None, copy=None):
    """``a`` in a new shape, as ``numpy.reshape`` (C order only)."""
    if order != "C":
        raise ShapeError(f"reshape: order={order!r} is not supported (C order only)")
    shape = newshape if shape is None else shape
    if shape is None:
        raise TypeError("reshape: missing the shape")
    shape = (shape,) if numpy.ndim(shape) == 0 else tuple(shape)
    return ops.reshape(a, shape=shape)


@implements(numpy.transpose)
def transpose(a, axes=None):
    """Permute the axes (reverse them when ``axes`` is None), as ``numpy.transpose``."""
    return ops.transpose(a, axes=None if axes is None else tuple(axes))


@implements(numpy.squeeze)
def squeeze(a, axis=None):
    """Drop axes of length one, as ``numpy.squeeze``."""
    return ops.squeeze(a, axis=axis)


@implements(numpy.expand_dims)
def expand_dims(a, axis):
    """A new axis of length one at ``axis``, as ``numpy.expand_dims``."""
    return ops.expand_dims(a, axis=axis)


@implements(numpy.broadcast_to)
def broadcast_to(array, shape, subok=False):  # noqa: A002
    """Broadcast to ``shape``, as ``numpy.broadcast_to`` (differentiable: its transpose sums)."""
    shape = (shape,) if numpy.ndim(shape) == 0 else tuple(shape)
    return ops.broadcast_to(array, shape=shape)


@implements(numpy.concatenate)
def concatenate(arrays, /, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """Join arrays along an existing axis, as ``numpy.concatenate``."""
    no_out("concatenate", out)
    arrays = [cast(a, dtype) for a in arrays]
    if axis is None:
        arrays = [ops.reshape(a, shape=(-1,)) for a in arrays]
        axis = 0
    return ops.concatenate(arrays, axis=axis)


@implements(numpy.stack)
def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """Join arrays along a new axis, as ``numpy.stack``."""
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
        return numpy.nonzero(plain(condition))
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
