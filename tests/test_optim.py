"""fungrad.optim: SGD (the book's and with momentum), Adam, clipping, validation, lazy Numba."""

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
