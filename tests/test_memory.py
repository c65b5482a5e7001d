"""Memory: a long training loop holds steady memory, and backward frees the graph as it goes.

The training loop is the chapter's RNN (Grokking Deep Learning, ch. 13, the bAbI listing)
written inline with Tensors — an embedding through ``index_select``, the book's RNN cell from
``.mm``, ``+``, ``.expand`` and ``.sigmoid()``, ``cross_entropy`` and the book's SGD update —
on synthetic data of the same shape (the bAbI file is not available offline). ``tracemalloc``
measures the traced memory after a warm-up, after 1,000 more steps and after 500 more, with
the garbage collector disabled, so reference cycles would show up as growth too.

Run ``python tests/test_memory.py`` to print the measurement.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor

VOCAB, DIM, BATCH, SEQ = 20, 16, 100, 6
GROWTH_BOUND = 256 * 1024  # bytes over the first 1,000 steps (one step's graph is ~100 KB)
LATER_BOUND = 8 * 1024  # bytes over the next 500: 16 B a step, less than one leaked object


def _rnn_setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    data = np.empty((1000, SEQ), dtype=np.int64)
    data[:, 0] = rng.integers(0, VOCAB, size=1000)
    for t in range(1, SEQ):  # a learnable successor rule
        data[:, t] = (data[:, t - 1] * 7 + 3) % VOCAB

    def linear(n_in, n_out):
        w = Tensor(rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in), autograd=True)
        b = Tensor(np.zeros(n_out), autograd=True)
        return w, b

    params = {"embed": Tensor((rng.random((VOCAB, DIM)) - 0.5) / DIM, autograd=True)}
    for name, (n_in, n_out) in {"ih": (DIM, DIM), "hh": (DIM, DIM), "ho": (DIM, VOCAB)}.items():
        params["w_" + name], params["b_" + name] = linear(n_in, n_out)
    return data, params


def _linear(x, w, b):
    return x.mm(w) + b.expand(0, len(x.data))  # the book's Linear


def rnn_step(data, params, alpha=0.05) -> float:
    """One iteration of the book's loop: 5 time steps, one loss, backward, SGD."""
    p = params
    hidden = Tensor(np.zeros((BATCH, DIM)), autograd=True)  # model.init_hidden
    for t in range(SEQ - 1):
        x = p["embed"].index_select(Tensor(data[:BATCH, t], autograd=True))
        combined = _linear(x, p["w_ih"], p["b_ih"]) + _linear(hidden, p["w_hh"], p["b_hh"])
        hidden = combined.sigmoid()
        output = _linear(hidden, p["w_ho"], p["b_ho"])
    loss = output.cross_entropy(Tensor(data[:BATCH, t + 1], autograd=True))
    loss.backward()
    for w in p.values():  # the book's SGD.step
        w.data -= w.grad.data * alpha
        w.grad.data *= 0
    return float(loss.data)


def measure_rnn_growth(steps: int = 1000, later: int = 500, warmup: int = 50) -> dict:
    """Traced memory (bytes) over ``steps`` and then ``later`` training steps, gc disabled.

    ``growth``: over the first ``steps`` after ``warmup`` steps (Python's free lists for tuples
    and small objects are still filling: tens of KB); ``growth_later``: over the next
    ``later`` steps (steady state: a leak of even one small object per step would show).
    """
    data, params = _rnn_setup()
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        first = rnn_step(data, params)
        for _ in range(warmup - 1):  # Numba compiles, caches fill
            rnn_step(data, params)
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            rnn_step(data, params)  # (keeping every loss in a list would itself grow 32 B/step)
        middle, peak = tracemalloc.get_traced_memory()
        for _ in range(later):
            last = rnn_step(data, params)
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        if was_enabled:
            gc.enable()
    return {"start": start, "growth": middle - start, "growth_later": end - middle,
            "peak": peak - start, "steps": steps, "later": later, "first_loss": first,
            "last_loss": last}


def _report(m: dict) -> str:
    return (f"RNN training (tracemalloc, gc disabled, after {50} warm-up steps): traced memory "
            f"{m['start']} B; growth over {m['steps']} steps {m['growth']} B, over the next "
            f"{m['later']} {m['growth_later']} B; peak {m['peak']} B above the start; loss "
            f"{m['first_loss']:.3f} -> {m['last_loss']:.3f}")


def test_rnn_training_loop_holds_steady_memory():
    m = measure_rnn_growth()
    print("\n" + _report(m))
    assert m["growth"] < GROWTH_BOUND, _report(m)
    assert m["growth_later"] < LATER_BOUND, _report(m)
    assert m["last_loss"] < m["first_loss"]  # and it trains


# -- backward frees the graph as it goes --------------------------------------------------------

def _chain(x):
    """x -> tanh -> *2 -> exp -> *3 -> sum, keeping weak references to the intermediates."""
    t = fg.tanh(x)
    m1 = t * 2.0
    m2 = fg.exp(m1)
    m3 = m2 * 3.0
    loss = m3.sum()
    refs = {name: weakref.ref(v) for name, v in
            [("t", t), ("m1", m1), ("m2", m2), ("m3", m3), ("m2.data", m2.data),
             ("m3.data", m3.data)]}
    return loss, refs


def test_intermediates_are_freed_by_backward_without_the_garbage_collector():
    gc.disable()
    try:
        loss, refs = _chain(Tensor(np.linspace(-1, 1, 5), autograd=True))
        assert all(r() is not None for r in refs.values()), "the graph holds its intermediates"
        loss.backward()
        alive = [name for name, r in refs.items() if r() is not None]
        assert not alive, f"still alive after backward: {alive}"
    finally:
        gc.enable()


def test_saved_values_are_released_when_backward_completes():
    """Backward is transactional: the graph is released once every VJP has run (so that a
    VJP raising leaves it usable), and then nothing downstream stays alive."""
    x = Tensor(np.linspace(-1, 1, 5), autograd=True)
    loss, refs = _chain(x)
    loss.backward()
    del loss
    assert not any(r() is not None for r in refs.values())
    assert x.grad is not None


def test_retain_graph_keeps_saved_values_until_the_graph_goes():
    loss, refs = _chain(Tensor(np.linspace(-1, 1, 5), autograd=True))
    loss.backward(retain_graph=True)
    assert all(r() is not None for r in refs.values())
    loss.backward()  # a second pass works, and frees
    assert all(r() is None for r in refs.values())


def test_dropping_the_output_frees_an_unused_graph():
    gc.disable()
    try:
        loss, refs = _chain(Tensor(np.linspace(-1, 1, 5), autograd=True))
        del loss
        assert all(r() is None for r in refs.values())
    finally:
        gc.enable()


def test_leaf_gradients_do_not_keep_the_graph_alive():
    x = Tensor(np.linspace(-1, 1, 5), autograd=True)
    loss, refs = _chain(x)
    loss.backward()
    del loss
    assert x.grad is not None and all(r() is None for r in refs.values())


@pytest.mark.parametrize("create_graph", [False, True])
def test_functional_grad_leaves_nothing_behind(create_graph):
    gc.disable()
    try:
        x = np.linspace(-1, 1, 5)
        holder = {}

        def f(v):
            h = fg.exp(fg.tanh(v) * 2.0)
            holder["h"] = weakref.ref(h)
            return fg.sum(h)

        g = fg.grad(f)(x) if not create_graph else fg.grad(lambda v: fg.sum(fg.grad(f)(v)))(x)
        assert np.isfinite(g).all() and holder["h"]() is None
    finally:
        gc.enable()


if __name__ == "__main__":
    print(_report(measure_rnn_growth()))
