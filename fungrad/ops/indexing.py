"""Indexing: ``getitem`` (basic and advanced), the book's ``index_select``, and their transposes.

The transposes add cotangent rows back at the indexed positions; repeated indices accumulate.
That scatter-add is the loop the book writes in Python and NumPy does slowly (``np.add.at``),
so row scatters run in a Numba kernel (:mod:`fungrad.kernels.scatter`).
"""

from __future__ import annotations

import numpy as np

from ..domains import Domain, Indices, Real
from ..errors import DTypeError, IndexRangeError, ShapeError
from ..kernels._dtypes import float_dtype
from ..registry import defop, unwrap
from .shape import shape_of

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
    def fix(i):
        i = unwrap(i)
        return np.asarray(i) if isinstance(i, list) else i
    return tuple(fix(i) for i in index) if isinstance(index, tuple) else fix(index)


def _getitem(x, *, index):
    return np.asarray(x)[index]


def _getitem_check(x, *, index):
    return IndexRangeError(f"getitem: index {index!r} is not valid for an array of shape "
                           f"{tuple(np.shape(x))}")


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
    >>> from fungrad.ops import getitem
    >>> getitem(np.arange(6.0).reshape(2, 3), index=(slice(None), 1))
    array([1., 4.])
    """)


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
    >>> from fungrad.ops import scatter_index
    >>> scatter_index(np.ones(3), shape=(2,), index=np.array([0, 1, 1]))
    array([1., 2.])
    """)


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


index_select = defop("index_select", _index_select, (
    lambda g, out, x, indices: scatter_add(g, indices, n_rows=shape_of(x)[0]),
    None,
), Domain((Real(), Indices(of=0)), [((5, 3), (4,)), ((6, 2), (2, 3)), ((4,), (7,))], complex=True),
    nondiff=(1,), doc="""Rows of x at integer ``indices`` (any shape of ids; an empty index
    of any dtype selects nothing): the book's embedding lookup. The VJP adds the cotangent's
    rows back at their indices (``scatter_add``, a Numba kernel).

    >>> import numpy as np
    >>> from fungrad.ops import index_select
    >>> index_select(np.arange(6.0).reshape(3, 2), np.array([2, 0])).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """)


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


scatter_add = defop("scatter_add", _scatter_add, (
    lambda g, out, values, indices, n_rows: index_select(g, indices),
    None,
), Domain((Real(), Indices(param="n_rows")), [
    (((4, 3), (4,)), {"n_rows": 5}), (((2, 3, 2), (2, 3)), {"n_rows": 3}),
], complex=True), nondiff=(1,), doc="""Zeros of ``n_rows`` rows with each row of values added at its
    index (repeats accumulate): the transpose of index_select.

    >>> import numpy as np
    >>> from fungrad.ops import scatter_add
    >>> scatter_add(np.ones((3, 2)), np.array([0, 2, 0]), n_rows=3).tolist()
    [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]
    """)
