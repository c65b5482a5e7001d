"""lstm_char: character LSTM, vocab 65, embedding 32, hidden 128, batch 32, 25-step BPTT.

Per step ``t`` (gate layout ``[i, f, g, o]``, as PyTorch's)::

    gates = E[ids[t]] @ W_ih + h @ W_hh + b
    i, f, o = sigmoid(gates[i, f, o]);  g = tanh(gates[g])
    c = f * c + i * g;  h = o * tanh(c)
    logits_t = h @ W_o + b_o

with zero initial state; the loss is the cross-entropy averaged over all 25 x 32 positions
against the next character ``ids[t + 1]``.
"""

from __future__ import annotations

import numpy as np

from .common import (
    autograd_impl, copy_params, fg_grad_array, fg_leaves, fungrad_impl, Impl, numpy_impl,
    Problem, scatter_add_rows, softmax_cross_entropy, torch_impl, fungrad_jitted, jax_sgd_impl,
    jax_cross_entropy,
)

NAME = "lstm_char"
VOCAB, EMBED, HIDDEN, BATCH, STEPS = 65, 32, 128, 32, 25
H = HIDDEN


def make_problem(seed: int = 0) -> Problem:
    """Uniform(+-1/sqrt(H)) weights as PyTorch initialises an LSTM; random character ids."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    k = 1.0 / np.sqrt(H)

    def u(*shape):
        return rng.uniform(-k, k, shape).astype(f32)

    params = {
        "E": rng.standard_normal((VOCAB, EMBED)).astype(f32),
        "W_ih": u(EMBED, 4 * H), "W_hh": u(H, 4 * H), "b": u(4 * H),
        "W_o": u(H, VOCAB), "b_o": np.zeros(VOCAB, f32),
    }
    data = {"ids": rng.integers(0, VOCAB, (STEPS + 1, BATCH)).astype(np.int64)}
    return Problem(NAME, params, data)


def numpy_step(problem: Problem, dtype=np.float32) -> Impl:
    """NumPy by hand.

    Everything that does not depend on the recurrence is batched over the 25 steps: the
    embedding gather and input projection (one matmul), the output layer and loss (one matmul
    over 800 rows), and in backward the weight gradients (one matmul each over the stored
    gate gradients).  The time loops only hold the ``h @ W_hh`` matmuls and gate math.
    """
    p = copy_params(problem, dtype)
    ids = problem.data["ids"]
    inputs, targets = ids[:-1], ids[1:].reshape(-1)
    n = STEPS * BATCH

    # gate activation as one affine-tanh-affine over the 4H columns:
    # sigmoid(x) = 0.5 * tanh(0.5 x) + 0.5 for i, f, o and plain tanh for g
    scale = np.full(4 * H, 0.5, dtype)
    scale[2 * H:3 * H] = 1.0
    shift = scale.copy()
    shift[2 * H:3 * H] = 0.0

    # Work buffers, allocated once: fresh multi-MB temporaries each step would cost page
    # faults (glibc hands large blocks back to the OS), which a hand-written loop avoids.
    acts = np.empty((STEPS, BATCH, 4 * H), dtype)     # gate pre-activations, then activations
    hs = np.zeros((STEPS + 1, BATCH, H), dtype)       # hs[0], cs[0]: the zero initial state
    cs = np.zeros((STEPS + 1, BATCH, H), dtype)
    tcs = np.empty((STEPS, BATCH, H), dtype)          # tanh(c_t)
    d_act = np.empty_like(acts)                       # activation derivatives
    o_dtc = np.empty_like(tcs)                        # o_t * tanh'(c_t)
    d_gates = np.empty_like(acts)
    rec = np.empty((BATCH, 4 * H), dtype)             # h @ W_hh
    v_g = np.zeros(4 * H, dtype)                      # 1 on the g block
    v_g[2 * H:3 * H] = 1.0

    def forward_backward():
        w_hh = p["W_hh"]
        x = p["E"].take(inputs.reshape(-1), axis=0)                # (n, EMBED)
        np.matmul(x, p["W_ih"], out=acts.reshape(n, 4 * H))
        np.add(acts, p["b"], out=acts)
        for t in range(STEPS):
            a = acts[t]
            np.matmul(hs[t], w_hh, out=rec)
            a += rec
            a *= scale
            np.tanh(a, out=a)
            a *= scale
            a += shift
            np.multiply(a[:, H:2 * H], cs[t], out=cs[t + 1])        # f * c
            cs[t + 1] += a[:, :H] * a[:, 2 * H:3 * H]              # + i * g
            np.tanh(cs[t + 1], out=tcs[t])
            np.multiply(a[:, 3 * H:], tcs[t], out=hs[t + 1])       # o * tanh(c)

        h_all = hs[1:].reshape(n, H)
        logits = h_all @ p["W_o"]
        logits += p["b_o"]
        loss, d_logits = softmax_cross_entropy(logits, targets)
        g = {"W_o": h_all.T @ d_logits, "b_o": d_logits.sum(axis=0)}
        d_h_out = (d_logits @ p["W_o"].T).reshape(STEPS, BATCH, H)

        # activation derivatives for all steps at once: (1 - a) * (a + v) is a * (1 - a)
        # (sigmoid') where v = 0 and 1 - a**2 (tanh') on the g block where v = 1
        np.subtract(1.0, acts, out=d_act)
        np.multiply(d_act, acts + v_g, out=d_act)
        np.multiply(tcs, tcs, out=o_dtc)
        np.subtract(1.0, o_dtc, out=o_dtc)
        np.multiply(o_dtc, acts[:, :, 3 * H:], out=o_dtc)

        w_hh_t = w_hh.T
        dc = np.zeros((BATCH, H), dtype)
        dh = d_h_out[STEPS - 1]
        for t in range(STEPS - 1, -1, -1):
            a, dg = acts[t], d_gates[t]
            dc += dh * o_dtc[t]
            np.multiply(dc, a[:, 2 * H:3 * H], out=dg[:, :H])       # d i
            np.multiply(dc, cs[t], out=dg[:, H:2 * H])              # d f
            np.multiply(dc, a[:, :H], out=dg[:, 2 * H:3 * H])       # d g
            np.multiply(dh, tcs[t], out=dg[:, 3 * H:])              # d o
            dc *= a[:, H:2 * H]                                     # through f to c_{t-1}
            dg *= d_act[t]
            if t:
                dh = dg @ w_hh_t
                dh += d_h_out[t - 1]

        dg_all = d_gates.reshape(n, 4 * H)
        g["W_hh"] = hs[:-1].reshape(n, H).T @ dg_all
        g["W_ih"] = x.T @ dg_all
        g["b"] = dg_all.sum(axis=0)
        g["E"] = scatter_add_rows(VOCAB, inputs, dg_all @ p["W_ih"].T)
        return loss, g

    return numpy_impl(p, forward_backward)


def torch_step(problem: Problem) -> Impl:
    """PyTorch eager with ``nn.LSTM`` (its fused CPU sequence kernel), F.embedding, Linear.

    nn.LSTM has two biases; ``bias_ih`` carries ``b`` and ``bias_hh`` is frozen at zero.
    Its weights are stored transposed, ``(4H, in)``.
    """
    import torch
    import torch.nn.functional as F

    lstm = torch.nn.LSTM(EMBED, H)
    prm = problem.params
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(prm["W_ih"].T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(prm["W_hh"].T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(prm["b"]))
        lstm.bias_hh_l0.zero_()
    lstm.bias_hh_l0.requires_grad_(False)
    E = torch.tensor(prm["E"], requires_grad=True)
    W_o = torch.tensor(prm["W_o"], requires_grad=True)
    b_o = torch.tensor(prm["b_o"], requires_grad=True)
    leaves = {"E": E, "W_ih": lstm.weight_ih_l0, "W_hh": lstm.weight_hh_l0,
              "b": lstm.bias_ih_l0, "W_o": W_o, "b_o": b_o}
    ids = torch.from_numpy(problem.data["ids"])
    inputs, targets = ids[:-1], ids[1:].reshape(-1)

    def loss_fn():
        out, _ = lstm(F.embedding(inputs, E))                      # (STEPS, BATCH, H)
        logits = torch.addmm(b_o, out.reshape(-1, H), W_o)
        return F.cross_entropy(logits, targets)

    def grad_of():
        return {"E": E.grad.numpy(), "W_ih": lstm.weight_ih_l0.grad.numpy().T,
                "W_hh": lstm.weight_hh_l0.grad.numpy().T, "b": lstm.bias_ih_l0.grad.numpy(),
                "W_o": W_o.grad.numpy(), "b_o": b_o.grad.numpy()}

    return torch_impl(problem, leaves, loss_fn, grad_of)


def autograd_step(problem: Problem) -> Impl:
    """HIPS autograd: the same per-step cell in ``autograd.numpy``, stacked output layer."""
    import autograd.numpy as anp

    from .common import autograd_logsumexp

    p = copy_params(problem)
    ids = problem.data["ids"]
    inputs, targets = ids[:-1], ids[1:].reshape(-1)
    rows = np.arange(STEPS * BATCH)

    def sig(z):
        return 0.5 * anp.tanh(0.5 * z) + 0.5

    def loss_fn(q):
        h = c = np.zeros((BATCH, H), np.float32)
        hs = []
        for t in range(STEPS):
            z = anp.dot(q["E"][inputs[t]], q["W_ih"]) + anp.dot(h, q["W_hh"]) + q["b"]
            i, f = sig(z[:, :H]), sig(z[:, H:2 * H])
            g, o = anp.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
            c = f * c + i * g
            h = o * anp.tanh(c)
            hs.append(h)
        logits = anp.dot(anp.concatenate(hs, axis=0), q["W_o"]) + q["b_o"]
        return anp.mean(autograd_logsumexp(logits, axis=1) - logits[rows, targets])

    return autograd_impl(p, loss_fn)


def fungrad_step(problem: Problem) -> Impl:
    """fungrad with ``fg.nn.LSTM`` (as torch uses ``nn.LSTM``): one ``affine`` input
    projection over all steps and one ``lstm_sequence`` op; ``index_select``, one output
    ``affine`` over all steps, CE. Its weights are the problem's (same (in, 4H) layout)."""
    import fungrad as fg

    p = fg_leaves(problem)
    ids = problem.data["ids"]
    inputs, targets = ids[:-1], ids[1:].reshape(-1)
    lstm = fg.nn.LSTM(EMBED, H, rng=0, dtype=np.float32)
    lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_l0 = p["W_ih"], p["W_hh"], p["b"]

    def loss_fn():
        out, _ = lstm(p["E"].index_select(inputs))                   # (STEPS, BATCH, H)
        logits = fg.affine(out.reshape((STEPS * BATCH, H)), p["W_o"], p["b_o"])
        return fg.cross_entropy(logits, targets)

    return fungrad_impl(list(p.values()), loss_fn,
                        lambda: {k: fg_grad_array(t) for k, t in p.items()})


