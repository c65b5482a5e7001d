"""Joining and splitting under NumPy's names: hstack, vstack, dstack, column_stack,
row_stack, append, the index tricks ``r_`` and ``c_``, and split, array_split, hsplit,
vsplit, dsplit.

Joins are ``concatenate`` after NumPy's reshapes. Splits return lists, as NumPy does, made by
one multi-output ``split`` op when the pieces tile the axis in order (its VJP concatenates
the pieces' cotangents once); pieces that overlap or come out of order (NumPy allows
unsorted split points) are sliced one by one.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy

from .. import primitives as ops
from ..errors import ShapeError
from ..primitives.shape import normalize_axes, shape_of, split_into
from ._shape import Array, _at_least, _holds_tensor, _int_tuple, _reshaped, operand, ravel
from ._wrap import cast, implements, plain

__all__ = ["hstack", "vstack", "dstack", "column_stack", "row_stack", "append", "r_", "c_",
           "split", "array_split", "hsplit", "vsplit", "dsplit"]


def _arrays(name: str, tup: Sequence, dtype: Any = None) -> list:
    arrays = [cast(operand(a), dtype) for a in tup]  # an array or Tensor: its first axis
    if not arrays:
        raise ShapeError(f"{name}: needs at least one array to join")
    return arrays


@implements(numpy.hstack)
def hstack(tup: Sequence, *, dtype: Any = None, casting: str = "same_kind") -> Array:
    """Arrays joined along their second axis (their first if all are 1-D), as
    ``numpy.hstack``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.hstack([np.ones(2), np.zeros(1)])
    array([1., 1., 0.])
    """
    arrays = [_at_least(a, 1) for a in _arrays("hstack", tup, dtype)]
    axis = 0 if all(len(shape_of(a)) == 1 for a in arrays) else 1
    return ops.concatenate(arrays, axis=axis)


@implements(numpy.vstack)
def vstack(tup: Sequence, *, dtype: Any = None, casting: str = "same_kind") -> Array:
    """Arrays joined along their first axis, vectors taken as rows, as ``numpy.vstack``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.vstack([np.ones(2), np.zeros(2)])
    array([[1., 1.],
           [0., 0.]])
    """
    return ops.concatenate([_at_least(a, 2) for a in _arrays("vstack", tup, dtype)], axis=0)


if hasattr(numpy, "row_stack"):  # deprecated in NumPy 2.0: the same function as vstack
    implements(numpy.row_stack)(vstack)
row_stack = vstack


@implements(numpy.dstack)
def dstack(tup: Sequence) -> Array:
    """Arrays joined along their third axis (after ``atleast_3d``), as ``numpy.dstack``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.dstack([np.ones((2, 2)), np.zeros((2, 2))]).shape
    (2, 2, 2)
    """
    return ops.concatenate([_at_least(a, 3) for a in _arrays("dstack", tup)], axis=2)


@implements(numpy.column_stack)
def column_stack(tup: Sequence) -> Array:
    """Vectors as columns (and 2-D arrays as they are) joined side by side, as
    ``numpy.column_stack``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.column_stack([np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    array([[1., 3.],
           [2., 4.]])
    """
    arrays = []
    for a in _arrays("column_stack", tup):
        shape = shape_of(a)
        arrays.append(a if len(shape) >= 2 else _reshaped(a, (int(numpy.prod(shape)), 1)))
    return ops.concatenate(arrays, axis=1)


@implements(numpy.append)
def append(arr: Any, values: Any, axis: int | None = None) -> Array:
    """``values`` appended to ``arr`` along ``axis`` (both flattened when None), as
    ``numpy.append``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.append(np.ones((1, 2)), [3.0])
    array([1., 1., 3.])
    """
    arr, values = operand(arr), operand(values)
    if axis is None:
        return ops.concatenate([ravel(arr), ravel(values)], axis=0)
    return ops.concatenate([arr, values], axis=axis)


# -- the index tricks r_ and c_ ----------------------------------------------------------------


class AxisConcatenator:
    """``r_[...]`` and ``c_[...]``: NumPy's index tricks, keeping Tensors differentiable.

    Items are arrays, Tensors, numbers and slices (``1:5``, ``0:1:5j`` for linspace); a
    first string item sets the axis, the minimum number of dimensions and where 1-D items'
    axis goes, as NumPy's directives ``'0,2,0'``. Without a Tensor among the items, NumPy's
    own object answers.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.r_[np.array([1.0, 2.0]), 0.0, 1:3]
    array([1., 2., 0., 1., 2.])
    >>> fg.grad(lambda x: fnp.sum(fnp.c_[x, 2 * x]))(np.array([1.0, 2.0]))
    array([3., 3.])
    """

    def __init__(self, numpy_twin: Any, axis: int = 0, ndmin: int = 1,
                 trans1d: int = -1) -> None:
        self.numpy_twin = numpy_twin
        self.axis, self.ndmin, self.trans1d = axis, ndmin, trans1d

    def __getitem__(self, key: Any) -> Array:
        items = key if isinstance(key, tuple) else (key,)
        if not any(_holds_tensor(item) for item in items):
            return self.numpy_twin[key]
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        pieces, kinds = [], []  # kinds: the value NumPy's result dtype is taken from
        for k, item in enumerate(items):
            if isinstance(item, str):
                if k:
                    raise ShapeError("r_/c_: a directive string must be the first item")
                axis, ndmin, trans1d = _directive(item, ndmin, trans1d)
                continue
            if isinstance(item, slice):
                piece = _slice_piece(item, ndmin, trans1d)
            elif type(item) in numpy.ScalarType:
                piece = numpy.array(item, ndmin=ndmin)
            else:
                piece = _item_piece(item, ndmin, trans1d)  # type: ignore[assignment]
            pieces.append(piece)
            kinds.append(item if type(item) in numpy.ScalarType else plain(piece))
        dtype = numpy.result_type(*kinds)  # numbers take the arrays' dtype, as in NumPy
        pieces = [p.astype(dtype) if type(k) in numpy.ScalarType else p
                  for p, k in zip(pieces, kinds)]
        return ops.concatenate(pieces, axis=axis)

    def __len__(self) -> int:
        return 0


def _directive(text: str, ndmin: int, trans1d: int) -> tuple[int, int, int]:
    if text in ("r", "c"):
        raise ShapeError("r_/c_: the matrix directives 'r' and 'c' are not supported (NumPy's "
                         "matrix class); use a 2-D array")
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ShapeError(f"r_/c_: unknown directive {text!r} (expected 'axis[,ndmin[,trans1d]]')"
                         ) from None
    if len(values) > 3:
        raise ShapeError(f"r_/c_: directive {text!r} has more than three numbers")
    values += [ndmin, trans1d][len(values) - 1:]
    return values[0], values[1], values[2]


def _slice_piece(item: slice, ndmin: int, trans1d: int) -> numpy.ndarray:
    piece = numpy.r_[item]  # NumPy's arange/linspace for the slice
    if ndmin > 1:
        piece = numpy.array(piece, ndmin=ndmin)
        if trans1d != -1:
            piece = piece.swapaxes(-1, trans1d)
    return piece


def _item_piece(item: Any, ndmin: int, trans1d: int) -> Array:
    piece = operand(item)
    shape = shape_of(piece)
    if ndmin <= len(shape):
        return piece
    piece = ops.reshape(piece, shape=(1,) * (ndmin - len(shape)) + shape)
    if trans1d == -1:
        return piece
    k2 = ndmin - len(shape)  # NumPy's placement of the item's own axes
    k1 = trans1d + k2 + 1 if trans1d < 0 else trans1d
    axes = list(range(ndmin))
    return ops.transpose(piece, axes=tuple(axes[:k1] + axes[k2:] + axes[k1:k2]))


r_ = AxisConcatenator(numpy.r_, 0)
c_ = AxisConcatenator(numpy.c_, -1, ndmin=2, trans1d=0)


# -- splitting --------------------------------------------------------------------------------


def _pieces(a: Array, points: Sequence[int], ax: int) -> list:
    """``a`` cut at ``points`` along ``ax`` with NumPy's slicing rules, as a list."""
    n = shape_of(a)[ax]
    bounds = [0] + list(points) + [n]
    spans = [slice(lo, hi).indices(n)[:2] for lo, hi in zip(bounds[:-1], bounds[1:])]
    spans = [(lo, max(lo, hi)) for lo, hi in spans]
    if all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1)) and \
            spans[0][0] == 0 and spans[-1][1] == n:  # the pieces tile the axis: one op
        return list(split_into(a, [hi for _, hi in spans[:-1]], axis=ax))
    lead = (slice(None),) * ax
    return [ops.getitem(a, index=lead + (slice(lo, hi),)) for lo, hi in spans]


