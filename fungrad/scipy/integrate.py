"""``scipy.integrate.odeint`` differentiable in y0, t and args by the adjoint method (as HIPS
autograd), and :func:`odeint_fixed`, a fixed-step Runge-Kutta integrator written with fungrad
ops (so fg.jit compiles it and every transformation sees through it).

``odeint`` is an op (``scipy.integrate.odeint``) whose inputs are y0, t and the arguments
raveled into one vector; its forward is SciPy's LSODA, its VJP integrates the augmented
system (state, adjoint state, time and argument cotangents) backwards between consecutive
times with ``odeint`` itself, so it differentiates again (second order by the adjoint of the
adjoint). ``func(y, t, *args)`` must be written with fungrad functions (``fungrad.numpy``).

>>> import numpy as np, fungrad as fg
>>> from fungrad.scipy.integrate import odeint
>>> decay = lambda y, t, k: -k * y
>>> ys = odeint(decay, np.array([1.0]), np.array([0.0, 1.0]), (np.array(2.0),))
>>> float(ys[-1, 0].round(6))  # exp(-2)
0.135335
>>> float(fg.grad(lambda k: odeint(decay, np.array([1.0]), np.array([0.0, 1.0]), (k,))[-1, 0])(
...     2.0).round(5))  # -exp(-2)
-0.13534
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..primitives import concatenate, reshape, sin, stack
from ..primitives import sum as _sum
from ..batching.interpreter import loop_rule
from ..domains import Domain, Real
from ..errors import ShapeError
from ..functional import vjp as fg_vjp
from ..registry import defop, unwrap
from ..misc.flatten import ravel
from ..primitives.shape import shape_of
from ._common import cast_like, dtype_of, scipy_module, untraced

__all__ = ["odeint", "odeint_fixed"]


@dataclass(frozen=True)
class _Times(Real):
    """Increasing time points (steps between 0.1 and 0.4 from ``low``): odeint's t."""

    def from_unit(self, u: Any) -> np.ndarray:
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        return self.low + np.cumsum(0.1 + 0.3 * u, axis=-1) - 0.1


def _forward(y0, t, flat_args, *, func, unravel, options=()):
    y0, t = np.asarray(y0), np.asarray(t)
    if y0.ndim != 1 or t.ndim != 1:
        raise ShapeError(f"odeint: y0 and t must be 1-D (got shapes {y0.shape} and {t.shape})")
    args = unravel(np.asarray(flat_args, dtype=np.float64))

    def rhs(y, tt):
        return np.asarray(unwrap(func(y, tt, *args)), dtype=np.float64)

    with untraced(jit=False):  # (suspending fg.jit's tracer here crashes its compiled step)
        ys = scipy_module("integrate").odeint(rhs, np.asarray(y0, dtype=np.float64),
                                              np.asarray(t, dtype=np.float64), **dict(options))
    return cast_like(ys, y0, t, flat_args)


def _vjp(g, out, y0, t, flat_args, *, func, unravel, options=()):
    n_times, dim = shape_of(out)
    n_args = int(np.prod(shape_of(flat_args)))

    def flat_func(y, tt, flat):
        return func(y, tt, *unravel(flat))

    def augmented(state, tt, flat):
        y, adj = state[:dim], state[dim:2 * dim]
        dy, pullback = fg_vjp(flat_func, y, tt, flat)
        d_y, d_t, d_args = pullback(-adj)
        return concatenate([dy, d_y, reshape(d_t, shape=(1,)), reshape(d_args, shape=(-1,))])

    adj_y = g[n_times - 1]
    adj_t0 = np.zeros((1,), dtype=dtype_of(out))
    adj_args = np.zeros((n_args,), dtype=dtype_of(out))
    time_parts = []
    for i in range(n_times - 1, 0, -1):
        here = reshape(_sum(flat_func(out[i], t[i], flat_args) * g[i]), shape=(1,))
        time_parts.append(here)
        adj_t0 = adj_t0 - here
        state = concatenate([out[i], adj_y, adj_t0, adj_args])
        back = odeint_op(state, stack([t[i], t[i - 1]]), flat_args, func=augmented,
                         unravel=_identity, options=options)[1]
        adj_y = back[dim:2 * dim] + g[i - 1]
        adj_t0 = back[2 * dim:2 * dim + 1]
        adj_args = back[2 * dim + 1:]
    time_parts.append(adj_t0)
    return adj_y, concatenate(time_parts[::-1]), adj_args


