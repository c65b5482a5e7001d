"""fungrad.kernels: every Numba kernel against its NumPy twin, every twin against a definition.

Shapes and values are drawn by Hypothesis; each input is also presented C-ordered,
Fortran-ordered, strided and transposed, in float32 and float64. Example counts are small
because the first call of each kernel signature compiles (later runs hit Numba's cache).
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

from fungrad.kernels import activations, optim, recurrent, reduce, scatter, softmax

SETTINGS = settings(max_examples=25, deadline=None)
DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["C", "F", "strided", "transposed"])
MODULES = [activations, optim, recurrent, reduce, scatter, softmax]


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
    idx_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=6))
    row_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4))
    idx_dtype = draw(st.sampled_from([np.int64, np.int32, np.int8]))
    indices = draw(hnp.arrays(idx_dtype, idx_shape, elements=st.integers(-n_rows, n_rows - 1)))
    dtype = draw(DTYPES)
    values = draw(floats(dtype, idx_shape + row_shape))
    return n_rows, indices, relayout(values, draw(LAYOUTS)), dtype


@SETTINGS
@given(scatter_inputs())
def test_scatter_add_matches_twin(args):
    n_rows, indices, values, dtype = args
    out = scatter.scatter_add(n_rows, indices, values)
    assert out.shape == (n_rows,) + values.shape[indices.ndim :]
    assert_same(out, scatter.scatter_add_numpy(n_rows, indices, values), dtype)


@SETTINGS
@given(scatter_inputs())
def test_scatter_add_twin_matches_loop(args):
    n_rows, indices, values, dtype = args
    row_shape = values.shape[indices.ndim :]
    expected = np.zeros((n_rows,) + row_shape, np.float64)
    for pos in np.ndindex(indices.shape):
        expected[indices[pos]] += values[pos]
    np.testing.assert_allclose(scatter.scatter_add_numpy(n_rows, indices, values), expected,
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("fn", [scatter.scatter_add, scatter.scatter_add_numpy])
def test_scatter_add_repeated_indices_accumulate(fn):
    values = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = fn(3, np.array([2, 2, 0, 2]), values)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[6, 7, 8], [0, 0, 0], [0 + 3 + 9, 1 + 4 + 10, 2 + 5 + 11]])
    np.testing.assert_array_equal(fn(4, np.zeros((0,), np.int64), np.zeros((0, 2))),
                                  np.zeros((4, 2)))
    assert fn(2, [1, 1], [1, 2]).dtype == np.float64  # integer values compute in float64


@pytest.mark.parametrize("fn", [scatter.scatter_add, scatter.scatter_add_numpy])
@pytest.mark.parametrize("bad", [5, 7, -6])
def test_scatter_add_rejects_out_of_range_indices(fn, bad):
    with pytest.raises(ValueError, match=f"scatter_add: index {bad} out of range for 5 rows"):
        fn(5, np.array([0, bad, 1]), np.ones((3, 2)))


@pytest.mark.parametrize("fn", [scatter.scatter_add, scatter.scatter_add_numpy])
def test_scatter_add_rejects_bad_arguments(fn):
    with pytest.raises(TypeError, match="indices must be integers"):
        fn(3, np.array([0.0, 1.0]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="must start with indices shape"):
        fn(3, np.array([0, 1]), np.ones((3, 2)))
    with pytest.raises(TypeError, match="n_rows must be an integer"):
        fn(3.0, np.array([0]), np.ones(1))


# --------------------------------------------------------------------------- softmax


@st.composite
def logits_and_targets(draw, lo=-30.0, hi=30.0):
    n, c = draw(st.integers(1, 9)), draw(st.integers(1, 12))
    dtype = draw(DTYPES)
    logits = relayout(draw(floats(dtype, (n, c), lo, hi)), draw(LAYOUTS))
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
    probs = relayout(softmax.softmax_xent_forward_numpy(logits, targets)[1], "F")
    assert_same(softmax.softmax_xent_backward(probs, targets, g),
                softmax.softmax_xent_backward_numpy(probs, targets, np.float64(g)), dtype)


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
        for fn in (softmax.softmax_forward, softmax.softmax_forward_numpy,
                   softmax.log_softmax_forward, softmax.log_softmax_forward_numpy):
            assert np.isfinite(fn(logits)).all() and fn(logits).dtype == dtype


@SETTINGS
@given(DTYPES, hnp.array_shapes(min_dims=1, max_dims=3, max_side=7), LAYOUTS, st.data())
def test_softmax_and_log_softmax_match_twins_and_definition(dtype, shape, layout, data):
    x = relayout(data.draw(floats(dtype, shape, -50, 50)), layout)
    logp = _log_softmax_definition(x)
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    p, lp = softmax.softmax_forward(x), softmax.log_softmax_forward(x)
    assert_same(p, softmax.softmax_forward_numpy(x), dtype)
    assert_same(lp, softmax.log_softmax_forward_numpy(x), dtype)
    np.testing.assert_allclose(p, np.exp(logp), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(lp, logp, rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("fwd", [softmax.softmax_xent_forward, softmax.softmax_xent_forward_numpy])
def test_softmax_xent_rejects_bad_targets(fwd):
    with pytest.raises(ValueError, match="target 3 out of range for 3 classes"):
        fwd(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="target -1 out of range"):
        fwd(np.zeros((2, 3)), np.array([-1, 0]))
    with pytest.raises(ValueError, match="one target per row"):
        fwd(np.zeros((2, 3)), np.array([0]))
    with pytest.raises(TypeError, match="integer class indices"):
        fwd(np.zeros((2, 3)), np.array([0.0, 1.0]))


# --------------------------------------------------------------------------- activations

BACKWARDS = [
    (activations.tanh_backward, activations.tanh_backward_numpy,
     lambda g, y: g * (1 - y**2)),
    (activations.sigmoid_backward, activations.sigmoid_backward_numpy,
     lambda g, y: g * y * (1 - y)),
    (activations.relu_backward, activations.relu_backward_numpy,
     lambda g, x: np.where(x > 0, g, 0.0)),
]


@SETTINGS
@given(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6), LAYOUTS,
       LAYOUTS, st.data())
def test_activation_backwards_match_twins_and_definitions(dtype, shape, lay_g, lay_y, data):
    g = relayout(data.draw(floats(dtype, shape)), lay_g)
    y = relayout(data.draw(floats(dtype, shape, -1, 1)), lay_y)
    for kernel, twin, definition in BACKWARDS:
        out = kernel(g, y)
        assert_same(out, twin(g, y), dtype)
        np.testing.assert_allclose(twin(g, y), definition(g.astype(np.float64), y), **tol(dtype))


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


@pytest.mark.parametrize("kernel,twin", [b[:2] for b in BACKWARDS])
def test_activation_dtypes_readonly_and_shape_errors(kernel, twin):
    g32, y32 = np.ones((2, 3), np.float32), np.full((2, 3), 0.5, np.float32)
    y32.setflags(write=False)  # read-only inputs must not reach Numba as a typing problem
    assert kernel(g32, y32).dtype == twin(g32, y32).dtype == np.float32
    assert kernel(g32, y32.astype(np.float64)).dtype == np.float64
    assert kernel(np.ones(3, np.int64), np.ones(3, np.int32)).dtype == np.float64
    for fn in (kernel, twin):
        with pytest.raises(ValueError, match="same shape"):
            fn(np.ones((2, 3)), np.ones(3))


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
    gates = relayout(draw(floats(dtype, (b, 4 * h), lo, hi)), draw(LAYOUTS))
    c_prev = relayout(draw(floats(dtype, (b, h), -2, 2)), draw(LAYOUTS))
    dh = relayout(draw(floats(dtype, (b, h), -2, 2)), draw(LAYOUTS))
    dc = relayout(draw(floats(dtype, (b, h), -2, 2)), draw(LAYOUTS))
    return dtype, gates, c_prev, dh, dc


def _lstm_definition(gates, c_prev):
    x = np.asarray(gates, np.float64)
    i, f, g, o = np.split(x, 4, axis=1)
    sig = lambda z: 1 / (1 + np.exp(-z))
    c = sig(f) * c_prev + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c), c


@SETTINGS
@given(lstm_inputs())
def test_lstm_gates_forward_matches_twin_and_definition(args):
    dtype, gates, c_prev, _, _ = args
    results = recurrent.lstm_gates_forward(gates, c_prev)
    twin = recurrent.lstm_gates_forward_numpy(gates, c_prev)
    for k, t in zip(results, twin):
        assert_same(k, t, dtype)
    h_def, c_def = _lstm_definition(gates, c_prev)
    np.testing.assert_allclose(twin[0], h_def, **tol(dtype))
    np.testing.assert_allclose(twin[1], c_def, **tol(dtype))


@SETTINGS
@given(lstm_inputs(), st.sampled_from(["both", "no dh", "no dc"]))
def test_lstm_gates_backward_matches_twin(args, which):
    dtype, gates, c_prev, dh, dc = args
    dh = None if which == "no dh" else dh
    dc = None if which == "no dc" else dc
    _, c, acts = recurrent.lstm_gates_forward_numpy(gates, c_prev)
    for k, t in zip(recurrent.lstm_gates_backward(dh, dc, acts, c_prev, c),
                    recurrent.lstm_gates_backward_numpy(dh, dc, acts, c_prev, c)):
        assert_same(k, t, dtype)


def test_lstm_gates_backward_twin_is_the_gradient_of_forward():
    rng = np.random.default_rng(1)
    gates, c_prev = rng.normal(size=(3, 8)) * 2, rng.normal(size=(3, 2))
    dh, dc = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))

    def objective(gates, c_prev):
        h, c = _lstm_definition(gates, c_prev)
        return (h * dh).sum() + (c * dc).sum()

    _, c, acts = recurrent.lstm_gates_forward_numpy(gates, c_prev)
    dgates, dc_prev = recurrent.lstm_gates_backward_numpy(dh, dc, acts, c_prev, c)
    eps = 1e-6
    for x, grad, wrt_gates in ((gates, dgates, True), (c_prev, dc_prev, False)):
        d = rng.normal(size=x.shape)
        args_p = (gates + eps * d, c_prev) if wrt_gates else (gates, c_prev + eps * d)
        args_m = (gates - eps * d, c_prev) if wrt_gates else (gates, c_prev - eps * d)
        numeric = (objective(*args_p) - objective(*args_m)) / (2 * eps)
        np.testing.assert_allclose((grad * d).sum(), numeric, rtol=1e-7)


def test_lstm_large_gates_and_bad_shapes():
    gates = np.array([[1e4, -1e4, 1e4, -1e4]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fwd in (recurrent.lstm_gates_forward, recurrent.lstm_gates_forward_numpy):
            h, c, acts = fwd(gates, np.ones((1, 1), np.float32))
            assert h.dtype == np.float32
            np.testing.assert_array_equal(acts, [[1, 0, 1, 0]])
            np.testing.assert_array_equal(c, [[1]])
    for fwd in (recurrent.lstm_gates_forward, recurrent.lstm_gates_forward_numpy):
        with pytest.raises(ValueError, match=r"shape \(B, 4H\)"):
            fwd(np.ones((2, 6)), np.ones((2, 1)))
        with pytest.raises(ValueError, match="c_prev must have shape"):
            fwd(np.ones((2, 8)), np.ones((2, 3)))


# --------------------------------------------------------------------------- sum_to_shape


@st.composite
def broadcast_pair(draw):
    target = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4))
    full = lead + tuple(s if s != 1 else draw(st.integers(1, 4)) for s in target)
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32]))
    elements = st.integers(-5, 5) if dtype == np.int32 else st.floats(-10, 10, width=32)
    x = relayout(draw(hnp.arrays(dtype, full, elements=elements)), draw(LAYOUTS))
    return x, target


@SETTINGS
@given(broadcast_pair(), st.data())
def test_sum_to_shape_matches_twin_and_is_the_adjoint_of_broadcasting(pair, data):
    x, target = pair
    out = reduce.sum_to_shape(x, target)
    twin = reduce.sum_to_shape_numpy(x, target)
    assert out.shape == twin.shape == target and out.dtype == twin.dtype
    np.testing.assert_allclose(out, twin, **tol(x.dtype if x.dtype.kind == "f" else np.float64))
    y = data.draw(hnp.arrays(np.float64, target, elements=st.floats(-1, 1)))
    np.testing.assert_allclose((twin * y).sum(), (x * np.broadcast_to(y, x.shape)).sum(),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,target", [((6, 4), (4,)), ((3, 5, 4), (3, 1, 4)),
                                          ((2, 3, 4), (1, 1, 4)), ((4, 3), (4, 1)), ((4, 3), ())])
def test_sum_to_shape_kernel_and_numpy_paths(shape, target):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = reduce.sum_to_shape(x, target)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, reduce.sum_to_shape_numpy(x, target))
    assert reduce.sum_to_shape(x, shape) is x  # nothing to sum: no copy


@pytest.mark.parametrize("fn", [reduce.sum_to_shape, reduce.sum_to_shape_numpy])
def test_sum_to_shape_rejects_incompatible_shapes(fn):
    for target in [(3,), (2, 1, 4), (5, 4)]:
        with pytest.raises(ValueError, match="does not broadcast"):
            fn(np.ones((2, 4)), target)
