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
