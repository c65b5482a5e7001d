"""fungrad.optim: SGD (the book's and with momentum), Adam, clipping, validation, lazy Numba,
state dicts and flat buffers. Issue 11's reproducers carry their item number in the test's
name (test_item07_...); issue 13 item 3 (flat buffers) is the last section."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.optim import SGD, Adam, clip_grad_norm


def _param(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), autograd=True)


def _set_grad(p, g):
    p.grad = Tensor(np.array(g, dtype=p.dtype))


def test_sgd_is_the_books_update_and_zeroes():
    p = _param([1.0, 2.0])
    _set_grad(p, [0.5, -1.0])
    opt = SGD(parameters=[p], alpha=0.1)
    opt.step()
    np.testing.assert_allclose(p.data, [0.95, 2.1])
    np.testing.assert_array_equal(p.grad.data, [0.0, 0.0])
    _set_grad(p, [1.0, 1.0])
    opt.step(zero=False)
    np.testing.assert_array_equal(p.grad.data, [1.0, 1.0])
    opt.zero()
    np.testing.assert_array_equal(p.grad.data, [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_sgd_lr_alias():
    p = _param([1.0])
    opt = SGD([p], lr=0.25)
    assert opt.alpha == opt.lr == 0.25
    opt.lr = 0.5
    assert opt.alpha == 0.5
    with pytest.raises(TypeError, match="alpha.*lr"):
        SGD([p], alpha=0.2, lr=0.3)
    with pytest.raises(ValueError, match="alpha"):
        SGD([p], alpha=-1.0)


def test_sgd_momentum_matches_pytorch_form():
    p = _param([1.0, -1.0])
    opt = SGD([p], alpha=0.1, momentum=0.9)
    w, v = p.data.copy(), np.zeros(2)
    for g in ([1.0, 2.0], [0.5, -1.0], [0.0, 3.0]):
        _set_grad(p, g)
        opt.step()
        v = 0.9 * v + np.array(g)
        w = w - 0.1 * v
        np.testing.assert_allclose(p.data, w, rtol=1e-14)


def test_adam_matches_the_reference_formulas():
    p = _param([1.0, -2.0, 0.5])
    opt = Adam([p], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    w, m, v = p.data.copy(), np.zeros(3), np.zeros(3)
    rng = np.random.default_rng(0)
    for t in range(1, 6):
        g = rng.standard_normal(3)
        _set_grad(p, g)
        opt.step()
        g = g + 0.1 * w
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        w = w - 0.01 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-6)
        np.testing.assert_allclose(p.data, w, rtol=1e-12)


def test_adam_converges_on_a_quadratic():
    p = _param([3.0, -4.0])
    opt = Adam([p], lr=0.1)
    for _ in range(300):
        (p * p).sum().backward()
        opt.step()
    assert np.abs(p.data).max() < 1e-2


def test_parameters_without_grad_are_skipped():
    a, b = _param([1.0]), _param([2.0])
    _set_grad(a, [1.0])
    for opt in (SGD([a, b], alpha=0.5, momentum=0.9), Adam([a, b], lr=0.1)):
        before = b.data.copy()
        opt.step()
        np.testing.assert_array_equal(b.data, before)
        assert b.grad is None


def test_a_bad_gradient_leaves_every_parameter_untouched():
    a, b = _param([1.0, 2.0]), _param([3.0])
    _set_grad(a, [1.0, 1.0])
    b.grad = Tensor(np.ones(2))  # wrong shape
    opt = SGD([a, b], alpha=0.1)
    with pytest.raises(ValueError, match="parameter 1.*shape"):
        opt.step()
    np.testing.assert_array_equal(a.data, [1.0, 2.0])
    np.testing.assert_array_equal(b.data, [3.0])


def test_parameter_validation():
    with pytest.raises(TypeError, match="parameter 0.*ndarray"):
        SGD([np.ones(2)])
    with pytest.raises(TypeError, match="dtype int64"):
        SGD([Tensor(np.array([1, 2]), autograd=True)])
    p = _param([1.0])
    with pytest.raises(ValueError, match="more than once"):
        Adam([p, p])
    with pytest.raises(ValueError, match="betas"):
        Adam([p], betas=(0.9, 1.0))


def test_float32_parameters_stay_float32():
    p = _param([1.0, 2.0], np.float32)
    _set_grad(p, [0.5, 0.5])
    for opt in (SGD([p], alpha=0.1, momentum=0.5), Adam([p], lr=0.1)):
        opt.step(zero=False)
        assert p.data.dtype == np.float32


def test_optimizers_accept_model_parameters():
    model = fg.nn.Sequential([fg.nn.Linear(2, 2, rng=0)])
    for params in (model.parameters(), model.get_parameters(), model.parameters):
        assert len(SGD(params).parameters) == 2


def test_clip_grad_norm():
    a, b = _param([0.0, 0.0]), _param([0.0])
    _set_grad(a, [3.0, 0.0])
    _set_grad(b, [4.0])
    c = _param([1.0])  # no grad: ignored
    assert clip_grad_norm([a, b, c], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad.data, b.grad.data]), [0.6, 0.0, 0.8],
                               rtol=1e-5)
    assert clip_grad_norm([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(a.grad.data, [0.6, 0.0], rtol=1e-5)  # unchanged below max


def test_import_fungrad_does_not_load_numba_but_a_large_step_does():
    code = ("import sys, numpy as np, fungrad as fg\n"
            "assert 'numba' not in sys.modules, 'import fungrad loaded numba'\n"
            "p = fg.Tensor(np.ones(5000), autograd=True)\n"
            "opt = fg.optim.SGD([p])\n"
            "assert 'numba' not in sys.modules\n"
            "(p * p).sum().backward(); opt.step()\n"
            "assert 'numba' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_root())


def _root() -> str:
    import os

    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_step_between_forward_and_backward_is_detected():
    w = fg.Tensor(np.array([1.0, 2.0]), autograd=True)
    opt = fg.optim.SGD([w], alpha=0.1)
    (w * w).sum().backward()
    loss = (w * w).sum()  # recorded with the current weights
    opt.step()  # changes them in place
    with pytest.raises(fg.errors.GraphError, match="modified in place"):
        loss.backward()


# --------------------------------------------------------------------------- issue 11 item 1


def test_item01_clip_grad_norm_and_zero_bump_the_gradient_version():
    """A gradient used in a recorded graph and then changed in place must not be read again."""
    w = _param([1.0, 2.0])
    (w * w).sum().backward()
    x = _param([3.0, 4.0])
    for change in (lambda: clip_grad_norm([w], 0.1), lambda: SGD([w]).zero()):
        y = (w.grad * x).sum()  # records w.grad's current values
        change()
        with pytest.raises(fg.errors.GraphError, match="modified in place"):
            y.backward()
        w.grad = Tensor(np.array([2.0, 4.0]))


# --------------------------------------------------------------------------- issue 11 item 7


@pytest.mark.parametrize("flat", [True, False])
def test_item07_momentum_stays_with_its_parameter_after_a_deletion(flat):
    a, b = _param([0.0]), _param([0.0])
    opt = SGD([a, b], alpha=0.01, momentum=0.9, flat=flat)
    _set_grad(a, [100.0])
    _set_grad(b, [1.0])
    opt.step()  # velocities: a 100, b 1
    del opt.parameters[0]
    _set_grad(b, [0.0])
    before = b.data.copy()
    opt.step()
    np.testing.assert_allclose(b.data - before, [-0.01 * 0.9])  # b's own momentum, not a's
    np.testing.assert_allclose(opt.state[b]["momentum_buffer"], [0.9])
    assert a not in opt.state


@pytest.mark.parametrize("flat", [True, False])
def test_item07_adam_moments_stay_with_their_parameter_after_edits(flat):
    a, b, c = _param([1.0, 2.0]), _param([3.0]), _param([4.0, 5.0, 6.0])
    opt = Adam([a, b], lr=0.1, flat=flat)
    _set_grad(a, [1.0, -1.0])
    _set_grad(b, [5.0])
    opt.step()
    m_b = opt.state[b]["exp_avg"].copy()
    opt.parameters.insert(0, c)  # c first: positions shift, state must not
    del opt.parameters[1]  # a
    _set_grad(b, [5.0])
    _set_grad(c, [1.0, 1.0, 1.0])
    opt.step()
    assert opt.state[b]["step"] == 2 and opt.state[c]["step"] == 1
    np.testing.assert_allclose(opt.state[b]["exp_avg"], 0.9 * m_b + 0.1 * 5.0)
    assert sorted(k for k in opt.state_dict() if k.startswith("state.")) == [
        "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step",
        "state.1.exp_avg", "state.1.exp_avg_sq", "state.1.step"]


def test_item07_state_dict_layout_and_types():
    p, q = _param([1.0, 2.0], np.float32), _param([[1.0]])
    opt = Adam([p, q], lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.01)
    _set_grad(p, [1.0, 1.0])
    opt.step()  # q has no gradient: no state for it
    sd = opt.state_dict()
    assert sorted(sd) == ["hparams.beta1", "hparams.beta2", "hparams.eps", "hparams.lr",
                          "hparams.weight_decay", "num_parameters", "state.0.exp_avg",
                          "state.0.exp_avg_sq", "state.0.step"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert sd["num_parameters"].shape == () and int(sd["num_parameters"]) == 2
    assert sd["state.0.step"].shape == () and sd["state.0.step"].dtype.kind == "i"
    assert sd["hparams.beta1"].shape == () and float(sd["hparams.beta1"]) == 0.8
    assert sd["state.0.exp_avg"].dtype == np.float32
    sd["state.0.exp_avg"][...] = 99  # a copy: the optimizer is not changed through it
    assert not (opt.state[p]["exp_avg"] == 99).any()
    sgd = SGD([p, q], alpha=0.3, momentum=0.5)
    _set_grad(p, [1.0, 1.0])
    _set_grad(q, [[2.0]])
    sgd.step()
    assert sorted(sgd.state_dict()) == ["hparams.lr", "hparams.momentum", "num_parameters",
                                        "state.0.momentum_buffer", "state.1.momentum_buffer"]
    assert sorted(SGD([p]).state_dict()) == ["hparams.lr", "hparams.momentum", "num_parameters"]


def _train(make_opt, model_seed=0, steps=6, start=0, model=None, opt=None, pattern="step"):
    """A small MLP (one float32 layer large enough for the fused kernel) on fixed data."""
    rng = np.random.default_rng(123)
    x = rng.standard_normal((16, 64)).astype(np.float32)
    t = rng.standard_normal((16, 3)).astype(np.float32)
    if model is None:
        model = fg.nn.Sequential([fg.nn.Linear(64, 80, rng=model_seed, dtype=np.float32),
                                  fg.nn.Tanh(), fg.nn.Linear(80, 3, rng=model_seed + 1,
                                                             dtype=np.float32)])
        opt = make_opt(model.parameters())
    for i in range(start, start + steps):
        xs = x[(i % 4) * 4:(i % 4) * 4 + 4]
        ts = t[(i % 4) * 4:(i % 4) * 4 + 4]
        loss = ((model(xs) - ts) ** 2).mean()
        loss.backward()
        if pattern == "step":
            opt.step()
        else:
            opt.step(zero=False)
            opt.zero_grad()
    return model, opt


OPTIMIZERS = {
    "sgd": lambda ps, **kw: SGD(ps, alpha=0.05, **kw),
    "momentum": lambda ps, **kw: SGD(ps, alpha=0.05, momentum=0.9, **kw),
    "adam": lambda ps, **kw: Adam(ps, lr=0.01, weight_decay=0.01, **kw),
}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("flat", [True, False])
def test_item07_a_resumed_run_is_bit_identical(tmp_path, kind, flat):
    make = lambda ps: OPTIMIZERS[kind](ps, flat=flat)  # noqa: E731
    straight, _ = _train(make, steps=8)
    model, opt = _train(make, steps=3)
    fg.save(tmp_path / "model.npz", model)
    fg.save(tmp_path / "opt.npz", opt)
    del model, opt
    model2, _ = _train(make, model_seed=50, steps=0)  # other initial weights
    opt2 = make(model2.parameters())
    model2.load_state_dict(fg.load(tmp_path / "model.npz"))
    opt2.load_state_dict(fg.load(tmp_path / "opt.npz"))
    _train(make, start=3, steps=5, model=model2, opt=opt2)
    for (name, p), (_, q) in zip(straight.named_parameters(), model2.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_item07_save_accepts_the_optimizer_or_its_state_dict(tmp_path):
    p = _param([1.0, 2.0])
    opt = SGD([p], alpha=0.1, momentum=0.9)
    _set_grad(p, [1.0, 1.0])
    opt.step()
    fg.save(tmp_path / "a.npz", opt)
    fg.save(tmp_path / "b.npz", opt.state_dict())
    a, b = fg.load(tmp_path / "a.npz"), fg.load(tmp_path / "b.npz")
    assert sorted(a) == sorted(b) == sorted(opt.state_dict())
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        assert a[key].dtype == opt.state_dict()[key].dtype


def _adam_with_state():
    p, q = _param([1.0, 2.0]), _param([3.0], np.float32)
    opt = Adam([p, q], lr=0.1)
    _set_grad(p, [1.0, 1.0])
    _set_grad(q, [1.0])
    opt.step()
    return p, q, opt


@pytest.mark.parametrize("edit,message", [
    (lambda sd: sd.update({"state.0.exp_avg": np.zeros(3)}),
     r"'state\.0\.exp_avg' has shape \(3,\), the parameter has shape \(2,\)"),
    (lambda sd: sd.update({"state.1.exp_avg": np.zeros(1)}),
     r"'state\.1\.exp_avg' has dtype float64, the parameter has dtype float32"),
    (lambda sd: sd.update({"state.7.exp_avg": np.zeros(1)}),
     r"'state\.7\.exp_avg' is for parameter 7, but the optimizer has 2"),
    (lambda sd: sd.update({"state.0.momentum_buffer": np.zeros(2)}),
     r"unexpected key 'state\.0\.momentum_buffer'"),
    (lambda sd: sd.update({"junk": np.zeros(2)}), r"unexpected key 'junk'"),
    (lambda sd: sd.pop("hparams.eps"), r"missing key 'hparams\.eps'"),
    (lambda sd: sd.pop("state.0.exp_avg_sq"), r"missing key 'state\.0\.exp_avg_sq'"),
    (lambda sd: sd.update({"state.0.step": np.array(0)}), r"'state\.0\.step' is 0"),
    (lambda sd: sd.update({"hparams.beta2": np.array(1.5)}),
     r"'hparams\.beta2': beta2 must be in \[0, 1\)"),
    (lambda sd: sd.update({"num_parameters": np.array(3)}),
     r"'num_parameters' is 3, but the optimizer has 2"),
])
def test_item07_load_state_dict_refuses_bad_state_all_or_nothing(edit, message):
    p, q, opt = _adam_with_state()
    sd = opt.state_dict()
    bad = opt.state_dict()
    bad["hparams.lr"] = np.array(0.5)  # a good change that must not be applied either
    edit(bad)
    with pytest.raises(fg.errors.CheckpointError, match="Adam.load_state_dict.*nothing was "
                       "loaded.*" + message):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert sorted(after) == sorted(sd) and opt.lr == 0.1
    for key in sd:
        np.testing.assert_array_equal(after[key], sd[key], err_msg=key)


def test_item07_load_state_dict_errors_name_the_mistake():
    p, q, opt = _adam_with_state()
    with pytest.raises(TypeError, match="Adam.load_state_dict: expected a mapping"):
        opt.load_state_dict([1, 2])
    with pytest.raises(fg.errors.CheckpointError, match="looks like a model's state dict"):
        opt.load_state_dict({"weight": np.ones(2)})
    with pytest.raises(ValueError):  # CheckpointError is a ValueError
        SGD([p]).load_state_dict(opt.state_dict())


def test_item07_load_state_dict_restores_hyperparameters_and_copies():
    p, q, opt = _adam_with_state()
    sd = opt.state_dict()
    fresh = Adam([p, q], lr=0.5, betas=(0.5, 0.5))
    fresh.load_state_dict(sd)
    assert fresh.lr == 0.1 and fresh.betas == (0.9, 0.999)
    sd["state.0.exp_avg"][...] = 7.0  # the loaded arrays are copies
    assert not (fresh.state[p]["exp_avg"] == 7.0).any()
    assert fresh.state[p]["step"] == 1


def test_item07_del_state_starts_a_parameter_afresh():
    p, q, opt = _adam_with_state()
    del opt.state[p]
    assert p not in opt.state and q in opt.state
    with pytest.raises(KeyError):
        opt.state[p]
    _set_grad(p, [1.0, 1.0])
    before = p.data.copy()
    opt.step()
    np.testing.assert_allclose(before - p.data, [0.1, 0.1])  # a first Adam step moves by lr


# --------------------------------------------------------------------------- issue 11 item 13


def test_item13_clip_grad_norm_sums_float32_squares_in_float64():
    a, b = _param([0.0, 0.0], np.float32), _param([0.0], np.float32)
    _set_grad(a, [3e20, 0.0])
    _set_grad(b, [4e20])
    norm = clip_grad_norm([a, b], 1.0)
    assert norm == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(np.concatenate([a.grad.data, b.grad.data]), [0.6, 0.0, 0.8],
                               rtol=1e-5)
    assert a.grad.dtype == np.float32


# --------------------------------------------------------------------------- issue 11 item 20


@pytest.mark.parametrize("make", [lambda ps: SGD(ps), lambda ps: Adam(ps)])
def test_item20_bad_dtypes_at_step_name_the_optimizer_parameter_and_dtype(make):
    p, q = _param([1.0, 2.0]), _param([1.0])
    opt = make([p, q])
    name = type(opt).__name__
    q.grad = np.array([1.0 + 1.0j])  # Tensor() refuses complex data; .grad takes an array
    _set_grad(p, [1.0, 1.0])
    with pytest.raises(fg.errors.DTypeError, match=name + r"\.step: parameter 1 .*complex128"):
        opt.step()
    q.grad = np.array(["a"])
    with pytest.raises(TypeError, match=name + r"\.step: parameter 1 .*<U1"):
        opt.step()
    q.grad = None
    q.data = np.array([3])  # an int parameter
    with pytest.raises(TypeError, match=name + r"\.step: parameter 1 has dtype int64"):
        opt.step()
    np.testing.assert_array_equal(p.data, [1.0, 2.0])  # nothing was updated


@pytest.mark.parametrize("kind", ["momentum", "adam"])
@pytest.mark.parametrize("flat", [True, False])
def test_item20_a_parameter_resized_under_its_state_gets_a_clear_error(kind, flat):
    w, b = _param(np.ones(3)), _param([0.0])
    opt = OPTIMIZERS[kind]([w, b], flat=flat)
    ((w * w).sum() + b.sum()).backward()
    opt.step()
    w.data = np.ones(5)
    w.grad = None
    ((w * w).sum() + b.sum()).backward()
    before = b.data.copy()
    state = "momentum_buffer" if kind == "momentum" else "exp_avg"
    with pytest.raises(fg.errors.ShapeError, match=r"parameter 0 has shape \(5,\).*"
                       + state + r".*shape \(3,\).*del opt\.state\[p\]"):
        opt.step()
    np.testing.assert_array_equal(b.data, before)
    del opt.state[w]
    opt.step()
    assert w.shape == (5,) and (w.data < 1).all()


def test_a_resized_parameter_without_state_just_works():
    w = _param(np.ones(3))
    opt = SGD([w], alpha=0.5)
    (w * w).sum().backward()
    opt.step()
    w.data = np.ones(5)
    w.grad = None
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.data, np.zeros(5))


# --------------------------------------------------------------------------- issue 12 item 3


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_issue12_passing_the_module_itself_says_to_pass_its_parameters(cls):
    model = fg.nn.Sequential([fg.nn.Linear(2, 2, rng=0)])
    with pytest.raises(TypeError, match=r"module Sequential itself.*model\.parameters\(\)"):
        cls(model)
    with pytest.raises(TypeError, match="single Tensor"):
        cls(_param([1.0]))
    with pytest.raises(TypeError, match="list of parameter Tensors"):
        cls(3)


# --------------------------------------------------------------------------- docstrings


@pytest.mark.parametrize("module", ["fungrad.optim", "fungrad.optim._flat",
                                    "fungrad.optim._state_dict", "fungrad.optim.rules",
                                    "fungrad.optim.loops", "fungrad.kernels.optim",
                                    "fungrad.kernels.optim_formulas"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_public_api_has_docstrings_and_hints():
    import inspect

    for obj in (fg.optim.Optimizer, SGD, Adam, clip_grad_norm, fg.optim.OptimizerState):
        assert inspect.getdoc(obj), obj
    for cls in (fg.optim.Optimizer, SGD, Adam):
        for name, member in vars(cls).items():
            if name.startswith("_") or not callable(member):
                continue
            assert inspect.getdoc(member), f"{cls.__name__}.{name}"
            assert "return" in inspect.get_annotations(member), f"{cls.__name__}.{name}"


# --------------------------------------------------------------------------- issue 13 item 3


def _chain(n=40, width=8, dtype=np.float32, seed=0):
    """deep_chain in small: x = tanh(x * w_i + b_i); the 2n parameters are small vectors."""
    rng = np.random.default_rng(seed)
    ws = [Tensor(rng.normal(1.0, 0.1, width).astype(dtype), autograd=True) for _ in range(n)]
    bs = [Tensor(rng.normal(0.0, 0.1, width).astype(dtype), autograd=True) for _ in range(n)]
    x0 = Tensor(rng.standard_normal(width).astype(dtype))

    def loss():
        x = x0
        for w, b in zip(ws, bs):
            x = fg.tanh(x * w + b)
        return (x * x).sum()

    return ws + bs, loss


def _run(kind, flat, steps=5, pattern="step", edit=None, n=40, width=8):
    params, loss = _chain(n, width)
    opt = OPTIMIZERS[kind](params, flat=flat)
    for i in range(steps):
        loss().backward()
        if edit is not None:
            edit(i, params, opt)
        if pattern == "step":
            opt.step()
        elif pattern == "zero_grad":
            opt.step(zero=False)
            opt.zero_grad()
        else:
            opt.step(zero=False)
            opt.zero()
    return params, opt


def _assert_same(ps, qs):
    for i, (p, q) in enumerate(zip(ps, qs)):
        np.testing.assert_array_equal(p.data, q.data, err_msg=f"parameter {i}")


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("pattern", ["step", "zero_grad", "zero"])
@pytest.mark.parametrize("width", [8, 64])  # 640 numbers (NumPy) and 5120 (the fused kernel)
def test_flat_buffers_give_bit_identical_results(kind, pattern, width):
    packed, opt = _run(kind, True, pattern=pattern, width=width)
    plain, _ = _run(kind, False, pattern=pattern, width=width)
    _assert_same(packed, plain)
    base = packed[0].data.base
    assert base is not None and all(p.data.base is base for p in packed)
    assert all(p.data.base is None for p in plain)  # flat=False leaves the arrays alone


def test_packed_gradients_are_views_and_backward_lands_in_them(monkeypatch):
    params, loss = _chain()
    opt = SGD(params, alpha=0.01, momentum=0.9)
    loss().backward()
    opt.step()
    grads = [p.grad for p in params]
    assert all(g.data.base is grads[0].data.base for g in grads)
    assert not any(g.data.any() for g in grads)  # zeroed in place
    calls = []
    original = fg.optim.Optimizer._prepare
    monkeypatch.setattr(fg.optim.Optimizer, "_prepare",
                        lambda self: calls.append(1) or original(self))
    for _ in range(3):
        loss().backward()
        assert all(p.grad is g for p, g in zip(params, grads))
        assert any(g.data.any() for g in grads)
        opt.step()
    assert calls == []  # every later step took the fast path


def test_import_fungrad_and_a_small_step_do_not_load_numba():
    code = ("import sys, numpy as np, fungrad as fg\n"
            "ps = [fg.Tensor(np.ones(64, np.float32), autograd=True) for _ in range(20)]\n"
            "opt = fg.optim.Adam(ps)\n"
            "sum((p * p).sum() for p in ps).backward(); opt.step()\n"
            "assert 'numba' not in sys.modules, 'a small model loaded numba'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_root())


def _replace_data(i, params, opt):
    if i == 2:
        params[3].data = params[3].data * 0.5  # a new array: the old slot is stale


def _drop_grad(i, params, opt):
    if i in (1, 2):
        params[5].grad = None  # skipped this step: no update, no state change
        params[9].grad = Tensor(params[9].grad.data.copy())  # a foreign gradient array


def _delete_param(i, params, opt):
    if i == 2:
        del opt.parameters[4]


def _load_model_state(i, params, opt):
    if i == 2:
        model = fg.nn.Module()
        model.parameters.extend(params)
        state = {k: v * 0.9 for k, v in model.state_dict().items()}
        model.load_state_dict(state)


def _reload_opt_state(i, params, opt):
    if i == 2:
        sd = opt.state_dict()
        opt.load_state_dict(sd)


def _replace_grad_data(i, params, opt):
    if i == 2:
        params[7].grad.data = params[7].grad.data * 2.0  # the grad Tensor's array replaced


def _grad_changed_in_place(i, params, opt):
    if i == 2:
        params[1].grad.data[...] *= 3.0  # in place: stays in the buffer


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("edit", [_replace_data, _drop_grad, _delete_param, _load_model_state,
                                  _reload_opt_state, _replace_grad_data,
                                  _grad_changed_in_place])
def test_breaking_the_layout_is_noticed(kind, edit):
    packed, opt = _run(kind, True, edit=edit)
    plain, _ = _run(kind, False, edit=edit)
    _assert_same(packed, plain)


def test_tied_and_borrowed_parameters_are_never_packed():
    shared = np.ones(3)
    a, b = _param([0.0, 0.0, 0.0]), _param([0.0, 0.0, 0.0])
    a.data = b.data = shared  # two parameters on one array (tied weights)
    buf = np.zeros(6)
    c = _param([0.0, 0.0, 0.0])
    c.data = buf[::2]  # a view of the caller's memory
    opt = SGD([a, b, c], alpha=0.5)
    for p in (a, b, c):
        _set_grad(p, [1.0, 1.0, 1.0])
    opt.step()
    assert a.data is b.data is shared and c.data.base is buf
    np.testing.assert_allclose(shared, [0.0, 0.0, 0.0])  # both updates reached the shared array
    np.testing.assert_allclose(buf, [-0.5, 0, -0.5, 0, -0.5, 0])


def test_a_read_only_parameter_is_not_packed_and_refused_at_step():
    a, b = _param([1.0]), _param([2.0])
    b.data.setflags(write=False)
    opt = SGD([a, b])
    _set_grad(a, [1.0])
    opt.step()
    assert not b.data.flags.writeable and b.data.base is None
    _set_grad(b, [1.0])
    with pytest.raises(ValueError, match="parameter 1 is read-only; nothing was updated"):
        opt.step()


def test_two_optimizers_over_the_same_parameters_stay_correct():
    params, loss = _chain(n=5)
    ref, ref_loss = _chain(n=5)
    first, second = SGD(params, alpha=0.1), SGD(params, alpha=0.1)
    ref_opt = SGD(ref, alpha=0.1, flat=False)
    for opt in (first, second, first, second):
        loss().backward()
        opt.step()
        ref_loss().backward()
        ref_opt.step()
    _assert_same(params, ref)


def test_adam_with_uneven_step_counts_matches_the_unpacked_run():
    def edit(i, params, opt):
        if i == 0:
            params[2].grad = None  # parameter 2 starts one step late

    packed, opt = _run("adam", True, edit=edit, width=64)
    plain, _ = _run("adam", False, edit=edit, width=64)
    _assert_same(packed, plain)
    assert opt.state[packed[2]]["step"] == 4 and opt.state[packed[0]]["step"] == 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_kernels_match_their_twins_bit_for_bit(dtype):
    from fungrad.kernels import optim as k

    rng = np.random.default_rng(7)
    n = 5000
    starts = np.array([0, 100, 2500, 4000], np.intp)
    ends = np.array([60, 2400, 2600, 5000], np.intp)
    p0 = rng.standard_normal(n).astype(dtype)
    g = (rng.standard_normal(n) * 1e3).astype(dtype)
    out = []
    for sgd, adam in ((k.sgd_segments, k.adam_segments),
                      (k.sgd_segments_numpy, k.adam_segments_numpy)):
        p, vel, m, v = p0.copy(), np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)
        for step in (1, 2, 3):
            sgd(p, g, starts, ends, 0.01, 0.9, vel)
            adam(p, g, m, v, starts, ends, [step, step + 1, 1, step], lr=0.01,
                 weight_decay=0.1)
        out.append((p, vel, m, v))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    untouched = np.ones(n, bool)
    for lo, hi in zip(starts, ends):
        untouched[lo:hi] = False
    np.testing.assert_array_equal(out[0][0][untouched], p0[untouched])


def test_flat_grads_exposes_the_gradient_buffer_for_in_place_reductions():
    def halve(i, params, opt):
        bufs = opt.flat_grads()
        assert len(bufs) == 1 and bufs[0].size == sum(p.size for p in params)
        bufs[0] *= 0.5  # e.g. an allreduce-mean over two processes

    def halve_each(i, params, opt):
        for p in params:
            p.grad.data[...] *= 0.5

    for pattern in ("step", "zero_grad"):
        packed, _ = _run("adam", True, edit=halve, pattern=pattern)
        plain, _ = _run("adam", False, edit=halve_each, pattern=pattern)
        _assert_same(packed, plain)
    params, loss = _chain(n=3)
    assert SGD(params, flat=False).flat_grads() is None
    opt = SGD(params)
    loss().backward()
    params[0].grad = None
    assert opt.flat_grads() is None  # one parameter has no gradient: no whole buffer


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_odd_shapes_and_mixed_dtypes_pack_like_they_update_alone(kind):
    def make():
        return [Tensor(np.array(1.5), autograd=True),  # 0-d
                Tensor(np.zeros((0, 3)), autograd=True),  # empty
                Tensor(np.asfortranarray(np.arange(6.0).reshape(2, 3)), autograd=True),
                Tensor(np.ones(5, np.float32), autograd=True)]

    results = []
    for flat in (True, False):
        ps = make()
        opt = OPTIMIZERS[kind](ps, flat=flat)
        for step in range(3):
            for p in ps:
                p.grad = Tensor(np.full(p.shape, 0.5 + step, p.dtype))
            opt.step()
        results.append(ps)
    _assert_same(*results)
    assert [p.dtype for p in results[0]] == [np.float64] * 3 + [np.float32]
    assert results[0][0].shape == () and results[0][1].shape == (0, 3)
