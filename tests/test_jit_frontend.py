"""fg.jit's front end and call boundary (issue 18): what a call passes in, what it reads of
the state it closes over, what it gives back, and what it says.

Each test is a named defect class, reproduced the way users write: JAX's functional steps
(parameters in, new parameters out, ``donate_argnums``), the book's object style (Modules,
optimizers, ``loss.backward()``), PyTorch's habits (a jitted forward, an eager backward).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import stat
import sys
import warnings
import weakref

import numpy as np
import pytest

import fungrad as fg
from fungrad import recording
from fungrad.errors import JitFallbackWarning
from fungrad.hooks import TracerHook
from fungrad.jit import api as jit_api
from fungrad.jit.tracer import Tracer
from fungrad.kernels import _cache
from fungrad.nn import Dropout, Linear, MSELoss, Sequential, Tanh

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _no_fallbacks():
    """A fallback would hide a defect behind a right answer: here it is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", JitFallbackWarning)
        yield


def _mlp(seed=0):
    return Sequential([Linear(4, 8, rng=seed), Tanh(), Linear(8, 1, rng=seed + 1)])


# -- NumPy scalars, big ints, complex numbers --------------------------------------------------


def test_numpy_scalar_learning_rates_from_linspace_are_traced_not_crashing():
    @fg.jit
    def update(w, x, lr):
        g = fg.grad(lambda w: fg.mean((x @ w) ** 2))(w)
        return w - lr * g

    w, x = np.ones(3), RNG.standard_normal((5, 3))
    for lr in np.linspace(0.1, 0.01, 4):  # np.float64 each
        want = w - lr * fg.grad(lambda w: fg.mean((x @ w) ** 2))(w)
        w = update(w, x, lr)
        np.testing.assert_allclose(w, want, rtol=1e-12)
    assert update.cache_info().misses == 1


@pytest.mark.parametrize("scalar", [np.float64(2.5), np.float32(2.5), np.int64(3),
                                    np.int32(-2), np.bool_(True)])
def test_numpy_scalars_of_every_kind_give_eagers_value_and_dtype(scalar):
    x = np.arange(3.0, dtype=np.float32)
    got = fg.jit(lambda x, s: x * s)(x, scalar)
    want = x * scalar
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_int64_arrays_above_2_to_the_53_keep_every_bit():
    # the compiled registers are float64: such a call runs the program in NumPy instead
    f = fg.jit(lambda x: x + 1)
    big = np.array([2 ** 53 + 1, -(2 ** 60) - 1, 3], dtype=np.int64)
    for x in (np.array([1, 2, 3]), big, np.array([4, 5, 6])):
        np.testing.assert_array_equal(f(x), x + 1)
    # a product of int64 values below 2**53 can exceed it: integer multiplies run in NumPy
    x = np.array([100000007, 3], dtype=np.int64)
    np.testing.assert_array_equal(fg.jit(lambda x: x * x)(x), x * x)


def test_python_ints_above_2_to_the_53_keep_every_bit():
    f = fg.jit(lambda x, n: x + n)
    big = 2 ** 53 + 1
    assert f(np.zeros(1, np.int64), big)[0] == big
    assert f(np.zeros(1, np.int64), big + 2)[0] == big + 2  # a new value: exact again
    assert fg.jit(lambda n: n * 3)(2 ** 60 + 7) == (2 ** 60 + 7) * 3


def test_complex_python_scalars():
    f = fg.jit(lambda x, c: fg.sum(x * c))
    x = np.arange(3.0)
    assert f(x, 1 + 2j) == np.sum(x * (1 + 2j))
    assert f(x, 0.5 - 1j) == np.sum(x * (0.5 - 1j))


# -- state read stale ----------------------------------------------------------------------


def test_an_argument_changed_in_place_through_a_transposed_view_is_read_fresh():
    a = np.arange(6.0).reshape(2, 3)
    f = fg.jit(lambda m: m @ np.ones(2))
    f(a.T)
    a[0, 0] = 100.0
    np.testing.assert_allclose(f(a.T), a.T @ np.ones(2))


