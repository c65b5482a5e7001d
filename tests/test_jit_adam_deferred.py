"""Adam under fg.jit with few, large parameters: the step is left to the optimizer.

An MLP in object style (``Linear``-like Tensors, ``loss.backward(); opt.step()``) has a handful
of parameters with tens of thousands of numbers between them. Traced, Adam's update is a
fused group of some 28 instructions per element; deferred (jit/optimizers.py
``ADAM_DEFER_MIN_SIZE``), the program computes the gradients and the optimizer's own step —
one kernel call per parameter, or one pass over its flat buffers when it packs them — runs on
commit. These tests hold the deferred jitted step to eager's (to the rounding of the compiled
forward and backward), the eager step's kernel path (``Adam._update_group``) to the NumPy
rule's results bit for bit, and check which programs defer.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.jit import compiled, jit
from fungrad.jit import optimizers as jit_optim
from fungrad.jit.optimizers import ADAM_DEFER_MIN_SIZE, DeferredStep
from fungrad.kernels import optim as kernels
from fungrad.kernels import optim_formulas as formulas
from fungrad.optim import SGD, Adam
from fungrad.optim import optimizers as optim_module


@pytest.fixture(params=[True, False], ids=["checked", "unchecked"])
def checks(request, monkeypatch):
    """The test suite's checked run mode (inputs read through guarded copies) and the plain
    one."""
    monkeypatch.setattr(compiled, "CHECKS", request.param)
    return request.param


def _mlp(n_in, n_hid, n_out=3, dtype=np.float32, seed=0, decay=0.0, read_after=False):
    """``(params, opt, step)``: a 2-layer tanh MLP with Adam, written as the book's users do
    (``read_after``: the step returns a value read from a parameter after the update)."""
    rng = np.random.default_rng(seed)
    w1 = Tensor((rng.standard_normal((n_in, n_hid)) / np.sqrt(n_in)).astype(dtype),
                autograd=True)
    b1 = Tensor(np.zeros(n_hid, dtype), autograd=True)
    w2 = Tensor((rng.standard_normal((n_hid, n_out)) / np.sqrt(n_hid)).astype(dtype),
                autograd=True)
    b2 = Tensor(np.zeros(n_out, dtype), autograd=True)
    x = rng.standard_normal((64, n_in)).astype(dtype)
    y = rng.integers(0, n_out, 64)
    opt = Adam([w1, b1, w2, b2], lr=1e-3, weight_decay=decay)

    def step():
        h = fg.tanh(fg.affine(x, w1, b1))
        loss = fg.cross_entropy(fg.affine(h, w2, b2), y)
        loss.backward()
        opt.step()
        return w1.sum() if read_after else loss
    return [w1, b1, w2, b2], opt, step


def _deferred(jitted) -> bool:
    variants = [v for vs in jitted._cache.values() for v in vs if v.program is not None]
    return bool(variants) and all(
        any(isinstance(e.target, DeferredStep) for e in v.program.effects) for v in variants)


def _same(params_a, opt_a, params_b, opt_b, rtol, atol):
    """The parameters, gradients, versions and optimizer state agree (to ``rtol``/``atol``:
    the compiled forward and backward round as NumPy's, not always in its order, and Adam
    scales a gradient near zero up to a step of about ``lr``)."""
    for p, q in zip(params_a, params_b):
        np.testing.assert_allclose(p.data, q.data, rtol=rtol, atol=atol)
        np.testing.assert_array_equal(p.grad.data, q.grad.data)  # zeroed by the step
        assert p._version == q._version
        assert p.grad._version == q.grad._version
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sorted(sa) == sorted(sb)
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], rtol=rtol, atol=atol, err_msg=k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decay", [0.0, 0.05])
@pytest.mark.parametrize("shape", [(300, 250), (200, 180)], ids=["unpacked", "packed"])
def test_a_few_large_parameters_defer_and_equal_eager(shape, decay, dtype, checks):
    params_e, opt_e, eager = _mlp(*shape, dtype=dtype, decay=decay)
    params_j, opt_j, step = _mlp(*shape, dtype=dtype, decay=decay)
    jitted = jit(step)
    for k in range(7):
        if k == 3:  # one parameter starts afresh: the step counts part
            del opt_e.state[params_e[0]]
            del opt_j.state[params_j[0]]
        if k == 5:  # a new learning rate takes effect without a retrace
            opt_e.lr = opt_j.lr = 2e-4
        le, lj = eager(), jitted()
        # (float32: a gradient's last bit can flip the sign of a near-zero one, which Adam
        # turns into a step of about lr; float64 holds the arithmetic to its rounding)
        rtol, atol = (1e-3, 1e-4) if dtype == np.float32 else (1e-10, 1e-13)
        np.testing.assert_allclose(lj.data, le.data, rtol=rtol)
        _same(params_j, opt_j, params_e, opt_e, rtol, atol)
    assert _deferred(jitted)
    assert opt_j._layout.packed == (shape == (200, 180))
    assert jitted.cache_info().misses == 2  # the eager first step, then one trace


def test_small_or_many_small_unpacked_parameters_keep_the_traced_update(checks):
    # below ADAM_DEFER_MIN_SIZE numbers the program's own update is the cheaper one
    params_e, opt_e, eager = _mlp(6, 5, dtype=np.float64)
    params_j, opt_j, step = _mlp(6, 5, dtype=np.float64)
    jitted = jit(step)
    for _ in range(3):
        eager(), jitted()
    assert not _deferred(jitted)
    # many small parameters the optimizer does not pack: one program updates them all
    rng = np.random.default_rng(1)
    n = ADAM_DEFER_MIN_SIZE // 1000 + 8
    ws = [Tensor(rng.standard_normal(1000), autograd=True) for _ in range(n)]
    opt = Adam(ws, lr=0.01, flat=False)

    def chain():
        loss = sum(fg.sum(fg.tanh(w) * w) for w in ws)
        loss.backward()
        opt.step()
        return loss
    ref = [Tensor(w.data.copy(), autograd=True) for w in ws]
    opt_ref = Adam(ref, lr=0.01, flat=False)
    jchain = jit(chain)
    for _ in range(3):
        jchain()
        sum(fg.sum(fg.tanh(w) * w) for w in ref).backward()
        opt_ref.step()
    assert not _deferred(jchain)
    for w, r in zip(ws, ref):
        np.testing.assert_allclose(w.data, r.data, rtol=1e-12, atol=1e-15)


def test_sgd_with_few_large_parameters_is_not_deferred(checks):
    # SGD's update in the program is one sgd_dense pass: only many parameters defer it
    rng = np.random.default_rng(2)
    w = Tensor(rng.standard_normal((300, 200)), autograd=True)
    x = rng.standard_normal((4, 300))
    opt = SGD([w], alpha=0.1)

    @jit
    def step():
        fg.sum(fg.tanh(x @ w)).backward()
        opt.step()
    for _ in range(3):
        step()
    assert not _deferred(step)


def test_reading_the_parameters_after_the_step_traces_the_update_into_the_program(checks):
    params_e, opt_e, eager = _mlp(200, 180, dtype=np.float64, read_after=True)
    params_j, opt_j, step = _mlp(200, 180, dtype=np.float64, read_after=True)
    jitted = jit(step)
    for _ in range(4):
        np.testing.assert_allclose(jitted().data, eager().data, rtol=1e-12)
    assert not _deferred(jitted)  # the step's values are read: the program makes them
    for p, q in zip(params_j, params_e):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-15)


# -- the eager step's kernel path ---------------------------------------------------------------


def _adam_pair(shapes, dtype, monkeypatch, decay=0.0):
    """Two identical unpacked Adams: the kernel path, and the NumPy rule's (every parameter
    below the kernel's threshold)."""
    rng = np.random.default_rng(7)
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    a = [Tensor(v.copy(), autograd=True) for v in values]
    b = [Tensor(v.copy(), autograd=True) for v in values]
    return a, Adam(a, lr=0.01, weight_decay=decay, flat=False), b, Adam(
        b, lr=0.01, weight_decay=decay, flat=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_the_kernel_path_equals_the_numpy_rule_bit_for_bit(dtype, decay, monkeypatch):
    shapes = [(70, 80), (5,), (), (3, 4)]
    a, opt_a, b, opt_b = _adam_pair(shapes, dtype, monkeypatch, decay)
    rng = np.random.default_rng(8)
    big = optim_module._FUSED_MIN_SIZE
    for k in range(4):
        grads = [rng.standard_normal(s) for s in shapes]
        if k == 1:  # a non-contiguous parameter and a gradient of another dtype
            for ts in (a, b):
                ts[3].data = np.asfortranarray(ts[3].data)
        for ts in (a, b):
            for t, g in zip(ts, grads):
                t.grad = Tensor(g.astype(np.float32 if k == 2 else dtype))
        if k == 3:
            del opt_a.state[a[1]]
            del opt_b.state[b[1]]
        opt_a.step()  # the 5,600-number parameter takes the whole group to the kernel
        monkeypatch.setattr(optim_module, "_FUSED_MIN_SIZE", 10 ** 9)
        opt_b.step()  # every parameter by the NumPy rule
        monkeypatch.setattr(optim_module, "_FUSED_MIN_SIZE", big)
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p.data, q.data)
            assert p._version == q._version
        for key, value in opt_a.state_dict().items():
            np.testing.assert_array_equal(value, opt_b.state_dict()[key], err_msg=key)


