"""Each rank's share of the data: one shuffled permutation per epoch, dealt out by rank."""

from __future__ import annotations

import numpy as np

from ._comm import world

__all__ = ["shard"]


def _count(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise ValueError(f"shard: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def shard(n_items: int, seed: int, epoch: int, *, rank: int | None = None,
          size: int | None = None, drop_last: bool = False) -> np.ndarray:
    """The indices of this rank's share of epoch ``epoch``: a shuffle dealt out like cards.

    Every rank draws the same permutation of ``range(n_items)`` from ``(seed, epoch)`` and
    takes every ``size``-th index starting at its rank, so shares are disjoint and together
    cover the epoch. Dealing (rather than cutting into blocks) means that the ``k``-th batch
    of ``b`` indices on every rank together form exactly the ``k``-th batch of ``size * b``
    indices of the one-process permutation (``shard(n, seed, epoch, rank=0, size=1)``), so N
    ranks train on the same global batches as one process does.

    Shares differ by one item when ``size`` does not divide ``n_items``; ``drop_last=True``
    drops the last ``n_items % size`` items of the permutation so that they are equal (a
    per-rank mean loss averaged over ranks is then the global mean). ``rank`` and ``size``
    default to this process's.

    >>> import fungrad.distributed as dist
    >>> dist.shard(10, seed=0, epoch=0, rank=0, size=2)
    array([4, 2, 3, 9, 8])
    >>> dist.shard(10, seed=0, epoch=0, rank=1, size=2)
    array([6, 7, 5, 0, 1])
    >>> dist.shard(10, seed=0, epoch=0, rank=0, size=1)
    array([4, 6, 2, 7, 3, 5, 9, 0, 8, 1])
    """
    n_items = _count("n_items", n_items)
    seed, epoch = _count("seed", seed), _count("epoch", epoch)
    if rank is None or size is None:
        w = world()
        rank = w.rank if rank is None else rank
        size = w.size if size is None else size
    size = _count("size", size, 1)
    rank = _count("rank", rank)
    if rank >= size:
        raise ValueError(f"shard: rank {rank} is not below size {size}")
    order = np.random.default_rng([seed, epoch]).permutation(n_items)
    if drop_last:
        order = order[:n_items - n_items % size]
    return order[rank::size]
