"""Loops under fg.jit: fg.scan, fori_loop and while_loop compiled as loops of the runner.

Each loop is one step of the traced program whose body is traced once
(fungrad/jit/loops.py) and compiled once (fungrad/jit/passes/loops.py). Checked here against
eager (which tests/test_loops.py checks against unrolled Python loops): values, gradients,
JVPs, second order, pytrees, ``reverse``, while_loop in reverse mode (and a trip count that
changes between calls), nested loops, closures over parameters (object style), donated
arguments, bodies generated from the registry's ops; that the program's size does not depend
on the trip count; the book's RNN and LSTM cells over a sequence; what is not compiled
(a warning naming the loop, eager's answer); and the verifier's checks of the loop's
instructions. pyproject.toml makes a JitFallbackWarning an error here: a test passes only if
its loops compile.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fungrad as fg
from fungrad.errors import JitFallbackWarning, JitInternalError, TracingError
from fungrad.jit.backend import isa
from fungrad.jit.passes.verify import verify
from smooth_ops import SMOOTH

RNG = np.random.default_rng(0)
W = RNG.standard_normal(3) * 0.6
M = RNG.standard_normal((3, 3)) * 0.5
XS = RNG.standard_normal((5, 3))
H0 = RNG.standard_normal(3)


def close(a, b, tol=1e-10):
    la, lb = fg.tree.flatten(a)[0], fg.tree.flatten(b)[0]
    assert len(la) == len(lb), (a, b)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(getattr(x, "data", x)),
                                   np.asarray(getattr(y, "data", y)), rtol=tol, atol=tol)


def variant(jitted):
    """The most recent compiled program of a jitted function."""
    return next(iter(jitted._cache.values()))[0]


def segments(jitted) -> list:
    """The compiled program's segments: "run" (runner code) or the name of a Python step."""
    return [s[0] if s[0] == "run" else s[1].step.name for s in variant(jitted).run.plan.segments]


def compiled_loops(jitted) -> bool:
    """Whether every loop of the program is compiled (no loop runs as a Python step; other
    ops without a compiled form, ``integer_pow`` say, may)."""
    return not {"scan", "fori_loop", "while_loop"} & set(segments(jitted))


def loop_steps(jitted) -> list:
    return [s for s in variant(jitted).program.steps if s.name in ("scan", "fori_loop",
                                                                 "while_loop")]


def same_as_eager(f, *args, calls=2, tol=1e-10):
    """``fg.jit(f)`` gives eager's answer (twice: traced, then the cached program) with every
    loop compiled."""
    jitted = fg.jit(f)
    for _ in range(calls):
        close(jitted(*args), f(*args), tol)
    assert compiled_loops(jitted), segments(jitted)
    return jitted


def rnn(w, xs, reverse=False, h0=H0):
    return fg.scan(lambda h, x: (fg.tanh(h * w + x), fg.sin(h) * x), h0, xs, reverse=reverse)


def rnn_loss(w, xs, reverse=False):
    h, ys = rnn(w, xs, reverse)
    return fg.sum(h * h) + fg.sum(ys * np.arange(1.0, 1.0 + len(xs))[:, None])


# -- scan: values and derivatives -----------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_values_gradients_and_jvp_match_eager(reverse):
    jitted = same_as_eager(lambda w, xs: rnn(w, xs, reverse), W, XS)
    assert len(loop_steps(jitted)) == 1
    same_as_eager(fg.grad(lambda w, xs: rnn_loss(w, xs, reverse), argnums=(0, 1)), W, XS)
    same_as_eager(fg.value_and_grad(lambda w: rnn_loss(w, XS, reverse)), W)
    same_as_eager(lambda w, t: fg.jvp(lambda w: rnn(w, XS, reverse), (w,), (t,)), W,
                  np.ones(3))


def test_second_order_through_a_compiled_loop():
    """grad of grad, and the Hessian: the loop's VJP (a scan over the transposed body) is
    compiled, and so is the VJP of that VJP."""
    same_as_eager(fg.hessian(lambda w: rnn_loss(w, XS)), W, tol=1e-9)
    same_as_eager(fg.grad(lambda w: fg.sum(fg.grad(lambda v: rnn_loss(v, XS))(w) ** 2)), W,
                  tol=1e-9)


