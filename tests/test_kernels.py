"""fungrad.kernels: every Numba kernel against its NumPy twin, every twin against a definition.

Shapes and values are drawn by Hypothesis, in float32 and float64. Kernels whose entry points
trust their caller (C-contiguous arrays of one float dtype, indices in range: the ops check
once) get inputs in that layout; the ops' own tests present every layout and dtype
(``tests/test_edge_cases.py``, ``tests/test_fused.py``). Example counts are small because the
first call of each kernel signature compiles (later runs hit Numba's cache).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fungrad.kernels import activations, bags, optim, recurrent, reduce, scatter, softmax

SETTINGS = settings(max_examples=25, deadline=None)
DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["C", "F", "strided", "transposed"])
MODULES = [activations, bags, optim, recurrent, reduce, scatter, softmax]


def relayout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``a`` in another memory layout (a view of a fresh buffer)."""
    if layout == "F":
        return np.array(a, order="F")
    if layout == "strided" and a.ndim:
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if layout == "transposed":
        return np.array(a.T, order="C").T
    return np.array(a, order="C")  # not ascontiguousarray: that makes 0-d arrays 1-d


def tol(dtype) -> dict:
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def assert_same(kernel_result, twin_result, dtype):
    """Kernel and twin agree in value, shape and dtype (the computing dtype)."""
    k, t = np.asarray(kernel_result), np.asarray(twin_result)
    assert k.dtype == t.dtype == np.dtype(dtype), (k.dtype, t.dtype, dtype)
    assert k.shape == t.shape
    np.testing.assert_allclose(k, t, **tol(dtype))


def floats(dtype, shape, lo=-10.0, hi=10.0):
    return hnp.arrays(dtype, shape, elements=st.floats(lo, hi, width=32))


# --------------------------------------------------------------------------- package rules


def test_package_import_does_not_import_numba():
    code = "import sys, fungrad.kernels; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_public_function_has_a_twin_and_kernels_are_cached(module):
    import numba.core.registry

    names = [n for n in module.__all__ if not n.endswith("_numpy")]
    assert names and all(callable(getattr(module, n + "_numpy")) for n in names)
    for obj in vars(module).values():
        if isinstance(obj, numba.core.registry.CPUDispatcher):
            assert obj.targetoptions.get("nogil") is True, obj
            assert obj.targetoptions.get("error_model") == "numpy", obj  # 1/0 -> inf, as twin
            assert type(obj._cache).__name__ != "NullCache", f"{obj} lacks cache=True"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_docstring_examples_run(module):
    import doctest

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- scatter


@st.composite
def scatter_inputs(draw):
    n_rows = draw(st.integers(1, 12))
    n, d = draw(st.integers(0, 12)), draw(st.integers(1, 5))
    indices = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, n_rows - 1)))
    dtype = draw(DTYPES)
    return n_rows, indices, draw(floats(dtype, (n, d))), dtype


@SETTINGS
@given(scatter_inputs())
def test_scatter_add_matches_twin_and_loop(args):
    n_rows, indices, values, dtype = args
    out = scatter.scatter_add(n_rows, indices, values)
    assert out.shape == (n_rows, values.shape[1])
    assert_same(out, scatter.scatter_add_numpy(n_rows, indices, values), dtype)
    expected = np.zeros(out.shape)
    for i, row in enumerate(indices):
        expected[row] += values[i]
    np.testing.assert_allclose(out, expected, **tol(dtype))


@pytest.mark.parametrize("fn", [scatter.scatter_add, scatter.scatter_add_numpy])
def test_scatter_add_repeated_indices_accumulate(fn):
    values = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = fn(3, np.array([2, 2, 0, 2]), values)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[6, 7, 8], [0, 0, 0], [0 + 3 + 9, 1 + 4 + 10, 2 + 5 + 11]])
    np.testing.assert_array_equal(fn(4, np.zeros((0,), np.int64), np.zeros((0, 2))),
                                  np.zeros((4, 2)))


# --------------------------------------------------------------------------- bags


