"""Reductions (sum, mean, prod, var, std, max, min, logsumexp) and the softmax family.

softmax, log_softmax and logsumexp are fused primitives for numerical stability: composing them
from exp/sum/log overflows for large inputs.
"""

from __future__ import annotations

import numpy as np

from .batch_rules import reduction
from ..domains import Domain, Real
from ..registry import defop, unwrap
from .elementwise import conj, exp, is_complex, where
from .scan import cumprod, divisible, shift
from .shape import broadcast_to, normalize_axes, reshape, shape_of, transpose

__all__ = ["sum", "mean", "prod", "var", "std", "max", "min", "logsumexp", "softmax",
           "log_softmax", "expand_reduced"]

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
            Domain((Real(),), _REDUCE_CASES, kind="reduction", complex=True),
            doc="""Sum over ``axis`` (all axes when None), as numpy.sum.

>>> import numpy as np, fungrad as fg
>>> fg.sum(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
array([4., 6.])
""",
    batch=reduction)


def _mean(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return np.mean(x, axis=normalize_axes("mean", axis, x.ndim), keepdims=keepdims)


mean = defop("mean", _mean,
             lambda g, out, x, axis=None, keepdims=False: (
                 expand_reduced(g, shape_of(x), axis, keepdims) / _count(shape_of(x), axis),),
             Domain((Real(),), _REDUCE_CASES, kind="reduction", complex=True),
             doc="""Arithmetic mean over ``axis`` (all axes when None), as numpy.mean.

>>> import numpy as np, fungrad as fg
>>> fg.mean(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
array([2., 3.])
""",
    batch=reduction)


def _prod(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return np.prod(x, axis=normalize_axes("prod", axis, x.ndim), keepdims=keepdims)


def _product_of_others(x, axes: tuple):
    """For each element, the product of the other elements of its slice over ``axes``.

    The reduced axes are moved last and flattened; the product of the others is the product
    of those before (a cumulative product shifted by one) times those after (the same from
    the end): no division, so zeros are exact, and differentiable again.
    """
    shape = shape_of(x)
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    order = kept + axes
    moved = transpose(x, axes=order) if order != tuple(range(len(shape))) else x
    moved_shape = tuple(shape[i] for i in order)
    n = int(np.prod([shape[i] for i in axes], dtype=np.int64))
    flat = reshape(moved, moved_shape[:len(kept)] + (n,))
    last = len(kept)
    before = shift(cumprod(flat, axis=last), last, 1, 1, later=True)
    after = shift(cumprod(flat, axis=last, reverse=True), last, 1, 1, later=False)
    others = reshape(before * after, moved_shape)
    if moved is x:
        return others
    return transpose(others, axes=tuple(int(i) for i in np.argsort(order)))


def _prod_vjp(g, out, x, axis=None, keepdims=False):
    shape = shape_of(x)
    axes = normalize_axes("prod", axis, len(shape))
    g = expand_reduced(g, shape, axis, keepdims)
    if not axes:
        return (g * 1,)
    if divisible(x):  # plain backward, no zeros: out / x is the product of the others
        return (g * expand_reduced(out, shape, axis, keepdims) / x,)
    return (g * _product_of_others(x, axes),)


# |x| <= 1.1 keeps products of up to 64 elements below 500: finite differences of their
# derivatives then resolve the exact zeros of d2 prod / dx_i2
prod = defop("prod", _prod, _prod_vjp, Domain((Real(-1.1, 1.1),), _REDUCE_CASES,
                                              kind="reduction", complex=True),
             doc="""Product over ``axis`` (all axes when None), as numpy.prod. The gradient is
the product of the other elements: ``prod / x`` in plain backward when no element is zero,
else computed with cumulative products and no division, so zeros are exact at every order.

>>> import numpy as np, fungrad as fg
>>> fg.prod(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=1)
array([ 2., 12.])
>>> fg.grad(fg.prod)(np.array([2.0, 0.0, 3.0]))
array([0., 6., 0.])
""",
    batch=reduction)


def _var(x, axis=None, keepdims=False, ddof=0):
    x = np.asarray(x)
    return np.var(x, axis=normalize_axes("var", axis, x.ndim), keepdims=keepdims, ddof=ddof)


def _centered(x, axis):
    """x minus its mean, conjugated if complex: var = mean(|x - m|^2) changes by
    ``Re(2 conj(x - m) dx) / n``."""
    centered = x - mean(x, axis=axis, keepdims=True)
    return conj(centered) if is_complex(centered) else centered


def _var_vjp(g, out, x, axis=None, keepdims=False, ddof=0):
    shape = shape_of(x)
    centered = _centered(x, axis)
    dof = _count(shape, axis) - ddof
    scale = 2.0 / dof if dof > 0 else np.inf  # numpy.var divides by max(dof, 0): inf, not an error
    return (expand_reduced(g, shape, axis, keepdims) * centered * scale,)


var = defop("var", _var, _var_vjp, Domain((Real(),), _REDUCE_CASES + [
    (((4, 3),), {"axis": 0, "ddof": 1})], kind="reduction", complex=True),
    doc="""Variance over ``axis`` with ``ddof`` (delta degrees of freedom), as numpy.var.

>>> import numpy as np, fungrad as fg
>>> fg.var(np.array([1.0, 3.0]), ddof=1)
np.float64(2.0)
""",
    batch=reduction)


def _std(x, axis=None, keepdims=False, ddof=0):
    x = np.asarray(x)
    return np.std(x, axis=normalize_axes("std", axis, x.ndim), keepdims=keepdims, ddof=ddof)


def _std_vjp(g, out, x, axis=None, keepdims=False, ddof=0):
    shape = shape_of(x)
    centered = _centered(x, axis)
    dof = _count(shape, axis) - ddof
    scale = 1.0 / dof if dof > 0 else np.inf  # as var: numpy.std divides by max(dof, 0)
    # where std is 0 every element equals the mean (centered is exactly 0): the gradient is
    # then 0, a subgradient of this cone point (and the exact gradient of a slice of one)
    safe = where(unwrap(out) == 0, 1.0, out)
    return (expand_reduced(g / safe, shape, axis, keepdims) * centered * scale,)


std = defop("std", _std, _std_vjp, Domain((Real(),), _REDUCE_CASES + [
    (((4, 3),), {"axis": 0, "ddof": 1})], kind="reduction", apart=[(0,)], complex=True),
    doc="""Standard deviation over ``axis`` with ``ddof``, as numpy.std. Where it is zero
(all elements equal) the gradient is zero.

>>> import numpy as np, fungrad as fg
>>> fg.std(np.array([1.0, 3.0]))
np.float64(1.0)
>>> fg.grad(fg.std)(np.array([1.0, 3.0]))
array([-0.5,  0.5])
""",
    batch=reduction)


def _extremum_vjp(g, out, x, axis=None, keepdims=False):
    # ties share the gradient equally, as in JAX, HIPS autograd and PyTorch's amax/amin; a
    # slice holding NaN has a NaN extremum that no element equals: its gradient is NaN, as theirs
    shape = shape_of(x)
    # (the count in the float dtype: exact, and a float reduction fg.jit compiles)
    dtype = _float_dtype(x)
    hit = unwrap(x) == expand_reduced(unwrap(out), shape, axis, keepdims)
    axes = normalize_axes("max", axis, len(shape))
    count = hit.astype(dtype).sum(axis=axes, keepdims=True)
    share = np.where(hit, 1.0 / np.maximum(count, 1), 0.0)
    share = np.where(count == 0, np.nan, share).astype(dtype, copy=False)
    return (expand_reduced(g, shape, axis, keepdims) * share,)


def _float_dtype(x):
    dt = getattr(unwrap(x), "dtype", None)  # (an array fg.jit traces has one; asarray refuses)
    dt = np.asarray(unwrap(x)).dtype if dt is None else np.dtype(dt)
    if dt.kind == "c":
        return np.finfo(dt).dtype  # the precision of its parts
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _max(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return np.max(x, axis=normalize_axes("max", axis, x.ndim), keepdims=keepdims)


def _min(x, axis=None, keepdims=False):
    x = np.asarray(x)
    return np.min(x, axis=normalize_axes("min", axis, x.ndim), keepdims=keepdims)


max = defop("max", _max, _extremum_vjp, Domain((Real(),), _REDUCE_CASES, kind="reduction",  # noqa: A001
                                                apart=[(0,)], complex=True),
            doc="""Maximum over ``axis`` (NumPy's ``max`` and ``amax``); tied maxima share the
gradient equally, and a slice holding NaN gets NaN gradients.

>>> import numpy as np, fungrad as fg
>>> fg.grad(fg.max)(np.array([1.0, 3.0, 3.0]))
array([0. , 0.5, 0.5])
""",
    batch=reduction)
min = defop("min", _min, _extremum_vjp, Domain((Real(),), _REDUCE_CASES, kind="reduction",  # noqa: A001
                                                apart=[(0,)], complex=True),
            doc="""Minimum over ``axis`` (NumPy's ``min`` and ``amin``); tied minima share the
gradient equally, and a slice holding NaN gets NaN gradients.

>>> import numpy as np, fungrad as fg
>>> fg.min(np.array([[1.0, 3.0], [0.0, 2.0]]), axis=1)
array([1., 0.])
""",
    batch=reduction)

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
                  doc="""log(sum(exp(x))) over ``axis``, stable for large inputs; its gradient
is softmax(x).

>>> import numpy as np, fungrad as fg
>>> fg.logsumexp(np.array([1000.0, 1000.0])).round(4)
np.float64(1000.6931)
""",
    batch=reduction)


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
                doc="""exp(x) / sum(exp(x)) along ``axis``, stable for large inputs.

>>> import numpy as np, fungrad as fg
>>> fg.softmax(np.array([0.0, 1000.0]))
array([0., 1.])
""",
    batch=reduction)


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
                    doc="""x - logsumexp(x) along ``axis``, stable for large inputs.

>>> import numpy as np, fungrad as fg
>>> fg.log_softmax(np.array([0.0, 0.0])).round(4)
array([-0.6931, -0.6931])
""",
    batch=reduction)
