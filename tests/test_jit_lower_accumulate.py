"""Gradient sums of ``scatter_index`` terms accumulated while lowering
(``Lowering.add_scatter``): the instructions are exactly those the rewrite
(``rewrite.accumulate``) makes of the same program, the answers are eager's, and a link whose
values are read elsewhere, leave the program or are made in the wrong order is left to the
rewrite (which refuses it too, or folds it as before)."""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad.jit import jit
from fungrad.jit.compiled import compile_program
from fungrad.jit.passes.lower import lower
from fungrad.jit.passes.lowering import Lowering
from fungrad.primitives import scatter_index
from jit_programs import stacked_chain

RNG = np.random.default_rng(3)
G = [RNG.standard_normal(4) for _ in range(4)]
SHAPE = (3, 4)


def _s(g, i):
    return scatter_index(g, shape=SHAPE, index=i)


def chain(g0, g1, g2, g3):
    acc = _s(g0, 0) + _s(g1, 1)
    acc = acc + _s(g2, 2)
    return (acc + _s(g3, 0)) * 2.0


def chain_other_order(g0, g1, g2, g3):  # the running sum second, the term first
    acc = _s(g1, 1) + _s(g0, 0)
    return _s(g2, 2) + acc


def partial_sum_returned(g0, g1, g2, g3):
    acc = _s(g0, 0) + _s(g1, 1)
    return acc + _s(g2, 2), acc


def partial_sum_viewed(g0, g1, g2, g3):
    acc = _s(g0, 0) + _s(g1, 1)
    row = acc[1]
    return acc + _s(g2, 2), row * 3.0


def partial_sum_reshaped(g0, g1, g2, g3):
    acc = _s(g0, 0) + _s(g1, 1)
    flat = fg.reshape(acc, (12,))
    return fg.sum(acc + _s(g2, 2)) + fg.sum(flat)


def term_read_twice(g0, g1, g2, g3):
    t = _s(g1, 1)
    acc = _s(g0, 0) + t
    return acc + _s(g2, 2), t * 2.0


def term_returned(g0, g1, g2, g3):
    t = _s(g2, 2)
    acc = _s(g0, 0) + _s(g1, 1)
    return acc + t, t


def sum_made_after_term(g0, g1, g2, g3):  # the term's scatter runs before the sum is complete
    t = _s(g2, 2)
    acc = _s(g0, 0) + _s(g1, 1)
    return acc + t


def self_sum(g0, g1, g2, g3):
    s = _s(g0, 0)
    return s + s


def mixed_dtypes(g0, g1, g2, g3):
    return _s(g0.astype(np.float32), 0) + _s(g1, 1)


def sum_into_matmul_term(g0, g1, g2, g3):  # a chain continued by a matmul term (the rewrite's)
    acc = _s(g0, 0) + _s(g1, 1)
    m = fg.matmul(fg.reshape(g2[:3], (3, 1)), fg.reshape(g3, (1, 4)))
    return acc + m


PROGRAMS = [chain, chain_other_order, partial_sum_returned, partial_sum_viewed,
            partial_sum_reshaped, term_read_twice, term_returned, sum_made_after_term, self_sum,
            mixed_dtypes, sum_into_matmul_term]
#: links summed while lowering, per program (a partial sum read again, or leaving the
#: program, ends its chain there; a term read again or returned is not summed)
FOLDED = {"chain": 3, "chain_other_order": 2, "partial_sum_returned": 1,
          "partial_sum_viewed": 1, "partial_sum_reshaped": 1, "term_read_twice": 0,
          "term_returned": 1, "sum_made_after_term": 1, "self_sum": 0, "mixed_dtypes": 0,
          "sum_into_matmul_term": 1}


def _plan_code(program, monkeypatch, fold: bool):
    with monkeypatch.context() as m:
        if not fold:
            m.setattr(Lowering, "add_scatter", lambda self, a, b, out: False)
        exe = compile_program(program)
    return list(exe.plan.code), [b.size for b in exe.plan.buffers]


@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_sums_lowered_as_the_rewrite_makes_them(f, monkeypatch):
    jitted = jit(f)
    got = jitted(*G)
    want = f(*G)
    for a, b in zip(got if isinstance(got, tuple) else (got,),
                    want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-12)
    program = jitted.lower(*G)
    assert len(lower(program).folded) == FOLDED[f.__name__]
    assert _plan_code(program, monkeypatch, True) == _plan_code(program, monkeypatch, False)


def test_stacked_chain_gradient(monkeypatch):
    """The unrolled chain over stacked parameters: every link of both gradients summed while
    lowering; the plan is the rewrite's; values and gradients are eager's."""
    p, loss, step = stacked_chain(np.random.default_rng(0), 6, 5, lr=0.1)

    jitted = jit(step)
    (v1, new1), (v2, new2) = jitted(p), step(p)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    for k in p:
        np.testing.assert_allclose(new1[k], new2[k], rtol=1e-12, atol=1e-15)
    program = jitted.lower(p)
    assert len(lower(program).folded) == 2 * 5  # (6 terms per gradient: 5 links)
    assert _plan_code(program, monkeypatch, True) == _plan_code(program, monkeypatch, False)
    # the gradients themselves leaving the program: the sums' buffers are the outputs
    grad = jit(fg.grad(loss))
    got, want = grad(p), fg.grad(loss)(p)
    for k in p:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15)
    program = grad.lower(p)
    assert len(lower(program).folded) == 2 * 5
    assert _plan_code(program, monkeypatch, True) == _plan_code(program, monkeypatch, False)


def test_scan_body_sums_are_left_to_the_rewrite():
    """A loop body's values are not the program's: its links are never summed while
    lowering (their readers are the body's steps), and the loop still runs compiled."""
    w = RNG.standard_normal((3, 4))

    def f(w):
        def body(c, x):
            return c + _s(x, 1) + _s(x * 2.0, 2), None
        c, _ = fg.scan(body, np.zeros(SHAPE), w)
        return c

    np.testing.assert_allclose(jit(f)(w), f(w), rtol=1e-12)


def test_links_inside_a_loop_body_are_left_alone(monkeypatch):
    """Two scatters made outside a loop and added inside its body (read by the loop step
    only): the body's add is the loop's, not the program's — never summed while lowering
    (the rewrite does not reach into bodies either), and the answers are eager's."""
    w = RNG.standard_normal((5, 3, 4))

    def f(g0, g1, w):
        s0, s1 = _s(g0, 0), _s(g1, 1)

        def body(c, x):
            return c * 0.5 + (s0 + s1) * x, None
        c, _ = fg.scan(body, np.zeros(SHAPE), w)
        return c

    jitted = jit(f)
    np.testing.assert_allclose(jitted(G[0], G[1], w), f(G[0], G[1], w), rtol=1e-12)
    program = jitted.lower(G[0], G[1], w)
    assert len(lower(program).folded) == 0
    assert _plan_code(program, monkeypatch, True) == _plan_code(program, monkeypatch, False)