def test_a_fortran_ordered_argument_changed_in_place_is_read_fresh():
    a = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    f = fg.jit(lambda m: fg.tanh(m) * 2)
    f(a)
    a[1, 2] = -3.0
    np.testing.assert_allclose(f(a), np.tanh(a) * 2, rtol=1e-12)


def test_a_fortran_ordered_parameter_updated_in_place_is_read_fresh():
    w = fg.Tensor(np.asfortranarray(RNG.standard_normal((3, 2))), autograd=True)
    f = fg.jit(lambda x: (x @ w).data.sum())
    x = np.ones((4, 3))
    f(x)
    w.data[0, 1] += 5.0
    np.testing.assert_allclose(f(x), (x @ w.data).sum(), rtol=1e-12)


def _train(edit, jit: bool):
    model = _mlp()
    opt = fg.optim.SGD(model.parameters(), alpha=0.1)
    x, y = np.linspace(-1, 1, 20).reshape(5, 4), np.linspace(0, 1, 5).reshape(5, 1)

    def step(x, y):
        loss = MSELoss()(model(x), y)
        loss.backward()
        opt.step()
        return loss

    run = fg.jit(step) if jit else step
    losses = []
    for i in range(5):
        if i == 3:
            edit(model, opt)
        losses.append(float(np.sum(run(x, y).data)))
    return losses, [p.data.copy() for p in model.parameters()]


def _replace_weight(model, opt):
    model.layers[0].weight = fg.Tensor(np.full((4, 8), 0.1), autograd=True)


def _remove_from_optimizer(model, opt):
    del opt.parameters[0]


@pytest.mark.parametrize("edit", [_replace_weight, _remove_from_optimizer],
                         ids=["parameter-replaced-on-module", "parameter-removed-from-optimizer"])
def test_the_books_loop_sees_a_changed_model_or_optimizer(edit):
    eager, eager_params = _train(edit, jit=False)
    jitted, jit_params = _train(edit, jit=True)
    np.testing.assert_allclose(jitted, eager, rtol=1e-10)
    for a, b in zip(jit_params, eager_params):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_closed_over_numpy_arrays_are_constants_and_a_change_retraces(caplog):
    """The documented semantics: a closed-over array's value at trace time is a constant of
    the program, used consistently (an op on it and a NumPy result computed from it agree),
    and a change to the array is detected and retraces."""
    c = np.ones(2)
    f = fg.jit(lambda x: x * c + c.sum())  # c.sum() is plain NumPy: computed while tracing
    np.testing.assert_allclose(f(np.ones(2)), [3.0, 3.0])
    c[:] = 5.0
    with caplog.at_level(logging.INFO, logger="fungrad.jit"):
        np.testing.assert_allclose(f(np.ones(2)), np.ones(2) * c + c.sum())
    assert f.cache_info().misses == 2
    assert "closed-over NumPy array" in caplog.text


def test_a_large_closed_over_array_changed_wholesale_retraces():
    table = np.ones((300, 300))
    f = fg.jit(lambda x: fg.sum(x @ table) + table.mean())
    assert f(np.ones(300)) == 90001.0
    table *= 2.0
    assert f(np.ones(300)) == 180002.0


def test_arrays_made_inside_the_function_need_no_guard():
    f = fg.jit(lambda x: x * np.arange(3.0) + np.ones(3))
    f(np.ones(3))
    f(np.ones(3))
    assert f.cache_info() == (1, 1, 64, 1)
    (variant,) = next(iter(f._cache.values()))
    assert variant.guards == []


def test_boolean_masks_of_a_new_count_retrace_rather_than_keep_the_first_shape():
    f = fg.jit(lambda x: fg.sum(x[x > 1.0]) * 2)
    for start in (0.0, 1.0, 2.0, 0.0):
        x = np.arange(start, start + 4)
        np.testing.assert_allclose(f(x), np.sum(x[x > 1.0]) * 2)
    assert f.cache_info().misses == 3  # three counts; the fourth call reuses the first


