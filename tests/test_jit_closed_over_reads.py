"""fg.jit reads a Tensor the function closes over at every call, however the function reads it.

A closed-over Tensor is state (parameters an optimizer updates, a buffer the caller changes in
place): the program reads its data at each call. Arithmetic on it went through the op registry,
which captures it; but a comparison (``p > 0``), NumPy's gradient-free functions on it
(``np.greater(c, 0)``, ``fg.numpy.isfinite(c)``) and anything else reading a Tensor's data
through ``registry.unwrap`` ran on its values at trace time, so the program kept the trace's
answer (a mask frozen into the program: a silently wrong result once the Tensor changed). Each
case changes the Tensor in place between calls and compares with eager. Where its values
decide the program itself (``t.item()``, ``float(t)``, ``np.array(t)``, ``if t:``) they are the
program's constants, guarded: a change retraces, and the retrace log says which Tensor.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp

BASE = np.array([0.5, -0.2, 0.1, 0.0])
CHANGED = np.array([-0.3, 0.4, -0.1, 0.2])

CASES = {
    "p > 0": lambda p, x: fg.sum(fg.where(p > 0.0, p * x, -x)),
    "p <= 0.05": lambda p, x: fg.sum(fg.where(p <= 0.05, x, p * x)),
    "p == 0": lambda p, x: fg.sum(fg.where(p == 0.0, x, 2.0 * x)),
    "0 < p (reflected)": lambda p, x: fg.sum(fg.where(0.0 < p, x, -x)),
    "np.greater": lambda p, x: fg.sum(fg.where(np.greater(p, 0.0), x, -x)),
    "fg.numpy.less": lambda p, x: fg.sum(fg.where(fnp.less(p, 0.0), x, -x)),
    "fg.numpy.signbit": lambda p, x: fg.sum(fg.where(fnp.signbit(p), x, -x)),
    "fg.numpy.isclose": lambda p, x: fg.sum(fg.where(fnp.isclose(p, 0.1), x, -x)),
    "logical_and of two masks": lambda p, x: fg.sum(
        fg.where(np.logical_and(p > -0.25, p < 0.3), x, -x)),
    "argmax as an index": lambda p, x: x[fnp.argmax(p)] * 3.0,
    "sort": lambda p, x: fg.sum(fnp.sort(p) * x),
    "p.data > 0": lambda p, x: fg.sum(fg.where(p.data > 0.0, x, -x)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("grad", [False, True], ids=["plain", "requires_grad"])
def test_a_closed_over_tensor_changed_in_place_is_read_again(name, grad):
    f = CASES[name]
    p = fg.Tensor(BASE.copy(), requires_grad=grad)
    x = np.linspace(1.0, 2.0, 4)
    run = fg.jit(lambda x: f(p, x))
    with fg.no_grad():  # (a result recorded for backward would run eagerly: compile it)
        first = np.asarray(run(x))
        np.testing.assert_allclose(first, np.asarray(f(p, x)))
        p.data[...] = CHANGED
        np.testing.assert_allclose(np.asarray(run(x)), np.asarray(f(p, x)), rtol=1e-12)
        p.data = BASE[::-1].copy()  # a new array
        np.testing.assert_allclose(np.asarray(run(x)), np.asarray(f(p, x)), rtol=1e-12)


def test_a_mask_of_a_parameter_in_a_training_step():
    """An SGD step whose loss masks by the parameter's sign: the mask follows the updates."""
    def build():
        w = fg.Tensor(np.array([0.05, -0.04, 0.3]), requires_grad=True)
        opt = fg.optim.SGD([w], lr=0.5)

        def step(x):
            opt.zero_grad()
            loss = fg.sum(fg.where(w > 0.0, w * x, -3.0 * w * x))
            loss.backward()
            opt.step()
            return loss
        return w, step

    x = np.array([1.0, -1.0, 0.5])
    w_e, step_e = build()
    w_j, step_j = build()
    step_j = fg.jit(step_j)
    for _ in range(5):  # w[0] and w[1] change sign on the way
        np.testing.assert_allclose(float(step_j(x)), float(step_e(x)), rtol=1e-12)
        np.testing.assert_allclose(w_j.data, w_e.data, rtol=1e-12)
    assert np.sign(w_e.data[0]) != np.sign(0.05)


VALUE_READS = {
    "t.item()": lambda c, x: fg.sum(x) * c.item(),
    "float(t)": lambda c, x: fg.sum(x) * float(c),
    "np.array(t)": lambda c, x: fg.sum(x * np.array(c)),
    "t.numpy()": lambda c, x: fg.sum(x * c.numpy()),
    "if t:": lambda c, x: fg.sum(x) if c else -fg.sum(x),
    "int(t) as a repeat count": lambda c, x: fg.sum(x) * (int(c) + 2),
}


