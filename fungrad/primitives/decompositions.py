"""Matrix decompositions of (stacks of) matrices: cholesky, eigh, eig, svd, qr.

The VJPs are written with registered ops (matmul, solve, elementwise arithmetic), so they
differentiate again. Where an output received no cotangent (``g[i] is None``) its terms are
skipped: the gradient of the eigenvalues alone never divides by eigenvalue gaps, so it stays
finite at repeated eigenvalues (likewise singular values).

cholesky and eigh read one triangle of their input, as NumPy does (the other is never looked
at), and their gradients are the exact derivatives of that: for a matrix symmetric by
construction (``x.T @ x``, a kernel matrix) this is the familiar symmetric gradient after the
chain rule; for a leaf matrix it lives in the triangle that was read.

Complex matrices follow fungrad's convention (a cotangent ``G`` pairs with a change ``dA`` as
``Re(sum(G * dA))``): the real formulas hold with the left factor conjugated (``conj(V)`` where
a real VJP has ``V``) and with conjugate transposes wherever a real VJP symmetrises, since
cholesky and eigh read Hermitian matrices (the imaginary part of the diagonal is ignored, as
LAPACK does). Eigen- and singular vectors of complex matrices are defined up to a phase per
column: their VJPs fix it (``Vᴴ dV`` with a zero diagonal, as HIPS autograd and PyTorch do),
so only functions of them that do not depend on the phase have a meaningful gradient.
"""

from __future__ import annotations

import numpy as np

from .batch_rules import matrix_stack
from ..domains import (
    Diagonalizable, DistinctEigenvalues, DistinctSingularValues, Domain, PositiveDefinite,
    WellConditioned,
)
from ..errors import ShapeError
from ..registry import defop, unwrap
from ._matrix import (
    eye, float_dtype, hermitian_part, lapack, matrix_dims, mH, require_matrices,
    triangle_weights,
)
from .elementwise import conj, imag, is_complex, real
from .indexing import getitem
from .linalg import swap_last
from .manipulation import diagonal
from .shape import concatenate, expand_dims
from .solvers import solve

__all__ = ["cholesky", "eigh", "eig", "svd", "qr"]


def _read_triangle(sym_grad, n: int, lower: bool):
    """The gradient with respect to a matrix of which only one triangle was read, given the
    (symmetric) gradient with respect to the symmetric matrix that triangle stands for: each
    off-diagonal entry read stands for two entries, so it gets twice their gradient."""
    w = triangle_weights(n, float_dtype(sym_grad), lower=lower, diagonal=1.0, inside=2.0)
    return sym_grad * w


# -- cholesky -------------------------------------------------------------------------------------


def _cholesky(a, upper=False):
    a = require_matrices("cholesky", a)
    return lapack("cholesky", lambda x: np.linalg.cholesky(x, upper=upper), a,
                  problem="the matrix is not positive definite",
                  fix="Cholesky needs a symmetric positive definite matrix; add a small "
                      "multiple of the identity (jitter) if it is only semi-definite")


def _cholesky_vjp(g, out, a, upper=False):
    # a = L L^H: L^-1 da L^-H = X + X^H with X = L^-1 dL lower triangular (real diagonal), so
    # dL = L phi(L^-1 da L^-H), phi keeping the lower triangle with the diagonal halved
    low, g_low = (mH(out), mH(g)) if upper else (out, g)
    n = matrix_dims(out)[0]
    phi = triangle_weights(n, float_dtype(out), lower=True, diagonal=0.5, inside=1.0)
    p = hermitian_part((swap_last(low) @ g_low) * phi)
    half = solve(swap_last(low), p)  # L^-T P
    # L^-T P conj(L)^-1 (by two triangular solves), whose Hermitian part is the conjugate of
    # that of L^-H (L^-T P)^T: real matrices need no conjugation
    sym_grad = hermitian_part(solve(mH(low), swap_last(half)))
    if is_complex(sym_grad):
        sym_grad = conj(sym_grad)
    return (_read_triangle(sym_grad, n, lower=not upper),)


