"""mlp: 784-256 tanh-10 classifier, softmax cross-entropy (mean), batch 128.

Dense, BLAS-bound: two large matmuls forward, two backward (no input gradient is needed).
"""

from __future__ import annotations

import numpy as np

from .common import (
    autograd_impl, copy_params, fg_grad_array, fg_leaves, fungrad_impl, Impl, numpy_impl,
    Problem, softmax_cross_entropy, torch_impl, torch_leaves, fungrad_jitted, jax_sgd_impl,
    jax_cross_entropy,
)

NAME = "mlp"
N_IN, N_HID, N_OUT, BATCH = 784, 256, 10, 128


def make_problem(seed: int = 0) -> Problem:
    """Weights with 1/sqrt(fan_in) scale, a standard-normal batch and random labels."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    params = {
        "W1": (rng.standard_normal((N_IN, N_HID)) / np.sqrt(N_IN)).astype(f32),
        "b1": np.zeros(N_HID, f32),
        "W2": (rng.standard_normal((N_HID, N_OUT)) / np.sqrt(N_HID)).astype(f32),
        "b2": np.zeros(N_OUT, f32),
    }
    data = {
        "x": rng.standard_normal((BATCH, N_IN)).astype(f32),
        "y": rng.integers(0, N_OUT, BATCH).astype(np.int64),
    }
    return Problem(NAME, params, data)


def numpy_step(problem: Problem, dtype=np.float32) -> Impl:
    """NumPy by hand: forward, manual backprop, in-place SGD."""
    p = copy_params(problem, dtype)
    x = problem.data["x"].astype(dtype)
    y = problem.data["y"]

    # gradient and activation buffers, allocated once (as a hand-written loop would)
    g = {k: np.empty_like(v) for k, v in p.items()}
    h = np.empty((BATCH, N_HID), dtype)
    dz = np.empty((BATCH, N_HID), dtype)

    def forward_backward():
        np.matmul(x, p["W1"], out=h)
        np.add(h, p["b1"], out=h)
        np.tanh(h, out=h)
        logits = h @ p["W2"]
        logits += p["b2"]
        loss, d_logits = softmax_cross_entropy(logits, y)
        np.matmul(h.T, d_logits, out=g["W2"])
        np.sum(d_logits, axis=0, out=g["b2"])
        np.matmul(d_logits, p["W2"].T, out=dz)
        np.multiply(h, h, out=h)    # dz *= 1 - h**2, with h reused as scratch
        np.subtract(1.0, h, out=h)
        np.multiply(dz, h, out=dz)
        np.matmul(x.T, dz, out=g["W1"])
        np.sum(dz, axis=0, out=g["b1"])
        return loss, g

    return numpy_impl(p, forward_backward)


def torch_step(problem: Problem) -> Impl:
    """PyTorch eager: addmm + tanh + F.cross_entropy, torch.optim.SGD."""
    import torch
    import torch.nn.functional as F

    p = torch_leaves(problem)
    x = torch.from_numpy(problem.data["x"])
    y = torch.from_numpy(problem.data["y"])

    def loss_fn():
        h = torch.tanh(torch.addmm(p["b1"], x, p["W1"]))
        return F.cross_entropy(torch.addmm(p["b2"], h, p["W2"]), y)

    return torch_impl(problem, p, loss_fn)


def autograd_step(problem: Problem) -> Impl:
    """HIPS autograd on a pure loss function of a dict of weights."""
    import autograd.numpy as anp

    from .common import autograd_logsumexp as logsumexp

    p = copy_params(problem)
    x, y = problem.data["x"], problem.data["y"]
    rows = np.arange(len(y))

    def loss_fn(q):
        h = anp.tanh(anp.dot(x, q["W1"]) + q["b1"])
        logits = anp.dot(h, q["W2"]) + q["b2"]
        return anp.mean(logsumexp(logits, axis=1) - logits[rows, y])

    return autograd_impl(p, loss_fn)


def fungrad_step(problem: Problem) -> Impl:
    """fungrad, object style: Tensors with autograd=True, the fused ``affine`` (``x @ W + b``,
    as torch's addmm), fg.tanh, fg.cross_entropy."""
    import fungrad as fg

    p = fg_leaves(problem)
    x, y = problem.data["x"], problem.data["y"]

    def loss_fn():
        h = fg.tanh(fg.affine(x, p["W1"], p["b1"]))
        return fg.cross_entropy(fg.affine(h, p["W2"], p["b2"]), y)

    return fungrad_impl(list(p.values()), loss_fn,
                        lambda: {k: fg_grad_array(t) for k, t in p.items()})


def fungrad_jit_step(problem: Problem) -> Impl:
    """fungrad's step above, traced and compiled by ``fg.jit``."""
    return fungrad_jitted(fungrad_step(problem))


def jax_step(problem: Problem) -> Impl:
    """JAX: ``jax.jit`` of value-and-grad and the SGD update (parameters donated)."""
    import jax.numpy as jnp

    x, y = jnp.asarray(problem.data["x"]), jnp.asarray(problem.data["y"])

    def loss_fn(p):
        h = jnp.tanh(x @ p["W1"] + p["b1"])
        return jax_cross_entropy(h @ p["W2"] + p["b2"], y)

    return jax_sgd_impl(problem.params, loss_fn)
