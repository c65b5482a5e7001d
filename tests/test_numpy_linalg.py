"""fungrad.numpy.linalg: NumPy's values and result types, gradients against finite differences
(to second order, both modes), stacks of matrices, float32, NumPy's protocols (np.linalg.X on a
Tensor), cross-checks against HIPS autograd, and errors that name the op."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad import Tensor
from fungrad.domains import (
    DistinctEigenvalues, DistinctSingularValues, PositiveDefinite, WellConditioned,
)
from fungrad.errors import DTypeError, LinAlgError, ShapeError
from fungrad.testing import check_grads

LA = fnp.linalg


def _draw(spec, shape, seed=0):
    return spec.from_unit(np.random.default_rng(seed).random(shape))


def well(*shape, seed=0):
    return _draw(WellConditioned(), shape, seed)


def spd(*shape, seed=0):
    return _draw(PositiveDefinite(), shape, seed)


def sym(*shape, seed=0):
    return _draw(DistinctEigenvalues(), shape, seed)


def separated(*shape, seed=0):
    return _draw(DistinctSingularValues(), shape, seed)


def _weights(seed, like, *shapes):
    """Fixed random weights in the dtype of ``like`` (float64 weights would upcast float32)."""
    rng = np.random.default_rng(100 + seed)
    dtype = np.result_type(_data(like))
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _data(x):
    return x.data if isinstance(x, Tensor) else x


# -- values and result types against NumPy --------------------------------------------------------

VALUE_CASES = [
    ("inv", lambda: (well(3, 3),), {}),
    ("inv", lambda: (well(2, 4, 4),), {}),
    ("det", lambda: (well(2, 3, 3),), {}),
    ("slogdet", lambda: (well(2, 3, 3),), {}),
    ("solve", lambda: (well(3, 3), np.arange(3.0)), {}),
    ("solve", lambda: (well(2, 3, 3), np.ones((3, 2))), {}),
    ("solve", lambda: (well(3, 3), np.ones((4, 3, 2))), {}),
    ("cholesky", lambda: (spd(2, 3, 3),), {}),
    ("cholesky", lambda: (spd(3, 3),), {"upper": True}),
    ("eigh", lambda: (sym(2, 3, 3),), {}),
    ("eigh", lambda: (sym(4, 4),), {"UPLO": "U"}),
    ("eigvalsh", lambda: (sym(3, 3),), {}),
    ("svd", lambda: (separated(4, 2),), {"full_matrices": False}),
    ("svd", lambda: (separated(2, 3, 4),), {}),
    ("svd", lambda: (separated(3, 2),), {"compute_uv": False}),
    ("svdvals", lambda: (separated(2, 3),), {}),
    ("pinv", lambda: (well(4, 2),), {}),
    ("pinv", lambda: (well(2, 2, 3),), {"rcond": 1e-10}),
    ("qr", lambda: (well(4, 3),), {}),
    ("qr", lambda: (well(2, 2, 4),), {}),
    ("qr", lambda: (well(3, 2),), {"mode": "r"}),
    ("matrix_power", lambda: (well(3, 3), 5), {}),
    ("matrix_power", lambda: (well(2, 3, 3), -2), {}),
    ("matrix_power", lambda: (well(3, 3), 0), {}),
    ("multi_dot", lambda: ([well(2, 5), well(5, 3), well(3, 4), well(4, 2)],), {}),
    ("multi_dot", lambda: ([np.ones(3), well(3, 4), np.arange(4.0)],), {}),
    ("cond", lambda: (well(3, 3),), {}),
    ("cond", lambda: (well(2, 3, 3), "fro"), {}),
    ("cond", lambda: (well(3, 3), -np.inf), {}),
    ("tensorinv", lambda: (well(6, 6).reshape(6, 2, 3),), {"ind": 1}),
    ("tensorsolve", lambda: (well(6, 6).reshape(2, 3, 6), np.ones((2, 3))), {}),
    ("matrix_transpose", lambda: (well(2, 3, 4),), {}),
    ("vecdot", lambda: (well(3, 4), np.arange(4.0)), {}),
    ("matmul", lambda: (well(2, 3, 4), well(4, 2)), {}),
]


def _leaves(result):
    return list(result) if isinstance(result, tuple) else [result]


@pytest.mark.parametrize("name, make, kwargs", VALUE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(VALUE_CASES)])
def test_values_and_result_types_match_numpy(name, make, kwargs):
    args = make()
    expected = getattr(np.linalg, name)(*args, **kwargs)
    got = getattr(LA, name)(*args, **kwargs)  # ndarrays in: ndarrays out
    assert type(got) is type(expected)
    for g, e in zip(_leaves(got), _leaves(expected)):
        assert np.shape(g) == np.shape(e) and np.result_type(g) == np.result_type(e)
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    tensors = [Tensor(a) if isinstance(a, np.ndarray) else
               [Tensor(x) for x in a] if isinstance(a, list) else a for a in args]
    traced = getattr(LA, name)(*tensors, **kwargs)  # Tensors in: Tensors out, same values
    if isinstance(expected, tuple):
        assert type(traced) is type(expected)
    for t, e in zip(_leaves(traced), _leaves(expected)):
        assert isinstance(t, Tensor)
        np.testing.assert_allclose(t.data, e, rtol=1e-10, atol=1e-12)


def test_lstsq_matches_numpy_in_every_shape_case():
    for a, b in [(well(5, 3), np.arange(5.0)), (well(5, 3), np.ones((5, 2))),
                 (well(3, 5), np.arange(3.0)), (well(3, 3), np.ones((3, 2)))]:
        expected = np.linalg.lstsq(a, b)
        got = LA.lstsq(Tensor(a), Tensor(b))
        for g, e in zip(got, expected):
            np.testing.assert_allclose(_data(g), e, rtol=1e-10, atol=1e-12)
            assert np.shape(_data(g)) == np.shape(e)


def test_nested_lists_are_arrays_and_lists_of_tensors_are_stacked():
    m = [[2.0, 1.0], [1.0, 3.0]]
    for name, args in [("det", (m,)), ("inv", (m,)), ("norm", (m, "nuc")),
                       ("matrix_power", (m, 2)), ("cond", (m,)), ("lstsq", (m, [1.0, 2.0])),
                       ("multi_dot", ([m, m, [1.0, 0.0]],)), ("vector_norm", ([3, 4],))]:
        got, want = getattr(LA, name)(*args), getattr(np.linalg, name)(*args)
        for g, w in zip(_leaves(got), _leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-12)
    g = fg.grad(lambda v: LA.norm([v[0], 2 * v[1]]))(np.array([3.0, 2.0]))
    np.testing.assert_allclose(g, [0.6, 1.6])


# -- gradients against finite differences, second order, both modes -------------------------------

def _eigh_features(a, uplo="L"):
    w, v = LA.eigh(a, UPLO=uplo)
    cw, cv = _weights(1, w, w.shape, v.shape)
    return fnp.sum(w * cw) + fnp.sum(v * v * cv)  # squares: the sign of a vector is arbitrary


def _svd_features(a):
    u, s, vh = LA.svd(a, full_matrices=False)
    cu, cs, cv = _weights(2, s, u.shape, s.shape, vh.shape)
    return fnp.sum(u * u * cu) + fnp.sum(s * cs) + fnp.sum(vh * vh * cv)


def _qr_features(a):
    q, r = LA.qr(a)
    cq, cr = _weights(3, q, q.shape, r.shape)
    return fnp.sum(q * cq) + fnp.sum(r * cr)


GRAD_CASES = [
    ("inv", lambda a: LA.inv(a), [well(2, 3, 3)]),
    ("det", lambda a: LA.det(a), [well(2, 3, 3)]),
    ("slogdet", lambda a: LA.slogdet(a).logabsdet, [well(2, 3, 3)]),
    ("solve-vector", lambda a, b: LA.solve(a, b), [well(2, 3, 3), np.arange(3.0) - 1]),
    ("solve-matrix", lambda a, b: LA.solve(a, b), [well(3, 3), well(2, 3, 2, seed=1)]),
    ("cholesky", lambda a: LA.cholesky(a), [spd(2, 3, 3)]),
    ("cholesky-upper", lambda a: LA.cholesky(a, upper=True), [spd(3, 3)]),
    ("eigh", _eigh_features, [sym(2, 3, 3)]),
    ("eigh-U", lambda a: _eigh_features(a, "U"), [sym(4, 4)]),
    ("eigvalsh", lambda a: LA.eigvalsh(a), [sym(3, 3)]),
    ("svd-tall", _svd_features, [separated(4, 2)]),
    ("svd-wide", _svd_features, [separated(2, 2, 3)]),
    ("svd-values", lambda a: LA.svd(a, compute_uv=False), [separated(3, 2)]),
    ("pinv-tall", lambda a: LA.pinv(a), [well(4, 2)]),
    ("pinv-wide", lambda a: LA.pinv(a), [well(2, 3)]),
    ("qr-tall", _qr_features, [well(2, 4, 3)]),
    ("qr-wide", _qr_features, [well(2, 4)]),
    ("matrix_power", lambda a: LA.matrix_power(a, 3), [well(3, 3)]),
    ("matrix_power-negative", lambda a: LA.matrix_power(a, -2), [well(3, 3)]),
    ("multi_dot", lambda a, b, c: LA.multi_dot([a, b, c]),
     [np.arange(3.0), well(3, 4), well(4, 2)]),
    ("lstsq", lambda a, b: LA.lstsq(a, b)[0], [well(5, 3), well(5, 2, seed=1)]),
    ("lstsq-residuals", lambda a, b: LA.lstsq(a, b)[1], [well(5, 3), np.arange(5.0)]),
    ("cond", lambda a: LA.cond(a), [well(3, 3)]),
    ("cond-1", lambda a: LA.cond(a, 1), [well(3, 3)]),
    ("tensorinv", lambda a: LA.tensorinv(a, ind=1), [well(4, 4).reshape(4, 2, 2)]),
    ("tensorsolve", lambda a, b: LA.tensorsolve(a, b), [well(4, 4).reshape(2, 2, 4),
                                                       np.ones((2, 2))]),
]


@pytest.mark.parametrize("name, f, args", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_match_finite_differences_to_second_order(name, f, args):
    check_grads(f, *args, order=2, modes=("rev", "fwd"))


# -- norms ----------------------------------------------------------------------------------------

VECTOR_ORDS = [None, 1, 2, 3, 0.5, -1, np.inf, -np.inf, 0]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
def test_vector_norms_match_numpy(ord):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for axis in (0, 1, -1):
        for keepdims in (False, True):
            got = LA.norm(Tensor(x), ord, axis, keepdims)
            np.testing.assert_allclose(got.data, np.linalg.norm(x, ord, axis, keepdims),
                                       rtol=1e-12)
    got = LA.vector_norm(x, axis=(0, 2), keepdims=True, ord=2 if ord is None else ord)
    want = np.linalg.vector_norm(x, axis=(0, 2), keepdims=True, ord=2 if ord is None else ord)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.shape == want.shape


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
def test_matrix_norms_match_numpy(ord):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for axis in ((0, 2), (2, 0), (-2, -1)):
        for keepdims in (False, True):
            got = LA.norm(Tensor(x), ord, axis, keepdims)
            np.testing.assert_allclose(got.data, np.linalg.norm(x, ord, axis, keepdims),
                                       rtol=1e-12)
    np.testing.assert_allclose(LA.matrix_norm(x, ord="fro" if ord is None else ord),
                               np.linalg.matrix_norm(x, ord="fro" if ord is None else ord),
                               rtol=1e-12)


@pytest.mark.parametrize("ord", [o for o in VECTOR_ORDS if o != 0], ids=str)
def test_vector_norm_gradients(ord):
    x = np.array([[0.7, -1.3, 0.4], [1.1, 0.2, -0.9]])
    check_grads(lambda v: LA.norm(v, ord, axis=1), x, order=2)


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
def test_matrix_norm_gradients(ord):
    x = separated(2, 3, 4)  # distinct singular values; distinct row and column sums
    check_grads(lambda m: LA.norm(m, ord, axis=(1, 2), keepdims=True), x, order=2)


def test_norm_gradient_at_zero_is_zero_not_nan():
    for f in [LA.norm, lambda v: LA.norm(v, 3, axis=1), lambda v: LA.norm(v, axis=0),
              lambda v: LA.norm(v, "fro"), lambda v: LA.vector_norm(v, ord=4)]:
        g = fg.grad(lambda v, f=f: fnp.sum(f(v)))(np.zeros((2, 2)))
        np.testing.assert_array_equal(g, np.zeros((2, 2)))
    assert fg.grad(lambda v: LA.norm(v, 0))(np.array([0.0, 2.0])).tolist() == [0.0, 0.0]


# -- the semantics that are easy to get wrong -----------------------------------------------------

@pytest.mark.parametrize("name, kwargs, lower", [("cholesky", {}, True),
                                                  ("cholesky", {"upper": True}, False),
                                                  ("eigh", {}, True),
                                                  ("eigh", {"UPLO": "U"}, False)])
def test_cholesky_and_eigh_read_one_triangle_as_numpy(name, kwargs, lower):
    a = spd(3, 3)
    junk = a + (np.triu(np.full((3, 3), 50.0), 1) if lower else np.tril(np.full((3, 3), 50.0), -1))
    want = getattr(np.linalg, name)(junk, **kwargs)
    got = getattr(LA, name)(junk, **kwargs)
    for g, w in zip(_leaves(got), _leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)

    def f(m):
        out = getattr(LA, name)(m, **kwargs)
        return fnp.sum(out * out) if name == "cholesky" else fnp.sum(out[0] * out[0] * out[0])

    g = fg.grad(f)(junk)
    unread = np.triu(g, 1) if lower else np.tril(g, -1)
    assert np.all(unread == 0)  # the triangle NumPy never reads gets no gradient
    check_grads(f, junk, order=2)
    # through a symmetric construction the usual symmetric gradient results
    x = np.random.default_rng(1).standard_normal((3, 3))
    via = fg.grad(lambda y: f(y @ y.T + 3 * np.eye(3)))(x)
    triangle = fg.grad(f)(x @ x.T + 3 * np.eye(3))
    sym_grad = (triangle + triangle.T) / 2  # the triangle's off-diagonal holds twice it
    np.testing.assert_allclose(via, 2 * sym_grad @ x, rtol=1e-10)


def test_eigenvalue_and_singular_value_gradients_are_finite_where_they_repeat():
    g = fg.grad(lambda m: fnp.sum(LA.eigvalsh(m) * np.array([1.0, 2.0, 3.0])))(np.eye(3))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(np.trace(g), 6.0)  # d/dt sum(c * eig(I + tE)) for E = I
    g = fg.grad(lambda m: fnp.sum(LA.svdvals(m)))(np.eye(3)[:, :2] * 2)
    np.testing.assert_allclose(g, np.eye(3)[:, :2])  # the nuclear norm's gradient: U V^T


def test_slogdet_sign_has_no_gradient_and_outputs_may_be_used_alone():
    a = well(3, 3)
    assert np.all(fg.grad(lambda m: LA.slogdet(m).sign * 1.0)(a) == 0)
    both = fg.grad(lambda m: LA.slogdet(m).sign * LA.slogdet(m).logabsdet)(a)
    np.testing.assert_allclose(both, np.linalg.slogdet(a).sign * np.linalg.inv(a).T)
    u_only = fg.grad(lambda m: fnp.sum(LA.svd(m).U[:, 0] ** 2 * np.arange(3.0)))(a)
    assert np.all(np.isfinite(u_only))


def test_svd_full_matrices_differentiates_through_the_reduced_part_only():
    a = separated(4, 2)
    reduced = fg.grad(lambda m: fnp.sum(LA.svd(m, full_matrices=False).U ** 2 * 0.5))(a)
    full = fg.grad(lambda m: fnp.sum(LA.svd(m).U[:, :2] ** 2 * 0.5))(a)
    np.testing.assert_allclose(full, reduced, rtol=1e-12, atol=1e-14)
    with pytest.raises(ShapeError, match="svd: backward.*full_matrices=False"):
        fg.grad(lambda m: fnp.sum(LA.svd(m).U[:, 3]))(a)


def test_matrix_power_zero_is_the_identity_with_zero_gradient():
    a = well(2, 3, 3)
    out = LA.matrix_power(Tensor(a, autograd=True), 0)
    np.testing.assert_array_equal(out.data, np.broadcast_to(np.eye(3), (2, 3, 3)))
    assert np.all(fg.grad(lambda m: fnp.sum(LA.matrix_power(m, 0)))(a) == 0)


# -- float32, stacks, NumPy's protocols -----------------------------------------------------------

FLOAT32_CASES = [
    ("inv", lambda a: LA.inv(a), well(2, 3, 3)),
    ("det", lambda a: LA.det(a), well(3, 3)),
    ("slogdet", lambda a: LA.slogdet(a).logabsdet, well(2, 3, 3)),
    ("solve", lambda a: LA.solve(a, np.ones((3, 2), np.float32)), well(3, 3)),
    ("cholesky", lambda a: LA.cholesky(a), spd(2, 3, 3)),
    ("eigh", lambda a: _eigh_features(a), sym(3, 3)),
    ("svd", lambda a: _svd_features(a), separated(4, 3)),
    ("pinv", lambda a: LA.pinv(a), well(2, 4)),
    ("qr", lambda a: _qr_features(a), well(4, 3)),
    ("norm", lambda a: LA.norm(a, axis=-1), well(3, 4)),
    ("norm-nuc", lambda a: LA.norm(a, "nuc"), separated(3, 3)),
]


@pytest.mark.parametrize("name, f, a", FLOAT32_CASES, ids=[c[0] for c in FLOAT32_CASES])
def test_float32_in_gives_float32_out_and_gradients(name, f, a):
    x32 = Tensor(a.astype(np.float32), autograd=True)
    out = f(x32)
    assert out.dtype == np.float32
    fnp.sum(out * np.float32(0.5)).backward()
    assert x32.grad.dtype == np.float32
    g64 = fg.grad(lambda m: fnp.sum(f(m) * 0.5))(a.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(x32.grad.data, g64, rtol=2e-3, atol=2e-4 * np.abs(g64).max())


def test_stacked_matrices_equal_one_matrix_at_a_time():
    a = spd(3, 4, 4)
    b = np.random.default_rng(0).standard_normal((3, 4, 2))

    def loss(m, y):
        return fnp.sum(LA.solve(LA.cholesky(m), y) ** 2) + fnp.sum(LA.slogdet(m)[1])

    ga, gb = fg.grad(loss, argnums=(0, 1))(a, b)
    for i in range(3):
        ga_i, gb_i = fg.grad(loss, argnums=(0, 1))(a[i], b[i])
        np.testing.assert_allclose(ga[i], ga_i, rtol=1e-10)
        np.testing.assert_allclose(gb[i], gb_i, rtol=1e-10)


@pytest.mark.parametrize("name, args", [
    ("inv", lambda: (well(3, 3),)), ("det", lambda: (well(3, 3),)),
    ("slogdet", lambda: (well(3, 3),)), ("solve", lambda: (well(3, 3), np.ones(3))),
    ("cholesky", lambda: (spd(3, 3),)), ("eigh", lambda: (sym(3, 3),)),
    ("svd", lambda: (separated(3, 3),)), ("pinv", lambda: (well(3, 2),)),
    ("qr", lambda: (well(3, 2),)), ("norm", lambda: (well(3, 2),)),
    ("matrix_power", lambda: (well(3, 3), 2)), ("eigvalsh", lambda: (sym(3, 3),)),
    ("multi_dot", lambda: ([well(2, 3), well(3, 3)],)),
])
def test_numpy_functions_on_tensors_dispatch_here(name, args):
    args = args()

    def through(module):
        def f(x):
            full = list(args)
            if isinstance(full[0], list):
                full[0] = [x] + full[0][1:]
            else:
                full[0] = x
            out = getattr(module, name)(*full)
            return sum(fnp.sum(o * o) for o in _leaves(out) if np.result_type(_data(o)).kind == "f")
        return f

    x = args[0][0] if isinstance(args[0], list) else args[0]
    t = Tensor(x, autograd=True)
    out = getattr(np.linalg, name)(*([[t] + args[0][1:]] if isinstance(args[0], list)
                                     else [t] + list(args[1:])))
    assert all(isinstance(o, Tensor) for o in _leaves(out))
    np.testing.assert_allclose(fg.grad(through(np.linalg))(x), fg.grad(through(LA))(x),
                               rtol=1e-12)


def test_eigvals_differentiates_and_integer_results_run_on_the_data():
    t = Tensor(well(3, 3), autograd=True)
    w = np.linalg.eigvals(t)  # complex in general: fungrad's eig op
    assert isinstance(w, Tensor)
    np.testing.assert_allclose(w.data, np.linalg.eigvals(t.data))
    check_grads(lambda a: fnp.abs(LA.eigvals(a)), well(3, 3))
    assert int(np.linalg.matrix_rank(t)) == 3  # an integer: no gradient to drop
    assert LA.LinAlgError is np.linalg.LinAlgError


# -- cross-check against HIPS autograd (where installed) ------------------------------------------

def _autograd():
    return pytest.importorskip("autograd")


def test_gradients_agree_with_hips_autograd():
    ag = _autograd()
    anp = pytest.importorskip("autograd.numpy")
    x = np.random.default_rng(3).standard_normal((3, 3))
    b = np.arange(3.0)
    pairs = [  # the same function written for each library
        (lambda m, L: L.slogdet(m @ m.T + np.eye(3))[1], None),
        (lambda m, L: L.det(m + 3 * np.eye(3)), None),
        (lambda m, L: L.inv(m + 3 * np.eye(3))[0, 1], None),
        (lambda m, L: L.solve(m + 3 * np.eye(3), b)[2], None),
        (lambda m, L: L.cholesky(m @ m.T + np.eye(3))[2, 1], None),
        (lambda m, L: L.eigh(m + m.T)[0][1] + (L.eigh(m + m.T)[1][0, 2] ** 2), None),
        (lambda m, L: L.svd(m, full_matrices=False)[1][0]
         + L.svd(m, full_matrices=False)[0][1, 1] ** 2, None),
        (lambda m, L: L.pinv(m[:, :2])[1, 2], None),
        (lambda m, L: L.norm(m, "nuc"), None),
        (lambda m, L: L.norm(m[0]) + L.norm(m[1], 3), None),
    ]
    for f, _ in pairs:
        ours = fg.grad(lambda m, f=f: f(m, LA))(x)
        theirs = ag.grad(lambda m, f=f: f(m, anp.linalg))(x)
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)


# -- errors ---------------------------------------------------------------------------------------

SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])


@pytest.mark.parametrize("call, op", [
    (lambda: LA.inv(SINGULAR), "inv"),
    (lambda: np.linalg.inv(Tensor(SINGULAR, autograd=True)), "inv"),
    (lambda: LA.solve(SINGULAR, np.ones(2)), "solve"),
    (lambda: LA.cholesky(-np.eye(2)), "cholesky"),
    (lambda: LA.matrix_power(SINGULAR, -1), "inv"),
    (lambda: fg.grad(LA.det)(SINGULAR), "det: backward"),
    (lambda: fg.grad(lambda m: LA.slogdet(m)[1])(SINGULAR), "slogdet: backward"),
    (lambda: fg.grad(lambda m: fnp.sum(LA.pinv(m)))(SINGULAR), "pinv: backward"),
    (lambda: fg.grad(lambda m: fnp.sum(LA.lstsq(m, np.ones(2))[0]))(SINGULAR), "pinv: backward"),
])
def test_singular_input_raises_linalg_error_naming_the_op(call, op):
    with pytest.raises(LinAlgError, match=op) as info:
        call()
    assert isinstance(info.value, np.linalg.LinAlgError)  # code catching NumPy's still works


@pytest.mark.parametrize("call, error, text", [
    (lambda: LA.inv(np.ones((2, 3))), ShapeError, r"inv: a must be square .* \(2, 3\)"),
    (lambda: LA.det(np.ones(3)), ShapeError, r"det: a must be a matrix .* \(3,\)"),
    (lambda: LA.solve(np.eye(3), np.ones(2)), ShapeError, r"solve: b must have shape \(3,\)"),
    (lambda: LA.solve(np.ones((2, 3, 3)), np.ones((4, 3, 1))), ShapeError, "do not broadcast"),
    (lambda: LA.inv(np.array([["a", "b"], ["c", "d"]])), DTypeError, "inv: a must hold numbers"),
    (lambda: LA.eigh(np.eye(2), UPLO="X"), ShapeError, "UPLO"),
    (lambda: LA.norm(np.ones((2, 2)), "bad"), ShapeError, "invalid norm order 'bad'"),
    (lambda: LA.norm(np.ones((2, 2, 2)), 1), ShapeError, "1-D or 2-D"),
    (lambda: LA.matrix_power(np.eye(2), 1.5), DTypeError, "integer"),
    (lambda: LA.multi_dot([np.eye(2)]), ShapeError, "at least two"),
    (lambda: LA.qr(Tensor(np.ones((3, 2)), autograd=True), mode="complete"), ShapeError,
     "mode='complete'"),
    (lambda: LA.lstsq(np.ones((2, 2, 2)), np.ones(2)), LinAlgError, "lstsq: a must be 2-D"),
])
def test_bad_input_errors_name_the_op_and_what_was_expected(call, error, text):
    with pytest.raises(error, match=text):
        call()


def test_numpy_only_modes_still_run_on_values_without_gradient():
    a = well(4, 2)
    q = LA.qr(a, mode="complete").Q
    np.testing.assert_allclose(q, np.linalg.qr(a, mode="complete").Q)
    raw = LA.qr(Tensor(a), mode="raw")
    assert all(isinstance(x, Tensor) for x in raw)


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "solve", "cholesky", "eigh", "svd",
                                  "pinv", "qr", "l2norm"])
def test_each_op_documents_itself_with_a_working_example(name):
    op = fg.ops()[name]
    assert ">>>" in op.__doc__ and name in repr(op)
    test = doctest.DocTestParser().get_doctest(op.__doc__, {}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


@pytest.mark.parametrize("name, args, kwargs", [
    ("trace", (np.arange(18.0).reshape(2, 3, 3),), {"offset": 1}),
    ("diagonal", (np.arange(18.0).reshape(2, 3, 3),), {}),
    ("outer", (np.arange(3.0), np.arange(2.0) + 1), {}),
    ("cross", (np.arange(6.0).reshape(2, 3), np.ones(3)), {}),
    ("tensordot", (np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(3, 2)), {"axes": 1}),
])
def test_array_api_spellings_delegate_to_fungrad_numpy(name, args, kwargs):
    """numpy.linalg's spellings of trace, diagonal, outer, cross and tensordot run
    fungrad.numpy's functions: NumPy's values, and a gradient either right or refused."""
    np.testing.assert_allclose(getattr(LA, name)(*args, **kwargs),
                               getattr(np.linalg, name)(*args, **kwargs))

    def f(x):
        return fnp.sum(getattr(LA, name)(x, *args[1:], **kwargs) ** 2)

    try:
        fg.grad(f)(args[0])
    except TypeError as e:  # fungrad.numpy has no differentiable version yet: refused, loudly
        assert "no differentiable fungrad implementation" in str(e)
    else:
        check_grads(f, args[0])
