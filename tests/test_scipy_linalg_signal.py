"""fungrad.scipy.linalg and fungrad.scipy.signal against SciPy (values) and finite differences
(gradients to second order in both modes)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

import scipy.linalg as sl  # noqa: E402
import scipy.signal as ssig  # noqa: E402

import fungrad as fg  # noqa: E402
from fungrad.scipy import linalg as L  # noqa: E402
from fungrad.scipy import signal as S  # noqa: E402
from fungrad.testing import check_grads  # noqa: E402

_rng = np.random.default_rng(0)
_A = _rng.normal(size=(3, 3))
_SPD = _A @ _A.T + 3.0 * np.eye(3)
_B = _rng.normal(size=(3, 2))
_b = _rng.normal(size=3)
_T = np.tril(_A) + 3.0 * np.eye(3)
_BOTH = ("rev", "fwd")


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("trans", [0, 1, "T"])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular(lower, trans, unit):
    t = _T if lower else _T.T
    kw = dict(trans=trans, lower=lower, unit_diagonal=unit)
    np.testing.assert_allclose(L.solve_triangular(t, _B, **kw), sl.solve_triangular(t, _B, **kw))
    np.testing.assert_allclose(L.solve_triangular(t, _b, **kw), sl.solve_triangular(t, _b, **kw))
    check_grads(lambda a, y: L.solve_triangular(a, y, **kw), t, _b, order=2, modes=_BOTH)


@pytest.mark.parametrize("lower", [True, False])
def test_cholesky_family(lower):
    np.testing.assert_allclose(L.cholesky(_SPD, lower=lower), sl.cholesky(_SPD, lower=lower))
    c = L.cho_factor(_SPD, lower=lower)
    np.testing.assert_allclose(L.cho_solve(c, _B), sl.cho_solve(sl.cho_factor(_SPD, lower), _B))
    check_grads(lambda s, y: L.cho_solve(L.cho_factor(0.5 * (s + s.T), lower=lower), y),
                _SPD, _B, order=2, modes=_BOTH)


@pytest.mark.parametrize("trans", [0, 1])
def test_lu(trans):
    lu, piv = L.lu_factor(_A)
    lu_ref, piv_ref = sl.lu_factor(_A)
    np.testing.assert_allclose(lu, lu_ref)
    np.testing.assert_array_equal(piv, piv_ref)
    np.testing.assert_allclose(L.lu_solve((lu, piv), _B, trans=trans),
                               sl.lu_solve((lu_ref, piv_ref), _B, trans=trans))
    check_grads(lambda a, y: L.lu_solve(L.lu_factor(a), y, trans=trans), _A, _b, order=2,
                modes=_BOTH)
    stack = np.stack([_A, _A.T + np.eye(3)])
    np.testing.assert_allclose(L.lu_factor(stack)[0][1], sl.lu_factor(stack[1])[0])


@pytest.mark.parametrize("name", ["expm", "logm", "sqrtm"])
def test_matrix_functions(name):
    ours, ref = getattr(L, name), getattr(sl, name)
    np.testing.assert_allclose(ours(_SPD), ref(_SPD), rtol=1e-10, atol=1e-12)
    check_grads(ours, _SPD, order=2, modes=_BOTH)
    stack = np.stack([_SPD, _SPD + np.eye(3)])
    np.testing.assert_allclose(ours(stack)[1], ref(stack[1]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["logm", "sqrtm"])
def test_matrix_functions_of_indefinite_matrices_are_complex_as_scipy(name):
    # autograd's test_sqrtm (a symmetric indefinite matrix): SciPy's value is complex, and so
    # is ours, differentiable in the real matrix (which takes the real part of its cotangent)
    a = _rng.normal(size=(3, 3))
    a = a + a.T - 2.0 * np.eye(3)
    assert np.min(np.linalg.eigvalsh(a)) < 0
    ours, ref = getattr(L, name), getattr(sl, name)
    value = ours(a)
    assert value.dtype == np.complex128 and ours(a.astype(np.float32)).dtype == np.complex64
    np.testing.assert_allclose(value, ref(a), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours(-np.eye(2)), ref(-np.eye(2)), atol=1e-12)
    sym = lambda m: ours((m + m.T) / 2)  # noqa: E731
    check_grads(sym, a, order=2 if name == "sqrtm" else 1, modes=_BOTH)
    np.testing.assert_allclose(ours(np.stack([a, _SPD])), [ref(a), ref(_SPD)], atol=1e-10)
    assert ours(_SPD).dtype == np.float64  # a real value stays real


def test_matrix_function_errors_name_the_op():
    with pytest.raises(fg.errors.LinAlgError, match="sqrtm"):
        L.sqrtm(np.ones((2, 3)))
    with pytest.raises(fg.errors.ShapeError, match="solve_banded"):
        L.solve_banded((1, 1), np.ones((2, 3)), np.ones(3))


def test_sylvester_banded_eigh_and_the_rest():
    q = _rng.normal(size=(3, 2))
    b2 = np.array([[2.0, 0.3], [0.1, 3.0]])
    np.testing.assert_allclose(L.solve_sylvester(_SPD, b2, q), sl.solve_sylvester(_SPD, b2, q))
    check_grads(L.solve_sylvester, _SPD, b2, q, order=2, modes=_BOTH)
    ab = _rng.normal(size=(3, 5))
    ab[1] += 4.0
    y = _rng.normal(size=5)
    np.testing.assert_allclose(L.solve_banded((1, 1), ab, y), sl.solve_banded((1, 1), ab, y))
    check_grads(lambda a, z: L.solve_banded((1, 1), a, z), ab, y, order=2, modes=_BOTH)
    other = _SPD + np.eye(3)
    w, v = L.eigh(_SPD, other)
    w_ref, v_ref = sl.eigh(_SPD, other)
    np.testing.assert_allclose(w, w_ref)
    np.testing.assert_allclose(np.abs(v), np.abs(v_ref), atol=1e-10)
    check_grads(lambda s: L.eigh(0.5 * (s + s.T), other, eigvals_only=True), _SPD, order=2)
    np.testing.assert_allclose(L.svd(_A, compute_uv=False), sl.svd(_A, compute_uv=False))
    np.testing.assert_allclose(L.det(_A), sl.det(_A))
    np.testing.assert_allclose(L.inv(_A), sl.inv(_A))


# -- signal -----------------------------------------------------------------------------------

SHAPES = [((4,), (2,)), ((5, 4), (3, 2)), ((6, 7), (4, 2)), ((2, 3), (5, 5)),
          ((3, 4, 2), (2, 2, 2)), ((3,), (3,))]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("mode", ["full", "valid", "same"])
def test_convolve_correlate_match_scipy(shapes, mode):
    a, b = _rng.normal(size=shapes[0]), _rng.normal(size=shapes[1])
    try:
        ref = ssig.convolve(a, b, mode)
    except ValueError:  # SciPy's valid mode needs one array larger along every axis
        with pytest.raises(fg.errors.ShapeError, match="valid"):
            S.convolve(a, b, mode=mode)
        return
    np.testing.assert_allclose(S.convolve(a, b, mode=mode), ref, atol=1e-12)
    np.testing.assert_allclose(S.convolve(a, b, mode), ref, atol=1e-12)  # SciPy's positions
    np.testing.assert_allclose(S.correlate(a, b, mode=mode), ssig.correlate(a, b, mode),
                               atol=1e-12)
    check_grads(lambda x, y: S.convolve(x, y, mode=mode), a, b, order=2, modes=_BOTH)


def test_autograd_generalized_convolve():
    """autograd's convolve(A, B, axes, dot_axes, mode), as its tests check it."""
    a35, a34, a342 = (_rng.normal(size=s) for s in [(3, 5), (3, 4), (3, 4, 2)])
    a2543, a24232 = _rng.normal(size=(2, 5, 4, 3)), _rng.normal(size=(2, 4, 2, 3, 2))
    for mode in ["valid", "full"]:
        np.testing.assert_allclose(S.convolve(a35, a34, axes=([1], [0]), mode=mode)[1, 2],
                                   ssig.convolve(a35[1, :], a34[:, 2], mode))
        np.testing.assert_allclose(
            S.convolve(a35, a34, axes=([], []), dot_axes=([0], [0]), mode=mode),
            np.tensordot(a35, a34, axes=([0], [0])))
        np.testing.assert_allclose(
            S.convolve(a35, a342, axes=([1], [2]), dot_axes=([0], [0]), mode=mode)[2],
            sum(ssig.convolve(a35[i, :], a342[i, 2, :], mode) for i in range(3)))
        np.testing.assert_allclose(
            S.convolve(a2543, a24232, axes=([1, 2], [2, 4]), dot_axes=([0, 3], [0, 3]),
                       mode=mode)[2],
            sum(sum(ssig.convolve(a2543[i, :, :, j], a24232[i, 2, :, j, :], mode)
                    for i in range(2)) for j in range(3)))
    check_grads(lambda x, y: S.convolve(x, y, axes=([1], [1]), dot_axes=([0], [2])),
                _rng.normal(size=(3, 3, 2)), _rng.normal(size=(3, 2, 3)), order=2,
                modes=_BOTH)


def test_convolve_under_vmap_and_jit():
    a, k = _rng.normal(size=(4, 6)), _rng.normal(size=3)
    batched = fg.vmap(lambda row: S.convolve(row, k))(a)
    np.testing.assert_allclose(batched, np.stack([ssig.convolve(r, k) for r in a]))
    jitted = fg.jit(lambda x: S.convolve(x, k, mode="same"))
    np.testing.assert_allclose(jitted(a[0]), ssig.convolve(a[0], k, mode="same"))
