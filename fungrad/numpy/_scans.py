"""Scans and differences under NumPy's names: ``cumsum``, ``cumprod`` (and the NumPy 2
``cumulative_sum``/``cumulative_prod``), the ufunc ``accumulate`` methods they stand for
(``np.add.accumulate``, ``np.multiply.accumulate``), ``diff`` and ``gradient``.

``diff`` and ``gradient`` are compositions of slicing and arithmetic ops, so they differentiate
(to any order) with no derivative of their own; ``gradient``'s spacing may be a Tensor too.
"""

from __future__ import annotations

from typing import Any

import numpy

from .. import primitives as ops
from ..errors import DTypeError
from ..primitives.shape import normalize_axes
from ..tensor import Tensor
from ._wrap import NoValue, cast, data_of, implements, no_out, plain
from ..typing import array_function

__all__ = ["cumsum", "cumprod", "cumulative_sum", "cumulative_prod", "diff", "gradient"]


@array_function
@implements(numpy.cumsum)
def cumsum(a: Any, axis: int | None = None, dtype: Any = None, out: Any = None) -> Any:
    """Cumulative sum along ``axis`` (of the flattened array when None), as ``numpy.cumsum``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.cumsum(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    array([[1., 2.],
           [4., 6.]])
    """
    no_out("cumsum", out)
    return ops.cumsum(cast(a, dtype), axis=axis)


@array_function
@implements(numpy.cumprod)
def cumprod(a: Any, axis: int | None = None, dtype: Any = None, out: Any = None) -> Any:
    """Cumulative product along ``axis`` (flattened when None), as ``numpy.cumprod``; its
    gradient is exact where elements are zero.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.cumprod(x)[-1])(np.array([2.0, 0.0, 3.0]))
    array([0., 6., 0.])
    """
    no_out("cumprod", out)
    return ops.cumprod(cast(a, dtype), axis=axis)


def _cumulative(name: str, op, identity: float, x, axis, dtype, out, include_initial):
    no_out(name, out)
    data = data_of(x)
    if axis is None:
        if data.ndim > 1:
            raise ValueError(f"{name}: axis must be given for arrays of more than one "
                             f"dimension (got shape {data.shape})")
        axis = 0
    x = cast(x, dtype)
    r = op(x, axis=axis)
    if not include_initial:
        return r
    ax = normalize_axes(name, axis, data.ndim)[0]
    shape = numpy.shape(plain(r))
    first = numpy.full(shape[:ax] + (1,) + shape[ax + 1:], identity,
                       dtype=numpy.result_type(plain(r)))
    return ops.concatenate([first, r], axis=ax)


@array_function
@implements(numpy.cumulative_sum)
def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, out: Any = None,
                   include_initial: bool = False) -> Any:
    """Cumulative sum, as ``numpy.cumulative_sum`` (``include_initial`` starts with 0).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.cumulative_sum(np.array([1.0, 2.0]), include_initial=True)
    array([0., 1., 3.])
    """
    return _cumulative("cumulative_sum", ops.cumsum, 0, x, axis, dtype, out, include_initial)


@array_function
@implements(numpy.cumulative_prod)
def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                    out: Any = None, include_initial: bool = False) -> Any:
    """Cumulative product, as ``numpy.cumulative_prod`` (``include_initial`` starts with 1).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.cumulative_prod(np.array([2.0, 3.0]), include_initial=True)
    array([1., 2., 6.])
    """
    return _cumulative("cumulative_prod", ops.cumprod, 1, x, axis, dtype, out,
                       include_initial)


def _accumulate(fn, name: str):
    def accumulate(array: Any, axis: int = 0, dtype: Any = None, out: Any = None) -> Any:
        no_out(name, out)
        return fn(array, axis=axis, dtype=dtype)
    accumulate.__name__ = accumulate.__qualname__ = name
    accumulate.__doc__ = f"``{name}``, differentiable: ``{fn.__name__}`` along ``axis``."
    return accumulate


