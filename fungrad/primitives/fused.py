"""Fused ops for speed: fewer recorded ops per training step, each doing the work of several.

``affine(x, w, b)`` is ``x @ w + b`` as one op (``nn.Linear``, ``RNNCell``): one node instead
of matmul + add, and its VJP sums the bias cotangent itself instead of leaving a broadcast
for the engine to undo. ``embedding_bag(table, indices)`` is ``table[indices].sum(-2)``
(or ``.mean(-2)``): one gather-and-sum kernel instead of a ``(B, L, D)`` gather and a
reduction, whose VJP scatters each bag's cotangent straight into the table.

>>> import numpy as np, fungrad as fg
>>> fg.affine(np.ones((2, 3)), np.ones((3, 4)), np.arange(4.0))
array([[3., 4., 5., 6.],
       [3., 4., 5., 6.]])
>>> fg.embedding_bag(np.arange(6.0).reshape(3, 2), np.array([[0, 2], [1, 1]]))
array([[4., 6.],
       [4., 6.]])
"""

from __future__ import annotations

import numpy as np

from .batch_rules import batch_size, elementwise, materialize, move_axis, ndim_of, to_front
from ..domains import Domain, Indices, Real
from ..errors import ShapeError
from ..kernels._dtypes import float_dtype
from ..registry import defop
from .elementwise import add
from .indexing import _check_indices, _offset_ids
from .linalg import _matmul_batch, matmul
from .shape import reshape, shape_of, sum_to

__all__ = ["affine", "embedding_bag", "embedding_bag_grad"]

# -- affine --------------------------------------------------------------------------------------


def _affine_check(x, w, b):
    xs, ws, bs = (tuple(np.shape(a)) for a in (x, w, b))
    if len(ws) != 2 or len(xs) < 1 or xs[-1] != ws[0] or bs != ws[1:]:
        return ShapeError(f"affine: shapes x {xs}, w {ws}, b {bs} do not fit: expected x "
                          "(..., n_in), w (n_in, n_out) and b (n_out,)")
    return None


def _affine(x, w, b):
    w_shape = shape_of(w)
    if len(w_shape) != 2 or shape_of(b) != w_shape[1:] or not shape_of(x):
        raise _affine_check(x, w, b)  # (NumPy's matmul reports an n_in mismatch: check= words it)
    out = np.matmul(x, w)
    if out.dtype == np.result_type(out, b):
        out += b  # in place: no second (..., n_out) temporary
        return out
    return out + b


def _affine_dx(g, out, x, w, b):
    return g @ w.T


def _affine_dw(g, out, x, w, b):
    if len(shape_of(x)) == 2:
        return x.T @ g
    n_in, n_out = shape_of(w)  # every leading axis is a batch axis: one GEMM over all of them
    return reshape(x, (-1, n_in)).T @ reshape(g, (-1, n_out))


def _affine_db(g, out, x, w, b):
    return sum_to(g, shape_of(b))


def _affine_batch(op, args, dims):
    (x, w, b), (dx, dw, db) = args, dims
    if dw is None and db is None:  # one layer for every example: the batch is more rows
        if dx == ndim_of(x) - 1:  # (not on the input features)
            x, dx = to_front(x, dx), 0
        return affine(x, w, b), dx
    # per-example weights (an ensemble): the product's and the sum's own rules
    y, dy = _matmul_batch(matmul, (x, w), (dx, dw))
    return elementwise(add, (y, b), (dy, db))


affine = defop("affine", _affine, (_affine_dx, _affine_dw, _affine_db), Domain(
    (Real(), Real(), Real()),
    [((3, 4), (4, 2), (2,)), ((2, 3, 4), (4, 5), (5,)), ((4,), (4, 3), (3,)),
     ((1, 1), (1, 1), (1,))]),
    check=_affine_check,
    doc="x @ w + b as one op: x (..., n_in), w (n_in, n_out), b (n_out,) (nn.Linear's layer).",
    batch=_affine_batch)

# -- embedding bags --------------------------------------------------------------------------------

_MODES = ("sum", "mean")


def _bag_args(op: str, table_shape, indices, mode: str):
    """(indices checked once as int64 (bags, L), the bags' shape, scale) for a 2-d table."""
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be 'sum' or 'mean', got {mode!r}")
    if len(table_shape) != 2:
        raise ShapeError(f"{op}: the table must be 2-d (rows, dim), got shape "
                         f"{tuple(table_shape)}")
    idx = _check_indices(op, indices, table_shape[0])
    if idx.ndim < 1:
        raise ShapeError(f"{op}: indices must have a bag axis (..., L), got a 0-d array")
    length = idx.shape[-1]
    scale = 1.0 if mode == "sum" or length == 0 else 1.0 / length
    bag_shape = idx.shape[:-1]
    return idx.reshape(int(np.prod(bag_shape, dtype=np.int64)), length), bag_shape, scale


