"""fg.jit with an optimizer step left to the optimizer (jit/optimizers.py ``DeferredStep``).

The book's object style with many small parameters — ``loss.backward(); opt.step()`` over a
model whose parameters the optimizer packs into flat buffers — compiles the forward and the
backward (the gradients accumulated in place into the flat ``.grad`` buffer) and runs the
optimizer's own step on commit. These tests hold it to eager's semantics: the parameters,
gradients, optimizer state and version counters after every call, retracing or staying
correct when the user rebinds a parameter, edits the optimizer, mixes eager and jitted steps,
reads what the step changed, or the program fails.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import FungradError
from fungrad.jit import jit
from fungrad.jit import compiled
from fungrad.jit.optimizers import DEFER_MIN_PARAMS, DeferredStep
from fungrad.optim import SGD, Adam

LAYERS = DEFER_MIN_PARAMS // 2 + 4  # a w and a b per layer: enough parameters to defer
WIDTH = 5


def _chain(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    ws = [Tensor(rng.normal(1.0, 0.1, WIDTH).astype(dtype), autograd=True)
          for _ in range(LAYERS)]
    bs = [Tensor(rng.normal(0.0, 0.1, WIDTH).astype(dtype), autograd=True)
          for _ in range(LAYERS)]
    x0 = Tensor(rng.standard_normal(WIDTH).astype(dtype))
    return ws, bs, x0


def _forward(ws, bs, x):
    for w, b in zip(ws, bs):
        x = fg.tanh(x * w + b)
    return x.sum()


def _model(make_opt, dtype=np.float64):
    ws, bs, x0 = _chain(dtype)
    opt = make_opt(ws + bs)

    def step():
        loss = _forward(ws, bs, x0)
        loss.backward()
        opt.step()
        return loss
    return ws + bs, opt, step


def _snapshot(params, opt):
    state = {k: np.array(v, copy=True) for k, v in opt.state_dict().items()}
    return ([p.data.copy() for p in params],
            [None if p.grad is None else p.grad.data.copy() for p in params],
            state,
            [p._version for p in params],
            [None if p.grad is None else p.grad._version for p in params])


def _assert_same(a, b, rtol=1e-12, versions=True):
    for x, y in zip(a[0], b[0]):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-14)
    for x, y in zip(a[1], b[1]):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-14)
    assert sorted(a[2]) == sorted(b[2])
    for k in a[2]:
        np.testing.assert_allclose(a[2][k], b[2][k], rtol=rtol, atol=1e-14)
    if versions:
        assert a[3] == b[3], "parameter versions differ from eager's"
        assert a[4] == b[4], "gradient versions differ from eager's"


@pytest.fixture(params=[True, False], ids=["checked", "unchecked"])
def checks(request, monkeypatch):
    """Both run modes: the test suite's checked one (inputs read through guarded copies) and
    the plain one, where the optimizer's claim replaces the per-input reads."""
    monkeypatch.setattr(compiled, "CHECKS", request.param)
    return request.param


OPTIMIZERS = {
    "sgd": lambda ps: SGD(ps, alpha=0.1),
    "sgd_momentum": lambda ps: SGD(ps, alpha=0.05, momentum=0.9),
    "adam": lambda ps: Adam(ps, lr=0.01),
    "adam_decay": lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
}


def _deferred(jitted) -> bool:
    variants = [v for vs in jitted._cache.values() for v in vs if v.program is not None]
    return bool(variants) and all(
        any(isinstance(e.target, DeferredStep) for e in v.program.effects) for v in variants)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_deferred_step_equals_eager(name, checks):
    params_e, opt_e, eager = _model(OPTIMIZERS[name])
    params_j, opt_j, step = _model(OPTIMIZERS[name])
    jitted = jit(step)
    for _ in range(5):
        le, lj = eager(), jitted()
        np.testing.assert_allclose(lj.data, le.data, rtol=1e-12)
        _assert_same(_snapshot(params_j, opt_j), _snapshot(params_e, opt_e))
    assert _deferred(jitted)
    # the program holds no update of its own: the parameters are not written by it
    program = next(v.program for vs in jitted._cache.values() for v in vs)
    assert not [e for e in program.effects if e.kind == "data" and e.target.kind == "data"]
    assert jitted.cache_info().misses == 2  # the eager first step, then one trace
    if not checks:  # the optimizer's claim stood in for reading the parameters one by one
        exe = next(v.run for vs in jitted._cache.values() for v in vs)
        assert exe._pool and exe._pool[0].covered_by is opt_j._layout
        assert len(exe._pool[0].uncovered) < len(exe._fast)


