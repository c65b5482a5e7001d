"""How batched arguments hold their examples: the pure helpers of the batching rules (no
op calls, so that every ops module may import them; the rules are in :mod:`.batch_rules`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["BatchedParam", "ndim_of", "batch_size", "batched_position"]


class BatchedParam:
    """A static parameter (or an item of one, such as an index array) that is batched: its
    ``value`` holds every example along axis ``dim`` (None: shared by all). (Not a tuple, so
    that an index holding one is never mistaken for a tuple of indices.)"""

    __slots__ = ("value", "dim")

    def __init__(self, value: Any, dim: int | None) -> None:
        self.value = value
        self.dim = dim

    def __repr__(self) -> str:
        return f"BatchedParam(shape={tuple(np.shape(self.value))}, dim={self.dim})"


def ndim_of(x: Any) -> int:
    """The number of axes of an array, Tensor, batched array or number."""
    shape = getattr(x, "shape", None)
    return len(shape) if type(shape) is tuple else np.ndim(x)


def _shape(x: Any) -> tuple:
    shape = getattr(x, "shape", None)
    return shape if type(shape) is tuple else tuple(np.shape(x))


def batch_size(args: Sequence, dims: Sequence) -> int:
    """How many examples the batched arguments hold."""
    for a, d in zip(args, dims):
        if d is not None:
            return int(_shape(a)[d])
    raise ValueError("batch_size: no argument is batched")


def batched_position(axis: int, d: int) -> int:
    """Where axis ``axis`` of one example sits in an array whose batch axis is ``d``."""
    return axis + (axis >= d)
