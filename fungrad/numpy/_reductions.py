"""Reductions under NumPy's names and keywords (``axis``, ``dtype``, ``keepdims``,
``initial``, ``where``), each built on registered ops, plus the ufunc ``reduce`` methods
(``np.add.reduce(t)``, ``np.multiply.reduce(t)``) they stand for.

``average``, ``ptp``, ``nansum`` and ``nanmean`` are compositions of ops (no derivative of
their own): weights are differentiable too, and NaN elements get zero gradient."""

from __future__ import annotations

import builtins
from typing import Any, Union

import numpy

from .. import primitives as ops
from ..errors import ShapeError
from ..primitives.shape import normalize_axes
from .._keywords import keepdim_alias
from ._wrap import NoValue, cast, data_of, implements, known_values, no_out, plain
from ..typing import array_function

Axis = Union[int, tuple, None]

__all__ = ["sum", "mean", "var", "max", "min", "amax", "amin", "prod", "std", "average",
           "ptp", "nansum", "nanmean"]


def _keep(keepdims) -> bool:
    return False if keepdims is NoValue else builtins.bool(keepdims)


def _masked(a, where, fill):
    """``a`` with ``fill`` where ``where`` is False (``where=True`` leaves it)."""
    if where is True or where is NoValue:
        return a
    return ops.where(data_of(where), a, fill)


@array_function
@implements(numpy.sum)
def sum(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None,  # noqa: A001
        keepdims: Any = NoValue, initial: Any = NoValue, where: Any = NoValue) -> Any:
    """Sum of array elements over ``axis``, as ``numpy.sum`` (differentiable).

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    no_out("sum", out)
    r = ops.sum(_masked(cast(a, dtype), where, 0), axis=axis, keepdims=_keep(keepdims))
    return r if initial is NoValue else r + initial


@array_function
@implements(numpy.mean)
def mean(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None,
         keepdims: Any = NoValue, *, where: Any = NoValue) -> Any:
    """Arithmetic mean over ``axis``, as ``numpy.mean`` (differentiable).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.mean(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    array([2., 3.])
    """
    no_out("mean", out)
    a = cast(a, dtype)
    if where is True or where is NoValue:
        return ops.mean(a, axis=axis, keepdims=_keep(keepdims))
    mask = numpy.broadcast_to(data_of(where), data_of(a).shape)
    count = numpy.sum(mask, axis=axis, keepdims=_keep(keepdims))
    return ops.sum(_masked(a, mask, 0.0), axis=axis, keepdims=_keep(keepdims)) / count


@array_function
@implements(numpy.var)
def var(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, ddof: float = 0,
        keepdims: Any = NoValue, *, where: Any = NoValue, mean: Any = NoValue,
        correction: Any = NoValue) -> Any:
    """Variance over ``axis`` with ``ddof`` (or ``correction``), as ``numpy.var``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.var(np.array([1.0, 3.0]), ddof=1))
    2.0
    """
    return _moment(ops.var, a, axis, dtype, out, ddof, keepdims, where, mean, correction)


def _moment(op, a, axis, dtype, out, ddof, keepdims, where, mean, correction) -> Any:
    """var and std with NumPy's keywords (``where=`` and ``mean=`` refused, ``correction=``
    the Array API's name for ``ddof``)."""
    name = op.name
    no_out(name, out)
    if where is not NoValue and where is not True:
        raise ShapeError(f"{name}: where= is not supported; select the elements first")
    if mean is not NoValue:
        raise ShapeError(f"{name}: mean= is not supported; it is computed from the data")
    if correction is not NoValue:
        ddof = correction
    return op(cast(a, dtype), axis=axis, keepdims=_keep(keepdims), ddof=ddof)


def _extremum(op, fill, name):
    def f(a: Any, axis: Axis = None, out: Any = None, keepdims: Any = NoValue,
          initial: Any = NoValue, where: Any = NoValue) -> Any:
        no_out(name, out)
        if where is not NoValue and where is not True:
            if initial is NoValue:
                raise ShapeError(f"{name}: where= needs initial= (as in NumPy)")
            a = _masked(a, where, fill)
        r = op(a, axis=axis, keepdims=_keep(keepdims))
        if initial is not NoValue:
            r = (ops.maximum if op is ops.max else ops.minimum)(r, initial)
        return r
    f.__name__ = f.__qualname__ = name
    return f


