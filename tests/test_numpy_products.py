"""fungrad.numpy's products (issue 9 item 4, "products"): dot, vdot, inner, outer, tensordot
(every axes form), einsum (repeated indices, ellipses, implicit output, sublists, optimize=),
kron, cross and matmul, against NumPy's values, through NumPy's protocols, and their
gradients to second order."""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad import Tensor
from fungrad.errors import DTypeError, ShapeError
from fungrad.testing import check_grads
from numpy_cases import case_id, check_dispatch, check_forward, check_gradient

R = np.random.default_rng(11)
A = R.standard_normal((2, 3, 4))
B = R.standard_normal((4, 3))
C = R.standard_normal((3, 4, 2))
V3, W3, V4 = R.standard_normal(3), R.standard_normal(3), R.standard_normal(4)
S = np.array(-0.7)

PRODUCTS = [
    ("dot", (S, A), {}), ("dot", (V4, V4), {}), ("dot", (B, V3), {}), ("dot", (V4, B), {}),
    ("dot", (B, B.T), {}), ("dot", (A, B), {}), ("dot", (A, C), {}), ("dot", (V3, A), {}),
    ("dot", (A, V4), {}), ("dot", (2.0, V3), {}),
    ("vdot", (B, B), {}), ("vdot", (V4, V4), {}), ("vdot", (A, C.transpose(2, 0, 1)), {}),
    ("inner", (V4, V4), {}), ("inner", (B.T, V4), {}), ("inner", (A, B.T), {}),
    ("inner", (S, B), {}), ("inner", (A, A), {}),
    ("outer", (V3, V4), {}), ("outer", (B, V3), {}), ("outer", (S, V3), {}),
    ("tensordot", (A, C), {"axes": ([1, 2], [0, 1])}), ("tensordot", (A, B), {"axes": 1}),
    ("tensordot", (B, B), {}), ("tensordot", (V3, V4), {"axes": 0}),
    ("tensordot", (A, C), {"axes": (1, 0)}), ("tensordot", (A, A), {"axes": 3}),
    ("tensordot", (A, C), {"axes": ([-2], [-3])}), ("tensordot", (B, C), {"axes": [[0], [1]]}),
    ("tensordot", (S, S), {"axes": 0}),
    ("kron", (B, V3), {}), ("kron", (V3, B), {}), ("kron", (B, B[:2, :2]), {}),
    ("kron", (S, V3), {}), ("kron", (A, B), {}),
    ("cross", (V3, W3), {}), ("cross", (B[:, :3], V3), {}), ("cross", (V3[:2], W3), {}),
    ("cross", (V3, W3[:2]), {}), ("cross", (B[:, :2], W3[:2]), {}),
    ("cross", (B.T, R.standard_normal((3, 4))), {"axis": 0}),
    ("cross", (B[:3], R.standard_normal((3, 3))), {"axisa": 0, "axisb": 1, "axisc": 0}),
    ("cross", (A[..., :3], W3), {"axisc": 1}),
    ("matmul", (A, B), {}), ("matmul", (V4, B), {}), ("matmul", (B.T, V4), {}),
]

EINSUMS = [
    ("ij,jk->ik", B, C[:, :, 0]), ("ij,jk", B, C[:, :, 0]), ("ii->i", B[:3, :3]),
    ("ii", B[:3, :3]), ("iji->j", R.standard_normal((3, 2, 3))),
    ("ij->", B), ("ij->j", B), ("i,j->ij", V3, V4), ("i,i", V4, V4), ("ij,ij->ij", B, B),
    ("...j,j", A, V4), ("...j,...j->...", R.standard_normal((2, 1, 3)), B[:, :3]),
    ("...ii->...i", R.standard_normal((2, 3, 3))), ("ijk,jil->kl", A, R.standard_normal((3, 2, 5))),
    ("ii,i->i", B[:3, :3], V3), ("ij,k->i", B, V3), ("bA", B), ("aB,Ca", B.T, C[:, :, 1].T),
    ("ij,ij->i", B[:, :1], B), ("abc->cb", A), ("i...,i...->...", B, B),
    ("ab,bc,cd->ad", B, C[:, :, 0], R.standard_normal((4, 5))),
]


@pytest.mark.parametrize("case", PRODUCTS, ids=case_id)
def test_forward_matches_numpy(case):
    check_forward(*case)


@pytest.mark.parametrize("case", PRODUCTS, ids=case_id)
def test_numpy_dispatches_on_tensors(case):
    check_dispatch(*case)


@pytest.mark.parametrize("case", PRODUCTS, ids=case_id)
def test_gradient_matches_finite_differences(case):
    check_gradient(*case)


@pytest.mark.parametrize("case", PRODUCTS[::3], ids=case_id)
def test_second_order(case):
    check_gradient(*case, order=2)


def _einsum_case(spec):
    return ("einsum", spec, {})


@pytest.mark.parametrize("spec", EINSUMS, ids=lambda s: s[0])
def test_einsum_matches_numpy_and_differentiates(spec):
    check_forward(*_einsum_case(spec))
    check_dispatch(*_einsum_case(spec))
    check_gradient(*_einsum_case(spec), order=2)


