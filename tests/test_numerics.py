"""Numerical safety: selections send exactly zero to the unselected branch, the fused ops stay
finite at magnitude 1e4, IEEE results for division by zero and log(0), and ``detect_anomaly``
names the op that made a NaN or an infinity. Also the README's where-idiom.

fungrad leaves NumPy's RuntimeWarnings ("divide by zero encountered in log") alone in op
forwards: suppressing them costs an ``np.errstate`` per call (about 1.7 µs, half the cost of
a small op), each warning is shown once per location by Python's default filter, and users
choose with ``np.errstate`` / ``np.seterr``. Under ``np.seterr(all="raise")`` the op raises
AnomalyError (a FloatingPointError) naming itself.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import AnomalyError

INF, NAN = np.inf, np.nan
DTYPES = [np.float32, np.float64]


def _grads(f, *values, g=None, dtype=np.float64):
    xs = [Tensor(np.asarray(v, dtype=dtype), autograd=True) for v in values]
    out = f(*xs)
    out.backward(None if g is None else np.asarray(g, dtype=out.dtype))
    return out, [x.grad.data for x in xs]


# -- selections: exactly zero for the unselected branch, never a NaN of their own ---------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_where_sends_exactly_zero_to_the_unselected_branch(dtype):
    c = np.array([True, False, False, True])
    x = [1.0, INF, NAN, -INF]
    y = [INF, 2.0, 3.0, NAN]
    g = [1.0, INF, NAN, 2.0]  # even a non-finite cotangent stays out of the unselected side
    with np.errstate(all="ignore"):
        out, (gx, gy) = _grads(lambda a, b: fg.where(c, a, b), x, y, g=g, dtype=dtype)
    np.testing.assert_array_equal(out.data, [1.0, 2.0, 3.0, -INF])
    np.testing.assert_array_equal(gx, [1.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(gy, [0.0, INF, NAN, 0.0])
    assert gx.dtype == gy.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, chosen", [("maximum", [1, 0, 1, 0]), ("minimum", [0, 1, 1, 1])])
def test_maximum_and_minimum_send_exactly_zero_to_the_other_argument(dtype, name, chosen):
    x = [INF, -INF, 1.0, 0.0]
    y = [0.0, 5.0, 1.0, 2.0]  # a tie (1.0) goes to the first argument
    out, (gx, gy) = _grads(getattr(fg, name), x, y, dtype=dtype)
    chosen = np.array(chosen, dtype=dtype)
    np.testing.assert_array_equal(gx, chosen)
    np.testing.assert_array_equal(gy, 1 - chosen)
    assert not np.isnan(gx).any() and not np.isnan(gy).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_gradient_is_exactly_zero_where_clipped(dtype):
    x = [-INF, -2.0, -1.0, 0.0, 1.0, 3.0, INF]
    out, (gx,) = _grads(lambda t: fg.clip(t, -1.0, 1.0), x, g=[5.0] * 7, dtype=dtype)
    np.testing.assert_array_equal(out.data, [-1, -1, -1, 0, 1, 1, 1])
    np.testing.assert_array_equal(gx, [0, 0, 5, 5, 5, 0, 0])  # bounds are inside, as PyTorch


def test_relu_and_abs_gradients_at_infinity_and_zero():
    out, (g,) = _grads(fg.relu, [-INF, 0.0, 2.0, INF])
    np.testing.assert_array_equal(g, [0, 0, 1, 1])
    out, (g,) = _grads(fg.abs, [-INF, -2.0, 2.0, INF])
    np.testing.assert_array_equal(g, [-1, -1, 1, 1])


# -- the README idiom: a branch that is undefined where it is not selected ---------------------

def safe_sqrt(x):
    """sqrt(x) for x > 0, else 0 — with a gradient that is 0, not NaN, where x <= 0."""
    positive = x > 0
    return fg.where(positive, fg.sqrt(fg.where(positive, x, 1.0)), 0.0)


def test_where_idiom_keeps_the_gradient_finite():
    x = np.array([-1.0, 0.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the idiom never evaluates sqrt outside its domain
        value = safe_sqrt(Tensor(x))
        g = fg.grad(lambda v: fg.sum(safe_sqrt(v)))(x)
        g2 = fg.grad(lambda v: fg.sum(fg.grad(lambda w: fg.sum(safe_sqrt(w)))(v)))(x)
    np.testing.assert_array_equal(value.data, [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.25])
    np.testing.assert_allclose(g2, [0.0, 0.0, -0.25 / 8])  # d2/dx2 sqrt(x) = -x^(-3/2) / 4


def test_naive_where_gives_nan_which_is_why_the_idiom_exists():
    """The unselected branch gets a zero cotangent, but sqrt's own VJP turns 0 into 0/0."""
    x = np.array([-1.0, 0.0, 4.0])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = fg.grad(lambda v: fg.sum(fg.where(v > 0, fg.sqrt(v), 0.0)))(x)
    assert np.isnan(g[:2]).all() and g[2] == 0.25


def test_readme_where_idiom_runs_as_printed(capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Numerical safety and thread safety"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["[0.   0.   0.25]", "[ nan  nan 0.25]"]


def test_where_idiom_with_log_in_the_tensor_style():
    x = Tensor(np.array([-3.0, 0.0, np.e]), autograd=True)
    positive = x > 0
    y = fg.where(positive, fg.log(fg.where(positive, x, 1.0)), 0.0)
    y.sum().backward()
    np.testing.assert_allclose(y.data, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(x.grad.data, [0.0, 0.0, 1 / np.e])


# -- stability at magnitude 1e4 ------------------------------------------------------------------

BIG = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, 1e4, 1e4], [1e4, 1e4, 1e4, -1e4]])
TARGETS = np.array([1, 0, 3])


