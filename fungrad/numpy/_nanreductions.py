"""Reductions that ignore NaN, beside ``nansum`` and ``nanmean``: ``nanmax``, ``nanmin``,
``nanprod``, ``nanvar`` and ``nanstd``, differentiable.

Each masks the NaN elements out (``where`` with a neutral value) and reduces the rest, so NaN
elements get zero gradient; a slice of NaN only gives NaN, as NumPy's does. The mask is computed
on the values' data (:func:`data_of`), so it follows each example under ``fg.vmap`` and each call
under ``fg.jit``.
"""

from __future__ import annotations

from typing import Any

import numpy

from .. import primitives as ops
from ..errors import ShapeError
from ._reductions import Axis, _keep, _not_nan, max, min, prod, var
from ._reductions import sum as _sum
from ._shape import Array, operand
from ._wrap import NoValue, as_numpy_result, cast, data_of, implements, no_out
from ..typing import array_function

__all__ = ["nanmax", "nanmin", "nanprod", "nanvar", "nanstd"]


def _nan_extremum(name: str, reduce: Any, fill: float, a: Any, axis: Axis, out: Any,
                  keepdims: Any, initial: Any, where: Any) -> Array:
    no_out(name, out)
    a = operand(a)
    nan = numpy.isnan(data_of(a))
    if data_of(a).dtype.kind != "f":  # integers hold no NaN
        return reduce(a, axis=axis, keepdims=keepdims, initial=initial, where=where)
    r = reduce(ops.where(nan, fill, a), axis=axis, keepdims=keepdims, initial=initial,
               where=where)
    if initial is not NoValue:
        return r
    every = numpy.all(nan, axis=axis, keepdims=_keep(keepdims))
    return as_numpy_result(ops.where(every, numpy.asarray(numpy.nan, dtype=data_of(a).dtype), r))


@array_function
@implements(numpy.nanmax)
def nanmax(a: Any, axis: Axis = None, out: Any = None, keepdims: Any = NoValue,
           initial: Any = NoValue, where: Any = NoValue) -> Array:
    """Maximum over ``axis`` ignoring NaN, as ``numpy.nanmax`` (NaN for a slice of NaN only);
    tied maxima share the gradient, NaN elements get none.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.nanmax(x))(np.array([1.0, np.nan, 3.0]))
    array([0., 0., 1.])
    """
    return _nan_extremum("nanmax", max, -numpy.inf, a, axis, out, keepdims, initial, where)


@array_function
@implements(numpy.nanmin)
def nanmin(a: Any, axis: Axis = None, out: Any = None, keepdims: Any = NoValue,
           initial: Any = NoValue, where: Any = NoValue) -> Array:
    """Minimum over ``axis`` ignoring NaN, as ``numpy.nanmin`` (NaN for a slice of NaN only).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.nanmin(np.array([[2.0, np.nan], [np.nan, -1.0]]), axis=1)
    array([ 2., -1.])
    """
    return _nan_extremum("nanmin", min, numpy.inf, a, axis, out, keepdims, initial, where)


@array_function
@implements(numpy.nanprod)
def nanprod(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None,
            keepdims: Any = NoValue, initial: Any = NoValue, where: Any = NoValue) -> Array:
    """Product over ``axis`` treating NaN as one, as ``numpy.nanprod``; NaN elements get zero
    gradient.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.nanprod(np.array([2.0, np.nan, 3.0]))
    np.float64(6.0)
    """
    no_out("nanprod", out)
    return prod(a, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial,
                where=_not_nan(a, where))


def _nan_moment(name: str, a: Any, axis: Axis, dtype: Any, out: Any, ddof: float,
                keepdims: Any, where: Any, mean: Any, correction: Any) -> Array:
    """The variance of the numbers of each slice: ``sum(|x - mean|^2) / (count - ddof)``."""
    no_out(name, out)
    if mean is not NoValue:
        raise ShapeError(f"{name}: mean= is not supported; it is computed from the data")
    if correction is not NoValue:
        ddof = correction
    a = cast(operand(a), dtype)
    if data_of(a).dtype.kind not in "fc":  # no NaN to ignore: NumPy's nanvar is var there
        return var(a, axis=axis, ddof=ddof, keepdims=keepdims, where=where)
    keep = _keep(keepdims)
    real = numpy.finfo(data_of(a).dtype).dtype  # counts divide in a's precision
    mask = _not_nan(a, where)
    count = numpy.sum(mask, axis=axis, keepdims=True).astype(real)
    centre = _sum(a, axis=axis, keepdims=True, where=mask) / count
    dev = ops.where(mask, a - centre, 0.0)
    sq = ops.real(dev * ops.conj(dev)) if data_of(a).dtype.kind == "c" else dev * dev
    total = _sum(sq, axis=axis, keepdims=keep)
    n = (numpy.sum(mask, axis=axis, keepdims=keep) - ddof).astype(real)
    few = n <= 0  # no numbers, or too few for ddof: NaN, as NumPy's
    return as_numpy_result(ops.where(few, numpy.asarray(numpy.nan, dtype=real),
                                     total / numpy.maximum(n, 1)))


@array_function
@implements(numpy.nanvar)
def nanvar(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, ddof: float = 0,
           keepdims: Any = NoValue, *, where: Any = NoValue, mean: Any = NoValue,
           correction: Any = NoValue) -> Array:
    """Variance over ``axis`` ignoring NaN, with ``ddof`` (or ``correction``), as
    ``numpy.nanvar``; NaN elements get zero gradient.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.nanvar(np.array([1.0, np.nan, 3.0])))
    1.0
    """
    return _nan_moment("nanvar", a, axis, dtype, out, ddof, keepdims, where, mean, correction)


@array_function
@implements(numpy.nanstd)
def nanstd(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, ddof: float = 0,
           keepdims: Any = NoValue, *, where: Any = NoValue, mean: Any = NoValue,
           correction: Any = NoValue) -> Array:
    """Standard deviation over ``axis`` ignoring NaN, as ``numpy.nanstd``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.nanstd(np.array([1.0, np.nan, 3.0])))
    1.0
    """
    return ops.sqrt(_nan_moment("nanstd", a, axis, dtype, out, ddof, keepdims, where, mean,
                                correction))
