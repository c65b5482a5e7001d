"""``scipy.linalg`` with gradients: triangular, Cholesky, LU, banded and Sylvester solves, the
matrix functions expm, logm and sqrtm, and eigh/svd/det/inv (as :mod:`fungrad.numpy.linalg`).

New ops (forwards from SciPy, one matrix at a time over any leading stack axes):
``solve_triangular``, ``solve_sylvester``, ``expm``, ``logm``, ``sqrtm``, ``lu_factor``. Their
VJPs are written with ops, so they differentiate again: expm's and logm's are the same
function of a block matrix [[A^T, G], [0, A^T]] (its upper-right block is the adjoint Fréchet
derivative), sqrtm's a Sylvester solve, solve_sylvester's two more of them. The rest are
composites (cholesky, cho_solve, lu_solve, solve_banded, generalized eigh).

>>> import numpy as np, fungrad as fg
>>> from fungrad.scipy import linalg
>>> linalg.expm(np.zeros((2, 2)))
array([[1., 0.],
       [0., 1.]])
>>> fg.grad(lambda a: fg.sum(linalg.expm(a)))(np.zeros((1, 1)))
array([[1.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as fnp
from ..batching.rules import matrix_stack
from ..domains import Domain, PositiveDefinite, Real, WellConditioned
from ..errors import LinAlgError, ShapeError
from ..primitives import cholesky as _cholesky_op
from ..primitives import concatenate, expand_dims, solve, squeeze, where
from ..primitives.linalg import swap_last
from ..registry import defop, unwrap
from ._common import cast_like, dtype_of, result_dtype, scipy_module

__all__ = ["solve_triangular", "cho_factor", "cho_solve", "cholesky", "sqrtm", "expm", "logm",
           "lu_factor", "lu_solve", "solve_sylvester", "solve_banded", "eigh", "svd", "det",
           "inv"]


def _la() -> Any:
    return scipy_module("linalg")


def _each_matrix(name: str, fn, *arrays) -> np.ndarray:
    """``fn`` applied to each matrix of the (broadcast) stacks ``arrays``; errors name the op."""
    mats = [np.asarray(a) for a in arrays]
    for a in mats:
        if a.ndim < 2:
            raise ShapeError(f"{name}: expected matrices (..., M, N), got shape {a.shape}")
    lead = np.broadcast_shapes(*[a.shape[:-2] for a in mats])
    try:
        if not lead:
            return np.asarray(fn(*mats))
        mats = [np.broadcast_to(a, lead + a.shape[-2:]) for a in mats]
        results = [np.asarray(fn(*[a[idx] for a in mats])) for idx in np.ndindex(*lead)]
        return np.stack(results).reshape(lead + results[0].shape)
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"{name}: {e}") from None


def _t(x: Any) -> Any:
    return swap_last(x)


def _triangle(n: int, lower: bool, unit: bool, dtype) -> np.ndarray:
    """The 0/1 mask of the entries a triangular solve reads."""
    mask = np.tril(np.ones((n, n)), -1 if unit else 0) if lower else \
        np.triu(np.ones((n, n)), 1 if unit else 0)
    return mask.astype(dtype)


# -- solve_triangular ----------------------------------------------------------------------------

_TRANS = {0: 0, 1: 1, 2: 1, "N": 0, "T": 1, "C": 1}


def _solve_tri(a, b, trans=0, lower=False, unit_diagonal=False):
    def one(a2, b2):
        return _la().solve_triangular(a2, b2, trans=trans, lower=lower,
                                      unit_diagonal=unit_diagonal)
    return cast_like(_each_matrix("solve_triangular", one, a, b), a, b)


def _solve_tri_b(g, out, a, b, trans=0, lower=False, unit_diagonal=False):
    return _solve_tri_op(a, g, trans=1 - _TRANS[trans], lower=lower,
                         unit_diagonal=unit_diagonal)


def _solve_tri_a(g, out, a, b, trans=0, lower=False, unit_diagonal=False):
    gb = _solve_tri_b(g, out, a, b, trans, lower, unit_diagonal)
    ga = -(gb @ _t(out)) if _TRANS[trans] == 0 else -(out @ _t(gb))
    n = np.shape(unwrap(a))[-1]
    return ga * _triangle(n, lower, unit_diagonal, dtype_of(ga))


_solve_tri_op = defop(
    "scipy.linalg.solve_triangular", _solve_tri, (_solve_tri_a, _solve_tri_b),
    Domain((WellConditioned(), Real()), [
        (((3, 3), (3, 2)), {"lower": True}), (((3, 3), (3, 1)), {"trans": 1}),
        (((2, 3, 3), (2, 3, 2)), {"lower": True, "unit_diagonal": True}),
        (((4, 4), (4, 3)), {"trans": 1, "lower": True}),
    ]), batch=matrix_stack,
    doc="""The triangular solve of scipy.linalg.solve_triangular on matrices b (..., N, K);
    :func:`solve_triangular` also takes vectors.""")


def solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False,
                     unit_diagonal: bool = False, overwrite_b: bool = False,
                     check_finite: bool = True) -> Any:
    """The solution x of a @ x = b (``trans=1``: a.T @ x = b) for triangular a, reading only
    its ``lower`` (or upper) triangle (and taking its diagonal as ones with
    ``unit_diagonal``), as scipy.linalg.solve_triangular. Differentiable in a and b.

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import solve_triangular
    >>> solve_triangular(np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([2.0, 3.0]), lower=True)
    array([1., 2.])
    """
    if trans not in _TRANS:
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got "
                         f"{trans!r}")
    vector = np.ndim(unwrap(b)) == 1
    b2 = expand_dims(b, axis=-1) if vector else b
    x = _solve_tri_op(a, b2, trans=_TRANS[trans], lower=bool(lower),
                      unit_diagonal=bool(unit_diagonal))
    return squeeze(x, axis=-1) if vector else x


# -- Cholesky --------------------------------------------------------------------------------------


def cholesky(a: Any, lower: bool = False, overwrite_a: bool = False,
             check_finite: bool = True) -> Any:
    """The Cholesky factor of a symmetric positive definite matrix, upper triangular by
    default (``lower=True``: lower), as scipy.linalg.cholesky.

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import cholesky
    >>> cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]))
    array([[2., 1.],
           [0., 1.]])
    """
    return _cholesky_op(a, upper=not lower)


def cho_factor(a: Any, lower: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> tuple[Any, bool]:
    """``(c, lower)`` for :func:`cho_solve`, as scipy.linalg.cho_factor (unlike SciPy, the
    other triangle of c holds zeros rather than whatever a held there).

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import cho_factor
    >>> cho_factor(np.array([[4.0]]))
    (array([[2.]]), False)
    """
    return cholesky(a, lower=lower), bool(lower)


def cho_solve(c_and_lower: tuple, b: Any, overwrite_b: bool = False,
              check_finite: bool = True) -> Any:
    """The solution of a @ x = b given ``cho_factor(a)``; differentiable in the factor and b.

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import cho_factor, cho_solve
    >>> cho_solve(cho_factor(np.array([[4.0, 2.0], [2.0, 2.0]])), np.array([2.0, 1.0]))
    array([0.5, 0. ])
    """
    c, lower = c_and_lower
    if lower:  # a = L L^T
        return solve_triangular(c, solve_triangular(c, b, lower=True), trans=1, lower=True)
    return solve_triangular(c, solve_triangular(c, b, trans=1), lower=False)  # a = U^T U


# -- LU --------------------------------------------------------------------------------------------


def _lu_factor(a):
    def one(m):
        lu, piv = _la().lu_factor(m)
        return np.concatenate([lu, piv[None, :].astype(lu.dtype)], axis=0)
    a = np.asarray(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"lu_factor: expected square matrices (..., N, N), got {a.shape}")
    both = _each_matrix("lu_factor", one, a)
    piv = both[..., -1, :].astype(np.int32)
    # the rows' inverse permutation: an output, so that the VJP never needs piv's values
    # (under fg.jit they are not known while it traces)
    return cast_like(both[..., :-1, :], a), piv, np.argsort(_permutation(piv), axis=-1)


def _unpack(lu):
    n = np.shape(unwrap(lu))[-1]
    dt = dtype_of(lu)
    low = lu * _triangle(n, True, True, dt) + np.eye(n, dtype=dt)
    return low, lu * _triangle(n, False, False, dt)


def _permutation(piv: np.ndarray) -> np.ndarray:
    """The row order ``perm`` with a[perm] = L U, from LAPACK's sequence of swaps."""
    piv = np.asarray(piv)
    perm = np.broadcast_to(np.arange(piv.shape[-1]), piv.shape).copy()
    for idx in np.ndindex(*piv.shape[:-1]):
        p = perm[idx]
        for i, j in enumerate(piv[idx]):
            p[i], p[j] = p[j], p[i]
    return perm


