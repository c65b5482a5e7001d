"""fg.jit, functional style: results equal eager, the program cache, signatures, static
arguments, and the tracing rules (each refused conversion names fg.jit and the fixes)."""

from __future__ import annotations

import platform

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import ConversionError, IndexRangeError, TracingError
from fungrad.jit import jit

BACKENDS = ["python", "compiled"]


def _close(a, b, rtol=1e-12):
    """Equal within ``rtol`` relative to the array's largest entry (fusion may reorder sums:
    an entry near cancellation moves by rtol * max|b|, not rtol * |entry|)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=max(rtol * scale, 1e-14))


def _loss(w, x, y):
    h = fg.tanh(x @ w["W1"] + w["b1"])
    return fg.cross_entropy(h @ w["W2"] + w["b2"], y)


def _params(rng, dtype=np.float64):
    return {"W1": rng.standard_normal((5, 8)).astype(dtype),
            "b1": np.zeros(8, dtype),
            "W2": rng.standard_normal((8, 3)).astype(dtype),
            "b2": np.zeros(3, dtype)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_value_and_grad_equals_eager(backend, dtype, rtol):
    rng = np.random.default_rng(0)
    w, x = _params(rng, dtype), rng.standard_normal((6, 5)).astype(dtype)
    y = rng.integers(0, 3, 6)
    step = jit(fg.value_and_grad(_loss), backend=backend)
    for _ in range(2):  # the trace, then the cached program
        loss, g = step(w, x, y)
        ref_loss, ref_g = fg.value_and_grad(_loss)(w, x, y)
        _close(loss, ref_loss, rtol)
        for k in w:
            _close(g[k], ref_g[k], rtol)
    assert step.cache_info().misses == 1 and step.cache_info().hits == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_whole_update_params_to_new_params(backend):
    rng = np.random.default_rng(1)

    def update(w, x, y, lr):
        loss, g = fg.value_and_grad(_loss)(w, x, y)
        return loss, {k: w[k] - lr * g[k] for k in w}

    w, x, y = _params(rng), rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    step = jit(update, backend=backend)
    w_jit, w_ref = dict(w), dict(w)
    for i in range(4):
        loss, w_jit = step(w_jit, x, y, 0.1 * (i + 1))  # a new learning rate: no retrace
        ref_loss, w_ref = update(w_ref, x, y, 0.1 * (i + 1))
        _close(loss, ref_loss)
        for k in w:
            _close(w_jit[k], w_ref[k])
    assert step.cache_info().misses == 1


def test_python_numbers_are_traced_but_an_int_and_a_float_differ():
    f = jit(lambda x, s: x * s)
    f(np.ones(2), 2.0)
    f(np.ones(2), 3.0)
    assert f.cache_info().misses == 1
    out = f(np.ones(2), 3)
    assert f.cache_info().misses == 2 and out.tolist() == [3.0, 3.0]
    np.testing.assert_array_equal(f(np.ones(2), 5.0), [5.0, 5.0])


def test_shape_dtype_and_structure_are_the_signature():
    f = jit(lambda t: fg.sum(t["a"] * 2))
    f({"a": np.ones(3)})
    f({"a": np.ones(4)})
    f({"a": np.ones(4, np.float32)})
    f({"a": np.ones(4, np.float32), "b": None})
    assert f.cache_info() == (0, 4, 64, 4)
    f({"a": np.zeros(3)})
    assert f.cache_info().hits == 1


def test_cache_keeps_at_least_eight_signatures_and_evicts_least_recent():
    f = jit(lambda x: x + 1, maxsize=8)
    for n in range(1, 10):
        f(np.ones(n))
    info = f.cache_info()
    assert info.currsize == 8 and info.misses == 9 and info.maxsize == 8
    f(np.ones(9))
    assert f.cache_info().hits == 1
    f(np.ones(1))  # evicted first
    assert f.cache_info().misses == 10
    with pytest.raises(ValueError, match="at least 8"):
        jit(lambda x: x, maxsize=4)


def test_static_argnums_decide_python_control_flow():
    def f(x, n, mode):
        for _ in range(n):
            x = fg.tanh(x) if mode == "tanh" else fg.sigmoid(x)
        return x

    g = jit(f, static_argnums=(1, 2))
    x = np.linspace(-1, 1, 5)
    _close(g(x, 3, "tanh"), f(x, 3, "tanh"))
    _close(g(x, 2, "sigmoid"), f(x, 2, "sigmoid"))
    _close(g(x, 3, "tanh"), f(x, 3, "tanh"))
    assert g.cache_info().misses == 2 and g.cache_info().hits == 1
    with pytest.raises(TypeError, match="hashable"):
        g(x, [1], "tanh")


def test_keyword_arguments_and_tensor_arguments():
    f = jit(lambda x, *, scale: fg.sum(x * scale))
    _close(f(np.arange(3.0), scale=2.0), 6.0)
    t = Tensor(np.arange(3.0))
    out = jit(lambda t: t * 2 + 1)(t)
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out.data, [1.0, 3.0, 5.0])


def test_outputs_are_fresh_arrays_not_the_inputs():
    x = np.ones(3)
    f = jit(lambda x: (x, x.reshape(3, 1), x * 1))
    a, b, c = f(x)
    a[0] = 5.0
    b[1, 0] = 7.0
    assert x.tolist() == [1.0, 1.0, 1.0] and c.tolist() == [1.0, 1.0, 1.0]


def test_numpy_functions_and_methods_on_traced_arrays():
    def f(x):
        y = np.exp(x) + np.maximum(x, 0.5)
        return y.mean(axis=0), np.argmax(y, axis=1), y.T.sum(), np.ones_like(x)

    x = np.random.default_rng(2).standard_normal((3, 4))
    for got, ref in zip(jit(f)(x), f(x)):
        _close(got, ref)


def test_in_place_updates_of_traced_arrays():
    def f(x):
        y = x * 1.0
        y += 1
        y[0] = 5.0
        y[1:] *= 2
        return y

    x = np.arange(4.0)
    _close(jit(f)(x), f(x.copy()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_concatenation_is_whole_before_it_is_read(backend):
    # the parts are copies of different shapes (fused in different groups): every part must
    # be written before the sum reads the joined array (cumprod's VJP shifts like this)
    def f(x):
        shifted = fg.concatenate([x[1:], np.zeros(1)], axis=0)
        y = x + shifted
        return fg.concatenate([y[2:], np.zeros(2)], axis=0)

    x = np.random.default_rng(3).standard_normal(7)
    _close(jit(f, backend=backend)(x), f(x))


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="subnormals are flushed through x86-64's MXCSR only")
def test_the_compiled_program_flushes_subnormals_and_restores_the_callers_mode():
    # as XLA's CPU runtime: a deep chain's vanishing gradients would otherwise run ~50x slower
    tiny = np.array([1e-310, 1.0])
    np.testing.assert_array_equal(jit(lambda x: x * 0.5)(tiny), [0.0, 0.5])
    np.testing.assert_array_equal(jit(lambda x: x * 0.5, backend="python")(tiny),
                                  tiny * 0.5)  # the reference executor computes as eager
    assert (tiny * 0.5)[0] != 0.0  # NumPy after the run: subnormals as before


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_lstm_sequence_and_its_gradient_compile_without_numpy_steps(dtype, rtol):
    from fungrad.jit.passes.lower import lower

    rng = np.random.default_rng(5)
    T, B, H = 4, 3, 5
    xp, w = rng.standard_normal((T, B, 4 * H)), 0.5 * rng.standard_normal((H, 4 * H))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    args = [a.astype(dtype) for a in (xp, w, h0, c0)]

    def f(xp, w, h0, c0):
        hs, cs, acts = fg.lstm_sequence(xp, w, h0, c0)
        return fg.sum(hs * hs) + fg.sum(cs * 0.3) + fg.sum(acts * acts)

    step = jit(fg.value_and_grad(f, argnums=(0, 1, 2, 3)))
    assert lower(step.lower(*args)).fallbacks == []
    (value, grads), (ref_value, ref_grads) = step(*args), fg.value_and_grad(
        f, argnums=(0, 1, 2, 3))(*args)
    _close(value, ref_value, rtol)
    for got, ref in zip(grads, ref_grads):
        _close(got, ref, rtol)


def test_every_transformation_composes_inside():
    x = np.array([0.3, -0.7])

    def f(x):
        h = fg.hessian(lambda v: fg.sum(fg.sin(v) ** 3))(x)
        _, t = fg.jvp(lambda v: fg.tanh(v), (x,), (np.ones(2),))
        _, vjp_fn = fg.vjp(lambda v: v * v, x)
        second = fg.grad(lambda v: fg.sum(fg.grad(lambda u: fg.sum(u ** 4))(v)))(x)
        return h, t, vjp_fn(np.ones(2))[0], second

    for got, ref in zip(jit(f)(x), f(x)):
        _close(got, ref)


def test_jit_inside_jit_and_inside_grad_runs_inline():
    inner = jit(lambda x: fg.tanh(x) * 2)
    outer = jit(lambda x: fg.sum(inner(x)))
    x = np.array([0.1, 0.2])
    _close(outer(x), fg.sum(fg.tanh(x) * 2))
    g = fg.grad(lambda x: fg.sum(inner(x)))(x)
    _close(g, 2 * (1 - np.tanh(x) ** 2))


def test_lower_shows_the_program_without_running():
    prog = jit(lambda x: fg.exp(x) * 2).lower(np.zeros(3))
    assert [s.name for s in prog.steps] == ["exp", "multiply"]
    assert "exp" in repr(prog)


def test_user_defop_and_later_ops_work_compiled():
    cube = fg.defop("jit_test_cube", lambda x: x ** 3,
                    lambda g, out, x: (g * 3 * x * x,), replace=True)
    f = jit(fg.grad(lambda x: fg.sum(cube(fg.tanh(x)))))
    x = np.array([0.5, -1.0])
    _close(f(x), 3 * np.tanh(x) ** 2 * (1 - np.tanh(x) ** 2))


# -- tracing errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("body,what", [
    (lambda x: float(fg.sum(x)), "float()"),
    (lambda x: fg.sum(x).item(), ".item()"),
    (lambda x: np.asarray(x), "np.asarray"),
    (lambda x: x if fg.sum(x) > 0 else -x, "bool()"),
    (lambda x: int(x[0]), "int()"),
    (lambda x: list(range(x[0])), "index"),
    (lambda x: f"{fg.sum(x):.3f}", "formatting"),
    (lambda x: Tensor(x).numpy().tolist(), ".tolist()"),
])
def test_value_conversions_raise_naming_jit_and_the_fixes(body, what):
    with pytest.raises(TracingError) as info:
        jit(body)(np.ones(3))
    msg = str(info.value)
    assert "fg.jit" in msg and what in msg and "static_argnums" in msg
    assert isinstance(info.value, ConversionError) and isinstance(info.value, TypeError)


def test_tensor_conversions_raise_too():
    def f(x):
        t = Tensor(x, autograd=True)
        loss = (t * t).sum()
        return float(loss)

    with pytest.raises(TracingError, match=r"float\(\)"):
        jit(f)(np.ones(2))


def test_a_traced_value_that_escapes_is_refused():
    box = []
    jit(lambda x: box.append(x * 2))(np.ones(2))
    with pytest.raises(TracingError, match="escaped"):
        box[0] + 1


def test_errors_inside_the_program_are_eagers():
    table = np.arange(12.0).reshape(4, 3)

    def f(t, ids):
        return fg.index_select(t, ids)

    step = jit(f)
    step(table, np.array([0, 3]))
    with pytest.raises(IndexRangeError) as got:
        step(table, np.array([0, 7]))
    with pytest.raises(IndexRangeError) as ref:
        f(table, np.array([0, 7]))
    assert str(got.value) == str(ref.value)


def test_jit_as_decorator_with_options():
    @jit(static_argnums=1)
    def f(x, n):
        return x * n

    assert f(np.ones(2), 3).tolist() == [3.0, 3.0]
    assert f.__name__ == "f"