def test_pytrees_of_carries_xs_and_ys():
    def f(w, xs):
        def body(c, x):
            h = fg.tanh(c["h"] * w + x["a"])
            return {"h": h, "s": c["s"] + fg.sum(x["b"] * h[0])}, (h, {"b2": x["b"] * 2})
        return fg.scan(body, {"h": H0, "s": 0.0}, {"a": xs, "b": xs[:, :2]})

    same_as_eager(f, W, XS)
    same_as_eager(fg.grad(lambda w, xs: fg.sum(f(w, xs)[0]["s"]) + fg.sum(f(w, xs)[1][0]),
                          argnums=(0, 1)), W, XS)


def test_carries_that_swap_pass_through_or_are_numbers():
    same_as_eager(lambda a, b: fg.scan(lambda c, x: ((c[1], c[0] + x), c[0]), (a, b), XS),
                  H0, W)
    same_as_eager(lambda a: fg.scan(lambda c, x: ((c[0], c[1] * 0.5 + x), 0.0), (a, a), XS), H0)
    same_as_eager(lambda x: fg.scan(lambda c, x: ((c[0] + 1, c[1] * x), c[0]), (0, 1.0), x),
                  XS[:, 0])


def test_length_zero_steps_and_no_xs():
    same_as_eager(lambda a, xs: fg.scan(lambda c, x: (c + x, c * 2), a, xs), H0,
                  np.zeros((0, 3)))
    same_as_eager(lambda a: fg.scan(lambda c, _: (c * 1.1, c), a, None, length=4), H0)


def test_float32_stays_float32():
    jitted = same_as_eager(fg.grad(lambda w: fg.sum(rnn(w, XS.astype(np.float32),
                                                        h0=H0.astype(np.float32))[0])),
                           W.astype(np.float32), tol=1e-5)
    assert jitted(W.astype(np.float32)).dtype == np.float32


# -- fori_loop and while_loop ----------------------------------------------------------------


def test_fori_loop():
    same_as_eager(lambda x: fg.fori_loop(0, 4, lambda i, v: v * 2 + i, x), np.array(1.0))
    same_as_eager(fg.grad(lambda x: fg.fori_loop(0, 3, lambda i, v: fg.sin(v) * x, x)), 0.5)


def test_fori_loop_with_a_bound_that_is_an_argument():
    """``fg.jit(lambda n, x: fori_loop(0, n, body, x))``, JAX's idiom: the bound is traced,
    so the loop is a while_loop over (i, val), compiled as a loop; one program serves every
    n, including none; its gradient (reverse mode, which JAX refuses here) and jvp match
    eager's; under vmap each example runs its own count."""
    def f(n, x):
        return fg.fori_loop(0, n, lambda i, v: v * 1.5 + fg.sin(v) * i, x)

    x = np.array([0.3, 0.7])
    jitted = fg.jit(f)
    for n in (3, 4, 0, 1, 3):
        close(jitted(n, x), f(n, x))
        close(fg.jit(fg.grad(lambda x, n: fg.sum(f(n, x))))(x, n),
              fg.grad(lambda x: fg.sum(f(n, x)))(x))
    assert compiled_loops(jitted) and sum(map(len, jitted._cache.values())) == 1
    close(fg.jvp(lambda x: jitted(3, x), (x,), (np.ones(2),))[1],
          fg.jvp(lambda x: f(3, x), (x,), (np.ones(2),))[1])
    close(fg.vmap(lambda n: f(n, x))(np.array([1, 2, 3])), np.stack([f(k, x) for k in (1, 2, 3)]))
    close(fg.jit(lambda lo, hi, x: fg.fori_loop(lo, hi, lambda i, v: v * 1.5 + i, x))(2, 5, x),
          fg.fori_loop(2, 5, lambda i, v: v * 1.5 + i, x))


