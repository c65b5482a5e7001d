"""A scan's VJP under fg.jit reads what its forward loop computed (fungrad/jit/residuals.py),
and a saved carry lives in the rows it is saved in (fungrad/jit/passes/loops.py, row carries).

Checked against unrolled Python loops and eager: values and gradients (forward and reverse
scans, float32 and float64, pytrees, zero steps), second order, a VJP called twice, nested
scans, and fg.checkpoint inside a body (whose recomputed values must not be kept). And that the rewrite happened where it should: the
backward body of ``tanh(x * w + b)`` no longer computes ``tanh``, the forward loop copies no
carry, and the program's size still does not depend on the trip count.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad.jit.backend import isa
from fungrad.jit.loops import LoopStep

RNG = np.random.default_rng(3)


def chain_scan(q, x0, reverse=False):
    x, _ = fg.scan(lambda x, wb: (fg.tanh(x * wb[0] + wb[1]), None), x0, (q["w"], q["b"]),
                   reverse=reverse)
    return fg.sum(x * x)


def chain_unrolled(q, x0, reverse=False):
    x = x0
    order = range(len(q["w"]) - 1, -1, -1) if reverse else range(len(q["w"]))
    for i in order:
        x = fg.tanh(x * q["w"][i] + q["b"][i])
    return fg.sum(x * x)


def params(steps, width=5, dtype=np.float64):
    return ({"w": RNG.normal(1.0, 0.3, (steps, width)).astype(dtype),
             "b": RNG.normal(0.0, 0.3, (steps, width)).astype(dtype)},
            RNG.standard_normal(width).astype(dtype))


def close(a, b, tol):
    la, lb = fg.tree.flatten(a)[0], fg.tree.flatten(b)[0]
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def program_of(jitted):
    return next(iter(jitted._cache.values()))[0]


def loops(jitted) -> list:
    return [s for s in program_of(jitted).program.steps if isinstance(s.fn, LoopStep)]


def body_ops(step) -> list[str]:
    return [s.name for s in step.fn.spec.steps]


def rowcopies(jitted) -> int:
    plan = program_of(jitted).run.plan
    slot = {s: k for k, s in plan.kernels.items()}
    pc = n = 0
    while pc < len(plan.code):
        if plan.code[pc] == isa.BLOCK and slot[plan.code[pc + isa.BLOCK_SLOT]][0] == "rowcopy":
            n += 1
        pc += plan.code[pc + 1]
    return n


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_chain_gradient_matches_the_unrolled_loop(reverse, dtype, tol):
    q, x0 = params(7, dtype=dtype)
    grad = fg.value_and_grad(lambda q: chain_scan(q, x0, reverse))
    jitted = fg.jit(grad)
    want = fg.value_and_grad(lambda q: chain_unrolled(q, x0, reverse))(q)
    for _ in range(2):  # traced, then the cached program
        got = jitted(q)
        close(got, want, tol)
        assert got[1]["w"].dtype == dtype
    close(grad(q), want, tol)  # (eager: no rewrite, the same answer)
    forward, backward = loops(jitted)
    assert "tanh" in body_ops(forward)
    assert "tanh" not in body_ops(backward)  # read from the forward loop's rows
    assert len(forward.fn.spec.y_out) == 1  # the residual
    assert rowcopies(jitted) == 0  # the forward's carry lives in rows, the backward's is stored in place


def test_sgd_step_with_donated_parameters_matches_eager():
    q, x0 = params(6)

    def update(q):
        value, g = fg.value_and_grad(lambda q: chain_scan(q, x0))(q)
        return value, {k: q[k] - 0.1 * g[k] for k in q}

    want = update(q)
    jitted = fg.jit(update, donate_argnums=0)
    got = jitted({k: v.copy() for k, v in q.items()})
    close(got, want, 1e-12)
    p = {k: v.copy() for k, v in q.items()}
    p_eager = {k: v.copy() for k, v in q.items()}
    for _ in range(3):
        p = jitted(p)[1]
        p_eager = update(p_eager)[1]
    close(p, p_eager, 1e-12)


def test_zero_steps_and_one_step():
    for steps in (0, 1):
        q, x0 = params(steps)
        f = fg.grad(lambda q, x0: chain_scan(q, x0), argnums=(0, 1))
        close(fg.jit(f)(q, x0), fg.grad(lambda q, x0: chain_unrolled(q, x0),
                                       argnums=(0, 1))(q, x0), 1e-12)


def test_second_order():
    q, x0 = params(4, width=3)

    def loss(w):
        return chain_scan({"w": w, "b": q["b"]}, x0)

    def unrolled(w):
        return chain_unrolled({"w": w, "b": q["b"]}, x0)

    close(fg.jit(fg.hessian(loss))(q["w"]), fg.hessian(unrolled)(q["w"]), 1e-10)
    gg = fg.grad(lambda w: fg.sum(fg.grad(loss)(w) ** 2))
    close(fg.jit(gg)(q["w"]), fg.grad(lambda w: fg.sum(fg.grad(unrolled)(w) ** 2))(q["w"]),
          1e-10)


def test_pytree_carry_with_an_integer_counter_and_ys():
    """Carries of several kinds (a row carry, an integer counter, one that only adds), and a
    y that is a residual too."""
    w, xs = RNG.normal(1.0, 0.3, 4), RNG.standard_normal((6, 4))

    def f(w, xs):
        def body(c, x):
            h = fg.tanh(c["h"] * w + x)
            return {"h": h, "n": c["n"] + 1, "s": c["s"] + fg.sum(fg.exp(h))}, fg.exp(h) * x
        c, ys = fg.scan(body, {"h": np.zeros(4), "n": 0, "s": 0.0}, xs)
        return fg.sum(c["h"]) + c["s"] * c["n"] + fg.sum(ys * ys)

    def unrolled(w, xs):
        h, n, s, total = np.zeros(4), 0, 0.0, 0.0
        for x in xs:
            h = fg.tanh(h * w + x)
            n, s = n + 1, s + fg.sum(fg.exp(h))
            total = total + fg.sum((fg.exp(h) * x) ** 2)
        return fg.sum(h) + s * n + total

    g = fg.grad(f, argnums=(0, 1))
    close(fg.jit(g)(w, xs), fg.grad(unrolled, argnums=(0, 1))(w, xs), 1e-11)
    close(fg.jit(f)(w, xs), unrolled(w, xs), 1e-12)


def test_a_vjp_called_twice():
    """Two backward loops read the same forward loop's rows."""
    q, x0 = params(5, width=3)

    def f(w):
        x, _ = fg.scan(lambda x, wb: (fg.tanh(x * wb[0] + wb[1]), None), x0, (w, q["b"]))
        return x

    def twice(w):
        out, back = fg.vjp(f, w)
        return back(out)[0] + back(out * 2.0)[0]

    jitted = fg.jit(twice)
    close(jitted(q["w"]), twice(q["w"]), 1e-12)
    forward, *backward = loops(jitted)
    assert len(backward) == 2 and all("tanh" not in body_ops(b) for b in backward)
    assert len(forward.fn.spec.y_out) == 1  # one residual, read by both