cholesky = defop("cholesky", _cholesky, _cholesky_vjp, Domain((PositiveDefinite(),), [
    (((3, 3),), {}), (((1, 1),), {}), (((2, 3, 3),), {}), (((4, 4),), {"upper": True}),
], complex=True), doc="""The Cholesky factor of a symmetric (Hermitian) positive definite
    matrix, as numpy.linalg.cholesky: lower triangular L with a = L L^H (upper=True:
    U = L^H), reading only that triangle of a. Its gradient solves with the triangular factor
    (no inverse).

    >>> import numpy as np, fungrad as fg
    >>> fg.ops()["cholesky"](np.array([[4.0, 2.0], [2.0, 2.0]]))
    array([[2., 0.],
           [1., 1.]])
    """,
    batch=matrix_stack)

# -- eigh -----------------------------------------------------------------------------------------


def _eigh(a, UPLO="L"):  # noqa: N803 (NumPy's name)
    if UPLO not in ("L", "U"):
        raise ShapeError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    a = require_matrices("eigh", a)
    w, v = lapack("eigh", lambda x: np.linalg.eigh(x, UPLO=UPLO), a,
                  problem="the eigenvalue iteration did not converge",
                  fix="Check the matrix for NaN or infinite values")
    return w, v


def _gaps_inverse(values):
    """``F[..., i, j] = 1 / (values_j - values_i)`` off the diagonal, 0 on it."""
    k = values.shape[-1]
    i = eye(k, float_dtype(values))
    diff = expand_dims(values, axis=-2) - expand_dims(values, axis=-1)
    return (1.0 - i) / (diff + i)


def _eigh_vjp(g, out, a, UPLO="L"):  # noqa: N803
    # a = V diag(w) V^H: dw = diag(V^H da V), dV = V (F * (V^H da V)); the cotangent of a is
    # conj(V) (diag(gw) + F * (V^T gV)) V^T (V itself for a real matrix)
    gw, gv = g
    w, v = out
    vt = swap_last(v)
    inner = None
    if gv is not None:
        inner = _gaps_inverse(w) * (vt @ gv)
    if gw is not None:
        diag = expand_dims(gw, axis=-1) * eye(w.shape[-1], float_dtype(w))
        inner = diag if inner is None else inner + diag
    left = conj(v) if is_complex(v) else v
    sym_grad = hermitian_part(left @ inner @ vt)
    return (_read_triangle(sym_grad, w.shape[-1], lower=UPLO == "L"),)


eigh = defop("eigh", _eigh, _eigh_vjp, Domain((DistinctEigenvalues(),), [
    (((3, 3),), {}), (((1, 1),), {}), (((2, 3, 3),), {}), (((4, 4),), {"UPLO": "U"}),
], complex=True, phase_free=(1,)), n_outputs=2,
    doc="""``(w, v)``: eigenvalues (ascending) and eigenvectors of a symmetric (Hermitian)
    matrix, as numpy.linalg.eigh, reading only the ``UPLO`` triangle. Eigenvectors are defined
    up to sign (a phase, for complex ones); their gradient needs distinct eigenvalues (that of
    w alone does not).

    >>> import numpy as np, fungrad as fg
    >>> w, v = fg.ops()["eigh"](np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> w
    array([1., 3.])
    """,
    batch=matrix_stack)

# -- eig ------------------------------------------------------------------------------------------


def _eig(a):
    a = require_matrices("eig", a)
    w, v = lapack("eig", np.linalg.eig, a, problem="the eigenvalue iteration did not converge",
                  fix="Check the matrix for NaN or infinite values")
    return w, v


def _eig_vjp(g, out, a):
    # a V = V diag(w), each column of V of unit norm: with C = V^-1 da V, dw = diag(C) and
    # dV = V (F * C) - V diag(Re(diag(V^H V (F * C)))) (the norm kept, the phase fixed), so the
    # cotangent of a is V^-T (diag(gw) + F * (V^T gV - V^T conj(V) diag(h))) V^T with
    # h = Re(diag(V^T gV))
    gw, gv = g
    w, v = out
    vt = swap_last(v)
    inner = None
    if gw is not None:
        inner = expand_dims(gw, axis=-1) * eye(w.shape[-1], float_dtype(w))
    if gv is not None:
        j = vt @ gv
        h = real(diagonal(j, axis1=-2, axis2=-1))
        r = _gaps_inverse(w) * (j - (vt @ conj(v)) * expand_dims(h, axis=-2))
        inner = r if inner is None else inner + r
    return (solve(vt, inner @ vt),)


