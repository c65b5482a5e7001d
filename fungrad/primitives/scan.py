"""Scans: cumulative sums and products along an axis (forwards, or from the end with
``reverse=True``, as JAX's ``lax.cumsum``).

``cumsum``'s VJP is the cumulative sum running the other way. ``cumprod``'s VJP is
``cumsum(g * out, reversed) / x`` in plain backward when no element is zero; otherwise (zeros,
or a VJP that will be differentiated again) it never divides by the input, so zeros are exact,
at every order: for ``out_i = x_0 ... x_i``,

    dx_k = (x_0 ... x_{k-1}) * R_k,    R_k = g_k + x_{k+1} R_{k+1}

where the first factor is the output shifted by one and the linear recurrence ``R`` runs in
``log2(n)`` doubling steps of shifts, products and sums (a Hillis-Steele scan), all registered
ops, so the VJP differentiates again.
"""

from __future__ import annotations

import numpy as np

from .batch_rules import batched_position, ndim_of, to_front
from ..domains import Domain, Real
from ..registry import defop, unwrap
from ..recording import is_traced
from .shape import concatenate, normalize_axes, reshape, shape_of

__all__ = ["cumsum", "cumprod", "shift", "divisible"]

_SCAN_CASES = [
    (((3, 4),), {"axis": 0}), (((3, 4),), {"axis": 1, "reverse": True}),
    (((2, 3, 4),), {"axis": -1}), (((2, 3, 4),), {"axis": 1, "reverse": True}),
    (((6,),), {"axis": None}), (((2, 3),), {"axis": None, "reverse": True}),
    (((1,),), {"axis": 0}), (((7,),), {"axis": 0}),
]


def _scan(fn, x, axis, reverse: bool) -> np.ndarray:
    """``fn`` (np.cumsum or np.cumprod: their dtype rules) along ``axis``, from the end if
    ``reverse``."""
    if not reverse:
        return fn(x, axis=axis)
    x = np.asarray(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return np.flip(fn(np.flip(x, axis), axis=axis), axis)


def _scan_axis(op: str, x, axis):
    """(x, axis) with ``axis=None`` meaning the flattened array, as NumPy."""
    if axis is None:
        return reshape(x, (-1,)), 0
    return x, normalize_axes(op, axis, len(shape_of(x)))[0]


def shift(y, axis: int, d: int, fill, later: bool):
    """``y`` moved ``d`` places along ``axis`` (towards the end if ``later``), the vacated
    places holding ``fill``: ``out[k] = y[k - d]`` if ``later``, else ``y[k + d]``.

    >>> import numpy as np
    >>> from fungrad.primitives.scan import shift
    >>> shift(np.array([1.0, 2.0, 3.0]), 0, 1, 0.0, later=True)
    array([0., 1., 2.])
    """
    shape = shape_of(y)
    n = shape[axis]
    block = np.full(shape[:axis] + (min(d, n),) + shape[axis + 1:], fill,
                    dtype=np.result_type(unwrap(y)))
    if d >= n:
        return block
    keep = slice(0, n - d) if later else slice(d, n)
    part = y[(slice(None),) * axis + (keep,)]
    return concatenate([block, part] if later else [part, block], axis=axis)


def divisible(x) -> bool:
    """Whether a product's VJP may divide by ``x``: a plain array (plain backward: the result
    is not differentiated again) with no zeros. Otherwise (zeros, or Tensors under
    ``create_graph``/nested ``grad``) the division-free form runs: exact at zeros, and its
    derivatives free of the rounding noise ``out / x`` carries for large products.

    >>> import numpy as np
    >>> from fungrad.primitives.scan import divisible
    >>> divisible(np.array([1.0, 2.0])), divisible(np.array([1.0, 0.0]))
    (True, False)
    """
    return unwrap(x) is x and not is_traced(x) and bool(np.all(np.asarray(x) != 0))


def _linear_scan(a, b, axis: int, later: bool):
    """``R`` with ``R_k = b_k + a_k R_(k-1)`` if ``later`` (else ``R_(k+1)``), zero beyond the
    ends, in ceil(log2(n)) doubling steps."""
    n = shape_of(b)[axis]
    d = 1
    while d < n:
        b = b + a * shift(b, axis, d, 0, later)
        if 2 * d < n:
            a = a * shift(a, axis, d, 0, later)
        d *= 2
    return b


def _scan_batch(op, args, dims, *, axis=None, reverse=False):
    (x,), (d,) = args, dims
    if axis is None:  # each example flattened
        x = to_front(x, d)
        return op(reshape(x, (shape_of(x)[0], -1)), axis=1, reverse=reverse), 0
    a = normalize_axes(op.name, axis, ndim_of(x) - 1)[0]
    return op(x, axis=batched_position(a, d), reverse=reverse), d


def _cumsum(x, axis=None, reverse=False):
    return _scan(np.cumsum, x, axis, reverse)


def _cumsum_vjp(g, out, x, axis=None, reverse=False):
    if axis is None:
        return (reshape(cumsum(g, axis=0, reverse=not reverse), shape_of(x)),)
    return (cumsum(g, axis=axis, reverse=not reverse),)


cumsum = defop("cumsum", _cumsum, _cumsum_vjp,
               Domain((Real(),), _SCAN_CASES, params={"reverse": (False, True)}, complex=True),
               doc="""Cumulative sums along ``axis`` (of the flattened array when None), as
numpy.cumsum; ``reverse=True`` sums from the end. Its VJP is the cumulative sum the other way.

>>> import numpy as np, fungrad as fg
>>> fg.cumsum(np.array([1.0, 2.0, 3.0]))
array([1., 3., 6.])
>>> fg.grad(lambda x: fg.sum(fg.cumsum(x)))(np.array([1.0, 2.0, 3.0]))
array([3., 2., 1.])
""",
    batch=_scan_batch)


def _cumprod(x, axis=None, reverse=False):
    return _scan(np.cumprod, x, axis, reverse)


def _cumprod_vjp(g, out, x, axis=None, reverse=False):
    shape = shape_of(x)
    x, ax = _scan_axis("cumprod", x, axis)
    if divisible(x):  # the sum of g * out over the later outputs, over x: one pass
        dx = cumsum(g * out, axis=ax, reverse=not reverse) / x
    else:
        before = shift(out, ax, 1, 1, not reverse)  # the product of the elements before
        after = _linear_scan(shift(x, ax, 1, 0, reverse), g, ax, reverse)
        dx = before * after
    return (reshape(dx, shape) if axis is None else dx,)


cumprod = defop("cumprod", _cumprod, _cumprod_vjp,
                Domain((Real(),), _SCAN_CASES, params={"reverse": (False, True)}, complex=True),
                doc="""Cumulative products along ``axis`` (of the flattened array when None),
as numpy.cumprod; ``reverse=True`` multiplies from the end. Where elements are zero the gradient
is computed without dividing by them, so it is exact there, at every order.

>>> import numpy as np, fungrad as fg
>>> fg.cumprod(np.array([1.0, 2.0, 3.0]))
array([1., 2., 6.])
>>> fg.grad(lambda x: fg.sum(fg.cumprod(x)))(np.array([2.0, 0.0, 3.0]))
array([1., 8., 0.])
""",
    batch=_scan_batch)