def fungrad_jit_step(problem: Problem) -> Impl:
    """fungrad's step above, traced and compiled by ``fg.jit``."""
    return fungrad_jitted(fungrad_step(problem))


def jax_step(problem: Problem) -> Impl:
    """JAX: the input projection batched, ``lax.scan`` over the 25 cell steps, one output
    matmul, CE and SGD in one ``jax.jit``."""
    import jax
    import jax.numpy as jnp

    ids = problem.data["ids"]
    inputs, targets = jnp.asarray(ids[:-1]), jnp.asarray(ids[1:].reshape(-1))

    def loss_fn(p):
        xs = p["E"][inputs] @ p["W_ih"] + p["b"]                    # (STEPS, BATCH, 4H)

        def cell(carry, xg):
            h, c = carry
            z = xg + h @ p["W_hh"]
            i, f = jax.nn.sigmoid(z[:, :H]), jax.nn.sigmoid(z[:, H:2 * H])
            g, o = jnp.tanh(z[:, 2 * H:3 * H]), jax.nn.sigmoid(z[:, 3 * H:])
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), h

        zero = jnp.zeros((BATCH, H), jnp.float32)
        _, hs = jax.lax.scan(cell, (zero, zero), xs)
        return jax_cross_entropy(hs.reshape(-1, H) @ p["W_o"] + p["b_o"], targets)

    return jax_sgd_impl(problem.params, loss_fn)
