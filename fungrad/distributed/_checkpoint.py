"""Checkpoints in a data-parallel run: rank 0 writes, everyone waits, everyone reads.

All ranks hold the same parameters and optimizer state, so one rank writes the file
(:func:`fungrad.save`, atomic). Both functions are collective and fail on every rank together:
a failure on one rank is reported on all of them, naming it, instead of leaving the others
waiting.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import io
from ..errors import CheckpointError
from ._broadcast import _bcast_arrays, _check_root
from ._buckets import DEFAULT_BUCKET_BYTES
from ._comm import world

__all__ = ["save", "load"]


def _outcome(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def save(path: str | os.PathLike, obj: Any, root: int = 0) -> None:
    """Write ``obj`` (a Module or a mapping of names to arrays) from rank ``root`` only.

    Rank ``root`` calls :func:`fungrad.save`; then every rank waits for it (a barrier that also
    carries the outcome), so that a following :func:`load` on any rank reads the new file. If
    the write fails, every rank raises :class:`~fungrad.errors.CheckpointError` with root's error.

    >>> import os, tempfile, fungrad as fg, fungrad.distributed as dist
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> dist.save(path, {"step": 3, **fg.nn.Linear(2, 1, rng=0).state_dict()})
    >>> int(dist.load(path)["step"])
    3
    """
    w = world()
    _check_root("save", root, w)
    error = None
    if w.rank == root:
        try:
            io.save(path, obj)
        except Exception as e:  # noqa: BLE001 - reported on every rank below
            if w.size == 1:
                raise
            error = _outcome(e)
    if w.size > 1:
        error = w.comm.bcast(error, root=root)
    if error:
        raise CheckpointError(f"save: rank {root} could not write '{os.fspath(path)}': {error}")


def load(path: str | os.PathLike, root: int | None = None, *,
         bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> dict[str, np.ndarray]:
    """Read a checkpoint on every rank: ``{name: ndarray}`` as :func:`fungrad.load` gives.

    With ``root=None`` every rank reads ``path`` itself (a file system all ranks share). With
    ``root=r`` only rank ``r`` reads it and sends the arrays to the others, for machines that
    do not share a file system. If any rank fails, all raise
    :class:`~fungrad.errors.CheckpointError` naming the rank and its error.
    """
    w = world()
    if root is not None:
        _check_root("load", root, w)
    if w.size == 1:
        return io.load(path)
    readers = range(w.size) if root is None else (root,)
    state, error = None, None
    if w.rank in readers:
        try:
            state = io.load(path)
        except Exception as e:  # noqa: BLE001 - reported on every rank below
            error = _outcome(e)
    errors = w.comm.allgather(error)
    failed = [(r, e) for r, e in enumerate(errors) if e]
    if failed:
        rank, message = failed[0]
        raise CheckpointError(f"load: rank {rank} could not read '{os.fspath(path)}': "
                              f"{message}")
    if root is None:
        return state  # type: ignore[return-value]
    return _bcast_state(w, state, root, bucket_bytes)


def _bcast_state(w, state, root: int, bucket_bytes: int) -> dict[str, np.ndarray]:
    arrays = list(state.values()) if w.rank == root else []
    meta = [(k, a.shape, a.dtype.str) for k, a in state.items()] if w.rank == root else None
    meta = w.comm.bcast(meta, root=root)
    values = _bcast_arrays(w, arrays, [s for _, s, _ in meta], [d for _, _, d in meta], root,
                           bucket_bytes)
    if w.rank == root:
        return state
    return {k: v for (k, _, _), v in zip(meta, values)}
