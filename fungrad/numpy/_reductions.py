"""Reductions under NumPy's names and keywords (``axis``, ``dtype``, ``keepdims``,
``initial``, ``where``), each built on a registered op, plus the ufunc ``reduce`` methods
(``np.add.reduce(t)``) they stand for."""

from __future__ import annotations

import builtins

import numpy

from .. import ops
from ..errors import ShapeError
from ._wrap import NoValue, cast, implements, no_out

__all__ = ["sum", "mean", "var", "max", "min", "amax", "amin"]


def _keep(keepdims) -> bool:
    return False if keepdims is NoValue else builtins.bool(keepdims)


def _masked(a, where, fill):
    """``a`` with ``fill`` where ``where`` is False (``where=True`` leaves it)."""
    if where is True or where is NoValue:
        return a
    return ops.where(numpy.asarray(getattr(where, "data", where)), a, fill)


@implements(numpy.sum)
def sum(a, axis=None, dtype=None, out=None, keepdims=NoValue, initial=NoValue,  # noqa: A001
        where=NoValue):
    """Sum of array elements over ``axis``, as ``numpy.sum`` (differentiable).

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    no_out("sum", out)
    r = ops.sum(_masked(cast(a, dtype), where, 0.0), axis=axis, keepdims=_keep(keepdims))
    return r if initial is NoValue else r + initial


@implements(numpy.mean)
def mean(a, axis=None, dtype=None, out=None, keepdims=NoValue, *, where=NoValue):
    """Arithmetic mean over ``axis``, as ``numpy.mean`` (differentiable).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.mean(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    array([2., 3.])
    """
    no_out("mean", out)
    a = cast(a, dtype)
    if where is True or where is NoValue:
        return ops.mean(a, axis=axis, keepdims=_keep(keepdims))
    mask = numpy.broadcast_to(numpy.asarray(getattr(where, "data", where)), numpy.shape(
        getattr(a, "data", a)))
    count = numpy.sum(mask, axis=axis, keepdims=_keep(keepdims))
    return ops.sum(_masked(a, mask, 0.0), axis=axis, keepdims=_keep(keepdims)) / count


@implements(numpy.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=NoValue, *, where=NoValue,
        mean=NoValue, correction=NoValue):
    """Variance over ``axis`` with ``ddof`` (or ``correction``), as ``numpy.var``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.var(np.array([1.0, 3.0]), ddof=1))
    2.0
    """
    no_out("var", out)
    if where is not NoValue and where is not True:
        raise ShapeError("var: where= is not supported; select the elements first")
    if mean is not NoValue:
        raise ShapeError("var: mean= is not supported; it is computed from the data")
    if correction is not NoValue:
        ddof = correction
    return ops.var(cast(a, dtype), axis=axis, keepdims=_keep(keepdims), ddof=ddof)


def _extremum(op, fill, name):
    def f(a, axis=None, out=None, keepdims=NoValue, initial=NoValue, where=NoValue):
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
max.__doc__ = ("Maximum over ``axis``, as ``numpy.max``; tied maxima share the gradient "
               "equally (as JAX and HIPS autograd).")
min = amin = implements(numpy.min, numpy.amin)(  # noqa: A001
    _extremum(ops.min, numpy.inf, "min"))
min.__doc__ = ("Minimum over ``axis``, as ``numpy.min``; tied minima share the gradient "
               "equally (as JAX and HIPS autograd).")


def _ufunc_reduce(fn, name):
    def reduce(a, axis=0, dtype=None, out=None, keepdims=False, initial=NoValue,
               where=True):
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
implements(numpy.maximum, method="reduce")(_ufunc_reduce(max, "numpy.maximum.reduce"))
implements(numpy.minimum, method="reduce")(_ufunc_reduce(min, "numpy.minimum.reduce"))
