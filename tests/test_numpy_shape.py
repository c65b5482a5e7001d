"""fungrad.numpy's shape functions (issue 9 item 4, "shape"): NumPy's values for many argument
forms, NumPy's own functions dispatching to them for Tensors, gradients of compositions, and
the issue-11 reproducers of the ops underneath (item 16)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad import Tensor
from fungrad.errors import DTypeError, IndexRangeError, ShapeError
from fungrad.testing import check_grads
from numpy_cases import case_id, check_dispatch, check_forward, check_gradient

R = np.random.default_rng(7)
X = R.standard_normal((2, 3, 4))
M = R.standard_normal((3, 4))
V = R.standard_normal(5)
S = np.array(1.5)

CASES = [
    ("ravel", (X,), {}), ("ravel", (X,), {"order": "F"}),
    ("ravel", (X.transpose(2, 0, 1),), {"order": "K"}), ("ravel", (np.asfortranarray(M),),
                                                          {"order": "A"}),
    ("swapaxes", (X, 0, 2), {}), ("swapaxes", (M, -1, 0), {}),
    ("moveaxis", (X, 0, -1), {}), ("moveaxis", (X, [0, 1], [-1, 0]), {}),
    ("rollaxis", (X, 2), {}), ("rollaxis", (X, 0, 3), {}), ("rollaxis", (X, 1, -1), {}),
    ("atleast_1d", (S,), {}), ("atleast_1d", (M,), {}), ("atleast_2d", (V,), {}),
    ("atleast_2d", (S,), {}), ("atleast_3d", (V,), {}), ("atleast_3d", (M,), {}),
    ("atleast_3d", (S,), {}), ("atleast_2d", (V, M), {}),
    ("repeat", (M, 2), {"axis": 1}), ("repeat", (M, [1, 0, 2]), {"axis": 0}),
    ("repeat", (X, 2), {}), ("repeat", (S, 3), {}), ("repeat", (M, [2]), {"axis": -1}),
    ("tile", (V, 2), {}), ("tile", (M, (2, 1, 2)), {}), ("tile", (X, (2, 1)), {}),
    ("tile", (S, (2, 2)), {}),
    ("flip", (X,), {}), ("flip", (X, (0, 2)), {}), ("flip", (M, -1), {}),
    ("fliplr", (X,), {}), ("flipud", (V,), {}),
    ("rot90", (M,), {}), ("rot90", (X, 2, (1, 2)), {}), ("rot90", (X, 3, (2, 0)), {}),
    ("rot90", (M, -1), {}), ("rot90", (M, 4), {}),
    ("roll", (X, 3), {}), ("roll", (X, (1, -2), (0, 2)), {}), ("roll", (X, 2, (0, 1)), {}),
    ("roll", (M, -5, 1), {}),
    ("pad", (M, 1), {}), ("pad", (M, ((1, 2), (0, 1))), {"constant_values": ((1, 2), (3, 4))}),
    ("pad", (X, ((0, 1), (2, 0), (1, 1))), {"mode": "reflect"}),
    ("pad", (M, (3, 5)), {"mode": "edge"}), ("pad", (V, (6, 7)), {"mode": "reflect"}),
    ("pad", (M, (4, 6)), {"mode": "symmetric"}), ("pad", (M, ((7, 1), (0, 9))), {"mode": "wrap"}),
    ("take", (M, [[0, 2], [1, 1]]), {"axis": 1}), ("take", (X, [5, -1, 7]), {}),
    ("take", (X, 1), {"axis": 0}), ("take", (M, [4, -7]), {"axis": 1, "mode": "wrap"}),
    ("take", (M, [9, -7]), {"axis": 0, "mode": "clip"}),
    ("take_along_axis", (X, np.argsort(X, axis=1)), {"axis": 1}),
    ("take_along_axis", (M, np.argmax(M, axis=0)[None]), {"axis": 0}),
    ("take_along_axis", (X, np.argsort(X, axis=None)[:5]), {"axis": None}),
    ("sort", (X,), {}), ("sort", (X, 0), {}), ("sort", (X, None), {}),
    ("sort", (M,), {"kind": "stable"}),
    ("partition", (V, 2), {}), ("partition", (M, [0, 2], 0), {}),
    ("tril", (X,), {}), ("triu", (M, 1), {}), ("tril", (M, -1), {}), ("triu", (V,), {}),
    ("diag", (M,), {}), ("diag", (M, 1), {}), ("diag", (V, -2), {}), ("diag", (V,), {}),
    ("diagflat", (M[:2, :2], 1), {}), ("diagonal", (X, 1, 2, 0), {}), ("diagonal", (M,), {}),
    ("trace", (M,), {}), ("trace", (X, -1, 2, 1), {}), ("trace", (M, 2), {}),
    ("hstack", ([M, M[:, :1]],), {}), ("hstack", ([V, V[:2]],), {}),
    ("vstack", ([M[0], M],), {}), ("dstack", ([M, M],), {}), ("dstack", ([V, V],), {}),
    ("column_stack", ([M[:, 0], M],), {}), ("row_stack", ([V, V],), {}),
    ("append", (M, V), {}), ("append", (M, M[:1]), {"axis": 0}),
    ("concatenate", ([M, V],), {"axis": None}), ("stack", ([V, V],), {"axis": 1}),
    ("broadcast_to", (V, (2, 5)), {}), ("reshape", (X, (4, 6)), {"order": "F"}),
    ("reshape", (X, (-1, 2)), {}), ("transpose", (X, (2, 0, 1)), {}),
]

SPLITS = [
    ("split", (X, [1, 3]), {"axis": 2}), ("split", (X, 2), {}), ("split", (V, [2]), {}),
    ("array_split", (X, 3), {"axis": 2}), ("array_split", (V, 3), {}),
    ("array_split", (X, [3, 1]), {"axis": 2}), ("split", (M, [-1]), {"axis": 1}),
    ("split", (M, [0, 0, 9]), {"axis": 1}),
    ("hsplit", (X, [1]), {}), ("hsplit", (V, [2, 4]), {}), ("vsplit", (M, [1, 1, 5]), {}),
    ("dsplit", (X, [-2]), {}), ("broadcast_arrays", (V, M[:, :1]), {}),
]


@pytest.mark.parametrize("case", CASES + SPLITS, ids=case_id)
def test_forward_matches_numpy(case):
    check_forward(*case)


@pytest.mark.parametrize("case", CASES + SPLITS, ids=case_id)
def test_numpy_dispatches_on_tensors(case):
    check_dispatch(*case)


LAYOUT_DEPENDENT = ("K", "A")  # ravel's order follows the input's memory layout


@pytest.mark.parametrize("case", [c for c in CASES + SPLITS
                                  if c[2].get("order") not in LAYOUT_DEPENDENT], ids=case_id)
def test_gradient_matches_finite_differences(case):
    check_gradient(*case)


SECOND_ORDER = ["repeat", "tile", "rot90", "pad", "take", "take_along_axis", "sort", "trace",
                "split", "hstack"]


@pytest.mark.parametrize("case", [c for c in CASES + SPLITS if c[0] in SECOND_ORDER][::2],
                         ids=case_id)
def test_second_order(case):
    check_gradient(*case, order=2)


def test_float32_stays_float32():
    x = M.astype(np.float32)
    for f in (lambda t: fnp.tile(t, 2), lambda t: fnp.pad(t, 1, mode="reflect"),
              lambda t: fnp.sort(t), lambda t: fnp.tril(t), lambda t: fnp.trace(t),
              lambda t: fnp.repeat(t, [1, 2, 0], axis=0), lambda t: fnp.select([t > 0], [t]),
              lambda t: fnp.r_[t[0], 1.0], lambda t: fnp.diag(t[0])):
        leaf = Tensor(x, autograd=True)
        y = f(leaf)
        assert y.dtype == np.float32
        fg.sum(y * y).backward()
        assert leaf.grad.dtype == np.float32


def test_integer_inputs_keep_numpy_dtypes():
    m = np.arange(12).reshape(3, 4)
    for name, args in [("tril", (m,)), ("trace", (m,)), ("sort", (m,)), ("tile", (m, 2)),
                       ("pad", (m, 1)), ("diag", (m,)), ("roll", (m, 1))]:
        check_forward(name, args, {})


def test_select_matches_numpy_and_picks_the_first_true_condition():
    x = np.array([-2.0, -0.5, 0.5, 3.0])
    conds = [x < 0, x < 1]
    check_forward("select", (conds, [x * 2, x * 3]), {"default": 7.0})
    check_forward("select", (conds, [x, 1.0]), {})
    check_grads(lambda t: fnp.select([x < 0, x < 1], [t * 2, t ** 2], default=t), x)
    with pytest.raises(ShapeError, match="select: 2 conditions but 1 choices"):
        fnp.select(conds, [x])
    with pytest.raises(DTypeError, match="condition 0 has dtype float64"):
        fnp.select([x], [x])


def test_sort_gradient_goes_through_the_permutation():
    x = np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])
    w = np.arange(6.0).reshape(2, 3)
    g = fg.grad(lambda t: fnp.sum(fnp.sort(t, axis=1) * w))(x)
    np.testing.assert_array_equal(g, np.take_along_axis(w, np.argsort(np.argsort(x, 1), 1), 1))
    check_grads(lambda t: fnp.partition(t, 1, axis=None), x, order=2)


def test_split_is_one_node_and_backward_joins_the_pieces_once():
    leaf = Tensor(np.arange(12.0).reshape(6, 2), autograd=True)
    pieces = fnp.split(leaf, 6)
    assert {id(p.creators[0]) for p in pieces} == {id(leaf)}  # one node for all six
    assert all(p.creation_op == "split" for p in pieces)
    (pieces[1].sum() + 2 * pieces[4].sum()).backward()  # four pieces get no cotangent
    want = np.zeros((6, 2))
    want[1], want[4] = 1.0, 2.0
    np.testing.assert_array_equal(leaf.grad.data, want)


def test_split_of_unsorted_points_slices_each_piece():
    x = np.arange(5.0)
    pieces = fnp.split(Tensor(x, autograd=True), [3, 1])
    assert [p.creation_op for p in pieces] == ["getitem"] * 3
    check_grads(lambda t: tuple(fnp.split(t, [3, 1])), x)


def test_split_errors_name_the_function():
    with pytest.raises(ShapeError, match="split: axis 0 of length 5 does not divide into 2"):
        fnp.split(np.zeros(5), 2)
    with pytest.raises(ShapeError, match="vsplit: needs an array of at least 2 dimensions"):
        fnp.vsplit(np.zeros(4), 2)
    with pytest.raises(ShapeError, match="split: the number of sections must be positive"):
        fnp.array_split(np.zeros(4), 0)
    with pytest.raises(ShapeError, match=r"split: indices \(3, 1\) must be non-decreasing"):
        fg.primitives.split(np.zeros(4), indices=(3, 1))


def test_errors_name_the_function_and_what_was_expected():
    with pytest.raises(IndexRangeError, match="take: index 5 is out of range for axis 0 of "
                                              "length 3"):
        fnp.take(M, [5], axis=0)
    with pytest.raises(DTypeError, match="take: indices must be integers, got dtype float64"):
        fnp.take(M, [0.5])
    with pytest.raises(ShapeError, match="fliplr: needs an array of at least 2 dimensions"):
        fnp.fliplr(V)
    with pytest.raises(ShapeError, match="pad: mode 'median' is not supported"):
        fnp.pad(V, 1, mode="median")
    with pytest.raises(ShapeError, match="pad: cannot pad the empty axis 0"):
        fnp.pad(np.zeros(0), 1, mode="edge")
    with pytest.raises(DTypeError, match="pad: constant_values are constants"):
        fnp.pad(V, 1, constant_values=Tensor(1.0, autograd=True))
    with pytest.raises(ShapeError, match="moveaxis: source 0 and destination"):
        fnp.moveaxis(M, 0, (0, 1))
    with pytest.raises(ShapeError, match="rollaxis: start 5 is out of range"):
        fnp.rollaxis(M, 0, 5)
    with pytest.raises(ShapeError, match="diag: input must be 1-D or 2-D"):
        fnp.diag(X)
    with pytest.raises(ShapeError, match="take_along_axis: indices of shape"):
        fnp.take_along_axis(M, np.zeros(3, dtype=int), axis=0)
    with pytest.raises(DTypeError, match="repeat: repeats must be non-negative integers"):
        fnp.repeat(V, -1)
    with pytest.raises(ShapeError, match="hstack: needs at least one array"):
        fnp.hstack([])
    with pytest.raises(DTypeError, match="out= is not supported"):
        fnp.take(M, [0], out=np.zeros(1))


def test_r_and_c_keep_tensors_differentiable():
    a, b = np.array([1.0, 2.0]), np.array([[3.0], [4.0]])
    got = fnp.r_[Tensor(a), 3, 4:6]
    np.testing.assert_array_equal(got.data, np.r_[a, 3, 4:6])
    got = fnp.c_[Tensor(a), b]
    np.testing.assert_array_equal(got.data, np.c_[a, b])
    for directive in ("0,2,1", "1,2,0", "-1,2,-1", "0,3"):
        got = fnp.r_[directive, Tensor(a), np.ones((1, 2)) if directive != "1,2,0" else
                     np.ones((2, 2))]
        want = np.r_[directive, a, np.ones((1, 2)) if directive != "1,2,0" else np.ones((2, 2))]
        np.testing.assert_array_equal(got.data, want)
    np.testing.assert_array_equal(fnp.r_[1:3, a], np.r_[1:3, a])  # no Tensor: NumPy's own
    np.testing.assert_array_equal(fnp.r_[Tensor(a), 0:1:3j].data, np.r_[a, 0:1:3j])
    check_grads(lambda t: fnp.r_[t, 1.0, t[::-1]], a, order=2)
    check_grads(lambda t: fnp.c_[t, t * b[:, 0]], a)
    with pytest.raises(ShapeError, match="matrix directives"):
        fnp.r_["r", Tensor(a)]


def test_array_and_asarray_of_lists_of_tensors():
    x = np.array([2.0, 3.0])
    f = lambda t: fnp.sum(fnp.array([[t[0] * t[1], t[1]], [1.0, t[0]]]) ** 2)  # noqa: E731
    check_grads(f, x, order=2)
    check_grads(lambda t: fnp.asarray([t, 2 * t]), x)
    t = Tensor(x, autograd=True)
    y = fnp.array([t, t], dtype=np.float32)
    assert y.dtype == np.float32 and y.shape == (2, 2)
    assert fnp.array(t, ndmin=3).shape == (1, 1, 2)
    assert fnp.asarray(t) is t


def test_untracked_tensors_and_ndarrays():
    out = fnp.tile(Tensor(V), 2)
    assert isinstance(out, Tensor) and not out.requires_grad
    assert isinstance(fnp.sort(V), np.ndarray)
    assert isinstance(np.flip(Tensor(V)), Tensor)


def test_compositions_differentiate():
    x = R.standard_normal((4, 3))

    def f(t):  # a NumPy program of shape functions
        y = fnp.concatenate([fnp.flipud(t), fnp.roll(t, 1, axis=0)], axis=1)
        y = fnp.pad(y, ((1, 0), (0, 2)), mode="wrap") * fnp.tile(fnp.arange(8.0), (5, 1))
        z = fnp.triu(fnp.swapaxes(fnp.atleast_3d(y), 0, 2)[0])
        top = fnp.sort(z, axis=0)[-1]
        return fnp.sum(top * top) + fnp.trace(fnp.diag(fnp.ravel(t)[:3]))

    check_grads(f, x, order=2)


# -- issue 11 item 16: whatever forward accepts, backward handles ------------------------------


def test_concatenate_axis_none_backward():
    a, b = np.arange(4.0).reshape(2, 2), np.array([5.0, 6.0, 7.0])
    check_grads(lambda x, y: fg.concatenate([x, y], axis=None), a, b, order=2)
    leaf = Tensor(a, autograd=True)
    (fg.concatenate([leaf, b], axis=None) ** 2).sum().backward()
    np.testing.assert_array_equal(leaf.grad.data, 2 * a)


@pytest.mark.parametrize("index", [np.array([], dtype=float), [], np.zeros((0, 2))])
def test_index_select_with_an_empty_float_index(index):
    leaf = Tensor(np.ones((3, 2)), autograd=True)
    y = leaf.index_select(index)
    assert y.shape == np.shape(index) + (2,)
    y.sum().backward()
    np.testing.assert_array_equal(leaf.grad.data, np.zeros((3, 2)))
    check_grads(lambda t: fg.index_select(t, index), np.ones((3, 2)), order=2)


@pytest.mark.parametrize("product", [
    lambda t: fg.matmul(t, [[1.0], [2.0]]), lambda t: fg.matmul([[1.0, 2.0]], t),
    lambda t: t.mm([[1.0], [2.0]]), lambda t: fg.mm([[1.0, 2.0]], t),
    lambda t: t @ [[1.0], [2.0]], lambda t: [[1.0, 2.0]] @ t,
])
def test_matmul_with_a_list_operand_backward(product):
    leaf = Tensor(np.arange(4.0).reshape(2, 2), autograd=True)
    product(leaf).sum().backward()
    assert leaf.grad.shape == (2, 2)
    check_grads(lambda x: product(x if isinstance(x, Tensor) else Tensor(x)),
                np.arange(4.0).reshape(2, 2), order=2)


# -- every example in the docstrings runs ---------------------------------------------------------

MY_OPS = ["reshape", "transpose", "squeeze", "expand_dims", "expand", "broadcast_to", "sum_to",
          "concatenate", "stack", "split", "getitem", "scatter_index", "index_select",
          "scatter_add", "roll", "pad", "diagonal", "diag_embed", "einsum"]


@pytest.mark.parametrize("name", MY_OPS)
def test_op_docstring_example_runs(name):
    op = fg.ops()[name]
    test = doctest.DocTestParser().get_doctest(op.doc, {}, name, None, 0)
    assert test.examples, f"op '{name}' has no example in its docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0


@pytest.mark.parametrize("module", ["fungrad.numpy._shape", "fungrad.numpy._joining",
                                    "fungrad.numpy._rearrange", "fungrad.numpy._selection",
                                    "fungrad.numpy._products", "fungrad.primitives.manipulation",
                                    "fungrad.primitives.products"])
def test_module_docstring_examples_run(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("shape, fill, dtype", [
    ((2, 3), 1.5, None), (4, np.array([1.0, -2.0, 0.5, 3.0]), None),
    ((3, 2), np.array([0.25, -1.0]), np.float32), ((), 2.0, None), ((2, 0), 1.0, None)])
def test_full_matches_numpy_and_differentiates_in_the_fill_value(shape, fill, dtype):
    # autograd's define_gradient example: np.full(shape, g) with g a Tensor under fg.grad
    # (fnp.full handed the Tensor to NumPy, a ConversionError)
    expect = np.full(shape, fill, dtype=dtype)
    got = fnp.full(shape, Tensor(fill), dtype=dtype)
    assert isinstance(got, Tensor) and got.dtype == expect.dtype
    np.testing.assert_array_equal(got.data, expect)
    np.testing.assert_array_equal(fnp.full(shape, fill, dtype=dtype), expect)
    if dtype is None:
        check_grads(lambda c: fnp.full(shape, c) ** 2, np.asarray(fill), order=2)
    w = R.standard_normal(np.shape(expect))
    g = fg.grad(lambda c: fnp.sum(fnp.full(shape, c) * w))(np.asarray(fill, float))
    np.testing.assert_allclose(g, w.reshape((-1,) + np.shape(fill)).sum(axis=0))  # the copies


@pytest.mark.parametrize("like", [np.zeros((2, 3)), np.zeros(4, dtype=np.float32),
                                  [1.0, 2.0], Tensor(np.ones((3, 1)))])
def test_full_like_matches_numpy_and_differentiates_in_the_fill_value(like):
    expect = np.full_like(np.asarray(getattr(like, "data", like)), 0.75)
    for fill in (0.75, Tensor(0.75)):
        got = fnp.full_like(like, fill)
        np.testing.assert_array_equal(getattr(got, "data", got), expect)
        assert getattr(got, "dtype", None) == expect.dtype
    assert isinstance(np.full_like(Tensor(np.ones(2)), 1.0), np.ndarray)  # NumPy's dispatch
    g = fg.grad(lambda c: fnp.sum(fnp.full_like(like, c) * 2.0))(0.75)
    np.testing.assert_allclose(g, 2.0 * expect.size)
    check_grads(lambda c: fnp.full_like(like, c, dtype=np.float64) * c, np.array(0.3), order=2)


def test_full_and_full_like_batch_and_trace():
    c = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(fg.vmap(lambda x: fnp.full((2,), x))(c),
                                  np.repeat(c[:, None], 2, axis=1))
    np.testing.assert_array_equal(fg.vmap(lambda x: fnp.full_like(x, 2.0) * x)(np.ones((3, 2))),
                                  np.full((3, 2), 2.0))
    np.testing.assert_allclose(fg.jit(fg.grad(lambda x: fnp.sum(fnp.full((3,), x) ** 2)))(2.0),
                               12.0)
