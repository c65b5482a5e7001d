"""DistributedOptimizer: an optimizer whose ``step()`` first averages gradients over ranks."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..errors import DistributedError
from ._buckets import DEFAULT_BUCKET_BYTES, ReduceStats
from ._comm import world
from ._layout import describe, mismatch_message, named_tensors
from ._reduce import allreduce_gradients

__all__ = ["DistributedOptimizer"]

_OWN = ("optimizer", "average", "bucket_bytes", "last_stats", "_synchronized", "_checked")


class DistributedOptimizer:
    """Wrap a fungrad optimizer (SGD, Adam, ...) so that ``step()`` averages gradients first.

    ``step()`` reduces every parameter's gradient over all ranks in a few flat buckets
    (:func:`allreduce_gradients`), then runs the wrapped optimizer's step. Everything else —
    ``zero()``, ``zero_grad()``, ``lr``, ``state_dict()`` — reaches the wrapped optimizer.
    ``last_stats`` holds the :class:`ReduceStats` of the latest reduction.

    To change the averaged gradients before the update (clipping), call ``synchronize()``
    yourself: the next ``step()`` then does not reduce them again.

    The first reduction also checks that every rank starts from the same parameter values
    (one small exchange of hashes); if not, every rank raises
    :class:`~fungrad.errors.DistributedError` suggesting :func:`broadcast_parameters`.

    >>> import numpy as np, fungrad as fg, fungrad.distributed as dist
    >>> model = fg.nn.Linear(3, 1, rng=0)
    >>> opt = dist.DistributedOptimizer(fg.optim.SGD(model.parameters(), alpha=0.1))
    >>> fg.mean(model(np.ones((4, 3))) ** 2).backward()
    >>> _ = opt.synchronize()
    >>> norm = fg.optim.clip_grad_norm(model.parameters(), 1.0)
    >>> opt.step()
    >>> opt.lr
    0.1
    """

    def __init__(self, optimizer: Any, *, average: bool = True,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimizer is already distributed; wrap "
                            "the plain optimizer once")
        if not (hasattr(optimizer, "step") and hasattr(optimizer, "parameters")):
            raise TypeError(f"DistributedOptimizer: expected a fungrad.optim optimizer (with "
                            f"step() and parameters), got {type(optimizer).__name__}")
        if int(bucket_bytes) < 1:
            raise ValueError(f"DistributedOptimizer: bucket_bytes must be positive, got "
                             f"{bucket_bytes}")
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "average", bool(average))
        object.__setattr__(self, "bucket_bytes", int(bucket_bytes))
        object.__setattr__(self, "last_stats", None)
        object.__setattr__(self, "_synchronized", False)
        object.__setattr__(self, "_checked", False)

    def synchronize(self) -> ReduceStats:
        """Reduce the gradients now (on every rank); the next ``step()`` will not redo it."""
        if not self._checked:
            _check_same_start(self.optimizer)
            object.__setattr__(self, "_checked", True)
        stats = allreduce_gradients(self.optimizer.parameters, self.average,
                                    bucket_bytes=self.bucket_bytes)
        object.__setattr__(self, "last_stats", stats)
        object.__setattr__(self, "_synchronized", True)
        return stats

    def step(self, *args: Any, **kwargs: Any) -> None:
        """Average the gradients over ranks (unless ``synchronize()`` just did), then update."""
        if not self._synchronized:
            self.synchronize()
        object.__setattr__(self, "_synchronized", False)
        self.optimizer.step(*args, **kwargs)

    def zero(self) -> None:
        """Zero the gradients in place (the book's ``zero``); a pending ``synchronize()`` is
        forgotten, so the next ``step()`` reduces the new gradients."""
        object.__setattr__(self, "_synchronized", False)
        self.optimizer.zero()

    def zero_grad(self, *args: Any, **kwargs: Any) -> None:
        """Forget the gradients (as the wrapped optimizer's ``zero_grad``) and any pending
        ``synchronize()``."""
        object.__setattr__(self, "_synchronized", False)
        self.optimizer.zero_grad(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name in _OWN:  # not set yet (a half-built object): no recursion through .optimizer
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)  # e.g. a learning-rate schedule: opt.lr = ...

    def __repr__(self) -> str:
        return f"DistributedOptimizer({type(self.optimizer).__name__})"


def _check_same_start(optimizer: Any) -> None:
    """Raise on every rank unless all ranks hold the same parameters (names, shapes, values)."""
    w = world()
    if w.size == 1:
        return
    named = named_tensors(optimizer, "DistributedOptimizer")
    desc = describe([n for n, _ in named], [p for _, p in named])
    digests = [hashlib.blake2b(np.ascontiguousarray(p.data).tobytes(), digest_size=8).digest()
               for _, p in named]
    gathered = w.comm.allgather((desc, digests))
    message = mismatch_message("DistributedOptimizer", [d for d, _ in gathered])
    if message:
        raise DistributedError(message)
    for r, (_, theirs) in enumerate(gathered):
        for i, (mine, ref) in enumerate(zip(theirs, gathered[0][1])):
            if mine != ref:
                raise DistributedError(
                    f"DistributedOptimizer: rank {r} starts from other values than rank 0 (first "
                    f"in '{named[i][0]}'), so the copies of the model would drift apart. Call "
                    "dist.broadcast_parameters(model) on every rank before training.")
