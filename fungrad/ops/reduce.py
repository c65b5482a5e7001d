"""Reductions (sum, mean, var, max, min, logsumexp) and the softmax family.

softmax, log_softmax and logsumexp are fused primitives for numerical stability: composing them
from exp/sum/log overflows for large inputs.
"""

from __future__ import annotations

import numpy as np

from ..domains import Domain, Real
from ..registry import defop, unwrap
from .elementwise import exp, where
from .shape import broadcast_to, normalize_axes, reshape, shape_of

__all__ = ["sum", "mean", "var", "max", "min", "logsumexp", "softmax", "log_softmax",
           "expand_reduced"]

_REDUCE_CASES = [
    (((3, 4),), {}), (((3, 4),), {"axis": 0}), (((3, 4),), {"axis": 1, "keepdims": True}),
    (((2, 3, 4),), {"axis": (0, 2)}), (((2, 3, 4),), {"axis": -1}), (((5,),), {}),
]


def expand_reduced(g, x_shape: tuple, axis, keepdims: bool):
    """Broadcast the cotangent of a reduction back to the shape of its input."""
    if not keepdims and axis is not None:  # a full reduction's 0-d cotangent broadcasts as is
        axes = normalize_axes("reduce", axis, len(x_shape))
        kept = tuple(1 if i in axes else n for i, n in enumerate(x_shape))
        g = reshape(g, kept)
    return broadcast_to(g, x_shape)


def _count(x_shape, axis) -> int:
    axes = normalize_axes("reduce", axis, len(x_shape))
    return int(np.prod([x_shape[a] for a in axes])) if axes else 1


