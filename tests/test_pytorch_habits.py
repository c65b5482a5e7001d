"""What a PyTorch user types first: the names, the keywords, the optimizers and schedules.

The optimizers' and schedules' numbers are PyTorch's own, recorded by
``benchmarks/torch_reference.py`` (torch 2.13, run in the benchmark venv) into
``tests/data/torch_reference.json``; torch is not needed here.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import sys
import warnings

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor, nn
from fungrad.errors import NonScalarBackwardWarning
from fungrad.optim import lr_scheduler

fg_tensor = sys.modules["fungrad.tensor"]  # the module (fg.tensor is PyTorch's function)
fg_backprop = sys.modules["fungrad.backprop"]
REF = json.loads((pathlib.Path(__file__).parent / "data" / "torch_reference.json").read_text())


# -- Tensor methods -------------------------------------------------------------------------------


def test_tensor_methods_under_pytorch_names_match_numpy():
    a = np.arange(6.0).reshape(2, 3) - 2.0
    t = Tensor(a, autograd=True)
    np.testing.assert_array_equal(t.pow(2).data, a ** 2)
    assert t.float().dtype == np.float32 and t.float().double().dtype == np.float64
    assert t.view(3, 2).shape == (3, 2) and t.view(-1).shape == (6,)
    assert t.view((6, 1)).shape == (6, 1)
    assert t.dim() == 2 and t.numel() == 6
    assert t.size == 6 and t.size() == (2, 3) and t.size(0) == 2 and t.size(-1) == 3
    np.testing.assert_array_equal(t.clamp(min=-1.0, max=1.0).data, np.clip(a, -1, 1))
    np.testing.assert_array_equal(t.clamp(max=0.0).data, np.minimum(a, 0))
    np.testing.assert_array_equal(t.t().data, a.T)
    assert Tensor([1.0, 2.0]).t().shape == (2,)
    np.testing.assert_array_equal(t.sum(dim=1, keepdim=True).data, a.sum(1, keepdims=True))
    np.testing.assert_array_equal(t.mean(1, keepdim=True).data, a.mean(1, keepdims=True))
    for name in ("sum", "mean", "max", "min", "prod", "var", "std", "logsumexp"):
        assert getattr(t, name)(dim=0, keepdim=True).shape == (1, 3), name


def test_pytorch_named_methods_differentiate():
    x = Tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), autograd=True)
    (x.pow(3).clamp(min=-1.0).t().view(-1).double() * 2).sum(dim=0, keepdim=True).backward()
    want = np.where(x.data ** 3 >= -1.0, 6 * x.data ** 2, 0.0)
    np.testing.assert_allclose(x.grad.data, want)


def test_clone_permute_masked_fill_and_logic_as_pytorch():
    a = np.arange(24.0).reshape(2, 3, 4) - 7.0
    t = Tensor(a, autograd=True)
    c = t.clone()
    assert c is not t and c.data is not t.data and np.array_equal(c.data, a)
    np.testing.assert_array_equal(t.permute(2, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.permute((1, -1, 0)).data, a.transpose(1, 2, 0))
    np.testing.assert_array_equal(t.masked_fill(t < 0, -1.0).data, np.where(a < 0, -1.0, a))
    assert t.tolist() == a.tolist() and Tensor(2.5).tolist() == 2.5
    for name in ("all", "any"):
        np.testing.assert_array_equal(getattr(t, name)().data, getattr(a, name)())
        np.testing.assert_array_equal(getattr(t, name)(1, keepdim=True).data,
                                      getattr(a, name)(axis=1, keepdims=True))
        np.testing.assert_array_equal(getattr(t > 0, name)(dim=(0, 2)).data,
                                      getattr(a > 0, name)(axis=(0, 2)))
    assert t.contiguous() is t and t.cpu() is t and t.to("cpu") is t
    copied = t.to("cpu", copy=True)
    assert copied is not t and copied.data is not t.data and np.array_equal(copied.data, a)
    assert t.to(np.float32).dtype == np.float32 and t.to(dtype="float32").dtype == np.float32
    assert t.to("cpu", np.float32).dtype == np.float32
    assert t.to(Tensor(np.zeros(1, np.float32))).dtype == np.float32


def test_clone_permute_and_masked_fill_differentiate_and_jit():
    a = np.linspace(-1.0, 1.0, 6).reshape(2, 3)

    def f(x):
        y = x.clone().permute(1, 0) * x.t()
        return y.masked_fill(y > 0.2, 0.0).sum() + x.to(np.float32).double().sum()

    g = fg.grad(f)(Tensor(a))
    expected = np.where(a * a > 0.2, 0.0, 2 * a) + 1.0
    np.testing.assert_allclose(g, expected)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(Tensor(a)), expected)
    flags = fg.jit(lambda x: (x > 0).all(1).astype(np.float64) + x.any())
    np.testing.assert_array_equal(flags(np.array([[1.0, 2.0], [0.0, 3.0]])), [2.0, 1.0])
    np.testing.assert_array_equal(flags(np.array([[-1.0, 2.0], [1.0, 3.0]])), [1.0, 2.0])


def test_permute_to_and_tolist_refuse_clearly():
    t = Tensor(np.zeros((2, 3)))
    with pytest.raises(fg.errors.ShapeError, match=r"permute: .*2 axes.*\(2, 3\).*\(0, 0\)"):
        t.permute(0, 0)
    with pytest.raises(fg.errors.ShapeError, match="permute"):
        t.permute(0, 1, 2)
    with pytest.raises(TypeError, match="device 'cpu'.*'cuda'"):
        t.to("cuda")
    with pytest.raises(TypeError, match="two dtypes"):
        t.to(np.float32, dtype=np.float64)
    with pytest.raises(TypeError, match="unexpected keyword.*memory_format"):
        t.to(np.float32, memory_format=1)
    with pytest.raises(TypeError, match="keepdim"):
        t.all(keepdims=True, keepdim=False)
    with pytest.raises(Exception, match="tolist"):
        fg.grad(lambda x: x.tolist()[0])(Tensor([1.0]))


def test_size_stays_an_int_for_numpy_code():
    n = Tensor(np.zeros((4, 5))).size
    assert isinstance(n, int) and n == 20 and repr(n) == "20" and np.zeros(n).shape == (20,)
    assert type(pickle.loads(pickle.dumps(n))) is int
    with pytest.raises(IndexError, match=r"dimension 2 is out of range .* shape \(4, 5\)"):
        n(2)


def test_t_refuses_more_than_two_axes():
    with pytest.raises(fg.errors.ShapeError, match="at most 2 axes"):
        Tensor(np.zeros((2, 3, 4))).t()


def test_zero_and_requires_grad_in_place():
    w = Tensor(np.ones(3)).requires_grad_()
    assert w.requires_grad and w.requires_grad_(False) is w and not w.requires_grad
    w.requires_grad_(True)
    (w * w).sum().backward()
    g = w.grad
    assert g.zero_() is g
    np.testing.assert_array_equal(w.grad.data, 0.0)
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.data, 3.0)  # accumulated into the zeroed gradient


def test_zero_in_place_is_seen_by_a_graph_that_needs_the_old_values():
    w = Tensor(np.array([2.0]), autograd=True)
    y = w * w
    w.zero_()
    with pytest.raises(fg.errors.GraphError):
        y.backward()


# -- functions and keywords -----------------------------------------------------------------------


def test_fg_tensor_and_cat():
    t = fg.tensor([[1.0, 2.0]], requires_grad=True)
    assert isinstance(t, Tensor) and t.requires_grad and t.dtype == np.float64
    assert fg.tensor([1, 2], dtype=np.float32).dtype == np.float32
    out = fg.cat([t, t * 2], dim=1)
    assert out.shape == (1, 4)
    out.sum().backward()
    np.testing.assert_array_equal(t.grad.data, [[3.0, 3.0]])
    np.testing.assert_array_equal(fg.cat((np.ones(2), np.zeros(1))), [1.0, 1.0, 0.0])
    assert fg.cat([np.ones((1, 2))] * 3, axis=0).shape == (3, 2)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "var", "std",
                                  "logsumexp"])
def test_keepdim_is_accepted_wherever_keepdims_is(name):
    x = np.arange(1.0, 7.0).reshape(2, 3)
    want = getattr(fg, name)(x, axis=1, keepdims=True)
    np.testing.assert_allclose(getattr(fg, name)(x, axis=1, keepdim=True), want)
    np.testing.assert_allclose(getattr(Tensor(x), name)(1, keepdim=True).data, want)


def test_misspelled_keywords_name_the_keyword_meant():
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match=r"'keepdimz' \(did you mean keepdims=\?\)"):
        fg.sum(x, keepdimz=True)
    with pytest.raises(TypeError, match=r"'dim' \(did you mean axis=\?\)"):
        fg.sum(x, dim=1)
    with pytest.raises(TypeError, match=r"Tensor\.mean: .*'kepdim' \(did you mean keepdim"):
        Tensor(x).mean(kepdim=True)
    with pytest.raises(TypeError, match=r"SGD: .*'alhpa' \(did you mean alpha=\?\)"):
        fg.optim.SGD([], alhpa=0.1)
    with pytest.raises(TypeError, match=r"Adam: .*'alpha' \(did you mean lr=\?\)"):
        fg.optim.Adam([], alpha=0.1)
    with pytest.raises(TypeError, match=r"StepLR: .*'step' \(did you mean step_size=\?\)"):
        lr_scheduler.StepLR(fg.optim.SGD([]), step=3)


def test_a_type_error_inside_the_function_is_not_rewritten():
    with pytest.raises(TypeError, match="expected a list of parameter Tensors"):
        fg.optim.SGD(3.0, lr=0.1)


# -- nn -------------------------------------------------------------------------------------------


def test_parameter_is_a_leaf_tensor_a_module_lists():
    class Affine(nn.Module):
        def __init__(self):
            self.scale = nn.Parameter(np.ones(3))
            self.shift = nn.Parameter(np.zeros(3), requires_grad=False)

        def forward(self, x):
            return x * self.scale + self.shift

    m = Affine()
    assert isinstance(m.scale, Tensor) and isinstance(m.scale, nn.Parameter)
    assert [n for n, _ in m.named_parameters()] == ["scale"]
    m(np.full(3, 2.0)).sum().backward()
    np.testing.assert_array_equal(m.scale.grad.data, 2.0)
    assert sorted(m.state_dict()) == ["scale"]


def test_flatten_matches_torch_semantics():
    x = Tensor(np.arange(48.0).reshape(2, 3, 2, 4), autograd=True)
    assert nn.Flatten()(x).shape == (2, 24)
    assert nn.Flatten(0, 2)(x).shape == (12, 4)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 8)
    assert nn.Flatten(-3, -2)(x).shape == (2, 6, 4)
    nn.Flatten()(x).sum().backward()
    assert x.grad.shape == x.shape
    model = nn.Sequential(nn.Flatten(), nn.Linear(24, 2, rng=0))
    assert model(x).shape == (2, 2)
    with pytest.raises(fg.errors.ShapeError, match="Flatten"):
        nn.Flatten(2, 1)(x)


# -- backward of a non-scalar loss ----------------------------------------------------------------


def test_non_scalar_backward_keeps_the_books_meaning_and_warns_once(monkeypatch):
    monkeypatch.setattr(fg_backprop, "_warned_non_scalar", False)
    w = Tensor(np.ones((3, 2)), autograd=True)
    with pytest.warns(NonScalarBackwardWarning, match=r"shape \(3, 2\)") as record:
        (w * 2).backward()
        (w * 2).backward()
    assert len(record) == 1
    np.testing.assert_array_equal(w.grad.data, 4.0)  # the gradient of the sum, twice
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(fg_backprop, "_warned_non_scalar", False)
        (w.sum() * 1.0).backward()  # a scalar
        Tensor([3.0], autograd=True).backward()  # one element, as the book's losses
        (w * 2).backward(np.ones((3, 2)))  # an explicit seed


# -- optimizers against PyTorch's numbers ---------------------------------------------------------


def _run(cls_name, kwargs, dtype=np.float64, steps=None):
    p = Tensor(np.array(REF["p0"], dtype), autograd=True)
    c, d = np.array(REF["c"], dtype), np.array(REF["d"], dtype)
    kwargs = dict(kwargs)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    opt = getattr(fg.optim, cls_name)([p], **kwargs)
    out = []
    for _ in range(steps or REF["steps"]):
        opt.zero_grad()
        (c * p * p + d * p).sum().backward()
        opt.step()
        out.append(p.data.copy())
    return np.array(out), opt, p


@pytest.mark.parametrize("case", sorted(REF["optimizers"]))
def test_optimizers_take_pytorchs_steps(case):
    ref = REF["optimizers"][case]
    got, _, _ = _run(ref["class"], ref["kwargs"])
    np.testing.assert_allclose(got, np.array(ref["params"]), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", ["sgd_nesterov_wd", "rmsprop_centered", "adamw_custom"])
def test_optimizers_keep_float32(case):
    ref = REF["optimizers"][case]
    got, opt, p = _run(ref["class"], ref["kwargs"], np.float32)
    assert got.dtype == np.float32
    assert all(a.dtype == np.float32 for a in opt.state[p].values() if hasattr(a, "dtype"))
    np.testing.assert_allclose(got, np.array(ref["params"]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["sgd_momentum_wd", "rmsprop_momentum_wd", "adamw"])
def test_optimizer_state_dicts_resume_the_same_trajectory(case, tmp_path):
    ref = REF["optimizers"][case]
    _, opt, p = _run(ref["class"], ref["kwargs"], steps=5)
    path = tmp_path / "opt.npz"
    fg.save(path, opt.state_dict())
    q = Tensor(p.data.copy(), autograd=True)
    kwargs = dict(ref["kwargs"], lr=123.0)  # the checkpoint's rate wins
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    fresh = getattr(fg.optim, ref["class"])([q], **kwargs)
    fresh.load_state_dict(fg.load(path))
    assert fresh.lr == ref["kwargs"]["lr"]
    c, d = np.array(REF["c"]), np.array(REF["d"])
    for k in range(5, REF["steps"]):
        fresh.zero_grad()
        (c * q * q + d * q).sum().backward()
        fresh.step()
        np.testing.assert_allclose(q.data, ref["params"][k], rtol=1e-12, atol=1e-14)


def test_bad_optimizer_arguments_are_refused_clearly():
    w = Tensor(np.ones(2), autograd=True)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        fg.optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="and no dampening"):
        fg.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match="RMSprop: lr must be >= 0"):
        fg.optim.RMSprop([w], lr=-1.0)
    with pytest.raises(ValueError, match=r"AdamW: betas must be two numbers in \[0, 1\)"):
        fg.optim.AdamW([w], betas=(0.9, 1.5))
    opt = fg.optim.AdamW([w])
    w.grad = Tensor(np.ones(3))
    before = w.data.copy()
    with pytest.raises(ValueError, match="shape"):
        opt.step()
    np.testing.assert_array_equal(w.data, before)  # nothing was updated
    assert len(opt.state) == 0


def test_param_groups_read_and_set_the_hyperparameters():
    w = Tensor(np.ones(2), autograd=True)
    opt = fg.optim.AdamW([w], lr=0.1, betas=(0.8, 0.9))
    group = opt.param_groups[0]
    assert group["lr"] == 0.1 and group["betas"] == (0.8, 0.9) and group["params"][0] is w
    group["lr"] = 0.2
    assert opt.lr == 0.2
    with pytest.raises(KeyError, match="no hyperparameter 'momentum'"):
        group["momentum"] = 0.9


# -- learning-rate schedules against PyTorch's numbers --------------------------------------------


def _schedule(ref):
    kwargs = dict(ref["kwargs"])
    if kwargs.get("lr_lambda") == "inverse":
        kwargs["lr_lambda"] = lambda epoch: 1.0 / (1.0 + epoch)
    opt = fg.optim.SGD([Tensor(np.zeros(1), autograd=True)], lr=ref["lr"])
    return opt, getattr(lr_scheduler, ref["class"])(opt, **kwargs)


@pytest.mark.parametrize("case", sorted(REF["schedules"]))
def test_schedules_give_pytorchs_rates(case):
    ref = REF["schedules"][case]
    opt, sched = _schedule(ref)
    rates = [sched.get_last_lr()[0]]
    for _ in range(len(ref["rates"]) - 1):
        opt.step()
        sched.step()
        rates.append(sched.get_last_lr()[0])
        assert opt.lr == rates[-1]
    np.testing.assert_allclose(rates, ref["rates"], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("case", sorted(REF["schedules"]))
def test_schedule_state_dicts_resume(case):
    ref = REF["schedules"][case]
    opt, sched = _schedule(ref)
    for _ in range(3):
        opt.step()
        sched.step()
    state, opt_lr = sched.state_dict(), opt.lr
    assert "optimizer" not in state and "lr_lambda" not in state
    opt2, sched2 = _schedule(ref)
    sched2.load_state_dict(state)
    opt2.lr = opt_lr  # the optimizer's own state carries its rate
    for k in range(4, len(ref["rates"])):
        opt2.step()
        sched2.step()
        assert sched2.get_last_lr()[0] == pytest.approx(ref["rates"][k], rel=1e-13)


def test_scheduler_step_before_optimizer_step_warns():
    opt = fg.optim.SGD([Tensor(np.zeros(1), autograd=True)], lr=0.1)
    sched = lr_scheduler.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match=r"before optimizer\.step\(\)"):
        sched.step()


def test_scheduler_works_with_every_optimizer():
    for opt in (fg.optim.SGD([Tensor(np.ones(1), autograd=True)], alpha=1.0),
                fg.optim.Adam([Tensor(np.ones(1), autograd=True)], lr=1.0),
                fg.optim.RMSprop([Tensor(np.ones(1), autograd=True)], lr=1.0),
                fg.optim.AdamW([Tensor(np.ones(1), autograd=True)], lr=1.0)):
        sched = lr_scheduler.LambdaLR(opt, lambda e: 0.5 ** e)
        opt.step()
        sched.step()
        assert opt.lr == 0.5 == sched.get_last_lr()[0], type(opt).__name__


# -- fg.jit: the new optimizers' steps compile and match eager ------------------------------------


@pytest.mark.parametrize("cls, kwargs", [
    (fg.optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
    (fg.optim.RMSprop, dict(lr=0.02)),
    (fg.optim.AdamW, dict(lr=0.05)),
    (fg.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (fg.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
], ids=["rmsprop_full", "rmsprop", "adamw", "sgd_nesterov_wd", "sgd_dampening"])
def test_jit_of_a_step_matches_eager_with_a_schedule(cls, kwargs):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    runs = []
    for use_jit in (False, True):
        model = nn.Sequential([nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 1, rng=1)])
        opt = cls(model.parameters(), **kwargs)
        sched = lr_scheduler.CosineAnnealingLR(opt, T_max=6)

        def step(x, y, model=model, opt=opt):
            loss = nn.MSELoss(reduction="mean")(model(x), y)
            loss.backward()
            opt.step()
            return loss

        f = fg.jit(step) if use_jit else step
        losses = []
        for _ in range(8):
            losses.append(float(f(x, y).data))
            sched.step()  # a new rate each call: read at run time, no retrace
        if use_jit:
            assert f.cache_info().misses <= 2
        runs.append((losses, [p.data.copy() for p in model.parameters()], opt.state_dict()))
    (l0, p0, s0), (l1, p1, s1) = runs
    np.testing.assert_allclose(l1, l0, rtol=1e-12)
    for a, b in zip(p0, p1):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
    assert sorted(s0) == sorted(s1)
    for k in s0:
        np.testing.assert_allclose(s1[k], s0[k], rtol=1e-12, atol=1e-15)
