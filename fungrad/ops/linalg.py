"""Matrix products: ``matmul`` with NumPy's 1-D and batched-broadcasting rules, and ``mm``.

BLAS (through NumPy) stays in charge of the arithmetic.
"""

from __future__ import annotations

import numpy as np

from ..domains import Domain, Real
from ..errors import ShapeError
from ..registry import defop
from .shape import expand_dims, shape_of, squeeze, transpose

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


matmul = defop("matmul", _matmul, (_matmul_da, _matmul_db), Domain((Real(), Real()), [
    ((3, 4), (4, 2)), ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)),
    ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((5,), (2, 5, 3)),
], complex=True), check=_matmul_check,
    doc="Matrix product with NumPy's rules: 1-D operands are vectors, leading axes broadcast.")


def _mm(a, b):
    if np.ndim(a) != 2 or np.ndim(b) != 2:
        raise ShapeError(f"mm: expects two 2-D arrays, got shapes {tuple(np.shape(a))} and "
                         f"{tuple(np.shape(b))} (use matmul for other ranks)")
    return np.matmul(a, b)


mm = defop("mm", _mm, (
    lambda g, out, a, b: g @ b.T,
    lambda g, out, a, b: a.T @ g,
), Domain((Real(), Real()), [((3, 4), (4, 2)), ((1, 5), (5, 1))], complex=True),
    check=lambda a, b: _matmul_check(a, b, "mm"), doc="The book's 2-D matrix product.")