def _sum(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return np.sum(x, axis=normalize_axes("sum", axis, x.ndim), keepdims=keepdims)


sum = defop("sum", _sum,  # noqa: A001
            lambda g, out, x, axis=None, keepdims=False: (
                expand_reduced(g, shape_of(x), axis, keepdims),),
            Domain((Real(),), _REDUCE_CASES, kind="reduction"),
            doc="Sum over ``axis`` (all axes when None), as numpy.sum.")


def _mean(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return np.mean(x, axis=normalize_axes("mean", axis, x.ndim), keepdims=keepdims)


mean = defop("mean", _mean,
             lambda g, out, x, axis=None, keepdims=False: (
                 expand_reduced(g, shape_of(x), axis, keepdims) / _count(shape_of(x), axis),),
             Domain((Real(),), _REDUCE_CASES, kind="reduction"))


def _var(x, axis=None, keepdims=False, ddof=0):
    x = np.asarray(x)
    return np.var(x, axis=normalize_axes("var", axis, x.ndim), keepdims=keepdims, ddof=ddof)


def _var_vjp(g, out, x, axis=None, keepdims=False, ddof=0):
    shape = shape_of(x)
    centered = x - mean(x, axis=axis, keepdims=True)
    dof = _count(shape, axis) - ddof
    scale = 2.0 / dof if dof > 0 else np.inf  # numpy.var divides by max(dof, 0): inf, not an error
    return (expand_reduced(g, shape, axis, keepdims) * centered * scale,)


var = defop("var", _var, _var_vjp, Domain((Real(),), _REDUCE_CASES + [
    (((4, 3),), {"axis": 0, "ddof": 1})], kind="reduction"),
    doc="Variance over ``axis`` with ``ddof`` as numpy.var.")


def _extremum_vjp(g, out, x, axis=None, keepdims=False):
    # ties share the gradient equally, as in PyTorch's amax/amin
    shape = shape_of(x)
    hit = x == expand_reduced(out, shape, axis, keepdims)
    hit_data = unwrap(hit)
    axes = normalize_axes("max", axis, len(shape))
    count = hit_data.sum(axis=axes, keepdims=True)
    share = where(hit_data, 1.0 / count, 0.0)
    return (expand_reduced(g, shape, axis, keepdims) * share.astype(_float_dtype(x)),)


def _float_dtype(x):
    dt = getattr(unwrap(x), "dtype", None)  # (an array fg.jit traces has one; asarray refuses)
    dt = np.asarray(unwrap(x)).dtype if dt is None else np.dtype(dt)
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _max(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return np.max(x, axis=normalize_axes("max", axis, x.ndim), keepdims=keepdims)


def _min(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return np.min(x, axis=normalize_axes("min", axis, x.ndim), keepdims=keepdims)


max = defop("max", _max, _extremum_vjp, Domain((Real(),), _REDUCE_CASES, kind="reduction",  # noqa: A001
                                                apart=[(0,)]),
            doc="Maximum over ``axis``; tied maxima share the gradient equally.")
min = defop("min", _min, _extremum_vjp, Domain((Real(),), _REDUCE_CASES, kind="reduction",  # noqa: A001
                                                apart=[(0,)]),
            doc="Minimum over ``axis``; tied minima share the gradient equally.")

# -- the softmax family (fused for stability) ---------------------------------------------------

_SOFTMAX_CASES = [(((3, 5),), {}), (((3, 5),), {"axis": 0}), (((2, 3, 4),), {"axis": 1}),
                  (((6,),), {})]


def _shift(x, axes: tuple):
    """(x - m, m) for m the maximum over the normalized ``axes`` (kept), 0 where not finite."""
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return x - m, m


def _lse(x, axes: tuple, keepdims: bool):
    """log(sum(exp(x))) over the normalized ``axes``, shifted by the maximum."""
    if not x.size:  # an empty sum: log(0) = -inf, as scipy.special.logsumexp
        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        out = np.full(shape, -np.inf, dtype=_float_dtype(x))
    else:
        z, m = _shift(x, axes)
        out = np.log(np.sum(np.exp(z), axis=axes, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axes)


def _logsumexp(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return _lse(x, normalize_axes("logsumexp", axis, x.ndim), keepdims)


logsumexp = defop("logsumexp", _logsumexp,
                  lambda g, out, x, axis=None, keepdims=False: (
                      expand_reduced(g, shape_of(x), axis, keepdims)
                      * exp(x - expand_reduced(out, shape_of(x), axis, keepdims)),),
                  Domain((Real(-3, 3),), _REDUCE_CASES, kind="reduction"),
                  doc="log(sum(exp(x))) over ``axis``, stable for large inputs.")


def _softmax(x, axis=-1):
    x = np.asarray(x)
    axes = normalize_axes("softmax", axis, x.ndim)
    if x.dtype == np.bool_:  # as integers, like logsumexp (NumPy cannot subtract booleans)
        x = x.astype(np.int64)
    if not x.size:  # nothing to normalise (np.max has no identity for an empty axis)
        return np.exp(x)
    e = np.exp(x - np.max(x, axis=axes, keepdims=True))
    return e / np.sum(e, axis=axes, keepdims=True)


def _softmax_vjp(g, out, x, axis=-1):
    gy = g * out
    return (gy - out * sum(gy, axis=axis, keepdims=True),)


softmax = defop("softmax", _softmax, _softmax_vjp,
                Domain((Real(-3, 3),), _SOFTMAX_CASES, kind="reduction"),
                doc="exp(x) / sum(exp(x)) along ``axis``, stable for large inputs.")


def _log_softmax(x, axis=-1):
    x = np.asarray(x)
    axes = normalize_axes("log_softmax", axis, x.ndim)
    if not x.size:
        return x - _lse(x, axes, True)
    # (x - m) - log(sum(exp(x - m))), not x - logsumexp(x): adding m back and subtracting it
    # again loses digits (3e-4 relative in float32 at |x| = 1e4)
    z, _ = _shift(x, axes)
    return z - np.log(np.sum(np.exp(z), axis=axes, keepdims=True))


def _log_softmax_vjp(g, out, x, axis=-1):
    return (g - exp(out) * sum(g, axis=axis, keepdims=True),)


log_softmax = defop("log_softmax", _log_softmax, _log_softmax_vjp,
                    Domain((Real(-3, 3),), _SOFTMAX_CASES, kind="reduction"),
                    doc="x - logsumexp(x) along ``axis``, stable for large inputs.")
