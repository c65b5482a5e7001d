"""Array manipulation ops whose composites would be slow: roll, constant pad, diagonals.

Each is linear, and its VJP is its transpose written with one registered op: ``roll`` by the
opposite shift, ``pad`` by the slice it surrounds, ``diagonal`` and ``diag_embed`` by each
other. As composites (two slices and a concatenation; a concatenation per axis; advanced
indexing) each would cost full-size zero-filled scatters in backward.
"""

from __future__ import annotations

import operator

import numpy as np

from .batch_rules import (
    BatchedParam, batched_position, ndim_of, shifted_axes, to_front, with_rank,
)
from ..domains import Domain, Real
from ..errors import DTypeError, ShapeError, VmapError
from ..registry import defop
from .indexing import getitem
from .shape import normalize_axes, reshape, shape_of

__all__ = ["roll", "pad", "pad_pairs", "diagonal", "diag_embed"]


# -- roll: a cyclic shift; its transpose shifts back -------------------------------------------

def _roll(x, *, shift, axis=None):
    return np.roll(x, shift, axis)


def _negated(shift):
    return tuple(-s for s in shift) if isinstance(shift, tuple) else -shift


def _roll_batch(op, args, dims, *, shift, axis=None):
    (x,), (d,) = args, dims
    if axis is None:  # each example flattened, rolled, and shaped back
        x = to_front(x, d)
        shape = shape_of(x)
        return reshape(roll(reshape(x, (shape[0], -1)), shift=shift, axis=1), shape), 0
    if isinstance(axis, (tuple, list)):
        pos = tuple(batched_position(normalize_axes("roll", a, ndim_of(x) - 1)[0], d)
                    for a in axis)
    else:
        _, (pos,) = shifted_axes("roll", axis, ndim_of(x) - 1, d)
    return roll(x, shift=shift, axis=pos), d


roll = defop("roll", _roll, lambda g, out, x, shift, axis=None: (
    roll(g, shift=_negated(shift), axis=axis),), Domain((Real(),), [
        (((5,),), {"shift": 2}), (((3, 4),), {"shift": -1}), (((3, 4),), {"shift": 5, "axis": 1}),
        (((2, 3, 4),), {"shift": (1, -2), "axis": (0, 2)}),
    ], complex=True),
    doc="""Shift elements cyclically by ``shift`` along ``axis`` (the flattened array when
    None), as numpy.roll. The VJP rolls the cotangent back.

    >>> import numpy as np
    >>> from fungrad.primitives import roll
    >>> roll(np.arange(4.0), shift=1)
    array([3., 0., 1., 2.])
    """,
    batch=_roll_batch)


# -- constant padding: its transpose is the slice it surrounds ---------------------------------

def pad_pairs(pad_width, ndim: int, name: str = "pad") -> tuple:
    """NumPy's ``pad_width`` forms (``n``, ``(b, a)``, ``((b0, a0), (b1, a1), ...)``) as one
    ``(before, after)`` pair of non-negative ints per axis.

    >>> pad_pairs(1, 2), pad_pairs(((1, 2),), 2)
    (((1, 1), (1, 1)), ((1, 2), (1, 2)))
    """
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu" and not (widths.dtype.kind == "f" and widths.size == 0):
        raise DTypeError(f"{name}: pad_width must be ints, got {pad_width!r}")
    try:
        pairs = np.broadcast_to(widths, (ndim, 2))
    except ValueError:
        raise ShapeError(f"{name}: pad_width {pad_width!r} does not fit an array of {ndim} "
                         "dimensions (give n, (before, after), or one pair per axis)") from None
    if (pairs < 0).any():
        raise ShapeError(f"{name}: pad_width {pad_width!r} has negative widths")
    return tuple((operator.index(b), operator.index(a)) for b, a in pairs.tolist())


def _pad(x, *, pad_width, constant_values=0):
    x = np.asarray(x)
    return np.pad(x, pad_pairs(pad_width, x.ndim), mode="constant",
                  constant_values=constant_values)


def _pad_vjp(g, out, x, pad_width, constant_values=0):
    shape = shape_of(x)
    pairs = pad_pairs(pad_width, len(shape))
    return (getitem(g, index=tuple(slice(b, b + n) for (b, _), n in zip(pairs, shape))),)


def _pad_batch(op, args, dims, *, pad_width, constant_values=0):
    (x,), (d,) = args, dims
    nd = ndim_of(x) - (d is not None)
    pairs = pad_pairs(pad_width, nd)
    if isinstance(constant_values, BatchedParam):  # a constant per example: added after
        value = constant_values
        if value.dim is None:
            constant_values = value.value
        elif ndim_of(value.value) != 1:
            raise VmapError("pad: constant_values that differ per example must be one number "
                            "per example")
        else:
            x = to_front(x, d)
            border = pad(np.zeros(shape_of(x)[1:], dtype=x.dtype), pad_width=pairs,
                         constant_values=1)
            fill = with_rank(to_front(value.value, value.dim), nd)
            return pad(x, pad_width=((0, 0),) + pairs) + fill * border, 0
    widths = pairs[:d] + ((0, 0),) + pairs[d:]
    values = np.asarray(constant_values)
    if values.ndim == 2 and values.shape[0] == nd:  # one (before, after) pair per axis
        values = np.insert(values, d, 0, axis=0)
    return pad(x, pad_width=widths, constant_values=values), d


