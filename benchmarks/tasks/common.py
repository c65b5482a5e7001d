"""Shared pieces of the benchmark tasks.

Every task module exposes ``make_problem(seed)`` and one factory per implementation
(``numpy_step``, ``torch_step``, ``autograd_step``, ``fungrad_step``).  A factory takes the
problem, copies its initial weights (so implementations never share state) and returns an
:class:`Impl`:

* ``Impl.step()`` runs one full training step: forward, backward and an SGD update
  (``LR``) of its own copy of the weights.
* ``Impl.grads()`` runs forward and backward at the current weights *without* updating them
  and returns ``(loss, {name: gradient})`` with the gradients as float64 NumPy arrays in the
  problem's parameter layout, for the cross-check against the float64 NumPy reference.

Peer libraries (torch, autograd, fungrad) are imported inside the factories only, so a task
module imports with NumPy alone and a missing peer just skips its column.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

LR = 0.01  # SGD learning rate used by every task and every implementation


@dataclass
class Problem:
    """Initial weights (float32) and data (float32 inputs, int64 ids/targets) of one task."""

    name: str
    params: dict[str, np.ndarray]
    data: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)


@dataclass
class Impl:
    """One implementation of a task, bound to its own copy of the weights."""

    step: Callable[[], None]
    grads: Callable[[], tuple[float, dict[str, np.ndarray]]]
    #: fungrad only: ``grads`` with this loss-and-backward function swapped in (fg.jit's check)
    with_backward: Callable[[Callable], Callable] | None = None


def copy_params(problem: Problem, dtype=None) -> dict[str, np.ndarray]:
    """Fresh, contiguous copies of the problem's weights (in ``dtype`` if given)."""
    return {k: np.array(v, dtype=dtype or v.dtype, copy=True, order="C")
            for k, v in problem.params.items()}


def as_float64(problem: Problem) -> Problem:
    """The same problem with float64 weights and float inputs (ids untouched)."""
    def f64(d):
        return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in d.items()}

    return Problem(problem.name, f64(problem.params), f64(problem.data), dict(problem.meta))