eig = defop("eig", _eig, _eig_vjp, Domain((Diagonalizable(),), [
    (((3, 3),), {}), (((1, 1),), {}), (((2, 3, 3),), {}), (((4, 4),), {}),
], complex=True, phase_free=(1,)), n_outputs=2,
    doc="""``(w, v)``: eigenvalues and right eigenvectors (columns of unit norm) of a square
    matrix, as numpy.linalg.eig: complex where the eigenvalues are (a real matrix's may be),
    real otherwise. Eigenvectors are defined up to a phase (a sign, for real ones); their
    gradient needs distinct eigenvalues (that of w alone does not) and means something only
    for functions of them that do not depend on the phase (``abs(v)``, ``v @ inv(v)``...).

    >>> import numpy as np, fungrad as fg
    >>> w, v = fg.ops()["eig"](np.array([[0.0, -1.0], [1.0, 0.0]]))
    >>> w
    array([0.+1.j, 0.-1.j])
    """,
    batch=matrix_stack)

# -- svd ------------------------------------------------------------------------------------------


def _svd(a, full_matrices=False):
    a = require_matrices("svd", a, square=False)
    u, s, vh = lapack("svd", lambda x: np.linalg.svd(x, full_matrices=full_matrices), a,
                      problem="the SVD did not converge",
                      fix="Check the matrix for NaN or infinite values")
    return u, s, vh


def _reduced(op: str, x, gx, k: int, axis: int):
    """The first ``k`` columns (``axis=-1``) or rows of a full factor and its cotangent; the
    other columns span an arbitrary basis, so a cotangent on them has no meaning."""
    if gx is not None and np.any(unwrap(gx)[_beyond(k, axis)]):
        raise ShapeError(
            f"{op}: backward: the result uses the extra columns that full_matrices=True adds "
            "for a non-square matrix; they are an arbitrary basis of a complement, with no "
            "derivative. Use full_matrices=False (as JAX requires)")
    index = _first(k, axis)
    return getitem(x, index=index), (None if gx is None else getitem(gx, index=index))


def _first(k: int, axis: int) -> tuple:
    return (Ellipsis, slice(0, k)) if axis == -1 else (Ellipsis, slice(0, k), slice(None))


def _beyond(k: int, axis: int) -> tuple:
    return (Ellipsis, slice(k, None)) if axis == -1 else (Ellipsis, slice(k, None), slice(None))


def _svd_vjp(g, out, a, full_matrices=False):
    # a = U diag(S) V^H; for a complex matrix the cotangent's left factor is conj(U) and its
    # right one V^T = conj(Vh), the antisymmetrisations are anti-Hermitian, and the phase
    # shared by u_i and v_i is fixed by a zero diagonal of V^H dV (a term i Im(U^T gU)_ii / s_i)
    gu, gs, gvh = g
    u, s, vh = out
    m, n = matrix_dims(a)
    k = min(m, n)
    if full_matrices and m != n:
        u, gu = _reduced("svd", u, gu, k, axis=-1)
        vh, gvh = _reduced("svd", vh, gvh, k, axis=-2)
    cplx = is_complex(u)
    v, gv = mH(vh), (None if gvh is None else mH(gvh))
    left, right = (conj(u), conj(vh)) if cplx else (u, vh)
    dt = float_dtype(s)
    inner = 0.0 if gs is None else expand_dims(gs, axis=-1) * eye(k, dt)
    f = None if gu is None and gv is None else _gaps_inverse(s * s)
    s_row, s_col = expand_dims(s, axis=-2), expand_dims(s, axis=-1)
    grad = None
    if gu is not None:
        j = swap_last(u) @ gu
        inner = inner + f * (j - mH(j)) * s_row
        if cplx:
            phase = imag(diagonal(j, axis1=-2, axis2=-1)) / s
            inner = inner + expand_dims(phase, axis=-1) * (1j * eye(k, dt))
        if m > k:  # the part of gU outside the span of U
            grad = ((gu - left @ j) / s_row) @ right
    if gv is not None:
        j = swap_last(v) @ gv
        inner = inner + s_col * (f * (j - mH(j)))
        if n > k:  # the part of gV outside the span of V
            outside = gv - (conj(v) if cplx else v) @ j
            extra = left @ (mH(outside) / s_col)
            grad = extra if grad is None else grad + extra
    main = left @ (inner @ right)
    return (main if grad is None else main + grad,)