max = amax = implements(numpy.max, numpy.amax)(  # noqa: A001
    _extremum(ops.max, -numpy.inf, "max"))
max.__doc__ = """Maximum over ``axis``, as ``numpy.max``; tied maxima share the gradient
equally (as JAX and HIPS autograd), and a slice holding NaN gets NaN gradients.

>>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
>>> fg.grad(lambda x: fnp.max(x))(np.array([1.0, 3.0, 3.0]))
array([0. , 0.5, 0.5])
"""
min = amin = implements(numpy.min, numpy.amin)(  # noqa: A001
    _extremum(ops.min, numpy.inf, "min"))
min.__doc__ = """Minimum over ``axis``, as ``numpy.min``; tied minima share the gradient
equally (as JAX and HIPS autograd), and a slice holding NaN gets NaN gradients.

>>> import numpy as np, fungrad.numpy as fnp
>>> fnp.min(np.array([[1.0, 3.0], [0.0, 2.0]]), axis=1)
array([1., 0.])
"""



@array_function
@implements(numpy.prod)
def prod(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None,
         keepdims: Any = NoValue, initial: Any = NoValue, where: Any = NoValue) -> Any:
    """Product of array elements over ``axis``, as ``numpy.prod`` (differentiable; zeros
    in the input are handled exactly).

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.prod(x))(np.array([2.0, 3.0, 4.0]))
    array([12.,  8.,  6.])
    """
    no_out("prod", out)
    r = ops.prod(_masked(cast(a, dtype), where, 1), axis=axis, keepdims=_keep(keepdims))
    return r if initial is NoValue else r * initial


@array_function
@implements(numpy.std)
def std(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, ddof: float = 0,
        keepdims: Any = NoValue, *, where: Any = NoValue, mean: Any = NoValue,
        correction: Any = NoValue) -> Any:
    """Standard deviation over ``axis`` with ``ddof`` (or ``correction``), as ``numpy.std``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.std(np.array([1.0, 3.0])))
    1.0
    """
    return _moment(ops.std, a, axis, dtype, out, ddof, keepdims, where, mean, correction)


@implements(numpy.average)
def average(a: Any, axis: Axis = None, weights: Any = None, returned: bool = False, *,
            keepdims: Any = NoValue) -> Any:
    """Weighted average over ``axis``, as ``numpy.average``; differentiable in ``a`` and in
    ``weights``. With ``returned=True``, also the sum of the weights.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.average(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=1, weights=[3.0, 1.0])
    array([1.25, 3.25])
    """
    keep = _keep(keepdims)
    data = data_of(a)
    if data.dtype.kind in "biu":
        a, data = cast(a, numpy.float64), data.astype(numpy.float64)
    if weights is None:
        avg = ops.mean(a, axis=axis, keepdims=keep)
        count = data.size // builtins.max(numpy.size(plain(avg)), 1) if data.size else 0
        scl = numpy.full(numpy.shape(plain(avg)), count, dtype=numpy.result_type(avg))
    else:
        w = _weights_for(data, axis, weights)
        scl = ops.sum(w, axis=axis, keepdims=keep)
        known = known_values(scl)
        if known is not None and numpy.any(known == 0.0):
            raise ZeroDivisionError("average: the weights sum to zero, so they cannot "
                                    "normalise the average")
        avg = ops.sum(ops.multiply(a, w), axis=axis, keepdims=keep) / scl
    if not returned:
        return avg
    if numpy.shape(plain(scl)) != numpy.shape(plain(avg)):
        scl = ops.broadcast_to(scl, shape=numpy.shape(plain(avg)))
    return avg, scl


