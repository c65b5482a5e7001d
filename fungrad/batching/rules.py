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

import numpy as np

# the ops package imports this module while it registers its ops: rules look ops up at call time
from .. import ops as _ops

__all__ = ["BatchedParam", "elementwise", "reduction", "matrix_stack", "leading", "align",
           "move_axis", "to_front", "materialize", "batch_size", "ndim_of", "with_rank",
           "batched_position", "shifted_axes"]


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


def move_axis(x: Any, src: int, dst: int) -> Any:
    """``x`` with axis ``src`` moved to position ``dst`` (one ``transpose`` op; none if equal)."""
    if src == dst:
        return x
    perm = [i for i in range(ndim_of(x)) if i != src]
    perm.insert(dst, src)
    return _ops.transpose(x, axes=tuple(perm))


def to_front(x: Any, d: int | None) -> Any:
    """``x`` with its batch axis ``d`` first (``x`` itself if unbatched or already first)."""
    return x if not d else move_axis(x, d, 0)


def materialize(x: Any, d: int | None, size: int) -> Any:
    """``x`` batched along axis 0: moved there, or, if shared, broadcast to ``size`` copies."""
    if d is not None:
        return to_front(x, d)
    shape = _shape(x)
    return _ops.broadcast_to(_ops.expand_dims(x, axis=0), shape=(size,) + shape)


def with_rank(x: Any, rank: int) -> Any:
    """A batch-first ``x`` with length-1 axes inserted after the batch axis until one example
    has ``rank`` axes (so that it broadcasts against others as its example did)."""
    missing = rank - (ndim_of(x) - 1)
    if missing <= 0:
        return x
    return _ops.expand_dims(x, axis=tuple(range(1, 1 + missing)))


def align(args: Sequence, dims: Sequence) -> list:
    """Arguments of an elementwise (broadcasting) op made to broadcast over the batch: batched
    ones with the batch first and padded to the highest rank of one example; shared ones as
    they are (NumPy aligns them from the right)."""
    rank = max((ndim_of(a) - (d is not None) for a, d in zip(args, dims)), default=0)
    return [a if d is None else with_rank(to_front(a, d), rank) for a, d in zip(args, dims)]


def batched_position(axis: int, d: int) -> int:
    """Where axis ``axis`` of one example sits in an array whose batch axis is ``d``."""
    return axis + (axis >= d)


def shifted_axes(op_name: str, axis, ndim: int, d: int) -> tuple[tuple, tuple]:
    """``(axes, positions)``: ``axis`` (None, an int or a tuple) normalised for one example of
    ``ndim`` axes, and where those axes sit in the batched array (batch axis ``d``)."""
    axes = _ops.shape.normalize_axes(op_name, axis, ndim)
    return axes, tuple(batched_position(a, d) for a in axes)


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