implements(numpy.add, method="accumulate")(_accumulate(cumsum, "numpy.add.accumulate"))
implements(numpy.multiply, method="accumulate")(
    _accumulate(cumprod, "numpy.multiply.accumulate"))


# -- differences ---------------------------------------------------------------------------------


def _along(axis: int, ndim: int, index) -> tuple:
    """An index selecting ``index`` (a slice or int) along ``axis`` of an ``ndim``-d array."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


def _edge(value, shape: tuple, axis: int):
    """``prepend``/``append`` of diff: a scalar becomes one slice of ``shape`` along axis."""
    if numpy.ndim(plain(value)) == 0:
        return ops.broadcast_to(value, shape=shape[:axis] + (1,) + shape[axis + 1:])
    return value


@array_function
@implements(numpy.diff)
def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = NoValue,
         append: Any = NoValue) -> Any:
    """The ``n``-th discrete difference along ``axis``, as ``numpy.diff`` (``prepend`` and
    ``append`` values are joined first, and are differentiable too).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.diff(np.array([1.0, 4.0, 9.0, 16.0]), n=2)
    array([2., 2.])
    >>> fnp.diff(np.array([1.0, 4.0]), prepend=0.0)
    array([1., 3.])
    """
    if n == 0:
        return a
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}")
    shape = numpy.shape(plain(a))
    if not shape:
        raise ValueError("diff: needs an array of at least one dimension, got a 0-d array")
    ax = normalize_axes("diff", axis, len(shape))[0]
    parts = [_edge(prepend, shape, ax)] if prepend is not NoValue else []
    parts.append(a)
    if append is not NoValue:
        parts.append(_edge(append, shape, ax))
    if len(parts) > 1:
        a = ops.concatenate(parts, axis=ax)
    if numpy.result_type(plain(a)) == numpy.bool_:  # NumPy: booleans differ by not_equal
        return numpy.diff(plain(a), n=n, axis=ax)
    nd = len(shape)
    for _ in range(n):
        a = a[_along(ax, nd, slice(1, None))] - a[_along(ax, nd, slice(None, -1))]
    return a


@implements(numpy.gradient)
def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """Derivatives of sampled values ``f`` along each axis, as ``numpy.gradient``: second-order
    accurate central differences inside, one-sided differences of order ``edge_order`` (1 or 2)
    at the edges. ``varargs`` give the spacing: one scalar for every axis, or one per axis
    (a scalar, or the coordinates along that axis). One axis gives an array, several a tuple.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.gradient(np.array([1.0, 4.0, 9.0, 16.0]))
    array([3., 4., 6., 7.])
    >>> fnp.gradient(np.array([1.0, 4.0, 9.0, 16.0]), 2.0, edge_order=2)
    array([1., 2., 3., 4.])
    """
    data = data_of(f)
    if data.dtype == numpy.bool_:
        raise DTypeError("gradient: booleans have no differences (NumPy refuses them too); "
                         "convert with astype(float) first")
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    axes = _gradient_axes(data.ndim, axis)
    spacings = _spacings(varargs, axes, data.shape)
    otype = data.dtype if data.dtype.kind in "fc" else numpy.dtype(numpy.float64)
    if data.dtype.kind not in "fc":
        f = cast(f, otype)
    outs = []
    for ax, h in zip(axes, spacings):
        if data.shape[ax] < edge_order + 1:
            raise ValueError(f"gradient: axis {ax} has {data.shape[ax]} elements; at least "
                             f"edge_order + 1 = {edge_order + 1} are needed")
        g = _gradient_along(f, ax, data.ndim, h, edge_order)
        outs.append(cast(g, otype) if numpy.result_type(plain(g)) != otype else g)
    return outs[0] if len(outs) == 1 else tuple(outs)


def _gradient_axes(ndim: int, axis) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    given = (axis,) if numpy.ndim(axis) == 0 else tuple(axis)
    axes = tuple(normalize_axes("gradient", a, ndim)[0] for a in given)
    if len(set(axes)) != len(axes):
        raise ValueError(f"gradient: repeated axis in {axis!r}")
    return axes


def _spacings(varargs: tuple, axes: tuple, shape: tuple) -> list:
    """Per axis: a scalar step, or the differences of the given coordinates (a scalar again
    when they are uniform, as NumPy does)."""
    if not varargs:
        return [1.0] * len(axes)
    if len(varargs) == 1 and numpy.ndim(plain(varargs[0])) == 0:
        return [varargs[0]] * len(axes)
    if len(varargs) != len(axes):
        raise TypeError(f"gradient: {len(varargs)} spacings given for {len(axes)} axes; give "
                        "none, one scalar, or one per axis")
    out = []
    for ax, h in zip(axes, varargs):
        hd = numpy.asarray(plain(h))
        if hd.ndim == 0:
            out.append(h)
            continue
        if hd.ndim != 1 or hd.shape[0] != shape[ax]:
            raise ValueError(f"gradient: coordinates of shape {hd.shape} given for axis {ax} "
                             f"of length {shape[ax]}; give a scalar or {shape[ax]} coordinates")
        if isinstance(h, Tensor):  # differentiable coordinates: keep every difference
            out.append(diff(h if hd.dtype.kind == "f" else cast(h, numpy.float64)))
            continue
        d = numpy.diff(hd)
        d = d if d.dtype.kind == "f" else d.astype(numpy.float64)
        out.append(d[0] if d.size and (d == d[0]).all() else d)
    return out


def _gradient_along(f, ax: int, nd: int, h, edge_order: int):
    def s(index):
        return f[_along(ax, nd, index)]

    if numpy.ndim(plain(h)) == 0:  # uniform spacing
        inner = (s(slice(2, None)) - s(slice(None, -2))) / (2.0 * h)
        if edge_order == 1:
            first = (s(slice(1, 2)) - s(slice(0, 1))) / h
            last = (s(slice(-1, None)) - s(slice(-2, -1))) / h
        else:
            first = (-1.5 / h) * s(slice(0, 1)) + (2.0 / h) * s(slice(1, 2)) \
                + (-0.5 / h) * s(slice(2, 3))
            last = (0.5 / h) * s(slice(-3, -2)) + (-2.0 / h) * s(slice(-2, -1)) \
                + (1.5 / h) * s(slice(-1, None))
        return ops.concatenate([first, inner, last], axis=ax)
    coef_shape = tuple(-1 if i == ax else 1 for i in range(nd))
    dx1, dx2 = h[:-1], h[1:]
    a = ops.reshape(-dx2 / (dx1 * (dx1 + dx2)), shape=coef_shape)
    b = ops.reshape((dx2 - dx1) / (dx1 * dx2), shape=coef_shape)
    c = ops.reshape(dx1 / (dx2 * (dx1 + dx2)), shape=coef_shape)
    inner = a * s(slice(None, -2)) + b * s(slice(1, -1)) + c * s(slice(2, None))
    first, last = _uneven_edges(s, h, edge_order)
    return ops.concatenate([first, inner, last], axis=ax)


def _uneven_edges(s, h, edge_order: int):
    if edge_order == 1:
        return ((s(slice(1, 2)) - s(slice(0, 1))) / h[0],
                (s(slice(-1, None)) - s(slice(-2, -1))) / h[-1])
    d1, d2 = h[0], h[1]
    first = (-(2.0 * d1 + d2) / (d1 * (d1 + d2)) * s(slice(0, 1))
             + (d1 + d2) / (d1 * d2) * s(slice(1, 2))
             - d1 / (d2 * (d1 + d2)) * s(slice(2, 3)))
    d1, d2 = h[-2], h[-1]
    last = (d2 / (d1 * (d1 + d2)) * s(slice(-3, -2))
            - (d2 + d1) / (d1 * d2) * s(slice(-2, -1))
            + (2.0 * d2 + d1) / (d2 * (d1 + d2)) * s(slice(-1, None)))
    return first, last