def test_a_boolean_mask_argument_pytorch_style():
    f = fg.jit(lambda x, m: (x[m] ** 2).sum())
    x = np.arange(5.0)
    np.testing.assert_allclose(f(x, np.array([1, 0, 1, 0, 0], bool)), 4.0)
    np.testing.assert_allclose(f(x, np.array([1, 1, 1, 1, 0], bool)), 14.0)


# -- outputs differentiated eagerly; writes into arguments --------------------------------------


def test_a_jitted_forward_then_an_eager_backward_reaches_the_parameters():
    model, twin = _mlp(), _mlp()
    forward = fg.jit(lambda x: model(x))
    x, y = RNG.standard_normal((6, 4)), RNG.standard_normal((6, 1))
    for _ in range(3):
        for p, q in zip(model.parameters(), twin.parameters()):
            p.grad = q.grad = None
        MSELoss()(forward(x), y).backward()
        MSELoss()(twin(x), y).backward()
        for p, q in zip(model.parameters(), twin.parameters()):
            np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=1e-12)
    assert forward.cache_info().misses == 1


def _dropout_step(jit: bool):
    fg.manual_seed(3)
    model = Sequential([Linear(4, 16, rng=0), Dropout(0.5), Linear(16, 1, rng=1)])
    forward = fg.jit(lambda x: model(x)) if jit else model
    outs, grads = [], []
    for _ in range(3):  # fresh masks on every call; each backward uses its call's mask
        for p in model.parameters():
            p.grad = None
        out = forward(np.ones((3, 4)))
        fg.sum(out * out).backward()
        outs.append(out.data)
        grads.append([p.grad.data for p in model.parameters()])
    return outs, grads


def test_a_jitted_forward_with_dropout_backpropagates_through_the_calls_own_mask():
    eager_outs, eager_grads = _dropout_step(jit=False)
    outs, grads = _dropout_step(jit=True)
    assert not np.allclose(outs[0], outs[1])
    for a, b in zip(outs, eager_outs):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    for ga, gb in zip(grads, eager_grads):
        for a, b in zip(ga, gb):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_jitted_function_of_a_tensor_argument_is_differentiable_after_the_call():
    w = fg.Tensor(RNG.standard_normal((4, 2)), autograd=True)
    twin = fg.Tensor(w.data.copy(), autograd=True)
    x = RNG.standard_normal((5, 4))
    f = fg.jit(lambda w, x: fg.sum(fg.tanh(x @ w) * x[:, :2]))
    f(w, x).backward()
    fg.sum(fg.tanh(x @ twin) * x[:, :2]).backward()
    np.testing.assert_allclose(w.grad.data, twin.grad.data, rtol=1e-12)


def test_under_no_grad_a_jitted_forward_records_nothing():
    model = _mlp()
    forward = fg.jit(lambda x: model(x))
    with fg.no_grad():
        out = forward(np.ones((2, 4)))
    assert not out.requires_grad


def test_in_place_updates_of_an_argument_reach_the_callers_array():
    def normalize_(x):
        x -= x.mean()
        x[0] = 7.0
        return x.sum()

    a, b = np.arange(4.0), np.arange(4.0)
    want = normalize_(b)
    got = fg.jit(normalize_)(a)
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(got, want)


def test_out_arrays_are_written():
    out = np.zeros(3)

    def scale(x, o):
        np.multiply(x, 2.0, out=o)
        np.add(x, 1.0, out=out)  # an array closed over
        return x

    o = np.zeros(3)
    fg.jit(scale)(np.arange(3.0), o)
    np.testing.assert_allclose(o, [0.0, 2.0, 4.0])
    np.testing.assert_allclose(out, [1.0, 2.0, 3.0])


# -- donation at the call boundary ---------------------------------------------------------------


def test_the_same_array_passed_twice_with_donation():
    f = fg.jit(lambda a, b: a.T @ b + a, donate_argnums=(0, 1))
    a = RNG.standard_normal((3, 3))
    want = a.T @ a + a
    np.testing.assert_allclose(f(a, a), want, rtol=1e-12)


