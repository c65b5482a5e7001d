"""``unstack``: split an array along an axis into all its slices, as one multi-output op.

``unstack(x, axis=0)`` returns ``x.shape[axis]`` arrays, the slices ``x[..., i, ...]`` (views,
as ``x[i]`` is). It is the way to slice a batched computation per step, e.g. an input
projection of all time steps done as one GEMM: indexing ``xp[t]`` once per step records one
``getitem`` per step, each of whose VJPs scatters into a zero-filled array of the full shape
(``T`` full-size arrays for ``T`` steps); ``unstack``'s VJP stacks the slices' cotangents once,
with zeros only for the slices that received none.

>>> import numpy as np, fungrad as fg
>>> x = fg.Tensor(np.arange(6.0).reshape(3, 2), autograd=True)
>>> rows = fg.unstack(x)
>>> [r.data.tolist() for r in rows]
[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
>>> (rows[0] * 2 + rows[2]).sum().backward()
>>> x.grad.data.tolist()
[[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]

It is ``split`` (:mod:`fungrad.primitives.shape`) into pieces of length one with the axis dropped,
as one node: ``split`` then a ``reshape`` per piece would record ``T + 1``.
"""

from __future__ import annotations

import numpy as np

from .batch_rules import batched_position
from ..domains import Domain, Real
from ..errors import ShapeError
from ..registry import defop
from .shape import normalize_axes, shape_of, stack

__all__ = ["unstack"]

_DOMAIN = Domain((Real(),), [(((3, 4),), {"axis": 0}), (((2, 3, 4),), {"axis": 1}),
                             (((2, 3),), {"axis": -1}), (((1, 2),), {})], complex=True)
_DOC = """The slices of x along ``axis``: a tuple of x.shape[axis] arrays (views of x). The
    VJP stacks the slices' cotangents once (zeros for slices that received none).

    >>> import numpy as np
    >>> from fungrad.primitives import unstack
    >>> [a.tolist() for a in unstack(np.arange(4).reshape(2, 2), axis=1)]
    [[0, 2], [1, 3]]
    """


def _axis_and_length(x_shape: tuple, axis) -> tuple[int, int]:
    if len(x_shape) == 0:
        raise ShapeError("unstack: cannot unstack a 0-d array")
    ax = normalize_axes("unstack", axis, len(x_shape))
    if len(ax) != 1:
        raise ShapeError(f"unstack: axis must be one int, got {axis!r}")
    if x_shape[ax[0]] == 0:
        raise ShapeError(f"unstack: axis {axis} of shape {x_shape} has no slices")
    return ax[0], x_shape[ax[0]]


def _unstack(x, axis=0):
    x = np.asarray(x)
    ax, n = _axis_and_length(x.shape, axis)
    lead = (slice(None),) * ax
    return tuple(x[lead + (i,)] for i in range(n))


def _unstack_vjp(g, out, x, axis=0):
    ax, _ = _axis_and_length(shape_of(x), axis)
    dtype = np.result_type(*(getattr(gi, "dtype", np.float64) for gi in g if gi is not None))
    pieces = [gi if gi is not None else np.zeros(shape_of(o), dtype) for gi, o in zip(g, out)]
    return (stack(pieces, axis=ax),)


def _unstack_batch(op, args, dims, *, axis=0):
    (x,), (d,) = args, dims
    shape = shape_of(x)
    a, _ = _axis_and_length(shape[:d] + shape[d + 1:], axis)
    return unstack(x, axis=batched_position(a, d)), d - (a < d)


unstack = defop("unstack", _unstack, _unstack_vjp, _DOMAIN, n_outputs=None, doc=_DOC,
    batch=_unstack_batch)