@st.composite
def bag_inputs(draw):
    n_rows, d = draw(st.integers(1, 9)), draw(st.integers(1, 5))
    n_bags, length = draw(st.integers(0, 6)), draw(st.integers(0, 5))
    indices = draw(hnp.arrays(np.int64, (n_bags, length), elements=st.integers(0, n_rows - 1)))
    dtype = draw(DTYPES)
    scale = draw(st.sampled_from([1.0, 1.0 / max(length, 1)]))
    return draw(floats(dtype, (n_rows, d))), indices, draw(floats(dtype, (n_bags, d))), scale, dtype


@SETTINGS
@given(bag_inputs())
def test_bag_sum_and_scatter_match_twins_and_definitions(args):
    table, indices, g, scale, dtype = args
    out = bags.bag_sum(table, indices, scale)
    assert_same(out, bags.bag_sum_numpy(table, indices, scale), dtype)
    np.testing.assert_allclose(out, table.astype(np.float64)[indices].sum(1) * scale, **tol(dtype))
    n_rows = table.shape[0]
    back = bags.bag_scatter(n_rows, indices, g, scale)
    assert_same(back, bags.bag_scatter_numpy(n_rows, indices, g, scale), dtype)
    # the transpose: <bag_sum(E), g> == <E, bag_scatter(g)>
    np.testing.assert_allclose((out.astype(np.float64) * g).sum(),
                               (table.astype(np.float64) * back).sum(), rtol=1e-4, atol=1e-3)


# --------------------------------------------------------------------------- softmax


@st.composite
def logits_and_targets(draw, lo=-30.0, hi=30.0):
    n, c = draw(st.integers(1, 9)), draw(st.integers(1, 12))
    dtype = draw(DTYPES)
    logits = draw(floats(dtype, (n, c), lo, hi))
    targets = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return logits, targets, dtype


def _log_softmax_definition(x):
    x = np.asarray(x, np.float64)
    return np.log(np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True))


@SETTINGS
@given(logits_and_targets())
def test_softmax_xent_forward_matches_twin(args):
    logits, targets, dtype = args
    loss, probs = softmax.softmax_xent_forward(logits, targets)
    loss_np, probs_np = softmax.softmax_xent_forward_numpy(logits, targets)
    assert loss.shape == () and probs.shape == logits.shape
    assert_same(loss, loss_np, dtype)
    assert_same(probs, probs_np, dtype)


@SETTINGS
@given(logits_and_targets())
def test_softmax_xent_twins_match_definition(args):
    logits, targets, dtype = args
    n = len(targets)
    loss, probs = softmax.softmax_xent_forward_numpy(logits, targets)
    logp = _log_softmax_definition(logits)
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(loss, -logp[np.arange(n), targets].mean(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(probs, np.exp(logp), rtol=rtol, atol=1e-6)
    onehot = np.eye(logits.shape[1])[targets]
    np.testing.assert_allclose(softmax.softmax_xent_backward_numpy(probs, targets, 3.0),
                               (probs - onehot) * 3.0 / n, rtol=rtol, atol=1e-6)


@SETTINGS
@given(logits_and_targets(), st.floats(-4, 4, width=32))
def test_softmax_xent_backward_matches_twin(args, g):
    logits, targets, dtype = args
    probs = softmax.softmax_xent_forward_numpy(logits, targets)[1]
    assert_same(softmax.softmax_xent_backward(probs, targets, g),
                softmax.softmax_xent_backward_numpy(probs, targets, g), dtype)


def test_softmax_xent_backward_is_the_gradient_of_forward():
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(5, 4)) * 3, np.array([0, 3, 1, 1, 2])
    loss = lambda x: float(softmax.softmax_xent_forward(x, targets)[0])
    grad = softmax.softmax_xent_backward(softmax.softmax_xent_forward(logits, targets)[1],
                                         targets, 2.0)
    direction = rng.normal(size=logits.shape)
    eps = 1e-6
    numeric = (loss(logits + eps * direction) - loss(logits - eps * direction)) / (2 * eps)
    np.testing.assert_allclose((grad * direction).sum(), 2.0 * numeric, rtol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e3, 1e4])
