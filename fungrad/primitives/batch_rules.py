"""Batching rules shared by families of ops, and the helpers rules are written with.

A batching rule ``rule(op, args, dims, **params) -> (out, out_dims)`` receives the op, its
array arguments (each holding every example, or one value shared by all) with ``dims[i]`` the
axis of ``args[i]`` that holds the batch (None if shared), and the op's static parameters, and
returns the batched result with the axis that holds the batch (a tuple of them for an op with
several outputs). Rules are written with op calls, so what they compute is recorded for
gradients, traced by fg.jit and batched again by an outer vmap. Give one to your own op with
``fg.defop(..., batch=rule)``; these cover whole families:

=========================  =========================================================================
``elementwise``            NumPy broadcasting: batch axes to the front, lower ranks padded
``reduction``              an ``axis`` parameter (and ``keepdims`` if the op has one), shifted past
                           the batch axis, which stays where it is
``matrix_stack``           ops on stacks of matrices (NumPy's linalg): batch axis first
``leading``                ops whose inputs share their leading axes exactly: batch first on all
=========================  =========================================================================

>>> import numpy as np, fungrad as fg
>>> from fungrad.batching import elementwise
>>> cube = fg.defop("cube_rules_doc", lambda x: x ** 3, lambda g, out, x: (3 * g * x * x,),
...                 batch=elementwise)
>>> fg.vmap(cube)(np.array([[1.0, 2.0], [3.0, 4.0]]))
array([[ 1.,  8.],
       [27., 64.]])
"""

from __future__ import annotations

from typing import Any, Sequence

from ._batch_axes import BatchedParam, batch_size, batched_position, ndim_of
from .shape import materialize, move_axis, shifted_axes, to_front, with_rank

__all__ = ["BatchedParam", "elementwise", "reduction", "matrix_stack", "leading", "align",
           "move_axis", "to_front", "materialize", "batch_size", "ndim_of", "with_rank",
           "batched_position", "shifted_axes"]


def align(args: Sequence, dims: Sequence) -> list:
    """Arguments of an elementwise (broadcasting) op made to broadcast over the batch: batched
    ones with the batch first and padded to the highest rank of one example; shared ones as
    they are (NumPy aligns them from the right)."""
    rank = max((ndim_of(a) - (d is not None) for a, d in zip(args, dims)), default=0)
    return [a if d is None else with_rank(to_front(a, d), rank) for a, d in zip(args, dims)]


# -- the families ---------------------------------------------------------------------------------


def elementwise(op, args: Sequence, dims: Sequence, **params) -> tuple[Any, int]:
    """The rule of ops that broadcast their array arguments as NumPy does (add, tanh,
    where...): the batch axes go first, lower ranks are padded, and the op runs once."""
    return op(*align(args, dims), **params), 0


_DEFAULT = object()


def reduction(op, args: Sequence, dims: Sequence, *, axis=_DEFAULT, **params
              ) -> tuple[Any, int]:
    """The rule of ops of one array with an ``axis`` parameter (sum, max, softmax,
    logsumexp...): the axes move past the batch axis, which stays where it is; if the op has
    ``keepdims`` and it is false, the reduced axes before it close up."""
    (x,), (d,) = args, dims
    if axis is _DEFAULT:  # the op's own default (None for sum, -1 for softmax)
        axis = op.__signature__.parameters["axis"].default
    axes, pos = shifted_axes(op.name, axis, ndim_of(x) - 1, d)
    out = op(x, axis=pos[0] if isinstance(axis, int) else pos, **params)
    removes = "keepdims" in op.param_names and not params.get("keepdims", False)
    return out, (d - sum(1 for a in axes if a < d)) if removes else d


def matrix_stack(op, args: Sequence, dims: Sequence, **params) -> tuple[Any, Any]:
    """The rule of ops that map over stacks of matrices (NumPy's linalg: inv, det, eigh,
    svd...): the batch axis first, a stack of one more axis."""
    size = batch_size(args, dims)
    nd = max(ndim_of(a) - (d is not None) for a, d in zip(args, dims))
    moved = [with_rank(materialize(a, d, size), nd) for a, d in zip(args, dims)]
    return op(*moved, **params), 0


def leading(op, args: Sequence, dims: Sequence, **params) -> tuple[Any, Any]:
    """The rule of ops whose inputs must share their leading axes exactly (fused cells): the
    batch axis first on every input, shared inputs broadcast to the batch."""
    size = batch_size(args, dims)
    return op(*[materialize(a, d, size) for a, d in zip(args, dims)], **params), 0
