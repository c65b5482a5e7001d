"""Inverses, determinants and linear solves of (stacks of) matrices: inv, det, slogdet, solve,
pinv.

Each VJP reuses the op's output where it can (inv's, solve's) and solves with the transpose
rather than forming an inverse, and is written with registered ops so it differentiates again.
Singular input raises :class:`fungrad.errors.LinAlgError` naming the op (also a
``numpy.linalg.LinAlgError``).
"""

from __future__ import annotations

import numpy as np

from .batch_rules import matrix_stack, move_axis, ndim_of, to_front, with_rank
from ..domains import Domain, Real, WellConditioned
from ..errors import LinAlgError, ShapeError
from .. import recording
from ..registry import defop, unwrap
from ..recording import is_traced
from ._matrix import float_dtype, lapack, matrix_dims, mH, require_matrices
from .elementwise import conj, imag, is_complex
from .linalg import swap_last
from .shape import expand_dims, reshape, shape_of, squeeze

__all__ = ["inv", "det", "slogdet", "solve", "pinv"]

_SQUARE_CASES = [((3, 3),), ((1, 1),), ((2, 3, 3),), ((4, 4),)]
_SINGULAR_FIX = "Check the matrix for linearly dependent rows or columns"

# -- inv ----------------------------------------------------------------------------------------


def _inv(a):
    a = require_matrices("inv", a)
    return lapack("inv", np.linalg.inv, a, problem="the matrix is singular", fix=_SINGULAR_FIX
                  + "; use solve(a, b) for a @ x = b, or pinv for a least-squares inverse")


def _inv_vjp(g, out, a):
    at = swap_last(out)  # d(a^-1) = -a^-1 da a^-1
    return (-(at @ g @ at),)


inv = defop("inv", _inv, _inv_vjp, Domain((WellConditioned(),), _SQUARE_CASES, complex=True),
            doc="""The inverse of a square matrix (or of each in a stack), as numpy.linalg.inv.

            >>> import numpy as np, fungrad as fg
            >>> fg.ops()["inv"](np.array([[2.0, 0.0], [0.0, 4.0]])).diagonal()
            array([0.5 , 0.25])
            """,
    batch=matrix_stack)

# -- det and slogdet ------------------------------------------------------------------------------


def _det(a):
    return np.linalg.det(require_matrices("det", a))


def _inverse_transpose(op: str, a):
    """``a^-T`` for the gradients of det and slogdet (cofactor / det), naming ``op`` if ``a``
    is singular."""
    try:
        return swap_last(inv(a))
    except LinAlgError:
        raise LinAlgError(f"{op}: backward: the matrix is singular; the gradient of {op} at a "
                          "singular matrix is not implemented (it needs the adjugate, not "
                          "the inverse)") from None


def _det_vjp(g, out, a):
    scale = expand_dims(g * out, axis=(-1, -2))
    return (scale * _inverse_transpose("det", a),)


det = defop("det", _det, _det_vjp, Domain((WellConditioned(),), _SQUARE_CASES, complex=True),
            doc="""The determinant of a square matrix (or of each in a stack), as
            numpy.linalg.det. Its gradient is det(a) inv(a)^T.

            >>> import numpy as np, fungrad as fg
            >>> fg.grad(fg.ops()["det"])(np.array([[2.0, 1.0], [1.0, 3.0]]))
            array([[ 3., -1.],
                   [-1.,  2.]])
            """,
    batch=matrix_stack)


def _slogdet(a):
    sign, logabsdet = np.linalg.slogdet(require_matrices("slogdet", a))
    return np.asarray(sign), np.asarray(logabsdet)


def _slogdet_vjp(g, out, a):
    # d logabsdet = Re(tr(a^-1 da)); a complex sign moves too: d sign = i Im(tr(a^-1 da)) sign,
    # whose cotangent is i Im(g_sign sign) a^-T (a real sign is piecewise constant)
    g_sign, g_log = g
    scale = g_log
    if g_sign is not None and is_complex(out[0]):
        turn = 1j * imag(g_sign * out[0])
        scale = turn if scale is None else scale + turn
    if scale is None:  # the sign alone: piecewise constant, so a zero gradient
        return (np.zeros(np.shape(unwrap(a)), dtype=float_dtype(a)),)
    return (expand_dims(scale, axis=(-1, -2)) * _inverse_transpose("slogdet", a),)


slogdet = defop("slogdet", _slogdet, _slogdet_vjp, Domain((WellConditioned(),), _SQUARE_CASES,
complex=True),
                n_outputs=2,
                doc="""``(sign, logabsdet)`` of the determinant, as numpy.linalg.slogdet; stable
                where det over- or underflows. A real sign has no gradient; a complex one
                (the determinant's phase) has.

                >>> import numpy as np, fungrad as fg
                >>> sign, logabsdet = fg.ops()["slogdet"](np.diag([-1e200, 1e200]))
                >>> float(sign), round(float(logabsdet), 2)
                (-1.0, 921.03)
                """,
    batch=matrix_stack)

# -- solve ----------------------------------------------------------------------------------------


def _is_vector_rhs(b) -> bool:
    return len(shape_of(b)) == 1  # NumPy 2: b is a vector only when it is 1-D


def _solve(a, b):
    a = require_matrices("solve", a)
    b = np.asarray(b)
    m = a.shape[-1]
    rows = b.shape[0] if b.ndim == 1 else (b.shape[-2] if b.ndim >= 2 else None)
    if rows != m:
        raise ShapeError(f"solve: b must have shape ({m},) or (..., {m}, K) for a of shape "
                         f"{a.shape}, got {b.shape}")
    if b.ndim >= 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ShapeError(f"solve: the stack shapes of a {a.shape} and b {b.shape} do not "
                             "broadcast") from None
    return lapack("solve", np.linalg.solve, a, b, problem="the matrix a is singular",
                  fix=_SINGULAR_FIX + "; for a least-squares solution use lstsq or pinv")


