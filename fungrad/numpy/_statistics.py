"""Order statistics under NumPy's names: median, quantile, percentile and their NaN-ignoring
twins, differentiable.

Each sorts the reduced axes into one last axis (``sort``, whose gradient goes through the
permutation), finds the two order statistics either side of the quantile's virtual index with
NumPy's rule for ``method`` (Hyndman and Fan's), gathers them with ``take_along_axis`` and
interpolates: the gradient reaches the two neighbours, weighted ``1 - gamma`` and ``gamma``
(half each for an even median), as in JAX and HIPS autograd. A differentiable ``q`` gets the
slope between the neighbours. The positions are computed on the values' data (:func:`data_of`),
so they follow every example under ``fg.vmap`` and every call under ``fg.jit``; the NaN-ignoring
versions count each slice's numbers and interpolate within them.
"""

from __future__ import annotations

import builtins
from typing import Any, Callable

import numpy

from .. import primitives as ops
from ..errors import DTypeError, ShapeError
from ..primitives.shape import normalize_axes, shape_of
from ..tensor import Tensor
from ._selection import sort, take_along_axis
from ._shape import Array, _permuted, _reshaped, operand
from ._wrap import NoValue, as_numpy_result, data_of, implements, known_values, no_out

__all__ = ["median", "quantile", "percentile", "nanmedian", "nanquantile", "nanpercentile"]


# -- NumPy's methods: the virtual index of quantile q in a sorted sample of n -------------------

def _continuous(alpha: float, beta: float) -> Callable:
    return lambda n, q: n * q + (alpha + q * (1 - alpha - beta)) - 1


# name -> (the virtual index of q in n sorted values, how it picks or weighs the neighbours:
# None interpolates by the fraction; "index" picks one value; the others are NumPy's rules)
_METHODS: dict[str, tuple[Callable, str | None]] = {
    "linear": (lambda n, q: (n - 1) * q, None),
    "lower": (lambda n, q: numpy.floor(data_of((n - 1) * q)), "index"),
    "higher": (lambda n, q: numpy.ceil(data_of((n - 1) * q)), "index"),
    "nearest": (lambda n, q: numpy.round(data_of((n - 1) * q)), "index"),
    "midpoint": (lambda n, q: (n - 1) * q, "midpoint"),
    "interpolated_inverted_cdf": (_continuous(0, 1), None),
    "hazen": (_continuous(0.5, 0.5), None),
    "weibull": (_continuous(0, 0), None),
    "median_unbiased": (_continuous(1 / 3, 1 / 3), None),
    "normal_unbiased": (_continuous(3 / 8, 3 / 8), None),
    "inverted_cdf": (lambda n, q: data_of(n * q) - 1, "inverted_cdf"),
    "averaged_inverted_cdf": (lambda n, q: n * q - 1, "averaged"),
    "closest_observation": (lambda n, q: data_of(n * q) - 1.5, "closest"),
}
_DISCRETE = ("index", "inverted_cdf", "closest")


def _positions(method: str, n: Any, q: Any) -> tuple[Any, Any, Any]:
    """``(previous, next, gamma)`` for quantile ``q`` of ``n`` sorted values: the virtual
    index's neighbours (not yet clipped to the sample) and the weight of ``next``. ``gamma``
    is differentiable in ``q`` for the interpolating methods; the indices are data."""
    index, rule = _METHODS[method]
    vi = index(n, q)
    v = data_of(vi)
    prev = numpy.floor(v)
    if rule == "index":  # one order statistic, no weight
        return prev, prev, numpy.zeros(v.shape)
    if rule in ("inverted_cdf", "closest"):
        frac = v - prev
        keep = frac == 0
        if rule == "closest":
            keep = keep & (prev % 2 == 1)
        pick = numpy.where(keep, prev, prev + 1)
        return pick, pick, numpy.zeros(v.shape)
    frac = vi - prev  # differentiable in q where vi is
    if rule == "midpoint":
        return prev, prev + 1, numpy.where(data_of(frac) == 0, 0.0, 0.5)
    if rule == "averaged":
        return prev, prev + 1, numpy.where(data_of(frac) == 0, 0.5, 1.0)
    return prev, prev + 1, frac


# -- the shared implementation --------------------------------------------------------------------