def test_float32_chain_is_eager_to_float32_rounding(checks):
    params_e, opt_e, eager = _model(OPTIMIZERS["adam"], np.float32)
    params_j, opt_j, step = _model(OPTIMIZERS["adam"], np.float32)
    jitted = jit(step)
    for _ in range(4):
        eager(), jitted()
    _assert_same(_snapshot(params_j, opt_j), _snapshot(params_e, opt_e), rtol=2e-5)


def test_hyperparameters_and_state_edits_take_effect_without_retracing(checks):
    params_e, opt_e, eager = _model(OPTIMIZERS["sgd_momentum"])
    params_j, opt_j, step = _model(OPTIMIZERS["sgd_momentum"])
    jitted = jit(step)
    for k in range(6):
        if k == 2:
            opt_e.lr = opt_j.lr = 0.2
        if k == 3:
            opt_e.momentum = opt_j.momentum = 0.5
        if k == 4:  # a parameter's state started afresh
            del opt_e.state[params_e[3]]
            del opt_j.state[params_j[3]]
        eager(), jitted()
        _assert_same(_snapshot(params_j, opt_j), _snapshot(params_e, opt_e))
    assert jitted.cache_info().misses == 2


@pytest.mark.parametrize("edit", ["rebind_data", "assign_in_place", "grad_none",
                                  "grad_replaced", "list_append", "list_delete",
                                  "closure_replaced", "eager_step_between"])
def test_touching_the_model_outside_the_jit_stays_eager(edit, checks):
    # whatever the user does between calls, the next jitted call gives eager's numbers
    # (retracing where the program no longer fits)
    models = []
    for _ in range(2):
        ws, bs, x0 = _chain()
        opt = SGD(ws + bs, alpha=0.1, momentum=0.5)
        models.append((ws, bs, x0, opt))

    def make(ws, bs, x0, opt):
        def step():
            loss = _forward(ws, bs, x0)
            loss.backward()
            opt.step()
            return loss
        return step

    eager, jitted = make(*models[0]), jit(make(*models[1]))
    rng = np.random.default_rng(5)
    for k in range(6):
        if k == 3:
            value = rng.normal(1.0, 0.1, WIDTH)
            extra = rng.normal(0.0, 0.1, WIDTH)
            for ws, bs, x0, opt in models:
                if edit == "rebind_data":
                    ws[2].data = value.copy()
                elif edit == "assign_in_place":
                    ws[2].data[...] = value
                    ws[2].bump_version()
                elif edit == "grad_none":
                    bs[4].grad = None
                elif edit == "grad_replaced":
                    bs[4].grad = Tensor(np.ones(WIDTH))
                elif edit == "list_append":
                    opt.parameters.append(Tensor(extra.copy(), autograd=True))
                elif edit == "list_delete":
                    del opt.parameters[7]
                elif edit == "closure_replaced":
                    ws[5] = Tensor(value.copy(), autograd=True)
                    opt.parameters[5] = ws[5]
                elif edit == "eager_step_between":
                    make(ws, bs, x0, opt)()
        le, lj = eager(), jitted()
        np.testing.assert_allclose(lj.data, le.data, rtol=1e-12)
        pe = models[0][3].parameters
        pj = models[1][3].parameters
        for a, b in zip(pe, pj):
            np.testing.assert_allclose(b.data, a.data, rtol=1e-12, atol=1e-14)
            assert a._version == b._version
            assert (a.grad is None) == (b.grad is None)
            if a.grad is not None:
                np.testing.assert_allclose(b.grad.data, a.grad.data, atol=1e-14)
                assert a.grad._version == b.grad._version


