"""``scipy.optimize.minimize`` driven by fungrad gradients, and :func:`argmin`, a minimizer
differentiable in the objective's parameters by the implicit function theorem.

:func:`minimize` takes a function written with fungrad (of an array or of a pytree of them)
and hands SciPy the value and gradient as float64 ndarrays (``jac=True``), plus Hessian-vector
products for the methods that use them. :func:`argmin` is an op: its forward minimizes
(SciPy, then Newton steps to polish the optimum to machine precision), and its VJP solves
H λ = g with the Hessian at the optimum and returns -∂²f/∂θ∂x λ, all with fungrad
transformations, so it differentiates again.

>>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
>>> from fungrad.scipy.optimize import argmin
>>> f = lambda x, theta: fnp.sum((x - theta) ** 2) + 0.1 * fnp.sum(x ** 4)
>>> x_star = argmin(f, np.zeros(2), np.array([1.0, -1.0]))
>>> fg.jacobian(lambda th: argmin(f, np.zeros(2), th))(np.array([1.0, -1.0])).round(4)
array([[0.6883, 0.    ],
       [0.    , 0.6883]])
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import numpy as fnp
from ..batching.interpreter import loop_rule
from ..domains import Domain, Real
from ..functional import grad as fg_grad
from ..functional import hessian as fg_hessian
from ..functional import jvp as fg_jvp
from ..functional import value_and_grad
from ..functional import vjp as fg_vjp
from ..primitives import solve
from ..registry import defop, unwrap
from ..misc.flatten import ravel
from ._common import cast_like, scipy_module, untraced

__all__ = ["minimize", "argmin"]

_HESSP_METHODS = {"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"}


def minimize(fun: Callable, x0: Any, args: tuple = (), method: str | None = None,
             **kwargs: Any) -> Any:
    """``scipy.optimize.minimize(fun, x0, args, method, ...)`` with the gradient (and, for
    Newton-CG and the trust-region methods, Hessian-vector products) computed by fungrad.

    ``x0`` may be an array of any shape or a pytree of arrays (dicts, lists, tuples); the
    result's ``x`` has its structure. Other keywords (``bounds``, ``constraints``, ``tol``,
    ``options``, ``callback``...) are SciPy's.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> from fungrad.scipy.optimize import minimize
    >>> rosen = lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
    >>> res = minimize(rosen, np.array([-1.0, 1.0]), method="BFGS")
    >>> res.x.round(4), bool(res.success)
    (array([1., 1.]), True)
    """
    if "jac" in kwargs:
        raise TypeError("minimize: jac= is supplied by fungrad (the gradient of fun); use "
                        "scipy.optimize.minimize directly for a gradient of your own")
    flat0, unravel = ravel(x0)
    flat0 = np.asarray(flat0, dtype=np.float64)

    def flat_fun(v, *a):
        return fun(unravel(v), *a)

    value_grad = value_and_grad(flat_fun)

    def fun_and_jac(v, *a):
        value, gradient = value_grad(v, *a)
        return float(np.asarray(unwrap(value))), np.asarray(unwrap(gradient), dtype=np.float64)

    if method is not None and method.lower() in _HESSP_METHODS and "hess" not in kwargs \
            and "hessp" not in kwargs:
        gradient_of = fg_grad(flat_fun)

        def hessp(v, p, *a):
            _, hp = fg_jvp(lambda u: gradient_of(u, *a), (v,), (p,))
            return np.asarray(unwrap(hp), dtype=np.float64)

        kwargs["hessp"] = hessp
    result = scipy_module("optimize").minimize(fun_and_jac, flat0, args=args, method=method,
                                               jac=True, **kwargs)
    result.x = unravel(result.x)
    return result


def _polish(f: Callable, x: np.ndarray, theta: np.ndarray, steps: int = 6) -> np.ndarray:
    """Newton steps from ``x`` while they shrink the gradient (the optimum to machine
    precision, which finite differences of the optimum need)."""
    gradient = fg_grad(f)
    hess = fg_hessian(f)
    g = np.asarray(unwrap(gradient(x, theta)))
    for _ in range(steps):
        if not np.all(np.isfinite(g)) or np.max(np.abs(g), initial=0.0) == 0.0:
            break
        try:
            step = np.linalg.solve(np.asarray(unwrap(hess(x, theta))), g)
        except np.linalg.LinAlgError:
            break
        candidate = x - step
        g_new = np.asarray(unwrap(gradient(candidate, theta)))
        if not np.linalg.norm(g_new) < np.linalg.norm(g):
            break
        x, g = candidate, g_new
    return x


def _argmin(theta, *, f, x0, options=()):
    theta64 = np.asarray(theta, dtype=np.float64)
    x0 = np.asarray(x0, dtype=np.float64)
    opts = dict(options)
    opts.setdefault("method", "BFGS")
    opts.setdefault("tol", 1e-12)
    with untraced():
        result = minimize(lambda x: f(x, theta64), x0, **opts)
        x_star = _polish(f, np.asarray(result.x, dtype=np.float64), theta64)
    return cast_like(x_star, theta)


def _argmin_vjp(g, out, theta, *, f, x0, options=()):
    hess = fg_hessian(f)(out, theta)
    lam = solve(hess, g)
    _, pullback = fg_vjp(lambda th: fg_grad(f)(out, th), theta)
    return (-pullback(lam)[0],)


def _test_objective(x, theta):  # the property suite's objective: a strictly convex one
    return fnp.sum((x - theta) ** 2 * (1.0 + 0.5 * theta ** 2)) + 0.1 * fnp.sum(x ** 4)


argmin_op = defop(
    "scipy.optimize.argmin", _argmin, _argmin_vjp,
    Domain((Real(-1.5, 1.5),), [
        (((2,),), {"f": _test_objective, "x0": np.zeros(2)}),
    ]), batch=loop_rule,
    doc="""The minimizer of ``f(x, theta)`` over the vector x from ``x0``, as a function of
    the vector theta; called by :func:`argmin`.""")


def argmin(f: Callable, x0: Any, params: Any, **options: Any) -> Any:
    """The minimizer x*(params) of ``f(x, params)`` over x, starting from ``x0``,
    differentiable in ``params`` (an array or a pytree of arrays) by the implicit function
    theorem: at the optimum grad_x f = 0, so dx*/dθ = -H^-1 ∂²f/∂x∂θ with H the Hessian in
    x.
    ``x0`` is an array (of any shape; the result has it); ``options`` go to
    :func:`minimize` (``method``, default BFGS; ``tol``, default 1e-12).

    The optimum must be a strict local minimum (H positive definite) for the derivative to
    exist; ``f`` must be twice differentiable, written with fungrad functions.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> from fungrad.scipy.optimize import argmin
    >>> f = lambda x, c: fnp.sum((x - c) ** 2)
    >>> fg.grad(lambda c: fnp.sum(argmin(f, np.zeros(2), c)))(np.array([1.0, 2.0]))
    array([1., 1.])
    """
    shape = np.shape(unwrap(x0))
    flat_theta, unravel = ravel(params)

    def flat_f(x, theta):
        return f(fnp.reshape(x, shape), unravel(theta))

    x_star = argmin_op(flat_theta, f=flat_f, x0=np.ravel(np.asarray(unwrap(x0))),
                       options=tuple(sorted(options.items())))
    return fnp.reshape(x_star, shape)
