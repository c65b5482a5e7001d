"""Broadcasts from one rank: initial parameters and optimizer state, so all ranks start equal."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DistributedError
from ..nn.module import Module
from ..tensor import Tensor
from ..tree import flatten, unflatten
from ._buckets import DEFAULT_BUCKET_BYTES, Layout, run
from ._comm import World, world
from ._layout import check_same, describe, named_leaves, named_tensors

__all__ = ["broadcast_parameters", "broadcast_optimizer_state"]


def _check_root(where: str, root: int, w: World) -> None:
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) \
            or not 0 <= root < w.size:
        raise ValueError(f"{where}: root must be a rank in 0..{w.size - 1}, got {root!r}")


def _bcast_arrays(w: World, sources: list[np.ndarray] | None, shapes: list[tuple],
                  dtypes: list, root: int, bucket_bytes: int) -> list[np.ndarray]:
    """Root's arrays on every rank (new arrays, views into one buffer per dtype)."""
    layout = Layout([int(np.prod(s)) for s in shapes], dtypes, bucket_bytes)
    vectors = layout.buffers()
    out: list = [None] * len(shapes)

    def pack(i: int, seg: np.ndarray) -> None:
        assert sources is not None  # packing happens on the root, which has the sources
        seg[...] = sources[i].reshape(-1)

    def unpack(i: int, seg: np.ndarray) -> None:
        out[i] = seg.reshape(shapes[i])

    def start(buf: np.ndarray):
        return w.comm.Ibcast(buf, root=root)

    run(w, layout, vectors, start, pack if w.rank == root else None, unpack)
    return out


def broadcast_parameters(module_or_tree: Any, root: int = 0, *,
                         bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> Any:
    """Give every rank rank ``root``'s parameters, so that all ranks start from the same model.

    A Module (or a list of Tensors) is updated in place and returned. A pytree of arrays (the
    functional style) is returned with ``root``'s values: Tensor leaves are updated in place,
    other leaves are replaced by new arrays (numbers stay numbers); on ``root`` it is returned
    as it is. Every rank first checks that all ranks hold the same names, shapes and dtypes;
    if not, every rank raises :class:`~fungrad.errors.DistributedError` naming the first
    parameter that differs, and nothing is changed.

    >>> import fungrad as fg, fungrad.distributed as dist
    >>> model = dist.broadcast_parameters(fg.nn.Linear(3, 2, rng=0))
    >>> params = dist.broadcast_parameters({"w": [1.0, 2.0], "b": 0.5})
    >>> params["b"]
    0.5
    """
    w = world()
    _check_root("broadcast_parameters", root, w)
    in_place = not _is_tree(module_or_tree)
    if in_place:
        named = named_tensors(module_or_tree, "broadcast_parameters")
    else:
        named = named_leaves(module_or_tree)
    arrays, problem = [], None
    for name, value in named:
        a = np.asarray(value.data if isinstance(value, Tensor) else value)
        if a.dtype.kind not in "biufc":
            problem = problem or f"'{name}' has dtype {a.dtype}; expected numbers"
        elif isinstance(value, Tensor) and w.rank != root and not a.flags.writeable:
            problem = problem or f"parameter '{name}' is read-only"
        arrays.append(a)
    if w.size == 1:
        if problem:
            raise TypeError(f"broadcast_parameters: {problem}")
        return module_or_tree
    desc = describe([n for n, _ in named], arrays)
    check_same(w.comm, "broadcast_parameters", desc, ref=root, problem=problem)
    values = _bcast_arrays(w, arrays, [a.shape for a in arrays], [a.dtype for a in arrays],
                           root, bucket_bytes)
    if w.rank == root:
        return module_or_tree
    for (_, leaf), v in zip(named, values):
        if isinstance(leaf, Tensor):
            np.copyto(leaf.data, v)
            leaf.bump_version()
    if in_place:
        return module_or_tree
    leaves, spec = flatten(module_or_tree)
    return unflatten(spec, [_like(leaf, v) for leaf, v in zip(leaves, values)])


def _is_tree(obj: Any) -> bool:
    if isinstance(obj, Module) or hasattr(obj, "parameters"):
        return False
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(t, Tensor) for t in obj):
        return False
    return True


def _like(leaf: Any, value: np.ndarray) -> Any:
    if isinstance(leaf, Tensor):
        return leaf
    if isinstance(leaf, (bool, int, float, complex)):
        return type(leaf)(value.item())
    return value


def broadcast_optimizer_state(optimizer: Any, root: int = 0, *,
                              bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
    """Give every rank rank ``root``'s optimizer state (moments, step counts, settings).

    Uses ``optimizer.state_dict()`` on ``root`` and ``load_state_dict`` on the others, so a run
    resumed from a checkpoint that only ``root`` has read continues identically everywhere.
    Works on a :class:`DistributedOptimizer` or the optimizer it wraps. The optimizers'
    parameters are checked first (names, shapes, dtypes); a mismatch, or a state that some rank
    cannot load, raises :class:`~fungrad.errors.DistributedError` on every rank with every
    rank's optimizer as it was.

    >>> import fungrad as fg, fungrad.distributed as dist
    >>> opt = fg.optim.Adam(fg.nn.Linear(3, 2, rng=0).parameters(), lr=0.01)
    >>> dist.broadcast_optimizer_state(opt)
    """
    inner = getattr(optimizer, "optimizer", optimizer)
    if not (hasattr(inner, "state_dict") and hasattr(inner, "load_state_dict")):
        raise TypeError(f"broadcast_optimizer_state: {type(inner).__name__} has no "
                        "state_dict()/load_state_dict(); pass a fungrad.optim optimizer")
    w = world()
    _check_root("broadcast_optimizer_state", root, w)
    if w.size == 1:
        return
    named = named_tensors(inner, "broadcast_optimizer_state")
    desc = describe([n for n, _ in named], [p for _, p in named])
    check_same(w.comm, "broadcast_optimizer_state", desc, ref=root)
    state = inner.state_dict() if w.rank == root else None
    keys, arrays = (list(state), [np.asarray(v) for v in state.values()]) if state else ([], [])
    shapes = [(a.shape, a.dtype.str) for a in arrays]
    keys, shapes = w.comm.bcast((keys, shapes) if w.rank == root else None, root=root)
    values = _bcast_arrays(w, arrays, [s for s, _ in shapes], [d for _, d in shapes], root,
                           bucket_bytes)
    error = None
    if w.rank != root:
        old = inner.state_dict()
        try:
            inner.load_state_dict(dict(zip(keys, values)))
        except Exception as e:  # noqa: BLE001 - reported on every rank below
            error = f"{type(e).__name__}: {e}"
    errors = w.comm.allgather(error)
    failed = [(r, e) for r, e in enumerate(errors) if e]
    if failed:
        if error is None and w.rank != root:
            inner.load_state_dict(old)  # keep all ranks as they were
        rank, message = failed[0]
        raise DistributedError(f"broadcast_optimizer_state: rank {rank} could not load rank "
                               f"{root}'s optimizer state (every rank keeps its own): {message}")
