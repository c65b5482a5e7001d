"""Programs written the way a user writes them, shared by the jit tests and the benchmarks
(``benchmarks/jit_verify_cost.py`` imports this file rather than copying it)."""

from __future__ import annotations

import numpy as np

import fungrad as fg


def lstm_loss(P: dict, xs, ys):
    """The summed cross-entropy of an LSTM unrolled in Python over ``xs`` (T, B, I), predicting
    ``ys`` (T, B) at every step: ``P`` holds ``Wx`` (I, 4H), ``Wh`` (H, 4H), ``b`` and ``Wo``."""
    T, B = np.shape(ys)
    H = P["Wh"].shape[0]
    h, c, total = np.zeros((B, H)), np.zeros((B, H)), 0.0
    for t in range(T):
        a = xs[t] @ P["Wx"] + h @ P["Wh"] + P["b"]
        i, f, o = (fg.sigmoid(a[:, k * H:(k + 1) * H]) for k in range(3))
        c = f * c + i * fg.tanh(a[:, 3 * H:])
        h = o * fg.tanh(c)
        total = total + fg.cross_entropy(h @ P["Wo"], ys[t])
    return total


def stacked_chain(rng, layers: int, width: int, dtype=np.float64, lr: float = 0.01):
    """Issue 19's unrolled chain ``x = tanh(x * w[i] + b[i])`` over stacked parameters:
    ``(params, loss, step)``, ``step(p)`` being ``value_and_grad(loss)`` and the SGD update
    with ``lr`` (``benchmarks/trace_cost.py`` builds the benchmark's own)."""
    p = {"w": rng.normal(1, .1, (layers, width)).astype(dtype),
         "b": rng.normal(0, .1, (layers, width)).astype(dtype)}
    x0 = rng.standard_normal(width).astype(dtype)

    def loss(q):
        x = x0
        for i in range(layers):
            x = fg.tanh(x * q["w"][i] + q["b"][i])
        return fg.sum(x)

    def step(q):
        value, g = fg.value_and_grad(loss)(q)
        return value, {k: q[k] - lr * g[k] for k in q}

    return p, loss, step
