"""Matrix products: ``matmul`` with NumPy's 1-D and batched-broadcasting rules, and ``mm``.

BLAS (through NumPy) stays in charge of the arithmetic.
"""

from __future__ import annotations

import numpy as np

from .batch_rules import move_axis, ndim_of, to_front, with_rank
from ..domains import Domain, Real
from ..errors import ShapeError
from ..registry import defop
from .reduce import sum as _sum
from .shape import expand_dims, reshape, shape_of, squeeze, transpose

__all__ = ["matmul", "mm", "swap_last"]


def swap_last(x):
    """Swap the last two axes (the matrix transpose of a batch of matrices)."""
    nd = len(shape_of(x))
    if nd < 2:
        return x
    if nd == 2:
        return x.T
    return transpose(x, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _matmul(a, b):
    return np.matmul(a, b)


def _matmul_check(a, b, name="matmul"):
    sa, sb = tuple(np.shape(a)), tuple(np.shape(b))
    if len(sa) == 0 or len(sb) == 0:
        return ShapeError(f"{name}: shapes {sa} and {sb}: 0-d operands are not allowed "
                          "(use multiply for scalars)")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        return ShapeError(f"{name}: shapes {sa} and {sb} are not aligned ({ka} != {kb})")
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        return ShapeError(f"{name}: batch shapes {sa[:-2]} and {sb[:-2]} of shapes {sa} and "
                          f"{sb} do not broadcast")
    return None


def _matmul_da(g, out, a, b):
    a_nd, b_nd = len(shape_of(a)), len(shape_of(b))
    if a_nd == 1 and b_nd == 1:
        return g * b
    if b_nd == 1:  # out (..., m): da = g[..., None] * b
        return expand_dims(g, axis=-1) * b
    if a_nd == 1:  # out (..., n): da = (g[..., None, :] @ b^T)[..., 0, :]
        return squeeze(matmul(expand_dims(g, axis=-2), swap_last(b)), axis=-2)
    return g @ swap_last(b)


def _matmul_db(g, out, a, b):
    a_nd, b_nd = len(shape_of(a)), len(shape_of(b))
    if a_nd == 1 and b_nd == 1:
        return g * a
    if a_nd == 1:  # out (..., n): db = a[:, None] * g[..., None, :]
        return expand_dims(a, axis=-1) * expand_dims(g, axis=-2)
    if b_nd == 1:  # out (..., m): db = (a^T @ g[..., None])[..., 0]
        return squeeze(matmul(swap_last(a), expand_dims(g, axis=-1)), axis=-1)
    return swap_last(a) @ g


def _matmul_batch(op, args, dims):
    """A batch of matrix products as few BLAS products as the layout allows: a batch of
    vectors times one matrix is one GEMM (the batch as rows); one matrix times a batch of
    vectors or matrices is one GEMM (the batch beside the columns); otherwise a stacked
    product with the batch as one more stack axis."""
    (a, b), (da, db) = args, dims
    na, nb = ndim_of(a) - (da is not None), ndim_of(b) - (db is not None)
    if min(na, nb) == 0:
        raise ShapeError(f"matmul: shapes {_example(a, da)} and {_example(b, db)}: 0-d operands "
                         "are not allowed (use multiply for scalars)")
    if db is None and nb <= 2:
        if na == 1:  # vectors: the rows of one matrix
            return matmul(to_front(a, da), b), 0
        if da == na:  # the batch on the contracted axis: move it off
            a, da = to_front(a, da), 0
        if nb == 2:  # every leading axis of a is a row of one GEMM
            a_shape = shape_of(a)
            rows = reshape(a, (-1, a_shape[-1]))
            return reshape(matmul(rows, b), a_shape[:-1] + (shape_of(b)[-1],)), da
        return matmul(a, b), da
    if da is None and na <= 2 and nb <= 2:
        if nb == 1:  # vectors: the columns of one matrix
            return matmul(a, move_axis(b, db, 1)), (na - 1)
        b = move_axis(b, db, 1)  # (k, batch, m) -> (k, batch * m): the batch beside the columns
        k, size, m = shape_of(b)
        out = matmul(a, reshape(b, (k, size * m)))
        return reshape(out, shape_of(out)[:-1] + (size, m)), (na - 1)
    if na == 1 and nb == 1:  # a batch of dot products
        return _sum(to_front(a, da) * to_front(b, db), axis=-1), 0
    # stacked: vectors as matrices, the batch first, stacks padded to one rank
    va, vb = na == 1, nb == 1
    if da is not None:
        a = to_front(a, da)
    if db is not None:
        b = to_front(b, db)
    if va:
        a = expand_dims(a, axis=-2)
    if vb:
        b = expand_dims(b, axis=-1)
    rank = max(na + va, nb + vb)
    if da is not None:
        a = with_rank(a, rank)
    if db is not None:
        b = with_rank(b, rank)
    out = matmul(a, b)
    drop = (-2,) * va + (-1,) * vb
    return (squeeze(out, axis=drop) if drop else out), 0


def _example(x, d) -> tuple:
    shape = shape_of(x)
    return shape if d is None else shape[:d] + shape[d + 1:]


matmul = defop("matmul", _matmul, (_matmul_da, _matmul_db), Domain((Real(), Real()), [
    ((3, 4), (4, 2)), ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)),
    ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((5,), (2, 5, 3)),
], complex=True), check=_matmul_check,
    doc="Matrix product with NumPy's rules: 1-D operands are vectors, leading axes broadcast.",
    batch=_matmul_batch)


def _mm(a, b):
    if np.ndim(a) != 2 or np.ndim(b) != 2:
        raise ShapeError(f"mm: expects two 2-D arrays, got shapes {tuple(np.shape(a))} and "
                         f"{tuple(np.shape(b))} (use matmul for other ranks)")
    return np.matmul(a, b)


def _mm_batch(op, args, dims):
    for x, d in zip(args, dims):
        if ndim_of(x) - (d is not None) != 2:
            raise ShapeError(f"mm: expects two 2-D arrays, got shapes {_example(args[0], dims[0])} "
                             f"and {_example(args[1], dims[1])} (use matmul for other ranks)")
    return _matmul_batch(matmul, args, dims)


mm = defop("mm", _mm, (
    lambda g, out, a, b: g @ b.T,
    lambda g, out, a, b: a.T @ g,
), Domain((Real(), Real()), [((3, 4), (4, 2)), ((1, 5), (5, 1))], complex=True),
    check=lambda a, b: _matmul_check(a, b, "mm"), doc="The book's 2-D matrix product.",
    batch=_mm_batch)