def test_a_donated_argument_that_is_also_returned_keeps_its_value():
    f = fg.jit(lambda p: (p, p * 2), donate_argnums=(0,))
    p = np.ones(3)
    for _ in range(3):
        same, double = f(p)
        np.testing.assert_allclose(same, 1.0)
        np.testing.assert_allclose(double, 2.0)
        p = np.ones(3)


def test_a_donated_view_never_writes_into_the_array_it_views():
    f = fg.jit(lambda w: w * 2.0 + 1.0, donate_argnums=(0,))
    big = np.ones((4, 4))
    for k in range(3):
        np.testing.assert_allclose(f(big[:, k]), 3.0)
    np.testing.assert_allclose(big, 1.0)


def test_a_functional_sgd_step_with_donation_jax_style():
    def loss(p, x, y):
        return fg.mean((fg.tanh(x @ p["w"] + p["b"]) - y) ** 2)

    @functools.partial(fg.jit, donate_argnums=(0,))
    def step(p, x, y, lr):
        value, g = fg.value_and_grad(loss)(p, x, y)
        return value, {k: p[k] - lr * g[k] for k in p}

    x, y = RNG.standard_normal((8, 3)), RNG.standard_normal((8, 2))
    p = {"w": np.zeros((3, 2)), "b": np.zeros(2)}
    q = {k: v.copy() for k, v in p.items()}
    for lr in np.linspace(0.5, 0.1, 5):
        value, p = step(p, x, y, lr)
        v2, g = fg.value_and_grad(loss)(q, x, y)
        q = {k: q[k] - lr * g[k] for k in q}
        np.testing.assert_allclose(value, v2, rtol=1e-12)
    for k in p:
        np.testing.assert_allclose(p[k], q[k], rtol=1e-12)


# -- the cache -----------------------------------------------------------------------------------


def test_a_closed_over_tensor_of_alternating_shape_keeps_both_programs():
    w = fg.Tensor(np.ones(2))
    f = fg.jit(lambda x: x * fg.sum(w))
    for i in range(8):
        w.data = np.ones(2 + i % 2)
        np.testing.assert_allclose(f(np.ones(1)), [2.0 + i % 2])
    assert f.cache_info().misses == 2
    assert f.cache_info().hits == 6


def test_a_tensor_replaced_in_a_closed_over_dict_is_the_one_read():
    state = {"t": fg.Tensor(np.ones(3))}
    f = fg.jit(lambda x: fg.sum(x) * fg.sum(state["t"] * state["t"]))
    x = np.arange(2.0)
    for k in range(10):
        state["t"] = fg.Tensor(np.arange(3.0 + k % 2))  # a new Tensor every call
        np.testing.assert_allclose(f(x), np.sum(x) * np.sum(state["t"].data ** 2))
    assert f.cache_info().misses == 2  # one program per shape, read through the dict


def test_a_parameter_replaced_in_a_closed_over_list_retraces():
    ws = [fg.Tensor(np.ones(2), autograd=True)]
    f = fg.jit(lambda x: fg.sum(ws[0] * x).data)
    assert f(np.ones(2)) == 2.0
    ws[0] = fg.Tensor(np.full(2, 3.0), autograd=True)
    assert f(np.ones(2)) == 6.0


def test_cache_info_counts_each_call_once():
    w = fg.Tensor(np.ones(2))
    f = fg.jit(lambda x: x * fg.sum(w))
    f(np.ones(1))
    w.data = np.ones(3)  # the kept program no longer fits: one miss, not a hit and a miss
    f(np.ones(1))
    info = f.cache_info()
    assert info.hits + info.misses == 2 and info.misses == 2