def _quantile(name: str, a: Any, q: Any, axis: Any, method: str, keepdims: bool,
              ignore_nan: bool) -> Array:
    if method not in _METHODS:
        raise ShapeError(f"{name}: method must be one of {', '.join(_METHODS)}; got {method!r}")
    x: Any = operand(a)
    data = data_of(x)
    if data.dtype.kind == "c":
        raise DTypeError(f"{name}: complex values have no order (dtype {data.dtype})")
    q, qd = _checked_q(name, q)
    # a method that picks a value (or integer q, linear) keeps a's dtype, as NumPy's
    discrete = _METHODS[method][1] in _DISCRETE or (method == "linear" and qd.dtype.kind in "iu")
    if data.dtype.kind not in "f" and not discrete:
        x = ops.astype(x, dtype="float64")
    shape = shape_of(x)
    axes = tuple(range(len(shape))) if axis is None else normalize_axes(name, axis, len(shape))
    s = _sorted_last(name, x, axes, qd.ndim)
    if ignore_nan:  # each slice's numbers, sorted before its NaNs
        count = numpy.sum(~numpy.isnan(data_of(s)), axis=-1, keepdims=True)
    else:
        count = shape_of(s)[-1]
    qv: Any
    if isinstance(q, Tensor):  # q's axes first, then one per axis of the result
        qv = _reshaped(q, qd.shape + (1,) * (len(shape) - len(axes) + 1)) if qd.ndim else q
    elif qd.ndim:
        qv = data_of(q).astype(numpy.float64).reshape(qd.shape + (1,) * (len(shape)
                                                                        - len(axes) + 1))
    else:  # a Python float keeps float32 data float32, as NumPy's weak scalars do
        qv = float(qd)
    prev, nxt, gamma = _positions(method, count, qv)
    below = take_along_axis(s, _clipped(prev, count, s.ndim), axis=-1)
    if discrete:
        out, dtype = below, data.dtype
    else:
        above = take_along_axis(s, _clipped(nxt, count, s.ndim), axis=-1)
        strong_q = qd.ndim or isinstance(q, (Tensor, numpy.ndarray, numpy.generic))
        dtype = numpy.result_type(data.dtype if data.dtype.kind == "f" else numpy.float64,
                                  qd.dtype if strong_q else float(qd))
        out = below + (above - below) * (gamma if isinstance(gamma, Tensor)
                                         else gamma.astype(dtype))
        if data_of(out).dtype != dtype:
            out = ops.astype(out, dtype=dtype.name)
    out = _reshaped(out, shape_of(out)[:-1])
    if data.dtype.kind == "f":  # a NaN anywhere (NumPy) or everywhere (nan*) gives NaN
        bad = (count[..., 0] == 0) if ignore_nan else numpy.isnan(data_of(s)[..., -1])
        out = ops.where(bad, numpy.asarray(numpy.nan, dtype=dtype), out)
    if keepdims:
        out = _reshaped(out, qd.shape + tuple(1 if d in axes else n for d, n in enumerate(shape)))
    return as_numpy_result(out)


def _checked_q(name: str, q: Any) -> tuple[Any, Any]:
    """``q`` (a list holding Tensors stacked) and its values, checked to be in [0, 1]."""
    if isinstance(q, (list, tuple)):
        q = operand(q)  # differentiable if it holds Tensors
    qd = data_of(q)
    if qd.dtype.kind not in "biuf":
        raise DTypeError(f"{name}: q must be real numbers, got dtype {qd.dtype}")
    known = known_values(qd)
    if known is not None and known.size and not (known.min() >= 0 and known.max() <= 1):
        raise ValueError(f"{name}: quantiles must be in the range [0, 1] (percentiles in "
                         f"[0, 100]), got {known.min() if known.min() < 0 else known.max()}")
    return q, qd


def _sorted_last(name: str, x: Any, axes: tuple, q_ndim: int) -> Any:
    """``x`` with the ``axes`` to reduce merged into one last axis and sorted along it, and
    ``q_ndim`` axes of length 1 in front (for q's axes)."""
    shape = shape_of(x)
    kept = [d for d in range(len(shape)) if d not in axes]
    n = int(numpy.prod([shape[d] for d in axes], dtype=numpy.int64))
    if n == 0:
        raise ShapeError(f"{name}: cannot take a quantile of an empty axis (shape {shape}, "
                         f"axis {axes})")
    x = _reshaped(_permuted(x, kept + list(axes)), tuple(shape[d] for d in kept) + (n,))
    s = sort(x, axis=-1)
    return _reshaped(s, (1,) * q_ndim + shape_of(s))


def _clipped(index: Any, count: Any, ndim: int) -> Any:
    """Float ``index`` as integer positions among the ``count`` values of each slice (one
    count per slice for the NaN-ignoring functions; a slice without numbers reads position 0
    and is made NaN later), with ``ndim`` axes (for ``take_along_axis``)."""
    index = numpy.clip(index, 0, numpy.maximum(count - 1, 0)).astype(numpy.intp)
    return index.reshape((1,) * (ndim - index.ndim) + tuple(index.shape))


def _keep(keepdims: Any) -> bool:
    return False if keepdims is NoValue else builtins.bool(keepdims)