def max_rel_error(grads: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    """Largest normwise relative error over the parameters.

    For each parameter: ``max|g - ref| / max|ref|`` (an elementwise ratio is meaningless where
    the reference gradient is ~0); the result is the maximum over parameters.
    """
    worst = 0.0
    for name, r in ref.items():
        g = np.asarray(grads[name], dtype=np.float64)
        if g.shape != r.shape:
            raise ValueError(f"gradient {name!r}: shape {g.shape}, reference {r.shape}")
        scale = float(np.max(np.abs(r))) or 1.0
        worst = max(worst, float(np.max(np.abs(g - r))) / scale)
    return worst


# --------------------------------------------------------------------------------------------
# NumPy building blocks for the by-hand implementations
# --------------------------------------------------------------------------------------------


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid as ``0.5 * tanh(x / 2) + 0.5``: no overflow, keeps the dtype."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the rows of ``logits`` and its gradient w.r.t. them.

    Numerically stable (max subtracted); the gradient is ``(softmax - onehot) / n`` in the
    dtype of ``logits``.
    """
    n, c = logits.shape
    flat = np.arange(0, n * c, c) + targets        # positions of the targets in z.ravel()
    z = logits - logits.max(axis=1, keepdims=True)
    zf = z.reshape(-1)
    picked = zf.take(flat)
    np.exp(z, out=z)
    s = z.sum(axis=1)
    loss = float((np.log(s).sum() - picked.sum()) / n)
    z *= (1.0 / n / s)[:, None]                    # softmax / n
    zf[flat] -= 1.0 / n
    return loss, z


def scatter_add_rows(n_rows: int, index: np.ndarray, values: np.ndarray,
                     levels: int = 8, out: np.ndarray | None = None) -> np.ndarray:
    """``out[index[k]] += values[k]`` into a zero ``(n_rows, D)`` array, in pure NumPy.

    ``np.add.at`` is the obvious spelling and the slow one.  Small tables use a one-hot
    matmul.  Large tables sort the indices (a radix sort on uint16 keys when the table has at
    most 65536 rows), then add the sorted rows level by level: level ``k`` holds the ``k``-th
    occurrence of each index, so its indices are distinct and a fancy-indexed ``+=`` is exact.
    Indices occurring more than ``levels`` times (the head of a Zipf distribution) are summed
    with one ``np.add.reduceat`` over their gathered rows.  ``out``, if given, is a
    ``(n_rows, D)`` buffer that is zeroed and filled (saves the page faults of a fresh
    multi-MB array each step).
    """
    index = np.asarray(index).reshape(-1)
    values = values.reshape(index.size, -1)
    n, dim = values.shape
    if out is None:
        out = np.empty((n_rows, dim), dtype=values.dtype)
    if n_rows * n <= (1 << 18):  # small table: one-hot (n, n_rows) @ values
        onehot = np.zeros((n, n_rows), dtype=values.dtype)
        onehot[np.arange(n), index] = 1
        return np.matmul(onehot.T, values, out=out)

    out.fill(0)
    if n == 0:
        return out
    key = index.astype(np.uint16) if n_rows <= 65536 else index
    order = np.argsort(key, kind="stable")
    sorted_idx = index[order]
    sorted_val = values.take(order, axis=0)
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(sorted_idx[1:], sorted_idx[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=n)

    light = counts <= levels
    l_starts, l_counts = starts[light], counts[light]
    l_rows = sorted_idx[l_starts]
    out[l_rows] = sorted_val[l_starts]
    for k in range(1, levels):
        more = l_counts > k
        if not more.any():
            break
        out[l_rows[more]] += sorted_val[l_starts[more] + k]
    heavy = ~light
    if heavy.any():
        # The few ids past `levels` occurrences: gather their (sorted, contiguous) rows and
        # sum each run with one reduceat.
        h_starts, h_counts = starts[heavy], counts[heavy]
        h_vals = sorted_val[np.repeat(heavy, counts)]
        offsets = np.zeros(h_counts.size, dtype=np.intp)
        np.cumsum(h_counts[:-1], out=offsets[1:])
        out[sorted_idx[h_starts]] = np.add.reduceat(h_vals, offsets, axis=0)
    return out


def sgd_update(params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
    """In-place ``p -= LR * g`` (scales ``g`` in place to avoid a temporary)."""
    for name, p in params.items():
        g = grads[name]
        g *= LR
        p -= g


# --------------------------------------------------------------------------------------------
# Peer helpers
# --------------------------------------------------------------------------------------------


def numpy_impl(params: dict[str, np.ndarray],
               forward_backward: Callable[[], tuple[float, dict]]) -> Impl:
    """Wrap a hand-written ``forward_backward() -> (loss, grads)`` into an :class:`Impl`."""

    def step():
        sgd_update(params, forward_backward()[1])

    def grads():
        loss, g = forward_backward()
        return loss, {k: v.astype(np.float64) for k, v in g.items()}

    return Impl(step, grads)


def torch_leaves(problem: Problem) -> dict:
    """The problem's weights as float32 torch leaf tensors that require grad (copies)."""
    import torch

    return {k: torch.tensor(v, dtype=torch.float32, requires_grad=True)
            for k, v in problem.params.items()}


def torch_sgd(tensors):
    """``torch.optim.SGD`` with ``LR``; foreach=True fuses the update of many tensors."""
    import torch

    return torch.optim.SGD(list(tensors), lr=LR, foreach=True)


def torch_impl(problem: Problem, params: dict, loss_fn: Callable[[], "object"],
               grad_of: Callable[[], dict] | None = None) -> Impl:
    """Wrap a torch loss closure over leaf tensors ``params`` into an :class:`Impl`.

    ``grad_of`` maps the leaves' ``.grad`` to the problem's parameter layout (default: same
    names and shapes).
    """
    opt = torch_sgd(params.values())

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    def grads():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        if grad_of is None:
            out = {k: p.grad.numpy().astype(np.float64) for k, p in params.items()}
        else:
            out = {k: np.asarray(v, dtype=np.float64) for k, v in grad_of().items()}
        opt.zero_grad(set_to_none=True)
        return float(loss.item()), out

    return Impl(step, grads)


def autograd_impl(params: dict[str, np.ndarray], loss_fn: Callable,
                  grad_layout: Callable[[dict], dict] | None = None) -> Impl:
    """Wrap ``loss_fn(params) -> scalar`` (written with ``autograd.numpy``) into an Impl.

    ``params`` may be any autograd container (dict of arrays, dict of lists of arrays); the
    update is done in place on the NumPy arrays.  ``grad_layout`` maps the gradient container
    to the problem's parameter layout (default: identity).
    """
    from autograd import value_and_grad

    vg = value_and_grad(loss_fn)

    def update(p, g):
        if isinstance(p, dict):
            for k in p:
                update(p[k], g[k])
        elif isinstance(p, (list, tuple)):
            for pi, gi in zip(p, g):
                update(pi, gi)
        else:
            p -= LR * g

    def step():
        _, g = vg(params)
        update(params, g)

    def grads():
        loss, g = vg(params)
        g = grad_layout(g) if grad_layout else g
        return float(loss), {k: np.asarray(v, dtype=np.float64) for k, v in g.items()}

    return Impl(step, grads)


def fg_leaves(problem: Problem) -> dict:
    """The problem's weights as fungrad Tensors with ``autograd=True`` (copies)."""
    from fungrad import Tensor

    return {k: Tensor(np.array(v, dtype=np.float32, copy=True), autograd=True)
            for k, v in problem.params.items()}


def fg_grad_array(t) -> np.ndarray:
    """A fungrad leaf's gradient as an ndarray (``.grad`` may be a Tensor, as in the book)."""
    g = t.grad
    return np.asarray(getattr(g, "data", g))


def fungrad_impl(tensors: list, loss_fn: Callable[[], "object"],
                 grad_of: Callable[[], dict]) -> Impl:
    """Wrap a fungrad loss closure over leaf Tensors into an :class:`Impl`.

    The update goes through ``fungrad.optim.SGD(parameters, alpha=LR)`` and its book-style
    ``step()``, which zero-fills the gradients in place: they are views of the optimizer's
    flat gradient buffer, so this is one memset, and the next backward accumulates into the
    buffer (PyTorch's idiomatic ``zero_grad(set_to_none=True)`` would make fungrad copy the
    fresh gradients into the buffer at every step).
    """
    from fungrad.optim import SGD

    opt = SGD(tensors, alpha=LR)

    def clear():
        for t in tensors:
            t.grad = None

    def step():
        loss_fn().backward()
        opt.step()

    def backward():
        loss = loss_fn()
        loss.backward()
        return loss

    def with_backward(run: Callable) -> Callable:
        def grads():
            clear()
            loss = run()
            out = {k: np.asarray(v, dtype=np.float64) for k, v in grad_of().items()}
            clear()
            return float(loss.item()), out
        return grads

    return Impl(step, with_backward(backward), lambda wrap: with_backward(wrap(backward)))


def fungrad_jitted(impl: Impl) -> Impl:
    """A fungrad Impl whose training step is traced and compiled by ``fg.jit`` (its first
    call traces and compiles); ``grads()`` runs the loss and backward under ``fg.jit`` too, so
    the gradient check covers the compiled gradients."""
    from fungrad.jit import jit

    return Impl(jit(impl.step), impl.with_backward(jit))


def jax_sgd_impl(params: dict, loss_fn: Callable, grad_layout: Callable | None = None) -> Impl:
    """Wrap ``loss_fn(params) -> scalar`` (``jax.numpy``) into an Impl: one ``jax.jit`` of
    value-and-grad plus the SGD update, the parameters donated so XLA updates them in place."""
    import jax
    import jax.numpy as jnp

    state = {"p": {k: jnp.asarray(v, dtype=jnp.float32) for k, v in params.items()}}
    vg = jax.value_and_grad(loss_fn)

    @functools.partial(jax.jit, donate_argnums=0)
    def update(p):
        loss, g = vg(p)
        return loss, jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g)

    grads_fn = jax.jit(vg)

    def step():
        loss, state["p"] = update(state["p"])
        loss.block_until_ready()

    def grads():
        loss, g = grads_fn(state["p"])
        g = grad_layout(g) if grad_layout else g
        return float(loss), {k: np.asarray(v, dtype=np.float64) for k, v in g.items()}

    return Impl(step, grads)


def jax_cross_entropy(logits, targets):
    """Mean softmax cross-entropy in ``jax.numpy`` (log-sum-exp minus the target logit)."""
    import jax
    import jax.numpy as jnp

    picked = jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)


def autograd_logsumexp(x, axis=-1):
    """Stable log-sum-exp in ``autograd.numpy`` (avoids autograd.scipy, which needs SciPy)."""
    import autograd.numpy as anp

    m = anp.max(x, axis=axis, keepdims=True)
    return anp.log(anp.sum(anp.exp(x - m), axis=axis)) + anp.squeeze(m, axis=axis)