def _rows(x: Any, perm: np.ndarray) -> Any:
    """``x[..., perm, :]`` per matrix of a stack."""
    shape = tuple(perm.shape)
    grids = np.indices(shape, sparse=True)[:len(shape) - 1]
    return x[tuple(grids) + (perm,)]


def _lu_vjp(g, out, a):
    g_lu = g[0]
    if g_lu is None:
        return (a * 0.0,)
    lu, _, inverse = out
    low, up = _unpack(lu)
    n = np.shape(unwrap(lu))[-1]
    dt = dtype_of(g_lu)
    inner = (_t(low) @ (g_lu * _triangle(n, True, True, dt))) * _triangle(n, True, True, dt) \
        + ((g_lu * _triangle(n, False, False, dt)) @ _t(up)) * _triangle(n, False, False, dt)
    right = _t(_solve_tri_op(up, _t(inner), lower=False))  # inner U^-T
    permuted = _solve_tri_op(low, right, trans=1, lower=True, unit_diagonal=True)
    return (_rows(permuted, inverse),)


_lu_factor_op = defop(
    "scipy.linalg.lu_factor", _lu_factor, _lu_vjp,
    Domain((WellConditioned(),), [(((3, 3),), {}), (((2, 4, 4),), {}), (((1, 1),), {})]),
    n_outputs=3, batch=matrix_stack,
    doc="""``(lu, piv, inverse)`` of a square matrix (or a stack): scipy.linalg.lu_factor's
    factors and the inverse of the row permutation (for the VJP).""")