def test_adam_ranges_and_its_twin_agree_bit_for_bit():
    rng = np.random.default_rng(9)
    for dtype in (np.float32, np.float64):
        p, g, m, v = (rng.standard_normal(50).astype(dtype) for _ in range(4))
        v = np.abs(v)
        starts, ends = np.array([0, 20]), np.array([10, 50])
        size, bc2 = formulas.adam_bias([3, 1], 0.01, 0.9, 0.99, dtype)
        consts = formulas.adam_consts(0.9, 0.99, 1e-8, 0.01, dtype)
        twin = [a.copy() for a in (p, g, m, v)]
        kernels.adam_ranges(p, g, m, v, starts, ends, size, bc2, consts)
        formulas.adam_ranges_numpy(*twin, starts, ends, size, bc2, consts)
        for x, y in zip((p, g, m, v), twin):
            np.testing.assert_array_equal(x, y)
        assert np.array_equal(p[10:20], twin[0][10:20])  # outside the ranges: untouched


def test_adam_bias_of_one_range_is_the_general_paths():
    for dtype in ("float32", "float64"):
        one = formulas.adam_bias([5], 3e-3, 0.8, 0.95, dtype)
        two = formulas.adam_bias(np.array([5, 5]), 3e-3, 0.8, 0.95, dtype)
        for x, y in zip(one, two):
            assert x.dtype == y.dtype == np.dtype(dtype) and x.shape == (1,)
            assert x[0] == y[0] == y[1]


