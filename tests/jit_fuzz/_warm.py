"""Imported once by the sandbox's forkserver, before any fork: fungrad, the checker, and one
small program run eagerly and under fg.jit, so that each batch child starts with Numba's
kernels already loaded (a restart after a crash costs a fork, not seconds of loading)."""

import numpy as np

import fungrad as fg

from . import check, generator  # noqa: F401


def _warm() -> None:
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    w = np.linspace(0.5, 1.5, 12).reshape(3, 4)

    def loss(x, w):
        h = fg.tanh(x @ w)
        return fg.mean(fg.exp(h[:, ::-1]) * fg.sigmoid(h)) + fg.sum(fg.log1p(h * h))

    for dtype in (np.float64, np.float32):
        fg.jit(fg.value_and_grad(loss, argnums=(0, 1)))(x.astype(dtype), w.astype(dtype))


_warm()