def test_reading_what_the_step_changed_traces_the_step_into_the_program(checks):
    # the function returns values computed after the step: they must be the updated ones
    params_e, opt_e, _ = _model(OPTIMIZERS["adam"])
    params_j, opt_j, _ = _model(OPTIMIZERS["adam"])

    def make(params, opt):
        ws, bs = params[:LAYERS], params[LAYERS:]
        x0 = Tensor(np.linspace(-1, 1, WIDTH))

        def step():
            loss = _forward(ws, bs, x0)
            loss.backward()
            opt.step()
            after = fg.sum(ws[0] * ws[0])  # reads an updated parameter
            return loss, after
        return step

    eager, jitted = make(params_e, opt_e), jit(make(params_j, opt_j))
    for _ in range(4):
        (le, ae), (lj, aj) = eager(), jitted()
        np.testing.assert_allclose(aj.data, ae.data, rtol=1e-12)
        # (a step traced into the program bumps a gradient's version once per call where
        # eager bumps it twice — accumulated, then zeroed: both change it)
        _assert_same(_snapshot(params_j, opt_j), _snapshot(params_e, opt_e), versions=False)
    assert not _deferred(jitted)


def test_a_second_backward_after_the_step_sees_the_update(checks):
    params_e, opt_e, _ = _model(OPTIMIZERS["sgd"])
    params_j, opt_j, _ = _model(OPTIMIZERS["sgd"])

    def make(params, opt):
        ws, bs = params[:LAYERS], params[LAYERS:]
        x0 = Tensor(np.linspace(-1, 1, WIDTH))

        def step():
            _forward(ws, bs, x0).backward()
            opt.step()
            _forward(ws, bs, x0).backward()  # into the zeroed gradients, at the new values
            opt.step(zero=False)
        return step

    eager, jitted = make(params_e, opt_e), jit(make(params_j, opt_j))
    for _ in range(4):
        eager(), jitted()
        # two steps: traced into the program, which bumps each version once per call
        _assert_same(_snapshot(params_j, opt_j), _snapshot(params_e, opt_e), versions=False)
    assert not _deferred(jitted)


def test_step_without_zeroing_keeps_the_gradients(checks):
    params_e, opt_e, _ = _model(OPTIMIZERS["sgd_momentum"])
    params_j, opt_j, _ = _model(OPTIMIZERS["sgd_momentum"])

    def make(params, opt):
        ws, bs = params[:LAYERS], params[LAYERS:]
        x0 = Tensor(np.linspace(-1, 1, WIDTH))

        def step():
            loss = _forward(ws, bs, x0)
            loss.backward()
            opt.step(zero=False)
            return loss
        return step

    eager, jitted = make(params_e, opt_e), jit(make(params_j, opt_j))
    for _ in range(4):
        eager(), jitted()
        _assert_same(_snapshot(params_j, opt_j), _snapshot(params_e, opt_e))
    assert _deferred(jitted)


def test_a_failing_program_changes_nothing(checks):
    # an index out of range fails the program after the optimizer's claim: the versions it
    # bumped are taken back, and nothing else changed
    ws, bs, x0 = _chain()
    table = Tensor(np.random.default_rng(1).normal(size=(4, WIDTH)), autograd=True)
    opt = SGD(ws + bs + [table], alpha=0.1)

    @jit
    def step(i):
        loss = _forward(ws, bs, x0 + table[i])
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):
        step(np.int64(1))
    assert _deferred(step)
    before = _snapshot(ws + bs + [table], opt)
    with pytest.raises((FungradError, IndexError)):
        step(np.int64(9))
    _assert_same(_snapshot(ws + bs + [table], opt), before, rtol=0)


def test_a_graph_recorded_before_a_jitted_step_refuses_backward(checks):
    # a parameter saved by an eager forward, then updated by a jitted step: backward through
    # the old graph raises, as it does after an eager step
    params, opt, step = _model(OPTIMIZERS["sgd"])
    jitted = jit(step)
    for _ in range(3):
        jitted()
    ws, bs = params[:LAYERS], params[LAYERS:]
    old = _forward(ws, bs, Tensor(np.ones(WIDTH)))
    jitted()
    with pytest.raises(Exception, match="modified|version|in place|in-place"):
        old.backward()


def test_mixing_eager_and_jitted_steps(checks):
    params_e, opt_e, eager = _model(OPTIMIZERS["adam"])
    params_j, opt_j, step = _model(OPTIMIZERS["adam"])
    jitted = jit(step)
    for k in range(8):
        eager()
        (step if k % 3 == 1 else jitted)()
        _assert_same(_snapshot(params_j, opt_j), _snapshot(params_e, opt_e))