def test_no_reference_to_a_calls_arguments_outlives_the_call():
    f = fg.jit(lambda x, y: (fg.tanh(x) @ y).data)
    x, y = np.ones((5, 4)), fg.Tensor(np.ones((4, 3)))
    refs = [weakref.ref(x), weakref.ref(y)]
    f(x, y)
    f(np.ones((5, 4)), fg.Tensor(np.ones((4, 3))))
    del x, y
    gc.collect()
    assert all(r() is None for r in refs)


# -- transformations inside jit (matmul, indexing, broadcasting) ---------------------------------

A = RNG.standard_normal((4, 4))


def _scalar_fn(y):
    return fg.sum(fg.tanh(A @ y) * y[0]) + fg.sum(y[1:] * y[:-1])


_TRANSFORMS = {
    "grad": lambda f: fg.grad(f),
    "grad-of-grad": lambda f: fg.grad(lambda y: fg.sum(fg.grad(f)(y) ** 2)),
    "hessian": lambda f: fg.hessian(f),
    "jacobian": lambda f: fg.jacobian(lambda y: fg.tanh(A @ y) * y[0]),
}


def _jvp_vjp(y, v):
    def f(y):
        return fg.tanh(A @ y) * y[0] + y[::-1]

    out, tangent = fg.jvp(f, (y,), (v,))
    _, pull = fg.vjp(f, y)
    return out, tangent, pull(v)[0]


def _check_transforms(backend: str) -> None:
    y, v = RNG.standard_normal(4), RNG.standard_normal(4)
    for transform in _TRANSFORMS.values():
        eager = transform(_scalar_fn)
        jitted = fg.jit(transform(_scalar_fn), backend=backend)
        for _ in range(2):
            np.testing.assert_allclose(jitted(y), eager(y), rtol=1e-10, atol=1e-12)
    jitted = fg.jit(_jvp_vjp, backend=backend)
    for _ in range(2):
        for got, want in zip(jitted(y, v), _jvp_vjp(y, v)):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(_TRANSFORMS))
def test_transformations_inside_jit_are_traced_as_eager_runs_them(name):
    """The tracer's half of issue 18 item 6: the traced program, run step by step, equals
    eager (matmul, indexing, broadcasting against a scalar taken by indexing)."""
    y = RNG.standard_normal(4)
    eager = _TRANSFORMS[name](_scalar_fn)
    jitted = fg.jit(_TRANSFORMS[name](_scalar_fn), backend="python")
    for _ in range(2):
        np.testing.assert_allclose(jitted(y), eager(y), rtol=1e-10, atol=1e-12)


def test_jvp_and_vjp_inside_jit_are_traced_as_eager_runs_them():
    y, v = RNG.standard_normal(4), RNG.standard_normal(4)
    for got, want in zip(fg.jit(_jvp_vjp, backend="python")(y, v), _jvp_vjp(y, v)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_transformations_inside_jit_compiled_equal_eager():
    import subprocess

    code = ("import sys; sys.path.insert(0, %r); import test_jit_frontend as t; "
            "t._check_transforms('compiled'); print('ok')" % os.path.dirname(__file__))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), (
        f"exit {done.returncode}: {done.stderr[-2000:]}")


def test_vmap_of_jit_and_jit_of_vmap():
    f = fg.jit(lambda x: fg.sum(fg.tanh(A @ x) * x[0]))
    xs = RNG.standard_normal((3, 4))
    want = [float(fg.sum(fg.tanh(A @ x) * x[0])) for x in xs]
    np.testing.assert_allclose(fg.vmap(f)(xs), want, rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.vmap(f))(xs), want, rtol=1e-12)


# -- tracing cost ---------------------------------------------------------------------------------


def test_a_lazy_chain_of_thousands_is_forced_without_recursion():
    from fungrad.jit.traced import Lazy

    value = Lazy(np.add, (np.zeros(3), np.ones(3)), {})
    for _ in range(20000):
        value = Lazy(np.add, (value, np.ones(3)), {})
    np.testing.assert_array_equal(value.force(), np.full(3, 20001.0))