def test_softmax_large_logits_are_finite(dtype, scale):
    logits = (np.array([[1.0, -1.0, 0.0], [0.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]) * scale)
    logits = logits.astype(dtype)
    targets = np.array([1, 2, 0])
    expected = (2 * scale + np.log(2) + np.log(3)) / 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fwd in (softmax.softmax_xent_forward, softmax.softmax_xent_forward_numpy):
            loss, probs = fwd(logits, targets)
            assert loss.dtype == probs.dtype == dtype
            assert np.isfinite(loss) and np.isfinite(probs).all()
            np.testing.assert_allclose(loss, expected, rtol=1e-6)
        for fn in (softmax.softmax_forward, softmax.softmax_forward_numpy):
            assert np.isfinite(fn(logits)).all() and fn(logits).dtype == dtype


@SETTINGS
@given(DTYPES, hnp.array_shapes(min_dims=2, max_dims=2, max_side=7), st.data())
def test_softmax_matches_twin_and_definition(dtype, shape, data):
    x = data.draw(floats(dtype, shape, -50, 50))
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    p = softmax.softmax_forward(x)
    assert_same(p, softmax.softmax_forward_numpy(x), dtype)
    np.testing.assert_allclose(p, np.exp(_log_softmax_definition(x)), rtol=rtol, atol=1e-6)


# --------------------------------------------------------------------------- activations


@SETTINGS
@given(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6), LAYOUTS,
       st.data())
def test_sigmoid_forward_matches_twin_and_definition(dtype, shape, layout, data):
    x = relayout(data.draw(floats(dtype, shape, -1e4, 1e4)), layout)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = activations.sigmoid_forward(x)
        assert_same(out, activations.sigmoid_forward_numpy(x), dtype)
    x64 = np.clip(x.astype(np.float64), -700, 700)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x64)), **tol(dtype))


def test_sigmoid_is_stable_at_extremes_and_keeps_float32():
    x = np.array([-1e30, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e30], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (activations.sigmoid_forward, activations.sigmoid_forward_numpy):
            out = fn(x)
            assert out.dtype == np.float32
            np.testing.assert_allclose(out, [0, 0, np.exp(-50.0), 0.5, 1, 1, 1], rtol=1e-6)
            assert out[2] > 0  # the small tail is not flushed to zero


# --------------------------------------------------------------------------- optimizers


def _copy_in(a: np.ndarray, layout: str) -> np.ndarray:
    return relayout(a.copy(), layout)


@st.composite
def optim_inputs(draw):
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=6))
    layout = draw(LAYOUTS)
    param = draw(floats(dtype, shape, -3, 3))
    grads = [draw(floats(dtype, shape, -3, 3)) for _ in range(3)]
    return dtype, layout, param, grads


def _sgd_definition(param, grads, lr, momentum):
    p, v = param.astype(np.float64), np.zeros(param.shape)
    for g in grads:
        v = momentum * v + g if momentum else g
        p = p - lr * v
    return p, v


@SETTINGS
@given(optim_inputs(), st.sampled_from([0.0, 0.5, 0.9]), st.floats(1e-3, 1.0))
def test_sgd_update_matches_twin_in_place(args, momentum, lr):
    dtype, layout, param, grads = args
    results = []
    for fn in (optim.sgd_update, optim.sgd_update_numpy):
        p = _copy_in(param, layout)
        v = _copy_in(np.zeros_like(param), layout)
        for g in grads:
            assert fn(p, relayout(g, "F"), lr, momentum, v) is None
        assert p.dtype == dtype
        results.append((p, v))
    (p_k, v_k), (p_t, v_t) = results
    assert_same(p_k, p_t, dtype)
    assert_same(v_k, v_t, dtype)
    p_def, v_def = _sgd_definition(param, grads, lr, momentum)
    np.testing.assert_allclose(p_t, p_def, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)
    if momentum:
        np.testing.assert_allclose(v_t, v_def, rtol=1e-4, atol=1e-4)
    else:
        assert not v_t.any()  # velocity untouched without momentum


def _adam_definition(param, grads, lr, b1, b2, eps, wd):
    p, m, v = param.astype(np.float64), np.zeros(param.shape), np.zeros(param.shape)
    for step, g in enumerate(grads, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**step), v / (1 - b2**step)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


