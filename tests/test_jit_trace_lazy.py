"""fg.jit's tracer records some ops without running them (``tracer._LAZY``): the shape and
dtype it states for such a step must be the ones the op computes, and the value it computes
later, when a step needs it, must be eager's. Checked on every lazy rule across dtypes,
shapes (0-d included) and partners (a traced array, a NumPy constant, a Python number)."""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad.jit.tracer import _LAZY, trace
from fungrad.jit.traced import Lazy
from jit_programs import stacked_chain

DTYPES = [np.float16, np.float32, np.float64, np.complex64, np.complex128]
SHAPES = [(), (3,), (2, 3)]


def _value(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return np.asarray(x, dtype=dtype)


def _cases():
    """(name, fn of the traced x and the constant c, needs a leading axis)."""
    return [
        ("tanh", lambda x, c: fg.tanh(x), False),
        ("negative", lambda x, c: -x, False),
        ("sum", lambda x, c: fg.sum(x), False),
        ("getitem", lambda x, c: x[1], True),
        ("getitem-negative", lambda x, c: x[-1], True),
        ("add-traced", lambda x, c: x + x * 2.0, False),
        ("subtract-const", lambda x, c: x - c, False),
        ("multiply-const-left", lambda x, c: c * x, False),
        ("multiply-int", lambda x, c: x * 3, False),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_lazy_step_states_the_op_shape_dtype_and_value(case, shape, dtype):
    _, fn, rows = case
    if rows and not shape:
        pytest.skip("an int index needs an axis")
    rng = np.random.default_rng(0)
    x, c = _value(rng, shape, dtype), _value(rng, shape, dtype)
    want = np.asarray(fn(x, c))
    kept = []
    program, _ = trace(lambda a: kept.append(fn(a, c)) or kept[0], (x,), {})
    out = program.steps[-1].outputs[0]
    assert (out.shape, out.dtype) == (want.shape, want.dtype)
    # the value the trace holds (computed now, when asked for) is eager's, bit for bit
    np.testing.assert_array_equal(np.asarray(kept[0]._value), want)
    got = fg.jit(lambda a: fn(a, c))(x)  # (the compiled tanh may differ in the last bit)
    assert got.dtype == want.dtype and np.shape(got) == want.shape
    eps = np.finfo(want.dtype).eps
    np.testing.assert_allclose(got, want, rtol=8 * eps, atol=8 * eps)


def test_lazy_chain_forced_by_a_later_step_gives_eager_values():
    """A chain recorded lazily and then read by a step that needs values (np.sort runs on
    them while tracing): the value it sorts is the chain's, computed without recursion."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((400, 8)).astype(np.float32)
    x0 = rng.standard_normal(8).astype(np.float32)

    def f(w):
        x = x0
        for i in range(w.shape[0]):
            x = fg.tanh(x * w[i] + 0.5)
        return np.sort(x)

    np.testing.assert_allclose(fg.jit(f)(w), f(w), rtol=1e-6, atol=1e-6)


def test_the_unrolled_chain_computes_no_value_while_tracing(monkeypatch):
    """The issue's chain (value_and_grad + update) is recorded without computing any value
    of the first call: every one of its ops has a lazy rule."""
    forced = []
    original = Lazy.force

    def force(self):
        forced.append(self)
        return original(self)

    monkeypatch.setattr(Lazy, "force", force)
    p, _, step = stacked_chain(np.random.default_rng(2), 30, 4, np.float32)

    program, _ = trace(step, (p,), {})
    assert not forced
    assert {s.name for s in program.steps} <= set(_LAZY)
    v, new = fg.jit(step)(p)
    v_eager, new_eager = step(p)
    np.testing.assert_allclose(v, v_eager, rtol=1e-5)
    for k in p:
        np.testing.assert_allclose(new[k], new_eager[k], rtol=1e-5, atol=1e-6)


def test_steps_recorded_without_params_share_one_dict_that_refuses_writes():
    """Tens of thousands of steps record no params: they share one empty dict, which no
    pass may write into (it would reach every step)."""
    program, _ = trace(lambda x: fg.tanh(x) * 2.0 + np.tanh(x), (np.ones(3),), {})
    empty = [s.params for s in program.steps if not s.params]
    assert len(empty) >= 3 and all(p is empty[0] for p in empty)
    assert dict(empty[0]) == {} and {**empty[0], "k": 1} == {"k": 1}
    for write in (lambda p: p.__setitem__("k", 1), lambda p: p.update(k=1),
                  lambda p: p.setdefault("k", 1), lambda p: p.pop("k", None), lambda p: p.clear()):
        with pytest.raises(TypeError):
            write(empty[0])
    assert empty[0] == {}


def test_a_traced_arrays_shape_and_dtype_cannot_be_assigned():
    """``x.shape = ...`` (NumPy's in-place reshape) on a traced array raises — the program's
    Var fixes the shape — rather than changing what the array reports."""
    refused = []

    def f(x):
        for name, value in (("shape", (3, 2)), ("dtype", np.dtype(np.float32))):
            try:
                setattr(x, name, value)
            except AttributeError:
                refused.append(name)
        return x.sum(axis=0)

    np.testing.assert_array_equal(fg.jit(f)(np.arange(6.0)), 15.0)
    assert refused == ["shape", "dtype"]
