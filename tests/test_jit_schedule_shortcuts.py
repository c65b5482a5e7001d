"""The scheduler's shortcuts change nothing it makes: a group that knows, as its members join,
that ``_early_terminals`` would move none of them skips it; ``_sink`` and the fuser reuse the
live walk's reader table; ``_check_inplace`` reads that table instead of walking every
member. Each program below (the functional chain, the book's manual update, an optimizer's
step, an embedding's sparse SGD step, an in-place update that reads a transposed view) is
compiled with the shortcuts and without them, to the same instructions; and under fg.jit it
gives eager's numbers."""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.jit import jit
from fungrad.jit.compiled import compile_program
from fungrad.jit.passes import schedule as sched
from fungrad.nn import CrossEntropyLoss, Embedding, Linear, MSELoss, Sequential, Tanh
from fungrad.optim import SGD
from jit_programs import stacked_chain

RNG = np.random.default_rng(11)
X = RNG.standard_normal((4, 3))
Y = RNG.standard_normal((4, 3))


def functional_chain():
    """``x = tanh(x * w[i] + b[i])`` over stacked parameters, value_and_grad and SGD."""
    p, _, step = stacked_chain(RNG, 12, 8)

    def run(f, state):
        value, state["p"] = f(state["p"])
        return value

    return step, lambda: {"p": {k: v.copy() for k, v in p.items()}}, run


def manual_update():
    """The book's update by hand: ``w.data -= w.grad.data * 0.1``, ``w.grad.data *= 0``."""
    w0 = [RNG.random((3, 5)), RNG.random((5, 3))]

    def make():
        return {"w": [Tensor(w.copy(), autograd=True) for w in w0]}

    def step(state):
        w = state["w"]
        pred = Tensor(X).mm(w[0]).mm(w[1])
        loss = ((pred - Tensor(Y)) * (pred - Tensor(Y))).sum(0)
        loss.backward(Tensor(np.ones_like(loss.data)))
        for w_ in w:
            w_.data -= w_.grad.data * 0.1
            w_.grad.data *= 0
        return loss

    return step, make, None


def transposed_update():
    """An in-place update of a square parameter that reads its own transpose: it may not be
    stored over the array it reads across (a later tile would read overwritten elements)."""
    w0 = RNG.random((4, 4))

    def make():
        return {"w": Tensor(w0.copy(), autograd=True)}

    def step(state):
        w = state["w"]
        loss = (Tensor(X[:, :3]).mm(w[:3])).sum(0).sum(0)
        loss.backward()
        w.data -= (w.grad.data + w.data.T) * 0.01
        w.grad.data *= 0
        return loss

    return step, make, None


def optimizer_step():
    """A PyTorch-style training step: a Sequential MLP, MSELoss, SGD with momentum."""
    def make():
        rng = np.random.default_rng(0)
        model = Sequential([Linear(3, 6, rng=rng), Tanh(), Linear(6, 3, rng=rng)])
        return {"model": model, "opt": SGD(model.parameters(), alpha=0.05, momentum=0.9)}

    def step(state):
        loss = MSELoss().forward(state["model"].forward(Tensor(X)), Tensor(Y))
        loss.backward(Tensor(np.ones_like(loss.data)))
        state["opt"].step()
        return loss

    return step, make, None


def embedding_step():
    """An embedding's SGD step (a scatter of rows subtracted from the table in place)."""
    ids, y = np.array([1, 7, 7, 3]), np.array([0, 2, 1, 1])

    def make():
        emb, lin = Embedding(10, 4, rng=2), Linear(4, 3, rng=3)
        return {"emb": emb, "lin": lin, "opt": SGD(emb.parameters() + lin.parameters(),
                                                    alpha=0.5)}

    def step(state):
        loss = CrossEntropyLoss()(state["lin"](state["emb"](ids)), y)
        loss.backward()
        state["opt"].step()
        return loss

    return step, make, None


PROGRAMS = [functional_chain, manual_update, transposed_update, optimizer_step, embedding_step]


def _jitted(step, run, state):
    if run is None:
        return jit(lambda: step(state)), lambda f: f()
    return jit(step), lambda f: run(f, state)


def _code(program) -> tuple:
    step, make, run = program()
    state = make()
    if run is None:
        step(state)  # (eagerly first: an optimizer lays out its state in its first step)
        prog = jit(lambda: step(state)).lower()
    else:
        prog = jit(step).lower(state["p"])
    plan = compile_program(prog).plan
    return list(plan.code), [b.size for b in plan.buffers]


def _without_shortcuts(m: pytest.MonkeyPatch) -> None:
    """Every group runs _early_terminals, _sink counts its readings itself and the fuser makes
    its own reader table (what the scheduler did before the shortcuts)."""
    init = sched.Fusion.__init__

    def fusion_init(self, *a, **k):
        init(self, *a, **k)
        self.movable.add(-1)  # (no Var's id: never discarded, so every group asks)
    sink = sched._sink
    fuser_init = sched._Fuser.__init__
    m.setattr(sched.Fusion, "__init__", fusion_init)
    m.setattr(sched, "_sink", lambda nodes, inplace, roots, facts, readers=None:
              sink(nodes, inplace, roots, facts))
    m.setattr(sched._Fuser, "__init__", lambda self, low, facts, nodes, roots, consumers=None:
              fuser_init(self, low, facts, nodes, roots))


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda f: f.__name__)
def test_the_shortcuts_make_the_same_instructions(program, monkeypatch):
    fast = _code(program)
    with monkeypatch.context() as m:
        _without_shortcuts(m)
        slow = _code(program)
    assert fast == slow


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda f: f.__name__)
def test_the_programs_give_eagers_numbers(program):
    step, make, run = program()
    eager_state, jit_state = make(), make()
    jitted, call = _jitted(step, run, jit_state)
    for _ in range(4):
        if run is None:
            want, got = step(eager_state), call(jitted)
        else:
            want, got = run(step, eager_state), call(jitted)
        np.testing.assert_allclose(np.asarray(getattr(got, "data", got)),
                                   np.asarray(getattr(want, "data", want)), rtol=1e-12)
    leaves = [v for v in _arrays(eager_state)], [v for v in _arrays(jit_state)]
    assert len(leaves[0]) == len(leaves[1]) > 0
    for a, b in zip(*leaves):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


def _arrays(state) -> list:
    """Every parameter array of a program's state, in a fixed order."""
    out: list = []
    for key in sorted(state):
        v = state[key]
        if isinstance(v, dict):
            out.extend(v[k] for k in sorted(v))
        elif isinstance(v, list):
            out.extend(t.data for t in v)
        elif isinstance(v, Tensor):
            out.append(v.data)
        elif hasattr(v, "parameters") and not isinstance(v, SGD):
            out.extend(p.data for p in v.parameters())
    return out