def _identity(flat: Any) -> tuple:
    return (flat,)


def _decay(y, t, k):  # the property suite's test system (a damped, driven oscillator)
    return stack([y[1], -k[0] * y[0] - 0.3 * y[1] + sin(t)])


odeint_op = defop(
    "scipy.integrate.odeint", _forward, _vjp,
    Domain((Real(-1.0, 1.0), _Times(0.0, 0.0), Real(0.5, 1.5)), [
        (((2,), (2,), (1,)), {"func": _decay, "unravel": _identity,
                              "options": (("atol", 1e-12), ("rtol", 1e-12))}),
    ]), batch=loop_rule,
    doc="""SciPy's odeint on (y0, t, raveled args) with ``func`` and ``unravel`` static;
    called by :func:`odeint`.""")


def odeint(func: Callable, y0: Any, t: Any, args: tuple = (), **options: Any) -> Any:
    """The solution of dy/dt = func(y, t, *args) at the times t (y(t[0]) = y0), as
    scipy.integrate.odeint (LSODA; ``options`` such as ``rtol``, ``atol``, ``mxstep`` are
    SciPy's). Differentiable in y0, t and every array in args, by the adjoint method; the
    result has shape (len(t), len(y0)).

    >>> import numpy as np
    >>> from fungrad.scipy.integrate import odeint
    >>> odeint(lambda y, t: -y, np.array([1.0]), np.array([0.0, 0.0])).ravel()
    array([1., 1.])
    """
    if not isinstance(args, tuple):
        args = (args,)
    for key in ("full_output", "Dfun", "tfirst"):
        if options.get(key):
            raise ValueError(f"odeint: {key}= is not supported (the result must be the array "
                             "of states; fungrad differentiates func itself)")
    flat, unravel = ravel(args)
    return odeint_op(y0, t, flat, func=func, unravel=unravel,
                     options=tuple(sorted(options.items())))


def odeint_fixed(func: Callable, y0: Any, t: Any, args: tuple = (), substeps: int = 1) -> Any:
    """The solution of dy/dt = func(y, t, *args) at the times t by classical fourth-order
    Runge-Kutta, ``substeps`` equal steps between consecutive times. Written with fungrad ops
    only (a loop of array operations), so it runs under fg.jit and differentiates like any
    function (exactly: the derivative of the discrete scheme). y0 may have any shape.

    >>> import numpy as np
    >>> from fungrad.scipy.integrate import odeint_fixed
    >>> ys = odeint_fixed(lambda y, t: -y, np.array([1.0]), np.linspace(0.0, 1.0, 3), substeps=8)
    >>> float(ys[-1, 0].round(6)), round(float(np.exp(-1.0)), 6)
    (0.367879, 0.367879)
    """
    if substeps < 1:
        raise ValueError(f"odeint_fixed: substeps must be at least 1, got {substeps}")
    n_times = int(np.shape(unwrap(t))[0])
    y = y0
    states = [y0]
    for i in range(n_times - 1):
        h = (t[i + 1] - t[i]) / substeps
        tt = t[i]
        for _ in range(substeps):
            k1 = func(y, tt, *args)
            k2 = func(y + 0.5 * h * k1, tt + 0.5 * h, *args)
            k3 = func(y + 0.5 * h * k2, tt + 0.5 * h, *args)
            k4 = func(y + h * k3, tt + h, *args)
            y = y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            tt = tt + h
        states.append(y)
    return stack(states)
