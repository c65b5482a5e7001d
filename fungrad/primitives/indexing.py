"""Indexing: ``getitem`` (basic and advanced), the book's ``index_select``, and their transposes.

The transposes add cotangent rows back at the indexed positions; repeated indices accumulate.
That scatter-add is the loop the book writes in Python and NumPy does slowly (``np.add.at``),
so row scatters run in a Numba kernel (:mod:`fungrad.kernels.scatter`).
"""

from __future__ import annotations

import numpy as np

from .batch_rules import (
    BatchedParam, batch_size, materialize, move_axis, ndim_of, to_front, with_rank,
)
from ..domains import Domain, Indices, Real
from ..errors import DTypeError, IndexRangeError, ShapeError, VmapError
from ..kernels._dtypes import float_dtype
from ..registry import defop, unwrap
from .shape import reshape, shape_of, transpose

__all__ = ["getitem", "scatter_index", "index_select", "scatter_add", "is_advanced"]


def is_advanced(index) -> bool:
    """Whether ``index`` uses advanced (array) indexing, so positions may repeat.

    >>> import numpy as np
    >>> is_advanced((slice(None), 1)), is_advanced(np.array([0, 0]))
    (False, True)
    """
    items = index if isinstance(index, tuple) else (index,)
    return any(
        not (isinstance(i, (slice, int, np.integer)) or i is None or i is Ellipsis)
        for i in items
    )


def _plain_index(index):
    """Tensors inside an index become their arrays; lists become arrays."""
    if type(index) is int:  # (the common case, w[i]: plain as it is)
        return index

    def fix(i):
        i = unwrap(i)
        return np.asarray(i) if isinstance(i, list) else i
    return tuple(fix(i) for i in index) if isinstance(index, tuple) else fix(index)


def _getitem(x, *, index):
    return np.asarray(x)[index]


def _getitem_check(x, *, index):
    return IndexRangeError(f"getitem: index {index!r} is not valid for an array of shape "
                           f"{tuple(np.shape(x))}")


# -- batching: an index applied to every example at once ----------------------------------------


def _is_rows(index) -> bool:
    """Whether ``index`` is one integer array (rows of axis 0: an embedding lookup)."""
    return isinstance(index, np.ndarray) and index.dtype.kind in "iu"


def _is_array_item(i) -> bool:
    return isinstance(i, (np.ndarray, BatchedParam)) or (
        not isinstance(i, (slice, int, np.integer)) and i is not None and i is not Ellipsis)


def _example_ndim(i) -> int:
    if isinstance(i, BatchedParam):
        return ndim_of(i.value) - (i.dim is not None)
    return np.ndim(i)


def _spelled(items: tuple, nd: int) -> list:
    """``items`` with the ellipsis written out as slices and each boolean mask shared by all
    examples turned into its integer arrays (what NumPy does with it)."""
    used = sum(_example_ndim(i) if _is_array_item(i) and _dtype_kind(i) == "b" else
               (0 if i is None or i is Ellipsis else 1) for i in items)
    out: list = []
    for i in items:
        if i is Ellipsis:
            out.extend([slice(None)] * (nd - used))
        elif isinstance(i, BatchedParam) and i.dim is None:
            out.append(i.value)
        elif isinstance(i, np.ndarray) and i.dtype.kind == "b":
            out.extend(np.nonzero(i))
        elif isinstance(i, BatchedParam) and _dtype_kind(i) == "b":
            raise VmapError("getitem: a boolean mask that differs from one example to the next "
                            "selects a different number of elements from each, so the results "
                            "cannot be stacked; use fungrad.numpy.where(mask, x, 0) instead")
        else:
            out.append(i)
    return out


def _dtype_kind(i) -> str:
    v = i.value if isinstance(i, BatchedParam) else i
    return np.dtype(getattr(v, "dtype", None) or np.asarray(v).dtype).kind


