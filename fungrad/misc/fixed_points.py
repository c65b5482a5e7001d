"""HIPS autograd's ``fixed_point``: iterate to a fixed point, and differentiate the fixed
point itself rather than the iterations.

If x* = f(a)(x*), then dx*/da solves the linear fixed point w = g + (∂f/∂x)^T w for the
cotangent g; the VJP iterates that map (with :func:`fixed_point` itself, so the result
differentiates again) and pulls w back through ∂f/∂a. The forward is an op
(``misc.fixed_point``) over the raveled ``a``; ``f``, ``init``, ``distance`` and ``tol`` are
static.

>>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
>>> from fungrad.misc.fixed_points import fixed_point
>>> newton_sqrt = lambda a: lambda x: 0.5 * (x + a / x)  # the fixed point is sqrt(a)
>>> dist = lambda x, y: float(np.max(np.abs(x - y)))
>>> float(fixed_point(newton_sqrt, 2.0, 1.0, dist, 1e-12).round(6))
1.414214
>>> float(fg.grad(lambda a: fixed_point(newton_sqrt, a, 1.0, dist, 1e-12))(4.0))  # 1/(2 sqrt a)
0.25
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import numpy as fnp
from ..batching.interpreter import loop_rule
from ..domains import Domain, Real
from ..errors import FungradError
from ..functional import vjp as fg_vjp
from ..registry import defop, unwrap
from ..primitives.shape import shape_of
from ..scipy._common import untraced
from .flatten import ravel

__all__ = ["fixed_point"]

_MAX_ITERATIONS = 100_000


def _iterate(step: Callable, init: Any, distance: Callable, tol: float) -> Any:
    x, previous = step(init), init
    for _ in range(_MAX_ITERATIONS):
        d = distance(x, previous)
        if d <= tol or d <= _rounding(x):
            return x
        if not np.all(np.isfinite(d)):
            break
        x, previous = step(x), x
    raise FungradError(f"fixed_point: no convergence to tol={tol} (the distance between "
                       f"iterates is {d} after {_}) (is f(a) a contraction near the fixed "
                       "point?)")


def _rounding(x: Any) -> float:
    """The distance below which a float array's iterates differ only by rounding (a few ulps
    of its largest entry): in float32 a ``tol`` of 1e-15 is never reached, the iterates settle
    within an ulp or two instead."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fc" or x.size == 0:
        return 0.0
    return 4 * float(np.finfo(x.dtype).eps) * max(1.0, float(np.max(np.abs(x))))


def _forward(flat, *, f, unravel, init, distance, tol):
    with untraced():
        step = f(unravel(flat))
        x = np.asarray(unwrap(_iterate(lambda x: unwrap(step(x)), init, distance, tol)))
    if x.dtype.kind == "f" and np.asarray(flat).dtype.kind == "f":  # x* has a's precision
        x = x.astype(np.asarray(flat).dtype, copy=False)         # (not init's)
    return x


def _vjp(g, out, flat, *, f, unravel, init, distance, tol):
    def reverse_step(params):  # w -> g + (df(a)/dx at x*)^T w
        flat_a, x_star, g_bar = params
        _, pull_x = fg_vjp(f(unravel(flat_a)), x_star)
        return lambda w: pull_x(w)[0] + g_bar

    w = fixed_point(reverse_step, (flat, out, g), np.zeros(shape_of(out), dtype=out.dtype),
                    distance, tol)
    _, pull_a = fg_vjp(lambda flat_a: f(unravel(flat_a))(out), flat)
    return (pull_a(w)[0],)


def _contraction(a):  # the property suite's test map: a contraction for |a| <= 1
    return lambda x: 0.4 * fnp.cos(x * a[0]) + 0.3 * a[1:]


def _max_distance(x, y):
    return float(np.max(np.abs(np.asarray(unwrap(x)) - np.asarray(unwrap(y)))))


_fixed_point_op = defop(
    "misc.fixed_point", _forward, _vjp,
    Domain((Real(-1.0, 1.0),), [
        (((3,),), {"f": _contraction, "unravel": lambda v: v, "init": np.zeros(2),
                   "distance": _max_distance, "tol": 1e-15}),
    ]), batch=loop_rule,
    doc="""The fixed point of f(unravel(flat)) from ``init``; called by :func:`fixed_point`.""")


def fixed_point(f: Callable, a: Any, init: Any, distance: Callable, tol: float) -> Any:
    """The fixed point x* = f(a)(x*) reached by iterating ``f(a)`` from ``init`` until
    ``distance(x, previous) <= tol``, as ``autograd.misc.fixed_points.fixed_point``.
    Differentiable in ``a`` (an array or a pytree of arrays) by the implicit function theorem
    (the VJP is itself a fixed point, and differentiates again); ``init`` is not
    differentiated. ``f(a)`` must be a contraction near x*, written with fungrad functions.

    >>> import numpy as np
    >>> from fungrad.misc.fixed_points import fixed_point
    >>> halve = lambda a: lambda x: 0.5 * x + a  # x* = 2a
    >>> fixed_point(halve, np.array([1.0]), np.zeros(1),
    ...             lambda x, y: float(np.abs(x - y).max()), 1e-12).round(6)
    array([2.])
    """
    flat, unravel = ravel(a)
    init = np.asarray(unwrap(init))
    return _fixed_point_op(flat, f=f, unravel=unravel, init=init, distance=distance,
                           tol=tol)