def test_the_deferral_rule():
    # (the constants the rule reads, as documented in jit/optimizers.py)
    assert jit_optim.ADAM_DEFER_MEAN_SIZE <= jit_optim.ADAM_DEFER_MIN_SIZE
    assert jit_optim.ADAM_DEFER_MEAN_SIZE >= optim_module._FUSED_MIN_SIZE


def test_pytorch_idiom_zero_grad_backward_step_defers_and_equals_eager(checks):
    # ``opt.zero_grad()`` (PyTorch's default: .grad = None), backward, step, the loss returned
    def build(like=None):
        rng = np.random.default_rng(4)
        model = fg.nn.Sequential(fg.nn.Linear(300, 160), fg.nn.Tanh(), fg.nn.Linear(160, 4))
        if like is not None:  # the same initial weights
            for p, q in zip(model.parameters(), like.parameters()):
                p.data = q.data.copy()
        opt = Adam(model.parameters(), lr=1e-3)
        x = rng.standard_normal((32, 300))
        y = rng.integers(0, 4, 32)

        def step():
            opt.zero_grad()
            loss = fg.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return model, opt, step

    model_e, opt_e, eager = build()
    model_j, opt_j, step = build(like=model_e)
    jitted = jit(step)
    for _ in range(5):
        np.testing.assert_allclose(jitted().data, eager().data, rtol=1e-10)
    assert _deferred(jitted)
    for p, q in zip(model_j.parameters(), model_e.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-10, atol=1e-13)
        assert (p.grad is None) == (q.grad is None)