pad = defop("pad", _pad, _pad_vjp, Domain((Real(),), [
    (((3,),), {"pad_width": 2}), (((2, 3),), {"pad_width": ((1, 0), (2, 3))}),
    (((2, 3),), {"pad_width": (0, 1), "constant_values": 1.5}),
    (((2, 1, 2),), {"pad_width": ((0, 0), (1, 1), (0, 2))}),
], complex=True), doc="""Surround x with ``constant_values`` (``pad_width`` in NumPy's forms), as
    numpy.pad with mode='constant'. The VJP slices the cotangent; fungrad.numpy.pad builds
    the other modes on ``take``.

    >>> import numpy as np
    >>> from fungrad.primitives import pad
    >>> pad(np.array([1.0, 2.0]), pad_width=(1, 2))
    array([0., 1., 2., 0., 0.])
    """,
    batch=_pad_batch)


# -- diagonals ---------------------------------------------------------------------------------

def _diagonal_index(shape: tuple, offset: int, axis1: int, axis2: int):
    """``(rows, cols)`` of the diagonal of the plane ``(axis1, axis2)`` of ``shape``."""
    n1, n2 = shape[axis1], shape[axis2]
    length = max(0, min(n1 - max(-offset, 0), n2 - max(offset, 0)))
    i = np.arange(length)
    return i + max(-offset, 0), i + max(offset, 0)


def _plane(op: str, ndim: int, axis1: int, axis2: int) -> tuple[int, int]:
    if ndim < 2:
        raise ShapeError(f"{op}: needs at least 2 dimensions, got {ndim}")
    a1 = normalize_axes(op, axis1, ndim)[0]
    a2 = normalize_axes(op, axis2, ndim)[0]
    if a1 == a2:
        raise ShapeError(f"{op}: axis1 and axis2 are the same axis ({axis1}, {axis2})")
    return a1, a2


def _diagonal(x, offset=0, axis1=0, axis2=1):
    x = np.asarray(x)
    _plane("diagonal", x.ndim, axis1, axis2)
    return np.diagonal(x, offset, axis1, axis2).copy()  # NumPy's is a read-only view


def _diagonal_batch(op, args, dims, *, offset=0, axis1=0, axis2=1):
    (x,), (d,) = args, dims
    a1, a2 = _plane("diagonal", ndim_of(x) - 1, axis1, axis2)
    p1, p2 = batched_position(a1, d), batched_position(a2, d)
    return diagonal(x, offset=offset, axis1=p1, axis2=p2), d - (a1 < d) - (a2 < d)


diagonal = defop("diagonal", _diagonal, lambda g, out, x, offset=0, axis1=0, axis2=1: (
    diag_embed(g, shape=shape_of(x), offset=offset, axis1=axis1, axis2=axis2),),
    Domain((Real(),), [
        (((3, 3),), {}), (((3, 4),), {"offset": 1}), (((4, 3),), {"offset": -2}),
        (((2, 3, 3),), {"axis1": 1, "axis2": 2}), (((3, 2, 4),), {"axis1": 2, "axis2": 0}),
    ], complex=True), doc="""The diagonal at ``offset`` of the plane (``axis1``, ``axis2``), as
    numpy.diagonal (a copy, not a read-only view); it becomes the last axis. The VJP writes
    the cotangent onto the diagonal of zeros (``diag_embed``).

    >>> import numpy as np
    >>> from fungrad.primitives import diagonal
    >>> diagonal(np.arange(9.0).reshape(3, 3), offset=1)
    array([1., 5.])
    """,
    batch=_diagonal_batch)


def _diag_embed(x, *, shape, offset=0, axis1=0, axis2=1):
    x = np.asarray(x)
    shape = tuple(shape)
    a1, a2 = _plane("diag_embed", len(shape), axis1, axis2)
    rows, cols = _diagonal_index(shape, offset, a1, a2)
    rest = tuple(n for i, n in enumerate(shape) if i not in (a1, a2))
    if x.shape != rest + (len(rows),):
        raise ShapeError(f"diag_embed: x of shape {x.shape} does not fit the diagonal of "
                         f"shape {shape} at offset {offset} of axes ({axis1}, {axis2}), which "
                         f"has shape {rest + (len(rows),)}")
    out = np.zeros(shape, dtype=x.dtype)
    np.moveaxis(out, (a1, a2), (-2, -1))[..., rows, cols] = x
    return out


def _diag_embed_batch(op, args, dims, *, shape, offset=0, axis1=0, axis2=1):
    (x,), (d,) = args, dims
    shape = tuple(shape)
    a1, a2 = _plane("diag_embed", len(shape), axis1, axis2)
    x = to_front(x, d)
    return diag_embed(x, shape=(shape_of(x)[0],) + shape, offset=offset, axis1=a1 + 1,
                      axis2=a2 + 1), 0


diag_embed = defop("diag_embed", _diag_embed,
                   lambda g, out, x, shape, offset=0, axis1=0, axis2=1: (
                       diagonal(g, offset=offset, axis1=axis1, axis2=axis2),),
                   Domain((Real(),), [
                       (((3,),), {"shape": (3, 3)}), (((2,),), {"shape": (3, 3), "offset": 1}),
                       (((2,),), {"shape": (3, 4), "offset": -1}),
                       (((2, 3),), {"shape": (2, 3, 3), "axis1": 1, "axis2": 2}),
                       (((3, 2),), {"shape": (2, 3, 4), "axis1": 2, "axis2": 0}),
                   ], complex=True),
    doc="""Zeros of ``shape`` with x on the diagonal at ``offset`` of the
    plane (``axis1``, ``axis2``): the transpose of ``diagonal`` (x has diagonal's output
    shape). ``numpy.diag`` and ``numpy.diagflat`` of a vector are this op.

    >>> import numpy as np
    >>> from fungrad.primitives import diag_embed
    >>> diag_embed(np.array([1.0, 2.0]), shape=(2, 3), offset=1)
    array([[0., 1., 0.],
           [0., 0., 2.]])
    """,
    batch=_diag_embed_batch)
