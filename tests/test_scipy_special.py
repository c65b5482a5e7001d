"""fungrad.scipy.special against scipy.special: every function's values (float64 and float32),
the numerical partial derivatives against closed forms, and the composites' gradients. (The
ops themselves are also in the registry-driven suite, tests/test_properties.py.)"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

import scipy.special as ss  # noqa: E402

import fungrad as fg  # noqa: E402
from fungrad.scipy import special as fs  # noqa: E402
from fungrad.testing import check_grads  # noqa: E402

_rng = np.random.default_rng(0)
_POS = _rng.uniform(0.5, 4.0, 6)
_POS2 = _rng.uniform(0.5, 4.0, 6)
_UNIT = _rng.uniform(0.05, 0.95, 6)
_REAL = _rng.uniform(-2.5, 2.5, 6)

UNARY = {
    "erf": _REAL, "erfc": _REAL, "erfinv": 2 * _UNIT - 1, "erfcinv": 2 * _UNIT,
    "ndtr": _REAL, "log_ndtr": _REAL * 4, "ndtri": _UNIT, "gamma": _POS, "gammaln": _POS,
    "digamma": _POS, "psi": _POS, "rgamma": _POS, "gammasgn": _REAL, "i0": _REAL, "i1": _REAL,
    "j0": _POS * 2, "j1": _POS * 2, "y0": _POS * 2, "y1": _POS * 2, "entr": _POS,
    "logit": _UNIT, "expit": _REAL, "sinc": _REAL,
}
BINARY = {
    "gammainc": (_POS, _POS2), "gammaincc": (_POS, _POS2), "beta": (_POS, _POS2),
    "betaln": (_POS, _POS2), "iv": (_POS, _POS2), "ive": (_POS, _POS2), "jv": (_POS, _POS2),
    "yv": (_POS, _POS2), "xlogy": (_REAL, _POS), "xlog1py": (_REAL, _UNIT),
    "stdtr": (_POS + 1.0, _REAL),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unary_matches_scipy(name, dtype):
    x = UNARY[name].astype(dtype)
    ours = getattr(fs, name)(x)
    assert ours.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(ours, getattr(ss, name)(x), rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_matches_scipy(name, dtype):
    a, b = (v.astype(dtype) for v in BINARY[name])
    ours = getattr(fs, name)(a, b)
    assert ours.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(ours, getattr(ss, name)(a, b), rtol=rtol)


def test_integer_orders_and_the_rest_match_scipy():
    x = _POS * 2
    for n in (0, 1, 2, 3):
        np.testing.assert_allclose(fs.jn(n, x), ss.jn(n, x), rtol=1e-12)
        np.testing.assert_allclose(fs.yn(n, x), ss.yn(n, x), rtol=1e-12)
        np.testing.assert_allclose(fs.polygamma(n, _POS), ss.polygamma(n, _POS), rtol=1e-12)
    np.testing.assert_allclose(fs.betainc(_POS, _POS2, _UNIT), ss.betainc(_POS, _POS2, _UNIT),
                               rtol=1e-12)
    for d in (1, 2, 3):
        np.testing.assert_allclose(fs.multigammaln(_POS + 2.0, d),
                                   ss.multigammaln(_POS + 2.0, d), rtol=1e-12)
    z = np.array([0.3 + 0.4j, -1.0 + 0.2j])
    np.testing.assert_allclose(fs.erf(z), ss.erf(z), rtol=1e-12)
    with pytest.raises(ValueError, match="polygamma: n"):
        fs.polygamma(-1, _POS)
    with pytest.raises(ValueError, match="multigammaln"):
        fs.multigammaln(np.array(0.5), 3)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_softmax_match_scipy(axis, keepdims):
    a = _rng.normal(size=(3, 4))
    b = _rng.uniform(0.5, 2.0, size=(3, 4))
    np.testing.assert_allclose(fs.logsumexp(a, axis=axis, keepdims=keepdims),
                               ss.logsumexp(a, axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(fs.logsumexp(a, axis=axis, b=b, keepdims=keepdims),
                               ss.logsumexp(a, axis=axis, b=b, keepdims=keepdims))
    signed = b * np.where(_rng.random((3, 4)) < 0.5, -1.0, 1.0)
    for ours, ref in zip(fs.logsumexp(a, axis=axis, b=signed, keepdims=keepdims,
                                      return_sign=True),
                         ss.logsumexp(a, axis=axis, b=signed, keepdims=keepdims,
                                      return_sign=True)):
        np.testing.assert_allclose(ours, ref)
    if not keepdims:
        np.testing.assert_allclose(fs.softmax(a, axis=axis), ss.softmax(a, axis=axis))
        np.testing.assert_allclose(fs.log_softmax(a, axis=axis), ss.log_softmax(a, axis=axis))
    check_grads(lambda x, w: fs.logsumexp(x, axis=axis, b=w, keepdims=keepdims), a, b,
                order=2, modes=("rev", "fwd"))


def test_numerical_partials_against_closed_forms():
    """betainc's derivatives in a and b where closed forms exist: I_x(a, 1) = x^a and
    I_x(1, b) = 1 - (1 - x)^b; gammainc's in a at a = 1 (P(1, x) = 1 - exp(-x)) against its
    series."""
    x = np.array([0.1, 0.4, 0.8])
    a = np.array([0.7, 2.0, 3.5])
    da = fg.grad(lambda a_: fs.betainc(a_, 1.0, x).sum())(a)
    np.testing.assert_allclose(da, x ** a * np.log(x), rtol=1e-10)
    hessian = fg.jacobian(fg.grad(lambda a_: fs.betainc(a_, 1.0, x).sum()))(a)
    np.testing.assert_allclose(np.diag(hessian), x ** a * np.log(x) ** 2, rtol=1e-7)
    db = fg.grad(lambda b_: fs.betainc(1.0, b_, x).sum())(a)
    np.testing.assert_allclose(db, -(1 - x) ** a * np.log1p(-x), rtol=1e-10)
    # d/da P(a, x) = sum_k d/da [x^(a+k) e^-x / Gamma(a+k+1)], the series of P
    xs = np.array([0.5, 2.0])
    k = np.arange(200)[:, None]
    terms = np.exp((1.0 + k) * np.log(xs) - xs - ss.gammaln(2.0 + k))
    series = np.sum(terms * (np.log(xs) - ss.digamma(2.0 + k)), axis=0)
    np.testing.assert_allclose(fg.grad(lambda a_: fs.gammainc(a_, xs).sum())(np.ones(2)),
                               series, rtol=1e-9)


def test_composites_differentiate_to_second_order():
    check_grads(lambda a: fs.multigammaln(a, 3), _POS + 2.0, order=2, modes=("rev", "fwd"))
    check_grads(lambda x: fs.polygamma(1, x), _POS, order=2, modes=("rev", "fwd"))
    check_grads(lambda x: fs.jn(2, x), _POS * 2, order=2, modes=("rev", "fwd"))
    check_grads(lambda a, b, x: fs.betainc(a, b, x), _POS, _POS2, _UNIT, order=2)
    check_grads(lambda x: fs.softmax(x, axis=None), _REAL, order=2, modes=("rev", "fwd"))