def lu_factor(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> tuple:
    """The pivoted LU factorization ``(lu, piv)`` of a square matrix, as
    scipy.linalg.lu_factor (L unit lower triangular below the diagonal of lu, U on and above
    it, piv LAPACK's row swaps). Differentiable in a through lu.

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import lu_factor
    >>> lu, piv = lu_factor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> piv
    array([1, 1], dtype=int32)
    """
    lu, piv, _ = _lu_factor_op(a)
    return lu, piv


def lu_solve(lu_and_piv: tuple, b: Any, trans: int = 0, overwrite_b: bool = False,
             check_finite: bool = True) -> Any:
    """The solution of a @ x = b (``trans=1``: a.T @ x = b) given ``lu_factor(a)``, as
    scipy.linalg.lu_solve; differentiable in lu and b.

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import lu_factor, lu_solve
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> lu_solve(lu_factor(a), np.array([5.0, 11.0]))
    array([1., 2.])
    """
    lu, piv = lu_and_piv
    perm = _permutation(np.asarray(unwrap(piv)))
    vector = np.ndim(unwrap(b)) == 1
    b2 = expand_dims(b, axis=-1) if vector else b
    if _TRANS[trans] == 0:  # L U x = b[perm]
        y = solve_triangular(lu, _rows(b2, perm), lower=True, unit_diagonal=True)
        x = solve_triangular(lu, y, lower=False)
    else:  # U^T L^T P^T x = b: x[perm] = L^-T U^-T b
        y = solve_triangular(lu, b2, trans=1, lower=False)
        z = solve_triangular(lu, y, trans=1, lower=True, unit_diagonal=True)
        x = _rows(z, np.argsort(perm, axis=-1))
    return squeeze(x, axis=-1) if vector else x


# -- Sylvester equations and matrix functions -----------------------------------------------------


def _sylvester(a, b, q):
    return cast_like(_each_matrix("solve_sylvester", lambda x, y, z: _la().solve_sylvester(
        x, y, z), a, b, q), a, b, q)


def _sylvester_q(g, out, a, b, q):
    return _sylvester_op(_t(a), _t(b), g)


_sylvester_op = defop("scipy.linalg.solve_sylvester", _sylvester, (
    lambda g, out, a, b, q: -(_sylvester_q(g, out, a, b, q) @ _t(out)),
    lambda g, out, a, b, q: -(_t(out) @ _sylvester_q(g, out, a, b, q)),
    _sylvester_q,
), Domain((PositiveDefinite(), PositiveDefinite(), Real()), [
    (((3, 3), (3, 3), (3, 3)), {}), (((2, 2), (3, 3), (2, 3)), {}),
    (((2, 3, 3), (2, 2, 2), (2, 3, 2)), {}),
], complex=True), batch=matrix_stack, doc="""The solution X of A X + X B = Q.""")


def solve_sylvester(a: Any, b: Any, q: Any) -> Any:
    """The solution X of the Sylvester equation A X + X B = Q, as
    scipy.linalg.solve_sylvester; differentiable in A, B and Q (the adjoint is again a
    Sylvester equation, with A^T and B^T).

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import solve_sylvester
    >>> solve_sylvester(np.eye(2), np.eye(2), 2.0 * np.eye(2))
    array([[1., 0.],
           [0., 1.]])
    """
    return _sylvester_op(a, b, q)


def _block(a_t: Any, g: Any) -> Any:
    """[[A^T, G], [0, A^T]]: a matrix function of it holds the adjoint Fréchet derivative of
    the function at A applied to G in its upper-right block."""
    zeros = g * 0.0
    return concatenate([concatenate([a_t, g], axis=-1), concatenate([zeros, a_t], axis=-1)],
                       axis=-2)


def _upper_right(m: Any, n: int) -> Any:
    return m[..., :n, n:]


def _expm(a):
    return cast_like(_each_matrix("expm", lambda x: _la().expm(x), a), a)


def _expm_vjp(g, out, a):
    n = np.shape(unwrap(a))[-1]
    return (_upper_right(expm(_block(_t(a), g)), n),)


expm = defop("scipy.linalg.expm", _expm, _expm_vjp, Domain((Real(-1.0, 1.0),), [
    (((2, 2),), {}), (((1, 1),), {}), (((2, 2, 2),), {}),
]), batch=matrix_stack, doc="""The matrix exponential, as scipy.linalg.expm. Its VJP is the
upper-right block of expm([[A^T, G], [0, A^T]]), so it differentiates again.

>>> import numpy as np
>>> from fungrad.scipy.linalg import expm
>>> expm(np.array([[0.0, 1.0], [0.0, 0.0]]))
array([[1., 1.],
       [0., 1.]])
""")


def _principal(name: str):
    """The forward of scipy.linalg's ``name`` (a principal matrix function) on each matrix of a
    stack. As SciPy's, the result is complex where the function's value is (a real matrix with
    a negative real eigenvalue); an imaginary part at rounding level is dropped."""
    def one(x):
        value = getattr(_la(), name)(x)
        if np.iscomplexobj(value) and not np.iscomplexobj(x) and np.max(
                np.abs(value.imag), initial=0.0) <= 1e-8 * max(1.0, np.max(np.abs(value))):
            value = value.real
        return value

    def forward(a):
        value = _each_matrix(name, one, a)
        dtype = result_dtype(a)
        if np.iscomplexobj(value) and dtype.kind != "c":  # float32 in, complex64 out
            dtype = np.result_type(dtype, np.complex64)
        return value.astype(dtype, copy=False)
    return forward


_logm = _principal("logm")


def _logm_vjp(g, out, a):
    n = np.shape(unwrap(a))[-1]
    return (_upper_right(logm(_block(_t(a), g)), n),)


logm = defop("scipy.linalg.logm", _logm, _logm_vjp, Domain((PositiveDefinite(),), [
    (((2, 2),), {}), (((1, 1),), {}), (((2, 2, 2),), {}),
], complex=True), batch=matrix_stack, doc="""The principal matrix logarithm, as scipy.linalg.logm (complex, as
SciPy's, for a real matrix with a negative real eigenvalue). Its VJP is the upper-right block
of logm([[A^T, G], [0, A^T]]).

>>> import numpy as np
>>> from fungrad.scipy.linalg import logm
>>> logm(np.diag([1.0, np.e]))
array([[0., 0.],
       [0., 1.]])
""")


_sqrtm = _principal("sqrtm")


sqrtm = defop("scipy.linalg.sqrtm", _sqrtm,
              lambda g, out, a: (_sylvester_op(_t(out), _t(out), g),),
              Domain((PositiveDefinite(),), [(((2, 2),), {}), (((1, 1),), {}),
                                             (((2, 2, 2),), {})], complex=True),
              batch=matrix_stack, doc="""The principal matrix square root X (X @ X = A), as
scipy.linalg.sqrtm: complex, as SciPy's, for a real matrix with a negative real eigenvalue
(a real input then takes the real part of its cotangent). Its VJP solves the Sylvester
equation X^T Y + Y X^T = G.

>>> import numpy as np
>>> from fungrad.scipy.linalg import sqrtm
>>> sqrtm(np.diag([4.0, 9.0]))
array([[2., 0.],
       [0., 3.]])
""")


# -- banded systems and the decompositions --------------------------------------------------------


def solve_banded(l_and_u: tuple, ab: Any, b: Any, overwrite_ab: bool = False,
                 overwrite_b: bool = False, check_finite: bool = True) -> Any:
    """The solution of a @ x = b for a banded matrix given in SciPy's diagonal-ordered form
    ``ab`` (``ab[u + i - j, j] == a[i, j]``), as scipy.linalg.solve_banded; differentiable in
    ab and b (the band is expanded to a dense matrix and solved: O(n^3), for moderate n).

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import solve_banded
    >>> ab = np.array([[0.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.0, 1.0, 0.0]])  # tridiagonal
    >>> solve_banded((1, 1), ab, np.array([3.0, 4.0, 3.0]))
    array([1., 1., 1.])
    """
    n_lower, n_upper = (int(v) for v in l_and_u)
    shape = np.shape(unwrap(ab))
    if len(shape) != 2 or shape[0] != n_lower + n_upper + 1:
        raise ShapeError(f"solve_banded: ab must have shape ({n_lower + n_upper + 1}, N) for "
                         f"(l, u) = {(n_lower, n_upper)}, got {shape}")
    n = shape[1]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    band = (i - j <= n_lower) & (j - i <= n_upper)
    rows = np.where(band, n_upper + i - j, 0)
    dense = where(band, ab[rows, j], 0.0)
    return solve(dense, b)


def eigh(a: Any, b: Any = None, lower: bool = True, eigvals_only: bool = False,
         **kwargs: Any) -> Any:
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix, or of the generalized
    problem a v = w b v for symmetric positive definite b, as scipy.linalg.eigh (reduced with
    b's Cholesky factor). Differentiable where the eigenvalues are distinct.

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import eigh
    >>> eigh(np.diag([2.0, 1.0]), eigvals_only=True)
    array([1., 2.])
    """
    if kwargs:
        raise TypeError(f"eigh: options {sorted(kwargs)} are not supported (fungrad computes "
                        "every eigenpair)")
    uplo = "L" if lower else "U"
    if b is None:
        w, v = fnp.linalg.eigh(a, UPLO=uplo)
    else:
        chol = fnp.linalg.cholesky(b)
        c = solve_triangular(chol, _t(solve_triangular(chol, a, lower=True)), lower=True)
        w, y = fnp.linalg.eigh(0.5 * (c + _t(c)), UPLO=uplo)
        v = solve_triangular(chol, y, trans=1, lower=True)
    return w if eigvals_only else (w, v)


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, **kwargs: Any) -> Any:
    """The singular value decomposition ``(u, s, vh)`` (or ``s`` with ``compute_uv=False``),
    as scipy.linalg.svd (fungrad.numpy.linalg.svd).

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import svd
    >>> svd(np.diag([3.0, 2.0]), compute_uv=False)
    array([3., 2.])
    """
    return fnp.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)


def det(a: Any, **kwargs: Any) -> Any:
    """The determinant, as scipy.linalg.det (fungrad.numpy.linalg.det).

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import det
    >>> float(det(np.diag([2.0, 3.0])))
    6.0
    """
    return fnp.linalg.det(a)


def inv(a: Any, **kwargs: Any) -> Any:
    """The inverse, as scipy.linalg.inv (fungrad.numpy.linalg.inv).

    >>> import numpy as np
    >>> from fungrad.scipy.linalg import inv
    >>> inv(np.diag([2.0, 4.0]))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    return fnp.linalg.inv(a)