def _batched_index(index, nd: int, size: int, x_batched: bool):
    """How one example's ``index`` reads the whole batch: ``(full, bdim, perm)``.

    ``x[full]``, with ``x`` the batch first if ``x_batched`` (else shared), holds the batch on
    axis ``bdim``; if ``perm`` is not None, ``transpose(x[full], perm)`` puts one example's
    axes in order, batch first (``bdim`` is then 0). NumPy's placement of advanced indices
    decides: next to each other, they stay in place; apart, they go first.
    """
    items = _spelled(index if isinstance(index, tuple) else (index,), nd)
    batched = any(isinstance(i, BatchedParam) for i in items)
    arrays = [k for k, i in enumerate(items) if _is_array_item(i)]
    advanced = [k for k, i in enumerate(items) if _is_array_item(i) or (
        arrays and isinstance(i, (int, np.integer)))]
    adjacent = not advanced or advanced == list(range(advanced[0], advanced[-1] + 1))
    if not batched:
        if not x_batched:
            raise VmapError("getitem: nothing batched in a batched call")  # internal invariant
        if adjacent:
            return (slice(None),) + tuple(items), 0, None
        rank = len(np.broadcast_shapes(*[np.shape(items[k]) for k in advanced]))
        return (slice(None),) + tuple(items), rank, None
    rank = max(_example_ndim(items[k]) for k in advanced)
    full = [with_rank(to_front(i.value, i.dim), rank) if isinstance(i, BatchedParam) else i
            for i in items]
    pre = sum(1 for i in items[:advanced[0]] if i is None or isinstance(i, slice))
    if not x_batched:
        return tuple(full), (pre if adjacent else 0), None
    batch = np.arange(size).reshape((size,) + (1,) * rank)
    full_index = (batch,) + tuple(full)
    if not adjacent or pre == 0:  # the batch joins the advanced block at the front
        return full_index, 0, None
    consumed = sum(0 if i is None else 1 for i in items)
    out_nd = rank + sum(1 for i in items if i is None or isinstance(i, slice)) + nd - consumed
    perm = ((0,) + tuple(range(1 + rank, 1 + rank + pre)) + tuple(range(1, 1 + rank))
            + tuple(range(1 + rank + pre, 1 + out_nd)))
    return full_index, 0, perm


def _getitem_batch(op, args, dims, *, index):
    (x,), (d,) = args, dims
    nd = ndim_of(x) - (d is not None)
    if d is not None and _is_rows(index) and nd >= 1:  # rows: the batch beside them, one take
        return getitem(move_axis(x, d, 1), index=index), index.ndim
    size = _size(args, dims, index)
    full, bdim, perm = _batched_index(index, nd, size, d is not None)
    out = getitem(to_front(x, d) if d is not None else x, index=full)
    return (transpose(out, axes=perm), 0) if perm is not None else (out, bdim)


def _size(args, dims, index) -> int:
    if any(d is not None for d in dims):
        return batch_size(args, dims)
    for i in (index if isinstance(index, tuple) else (index,)):
        if isinstance(i, BatchedParam) and i.dim is not None:
            return int(shape_of(i.value)[i.dim])
    raise VmapError("getitem: nothing batched in a batched call")  # internal invariant


def _scatter_index_batch(op, args, dims, *, shape, index):
    # the transpose of _getitem_batch: g arrives laid out as getitem's batched result
    (g,), (d,) = args, dims
    shape = tuple(shape)
    size = _size(args, dims, index)
    if _is_rows(index) and shape:
        g = move_axis(materialize(g, d, size), 0, index.ndim)
        return scatter_index(g, shape=(shape[0], size) + shape[1:], index=index), 1
    full, bdim, perm = _batched_index(index, len(shape), size, True)
    g = materialize(g, d, size)
    g = transpose(g, axes=tuple(int(i) for i in np.argsort(perm))) if perm is not None \
        else move_axis(g, 0, bdim)
    return scatter_index(g, shape=(size,) + shape, index=full), 0