svd = defop("svd", _svd, _svd_vjp, Domain((DistinctSingularValues(),), [
    (((3, 3),), {}), (((4, 2),), {}), (((2, 4),), {}), (((2, 3, 2),), {}), (((1, 1),), {}),
    (((3, 3),), {"full_matrices": True}),
], complex=True, phase_free=(0, 2)), n_outputs=3,
    doc="""``(U, S, Vh)`` with a = U diag(S) Vh and S descending, as numpy.linalg.svd (but
    full_matrices=False by default). Singular vectors are defined up to sign (a phase shared
    by u_i and v_i, for complex ones); their gradient needs distinct nonzero singular values
    (that of S alone does not).

    >>> import numpy as np, fungrad as fg
    >>> u, s, vh = fg.ops()["svd"](np.array([[3.0, 0.0], [0.0, -4.0], [0.0, 0.0]]))
    >>> s, u.shape, vh.shape
    (array([4., 3.]), (3, 2), (2, 2))
    """,
    batch=matrix_stack)

# -- qr -------------------------------------------------------------------------------------------


def _qr(a):
    a = require_matrices("qr", a, square=False)
    q, r = np.linalg.qr(a, mode="reduced")
    return q, r


def _qr_square_grad(gq, gr, q, r):
    """The gradient of a = Q R for a of full column rank (R invertible):
    (gQ + Q copy_upper(gR R^T - Q^T gQ)) R^-T, copy_upper mirroring the upper triangle. For a
    complex matrix (R with a real diagonal, as LAPACK makes it) the left Q is conjugated, the
    mirror conjugates, and the diagonal keeps its real part."""
    k = matrix_dims(r)[0]
    m = None
    if gr is not None:
        m = gr @ swap_last(r)
    if gq is not None:
        qtg = swap_last(q) @ gq
        m = -qtg if m is None else m - qtg
    strict = triangle_weights(k, float_dtype(r), lower=False, diagonal=0.0, inside=1.0)
    if is_complex(m):
        diag = triangle_weights(k, float_dtype(r), lower=False, diagonal=1.0, inside=0.0)
        mirrored = m * strict + real(m) * diag + mH(m * strict)
        left = conj(q)
    else:
        upper = triangle_weights(k, float_dtype(r), lower=False, diagonal=1.0, inside=1.0)
        mirrored = m * upper + swap_last(m * strict)
        left = q
    x = left @ mirrored if gq is None else gq + left @ mirrored
    return swap_last(solve(r, swap_last(x)))  # x R^-T


def _qr_vjp(g, out, a):
    gq, gr = g
    q, r = out
    m, n = matrix_dims(a)
    if m >= n:
        return (_qr_square_grad(gq, gr, q, r),)
    # wide: a = [X | Y] with X = Q U square and Y = Q V, so R = [U | V]
    left, right = (Ellipsis, slice(0, m)), (Ellipsis, slice(m, None))
    y = getitem(a, index=right)
    g_u = None if gr is None else getitem(gr, index=left)
    g_v = None if gr is None else getitem(gr, index=right)
    cplx = is_complex(q)
    if g_v is not None:  # V = Q^H Y
        extra = (conj(y) if cplx else y) @ mH(g_v)
        gq = extra if gq is None else gq + extra
    gx = _qr_square_grad(gq, g_u, q, getitem(r, index=left))
    if g_v is None:  # Y only enters through V
        gy = np.zeros(np.shape(unwrap(a))[:-1] + (n - m,), dtype=float_dtype(r))
    else:
        gy = (conj(q) if cplx else q) @ g_v
    return (concatenate([gx, gy], axis=-1),)


qr = defop("qr", _qr, _qr_vjp, Domain((WellConditioned(),), [
    ((3, 3),), ((4, 2),), ((2, 4),), ((2, 3, 2),), ((1, 1),), ((2, 2, 3),),
], complex=True), n_outputs=2,
    doc="""``(Q, R)``: the reduced QR decomposition, as numpy.linalg.qr(a, mode='reduced').
    Differentiable for matrices whose leading square block has full rank.

    >>> import numpy as np, fungrad as fg
    >>> q, r = fg.ops()["qr"](np.array([[3.0, 1.0], [4.0, 2.0], [0.0, 1.0]]))
    >>> q.shape, r.shape, bool(np.allclose(q @ r, [[3.0, 1.0], [4.0, 2.0], [0.0, 1.0]]))
    ((3, 2), (2, 2), True)
    """,
    batch=matrix_stack)