def test_while_loop_forward_with_a_condition_on_values():
    """The condition is computed in the program each step and read by the loop's BREAK: the
    trip count differs between calls of one compiled program."""
    f = same_as_eager(lambda x: fg.while_loop(lambda v: fg.sum(v) < 10.0, lambda v: v * 2, x),
                      np.array([0.3, 0.4]))
    for x in (np.array([3.0, 4.0]), np.array([0.01, 0.02]), np.array([20.0, 0.0])):
        close(f(x), fg.while_loop(lambda v: fg.sum(v) < 10.0, lambda v: v * 2, x))
    assert len(f._cache) == 1 and sum(map(len, f._cache.values())) == 1  # never retraced
    same_as_eager(lambda x: fg.while_loop(lambda v: v[0] < 5, lambda v: (v[0] + 1, v[1] * 1.5),
                                          (0, x)), np.ones(2))


def test_while_loop_in_reverse_mode_retraces_for_another_trip_count():
    """Reverse mode through while_loop (JAX refuses it) works under fg.jit: the forward saves
    each step's carry; the program is specialised on the trip count it traced, and a call
    whose loop runs another number of steps traces again (never a wrong answer)."""
    def loss(x):
        return fg.sum(fg.while_loop(lambda v: fg.sum(v) < 10.0, lambda v: v * 2.0 + 0.1, x))

    jitted = fg.jit(fg.grad(loss))
    for x in (np.array([0.3, 0.4]), np.array([0.31, 0.4]), np.array([3.0, 4.0]),
              np.array([0.3, 0.4])):
        close(jitted(x), fg.grad(loss)(x))
    assert sum(map(len, jitted._cache.values())) >= 2  # another trip count: traced again


# -- nested loops, closures, objects, donation ---------------------------------------------


def nested(w, xs):
    def outer(h, x):
        inner, _ = fg.scan(lambda g, y: (fg.tanh(g * w + y), None), h, xs)
        return inner * x, fg.sum(inner)
    return fg.scan(outer, H0, xs)


def test_nested_loops():
    jitted = same_as_eager(nested, W, XS)
    assert len(loop_steps(jitted)) == 1  # the inner loop is inside the outer one's body
    same_as_eager(fg.grad(lambda w, xs: fg.sum(nested(w, xs)[1]), argnums=(0, 1)), W, XS)


def test_closure_over_traced_values_and_matrices():
    same_as_eager(lambda w, x: fg.scan(lambda c, xx: (c * w + xx, None), x, XS)[0], W, H0)
    same_as_eager(fg.grad(lambda m: fg.sum(fg.scan(lambda h, x: (fg.tanh(h @ m + x), h),
                                                   H0, XS)[1])), M)


def test_object_style_backward_and_sgd_over_a_scan():
    """Tensors a body reads through its closure are the loop's inputs: .backward() and an
    optimizer step under fg.jit update them as eagerly."""
    def make():
        w = fg.Tensor(M.copy(), autograd=True)
        b = fg.Tensor(W.copy(), autograd=True)
        opt = fg.optim.SGD([w, b], alpha=0.1)

        def step(xs):
            h, hs = fg.scan(lambda h, x: (fg.tanh(h @ w + x + b), h), fg.Tensor(H0), xs)
            loss = fg.sum(hs * hs) + fg.sum(h)
            loss.backward()
            opt.step()
            return loss
        return step, (w, b)

    eager, (we, be) = make()
    jit_step, (wj, bj) = make()
    jitted = fg.jit(jit_step)
    for _ in range(3):
        close(jitted(XS), eager(XS))
        close([wj, bj], [we, be])
    assert compiled_loops(jitted)


def test_donated_arguments():
    def update(p, xs):
        value, g = fg.value_and_grad(lambda q: fg.sum(fg.scan(
            lambda h, wb: (fg.tanh(h * wb[0] + wb[1]), None), H0, (q["w"], q["b"]))[0]))(p)
        return value, {k: p[k] - 0.1 * g[k] for k in p}

    p = {"w": RNG.standard_normal((6, 3)), "b": RNG.standard_normal((6, 3))}
    expect = update(p, None)
    jitted = fg.jit(update, donate_argnums=0)
    got = jitted({k: v.copy() for k, v in p.items()}, None)
    close(got, expect)
    assert compiled_loops(jitted)