def _solve_b(g, out, a, b):
    """``a^-T g``: solve with the transpose (also the shared part of the gradient of a)."""
    if _is_vector_rhs(b) and len(shape_of(a)) > 2:  # a stack of vectors: as (..., M, 1)
        return squeeze(solve(swap_last(a), expand_dims(g, axis=-1)), axis=-1)
    return solve(swap_last(a), g)


def _solve_a(g, out, a, b):
    gb = _solve_b(g, out, a, b)  # d x = a^-1 (db - da x)
    if _is_vector_rhs(b):
        return -(expand_dims(gb, axis=-1) * expand_dims(out, axis=-2))
    return -(gb @ swap_last(out))


def _solve_batch(op, args, dims):
    (a, b), (da, db) = args, dims
    na, nb = ndim_of(a) - (da is not None), ndim_of(b) - (db is not None)
    if da is None and na == 2 and nb <= 2:  # one matrix: each example's right-hand side as
        # columns of one solve
        b = move_axis(b, db, 1)  # (M, batch) or (M, batch, K)
        if nb == 1:
            return solve(a, b), 1
        m, size, k = shape_of(b)
        return reshape(solve(a, reshape(b, (m, size * k))), (m, size, k)), 1
    vector = nb == 1  # NumPy 2: b is a vector only when it is 1-D; as (M, 1) here
    a = to_front(a, da) if da is not None else a
    b = to_front(b, db) if db is not None else b
    if vector:
        b = expand_dims(b, axis=-1)
    rank = max(na, nb + vector)
    a = with_rank(a, rank) if da is not None else a
    b = with_rank(b, rank) if db is not None else b
    out = solve(a, b)
    return (squeeze(out, axis=-1) if vector else out), 0


solve = defop("solve", _solve, (_solve_a, _solve_b), Domain((WellConditioned(), Real()), [
    ((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 1)), ((2, 3, 3), (3,)),
    ((3, 3), (2, 3, 4)), ((1, 1), (1,)),
], complex=True), doc="""The solution x of a @ x = b, as numpy.linalg.solve: b is a vector (M,) or a
    stack of matrices (..., M, K) whose stack shape broadcasts with a's. Its gradient solves
    with a's transpose.

    >>> import numpy as np, fungrad as fg
    >>> fg.ops()["solve"](np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([1.0, 1.0]))
    array([0.5 , 0.25])
    """,
    batch=_solve_batch)

# -- pinv -----------------------------------------------------------------------------------------


def _pinv(a, rtol=None):
    a = require_matrices("pinv", a, square=False)
    if rtol is None:
        return np.linalg.pinv(a)
    return np.linalg.pinv(a, rtol=rtol)


def _require_full_rank(a, rtol) -> None:
    a = unwrap(a)
    if is_traced(a):  # fg.jit: the same check on the values, at every call of the program
        recording.check_values(_require_full_rank, a, rtol)  # (fg.vmap: on every example's)
        return
    a = np.asarray(a)
    m, n = matrix_dims(a)
    if min(m, n) == 0:
        return
    s = np.linalg.svd(a, compute_uv=False)
    cutoff = (max(m, n) * np.finfo(float_dtype(a)).eps if rtol is None else rtol) * s[..., :1]
    rank = int(np.min(np.sum(s > cutoff, axis=-1)))
    if rank < min(m, n):
        raise LinAlgError(
            f"pinv: backward: the matrix of shape {a.shape} has rank {rank} < {min(m, n)} "
            "(below the cutoff); the pseudo-inverse is not differentiable there (it jumps as "
            "small singular values cross the cutoff). Regularise the matrix, or use lstsq on a "
            "full-rank one")


def _pinv_vjp(g, out, a, rtol=None):
    # Golub & Pereyra: dA+ = -A+ dA A+ + A+ A+^T dA^T (I - A A+) + (I - A+ A) dA^T A+^T A+.
    # At full rank A A+ = I for wide matrices and A+ A = I for tall ones, identically near a,
    # so only one of the two projector terms is ever nonzero.
    # For complex matrices (^H for ^T in the projector terms) the cotangent of those terms is
    # conjugated: (I - conj(A A+)) G^H conj(A+) A+^T and A+^T conj(A+) G^H (I - conj(A+ A)).
    _require_full_rank(a, rtol)
    p, pt = out, swap_last(out)
    m, n = matrix_dims(a)
    grad = -(pt @ g @ pt)
    if m == n:
        return (grad,)
    gt = mH(g)
    pc, ac = (conj(p), conj(a)) if is_complex(p) or is_complex(a) else (p, a)
    if m > n:  # (I - A A+) G^T A+ A+^T
        right = gt @ (pc @ pt)
        grad = grad + (right - ac @ (pc @ right))
    else:  # A+^T A+ G^T (I - A+ A)
        left = (pt @ pc) @ gt
        grad = grad + (left - (left @ pc) @ ac)
    return (grad,)


pinv = defop("pinv", _pinv, _pinv_vjp, Domain((WellConditioned(),), [
    ((3, 3),), ((4, 2),), ((2, 4),), ((2, 3, 2),), ((1, 3),),
], complex=True), doc="""The Moore-Penrose pseudo-inverse, as numpy.linalg.pinv (singular
    values below ``rtol`` times the largest are dropped). Differentiable where the matrix has
    full rank.

    >>> import numpy as np, fungrad as fg
    >>> fg.ops()["pinv"](np.array([[1.0], [1.0]]))
    array([[0.5, 0.5]])
    """,
    batch=matrix_stack)