def _weights_for(data: Any, axis: Axis, weights: Any) -> Any:
    """``weights`` shaped to broadcast against ``data`` (NumPy's rule: the shape of ``data``,
    or the shape of the ``axis`` dimensions in the order given)."""
    w_shape = numpy.shape(plain(weights))
    if w_shape == data.shape:
        return weights
    if axis is None:
        raise TypeError(f"average: weights of shape {w_shape} differ from a's shape "
                        f"{data.shape}: give axis= to say which axes they weigh")
    given = (axis,) if numpy.ndim(axis) == 0 else tuple(axis)  # type: ignore[arg-type]
    axes = [normalize_axes("average", ax, data.ndim)[0] for ax in given]
    if w_shape != tuple(data.shape[ax] for ax in axes):
        raise ShapeError(f"average: weights of shape {w_shape} do not fit a of shape "
                         f"{data.shape} along axis {axis} (expected "
                         f"{tuple(data.shape[ax] for ax in axes)})")
    order = tuple(int(i) for i in numpy.argsort(axes))
    w = ops.transpose(weights, axes=order) if order != tuple(range(len(order))) else weights
    shape = tuple(n if i in axes else 1 for i, n in enumerate(data.shape))
    return ops.reshape(w, shape=shape)


@array_function
@implements(numpy.ptp)
def ptp(a: Any, axis: Axis = None, out: Any = None, keepdims: Any = NoValue) -> Any:
    """Peak to peak, max - min over ``axis``, as ``numpy.ptp`` (tied extrema share the
    gradient).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.ptp(np.array([[1.0, 5.0], [2.0, 3.0]]), axis=1)
    array([4., 1.])
    """
    no_out("ptp", out)
    keep = _keep(keepdims)
    return ops.max(a, axis=axis, keepdims=keep) - ops.min(a, axis=axis, keepdims=keep)


def _not_nan(a, where):
    mask = ~numpy.isnan(data_of(a))
    if where is not NoValue and where is not True:
        mask = mask & data_of(where).astype(bool)
    return mask


@array_function
@implements(numpy.nansum)
def nansum(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None,
           keepdims: Any = NoValue, initial: Any = NoValue, where: Any = NoValue) -> Any:
    """Sum over ``axis`` treating NaN as zero, as ``numpy.nansum``; NaN elements get zero
    gradient.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.nansum(np.array([1.0, np.nan, 2.0]))
    np.float64(3.0)
    """
    no_out("nansum", out)
    return sum(a, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial,
               where=_not_nan(a, where))


@array_function
@implements(numpy.nanmean)
def nanmean(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None,
            keepdims: Any = NoValue, *, where: Any = NoValue) -> Any:
    """Mean over ``axis`` ignoring NaN, as ``numpy.nanmean``; NaN elements get zero
    gradient (an all-NaN slice gives NaN).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.nanmean(np.array([1.0, np.nan, 2.0]))
    np.float64(1.5)
    """
    no_out("nanmean", out)
    return mean(a, axis=axis, dtype=dtype, keepdims=keepdims, where=_not_nan(a, where))


def _ufunc_reduce(fn, name):
    def reduce(a: Any, axis: Axis = 0, dtype: Any = None, out: Any = None,
               keepdims: bool = False, initial: Any = NoValue, where: Any = True) -> Any:
        no_out(name, out)
        kwargs = {"axis": axis, "keepdims": keepdims}
        if initial is not NoValue:
            kwargs["initial"] = initial
        if where is not True:
            kwargs["where"] = where
        if dtype is not None:
            a = cast(a, dtype)
        return fn(a, **kwargs)
    return reduce


implements(numpy.add, method="reduce")(_ufunc_reduce(sum, "numpy.add.reduce"))
implements(numpy.multiply, method="reduce")(_ufunc_reduce(prod, "numpy.multiply.reduce"))
implements(numpy.maximum, method="reduce")(_ufunc_reduce(max, "numpy.maximum.reduce"))
implements(numpy.minimum, method="reduce")(_ufunc_reduce(min, "numpy.minimum.reduce"))


# PyTorch's spelling works too: fnp.sum(x, axis=1, keepdim=True) (NumPy's own np.sum(t, ...)
# dispatches to the functions registered above)
sum = keepdim_alias(sum)  # noqa: A001
mean = keepdim_alias(mean)
var = keepdim_alias(var)
std = keepdim_alias(std)
prod = keepdim_alias(prod)
max = amax = keepdim_alias(max)  # noqa: A001
min = amin = keepdim_alias(min)  # noqa: A001
average = keepdim_alias(average)
ptp = keepdim_alias(ptp)
nansum = keepdim_alias(nansum)
nanmean = keepdim_alias(nanmean)