def _split(name: str, ary: Any, indices_or_sections: Any, axis: int, equal: bool) -> list:
    a = operand(ary)
    ax = normalize_axes(name, axis, len(shape_of(a)))[0]
    n = shape_of(a)[ax]
    cut = _int_tuple(name, "indices_or_sections", indices_or_sections)
    if isinstance(cut, tuple):
        return _pieces(a, cut, ax)
    if cut <= 0:
        raise ShapeError(f"{name}: the number of sections must be positive, got {cut}")
    if equal and n % cut:
        raise ShapeError(f"{name}: axis {axis} of length {n} does not divide into {cut} equal "
                         "sections (use array_split for unequal ones)")
    each, extra = divmod(n, cut)
    sizes = [each + 1] * extra + [each] * (cut - extra)
    return _pieces(a, [int(p) for p in numpy.cumsum(sizes)[:-1]], ax)


@implements(numpy.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """``ary`` cut into equal sections, or at the given indices, along ``axis``, as
    ``numpy.split`` (a list). Backward joins the pieces' gradients in one concatenation.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> [p.tolist() for p in fnp.split(np.arange(4.0), [1])]
    [[0.0], [1.0, 2.0, 3.0]]
    >>> fg.grad(lambda x: fnp.sum(fnp.split(x, 2)[1]))(np.zeros(4))
    array([0., 0., 1., 1.])
    """
    return _split("split", ary, indices_or_sections, axis, equal=True)


@implements(numpy.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """As ``split``, but a number of sections need not divide the axis (the first ones get
    one more element), as ``numpy.array_split``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> [p.shape for p in fnp.array_split(np.zeros(5), 3)]
    [(2,), (2,), (1,)]
    """
    return _split("array_split", ary, indices_or_sections, axis, equal=False)


def _split_min(name: str, ary: Any, min_ndim: int) -> Array:
    a = operand(ary)
    if len(shape_of(a)) < min_ndim:
        raise ShapeError(f"{name}: needs an array of at least {min_ndim} dimension"
                         f"{'s' if min_ndim > 1 else ''}, got shape {shape_of(a)}")
    return a


@implements(numpy.hsplit)
def hsplit(ary: Any, indices_or_sections: Any) -> list:
    """``split`` along the second axis (the first for 1-D arrays), as ``numpy.hsplit``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> [p.shape for p in fnp.hsplit(np.zeros((2, 4)), 2)]
    [(2, 2), (2, 2)]
    """
    a = _split_min("hsplit", ary, 1)
    return split(a, indices_or_sections, axis=1 if len(shape_of(a)) > 1 else 0)


@implements(numpy.vsplit)
def vsplit(ary: Any, indices_or_sections: Any) -> list:
    """``split`` along the first axis of an array of at least 2 dimensions, as
    ``numpy.vsplit``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> [p.shape for p in fnp.vsplit(np.zeros((4, 2)), [1])]
    [(1, 2), (3, 2)]
    """
    return split(_split_min("vsplit", ary, 2), indices_or_sections, axis=0)


@implements(numpy.dsplit)
def dsplit(ary: Any, indices_or_sections: Any) -> list:
    """``split`` along the third axis of an array of at least 3 dimensions, as
    ``numpy.dsplit``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> [p.shape for p in fnp.dsplit(np.zeros((1, 2, 4)), 2)]
    [(1, 2, 2), (1, 2, 2)]
    """
    return split(_split_min("dsplit", ary, 3), indices_or_sections, axis=2)