def test_a_gradient_accumulated_row_by_row_is_not_summed_while_tracing(monkeypatch):
    """Tracing records the accumulation of a stacked parameter's gradient (one scatter and
    one add per layer) without computing it: the sum costs layers x size per layer, which
    made tracing time quadratic in the program's length. The program still computes it."""
    sums = []
    for name in ("add", "scatter_index"):
        op = fg.ops()[name]

        def counting(*args, _forward=op.forward, **params):
            out = _forward(*args, **params)
            sums.append(np.shape(out))
            return out

        monkeypatch.setattr(op, "forward", counting)
    L = 40
    w = RNG.standard_normal((L, 8))

    def loss(w):
        x = np.ones(8)
        for i in range(L):
            x = fg.tanh(x * w[i])
        return fg.sum(x)

    step = fg.jit(lambda w: w - 0.1 * fg.grad(loss)(w))
    step.lower(w)
    assert (L, 8) not in sums  # no stacked sum computed while tracing
    monkeypatch.undo()
    np.testing.assert_allclose(step(w), w - 0.1 * fg.grad(loss)(w), rtol=1e-12)


# -- no internal exception escapes --------------------------------------------------------------


def test_a_compiler_defect_falls_back_with_one_warning_and_the_right_answer(monkeypatch):
    from fungrad.jit import compiled

    def broken(program, donated=frozenset()):
        raise KeyError("an internal table")

    monkeypatch.setattr(compiled, "compile_program", broken)
    f = fg.jit(lambda x: fg.tanh(x) * 2)
    with pytest.warns(JitFallbackWarning, match="compiling the traced program failed"):
        np.testing.assert_allclose(f(np.ones(3)), np.tanh(np.ones(3)) * 2)


def test_the_users_own_exceptions_propagate_as_they_are():
    def f(x, table):
        return x * table["missing"]

    with pytest.raises(KeyError, match="missing"):
        fg.jit(f)(np.ones(2), {"present": np.ones(2)})


@pytest.mark.parametrize("misuse", [
    lambda: fg.jit(lambda x: x, static_argnums=("x",)),
    lambda: fg.jit(3),
    lambda: fg.jit(lambda x, n: x, static_argnums=(1,))(np.ones(2), [1, 2]),
    lambda: fg.jit(lambda x, o: x)(np.ones(2), bytearray(b"unhashable")),
    lambda: fg.jit(lambda x: len(fg.sum(x)))(np.ones(2)),
    lambda: fg.jit(lambda x: float(x))(np.ones(())),
], ids=["static-not-int", "not-callable", "static-unhashable", "opaque-leaf", "len-0d",
        "float-of-traced"])
def test_front_end_misuse_raises_fungrad_errors(misuse):
    with pytest.raises(fg.errors.FungradError, match="fg.jit|len"):
        misuse()


def test_user_errors_inside_the_program_are_fungrad_errors_naming_the_op():
    f = fg.jit(lambda a, b: a @ b)
    with pytest.raises(fg.errors.ShapeError, match="matmul"):
        f(np.ones((2, 3)), np.ones((2, 3)))


# -- the trace log, the cold-compile notice, the engine's hook interface -------------------------


def test_every_trace_is_logged_with_its_reason(caplog):
    def step(x, w):
        return fg.sum(fg.tanh(x @ w))

    f = fg.jit(step)
    with caplog.at_level(logging.INFO, logger="fungrad.jit"):
        f(np.ones((128, 784)), np.ones((784, 10)))
        f(np.ones((128, 784)), np.ones((784, 10)))
        f(np.ones((64, 784)), np.ones((784, 10)))
        f(np.ones((64, 784), np.float32), np.ones((784, 10)))
    records = [r for r in caplog.records if r.name == "fungrad.jit"]
    assert len(records) == 3
    assert "step" in records[0].getMessage() and "first call" in records[0].getMessage()
    assert "argument 0 (x): shape (128, 784) -> (64, 784)" in records[1].getMessage()
    assert "dtype float64 -> float32" in records[2].getMessage()
    assert "traced" in records[0].getMessage() and " s" in records[0].getMessage()


