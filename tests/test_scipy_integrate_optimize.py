"""fungrad.scipy.integrate (odeint by the adjoint method, odeint_fixed under fg.jit) and
fungrad.scipy.optimize (minimize with fungrad gradients, argmin by implicit
differentiation), against SciPy and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

import scipy.integrate as si  # noqa: E402
import scipy.optimize as so  # noqa: E402

import fungrad as fg  # noqa: E402
import fungrad.numpy as fnp  # noqa: E402
from fungrad.scipy.integrate import odeint, odeint_fixed  # noqa: E402
from fungrad.scipy.optimize import argmin, minimize  # noqa: E402
from fungrad.testing import check_grads  # noqa: E402

_rng = np.random.default_rng(3)


def _rhs(y, t, a1, a2):  # autograd's test system
    return -fnp.sqrt(t) - y + a1 - fnp.mean((y + a2) ** 2)


_Y0, _T = _rng.normal(size=3), np.linspace(0.1, 0.2, 4)
_ARGS = (_rng.normal(size=3), _rng.normal(size=3))


def test_odeint_matches_scipy():
    a1, a2 = _ARGS
    ref = si.odeint(lambda y, t: -np.sqrt(t) - y + a1 - np.mean((y + a2) ** 2), _Y0, _T)
    np.testing.assert_allclose(odeint(_rhs, _Y0, _T, _ARGS), ref, rtol=1e-12)


def test_odeint_gradients_in_y0_t_and_args():
    check_grads(lambda y, t, args: odeint(_rhs, y, t, args), _Y0, _T, _ARGS, order=1,
                modes=("rev", "fwd"))


def test_odeint_second_order():
    check_grads(lambda y, k: odeint(lambda s, t, c: -c * s, y, np.array([0.0, 0.5]), (k,)),
                np.array([1.0, -0.5]), np.array(0.7), order=2, modes=("rev",))


def test_odeint_refuses_options_it_cannot_differentiate():
    with pytest.raises(ValueError, match="full_output"):
        odeint(_rhs, _Y0, _T, _ARGS, full_output=True)


def test_odeint_fixed_is_accurate_and_compiles():
    exact = odeint(_rhs, _Y0, _T, _ARGS, rtol=1e-12, atol=1e-12)
    fixed = odeint_fixed(_rhs, _Y0, _T, _ARGS, substeps=4)
    np.testing.assert_allclose(fixed, exact, rtol=1e-8)  # RK4 with h = 0.008: ~1e-10
    jitted = fg.jit(lambda y: odeint_fixed(_rhs, y, _T, _ARGS, substeps=4))
    np.testing.assert_allclose(jitted(_Y0), fixed, rtol=1e-12)
    loss = lambda y: fnp.sum(odeint_fixed(_rhs, y, _T, _ARGS, substeps=2) ** 2)  # noqa: E731
    np.testing.assert_allclose(fg.jit(fg.grad(loss))(_Y0), fg.grad(loss)(_Y0), rtol=1e-12)
    check_grads(lambda y, t: odeint_fixed(_rhs, y, t, _ARGS, substeps=2), _Y0, _T, order=2,
                modes=("rev", "fwd"))


def _rosen(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "CG", "Newton-CG", "trust-ncg"])
def test_minimize_supplies_gradients(method):
    res = minimize(_rosen, np.array([-1.0, 1.0]), method=method)
    ref = so.minimize(so.rosen, np.array([-1.0, 1.0]), jac=so.rosen_der, method=method,
                      hessp=so.rosen_hess_prod if method in ("Newton-CG", "trust-ncg")
                      else None)
    assert res.success
    np.testing.assert_allclose(res.x, ref.x, atol=1e-4)


def test_minimize_over_a_pytree():
    res = minimize(lambda d: fnp.sum(d["a"] ** 2) + fnp.sum((d["b"] - 1.0) ** 2),
                   {"a": np.ones(2), "b": np.zeros((2, 2))})
    np.testing.assert_allclose(res.x["b"], np.ones((2, 2)), atol=1e-6)
    np.testing.assert_allclose(res.x["a"], np.zeros(2), atol=1e-6)
    with pytest.raises(TypeError, match="jac"):
        minimize(_rosen, np.zeros(2), jac=True)


def _objective(x, theta):
    return fnp.sum((x - theta["c"]) ** 2 * theta["w"]) + 0.1 * fnp.sum(x ** 4)


def test_argmin_is_differentiable_in_its_parameters():
    theta = {"c": np.array([0.3, -0.7, 1.1]), "w": np.array([1.0, 2.0, 0.5])}
    x_star = argmin(_objective, np.zeros(3), theta)
    np.testing.assert_allclose(fg.grad(_objective)(x_star, theta), np.zeros(3), atol=1e-12)
    check_grads(lambda c, w: argmin(_objective, np.zeros(3), {"c": c, "w": w}), theta["c"],
                theta["w"], order=2, modes=("rev", "fwd"))
