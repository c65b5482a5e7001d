"""``fg.checkpoint``: rematerialization — keep a function's inputs, recompute its insides in the
backward pass (``jax.checkpoint``, ``torch.utils.checkpoint``).

A checkpointed call runs ``f`` recorded, as usual, then replaces the graph it made by one node
whose inputs are the Tensors ``f`` read from outside and whose outputs are ``f``'s results; the
intermediate values are freed when the call returns. In the backward pass that node's VJP runs
``f`` again on the same inputs, recorded, and backpropagates through the fresh graph.

**Gradients identical to the plain ones, bit for bit.** The backward pass adds the cotangents
flowing into a Tensor one by one, in the order it meets the ops that used it; a Tensor used
inside and outside ``f`` (shared weights in a chain of checkpointed blocks) receives the
inside contributions one by one too. So the node has one input per *use* — one per edge from
an op inside ``f`` to a Tensor from outside, in the order backward meets them — and in plain
backward its VJP returns each use's cotangent on its own (the recomputed graph's edges are
split onto leaves of their own), never their sum. The engine then adds exactly the same
numbers in exactly the same order as without the checkpoint. (When the backward pass is
itself recorded, for higher derivatives, each Tensor's cotangent comes as one sum.)

``f`` must be deterministic: the recomputed values are compared with the saved outputs and a
difference (random draws, state changed between forward and backward) is an error rather than a
wrong gradient.

**Under fg.jit** the same node is traced: the forward records ``f``'s ops, whose values
nothing else reads (their buffers are reused at once), and the node's VJP records ``f``
again, then its backward — so the compiled backward recomputes each block rather than keeping
its intermediates, and the engine adds the same numbers in the same order as the plain
compiled program (identical bits). The recomputation starts with a gather of the incoming
cotangent (:func:`_barrier`), which ends the compiler's fused group there: one block's
recomputed values are held only while that block's backward runs.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Iterator

import numpy as np

from .. import backprop, recording
from ..domains import Domain, Real
from ..errors import GraphError
from ..functional import _primal
from ..registry import Op
from ..tensor import Tensor
from ..tree import flatten, unflatten
from ._body import inner_edges

__all__ = ["checkpoint"]  # (and rematerializing, for fg.jit's loops)

_REMAT = threading.local()  # .depth: checkpoint VJPs recomputing on this thread


def rematerializing() -> bool:
    """Whether a checkpoint's VJP is recomputing its function on this thread now: fg.jit's
    loops never take those values from the forward loop instead (:mod:`fungrad.jit.residuals`),
    as that would keep what the checkpoint asked not to keep."""
    return getattr(_REMAT, "depth", 0) > 0


@contextlib.contextmanager
def _recomputing() -> Iterator[None]:
    _REMAT.depth = getattr(_REMAT, "depth", 0) + 1
    try:
        yield
    finally:
        _REMAT.depth -= 1


def checkpoint(f: Callable, *args: Any, **kwargs: Any) -> Any:
    """``f`` rematerialized: its intermediate values are not kept for the backward pass but
    recomputed in it; values and gradients are those of ``f`` itself, bit for bit.

    ``fg.checkpoint(f)`` returns the wrapped function (``jax.checkpoint``'s form; usable as a
    decorator); ``fg.checkpoint(f, *args, **kwargs)`` calls it at once
    (``torch.utils.checkpoint``'s). Works with ``fg.grad``, ``vjp``, ``jvp``, higher orders,
    ``.backward()``, inside ``fg.scan`` bodies and nested. What the backward pass keeps of a
    checkpointed call is its inputs and outputs; it costs one more run of ``f`` there. ``f``
    must be deterministic (no random draws): a recomputation that differs raises.

    >>> import numpy as np, fungrad as fg
    >>> block = fg.checkpoint(lambda h, w: fg.tanh(h * w + 1.0))
    >>> def loss(w):
    ...     h = np.ones(3)
    ...     for _ in range(4):
    ...         h = block(h, w)
    ...     return fg.sum(h)
    >>> plain = fg.grad(lambda w: fg.sum(fg.tanh(fg.tanh(fg.tanh(fg.tanh(
    ...     np.ones(3) * w + 1) * w + 1) * w + 1) * w + 1)))
    >>> bool((fg.grad(loss)(0.5) == plain(0.5)).all())
    True
    """
    if not callable(f):
        raise TypeError(f"checkpoint: f must be callable, got {type(f).__name__}")

    @functools.wraps(f, updated=())  # (a Module's attributes stay on the Module)
    def rematerialized(*args: Any, **kwargs: Any) -> Any:
        return _call(f, args, kwargs)

    return _call(f, args, kwargs) if args or kwargs else rematerialized


class _Remat:
    """What a checkpoint node keeps (its ``body`` parameter): ``f``, the structure of its
    arguments with the non-Tensor leaves (the Tensor leaves are the node's first inputs), the
    uses ``f``'s ops make of outside Tensors — ``("arg", i)`` for Tensor argument ``i``, or
    the Tensor itself (a closure's) — and which leaves of ``f``'s result are the node's
    outputs."""

    __slots__ = ("f", "spec", "fixed", "n_args", "grads", "uses", "outputs", "depth")
    f: Callable
    spec: Any  # the flatten() spec of (args, kwargs)
    fixed: list  # the non-Tensor leaves (None where a Tensor argument goes)
    n_args: int  # Tensor arguments
    grads: list[bool]  # which of them require grad
    uses: list  # ("arg", i), or an outside Tensor, per use f's ops make
    outputs: list[int]  # which leaves of f's result are the node's outputs
    depth: int  # the transformation depth f was recorded at

    def __repr__(self) -> str:
        return (f"<checkpoint of {getattr(self.f, '__qualname__', self.f)!r}: "
                f"{len(self.uses)} uses of outside Tensors>")


def _call(f: Callable, args: tuple, kwargs: dict) -> Any:
    st = recording.thread
    if st.vmap is not None or not st.enabled:
        return f(*args, **kwargs)  # fg.vmap's batch, or nothing recorded
    leaves, spec = flatten((args, kwargs))
    body = _Remat()
    body.f, body.spec, body.depth = f, spec, st.depth
    slots = [i for i, v in enumerate(leaves) if isinstance(v, Tensor)]
    body.fixed = [None if isinstance(v, Tensor) else v for v in leaves]
    body.n_args = len(slots)
    body.grads = [leaves[i].requires_grad for i in slots]
    given = [leaves[i] for i in slots]
    with _recording(body.depth):
        start = recording.next_seq()
        prims = [_fresh(t._data, grad) for t, grad in zip(given, body.grads)]
        out = _run(body, prims)
    out_leaves, out_spec = flatten(out)
    inner = _inner_outputs(out_leaves, start)
    if not inner:  # f's result does not depend on anything differentiable it did
        return out
    where = {id(p): i for i, p in enumerate(prims)}
    uses, body.uses = [], []
    for _, _, t in inner_edges([out_leaves[i] for i in inner], start):
        i = where.get(id(t))
        body.uses.append(("arg", i) if i is not None else t)
        uses.append(given[i] if i is not None else t)
    body.outputs = inner
    node = _bind(given, uses, [out_leaves[i]._data for i in inner], body)
    new = list(out_leaves)
    for i, t in zip(inner, node):
        new[i] = t
    return unflatten(out_spec, new)


def _run(body: _Remat, arg_tensors: list) -> Any:
    it = iter(arg_tensors)
    leaves = [next(it) if c is None else c for c in body.fixed]
    args, kwargs = unflatten(body.spec, leaves)
    return body.f(*args, **kwargs)


def _fresh(data: np.ndarray, grad: bool) -> Tensor:
    t = Tensor._make(data)
    t.requires_grad = grad
    return t


def _inner_outputs(leaves: list, start: int) -> list[int]:
    """Positions of the result's leaves that ops inside ``f`` made and that need a gradient."""
    out, seen = [], set()
    for i, v in enumerate(leaves):
        if isinstance(v, Tensor) and v.requires_grad and id(v) not in seen:
            node = backprop._node_of(v)
            if node is not None and node._seq > start:
                seen.add(id(v))
                out.append(i)
    return out


@contextlib.contextmanager
def _recording(depth: int) -> Iterator[None]:
    """Record, as the checkpointed call itself did (its transformation depth restored)."""
    st = recording.thread
    enabled, previous = st.enabled, st.depth
    st.enabled, st.depth = True, depth
    try:
        yield
    finally:
        st.enabled, st.depth = enabled, previous


def _bind(given: list, uses: list, outs: list, body: _Remat) -> tuple:
    """The checkpoint node: inputs the Tensor arguments (their values, for the recomputation)
    then one per use (their cotangents); outputs ``outs``."""
    inputs = tuple(given) + tuple(uses)
    needs = (False,) * len(given) + (True,) * len(uses)
    versions = tuple(t._version for t in inputs)
    return Tensor._record_multi(tuple(outs), _OP, inputs, {"body": body}, needs, versions)


def _forward(*arrays, body: _Remat):
    """The checkpoint op's forward: ``f`` on the arguments' values (its VJP reruns it)."""
    out = _run(body, [Tensor._make(np.asarray(a)) for a in arrays[:body.n_args]])
    leaves = flatten(out)[0]
    return tuple(np.asarray(getattr(leaves[i], "_data", leaves[i])) for i in body.outputs)


def _vjp(g, out, *inputs, body: _Remat):
    """Run ``f`` again, recorded, and backpropagate ``g`` through it: one cotangent per use
    (plain backward), or each Tensor's summed on its first use (recorded backward)."""
    create = recording.thread.enabled  # backward records the VJPs (create_graph)
    values = inputs[:body.n_args]
    if recording.thread.hook is not None:
        g = tuple(None if gi is None else _barrier(gi) for gi in g)
    with _recording(body.depth), _recomputing():
        start = recording.next_seq()
        if create:  # connected to the Tensors given, so the result differentiates again
            prims = [_primal(v, "checkpoint") if grad else _fresh(v._data, False)
                     for v, grad in zip(values, body.grads)]
        else:
            prims = [_fresh(v, grad) for v, grad in zip(values, body.grads)]
        out_leaves = flatten(_run(body, prims))[0]
        roots = _recomputed(body, out_leaves, out, start)
        stop = frozenset(id(p) for p in prims)
        edges = inner_edges(roots, start, stop)
        _check_uses(body, edges, prims)
        seeds = [gi if create and isinstance(gi, Tensor) else
                 backprop.as_seed(gi, r._data.dtype if r._data.dtype.kind == "f" else
                                  np.dtype(np.float64), "checkpoint")
                 for gi, r in zip(g, roots) if gi is not None]
        roots = [r for gi, r in zip(g, roots) if gi is not None]
        if create:
            targets = list({id(t): t for _, _, t in edges}.values())
        else:
            targets = [_split(node, pos) for node, pos, _ in edges]
        cots = backprop.backward(roots, seeds, retain_graph=create, create_graph=create,
                                 targets=targets, since=start)
    if not create:
        return [None] * body.n_args + list(cots)
    summed = {id(t): c for t, c in zip(targets, cots)}
    result: list = [None] * body.n_args
    for _, _, t in edges:
        result.append(summed.pop(id(t), None))  # on the first use; None on the others
    return result


_ROW0 = np.zeros(1, np.int64)


def _barrier(g: Any) -> Any:
    """``g`` copied by a gather of its one row (the same numbers), while fg.jit traces: the
    compiler fuses elementwise ops into one group until a block op reads a value of it, and
    this gather — reading the cotangent the rest of the backward made — is where that group
    ends. Without it, the recomputation (elementwise, independent of the cotangents) would
    join the open group of the backward after it, each block's recomputed values would be
    held together with every other block's, and the program would keep more than a plain
    one; with it, one block's recomputation and backward run as a group of their own, whose
    buffers the next block reuses (``jax.checkpoint``'s optimization barrier, in effect)."""
    from ..primitives import index_select, reshape  # noqa: PLC0415 (the primitives package imports control)

    shape = tuple(np.shape(g._data if isinstance(g, Tensor) else g))
    return reshape(index_select(reshape(g, (1, -1)), _ROW0), shape)


def _recomputed(body: _Remat, leaves: list, saved: tuple, start: int) -> list:
    """The recomputed outputs, checked against the saved ones."""
    roots = []
    for i, want in zip(body.outputs, saved):
        r = leaves[i] if i < len(leaves) else None
        node = backprop._node_of(r) if isinstance(r, Tensor) else None
        if r is None or node is None or node._seq <= start:
            raise GraphError(f"checkpoint: recomputing {_name(body)} did not record output "
                             f"{i} again; f must compute the same way every time it is called")
        roots.append(r)
        if recording.thread.hook is not None:
            continue  # fg.jit traces: no values yet; the recomputation is the program's own
        got, ref = r._data, getattr(want, "_data", want)
        scale = float(np.max(np.abs(ref[np.isfinite(ref)]), initial=0.0))
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=1e-6, atol=1e-9 * scale,
                                                     equal_nan=True):
            raise GraphError(
                f"checkpoint: recomputing {_name(body)} in the backward pass gave different "
                f"values for output {i} than the forward pass did; a checkpointed function "
                "must be deterministic (random draws such as Dropout, or state changed "
                "between forward and backward, would give wrong gradients)")
    return roots


def _check_uses(body: _Remat, edges: list, prims: list) -> None:
    ok = len(edges) == len(body.uses)
    for (_, _, t), use in zip(edges, body.uses):
        if not ok:
            break
        ok = t is (prims[use[1]] if isinstance(use, tuple) else use)
    if not ok:
        raise GraphError(f"checkpoint: recomputing {_name(body)} recorded a different graph "
                         "than the forward pass (other ops, or other Tensors read); f must "
                         "compute the same way every time it is called")


def _split(node: Tensor, pos: int) -> Tensor:
    """Give the edge into ``node``'s input ``pos`` a leaf of its own (same data), so that the
    backward pass returns this use's cotangent alone."""
    inputs, versions = node._inputs, node._versions
    assert inputs is not None and versions is not None, "checkpoint: a freed node"
    leaf = _fresh(inputs[pos]._data, True)
    node._inputs = inputs[:pos] + (leaf,) + inputs[pos + 1:]
    node._versions = versions[:pos] + (0,) + versions[pos + 1:]
    return leaf


def _name(body: _Remat) -> str:
    return repr(getattr(body.f, "__qualname__", body.f))


_OP = Op("checkpoint", _forward, _vjp, domain=Domain((Real(),), (), explicit=False),
         n_inputs=None, param_names=("body",), differentiable=None, twice_differentiable=True,
         check=None, builtin=True, n_outputs=None,
         doc="A checkpointed call of f (fg.checkpoint): inputs the Tensors f reads, one per use.")
# not registered: its inputs are uses, not arguments (the registry's tests differentiate
# an op with respect to each input; a use is not a value f reads)