def _ce(x):
    return fg.cross_entropy(x, TARGETS)


STABLE = {
    "log_softmax": (lambda x: fg.log_softmax(x, axis=-1),
                    lambda x: x - x.max(-1, keepdims=True)
                    - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))),
    "log_softmax_axis0": (lambda x: fg.log_softmax(x, axis=0),
                          lambda x: x - x.max(0) - np.log(np.exp(x - x.max(0)).sum(0))),
    "logsumexp": (lambda x: fg.logsumexp(x, axis=-1),
                  lambda x: x.max(-1) + np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1))),
    "logsumexp_all": (fg.logsumexp, lambda x: x.max() + np.log(np.exp(x - x.max()).sum())),
    "cross_entropy": (_ce, None),
    "sigmoid": (fg.sigmoid, lambda x: np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))),
                                               np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))),
    "softplus": (fg.softplus, lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))),
    "softmax": (fg.softmax, None),
    "tanh": (fg.tanh, np.tanh),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(STABLE))
def test_fused_ops_are_finite_at_magnitude_1e4(name, dtype):
    f, reference = STABLE[name]
    x = Tensor(BIG.astype(dtype), autograd=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even an overflow warning inside
        out = f(x)
        g = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
        out.backward(g)
    assert out.dtype == dtype and x.grad.dtype == dtype
    assert np.isfinite(out.data).all(), out.data
    assert np.isfinite(x.grad.data).all(), x.grad.data
    if reference is not None:
        with np.errstate(all="ignore"):
            want = reference(BIG.astype(np.float64))
        np.testing.assert_allclose(out.data, want, rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_cross_entropy_value_at_1e4():
    loss = fg.cross_entropy(Tensor(np.array([[1e4, -1e4], [0.0, 0.0]], np.float32)), [1, 0])
    np.testing.assert_allclose(loss.data, (2e4 + np.log(2)) / 2, rtol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "cross_entropy",
                                  "sigmoid", "softplus"])
def test_second_derivatives_are_finite_at_magnitude_1e4(name):
    f = STABLE[name][0]
    w = np.random.default_rng(1).standard_normal(BIG.size)

    def loss(x):
        out = f(x)
        return fg.sum(out * w[: out.size].reshape(out.shape))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = fg.grad(lambda x: fg.sum(fg.grad(loss)(x) * w.reshape(BIG.shape)))(BIG)
    assert np.isfinite(h).all()


# -- IEEE results in forward; detect_anomaly names the op ----------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_division_by_zero_and_log_of_zero_give_ieee_results(dtype):
    num = Tensor(np.array([1.0, -1.0, 0.0], dtype), autograd=True)
    zero = Tensor(np.zeros(3, dtype), autograd=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's, left to the user
        q = num / zero
        logs = fg.log(Tensor(np.array([0.0, -1.0, 1.0], dtype)))
        roots = fg.sqrt(Tensor(np.array([-1.0, 0.0], dtype)))
        plain = fg.divide(np.array([1.0], dtype), 0.0)
    np.testing.assert_array_equal(q.data, [INF, -INF, NAN])
    np.testing.assert_array_equal(logs.data, [-INF, NAN, 0.0])
    np.testing.assert_array_equal(roots.data, [NAN, 0.0])
    np.testing.assert_array_equal(plain, [INF])
    assert q.dtype == logs.dtype == roots.dtype == dtype


def test_numpy_warnings_are_left_to_the_user():
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        fg.log(Tensor(np.zeros(1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(divide="ignore"):  # the user's choice reaches the op
            assert fg.log(Tensor(np.zeros(1))).data[0] == -INF


@pytest.mark.parametrize("make, op", [
    (lambda x: x / (x - x), "divide"),
    (lambda x: fg.log(x - x), "log"),
    (lambda x: fg.sqrt(-x), "sqrt"),
    (lambda x: fg.exp(x * 1e3), "exp"),
    (lambda x: (x - x) ** -1.0, "power"),
])
def test_detect_anomaly_names_the_forward_op(make, op):
    x = Tensor(np.array([1.0, 2.0]), autograd=True)
    with fg.detect_anomaly(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(AnomalyError, match=f"^{op}: forward produced"):
            make(x)


def test_detect_anomaly_names_the_backward_op():
    x = Tensor(np.array([0.0, 4.0]), autograd=True)
    y = fg.sqrt(x)  # finite forward, inf derivative at 0
    with fg.detect_anomaly(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(AnomalyError, match="^sqrt: backward produced inf"):
            y.sum().backward()


def test_anomaly_detection_is_off_by_default_and_scoped():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isneginf(fg.log(Tensor(np.zeros(1))).data).all()
        with fg.detect_anomaly():
            with pytest.raises(AnomalyError):
                fg.log(Tensor(np.zeros(1)))
        assert np.isneginf(fg.log(Tensor(np.zeros(1))).data).all()


def test_user_requested_floating_point_errors_name_the_op():
    with np.errstate(divide="raise"):
        with pytest.raises(AnomalyError, match="^divide: divide by zero"):
            Tensor(np.ones(2)) / Tensor(np.zeros(2))
