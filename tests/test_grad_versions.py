"""Version counters of a packed optimizer's gradients (``optim._flat.GradView``).

A packed layout's ``p.grad`` Tensors count their changes with one shared epoch that a step
bumps once, instead of one counter per Tensor. These tests hold the counters to what users
and the autodiff engine see: every in-place change of a gradient is a new version (a graph
recorded on the old values refuses to run), counts agree between eager and jitted steps,
and a gradient Tensor the layout no longer holds stops moving with it.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import FungradError
from fungrad.jit import jit
from fungrad.jit.optimizers import DEFER_MIN_PARAMS
from fungrad.optim import SGD, Adam
from fungrad.optim._flat import GradView

LAYERS = DEFER_MIN_PARAMS // 2 + 2  # a w and a b each: enough parameters for a deferred step


def _model(make_opt, layers=LAYERS, seed=0):
    rng = np.random.default_rng(seed)
    ws = [Tensor(rng.normal(1.0, 0.1, 4), autograd=True) for _ in range(layers)]
    bs = [Tensor(rng.normal(0.0, 0.1, 4), autograd=True) for _ in range(layers)]
    x0 = rng.standard_normal(4)
    opt = make_opt(ws + bs)

    def loss():
        x = x0
        for w, b in zip(ws, bs):
            x = fg.tanh(x * w + b)
        return fg.sum(x)

    def step():
        value = loss()
        value.backward()
        opt.step()
        return value
    return ws + bs, opt, loss, step


def _versions(params):
    return ([p._version for p in params],
            [None if p.grad is None else p.grad._version for p in params])


@pytest.mark.parametrize("make_opt", [lambda ps: SGD(ps, alpha=0.05),
                                      lambda ps: Adam(ps, lr=0.01)], ids=["sgd", "adam"])
def test_counts_agree_between_eager_and_jitted_steps(make_opt):
    eager, jitted = _model(make_opt), _model(make_opt)
    f = jit(jitted[3])
    for _ in range(5):
        eager[3]()
        f()
        assert _versions(eager[0]) == _versions(jitted[0])
        for p, q in zip(eager[0], jitted[0]):
            np.testing.assert_allclose(p.data, q.data, rtol=1e-12)
    assert all(type(p.grad) is GradView for p in jitted[0])  # the layout's own Tensors


@pytest.mark.parametrize("jitted", [False, True])
def test_a_graph_recorded_on_a_gradient_refuses_after_a_step(jitted):
    params, opt, loss, step = _model(lambda ps: SGD(ps, alpha=0.05))
    run = jit(step) if jitted else step
    for _ in range(3):
        run()
    loss().backward()  # gradients in place, not yet stepped
    probe = Tensor(np.ones(4), autograd=True)
    stale = fg.sum(params[0].grad * probe)  # records the gradient's version
    run()  # backward accumulates, the step zeroes: both in place
    with pytest.raises(FungradError, match="in place|modified|version"):
        stale.backward()


def test_a_step_changes_every_gradient_version_once_per_change():
    params, opt, loss, step = _model(lambda ps: SGD(ps, alpha=0.05))
    step()
    step()  # packed from here on
    loss().backward()
    before = _versions(params)[1]
    opt.step()  # zeroes every gradient in place: one change each
    assert _versions(params)[1] == [v + 1 for v in before]
    opt.zero()  # zero() in place again: one more
    assert _versions(params)[1] == [v + 2 for v in before]
    params[3].grad._version += 5  # a write sets that Tensor's own count
    assert params[3].grad._version == before[3] + 7
    assert params[4].grad._version == before[4] + 2


def test_a_gradient_the_layout_lets_go_keeps_its_version():
    params, opt, loss, step = _model(lambda ps: SGD(ps, alpha=0.05))
    for _ in range(3):
        step()
    loss().backward()
    old = params[0].grad
    old.data = np.zeros(4)  # the user replaces the Tensor's array: the layout makes another
    opt.step()
    assert params[0].grad is not old and type(params[0].grad) is GradView
    kept, new = old._version, params[0].grad._version
    for _ in range(3):
        step()
    assert old._version == kept  # no longer the layout's: its steps do not count for it
    assert params[0].grad._version > new  # the new one's do


def test_pickle_and_copy_keep_the_count():
    params, opt, loss, step = _model(lambda ps: SGD(ps, alpha=0.05))
    for _ in range(3):
        step()
    loss().backward()
    g = params[0].grad
    copies = [pickle.loads(pickle.dumps(g)), copy.deepcopy(g)]
    for other in copies:
        assert other._version == g._version
        np.testing.assert_array_equal(other.data, g.data)
    opt.zero()  # the original's layout steps on; the copies are their own
    for other in copies:
        assert other._version == g._version - 1