getitem = defop("getitem", _getitem,
                lambda g, out, x, index: (scatter_index(g, shape=shape_of(x), index=index),),
                Domain((Real(),), [
                    (((4, 5),), {"index": (slice(1, 3), 2)}),
                    (((4, 5),), {"index": np.array([0, 2, 2, 3])}),
                    (((4, 5),), {"index": (np.array([0, 0, 1]), np.array([1, 1, 4]))}),
                    (((4, 5),), {"index": (Ellipsis, slice(None, None, -2))}),
                    (((3, 4),), {"index": np.array([[True, False, True, True]] * 3)}),
                ], complex=True),
    check=_getitem_check, doc="""x[index] with NumPy's basic and advanced indexing
    (``t[index]`` on a Tensor). The VJP scatters the cotangent back (``scatter_index``).

    >>> import numpy as np
    >>> from fungrad.primitives import getitem
    >>> getitem(np.arange(6.0).reshape(2, 3), index=(slice(None), 1))
    array([1., 4.])
    """,
    batch=_getitem_batch)


def _scatter_index(g, *, shape, index):
    g = np.asarray(g)
    dtype = g.dtype if g.dtype.kind in "fc" else np.dtype(np.float64)
    if isinstance(index, np.ndarray) and index.dtype.kind in "iu" and len(shape) >= 1:
        return _scatter_rows("scatter_index", g, index, shape[0]).astype(dtype, copy=False)
    out = np.zeros(shape, dtype=dtype)
    if not is_advanced(index):
        out[index] = g  # basic indexing never repeats a position
    else:
        np.add.at(out, index, g)
    return out


scatter_index = defop("scatter_index", _scatter_index,
                      lambda g, out, x, shape, index: (getitem(g, index=index),),
                      Domain((Real(),), [
                          (((2, 5),), {"shape": (4, 5), "index": (slice(1, 3),)}),
                          (((4, 5),), {"shape": (4, 5), "index": np.array([0, 2, 2, 3])}),
                      ], complex=True),
    doc="""The transpose of getitem: zeros of ``shape`` with x added at
    ``index`` (repeated positions accumulate).

    >>> import numpy as np
    >>> from fungrad.primitives import scatter_index
    >>> scatter_index(np.ones(3), shape=(2,), index=np.array([0, 1, 1]))
    array([1., 2.])
    """,
    batch=_scatter_index_batch)


# -- the book's index_select --------------------------------------------------------------------

def _check_indices(op: str, indices, n: int) -> np.ndarray:
    """Integer ``indices`` valid for ``n`` rows, as a C-contiguous int64 array of the same shape
    with negative ids wrapped: the one bounds check (the scatter kernels trust it)."""
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        if idx.size == 0:
            return idx.astype(np.int64)
        raise DTypeError(f"{op}: indices must be integers, got dtype {idx.dtype}")
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if lo < -n or hi >= n:
            bad = lo if lo < -n else hi
            raise IndexRangeError(f"{op}: index {bad} is out of range for {n} rows "
                                  f"(valid: {-n}..{n - 1})")
        if lo < 0:
            return np.where(idx < 0, idx + n, idx).astype(np.int64)
    return np.asarray(idx, dtype=np.int64, order="C")  # (ascontiguousarray makes 0-d 1-d)


def _index_select(x, indices):
    x = np.asarray(x)
    if x.ndim == 0:
        raise IndexRangeError("index_select: cannot select rows of a 0-d array")
    idx = _check_indices("index_select", indices, x.shape[0])
    return x.take(idx, axis=0)


def _valid_ids(ids, n: int):
    """Integer ids checked against ``n`` rows, negative ones wrapped (before an offset)."""
    if isinstance(ids, np.ndarray):
        return _check_indices("index_select", ids, n)
    from .elementwise import where  # noqa: PLC0415 (elementwise sits beside this module)

    return where(ids < 0, ids + n, ids)


def _offset_ids(ids, d, size: int, n: int):
    """Per-example ids into one table of ``size * n`` rows: example ``b``'s id ``i`` becomes
    ``b * n + i``."""
    ids = _valid_ids(materialize(ids, d, size), n)
    offsets = (np.arange(size) * n).reshape((size,) + (1,) * (ndim_of(ids) - 1))
    return ids + offsets