def test_nested_scans():
    w, xs = RNG.normal(1.0, 0.3, 3), RNG.standard_normal((4, 2, 3))

    def f(w):
        def outer(h, x2):
            h2, _ = fg.scan(lambda g, x: (fg.tanh(g * w + x), None), h, x2)
            return fg.sin(h2) + h, None
        h, _ = fg.scan(outer, np.ones(3), xs)
        return fg.sum(h * h)

    def unrolled(w):
        h = np.ones(3)
        for x2 in xs:
            g = h
            for x in x2:
                g = fg.tanh(g * w + x)
            h = fg.sin(g) + h
        return fg.sum(h * h)

    close(fg.jit(fg.grad(f))(w), fg.grad(unrolled)(w), 1e-12)


def test_checkpoint_in_a_body_is_still_recomputed():
    """A checkpointed function in the body: its values are recomputed in the backward loop,
    not taken from the forward loop (which would keep a row of them per step)."""
    q, x0 = params(5, width=3)
    block = fg.checkpoint(lambda x, w, b: fg.tanh(fg.tanh(x * w + b) * w))

    def loss(q):
        x, _ = fg.scan(lambda x, wb: (block(x, wb[0], wb[1]), None), x0, (q["w"], q["b"]))
        return fg.sum(x)

    def unrolled(q):
        x = x0
        for w, b in zip(q["w"], q["b"]):
            x = fg.tanh(fg.tanh(x * w + b) * w)
        return fg.sum(x)

    jitted = fg.jit(fg.grad(loss))
    close(jitted(q), fg.grad(unrolled)(q), 1e-12)
    forward, backward = loops(jitted)
    assert forward.fn.spec.y_out == []  # no residuals
    assert body_ops(backward).count("tanh") >= 2


def test_program_size_does_not_depend_on_the_trip_count():
    sizes = []
    for steps in (3, 300):
        q, x0 = params(steps, width=4)
        jitted = fg.jit(fg.value_and_grad(lambda q: chain_scan(q, x0)))
        jitted(q)
        v = program_of(jitted)
        sizes.append((len(v.program.steps), len(v.run.plan.code)))
    assert sizes[0] == sizes[1], sizes
