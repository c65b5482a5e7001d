"""deep_chain: ``x = tanh(x * w_i + b_i)`` for 3000 layers of 64-vectors, loss = sum(x).

Three tiny elementwise ops per layer, 9000 recorded ops per step: this measures per-op
overhead of the engine (recording, backward dispatch, optimizer loop over 6000 tensors).
torch and fungrad hold one leaf tensor per layer weight, as a 3000-layer model would
(indexing one stacked leaf would make torch's backward write a dense (3000, 64) zero
gradient per layer); autograd indexes the stacked arrays, its cheap layout.  Gradients are
reported stacked as (3000, 64) arrays ``w`` and ``b``.
"""

from __future__ import annotations

import numpy as np

from .common import (
    autograd_impl, copy_params, fg_grad_array, fungrad_impl, Impl, LR, numpy_impl, Problem,
    torch_impl, fungrad_jitted, jax_sgd_impl,
)

NAME = "deep_chain"
LAYERS, WIDTH = 3000, 64


def make_problem(seed: int = 0) -> Problem:
    """w ~ N(1, 0.1), b ~ N(0, 0.1): the signal neither saturates nor dies over 3000 layers."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    params = {
        "w": rng.normal(1.0, 0.1, (LAYERS, WIDTH)).astype(f32),
        "b": rng.normal(0.0, 0.1, (LAYERS, WIDTH)).astype(f32),
    }
    data = {"x": rng.standard_normal(WIDTH).astype(f32)}
    return Problem(NAME, params, data)


def numpy_step(problem: Problem, dtype=np.float32) -> Impl:
    """NumPy by hand.

    Forward is an unavoidable Python loop of three in-place ufunc calls per layer into a
    preallocated (LAYERS + 1, WIDTH) activation array.  Backward needs no loop: with
    ``a_i = w_i * (1 - y_i**2)`` the cotangent reaching layer ``i`` is the product of the
    ``a_j`` of the layers above it, i.e. a reversed ``cumprod`` over the layer axis, and the
    weight gradients are then two vectorised products.  Work buffers are allocated once.
    """
    p = copy_params(problem, dtype)
    x0 = problem.data["x"].astype(dtype)
    ys = np.empty((LAYERS + 1, WIDTH), dtype)               # activations, ys[0] = x
    dtanh, carry, gw, gb = (np.empty((LAYERS, WIDTH), dtype) for _ in range(4))

    def forward_backward():
        w, b = p["w"], p["b"]
        ys[0] = x0
        mul, add, tanh = np.multiply, np.add, np.tanh
        for i in range(LAYERS):
            y = ys[i + 1]
            mul(ys[i], w[i], out=y)
            add(y, b[i], out=y)
            tanh(y, out=y)
        loss = float(ys[LAYERS].sum(dtype=np.float64))

        np.multiply(ys[1:], ys[1:], out=dtanh)
        np.subtract(1.0, dtanh, out=dtanh)                  # 1 - y_i**2
        carry[-1] = 1.0                                     # carry[i] = dL/dy_{i+1}
        np.multiply(dtanh[:0:-1], w[:0:-1], out=carry[-2::-1])   # a_{i+1}, reversed
        np.cumprod(carry[::-1], axis=0, out=carry[::-1])
        np.multiply(carry, dtanh, out=gb)                   # dL/d(pre-activation)
        np.multiply(gb, ys[:-1], out=gw)
        return loss, {"w": gw, "b": gb}

    return numpy_impl(p, forward_backward)


def torch_step(problem: Problem) -> Impl:
    """PyTorch eager: 6000 leaf tensors, ``torch.tanh(x * w + b)`` per layer, foreach SGD."""
    import torch

    ws = [torch.tensor(v, requires_grad=True) for v in problem.params["w"]]
    bs = [torch.tensor(v, requires_grad=True) for v in problem.params["b"]]
    x0 = torch.from_numpy(problem.data["x"])
    leaves = {f"w{i}": t for i, t in enumerate(ws)} | {f"b{i}": t for i, t in enumerate(bs)}

    def loss_fn():
        x = x0
        for w, b in zip(ws, bs):
            x = torch.tanh(x * w + b)
        return x.sum()

    def grad_of():
        return {"w": torch.stack([w.grad for w in ws]).numpy(),
                "b": torch.stack([b.grad for b in bs]).numpy()}

    return torch_impl(problem, leaves, loss_fn, grad_of)


def autograd_step(problem: Problem) -> Impl:
    """HIPS autograd on the stacked (3000, 64) arrays, indexed per layer.

    autograd accumulates the gradients of ``w[i]`` lazily (sparse), so this is its cheap
    layout; a list of 3000 arrays per weight makes its backward quadratic (~26 s per step).
    """
    import autograd.numpy as anp

    p = copy_params(problem)
    x0 = problem.data["x"]

    def loss_fn(q):
        w, b = q["w"], q["b"]
        x = x0
        for i in range(LAYERS):
            x = anp.tanh(x * w[i] + b[i])
        return anp.sum(x)

    return autograd_impl(p, loss_fn)


def fungrad_step(problem: Problem) -> Impl:
    """fungrad: 6000 leaf Tensors, ``fg.tanh(x * w + b)`` per layer."""
    import fungrad as fg
    from fungrad import Tensor

    ws = [Tensor(v.copy(), autograd=True) for v in problem.params["w"]]
    bs = [Tensor(v.copy(), autograd=True) for v in problem.params["b"]]
    x0 = Tensor(problem.data["x"])      # a Tensor, so that `x0 * w` is fungrad's operator

    def loss_fn():
        x = x0
        for w, b in zip(ws, bs):
            x = fg.tanh(x * w + b)
        return x.sum()

    def grad_of():
        return {"w": np.stack([fg_grad_array(w) for w in ws]),
                "b": np.stack([fg_grad_array(b) for b in bs])}

    return fungrad_impl(ws + bs, loss_fn, grad_of)


def fungrad_jit_step(problem: Problem) -> Impl:
    """fungrad's step above (6000 leaf Tensors, object style), traced and compiled by
    ``fg.jit``."""
    return fungrad_jitted(fungrad_step(problem))


def fungrad_jit_stacked_step(problem: Problem) -> Impl:
    """fungrad, functional style as JAX's scan sees it: the stacked (3000, 64) arrays indexed
    per layer, ``fg.value_and_grad`` and the SGD update in one ``fg.jit`` (params donated)."""
    import fungrad as fg
    from fungrad.jit import jit

    state = {"p": copy_params(problem)}
    x0 = problem.data["x"]

    def loss(q):
        x = x0
        for i in range(LAYERS):
            x = fg.tanh(x * q["w"][i] + q["b"][i])
        return fg.sum(x)

    @jit(donate_argnums=0)
    def update(q):
        value, g = fg.value_and_grad(loss)(q)
        return value, {k: q[k] - LR * g[k] for k in q}

    def step():
        state["p"] = update(state["p"])[1]

    step.jitted = update  # for benchmarks/jit_times.py

    value_and_grad = jit(fg.value_and_grad(loss))

    def grads():
        value, g = value_and_grad(state["p"])
        return float(value), {k: v.astype(np.float64) for k, v in g.items()}

    return Impl(step, grads)


def jax_step(problem: Problem) -> Impl:
    """JAX: ``lax.scan`` over the stacked layers (jitting the unrolled 3000-layer chain runs
    out of memory), value-and-grad and SGD in one ``jax.jit``."""
    import jax
    import jax.numpy as jnp

    x0 = jnp.asarray(problem.data["x"])

    def loss_fn(p):
        def layer(x, wb):
            return jnp.tanh(x * wb[0] + wb[1]), None

        x, _ = jax.lax.scan(layer, x0, (p["w"], p["b"]))
        return jnp.sum(x)

    return jax_sgd_impl(problem.params, loss_fn)