@SETTINGS
@given(optim_inputs(), st.sampled_from([0.0, 0.01]), st.floats(1e-4, 0.1))
def test_adam_update_matches_twin_and_definition_in_place(args, weight_decay, lr):
    dtype, layout, param, grads = args
    hp = {"lr": lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": weight_decay}
    results = []
    for fn in (optim.adam_update, optim.adam_update_numpy):
        p, m, v = (_copy_in(a, layout) for a in (param, np.zeros_like(param), np.zeros_like(param)))
        for step, g in enumerate(grads, start=1):
            assert fn(p, g, m, v, step, **hp) is None
        results.append((p, m, v))
    for k, t in zip(*results):
        assert_same(k, t, dtype)
    expected = _adam_definition(param, grads, lr=lr, b1=0.9, b2=0.999, eps=1e-8, wd=weight_decay)
    for got, want in zip(results[1], expected):
        np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-9,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("fn", [optim.adam_update, optim.adam_update_numpy])
def test_adam_updates_strided_and_fortran_views_of_the_callers_buffers(fn):
    buf = np.zeros((4, 6))
    p = buf[:, ::2]  # non-contiguous view: only the even columns may change
    p[...] = 1.0
    m, v = np.zeros((3, 4)).T, np.asfortranarray(np.zeros((4, 3)))
    fn(p, np.full((4, 3), 2.0), m, v, 1, lr=0.1)
    np.testing.assert_allclose(buf[:, ::2], 0.9)
    assert not buf[:, 1::2].any()
    np.testing.assert_allclose(m, 0.2)
    np.testing.assert_allclose(v, 0.004)


@pytest.mark.parametrize("fn", [optim.sgd_update, optim.sgd_update_numpy])
def test_sgd_updates_a_strided_view_and_its_velocity(fn):
    buf = np.ones((3, 4), np.float32)
    vel = np.zeros((4, 3), np.float32).T
    fn(buf[::2], np.ones((2, 4)), 0.5, 0.9, vel[::2])
    np.testing.assert_array_equal(buf, [[0.5] * 4, [1.0] * 4, [0.5] * 4])
    np.testing.assert_array_equal(vel, [[1.0] * 4, [0.0] * 4, [1.0] * 4])


@pytest.mark.parametrize("fn", [optim.adam_update, optim.adam_update_numpy])
def test_adam_rejects_bad_calls_without_touching_anything(fn):
    p, m, v = np.ones(3), np.zeros(3), np.zeros(3)
    bad_calls = [
        ((p, np.ones(3), m, np.zeros(3, np.float32), 1), ValueError, "v must match param"),
        ((p, np.ones(4), m, v, 1), ValueError, "grad shape"),
        ((p, np.ones(3), m, v, 0), ValueError, "step must be an integer >= 1"),
        ((p, np.ones(3), m, m, 1), ValueError, "share memory"),
        ((np.ones(3, np.int64), np.ones(3), m, v, 1), TypeError, "float32 or float64"),
        ((p.tolist(), np.ones(3), m, v, 1), TypeError, "must be a NumPy array"),
    ]
    for args, exc, msg in bad_calls:
        with pytest.raises(exc, match=msg):
            fn(*args)
    with pytest.raises(ValueError, match="beta2 must be in"):
        fn(p, np.ones(3), m, v, 1, beta2=1.0)
    readonly = np.ones(3)
    readonly.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        fn(readonly, np.ones(3), m, v, 1)
    assert (p == 1).all() and not m.any() and not v.any()


def test_adam_division_by_zero_gives_nan_like_the_twin():
    results = []
    for fn in (optim.adam_update, optim.adam_update_numpy):
        p, m, v = np.ones(2), np.zeros(2), np.zeros(2)
        with np.errstate(invalid="ignore"):
            fn(p, np.zeros(2), m, v, 1, eps=0.0)  # 0 / (sqrt(0) + 0): no ZeroDivisionError
        results.append(p)
    assert np.isnan(results[0]).all() and np.isnan(results[1]).all()


@pytest.mark.parametrize("fn", [optim.sgd_update, optim.sgd_update_numpy])
def test_sgd_rejects_bad_calls(fn):
    p = np.ones(3)
    with pytest.raises(ValueError, match="needs a velocity"):
        fn(p, np.ones(3), 0.1, 0.9)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        fn(p, np.ones(3), -0.1)
    assert (p == 1).all()


# --------------------------------------------------------------------------- LSTM gates


@st.composite
def lstm_inputs(draw, lo=-6.0, hi=6.0):
    dtype = draw(DTYPES)
    b, h = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    gates = draw(floats(dtype, (b, 4 * h), lo, hi))
    c_prev, dh, dc = (draw(floats(dtype, (b, h), -2, 2)) for _ in range(3))
    return dtype, gates, c_prev, dh, dc


def _lstm_definition(gates, c_prev):
    x = np.asarray(gates, np.float64)
    i, f, g, o = np.split(x, 4, axis=1)
    sig = lambda z: 1 / (1 + np.exp(-z))
    c = sig(f) * c_prev + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c), c