@settings(max_examples=20, deadline=None)
@given(op1=st.sampled_from(SMOOTH), op2=st.sampled_from(SMOOTH), steps=st.integers(0, 4),
       size=st.integers(1, 3), reverse=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_generated_bodies_under_jit_match_eager(op1, op2, steps, size, reverse, seed):
    """Bodies made of registry ops drawn at random: the jitted loop (its values and its
    gradients with respect to the closure, init and xs) gives eager's answer — compiled, or
    a Python loop with a warning when an op has no compiled form."""
    f1, f2 = fg.ops()[op1], fg.ops()[op2]
    rng = np.random.default_rng(seed)
    w, h0 = rng.uniform(-1, 1, size), rng.uniform(-1, 1, size)
    xs = rng.uniform(-1, 1, (steps, size))

    def looped(w, h0, xs):
        h, ys = fg.scan(lambda h, x: (fg.tanh(f1(fg.tanh(h * w + x))),
                                      f2(fg.tanh(h * w + x))), h0, xs, reverse=reverse)
        return fg.sum(h) + fg.sum(ys * ys)

    grad = fg.grad(looped, argnums=(0, 1, 2))
    with warnings.catch_warnings(record=True) as caught:  # (an op without a compiled form)
        warnings.simplefilter("always")
        got = fg.jit(looped)(w, h0, xs), fg.jit(grad)(w, h0, xs)
    assert all(issubclass(c.category, JitFallbackWarning) for c in caught)
    close(got, (looped(w, h0, xs), grad(w, h0, xs)), 1e-9)


# -- program size and compile work independent of the trip count -----------------------------


@pytest.mark.parametrize("kind", ["scan", "fori_loop", "grad"])
def test_program_size_does_not_depend_on_the_trip_count(kind):
    """One step per loop and the same instruction count at 4 and 400 steps: the body is
    traced and compiled once (an observable, not a timing)."""
    def make(n):
        xs = np.linspace(-1, 1, 3 * n).reshape(n, 3)
        if kind == "scan":
            return lambda w: rnn(w, xs), (W,)
        if kind == "fori_loop":
            return lambda w: fg.fori_loop(0, n, lambda i, v: fg.tanh(v * w + i), H0), (W,)
        return fg.value_and_grad(lambda w: rnn_loss(w, xs)), (W,)

    sizes = []
    for n in (4, 400):
        f, args = make(n)
        jitted = same_as_eager(f, *args, calls=1, tol=1e-9)
        v = variant(jitted)
        sizes.append((len(v.program.steps), len(v.run.plan.code)))
    assert sizes[0] == sizes[1], sizes


# -- the book's cells over a sequence ------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_book_cells_run_over_a_sequence_with_scan_under_jit(kind):
    def make():
        cell = (fg.nn.RNNCell(4, 6, 3, activation="tanh", rng=0) if kind == "rnn" else
                fg.nn.LSTMCell(4, 6, 3, rng=0))
        opt = fg.optim.SGD(cell.parameters(), alpha=0.05)

        def step(xs):
            def body(hidden, x):
                out, hidden = cell(x, hidden)
                return hidden, out
            _, outs = fg.scan(body, cell.init_hidden(2), xs)
            loss = fg.sum(outs ** 2)
            loss.backward()
            opt.step()
            return loss
        return step, cell

    xs = np.random.default_rng(1).standard_normal((7, 2, 4))
    eager, cell_e = make()
    jit_step, cell_j = make()
    jitted = fg.jit(jit_step)
    for _ in range(3):
        close(jitted(xs), eager(xs), 1e-9)
    close([p.data for p in cell_j.parameters()], [p.data for p in cell_e.parameters()], 1e-9)
    assert compiled_loops(jitted) and len(loop_steps(jitted)) == 2  # forward, backward


# -- what is not compiled -----------------------------------------------------------------------


def test_a_body_op_without_a_compiled_form_runs_the_loop_in_python_with_a_warning():
    cube = fg.defop("cube_for_jit_loops", lambda x: x ** 3, lambda g, out, x: (3 * g * x * x,))

    def f(w):
        return fg.sum(fg.scan(lambda h, x: (fg.tanh(cube(h) * w + x), None), H0, XS)[0])

    jitted = fg.jit(fg.value_and_grad(f))
    with pytest.warns(JitFallbackWarning, match="scan is not compiled as a loop"):
        got = jitted(W)
    close(got, fg.value_and_grad(f)(W))
    close(jitted(W * 0.5), fg.value_and_grad(f)(W * 0.5))  # the program of Python loops


def test_a_body_that_assigns_a_tensor_is_refused():
    t = fg.Tensor(np.zeros(3))

    def f(x):
        def body(c, xx):
            t.data = c.data
            return c + xx, None
        return fg.scan(body, x, XS)[0]

    with pytest.raises(TracingError, match="body of scan assigns a Tensor"):
        fg.jit(f)(H0)


# -- the verifier checks the loop's instructions ---------------------------------------------


def _tampered(jitted, kind: int, field: str, delta: int):
    """The compiled plan with field ``field`` of the first ``kind`` control instruction
    moved by ``delta``."""
    v = variant(jitted)
    plan = copy.copy(v.run.plan)
    plan.code = list(plan.code)
    pc = 0
    layout = {isa.LOOP: isa.LOOP_HEAD, isa.ENDLOOP: isa.LOOP_END, isa.BREAK: isa.LOOP_BREAK,
              isa.WINDOW: isa.LOOP_WINDOW}
    while plan.code[pc] != kind:
        pc += plan.code[pc + 1]
    plan.code[pc + getattr(layout[kind], field)] += delta
    return v.run.low, plan


@pytest.mark.parametrize("kind, field, delta", [
    (isa.LOOP, "exit", -4), (isa.LOOP, "sidx", 1000), (isa.ENDLOOP, "back", 3),
    (isa.BREAK, "off", 5), (isa.BREAK, "exit", 7),
])
def test_the_verifier_refuses_a_broken_loop(kind, field, delta):
    jitted = fg.jit(lambda x: fg.while_loop(lambda v: fg.sum(v) < 10.0, lambda v: v * 2, x))
    jitted(np.array([0.3, 0.4]))
    verify(variant(jitted).run.low, variant(jitted).run.plan)  # as emitted: accepted
    with pytest.raises(JitInternalError):
        verify(*_tampered(jitted, kind, field, delta))


@pytest.mark.parametrize("field, delta", [("off", 1), ("step", 1), ("n", 1), ("isz", 4),
                                          ("win", -1)])
def test_the_verifier_refuses_a_broken_window(field, delta):
    """A body's x slices and y rows are windows onto rows of xs and ys: a window past its
    parent's rows, of another row size or element size, or onto a buffer that is not a
    window, is refused."""
    jitted = fg.jit(lambda w, xs: rnn(w, xs))
    jitted(W, XS)
    verify(variant(jitted).run.low, variant(jitted).run.plan)
    with pytest.raises(JitInternalError):
        verify(*_tampered(jitted, isa.WINDOW, field, delta))


def test_the_verifier_refuses_a_row_copy_past_its_buffer():
    # (a carry whose new value is the x slice: a window, so it is copied, not stored in place)
    jitted = fg.jit(lambda h, xs: fg.scan(lambda c, x: (x, c * 2.0), h, xs))
    jitted(H0, XS)
    v = variant(jitted)
    plan = copy.copy(v.run.plan)
    plan.code = list(plan.code)
    slot = {s: k for k, s in plan.kernels.items()}
    pc = 0
    while not (plan.code[pc] == isa.BLOCK and slot[plan.code[pc + 2]][0] == "rowcopy"):
        pc += plan.code[pc + 1]
    plan.code[pc + isa.ROWCOPY.src_t] += 1  # one element more per row: the last row overruns
    with pytest.raises(JitInternalError, match="rowcopy"):
        verify(v.run.low, plan)


def _rowcopies(plan) -> int:
    slot = {s: k for k, s in plan.kernels.items()}
    pc = n = 0
    while pc < len(plan.code):
        n += plan.code[pc] == isa.BLOCK and slot[plan.code[pc + 2]][0] == "rowcopy"
        pc += plan.code[pc + 1]
    return n


def _endloop_with_carries(plan) -> int:
    pc = 0
    while not (plan.code[pc] == isa.ENDLOOP and plan.notes.get(pc, (None, {}))[1]):
        pc += plan.code[pc + 1]
    return pc


def test_a_carry_is_stored_in_place_and_the_verifier_follows_it():
    """The body's group stores the new carry over the old one (no copy per step) when nothing
    reads the old one after; the verifier checks that the carry buffer holds the new carry at
    the end of each step, and refuses a plan whose ENDLOOP does not say so."""
    jitted = same_as_eager(lambda w, xs: rnn(w, xs), W, XS)
    plan = variant(jitted).run.plan
    assert _rowcopies(plan) == 0
    low, program = variant(jitted).run.low, variant(jitted).program
    verify(low, plan, program)
    broken = copy.copy(plan)
    broken.notes = dict(plan.notes)
    del broken.notes[_endloop_with_carries(plan)]
    with pytest.raises(JitInternalError, match="reads value"):  # the final carry, read after
        verify(low, broken, program)


def _sum_leaves(tree):
    return sum(fg.sum(leaf) for leaf in fg.tree.tree_leaves(tree))


@pytest.mark.parametrize("body, init, copies", [
    (lambda c, x: (x, c * 2.0), H0, 1),                            # the new carry is a window
    (lambda c, x: ((c[1], c[0] + x), c[0]), (H0, W), 1),           # a swap: one is read after
    (lambda c, x: (fg.tanh(c * W + x), fg.sum(c * c) * x), H0, 0),  # read by a block first
    (lambda c, x: (c * 0.5 + x, c @ M), H0, 0),
])
def test_a_carry_stored_in_place_or_copied_gives_eager_answers(body, init, copies):
    """A carry is stored in place unless the old carry may be read after the new one is
    stored (in a swap, the second carry's new value reads the first's old one) or the new
    carry is a window (the x slice); either way the answers are eager's."""
    jitted = same_as_eager(lambda h, xs: fg.scan(body, h, xs), init, XS)
    assert _rowcopies(variant(jitted).run.plan) == copies
    same_as_eager(fg.grad(lambda h, xs: _sum_leaves(fg.scan(body, h, xs))), init, XS)


# -- fg.checkpoint under fg.jit ----------------------------------------------------------------


def _block(h, w):
    for _ in range(6):
        h = fg.tanh(h * w + 0.1)
    return h


def _chain(block, blocks=12, width=500):
    def loss(w):
        h = np.ones(width)
        for _ in range(blocks):
            h = block(h, w)
        return fg.sum(h)
    return loss


def test_checkpoint_under_jit_recomputes_instead_of_keeping():
    """The compiled backward runs each checkpointed block again instead of keeping its
    values: the program keeps a fraction of the plain one's internal buffers, and the
    gradients are the plain compiled program's bit for bit (the engine adds each use of ``w``
    inside a block in the order the plain backward does)."""
    plain = fg.jit(fg.grad(_chain(_block)))
    remat = fg.jit(fg.grad(_chain(fg.checkpoint(_block))))
    w = np.linspace(0.5, 1.0, 500)
    close(plain(w), fg.grad(_chain(_block))(w), 1e-13)
    assert np.array_equal(remat(w), plain(w))
    size = [sum(b.size for b in variant(j).run.plan.buffers if b.kind == "internal")
            for j in (plain, remat)]
    assert size[1] < 0.5 * size[0], size


def test_checkpoint_under_jit_with_closures_and_outputs_of_several_kinds():
    w = fg.Tensor(W.copy(), autograd=True)

    @fg.checkpoint
    def block(h, scale):
        return {"h": fg.tanh(h * w * scale), "n": 3}

    def step(h):
        out = block(fg.Tensor(h, autograd=True), 0.5)
        loss = fg.sum(out["h"]) * out["n"]
        loss.backward()
        g = w.grad.data.copy()
        w.grad = None
        return loss, g

    jitted = fg.jit(step)
    for _ in range(2):
        close(jitted(H0), step(H0))
