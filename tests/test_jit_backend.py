"""fg.jit's back end (lowering to the runner): one named regression test per defect class of
issue 18, the verifier's checks on programs made wrong on purpose, the checked mode, and the
per-op fallback.

Each regression compares ``fg.jit`` with eager execution on the program that used to crash,
raise an internal ``KeyError``/``TypeError`` or answer wrongly; sizes are chosen to span
several tiles of a fused group (2,048 elements), where hazards between tiles show.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fungrad as fg
from fungrad.errors import JitFallbackWarning, JitInternalError
from jit_programs import lstm_loss

RNG = np.random.default_rng(18)


def _leaves(tree):
    return [np.asarray(x) for x in fg.tree.flatten(tree)[0]]


def _same(got, want, rtol=1e-12, atol=1e-12):
    g, w = _leaves(got), _leaves(want)
    assert len(g) == len(w)
    for a, b in zip(g, w):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _thrice(jitted, fn, *args):
    """jit equals eager on three calls in a row (compiled, then cached)."""
    want = fn(*args)
    for _ in range(3):
        _same(jitted(*args), want)


# -- 0-d values: views at one element, stacks of scalars (out-of-bounds writes) -------------


def test_regression_broadcast_against_an_element_y_times_y0():
    x = RNG.standard_normal(5000)
    f = lambda y: y * y[0]
    _thrice(fg.jit(f), f, x)
    g = fg.grad(lambda y: fg.sum(y * y[-1]))
    _thrice(fg.jit(g), g, x)


def test_regression_jvp_of_an_element_product_inside_jit():
    A = RNG.standard_normal((6, 6))
    x, v = RNG.standard_normal(6), RNG.standard_normal(6)
    f = lambda x, v: fg.jvp(lambda y: fg.tanh(A @ y) * y[0], (x,), (v,))
    _thrice(fg.jit(f), f, x, v)


def test_regression_stack_of_scalar_losses_and_its_gradient():
    x = RNG.standard_normal(7)
    f = lambda x: fg.stack([fg.sum(x * k) for k in range(4)])
    _thrice(fg.jit(f), f, x)
    g = fg.grad(lambda x: fg.sum(fg.stack([fg.sum(fg.sin(x) * k) for k in range(4)]) ** 2))
    _thrice(fg.jit(g), g, x)


def test_regression_hessian_of_a_0d_argument_and_gradients_through_unstack():
    h = fg.hessian(lambda x: fg.sin(x) * x ** 3)
    _thrice(fg.jit(h), h, np.array(0.7))
    g = fg.grad(lambda x: sum(fg.sum(r * (i + 1)) for i, r in enumerate(fg.unstack(x))))
    _thrice(fg.jit(g), g, RNG.standard_normal((3, 4)))


# -- fused groups reading a value through another view (hazards by region) ------------------


@pytest.mark.parametrize("name, fn, shapes", [
    ("last row", lambda x: (lambda h: h * h[-1])(fg.tanh(x)), [(400, 300)]),
    ("transpose", lambda x: (lambda h: h + fg.transpose(h))(x * 2.0), [(300, 300)]),
    ("reversal", lambda w: (lambda h: h + h[::-1])(w * 2.0), [(10_000,)]),
    ("slice of a join", lambda a, b, t: fg.concatenate([a * 2, b + 1])[2500:7500] + t,
     [(5000,), (5000,), (5000,)]),
])
def test_regression_fused_group_reads_a_member_through_a_view(name, fn, shapes):
    args = [RNG.standard_normal(s) for s in shapes]
    _thrice(fg.jit(fn), fn, *args)


# -- a rewrite that moves a value keeps its views (sum of matmuls then viewed) ---------------


@pytest.mark.parametrize("view", [
    lambda s: fg.transpose(s)[1:] * 2.0,
    lambda s: fg.reshape(s, (2, 9)) + 1.0,
    lambda s: s[:, 2:5] - 1.0,
])
def test_regression_sum_of_two_matmuls_then_a_view(view):
    a, c = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    b, d = RNG.standard_normal((4, 6)), RNG.standard_normal((4, 6))
    f = lambda a, b, c, d: view(a @ b + c @ d)
    _thrice(fg.jit(f), f, a, b, c, d)


# -- arguments -------------------------------------------------------------------------------


def test_regression_numpy_scalar_arguments():
    x = RNG.standard_normal(4)
    f = fg.jit(lambda x, lr: x - lr * x)
    for lr in (np.float64(2.0), np.linspace(0.0, 1.0, 5)[2], np.float64(0.25)):
        _same(f(x, lr), x - lr * x)


def test_regression_noncontiguous_argument_changed_in_place_between_calls():
    base = RNG.standard_normal((5, 5))
    x = base.T  # a Fortran-ordered view: read through a copy
    f = fg.jit(lambda x: x * 2.0)
    _same(f(x), x * 2.0)
    base += 1.0  # the same view object, new values
    _same(f(x), x * 2.0)


def test_regression_complex_scalar_constants_compile():
    x = RNG.standard_normal(4)
    f = lambda x: fg.real(x * (1 + 2j))
    _thrice(fg.jit(f), f, x)


# -- donation and in-place updates -----------------------------------------------------------


def test_regression_same_array_donated_under_two_names():
    x = RNG.standard_normal(4)
    f = lambda a, b: (a * 2 + b, b + a)
    j = fg.jit(f, donate_argnums=(0, 1))
    for _ in range(3):
        xx = x.copy()
        _same(j(xx, xx), f(x, x))


def test_regression_donated_argument_also_returned():
    x = RNG.standard_normal(4)
    f = lambda a: (a, a * 2)
    j = fg.jit(f, donate_argnums=(0,))
    for _ in range(3):
        _same(j(x.copy()), f(x))


@pytest.mark.parametrize("fn", [
    lambda a: 0.5 * (a + fg.transpose(a)),
    lambda a: a * a[0],
    lambda a: a + a[::-1],
])
def test_regression_donated_argument_read_through_another_view(fn):
    x = RNG.standard_normal((100, 100))
    j = fg.jit(fn, donate_argnums=(0,))
    for _ in range(3):
        _same(j(x.copy()), fn(x))


def test_regression_in_place_update_reading_its_own_transpose():
    w = fg.Tensor(RNG.standard_normal((100, 100)))
    start = w.data.copy()

    def step():
        w.data = 0.5 * (w.data + w.data.T)
        return fg.sum(w)

    j = fg.jit(step)
    for _ in range(3):
        j()
        start = 0.5 * (start + start.T)
        np.testing.assert_allclose(w.data, start, rtol=1e-12)


def test_regression_embedding_bag_step_with_donation():
    V, D, C, B, L = 50, 8, 5, 16, 4
    params = {"E": RNG.standard_normal((V, D)), "W": RNG.standard_normal((D, C)),
              "b": np.zeros(C)}
    idx, y = RNG.integers(0, V, (B, L)), RNG.integers(0, C, B)

    def loss(P, idx, y):
        h = fg.sum(fg.index_select(P["E"], idx), axis=1)
        return fg.cross_entropy(h @ P["W"] + P["b"], y)

    def step(P, idx, y):
        value, g = fg.value_and_grad(loss)(P, idx, y)
        return {k: P[k] - 0.1 * g[k] for k in P}, value

    j = fg.jit(step, donate_argnums=(0,))
    mine, ref = {k: v.copy() for k, v in params.items()}, params
    for _ in range(3):
        mine, got = j(mine, idx, y)
        ref, want = step(ref, idx, y)
        _same((mine, got), (ref, want), rtol=1e-10, atol=1e-12)


def test_regression_lstm_25_steps_functional_value_and_grad():
    T, B, I, H, C = 25, 4, 6, 8, 5
    params = {"Wx": RNG.standard_normal((I, 4 * H)) * 0.3,
              "Wh": RNG.standard_normal((H, 4 * H)) * 0.3, "b": np.zeros(4 * H),
              "Wo": RNG.standard_normal((H, C)) * 0.3}
    xs, ys = RNG.standard_normal((T, B, I)), RNG.integers(0, C, (T, B))

    def step(P, xs, ys):
        value, g = fg.value_and_grad(lstm_loss)(P, xs, ys)
        return {k: P[k] - 0.05 * g[k] for k in P}, value

    want = step(params, xs, ys)
    _same(fg.jit(step)(params, xs, ys), want, rtol=1e-10, atol=1e-12)
    donated = {k: v.copy() for k, v in params.items()}
    _same(fg.jit(step, donate_argnums=(0,))(donated, xs, ys), want, rtol=1e-10, atol=1e-12)


# -- the verifier: programs made wrong on purpose never run ---------------------------------


def _compiled_parts(fn, *args):
    from fungrad.jit.compiled import _passes
    from fungrad.jit.tracer import trace

    program, _ = trace(fn, args, {})
    low, plan = _passes(program, frozenset(), frozenset())
    return program, low, plan


def _first_store(plan):
    from fungrad.jit.backend import isa
    from fungrad.jit.backend import kernels_ew as KE

    code = plan.code
    head = isa.decode(code, 0, isa.EW_HEAD)
    mem_slots = {slot for key, slot in plan.kernels.items() if key[0] in ("mem", "cast")}
    for k in range(head["n_ops"]):
        q = isa.HEAD + isa.W * k
        if code[q + isa.MEM.slot] in mem_slots and code[q + isa.MEM.sub] == KE.STORE:
            return q
    raise AssertionError("no store")


def test_row_views_computed_without_numpy_agree_with_numpy():
    # lowering computes an integer index's row (w[i], per layer of an unrolled chain) itself
    # (index_view); NumPy, on a stand-in, computes every other index: the same layouts
    from fungrad.jit.passes.lowering import index_view, sub_view, view_index
    rng = np.random.default_rng(5)
    for _ in range(200):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(d) for d in rng.integers(0, 5, ndim))
        strides = tuple(int(s) for s in rng.integers(0, 30, ndim))
        for i in range(-shape[0] - 1, shape[0] + 1):
            try:
                want = sub_view(shape, strides, lambda a, i=i: a[view_index(i)])
            except IndexError:  # out of range: NumPy's error either way
                with pytest.raises(IndexError):
                    index_view(shape, strides, i)
                continue
            assert index_view(shape, strides, i) == want
    w = np.arange(12.0).reshape(4, 3)
    f = fg.jit(lambda w: w[-1] * 2.0 + w[0] - w[2][1:].sum())
    want = w[-1] * 2.0 + w[0] - w[2][1:].sum()
    np.testing.assert_array_equal(f(w), want)
    np.testing.assert_array_equal(f(np.asfortranarray(w)), want)


def test_verifier_accepts_what_emission_made():
    from fungrad.jit.passes.verify import verify

    program, low, plan = _compiled_parts(lambda x, w: fg.sum(fg.tanh(x @ w) * x[0, 0]),
                                         np.ones((3, 4)), np.ones((4, 4)))
    verify(low, plan, program)


def test_verifier_rejects_a_store_outside_its_buffer():
    from fungrad.jit.backend import isa
    from fungrad.jit.passes.verify import verify

    program, low, plan = _compiled_parts(lambda x: fg.tanh(x) * 2.0, np.ones(8))
    plan.code[_first_store(plan) + isa.MEM.off] += 3
    with pytest.raises(JitInternalError, match=r"outside|elements .* of buffer .*verify"):
        verify(low, plan, program)


def test_verifier_rejects_a_register_read_before_it_is_written():
    from fungrad.jit.backend import isa
    from fungrad.jit.passes.verify import verify

    program, low, plan = _compiled_parts(lambda x: fg.tanh(x) * 2.0, np.ones(8))
    q = _first_store(plan)
    plan.code[q + isa.MEM.reg] = 7  # a register nothing wrote
    with pytest.raises(JitInternalError, match="register"):
        verify(low, plan, program)


def test_verifier_rejects_a_wrong_word_count_and_a_wrong_dtype():
    from fungrad.jit.backend import isa
    from fungrad.jit.passes.verify import verify

    program, low, plan = _compiled_parts(lambda a, b: a @ b, np.ones((3, 4)), np.ones((4, 2)))
    start = next(pc for pc in plan.notes if plan.code[pc] == isa.BLOCK)
    plan.code[start + 1] += 1
    with pytest.raises(JitInternalError, match="matmul.*(words|overruns)"):
        verify(low, plan, program)
    plan.code[start + 1] -= 1
    plan.buffers[plan.code[start + isa.MATMUL.a]].dtype = np.dtype(np.float32)
    with pytest.raises(JitInternalError, match="float32"):
        verify(low, plan, program)


def test_verifier_rejects_reading_a_value_from_another_values_buffer():
    from fungrad.jit.backend import isa
    from fungrad.jit.passes.verify import verify

    program, low, plan = _compiled_parts(lambda x: (fg.exp(x) @ x) @ fg.tanh(x),
                                         np.ones((40, 40)))
    verify(low, plan, program)
    # the second matmul reads its left operand from the wrong buffer (as a buffer-reuse or
    # donation bug would): an input's, which holds another value
    matmuls = [pc for pc in sorted(plan.notes) if plan.code[pc] == isa.BLOCK]
    last = matmuls[-1]
    plan.code[last + isa.MATMUL.a] = plan.buf_of[program.inputs[0][0].id]
    with pytest.raises(JitInternalError, match="matmul.*(overwrote|before anything wrote|"
                                               "reads value)"):
        verify(low, plan, program)


def test_checked_mode_catches_an_overrun_the_verifier_did_not_see():
    from fungrad.jit import compiled
    from fungrad.jit.backend import isa

    if not compiled.CHECKS:
        pytest.skip("FUNGRAD_JIT_CHECKS is off")
    program, low, plan = _compiled_parts(lambda x: fg.tanh(x) * 2.0, np.ones(8))
    plan.code[_first_store(plan) + isa.MEM.off] += 8  # into the guard after the buffer
    exe = compiled.Executable(program, low, plan)  # (no verify: as if it had missed this)
    with pytest.raises(JitInternalError, match="wrote outside"):
        exe([np.ones(8)])


# -- no internal exception escapes: a failing lowering or emission falls back per op ---------


def test_a_lowering_bug_falls_back_to_python_for_that_op_with_a_warning(monkeypatch):
    from fungrad.jit.passes.lowering import RULES, registered

    def broken(low, step):
        raise KeyError("a bug in a lowering rule")

    monkeypatch.setitem(RULES, registered("tanh"), broken)
    x = RNG.standard_normal(6)
    f = lambda x: fg.tanh(x) * x + 1.0
    with pytest.warns(JitFallbackWarning, match="tanh"):
        got = fg.jit(f)(x)
    _same(got, f(x))


def test_an_emission_bug_falls_back_to_python_for_that_op_with_a_warning(monkeypatch):
    from fungrad.jit.passes import emit as E

    original = E._emit_block

    def broken(low, plan, node):
        if node.op == "matmul":
            raise IndexError("a bug in emission")
        return original(low, plan, node)

    monkeypatch.setattr(E, "_emit_block", broken)
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 5))
    f = lambda a, b: fg.tanh(a @ b)
    with pytest.warns(JitFallbackWarning, match="matmul"):
        got = fg.jit(f)(a, b)
    _same(got, f(a, b))


def test_compiling_a_clean_program_warns_nothing():
    x = RNG.standard_normal((4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", JitFallbackWarning)
        fg.jit(lambda x: fg.sum(fg.tanh(x @ x) * x[0]))(x)


# -- runtime values --------------------------------------------------------------------------


def test_regression_python_int_above_2_53_keeps_its_value():
    big = 2 ** 53 + 1
    f = fg.jit(lambda x, n: (fg.sum(x), n + 1, n % 1000, n // 3))
    for _ in range(3):
        got = f(np.ones(2), big)
        assert got[1:] == (big + 1, big % 1000, big // 3)
    _same(fg.jit(lambda x, n: x * n)(np.ones(2), big), np.ones(2) * big)


def test_regression_the_last_calls_arguments_are_not_kept_alive():
    import gc
    import weakref

    f = fg.jit(lambda x: fg.sum(fg.tanh(x)))
    x = RNG.standard_normal((100, 100))
    f(x)
    f(x)  # the same array again: rebinding skipped, still not kept
    ref = weakref.ref(x)
    del x
    gc.collect()
    assert ref() is None, "the compiled program keeps the last call's argument alive"
    _same(f(np.ones((100, 100))), np.sum(np.tanh(np.ones((100, 100)))))


def test_regression_a_fused_group_of_more_than_four_dimensions():
    a = RNG.standard_normal((2, 3, 4, 5, 6, 7))
    b = RNG.standard_normal((2, 1, 4, 1, 6, 1))
    perm = (1, 0, 2, 3, 4, 5)
    f = lambda a, b: fg.tanh(fg.transpose(a, perm) * 2.0) + fg.transpose(b, perm)
    _thrice(fg.jit(f), f, a, b)
    g = fg.grad(lambda a: fg.sum(fg.sin(a[:, ::2] * a[:, 1::2])))
    _thrice(fg.jit(g), g, a)
