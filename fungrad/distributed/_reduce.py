"""Reductions across ranks: gradients of a model, pytrees of arrays, metrics."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from ..errors import DTypeError
from ..tensor import Tensor
from ..tree import flatten, unflatten
from ._buckets import DEFAULT_BUCKET_BYTES, Layout, ReduceStats, header_bytes, preflight, run
from ._buckets import shared_flat
from ._comm import World, world
from ._layout import describe, grad_dtype, named_leaves, named_tensors

__all__ = ["allreduce_gradients", "pmean", "allreduce", "ReduceStats"]

_CACHE_SIZE = 4
_layouts: OrderedDict = OrderedDict()  # (sizes, dtypes, bucket_bytes) -> (Layout, buffers)


def _cached(sizes: tuple, dtypes: tuple, bucket_bytes: int) -> tuple[Layout, list[np.ndarray]]:
    """A layout and its packing buffers, reused from step to step (no new pages per step)."""
    key = (sizes, dtypes, int(bucket_bytes))
    hit = _layouts.get(key)
    if hit is None:
        layout = Layout(sizes, dtypes, bucket_bytes)
        hit = _layouts[key] = (layout, layout.buffers())
        while len(_layouts) > _CACHE_SIZE:
            _layouts.popitem(last=False)
    _layouts.move_to_end(key)
    return hit


def _grad_array(p: Tensor) -> np.ndarray | None:
    g = p.grad
    if g is None:
        return None
    return g.data if isinstance(g, Tensor) else np.asarray(g)


def allreduce_gradients(module_or_params: Any, average: bool = True, *,
                        bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> ReduceStats:
    """Sum (``average=True``: average) every parameter's ``.grad`` over all ranks, in place.

    Gradients go in a few flat buckets per dtype (float32 stays float32), each reduced with
    one non-blocking ``Iallreduce`` that starts while later gradients are still being packed.
    Gradients that already are views into one flat buffer are reduced there, without copies.
    A parameter whose gradient is None on some ranks counts as zero there and receives the
    result; one whose gradient is None on every rank keeps None. Call it on every rank, after
    ``backward()`` and before the optimizer's step (:class:`DistributedOptimizer` does this).

    Averaging the gradients of per-rank *mean* losses gives the gradient of the mean over the
    global batch when every rank holds the same number of samples (see :func:`shard`).

    Returns a :class:`ReduceStats` (bucket sizes, bytes sent). In a single process it changes
    nothing and reports zero bytes.

    >>> import numpy as np, fungrad as fg, fungrad.distributed as dist
    >>> model = fg.nn.Linear(3, 2, rng=0)
    >>> fg.sum(model(np.ones((4, 3)))).backward()
    >>> stats = dist.allreduce_gradients(model)
    >>> model.weight.grad.shape, stats.nbytes
    ((3, 2), 0)
    """
    named = named_tensors(module_or_params, "allreduce_gradients")
    grads, problem = [], None
    for name, p in named:
        g = _grad_array(p)
        if g is not None and g.shape != p.shape:
            problem = problem or (f"parameter '{name}' has shape {p.shape} but its gradient "
                                  f"has shape {g.shape}")
        grads.append(g)
    w = world()
    if w.size == 1:
        if problem:
            raise ValueError(f"allreduce_gradients: {problem}")
        return ReduceStats((), (), 0, 0, False)
    dtypes = tuple(grad_dtype(p) for _, p in named)
    desc = describe([n for n, _ in named], [p for _, p in named], dtypes)
    flags = np.array([g is not None for g in grads], np.int64)
    present = preflight(w, "allreduce_gradients", desc, ("grads", bool(average), bucket_bytes),
                        flags, problem)
    layout, buffers = _cached(tuple(p.size for _, p in named), dtypes, bucket_bytes)
    flat = [shared_flat([grads[i] for i in g.members], g.dtype) for g in layout.groups]
    vectors = [f if f is not None else b for f, b in zip(flat, buffers)]
    in_place = all(f is not None for f in flat)
    _reduce_grads(w, layout, vectors, flat, named, grads, present, average)
    if present is None:
        return layout.stats(header_bytes(), 1, in_place)
    return layout.stats(header_bytes() + flags.nbytes, 2, in_place)


def _reduce_grads(w: World, layout: Layout, vectors: list, flat: list, named: list,
                  grads: list, present: np.ndarray | None, average: bool) -> None:
    owner = {i: k for k, g in enumerate(layout.groups) for i in g.members}
    n = w.size

    def pack(i: int, seg: np.ndarray) -> None:
        if flat[owner[i]] is not None:
            return  # already in the flat buffer
        g = grads[i]
        if g is None:
            seg[...] = 0
        else:
            seg[...] = g.reshape(-1)

    def unpack(i: int, seg: np.ndarray) -> None:
        if flat[owner[i]] is not None:
            if average:
                seg /= n  # the gradient is a view of seg
            return
        if present is not None and not present[i]:
            return
        g, p = grads[i], named[i][1]
        if g is not None and g.flags.writeable and g.flags.c_contiguous:
            out = g.reshape(-1)
            if average:
                np.divide(seg, n, out=out, casting="unsafe")
            else:
                np.copyto(out, seg, casting="unsafe")
        else:
            p.grad = Tensor((seg / n if average else seg).reshape(p.shape))

    def start(buf: np.ndarray):
        return w.comm.Iallreduce(w.mpi.IN_PLACE, buf, op=w.mpi.SUM)

    run(w, layout, vectors, start, pack, unpack)


_OPS = ("sum", "mean", "max", "min")


def pmean(tree: Any, *, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> Any:
    """The average over ranks of every leaf of ``tree`` (arrays, numbers or Tensors).

    The functional style's gradient averaging: ``value_and_grad``, then ``pmean``, then the
    update. Returns the same structure with new float ndarrays (``tree`` is not changed),
    reduced in a few flat buckets per dtype like :func:`allreduce_gradients`. Integer leaves
    raise (average them with ``allreduce(x, op="mean")``).

    >>> import numpy as np, fungrad as fg, fungrad.distributed as dist
    >>> loss = lambda p, x: fg.mean((x @ p["w"]) ** 2)
    >>> value, grads = fg.value_and_grad(loss)({"w": np.ones((3, 1))}, np.ones((4, 3)))
    >>> dist.pmean(grads)["w"].ravel()
    array([6., 6., 6.])
    """
    named = named_leaves(tree)
    leaves, spec = flatten(tree)
    arrays, problem = [], None
    for name, leaf in named:
        a = np.asarray(leaf.data if isinstance(leaf, Tensor) else leaf)
        if a.dtype.kind != "f":
            problem = problem or (f"leaf '{name}' has dtype {a.dtype}; pmean averages "
                                  "floating-point arrays (use allreduce(x, op='mean'))")
        arrays.append(a)
    w = world()
    if problem and w.size == 1:
        raise DTypeError(f"pmean: {problem}")
    if w.size == 1:
        return unflatten(spec, [np.array(a, copy=True) for a in arrays])
    desc = describe([n for n, _ in named], arrays)
    preflight(w, "pmean", desc, ("pmean", bucket_bytes), problem=problem)
    layout = Layout([a.size for a in arrays], [a.dtype for a in arrays], bucket_bytes)
    vectors = layout.buffers()
    out: list = [None] * len(arrays)

    def pack(i: int, seg: np.ndarray) -> None:
        seg[...] = arrays[i].reshape(-1)

    def unpack(i: int, seg: np.ndarray) -> None:
        seg /= w.size
        out[i] = seg.reshape(arrays[i].shape)  # a view of this call's own buffer

    def start(buf: np.ndarray):
        return w.comm.Iallreduce(w.mpi.IN_PLACE, buf, op=w.mpi.SUM)

    run(w, layout, vectors, start, pack, unpack)
    return unflatten(spec, out)


def allreduce(value: Any, op: str = "sum") -> Any:
    """Combine a number or an array over all ranks: ``op`` is "sum", "mean", "max" or "min".

    For metrics (losses, counts, accuracies). A Python number gives a Python number, an array
    (or Tensor) a new ndarray; "mean" of integers is a float. Every rank gets the same result.

    >>> import numpy as np, fungrad.distributed as dist
    >>> dist.allreduce(3), dist.allreduce(np.array([1.0, 2.0]), op="mean")
    (3, array([1., 2.]))
    """
    if op not in _OPS:
        raise ValueError(f"allreduce: op must be one of {_OPS}, got {op!r}")
    raw = value.data if isinstance(value, Tensor) else value
    scalar = isinstance(raw, (int, float, np.number)) and not isinstance(raw, (bool, np.bool_))
    arr = np.array(raw, copy=True)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    problem = None
    if arr.dtype.kind not in "iuf":
        problem = f"the value has dtype {arr.dtype}; expected numbers"
    w = world()
    if problem and w.size == 1:
        raise DTypeError(f"allreduce: {problem}")
    if w.size > 1:
        preflight(w, "allreduce", describe(["value"], [arr]), ("allreduce", op), problem=problem)
        mpi_op = {"sum": w.mpi.SUM, "mean": w.mpi.SUM, "max": w.mpi.MAX, "min": w.mpi.MIN}[op]
        w.comm.Allreduce(w.mpi.IN_PLACE, arr, op=mpi_op)
    if op == "mean":
        arr = arr / w.size
    return arr.item() if scalar else arr