@pytest.mark.parametrize("name", list(VALUE_READS))
def test_a_closed_over_tensor_read_as_a_value_retraces_when_it_changes(name, caplog):
    """Its value decides the program (a Python number, a branch): the program keeps the
    value, and a guard retraces, saying why, once the Tensor holds another."""
    f = VALUE_READS[name]
    c = fg.Tensor(np.array(0.5))
    x = np.linspace(1.0, 2.0, 3)
    run = fg.jit(lambda x: f(c, x))
    np.testing.assert_allclose(run(x), f(c, x))
    np.testing.assert_allclose(run(x), f(c, x))
    assert run.cache_info().misses == 1
    c.data = np.array(-1.5) if name != "if t:" else np.array(0.0)
    with caplog.at_level("INFO", logger="fungrad.jit"):
        np.testing.assert_allclose(run(x), f(c, x))
    assert run.cache_info().misses == 2
    assert "closed-over Tensor" in caplog.text and "read as constants" in caplog.text


def test_closed_over_indices_and_counts_retrace_when_they_change():
    """``x.take(idx)`` and ``x.repeat(n)`` with Tensors the function closes over: their values
    decide the program's shape or gather, so they are guarded constants too."""
    idx, n = fg.Tensor(np.array([2, 0])), fg.Tensor(np.array(2))

    def f(x):
        return fg.sum(x.take(idx) * 2.0) + fg.sum(x.repeat(n) * x.repeat(n))

    run, x = fg.jit(f), np.arange(4.0)
    np.testing.assert_allclose(run(x), f(x))
    idx.data, n.data = np.array([3, 3, 1]), np.array(1)
    np.testing.assert_allclose(run(x), f(x))
    assert run.cache_info().misses == 2


# -- NumPy arrays the function reaches: what NumPy computes from them while tracing -----------

SMALL = np.arange(1.0, 11.0)
GRID = np.arange(16.0).reshape(4, 4)
LARGE = np.ones(100_000)


class _Holder:
    pass


HOLDER = _Holder()
HOLDER.table = np.arange(9.0).reshape(3, 3)


def _sum_of_small():
    return np.sum(SMALL)


NUMPY_CASES = {  # name -> (function of w, the array it reads, an in-place change)
    "np.sum of a global": (lambda w: w * np.sum(SMALL), SMALL, lambda a: a.__setitem__(3, 40.0)),
    "a slice (a view)": (lambda w: fg.sum(w * SMALL[:2]), SMALL,
                         lambda a: a.__setitem__(1, -5.0)),
    "a transpose (a view)": (lambda w: fg.sum(w @ GRID.T), GRID,
                             lambda a: a.__setitem__((0, 3), 9.0)),
    "a view through an attribute": (lambda w: fg.sum(w @ HOLDER.table.T), HOLDER.table,
                                    lambda a: a.__setitem__((2, 0), -1.0)),
    "through a helper function": (lambda w: w * _sum_of_small(), SMALL,
                                  lambda a: a.__setitem__(0, 7.0)),
    "one element of a large array": (lambda w: w * LARGE.sum(), LARGE,
                                     lambda a: a.__setitem__(7, 2.0)),
}


def _in_a_closed_over_list():
    arrays = [np.linspace(0.0, 1.0, 5)]
    return (lambda w: w * np.max(arrays[0]) + np.min(arrays[0])), arrays[0], \
        (lambda a: a.__setitem__(4, 3.0))


NUMPY_CASES["a closure's list"] = _in_a_closed_over_list()


@pytest.mark.parametrize("name", list(NUMPY_CASES))
def test_what_numpy_computed_from_a_reached_array_follows_its_changes(name, caplog):
    """``np.sum(c)``, ``c.T``, ``c[:2]`` of an array the function closes over (or names as a
    global, or reaches through a helper or a container) never reach the tracer: NumPy
    computes them while tracing and the program keeps the result. A change to the array in
    place left the program's answer stale (2.0 where eager gave 6.0). Now the arrays the
    function reaches are compared at each call (views made while tracing are kept), and a
    change retraces, saying so."""
    fn, array, change = NUMPY_CASES[name]
    saved = array.copy()
    try:
        w = np.ones(array.shape[-1] if array.ndim == 2 else 2)
        jitted = fg.jit(fn)
        np.testing.assert_allclose(jitted(w), fn(w))
        np.testing.assert_allclose(jitted(w), fn(w))
        assert jitted.cache_info().misses == 1  # nothing changed: no retrace
        change(array)
        with caplog.at_level("INFO", logger="fungrad.jit"):
            np.testing.assert_allclose(jitted(w), fn(w))
        assert jitted.cache_info().misses == 2
        assert "changed" in caplog.text
    finally:
        array[...] = saved


