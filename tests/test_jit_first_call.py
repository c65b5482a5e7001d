"""What a jitted function's first call leaves behind for Python's cyclic collector (issue 19:
the first call of a 42,000-op program spent 0.1 s in one young collection after the compile).

A trace and compile run with the collector off; when it is turned back on, what they made
and kept (the program, its plan) is moved to the oldest generation without a scan, the
tracer is freed by reference counting (nothing it leaves is a cycle the collector must
find), and a process that froze objects itself keeps them frozen.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np

import fungrad as fg
from fungrad.jit.tracer import trace


def _chain(x, w):
    for i in range(w.shape[0]):
        x = fg.tanh(x * w[i])
    return fg.sum(x)


def test_a_finished_trace_is_freed_without_the_collector():
    """The tracer's argument proxies point back at it: the trace drops them at its end, so a
    tracer (with what it journaled: captured Tensors, their old data) goes when its last
    user lets it go, not at a later cyclic collection."""
    w = fg.Tensor(np.ones(3), autograd=True)
    collecting = gc.isenabled()
    gc.disable()
    try:
        program, tracer = trace(lambda x, v: fg.sum(fg.tanh(x * w) + v), (np.zeros(3),
                                                                         np.ones(3)), {})
        assert [s.name for s in program.steps] == ["multiply", "tanh", "add", "sum"]
        ref = weakref.ref(tracer)
        del tracer
        assert ref() is None
    finally:
        if collecting:
            gc.enable()


def test_the_first_call_hands_its_program_to_the_oldest_generation():
    f = fg.jit(fg.value_and_grad(_chain, argnums=1))
    x, w = np.full(4, 0.5), np.ones((6, 4))
    collecting = gc.isenabled()
    gc.enable()
    try:
        value, g = f(x, w)
        program = f.lower(x, w)  # (a separate trace: the kept one is the variant's)
        kept = next(v for vs in f._cache.values() for v in vs).program
        assert kept is not None and len(kept.steps) == len(program.steps)
        assert gc.get_freeze_count() == 0
        assert any(o is kept for o in gc.get_objects(generation=2))
    finally:
        if not collecting:
            gc.disable()
    eager_value, eager_g = fg.value_and_grad(_chain, argnums=1)(x, w)
    np.testing.assert_allclose(value, eager_value)
    np.testing.assert_allclose(g, eager_g)


def test_objects_a_process_froze_stay_frozen():
    """``gc.freeze()`` before forking workers: fg.jit's first call must not unfreeze them."""
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        f = fg.jit(lambda x: fg.sum(fg.tanh(x) * 2.0))
        assert float(f(np.zeros(3))) == 0.0
        assert gc.get_freeze_count() >= frozen > 0
    finally:
        gc.unfreeze()


def test_the_collector_is_on_again_after_a_first_call_and_after_a_failed_trace():
    def bad(x):
        raise ValueError("the user's own error")

    assert gc.isenabled()
    f = fg.jit(lambda x: fg.tanh(x) + 1.0)
    np.testing.assert_allclose(f(np.zeros(2)), np.ones(2))
    assert gc.isenabled()
    g = fg.jit(bad)
    try:
        g(np.zeros(2))
    except ValueError:
        pass
    assert gc.isenabled()
