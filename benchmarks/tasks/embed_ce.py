"""embed_ce: sum of 16 embeddings from a 20000x64 table, Linear 64->100, cross-entropy.

``ids`` is (512, 16), drawn from a Zipf-like distribution (p(rank) ~ 1/rank over a random
permutation of the table) so that repeated ids are common: the cost of a step is the
scatter-add of the table gradient (8192 rows of 64 into 20000 rows, ~2900 distinct) and the
dense SGD update of the 20000x64 table.
"""

from __future__ import annotations

import numpy as np

from .common import (
    autograd_impl, copy_params, fg_grad_array, fg_leaves, fungrad_impl, Impl, numpy_impl,
    Problem, scatter_add_rows, softmax_cross_entropy, torch_impl, torch_leaves, fungrad_jitted,
    jax_sgd_impl, jax_cross_entropy,
)

NAME = "embed_ce"
VOCAB, DIM, BATCH, BAG, CLASSES = 20000, 64, 512, 16, 100


def make_problem(seed: int = 0) -> Problem:
    """Small-normal table, 1/sqrt(fan_in) linear layer, Zipf-like ids, random labels."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    params = {
        "E": (0.1 * rng.standard_normal((VOCAB, DIM))).astype(f32),
        "W": (rng.standard_normal((DIM, CLASSES)) / np.sqrt(DIM)).astype(f32),
        "b": np.zeros(CLASSES, f32),
    }
    prob = 1.0 / np.arange(1, VOCAB + 1)
    prob /= prob.sum()
    ranks = rng.choice(VOCAB, size=(BATCH, BAG), p=prob)
    ids = rng.permutation(VOCAB)[ranks].astype(np.int64)
    data = {"ids": ids, "y": rng.integers(0, CLASSES, BATCH).astype(np.int64)}
    return Problem(NAME, params, data, meta={"distinct_ids": int(np.unique(ids).size)})


def numpy_step(problem: Problem, dtype=np.float32) -> Impl:
    """NumPy by hand: column-wise gather-sum, sort-based scatter-add, dense SGD.

    The table gradient is materialised densely, as every framework column does; a row-sparse
    update (``E[unique] -= lr * sums``) would be faster still but is a different algorithm.
    """
    p = copy_params(problem, dtype)
    ids, y = problem.data["ids"], problem.data["y"]
    g_table = np.empty_like(p["E"])                            # reused gradient buffer

    def forward_backward():
        table = p["E"]
        s = table.take(ids[:, 0], axis=0)                     # (BATCH, DIM)
        for j in range(1, BAG):                                # 16 row gathers beat one
            s += table.take(ids[:, j], axis=0)                # (BATCH, BAG, DIM) temporary
        logits = s @ p["W"]
        logits += p["b"]
        loss, d_logits = softmax_cross_entropy(logits, y)
        ds = d_logits @ p["W"].T
        g = {"W": s.T @ d_logits, "b": d_logits.sum(axis=0)}
        # every id of row i receives ds[i]: scatter-add the repeated rows into the table
        g["E"] = scatter_add_rows(VOCAB, ids, np.repeat(ds, BAG, axis=0), out=g_table)
        return loss, g

    return numpy_impl(p, forward_backward)


def torch_step(problem: Problem) -> Impl:
    """PyTorch eager: ``F.embedding_bag(mode="sum")`` (dense gradient), Linear, CE."""
    import torch
    import torch.nn.functional as F

    p = torch_leaves(problem)
    ids = torch.from_numpy(problem.data["ids"])
    y = torch.from_numpy(problem.data["y"])

    def loss_fn():
        s = F.embedding_bag(ids, p["E"], mode="sum")
        return F.cross_entropy(torch.addmm(p["b"], s, p["W"]), y)

    return torch_impl(problem, p, loss_fn)


def autograd_step(problem: Problem) -> Impl:
    """HIPS autograd: ``E[ids].sum(1)``; its indexing VJP scatters with ``np.add.at``."""
    import autograd.numpy as anp

    from .common import autograd_logsumexp

    p = copy_params(problem)
    ids, y = problem.data["ids"], problem.data["y"]
    rows = np.arange(BATCH)

    def loss_fn(q):
        s = anp.sum(q["E"][ids], axis=1)
        logits = anp.dot(s, q["W"]) + q["b"]
        return anp.mean(autograd_logsumexp(logits, axis=1) - logits[rows, y])

    return autograd_impl(p, loss_fn)


def fungrad_step(problem: Problem) -> Impl:
    """fungrad: the fused ``embedding_bag(E, ids)`` (torch's embedding_bag: no (512, 16, 64)
    gather), the fused ``affine`` (addmm), CE."""
    import fungrad as fg

    p = fg_leaves(problem)
    ids, y = problem.data["ids"], problem.data["y"]

    def loss_fn():
        s = fg.embedding_bag(p["E"], ids)
        return fg.cross_entropy(fg.affine(s, p["W"], p["b"]), y)

    return fungrad_impl(list(p.values()), loss_fn,
                        lambda: {k: fg_grad_array(t) for k, t in p.items()})


def fungrad_jit_step(problem: Problem) -> Impl:
    """fungrad's step above, traced and compiled by ``fg.jit``."""
    return fungrad_jitted(fungrad_step(problem))


def jax_step(problem: Problem) -> Impl:
    """JAX: ``E[ids].sum(1)`` (XLA fuses the gather and the sum), Linear, CE, SGD."""
    import jax.numpy as jnp

    ids, y = jnp.asarray(problem.data["ids"]), jnp.asarray(problem.data["y"])

    def loss_fn(p):
        s = p["E"][ids].sum(axis=1)
        return jax_cross_entropy(s @ p["W"] + p["b"], y)

    return jax_sgd_impl(problem.params, loss_fn)
