"""fungrad.numpy's order statistics: median, quantile, percentile and their NaN-ignoring twins
against NumPy (every method, axis form, keepdims, dtype), their gradients against finite
differences (in the data and in q), under fg.vmap and vmap(grad), and their errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad import Tensor
from fungrad.errors import DTypeError, ShapeError
from fungrad.numpy._statistics import _METHODS
from fungrad.testing import check_grads

R = np.random.default_rng(11)
X = R.standard_normal((3, 4, 5))
XNAN = X.copy()
XNAN[0, 1, 2] = np.nan
XNAN[1, :, 3] = np.nan  # an all-NaN slice along axis 1
XNAN[2, 2, :] = np.nan
DATA = {"float64": X, "nan": XNAN, "float32": X.astype(np.float32),
        "int64": np.arange(24).reshape(2, 3, 4) % 7}
AXES = [None, 0, -1, (0, 2)]
QS = {"scalar": 0.3, "array": np.array([0.0, 0.25, 0.5, 1.0]), "int": 1,
      "numpy-scalar": np.float64(0.7)}
WITH_Q = ["quantile", "percentile", "nanquantile", "nanpercentile"]


def _numpy(name, *args, **kwargs):
    with warnings.catch_warnings():  # all-NaN slices warn in NumPy
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(np, name)(*args, **kwargs)


def _same(got, want, data):
    assert type(got) is type(want), f"{type(got).__name__} != {type(want).__name__}"
    assert np.shape(got) == np.shape(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    tol = 1e-6 if data.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _q(name, q):
    if "percentile" not in name:
        return q
    return 50 if isinstance(q, int) else q * 100


@pytest.mark.parametrize("method", list(_METHODS))
@pytest.mark.parametrize("name", WITH_Q)
@pytest.mark.parametrize("data", list(DATA))
def test_quantiles_match_numpy_for_every_method(name, data, method):
    a = DATA[data]
    for axis in AXES:
        for keepdims in (False, True):
            for q in QS.values():
                kw = {"axis": axis, "keepdims": keepdims, "method": method}
                want = _numpy(name, a, _q(name, q), **kw)
                got = getattr(fnp, name)(a, _q(name, q), **kw)
                _same(got, want, a)


@pytest.mark.parametrize("name", ["median", "nanmedian"])
@pytest.mark.parametrize("data", list(DATA))
def test_medians_match_numpy(name, data):
    a = DATA[data]
    for axis in AXES:
        for keepdims in (False, True):
            want = _numpy(name, a, axis=axis, keepdims=keepdims)
            _same(getattr(fnp, name)(a, axis=axis, keepdims=keepdims), want, a)


def test_a_kept_axis_of_length_one_stays_with_nan():
    a = R.standard_normal((3, 1, 5))
    a[0, 0, 1] = np.nan
    for name in ("median", "nanmedian"):
        _same(getattr(fnp, name)(a, axis=2), _numpy(name, a, axis=2), a)


@pytest.mark.parametrize("name", ["median", "nanmedian", "quantile", "percentile"])
def test_numpy_dispatches_on_tensors(name):
    args = (X,) if "median" in name else (X, _q(name, 0.4))
    t = Tensor(X, autograd=True)
    out = getattr(np, name)(t, *args[1:], axis=1)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, getattr(np, name)(*args, axis=1), rtol=1e-12)
    fg.sum(out).backward()
    assert t.grad is not None and t.grad.shape == X.shape


INTERPOLATING = [m for m, (_, rule) in _METHODS.items()
                 if rule not in ("index", "inverted_cdf", "closest")]


@pytest.mark.parametrize("method", list(_METHODS))
def test_quantile_gradient_matches_finite_differences(method):
    a = R.standard_normal((4, 6))  # distinct values: away from the kinks where ties swap
    check_grads(lambda x: fnp.quantile(x, [0.1, 0.35, 0.9], axis=1, method=method), a,
                order=2)


GRADIENT_CASES = {  # name: (function, whether its input holds NaNs)
    "median": (lambda x: fnp.median(x), False),
    "median-axis0-keepdims": (lambda x: fnp.median(x, axis=0, keepdims=True), False),
    "median-even": (lambda x: fnp.median(x[:3], axis=1), False),
    "percentile-axes": (lambda x: fnp.percentile(x, [5.0, 50.0], axis=(0, 1)), False),
    "nanmedian": (lambda x: fnp.nanmedian(x, axis=1), True),
    "nanpercentile": (lambda x: fnp.nanpercentile(x, 30.0, axis=0), True),
    "nanquantile-hazen": (lambda x: fnp.nanquantile(x, [0.2, 0.8], method="hazen"), True),
}


@pytest.mark.parametrize("case", list(GRADIENT_CASES))
def test_gradients_match_finite_differences(case):
    f, with_nan = GRADIENT_CASES[case]
    a = R.standard_normal((4, 5))
    if with_nan:
        a[1, 2] = a[3, 0] = np.nan
    check_grads(f, a, order=2)


def test_median_gradient_is_shared_by_the_two_middle_values():
    x = np.array([3.0, 1.0, 4.0, 2.0])
    np.testing.assert_array_equal(fg.grad(lambda v: fnp.median(v))(x), [0.5, 0, 0, 0.5])
    np.testing.assert_array_equal(fg.grad(lambda v: fnp.median(v))(x[:3]), [1.0, 0, 0])


def test_nan_elements_and_all_nan_slices_get_zero_gradient():
    g = fg.grad(lambda v: fnp.sum(fnp.nanmedian(v, axis=1)))(XNAN[1])
    assert np.all(np.isfinite(g))
    assert np.all(g[np.isnan(XNAN[1])] == 0)
    g = fg.grad(lambda v: fnp.sum(fnp.median(v, axis=0)))(XNAN[0])
    assert np.all(g[:, 2] == 0)  # the slice holding a NaN gives NaN, whatever its values


@pytest.mark.parametrize("method", INTERPOLATING)
def test_gradient_in_q(method):
    a = R.standard_normal((3, 7))
    check_grads(lambda q: fnp.quantile(a, q, axis=1, method=method), np.array([0.13, 0.62]),
                order=2)
    check_grads(lambda q: fnp.percentile(a, q), np.array(33.0))


def test_float32_stays_float32():
    x = X.astype(np.float32)
    for f in (lambda t: fnp.median(t, axis=0), lambda t: fnp.quantile(t, 0.3),
              lambda t: fnp.nanpercentile(t, 90.0, axis=1)):
        leaf = Tensor(x, autograd=True)
        y = f(leaf)
        assert y.dtype == np.float32
        fg.sum(y * y).backward()
        assert leaf.grad.dtype == np.float32


XS = R.standard_normal((4, 3, 5))
QB = np.array([0.05, 0.5, 0.77, 1.0])


@pytest.mark.parametrize("f", [
    lambda x, q: fnp.median(x, axis=1), lambda x, q: fnp.quantile(x, q, axis=0),
    lambda x, q: fnp.percentile(x, q * 100, method="nearest"),
    lambda x, q: fnp.nanquantile(fnp.where(x > 1.0, np.nan, x), [q, 0.5], axis=1),
    lambda x, q: fnp.quantile(x, q, axis=(0, 1), method="midpoint", keepdims=True),
], ids=["median", "quantile", "percentile-nearest", "nanquantile", "quantile-midpoint"])
def test_vmap_and_vmap_of_grad_equal_the_loop(f):
    want = np.stack([f(x, q) for x, q in zip(XS, QB)])
    np.testing.assert_allclose(fg.vmap(f)(XS, QB), want, rtol=1e-12)
    np.testing.assert_allclose(fg.vmap(f, in_axes=(0, None))(XS, 0.3),
                               np.stack([f(x, 0.3) for x in XS]), rtol=1e-12)
    loss = fg.grad(lambda x, q: fnp.sum(fnp.sin(f(x, q))), argnums=(0, 1))
    got = fg.vmap(loss)(XS, QB)
    loop = [loss(x, q) for x, q in zip(XS, QB)]
    for k in range(2):
        np.testing.assert_allclose(got[k], np.stack([g[k] for g in loop]), rtol=1e-12,
                                   atol=1e-14)


def test_jit_equals_eager():
    for f in (lambda x: fnp.median(x, axis=1), lambda x: fnp.nanpercentile(x, [10.0, 60.0]),
              lambda x: fnp.quantile(x, 0.3, axis=0, method="weibull")):
        np.testing.assert_allclose(fg.jit(f)(XNAN[0]), f(XNAN[0]), rtol=1e-12)
        np.testing.assert_allclose(fg.jit(fg.vmap(f))(XS), fg.vmap(f)(XS), rtol=1e-12)


def test_jacobians_and_hessian():
    a = R.standard_normal((3, 5))
    jac = fg.jacrev(lambda x: fnp.median(x, axis=1))(a)
    np.testing.assert_allclose(jac, fg.jacfwd(lambda x: fnp.median(x, axis=1))(a))
    assert np.all(jac.sum(axis=(1, 2)) == 1.0)
    hess = fg.hessian(lambda x: fnp.sum(fnp.quantile(x, 0.4) ** 2))(a)
    assert hess.shape == (3, 5, 3, 5)


def test_errors_name_the_function_and_what_was_expected():
    with pytest.raises(ValueError, match=r"quantile: quantiles must be in the range \[0, 1\]"):
        fnp.quantile(X, 1.5)
    with pytest.raises(ValueError, match=r"percentile: percentiles must be in the range "
                                         r"\[0, 100\], got 101"):
        fnp.percentile(X, [50, 101])
    with pytest.raises(ShapeError, match="quantile: method must be one of linear, lower"):
        fnp.quantile(X, 0.5, method="cubic")
    with pytest.raises(ShapeError, match="median: cannot take a quantile of an empty axis"):
        fnp.median(np.zeros((2, 0)), axis=1)
    with pytest.raises(ShapeError, match="percentile: weights= is not supported"):
        fnp.percentile(X, 50, weights=np.ones_like(X), method="inverted_cdf")
    with pytest.raises(DTypeError, match="median: complex values have no order"):
        fnp.median(np.array([1j, 2.0]))
    with pytest.raises(DTypeError, match="quantile: q must be real numbers"):
        fnp.quantile(X, "0.5")
    with pytest.raises(Exception, match="median: out= is not supported"):
        fnp.median(X, out=np.zeros(()))


# -- the NaN-ignoring reductions ------------------------------------------------------------------

NAN_REDUCTIONS = {"nanmax": [{}, {"initial": 0.5}], "nanmin": [{}, {"initial": -0.5}],
                  "nanprod": [{}, {"initial": 2.0}],
                  "nanvar": [{}, {"ddof": 1}, {"correction": 2}],
                  "nanstd": [{}, {"ddof": 1}, {"correction": 2}]}


@pytest.mark.parametrize("name", list(NAN_REDUCTIONS))
@pytest.mark.parametrize("data", list(DATA))
def test_nan_reductions_match_numpy(name, data):
    a = DATA[data]
    for axis in AXES:
        for keepdims in (False, True):
            for kw in NAN_REDUCTIONS[name]:
                if "initial" in kw and a.dtype.kind != "f":
                    continue
                want = _numpy(name, a, axis=axis, keepdims=keepdims, **kw)
                _same(getattr(fnp, name)(a, axis=axis, keepdims=keepdims, **kw), want, a)


@pytest.mark.parametrize("name", list(NAN_REDUCTIONS))
def test_nan_reductions_differentiate_with_zero_gradient_at_nan(name):
    a = R.standard_normal((4, 5))
    a[1, 2] = np.nan
    check_grads(lambda x: getattr(fnp, name)(x, axis=1), a, order=2)
    g = fg.grad(lambda x: fnp.sum(getattr(fnp, name)(x, axis=0)))(a)
    assert g[1, 2] == 0 and np.all(np.isfinite(g))
    xs = np.where(XS > 1.0, np.nan, XS)
    f = fg.grad(lambda x: fnp.sum(fnp.sin(getattr(fnp, name)(x, axis=1))))
    np.testing.assert_allclose(fg.vmap(f)(xs), np.stack([f(x) for x in xs]), rtol=1e-12)