def _refuse(name: str, out: Any, weights: Any) -> None:
    no_out(name, out)
    if weights is not None:
        raise ShapeError(f"{name}: weights= is not supported (NumPy supports it for "
                         "method='inverted_cdf' only); repeat the samples instead")


def _percent(name: str, q: Any) -> Any:
    qd = data_of(q)
    known = known_values(qd)
    if known is not None and known.size and not (known.min() >= 0 and known.max() <= 100):
        raise ValueError(f"{name}: percentiles must be in the range [0, 100], got "
                         f"{known.min() if known.min() < 0 else known.max()}")
    if isinstance(q, (list, tuple)):
        q = operand(q)
    if isinstance(q, (Tensor, int, float)):
        return q / 100
    return numpy.true_divide(qd, 100)


# -- NumPy's names --------------------------------------------------------------------------------

@implements(numpy.quantile)
def quantile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False, *, weights: Any = None) -> Array:
    """The ``q``-th quantiles (``q`` in [0, 1], a scalar or an array whose axes come first) of
    ``a`` over ``axis`` (an int, a tuple, or None for all), as ``numpy.quantile``, with all of
    NumPy's methods. Differentiable in ``a`` (through the two order statistics it interpolates)
    and in a Tensor ``q``.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.quantile(np.array([[1.0, 4.0, 2.0], [3.0, 0.0, 5.0]]), [0.5, 0.75], axis=1)
    array([[2., 3.],
           [3., 4.]])
    >>> fg.grad(lambda x: fnp.quantile(x, 0.25))(np.array([4.0, 1.0, 3.0]))
    array([0. , 0.5, 0.5])
    """
    _refuse("quantile", out, weights)
    return _quantile("quantile", a, q, axis, method, keepdims, ignore_nan=False)


@implements(numpy.percentile)
def percentile(a: Any, q: Any, axis: Any = None, out: Any = None,
               overwrite_input: bool = False, method: str = "linear", keepdims: bool = False,
               *, weights: Any = None) -> Array:
    """The ``q``-th percentiles (``q`` in [0, 100]) of ``a`` over ``axis``, as
    ``numpy.percentile``: :func:`quantile` of ``q / 100``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.percentile(np.array([1.0, 2.0, 3.0, 4.0]), 50)
    np.float64(2.5)
    """
    _refuse("percentile", out, weights)
    return _quantile("percentile", a, _percent("percentile", q), axis, method, keepdims,
                     ignore_nan=False)


@implements(numpy.median)
def median(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
           keepdims: bool = False) -> Array:
    """The median of ``a`` over ``axis`` (an int, a tuple, or None for all), as
    ``numpy.median``; an even count averages the two middle values, which share the gradient.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fg.grad(lambda x: fnp.median(x))(np.array([3.0, 1.0, 4.0, 2.0]))
    array([0.5, 0. , 0. , 0.5])
    """
    no_out("median", out)
    return _quantile("median", a, 0.5, axis, "linear", keepdims, ignore_nan=False)


@implements(numpy.nanquantile)
def nanquantile(a: Any, q: Any, axis: Any = None, out: Any = None,
                overwrite_input: bool = False, method: str = "linear",
                keepdims: Any = NoValue, *, weights: Any = None) -> Array:
    """:func:`quantile` ignoring NaNs, as ``numpy.nanquantile`` (NaN for an all-NaN slice);
    NaN elements get zero gradient.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.nanquantile(np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, np.nan]]), 0.5, axis=1)
    array([2., 2.])
    """
    _refuse("nanquantile", out, weights)
    return _quantile("nanquantile", a, q, axis, method, _keep(keepdims), ignore_nan=True)


@implements(numpy.nanpercentile)
def nanpercentile(a: Any, q: Any, axis: Any = None, out: Any = None,
                  overwrite_input: bool = False, method: str = "linear",
                  keepdims: Any = NoValue, *, weights: Any = None) -> Array:
    """:func:`percentile` ignoring NaNs, as ``numpy.nanpercentile``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.nanpercentile(np.array([1.0, np.nan, 3.0]), 50)
    np.float64(2.0)
    """
    _refuse("nanpercentile", out, weights)
    return _quantile("nanpercentile", a, _percent("nanpercentile", q), axis, method,
                     _keep(keepdims), ignore_nan=True)


@implements(numpy.nanmedian)
def nanmedian(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
              keepdims: Any = NoValue) -> Array:
    """:func:`median` ignoring NaNs, as ``numpy.nanmedian``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.nanmedian(np.array([[1.0, np.nan], [2.0, 4.0]]), axis=1)
    array([1., 3.])
    """
    no_out("nanmedian", out)
    return _quantile("nanmedian", a, 0.5, axis, "linear", _keep(keepdims), ignore_nan=True)