RATE = 0.1
TABLE = np.ones(3)


class _Stepper:
    def step(self):
        return 2.0


STEPPER = _Stepper()


def test_a_closed_over_name_or_global_rebound_retraces(caplog):
    """``lr = 0.2`` after the trace (a global or a closure's variable, a number or an
    array): the program held the old value. Now the name is checked at each call; the
    same value bound again does not retrace."""
    global RATE, TABLE
    by_rate = fg.jit(lambda w: w * RATE)
    by_table = fg.jit(lambda w: fg.sum(w * TABLE))

    def make():
        k = 2.0
        f = fg.jit(lambda w: w * k)
        first = f(np.ones(1))
        k = 3.0
        return first, f(np.ones(1))
    try:
        np.testing.assert_allclose(by_rate(np.ones(2)), 0.1)
        np.testing.assert_allclose(by_table(np.ones(3)), 3.0)
        with caplog.at_level("INFO", logger="fungrad.jit"):
            RATE, TABLE = 0.2, np.zeros(3)
            np.testing.assert_allclose(by_rate(np.ones(2)), 0.2)
            np.testing.assert_allclose(by_table(np.ones(3)), 0.0)
        assert "the value of the global 'RATE' changed" in caplog.text
        RATE = 0.1 + 0.1  # another float object of the same value
        by_rate(np.ones(2))
        assert by_rate.cache_info().misses == 2
        assert [float(v[0]) for v in make()] == [2.0, 3.0]
    finally:
        RATE, TABLE = 0.1, np.ones(3)


def test_an_attribute_name_is_not_a_global_it_reads():
    """``STEPPER.step()`` names ``step`` as an attribute: a module-level loop variable
    ``step`` changing every iteration does not retrace."""
    jitted = fg.jit(lambda w: w * STEPPER.step())
    try:
        for k in range(4):
            globals()["step"] = k  # (the lambda's globals: this module's)
            jitted(np.ones(2))
    finally:
        globals().pop("step", None)
    assert jitted.cache_info().misses == 1


def test_a_partial_is_traced_once_and_follows_its_array_argument():
    """``fg.jit(functools.partial(f, 2.0, table))``: the partial's arguments are no names
    to watch (a guard on them failed at every call: a trace per call), but the array it
    holds is compared like any array the function reaches."""
    import functools

    table = np.arange(3.0)
    jitted = fg.jit(functools.partial(lambda s, t, x: fg.sum(x * s + np.sum(t)), 2.0, table))
    np.testing.assert_allclose([jitted(np.ones(3)), jitted(np.ones(3) * 2)], [15.0, 21.0])
    assert jitted.cache_info().misses == 1
    table[0] = 10.0
    np.testing.assert_allclose(jitted(np.ones(3)), 45.0)
    assert jitted.cache_info().misses == 2


def test_an_array_or_number_replaced_in_a_closed_over_container_retraces():
    """``state[0] = h`` or ``hp["lr"] = 0.01`` on a list or dict the function closes over:
    the program held the old array (whose guard saw it die and took that for "nothing can
    change it") or number. Now the container's places are watched, as for Tensors."""
    state = [np.ones(3)]
    hp = {"scale": np.ones(3), "lr": 0.1, "history": []}
    by_list = fg.jit(lambda w: fg.sum(w * state[0]))
    by_dict = fg.jit(lambda w: fg.sum(w * hp["scale"]) * hp["lr"])
    assert float(by_list(np.ones(3))) == 3.0
    np.testing.assert_allclose(by_dict(np.ones(3)), 0.3)
    state[0] = np.zeros(3)
    hp["scale"] = np.full(3, 2.0)
    assert float(by_list(np.ones(3))) == 0.0
    np.testing.assert_allclose(by_dict(np.ones(3)), 0.6)
    hp["lr"] = 1.0
    np.testing.assert_allclose(by_dict(np.ones(3)), 6.0)
    hp["history"].append(1.0)  # (an item that is no array or number: not watched)
    np.testing.assert_allclose(by_dict(np.ones(3)), 6.0)
    assert by_list.cache_info().misses == 2 and by_dict.cache_info().misses == 3