def _index_select_batch(op, args, dims):
    (x, ids), (dx, di) = args, dims
    if dx is not None and ndim_of(x) < 2:
        raise IndexRangeError("index_select: cannot select rows of a 0-d array")
    if di is None:  # shared ids: the batch beside the rows, one gather
        return index_select(move_axis(x, dx, 1), ids), ndim_of(ids)
    if dx is None:
        return index_select(x, to_front(ids, di)), 0
    size = batch_size(args, dims)
    x = to_front(x, dx)
    x_shape = shape_of(x)
    table = reshape(x, (size * x_shape[1],) + x_shape[2:])
    return index_select(table, _offset_ids(ids, di, size, x_shape[1])), 0


index_select = defop("index_select", _index_select, (
    lambda g, out, x, indices: scatter_add(g, indices, n_rows=shape_of(x)[0]),
    None,
), Domain((Real(), Indices(of=0)), [((5, 3), (4,)), ((6, 2), (2, 3)), ((4,), (7,))], complex=True),
    nondiff=(1,), doc="""Rows of x at integer ``indices`` (any shape of ids; an empty index
    of any dtype selects nothing): the book's embedding lookup. The VJP adds the cotangent's
    rows back at their indices (``scatter_add``, a Numba kernel).

    >>> import numpy as np
    >>> from fungrad.primitives import index_select
    >>> index_select(np.arange(6.0).reshape(3, 2), np.array([2, 0])).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """,
    batch=_index_select_batch)


def _scatter_rows(op: str, values, indices, n_rows: int):
    """The scatter-add kernel on rows: ``indices`` checked here, once."""
    from ..kernels import scatter  # noqa: PLC0415 (Numba compiles on first use, not at import)

    idx = _check_indices(op, indices, n_rows)
    values = np.asarray(values)
    if values.shape[:idx.ndim] != idx.shape:
        raise ShapeError(f"{op}: values shape {values.shape} must start with indices shape "
                         f"{idx.shape} (values.shape == indices.shape + row_shape)")
    row_shape = values.shape[idx.ndim:]
    width = int(np.prod(row_shape, dtype=np.int64))
    if values.dtype.kind == "c":  # complex rows: NumPy's twin (no kernel compiled for them)
        rows = np.ascontiguousarray(values).reshape(idx.size, width)
        out = scatter.scatter_add_numpy(n_rows, idx.reshape(-1), rows)
        return out.reshape((n_rows,) + row_shape)
    rows = np.ascontiguousarray(values, dtype=float_dtype(op, values.dtype))
    out = scatter.scatter_add(n_rows, idx.reshape(-1), rows.reshape(idx.size, width))
    # a view would tell the engine the array may be shared, costing a copy of the whole table
    return out if out.shape[1:] == row_shape else out.reshape((n_rows,) + row_shape)


def _scatter_add(values, indices, *, n_rows):
    return _scatter_rows("scatter_add", values, indices, n_rows)


def _scatter_add_batch(op, args, dims, *, n_rows):
    (values, ids), (dv, di) = args, dims
    size = batch_size(args, dims)
    if di is None:  # shared ids: rows of (batch, row...), one scatter
        return scatter_add(move_axis(values, dv, ndim_of(ids)), ids, n_rows=n_rows), 1
    values = materialize(values, dv, size)
    out = scatter_add(values, _offset_ids(ids, di, size, n_rows), n_rows=size * n_rows)
    return reshape(out, (size, n_rows) + shape_of(out)[1:]), 0


scatter_add = defop("scatter_add", _scatter_add, (
    lambda g, out, values, indices, n_rows: index_select(g, indices),
    None,
), Domain((Real(), Indices(param="n_rows")), [
    (((4, 3), (4,)), {"n_rows": 5}), (((2, 3, 2), (2, 3)), {"n_rows": 3}),
], complex=True), nondiff=(1,), doc="""Zeros of ``n_rows`` rows with each row of values added at its
    index (repeats accumulate): the transpose of index_select.

    >>> import numpy as np
    >>> from fungrad.primitives import scatter_add
    >>> scatter_add(np.ones((3, 2)), np.array([0, 2, 0]), n_rows=3).tolist()
    [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]
    """,
    batch=_scatter_add_batch)