def _forward(fn, gates, c_prev, in_place=False):
    acts = gates.copy() if in_place else np.empty_like(gates)
    c, h = np.empty_like(c_prev), np.empty_like(c_prev)
    fn(acts if in_place else gates, c_prev, acts, c, h)
    return acts, c, h


def _backward(fn, dh, dc, acts, c_prev, c):
    dgates, dc_prev = np.empty_like(acts), np.empty_like(c)
    fn(dh, dc, acts, c_prev, np.tanh(c), dgates, dc_prev)
    return dgates, dc_prev


@SETTINGS
@given(lstm_inputs(), st.booleans())
def test_lstm_forward_step_matches_twin_and_definition(args, in_place):
    dtype, gates, c_prev, _, _ = args
    results = _forward(recurrent.lstm_forward_step, gates, c_prev, in_place)
    twin = _forward(recurrent.lstm_forward_step_numpy, gates, c_prev, in_place)
    for k, t in zip(results, twin):
        assert_same(k, t, dtype)
    h_def, c_def = _lstm_definition(gates, c_prev)
    np.testing.assert_allclose(twin[2], h_def, **tol(dtype))
    np.testing.assert_allclose(twin[1], c_def, **tol(dtype))


@SETTINGS
@given(lstm_inputs())
def test_lstm_backward_step_matches_twin(args):
    dtype, gates, c_prev, dh, dc = args
    acts, c, _ = _forward(recurrent.lstm_forward_step_numpy, gates, c_prev)
    for k, t in zip(_backward(recurrent.lstm_backward_step, dh, dc, acts, c_prev, c),
                    _backward(recurrent.lstm_backward_step_numpy, dh, dc, acts, c_prev, c)):
        assert_same(k, t, dtype)


def test_lstm_backward_step_twin_is_the_gradient_of_forward():
    rng = np.random.default_rng(1)
    gates, c_prev = rng.normal(size=(3, 8)) * 2, rng.normal(size=(3, 2))
    dh, dc = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))

    def objective(gates, c_prev):
        h, c = _lstm_definition(gates, c_prev)
        return (h * dh).sum() + (c * dc).sum()

    acts, c, _ = _forward(recurrent.lstm_forward_step_numpy, gates, c_prev)
    dgates, dc_prev = _backward(recurrent.lstm_backward_step_numpy, dh, dc, acts, c_prev, c)
    eps = 1e-6
    for x, grad, wrt_gates in ((gates, dgates, True), (c_prev, dc_prev, False)):
        d = rng.normal(size=x.shape)
        args_p = (gates + eps * d, c_prev) if wrt_gates else (gates, c_prev + eps * d)
        args_m = (gates - eps * d, c_prev) if wrt_gates else (gates, c_prev - eps * d)
        numeric = (objective(*args_p) - objective(*args_m)) / (2 * eps)
        np.testing.assert_allclose((grad * d).sum(), numeric, rtol=1e-7)


def test_lstm_large_gates_are_finite_and_keep_float32():
    gates = np.array([[1e4, -1e4, 1e4, -1e4]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (recurrent.lstm_forward_step, recurrent.lstm_forward_step_numpy):
            acts, c, h = _forward(fn, gates, np.ones((1, 1), np.float32))
            assert h.dtype == np.float32
            np.testing.assert_array_equal(acts, [[1, 0, 1, 0]])
            np.testing.assert_array_equal(c, [[1]])


# --------------------------------------------------------------------------- sum_middle


@SETTINGS
@given(DTYPES, hnp.array_shapes(min_dims=3, max_dims=3, min_side=0, max_side=7), st.data())
def test_sum_middle_matches_twin_and_definition(dtype, shape, data):
    x = data.draw(floats(dtype, shape))
    out = reduce.sum_middle(x)
    assert_same(out, reduce.sum_middle_numpy(x), dtype)
    np.testing.assert_allclose(out, x.astype(np.float64).sum(axis=1), **tol(dtype))