def _embedding_bag(table, indices, mode="sum"):
    from ..kernels import bags  # noqa: PLC0415 (Numba loads on first use)

    table = np.asarray(table)
    idx, bag_shape, scale = _bag_args("embedding_bag", table.shape, indices, mode)
    if table.dtype.kind != "f":  # integer tables sum as NumPy would (int64; mean: float64)
        out = table[idx].sum(axis=1) * scale if mode == "mean" else table[idx].sum(axis=1)
        return out.reshape(bag_shape + table.shape[1:])
    rows = np.ascontiguousarray(table, dtype=float_dtype("embedding_bag", table.dtype))
    out = bags.bag_sum(rows, idx, scale)
    return out.astype(table.dtype, copy=False).reshape(bag_shape + table.shape[1:])


def _embedding_bag_grad(g, indices, *, n_rows, mode="sum"):
    from ..kernels import bags  # noqa: PLC0415

    g = np.asarray(g)
    idx, bag_shape, scale = _bag_args("embedding_bag_grad", (n_rows, g.shape[-1] if g.ndim else 0),
                                      indices, mode)
    if g.ndim < 1 or g.shape[:-1] != bag_shape:
        raise ShapeError(f"embedding_bag_grad: a cotangent of shape {g.shape} for bags of "
                         f"shape {bag_shape} (indices of shape {np.shape(indices)})")
    rows = np.ascontiguousarray(g, dtype=float_dtype("embedding_bag_grad", g.dtype))
    return bags.bag_scatter(n_rows, idx, rows.reshape(-1, g.shape[-1]), scale)


def _embedding_bag_batch(op, args, dims, *, mode="sum"):
    (table, ids), (dt, di) = args, dims
    if dt is None:  # one table: more bags
        return embedding_bag(table, to_front(ids, di), mode=mode), 0
    size = batch_size(args, dims)
    if di is None:  # shared ids: every example's row side by side, one gather-and-sum
        wide = move_axis(table, dt, 1)
        rows, _, width = shape_of(wide)
        out = embedding_bag(reshape(wide, (rows, size * width)), ids, mode=mode)
        return reshape(out, shape_of(out)[:-1] + (size, width)), ndim_of(ids) - 1
    table = to_front(table, dt)
    _, rows, width = shape_of(table)
    flat = reshape(table, (size * rows, width))
    return embedding_bag(flat, _offset_ids(ids, di, size, rows), mode=mode), 0


def _embedding_bag_grad_batch(op, args, dims, *, n_rows, mode="sum"):
    (g, ids), (dg, di) = args, dims
    size = batch_size(args, dims)
    if di is None:  # shared ids: every example's cotangent side by side, one scatter
        g = move_axis(g, dg, ndim_of(g) - 2)
        g_shape = shape_of(g)
        wide = reshape(g, g_shape[:-2] + (size * g_shape[-1],))
        out = embedding_bag_grad(wide, ids, n_rows=n_rows, mode=mode)
        return reshape(out, (n_rows, size, g_shape[-1])), 1
    g = materialize(g, dg, size)
    out = embedding_bag_grad(g, _offset_ids(ids, di, size, n_rows), n_rows=size * n_rows,
                             mode=mode)
    return reshape(out, (size, n_rows, shape_of(out)[-1])), 0


embedding_bag_grad = defop("embedding_bag_grad", _embedding_bag_grad, (
    lambda h, out, g, indices, n_rows, mode="sum": embedding_bag(h, indices, mode=mode),
    None,
), Domain((Real(), Indices(param="n_rows")), [
    (((4, 3), (4, 2)), {"n_rows": 5}), (((2, 3, 2), (2, 3, 4)), {"n_rows": 3, "mode": "mean"}),
    (((3,), (5,)), {"n_rows": 4}),
]), nondiff=(1,), doc="The transpose of embedding_bag: each bag's cotangent added (divided by "
                      "the bag length for mode='mean') at every index of the bag, into zeros "
                      "of n_rows rows.",
    batch=_embedding_bag_grad_batch)

embedding_bag = defop("embedding_bag", _embedding_bag, (
    lambda g, out, table, indices, mode="sum": embedding_bag_grad(
        g, indices, n_rows=shape_of(table)[0], mode=mode),
    None,
), Domain((Real(), Indices(of=0)), [
    (((5, 3), (4, 2)), {}), (((6, 2), (2, 3, 4)), {"mode": "mean"}), (((4, 3), (7,)), {}),
    (((3, 2), (2, 1)), {"mode": "mean"}),
]), nondiff=(1,), doc="table[indices].sum(-2) (mode='sum') or .mean(-2) (mode='mean') in one "
                      "pass: a table (rows, dim) and integer indices (..., L) give (..., dim) "
                      "(PyTorch's embedding_bag; empty bags give zeros).",
    batch=_embedding_bag_batch)
