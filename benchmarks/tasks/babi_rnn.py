"""babi_rnn: the book's chapter-13 bAbI model, Embedding(20,16) + RNNCell(16,16,20).

Per time step ``t`` (5 steps, batch 100)::

    x_t    = E[ids[:, t]]
    hidden = sigmoid(x_t @ W_ih + b_ih + hidden @ W_hh + b_hh)
    output = hidden @ W_ho + b_ho

and the loss is the cross-entropy (mean over the batch) of the last step's output against
``ids[:, 5]``, as the book's training loop does.  Tiny arrays: this measures per-op overhead.
"""

from __future__ import annotations

import numpy as np

from .common import (
    autograd_impl, copy_params, fg_grad_array, fg_leaves, fungrad_impl, Impl, numpy_impl,
    Problem, scatter_add_rows, sigmoid, softmax_cross_entropy, torch_impl, torch_leaves,
    fungrad_jitted, jax_sgd_impl, jax_cross_entropy,
)

NAME = "babi_rnn"
VOCAB, EMBED, HIDDEN, STEPS, BATCH = 20, 16, 16, 5, 100


def make_problem(seed: int = 0) -> Problem:
    """Book-style init (``randn * sqrt(2 / fan_in)``, zero biases) and random id sequences."""
    rng = np.random.default_rng(seed)
    f32 = np.float32

    def w(n_in, n_out):
        return (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(f32)

    params = {
        "E": ((rng.random((VOCAB, EMBED)) - 0.5) / EMBED).astype(f32),
        "W_ih": w(EMBED, HIDDEN), "b_ih": np.zeros(HIDDEN, f32),
        "W_hh": w(HIDDEN, HIDDEN), "b_hh": np.zeros(HIDDEN, f32),
        "W_ho": w(HIDDEN, VOCAB), "b_ho": np.zeros(VOCAB, f32),
    }
    data = {"ids": rng.integers(0, VOCAB, (BATCH, STEPS + 1)).astype(np.int64)}
    return Problem(NAME, params, data)


def numpy_step(problem: Problem, dtype=np.float32) -> Impl:
    """NumPy by hand.

    The embedding lookups and the input projection ``x_t @ W_ih`` do not depend on the
    recurrence, so they are done for all steps in one gather and one matmul, forward and
    backward; only ``hidden @ W_hh`` stays in the time loop.
    """
    p = copy_params(problem, dtype)
    ids = problem.data["ids"]
    inputs = np.ascontiguousarray(ids[:, :STEPS].T)          # (T, B)
    target = ids[:, STEPS]

    def forward_backward():
        x = p["E"].take(inputs.reshape(-1), axis=0)            # (T*B, EMBED)
        pre = x @ p["W_ih"]
        pre += p["b_ih"] + p["b_hh"]
        pre = pre.reshape(STEPS, BATCH, HIDDEN)
        hs = np.zeros((STEPS + 1, BATCH, HIDDEN), dtype)      # hs[0] is the initial hidden
        for t in range(STEPS):
            z = hs[t] @ p["W_hh"]
            z += pre[t]
            sigmoid(z, out=hs[t + 1])
        out = hs[STEPS] @ p["W_ho"]
        out += p["b_ho"]
        loss, d_out = softmax_cross_entropy(out, target)

        g = {"W_ho": hs[STEPS].T @ d_out, "b_ho": d_out.sum(axis=0)}
        dz = hs[1:] * (1.0 - hs[1:])                            # sigmoid' for every step
        dh = d_out @ p["W_ho"].T
        w_hh_t = p["W_hh"].T
        for t in range(STEPS - 1, -1, -1):
            dz[t] *= dh
            if t:
                dh = dz[t] @ w_hh_t
        dz2 = dz.reshape(-1, HIDDEN)
        g["W_hh"] = hs[:-1].reshape(-1, HIDDEN).T @ dz2
        g["W_ih"] = x.T @ dz2
        g["b_ih"] = dz2.sum(axis=0)
        g["b_hh"] = g["b_ih"].copy()
        g["E"] = scatter_add_rows(VOCAB, inputs, dz2 @ p["W_ih"].T)
        return loss, g

    return numpy_impl(p, forward_backward)


def torch_step(problem: Problem) -> Impl:
    """PyTorch eager, written like the book's loop: a lookup and a cell call per step."""
    import torch
    import torch.nn.functional as F

    p = torch_leaves(problem)
    ids = problem.data["ids"]
    cols = [torch.from_numpy(np.ascontiguousarray(ids[:, t])) for t in range(STEPS + 1)]

    def loss_fn():
        h = torch.zeros(BATCH, HIDDEN)
        for t in range(STEPS):
            x = F.embedding(cols[t], p["E"])
            h = torch.sigmoid(torch.addmm(p["b_ih"], x, p["W_ih"])
                              + torch.addmm(p["b_hh"], h, p["W_hh"]))
        out = torch.addmm(p["b_ho"], h, p["W_ho"])
        return F.cross_entropy(out, cols[STEPS])

    return torch_impl(problem, p, loss_fn)


def autograd_step(problem: Problem) -> Impl:
    """HIPS autograd, same per-step structure as the torch version."""
    import autograd.numpy as anp

    from .common import autograd_logsumexp

    p = copy_params(problem)
    ids = problem.data["ids"]
    cols = [np.ascontiguousarray(ids[:, t]) for t in range(STEPS + 1)]
    rows = np.arange(BATCH)

    def loss_fn(q):
        h = np.zeros((BATCH, HIDDEN), np.float32)
        for t in range(STEPS):
            x = q["E"][cols[t]]
            z = anp.dot(x, q["W_ih"]) + q["b_ih"] + anp.dot(h, q["W_hh"]) + q["b_hh"]
            h = 0.5 * anp.tanh(0.5 * z) + 0.5
        out = anp.dot(h, q["W_ho"]) + q["b_ho"]
        return anp.mean(autograd_logsumexp(out, axis=1) - out[rows, cols[STEPS]])

    return autograd_impl(p, loss_fn)


def fungrad_step(problem: Problem) -> Impl:
    """fungrad in the book's style: ``index_select`` per step, sigmoid cell whose two linear
    maps are the fused ``affine`` (as nn.Linear and RNNCell use, and torch's addmm),
    cross_entropy."""
    import fungrad as fg

    p = fg_leaves(problem)
    ids = problem.data["ids"]
    cols = [np.ascontiguousarray(ids[:, t]) for t in range(STEPS + 1)]

    def loss_fn():
        h = np.zeros((BATCH, HIDDEN), np.float32)
        for t in range(STEPS):
            x = p["E"].index_select(cols[t])
            h = fg.sigmoid(fg.affine(x, p["W_ih"], p["b_ih"]) + fg.affine(h, p["W_hh"], p["b_hh"]))
        return fg.cross_entropy(fg.affine(h, p["W_ho"], p["b_ho"]), cols[STEPS])

    return fungrad_impl(list(p.values()), loss_fn,
                        lambda: {k: fg_grad_array(t) for k, t in p.items()})


def fungrad_jit_step(problem: Problem) -> Impl:
    """fungrad's step above, traced and compiled by ``fg.jit``."""
    return fungrad_jitted(fungrad_step(problem))


def jax_step(problem: Problem) -> Impl:
    """JAX: the same per-step structure, unrolled over the 5 steps inside ``jax.jit``."""
    import jax
    import jax.numpy as jnp

    ids = problem.data["ids"]
    cols = [jnp.asarray(np.ascontiguousarray(ids[:, t])) for t in range(STEPS + 1)]

    def loss_fn(p):
        h = jnp.zeros((BATCH, HIDDEN), jnp.float32)
        for t in range(STEPS):
            x = p["E"][cols[t]]
            h = jax.nn.sigmoid(x @ p["W_ih"] + p["b_ih"] + h @ p["W_hh"] + p["b_hh"])
        return jax_cross_entropy(h @ p["W_ho"] + p["b_ho"], cols[STEPS])

    return jax_sgd_impl(problem.params, loss_fn)