@pytest.mark.parametrize("optimize", [True, "greedy", "optimal", False])
def test_einsum_optimize_is_accepted(optimize):
    d = R.standard_normal((4, 5))
    spec = ("ab,bc,cd->ad", B, C[:, :, 0], d)
    check_forward("einsum", spec, {"optimize": optimize})
    check_gradient("einsum", spec, {"optimize": optimize})


def test_einsum_with_an_explicit_path():
    d = R.standard_normal((4, 5))
    path, _ = np.einsum_path("ab,bc,cd->ad", B, C[:, :, 0], d, optimize="optimal")
    check_forward("einsum", ("ab,bc,cd->ad", B, C[:, :, 0], d), {"optimize": path})
    check_gradient("einsum", ("ab,bc,cd->ad", B, C[:, :, 0], d), {"optimize": path})


@pytest.mark.parametrize("sublists", [
    (B, [0, 1], C[:, :, 0], [1, 2], [0, 2]), (B, [1, 0]), (A, [Ellipsis, 0], V4, [0]),
    (B, [0, 1], B, [0, 1]),
], ids=["matmul", "implicit", "ellipsis", "full"])
def test_einsum_sublist_form(sublists):
    check_forward("einsum", sublists, {})
    check_gradient("einsum", sublists, {})


def test_einsum_dtype_and_float32():
    x = B.astype(np.float32)
    check_forward("einsum", ("ij,kj->ik", x, x), {"dtype": np.float64})
    for spec in ("ii->i", "ij->", "ij,kj->ik", "ii"):
        leaf = Tensor(x[:3, :3] if "ii" in spec else x, autograd=True)
        y = fnp.einsum(spec, *([leaf] * spec.split("->")[0].count(",")), leaf)
        assert y.dtype == np.float32
        fg.sum(y * y).backward()
        assert leaf.grad.dtype == np.float32
    for f in (lambda t: fnp.cross(t[:, :3], t[0, :3]), lambda t: fnp.tensordot(t, t, 2),
              lambda t: fnp.kron(t, t[:1]), lambda t: fnp.dot(t, t.T)):
        leaf = Tensor(x, autograd=True)
        y = f(leaf)
        assert y.dtype == np.float32
        fg.sum(y * y).backward()
        assert leaf.grad.dtype == np.float32


def test_integer_products_keep_numpy_dtypes():
    m = np.arange(12).reshape(3, 4)
    for name, args in [("dot", (m, m.T)), ("tensordot", (m, m, 2)), ("kron", (m, m)),
                       ("cross", (m[:, :3], m[0, 1:])), ("outer", (m[0], m[1])),
                       ("einsum", ("ij,ij->i", m, m))]:
        check_forward(name, args, {})


def test_errors_name_the_function_and_what_was_expected():
    with pytest.raises(ShapeError, match=r"dot: shapes \(4, 3\) and \(4,\) are not aligned"):
        fnp.dot(B, V4)
    with pytest.raises(ShapeError, match=r"tensordot: shapes .* are not aligned: 3 \(axis 1"):
        fnp.tensordot(A, B, axes=([1], [0]))
    with pytest.raises(ShapeError, match="tensordot: 2 axes of a but 1 of b"):
        fnp.tensordot(A, C, axes=([0, 1], [0]))
    with pytest.raises(ShapeError, match="tensordot: axes=4 needs 0 <= axes <= 2"):
        fnp.tensordot(B, B, axes=4)
    with pytest.raises(ShapeError, match="cross: vectors must have 2 or 3 components, got 4"):
        fnp.cross(V4, V3)
    with pytest.raises(ShapeError, match="vdot: the inputs have 3 and 4 elements"):
        fnp.vdot(V3, V4)
    with pytest.raises(ShapeError, match="einsum"):
        fnp.einsum("ij,jk->ik", B, B)
    with pytest.raises(DTypeError, match="einsum: sublist labels must be Ellipsis or ints"):
        fnp.einsum(B, ["a", "b"])
    with pytest.raises(DTypeError, match="out= is not supported"):
        fnp.einsum("ii", B[:3, :3], out=np.zeros(()))


def test_a_program_of_products_differentiates():
    x, w = R.standard_normal((5, 3)), R.standard_normal((3, 3))

    def energy(p):  # forces, torques and a bilinear form, as a physics step writes them
        torque = fnp.cross(x, fnp.dot(x, p))
        gram = fnp.einsum("ni,nj->ij", torque, torque)
        return fnp.trace(fnp.tensordot(gram, p, axes=1)) + fnp.vdot(fnp.kron(p, p[:1]), fnp.kron(
            p[:1], p)) + fnp.inner(fnp.outer(p[0], p[1])[0], p[2])

    check_grads(energy, w, order=2)


def test_einsum_gradient_agrees_with_autograd():
    autograd_np = pytest.importorskip("autograd.numpy")
    autograd = pytest.importorskip("autograd")
    x, y = R.standard_normal((3, 3, 4)), R.standard_normal((4, 3))
    for spec in ("bik,kj->bj", "...k,kj->...j", "ijk,kl"):
        def f(lib, a, b, spec=spec):
            return lib.sum(lib.tanh(lib.einsum(spec, a, b)))
        ours = fg.grad(lambda a, b: f(fnp, a, b), argnums=(0, 1))(x, y)
        theirs = autograd.grad(lambda a, b: f(autograd_np, a, b), argnum=(0, 1))(x, y)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