@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_adam_traced_into_the_program_equals_eager_as_step_counts_part(decay, checks):
    # few parameters: the program updates them itself, with Adam's bias-corrected scalars
    # computed as the eager step computes them — shared while every parameter has taken as
    # many steps (guarded), per parameter once one starts afresh
    def build():
        rng = np.random.default_rng(3)
        w1 = Tensor(rng.standard_normal((6, 5)), autograd=True)
        b1 = Tensor(np.zeros(5), autograd=True)
        w2 = Tensor(rng.standard_normal((5, 3)), autograd=True)
        x = rng.standard_normal((4, 6))
        y = np.array([0, 2, 1, 1])
        opt = Adam([w1, b1, w2], lr=0.01, weight_decay=decay)

        def step():
            loss = fg.cross_entropy(fg.tanh(fg.affine(x, w1, b1)) @ w2, y)
            loss.backward()
            opt.step()
            return loss
        return [w1, b1, w2], opt, step

    params_e, opt_e, eager = build()
    params_j, opt_j, step = build()
    jitted = jit(step)
    for k in range(7):
        if k == 3:
            del opt_e.state[params_e[1]]
            del opt_j.state[params_j[1]]
        if k == 5:
            opt_e.lr = opt_j.lr = 0.002
        le, lj = eager(), jitted()
        np.testing.assert_allclose(lj.data, le.data, rtol=1e-12)
        _assert_same(_snapshot(params_j, opt_j), _snapshot(params_e, opt_e), rtol=1e-10,
                     versions=False)
    assert not _deferred(jitted)
    programs = [v.program for vs in jitted._cache.values() for v in vs]
    assert len(programs) == 2  # shared scalars, then per-parameter counts


def test_adam_bias_scalars_are_eagers_bit_for_bit():
    # the shared scalars come from adam_scalars, the function the eager step uses
    from fungrad.jit.optimizers import _BiasScalar, _UniformSteps
    from fungrad.kernels.optim_formulas import adam_scalars

    w = Tensor(np.ones(3, np.float32), autograd=True)
    opt = Adam([w], lr=0.003, betas=(0.85, 0.995))
    (w * w).sum().backward()
    opt.step()
    counts = _UniformSteps(opt, [w])
    size = _BiasScalar(opt, counts, np.dtype(np.float32), 0)()
    bc2 = _BiasScalar(opt, counts, np.dtype(np.float32), 1)()
    want = adam_scalars(2, 0.003, 0.85, 0.995, np.float32)
    assert size.dtype == bc2.dtype == np.float32
    assert (size[()], bc2[()]) == want


def test_the_container_guard_sees_every_replacement():
    from fungrad.jit.tracer import _Holds

    a, b, c = (Tensor(np.zeros(2)) for _ in range(3))
    items = [a, b, c]
    prefix = _Holds(items, (0, 1), (a, b))
    assert prefix.prefix and prefix()
    items[1] = c
    assert not prefix()
    items[1] = b
    del items[1:]
    assert not prefix()  # shorter than what the program was traced with
    items[:] = [c, a, b]
    some = _Holds(items, (1, 2), (a, b))
    assert not some.prefix and some()
    items[2] = a
    assert not some()
    one = _Holds({"w": a}, ("w",), (a,))
    assert one() and not _Holds({"w": b}, ("w",), (a,))() and not _Holds({}, ("w",), (a,))()


@pytest.mark.parametrize("idiom", ["torch", "book"])
def test_a_deep_module_stack_in_the_users_idioms(idiom, checks):
    # a 40-layer Sequential of small Linear layers (80 parameters), written as a PyTorch user
    # writes the loop (zero_grad, backward, step) and as the book does (backward, step)
    from fungrad.nn import Linear, Sequential, Tanh

    def build():
        layers = []
        for i in range(40):
            layers += [Linear(3, 3, rng=i), Tanh()]
        model = Sequential(layers)
        opt = SGD(model.parameters(), alpha=0.05, momentum=0.9)
        x = np.random.default_rng(7).standard_normal((4, 3))

        def step():
            if idiom == "torch":
                opt.zero_grad()
            loss = fg.sum(model(Tensor(x)) ** 2)
            loss.backward()
            opt.step()
            return loss
        return model, opt, step

    model_e, opt_e, eager = build()
    model_j, opt_j, step = build()
    jitted = jit(step)
    for _ in range(5):
        np.testing.assert_allclose(jitted().data, eager().data, rtol=1e-12)
        _assert_same(_snapshot(model_j.parameters(), opt_j),
                     _snapshot(model_e.parameters(), opt_e))
    assert _deferred(jitted)