def test_a_retrace_names_its_differences_from_the_closest_kept_signature(caplog):
    """Against the closest program kept, not the one traced last: a (64, 784) float64 call
    after a float32 one names the keyword it adds, not a dtype that a kept program has.
    Every argument that differs is named, and so is fg.no_grad."""
    def step(w, x, lr=0.1):
        return w - lr * fg.grad(lambda w: fg.sum(fg.tanh(x @ w)))(w)

    f, w = fg.jit(step), np.ones((784, 10))
    with caplog.at_level(logging.INFO, logger="fungrad.jit"):
        f(w, np.ones((64, 784)))
        f(w, np.ones((64, 784), np.float32))
        f(w, np.ones((64, 784)), lr=0.2)
        f(w.astype(np.float32), np.ones((32, 784)), lr=np.float32(0.3))
        f(fg.Tensor(w, autograd=True), np.ones((64, 784)))
        with fg.no_grad():
            f(w, np.ones((64, 784)))
    said = [r.getMessage() for r in caplog.records if r.name == "fungrad.jit"]
    assert len(said) == 6
    assert "(keyword 'lr' given)" in said[2]
    assert ("argument 0 (w): dtype float64 -> float32; argument 1 (x): shape (64, 784) -> "
            "(32, 784); keyword 'lr': a Python float -> a float32 array of shape ()") in said[3]
    assert "a float64 array of shape (784, 10) -> Tensor(shape (784, 10)" in said[4]
    assert "called under fg.no_grad" in said[5]


def test_a_static_argument_change_is_logged(caplog):
    f = fg.jit(lambda x, n: x * n, static_argnums=(1,))
    with caplog.at_level(logging.INFO, logger="fungrad.jit"):
        f(np.ones(2), 3)
        f(np.ones(2), 4)
    assert "static argument 1 (n): 3 -> 4" in caplog.records[-1].getMessage()


def test_a_slow_first_compile_says_so_once_on_stderr(monkeypatch, capfd):
    import time

    monkeypatch.setattr(jit_api, "COLD_NOTICE_S", 0.05)
    monkeypatch.setattr(jit_api, "_cold_notice", [False])

    def slow(x):
        time.sleep(0.3)  # runs while tracing
        return x + 1

    fg.jit(slow)(np.ones(2))
    fg.jit(slow)(np.ones(3))
    err = capfd.readouterr().err
    assert err.count("fg.jit: compiling slow") == 1


def test_the_tracer_implements_the_engines_hook_interface():
    assert isinstance(Tracer(), TracerHook)
    for name in [n for n in dir(TracerHook) if not n.startswith("_")]:
        assert callable(getattr(Tracer, name)) or name == "traced_type", name
    assert recording.thread.hook is None


# -- the compiled-code cache on disk ---------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_the_cache_directory_is_created_owner_only(tmp_path):
    path, reason = _cache.choose_cache_dir(str(tmp_path / "cache"))
    assert reason is None and path.startswith(str(tmp_path / "cache"))
    for d in (tmp_path / "cache", path):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_cache_directory_others_can_write_is_never_used(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    try:
        path, reason = _cache.choose_cache_dir(str(shared))
    finally:
        os.chmod(shared, 0o700)
    assert path is None and "writable by other users" in reason


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_symlinked_cache_directory_is_never_used(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    path, reason = _cache.choose_cache_dir(str(link))
    assert path is None and "symbolic link" in reason


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                    reason="making a directory another user owns needs root")
def test_a_cache_directory_of_another_user_is_never_used(tmp_path):
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    os.chown(other, 12345, 12345)
    path, reason = _cache.choose_cache_dir(str(other))
    assert path is None and "another user" in reason


def test_the_cache_key_covers_fungrads_version_and_the_jits_sources():
    assert _cache._fungrad_version() == fg.__version__
    assert any(s.endswith(os.path.join("fungrad", "jit")) for s in _cache._SOURCES)
    assert _cache._source_key() == _cache._source_key()
    assert sys.modules["fungrad.kernels._cache"] is _cache
