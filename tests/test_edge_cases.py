"""Edge-case inputs for every op, forward and backward, driven by the registry.

Memory layouts (Fortran, strided, reversed, transposed, read-only), 0-d arrays and Python
scalars, zero-size axes, size-1 broadcasting on every axis, float32 with Python numbers
(NEP 50: it stays float32), integer inputs to float ops, boolean masks, every layout and index
dtype reaching the Numba kernels — and the regressions the fuzzer (tests/test_fuzz.py) found.
Ops registered later with ``fg.defop`` are picked up by the registry-driven tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import (
    AnomalyError, DTypeError, FungradError, GraphError, IndexRangeError, ShapeError,
)
from layouts import LAYOUTS as ALL_LAYOUTS
from layouts import with_layout

LAYOUTS = tuple(kind for kind in ALL_LAYOUTS if kind != "C")


def leaf(a, kind: str = "C") -> Tensor:
    """A leaf requiring grad whose ``.data`` keeps the given layout (the constructor copies)."""
    t = Tensor(np.asarray(a), autograd=True)
    t.data = with_layout(a, kind)
    return t


def call(op, args, params):
    out = op(list(args), **params) if op.n_inputs is None else op(*args, **params)
    if op.n_outputs != 1:  # a multi-output op (split): its floating outputs raveled and joined
        out = fg.concatenate([fg.reshape(o, shape=(-1,)) for o in out
                              if np.asarray(getattr(o, "data", o)).dtype.kind in "fc"], axis=0)
    return out


def forward_backward(op, args, params, floats, seed=0):
    """Forward on leaves at the float positions, backward with a fixed random cotangent."""
    args = list(args)
    leaves = {}
    for i in floats:
        leaves[i] = leaf(args[i])
        leaves[i].data = args[i]  # keep the caller's layout
        args[i] = leaves[i]
    out = call(op, args, params)
    g = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(g.astype(out.dtype) if out.dtype.kind == "f" else g)
    return out, [leaves[i].grad for i in floats]


OP_CASES = [pytest.param(name, k, id=f"{name}-{k}")
            for name, op in sorted(fg.ops().items()) for k in range(len(op.domain.cases))]
ELEMENTWISE = sorted(name for name, op in fg.ops().items() if op.domain.kind == "elementwise")
BINARY = sorted(name for name in ELEMENTWISE if fg.ops()[name].n_inputs == 2
                and len(fg.ops()[name].domain.float_args(2)) == 2)
UNARY = sorted(name for name in ELEMENTWISE if fg.ops()[name].n_inputs == 1)


# -- layouts and dtypes, every op ------------------------------------------------------------

@pytest.mark.parametrize("name, k", OP_CASES)
def test_every_layout_and_float_dtype_gives_the_same_answer(name, k):
    op = fg.ops()[name]
    args, params = op.domain.draw(np.random.default_rng(k), op.domain.cases[k])
    floats = op.domain.float_args(len(args))
    ref, ref_grads = forward_backward(op, args, params, floats)
    for dtype in (np.float64, np.float32):
        f32 = dtype == np.float32
        for kind in ("C",) + LAYOUTS:
            moved = [with_layout(a.astype(dtype) if i in floats else a, kind)
                     for i, a in enumerate(args)]
            out, grads = forward_backward(op, moved, params, floats)
            where = f"{name} case {k}, {kind}, {dtype.__name__}"
            assert out.shape == ref.shape, where
            if f32 and ref.dtype == np.float64 and params.get("dtype") != "float64":
                assert out.dtype == np.float32, f"{where}: float32 in, {out.dtype} out"
            np.testing.assert_allclose(out.data, ref.data, rtol=1e-4 if f32 else 1e-12,
                                       atol=1e-5 if f32 else 1e-12, err_msg=where)
            for i, g, rg in zip(floats, grads, ref_grads):
                assert g.shape == np.shape(args[i]), where
                assert g.dtype == dtype, f"{where}: gradient {g.dtype}"
                np.testing.assert_allclose(g.data, rg.data, rtol=1e-3 if f32 else 1e-12,
                                           atol=1e-4 if f32 else 1e-12, err_msg=where)


@pytest.mark.parametrize("name, k", OP_CASES)
def test_inputs_are_not_written_to(name, k):
    """Read-only inputs everywhere: no op, forward or backward, writes into its inputs."""
    op = fg.ops()[name]
    args, params = op.domain.draw(np.random.default_rng(k), op.domain.cases[k])
    frozen = [with_layout(a, "readonly") for a in args]
    forward_backward(op, frozen, params, op.domain.float_args(len(args)))
    for a, b in zip(frozen, args):
        np.testing.assert_array_equal(a, b)


# -- 0-d, Python scalars, zero-size, broadcasting ----------------------------------------------

@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_d_arrays_and_python_scalars(name):
    op = fg.ops()[name]
    n = op.n_inputs
    args, params = op.domain.draw(np.random.default_rng(0), (((),) * n, {}))
    floats = op.domain.float_args(n)
    ref, ref_grads = forward_backward(op, args, params, floats)
    assert ref.shape == ()
    assert all(g.shape == () for g in ref_grads)
    scalars = [a.item() for a in args]  # Python floats (bools for a mask)
    plain = call(op, scalars, params)
    np.testing.assert_allclose(plain, ref.data, rtol=1e-12)
    for i in floats:  # one Tensor, the others Python numbers
        mixed = list(scalars)
        mixed[i] = leaf(args[i])
        out = call(op, mixed, params)
        out.backward()
        np.testing.assert_allclose(out.data, ref.data, rtol=1e-12)
        np.testing.assert_allclose(mixed[i].grad.data, _unit_grad(op, args, params, i),
                                   rtol=1e-12, atol=1e-15)


def _unit_grad(op, args, params, i):
    """d op / d args[i] at 0-d inputs, with a cotangent of one."""
    x = leaf(args[i])
    full = list(args)
    full[i] = x
    call(op, full, params).backward()
    return x.grad.data


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_size_axes(name):
    op = fg.ops()[name]
    rest = op.n_inputs - 1
    floats = op.domain.float_args(op.n_inputs)
    for shapes in [((0,),) * op.n_inputs, ((0, 3),) * op.n_inputs,
                   ((0, 3),) + ((3,),) * rest, ((2, 0, 1),) + ((1, 4),) * rest]:
        args, params = op.domain.draw(np.random.default_rng(0), (shapes, {}))
        out, grads = forward_backward(op, args, params, floats)
        assert out.shape == np.broadcast_shapes(*shapes)
        assert [g.shape for g in grads] == [shapes[i] for i in floats], name


REDUCTIONS = sorted(name for name, op in fg.ops().items() if op.domain.kind == "reduction")


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("shape, axis", [((0,), None), ((0, 3), None), ((0, 3), 0), ((0, 3), 1),
                                         ((3, 0), -1), ((3, 0), 0), ((2, 0, 4), (0, 2))])
def test_reductions_over_zero_size_axes(name, shape, axis):
    """NumPy's answer (0, nan, -inf or an empty array), or a ShapeError naming the op when
    NumPy has none (the max of nothing)."""
    op = fg.ops()[name]
    x = np.zeros(shape)
    if name in ("softmax", "log_softmax") and not isinstance(axis, int):
        axis = -1
    params = {"axis": axis}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of nothing
        if name in ("max", "min") and (axis is None or 0 in np.atleast_1d(np.take(shape, axis))):
            with pytest.raises(ShapeError, match=name):
                op(leaf(x), **params)
            return
        out, (g,) = forward_backward(op, [x], params, [0])
        assert g.shape == shape
        if name in ("sum", "mean", "var", "logsumexp", "max", "min", "prod", "std"):
            expected = {"sum": np.sum, "mean": np.mean, "var": np.var, "max": np.max,
                        "min": np.min, "prod": np.prod, "std": np.std,
                        "logsumexp": lambda v, axis: np.log(np.sum(np.exp(v), axis=axis))}[name]
            with np.errstate(all="ignore"):
                want = expected(x, axis=axis)
            np.testing.assert_array_equal(out.data, want)
        else:
            assert out.shape == shape


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("which", [0, 1, "both"])
def test_size_one_broadcasting_on_every_axis(name, axis, which):
    """Gradients of a size-1 (broadcast) axis are the sums of the full gradient along it."""
    op = fg.ops()[name]
    full = (2, 3, 4)
    one = tuple(1 if i == axis else n for i, n in enumerate(full))
    other = tuple(1 if i == (axis + 1) % 3 else n for i, n in enumerate(full))
    shapes = {0: (one, full), 1: (full, one), "both": (one, other)}[which]
    args, params = op.domain.draw(np.random.default_rng(axis), (shapes, {}))
    out, grads = forward_backward(op, args, params, [0, 1])
    expanded = [np.broadcast_to(a, out.shape).copy() for a in args]
    ref, ref_grads = forward_backward(op, expanded, params, [0, 1])
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-12)
    for a, g, rg in zip(args, grads, ref_grads):
        assert g.shape == a.shape
        summed = rg.data.sum(axis=tuple(i for i, n in enumerate(a.shape) if n == 1),
                             keepdims=True)
        np.testing.assert_allclose(g.data, summed, rtol=1e-10, atol=1e-12)


# -- dtypes: NEP 50, integers, booleans ---------------------------------------------------------

@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("scalar", [2.0, 3, np.float32(0.5)])
def test_float32_tensor_with_python_number_stays_float32(name, scalar):
    op = fg.ops()[name]
    (x,), _ = op.domain.draw(np.random.default_rng(0), (((3, 4),), {}))
    for order in (0, 1):
        t = leaf(x.astype(np.float32))
        args = [t, scalar] if order == 0 else [scalar, t]
        if name == "power" and order == 1:
            args = [2.5, t]  # a positive base
        with np.errstate(all="ignore"):
            out = op(*args)
            out.backward()
        assert out.dtype == np.float32, f"{name}{tuple(type(a).__name__ for a in args)}"
        assert t.grad.dtype == np.float32


def test_float32_operators_with_python_numbers():
    x = Tensor(np.array([0.5, 1.5], np.float32), autograd=True)
    for y in (x * 2.0, 2.0 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x ** 2, 2.0 ** x, -x, x * True):
        assert y.dtype == np.float32
    y = (x * 2.0 + 1) / 3.0
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_float32_meets_float64_array_as_numpy_does():
    x = Tensor(np.ones(2, np.float32), autograd=True)
    y = x * np.ones(2)  # a float64 array is not weak: NumPy promotes
    assert y.dtype == np.result_type(np.float32, np.float64)
    y.sum().backward()
    assert x.grad.dtype == np.float32  # the gradient keeps its leaf's dtype


FLOAT_OPS = ["exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "softplus", "softmax",
             "log_softmax", "logsumexp", "mean", "var"]


@pytest.mark.parametrize("name", FLOAT_OPS)
def test_integer_inputs_to_float_ops(name):
    ints = np.array([[1, 2, 3], [4, 1, 2]])
    x = Tensor(ints, autograd=True)
    out = getattr(fg, name)(x)
    out.backward(np.ones(out.shape))
    ref = Tensor(ints.astype(np.float64), autograd=True)
    ref_out = getattr(fg, name)(ref)
    ref_out.backward(np.ones(out.shape))
    assert out.dtype == np.float64 and x.grad.dtype == np.float64
    np.testing.assert_allclose(out.data, ref_out.data, rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, ref.grad.data, rtol=1e-12)


@pytest.mark.parametrize("as_", ["ndarray", "Tensor", "list"])
def test_boolean_masks(as_):
    values = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], np.float32)
    mask = values > 0
    m = {"ndarray": mask, "Tensor": Tensor(mask), "list": mask.tolist()}[as_]

    x = Tensor(values, autograd=True)
    y = fg.where(m, x, 0.0)
    y.sum().backward()
    assert y.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, mask.astype(np.float32))

    x = Tensor(values, autograd=True)
    picked = x[m if as_ != "list" else np.asarray(m)]
    picked.sum().backward()
    np.testing.assert_array_equal(picked.data, values[mask])
    np.testing.assert_array_equal(x.grad.data, mask.astype(np.float32))

    if as_ != "list":
        x = Tensor(values, autograd=True)
        y = x * m  # float32 times bool stays float32
        y.sum().backward()
        assert y.dtype == np.float32
        np.testing.assert_array_equal(x.grad.data, mask.astype(np.float32))


# -- Numba kernels: every layout and index dtype reaches them safely -----------------------------

INDEX_DTYPES = [np.int64, np.int32, np.int16, np.uint8, np.uint32, np.intp]


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("kind", ("C",) + LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_index_select_backward_kernel_any_layout(index_dtype, kind, dtype):
    table = np.arange(15, dtype=dtype).reshape(5, 3)
    idx = np.array([[4, 0], [4, 2]], dtype=index_dtype)
    w = leaf(table.astype(dtype), kind)
    out = w.index_select(with_layout(idx, kind))
    out.backward(with_layout(np.ones((2, 2, 3), dtype), kind))
    np.testing.assert_array_equal(out.data, table[idx.astype(np.int64)])
    counts = np.bincount(idx.ravel().astype(np.int64), minlength=5).astype(dtype)
    np.testing.assert_array_equal(w.grad.data, np.repeat(counts[:, None], 3, axis=1))
    assert w.grad.dtype == dtype


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("kind", ("C",) + LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_kernel_any_layout(index_dtype, kind, dtype):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 3)).astype(dtype)
    targets = np.array([2, 0, 1, 1], dtype=index_dtype)
    x = leaf(logits, kind)
    loss = x.cross_entropy(with_layout(targets, kind))
    loss.backward()
    ref = Tensor(logits.astype(np.float64), autograd=True)
    ref_loss = fg.mean(-fg.log_softmax(ref)[np.arange(4), targets.astype(np.int64)])
    ref_loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.data, ref_loss.data, rtol=tol)
    np.testing.assert_allclose(x.grad.data, ref.grad.data, rtol=tol, atol=tol)


def test_getitem_with_integer_array_uses_the_scatter_kernel_on_any_layout():
    idx = with_layout(np.array([3, 3, 0, -1]), "reversed")
    x = leaf(np.arange(12.0).reshape(4, 3), "F")
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad.data[:, 0], [1.0, 0.0, 0.0, 3.0])


@pytest.mark.parametrize("kind", ("C",) + LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_ops_reaching_kernels_accept_any_layout_and_dtype(kind, dtype):
    # the kernels trust their callers: the ops normalise layout, dtype and indices once
    rng = np.random.default_rng(0)
    raw = (rng.standard_normal((4, 3)) * 3).astype(dtype)
    values = with_layout(raw, kind)
    idx = with_layout(np.array([1, 0, 1, -1]), kind)
    expected = np.zeros((3, 3))
    np.add.at(expected, np.array([1, 0, 1, 2]), raw.astype(np.float64))
    np.testing.assert_allclose(fg.primitives.scatter_add(values, idx, n_rows=3), expected, rtol=1e-6)
    bags = with_layout(np.array([[1, 0], [2, -1]]), kind)
    np.testing.assert_allclose(fg.embedding_bag(values, bags),
                               raw[np.array([[1, 0], [2, 3]])].sum(1), rtol=1e-6)
    targets = with_layout(np.array([0, 2, 1, 1]), kind)
    logits = raw.astype(np.float64)
    ref = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(4), [0, 2, 1, 1]])
    np.testing.assert_allclose(fg.cross_entropy(values, targets), ref, rtol=1e-6)


# -- regressions found by the fuzzer ----------------------------------------------------------

@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's, about nan/inf variances
def test_var_backward_of_zero_size_or_too_large_ddof_is_ieee_not_zerodivision():
    x = Tensor(np.zeros(0), autograd=True)
    with np.errstate(all="ignore"):
        y = fg.var(x)
    y.backward()
    assert np.isnan(y.data) and x.grad.shape == (0,)
    x = Tensor(np.array([1.0, 2.0, 4.0]), autograd=True)
    with np.errstate(all="ignore"):
        y = fg.var(x, ddof=3)
        y.backward()
    assert np.isinf(y.data) and not np.isfinite(x.grad.data).any()


def test_logsumexp_and_softmaxes_over_an_empty_axis():
    x = Tensor(np.zeros((3, 0), np.float32), autograd=True)
    y = fg.logsumexp(x, axis=1)
    np.testing.assert_array_equal(y.data, [-np.inf] * 3)
    assert y.dtype == np.float32
    y.backward(np.ones(3, np.float32))
    assert x.grad.shape == (3, 0)
    for f in (fg.softmax, fg.log_softmax):
        out = f(Tensor(np.zeros((3, 0))), axis=-1)
        assert out.shape == (3, 0)
    assert fg.softmax(np.array([True, False, True])).dtype == np.float64  # bools as integers


def test_float_axis_is_refused_not_truncated():
    with pytest.raises(DTypeError, match="sum: axis must be an int"):
        Tensor(np.ones((2, 3))).sum(1.5)
    with pytest.raises(DTypeError, match="mean"):
        fg.mean(np.ones((2, 3)), axis=np.float64(0.0))
    assert fg.sum(np.ones((2, 3)), axis=np.int64(1)).shape == (2,)


def test_power_of_integers_differentiates_at_exponent_zero():
    x = Tensor(np.array([2, 3]), autograd=True)
    y = Tensor(np.array([0, 2]), autograd=True)
    (x ** y).backward(np.ones(2))  # d/dx x**0 needs x**-1: no integer power there
    np.testing.assert_array_equal(x.grad.data, [0.0, 6.0])
    np.testing.assert_allclose(y.grad.data, [np.log(2.0), 9 * np.log(3.0)])


@pytest.mark.parametrize("axes", [(0, -1), (-1, 0), (-3, 2, -2), (1, -1, 0)])
def test_transpose_with_negative_axes_has_the_right_gradient(axes):
    shape = (3, 3, 3)[:len(axes)]
    w = np.arange(np.prod(shape), dtype=float).reshape(shape)
    x = Tensor(np.ones(shape), autograd=True)
    (fg.transpose(x, axes=axes) * w).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.transpose(w, np.argsort(
        [a % len(axes) for a in axes])))


def test_join_errors_name_their_op():
    for join in (fg.concatenate, fg.stack):
        with pytest.raises(ShapeError, match=f"^{join.name}: shapes"):
            join([Tensor(np.ones((3, 4))), Tensor(np.ones((3, 5)))])


def test_log_softmax_errors_name_log_softmax():
    with pytest.raises(ShapeError, match="^log_softmax"):
        fg.log_softmax(Tensor(1.0))


def test_clip_takes_tensor_bounds_as_constants():
    x = Tensor(np.linspace(-2, 2, 5), autograd=True)
    y = x.clip(Tensor(-1.0), Tensor(1.0))
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [-1, -1, 0, 1, 1])
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 1, 0])


def test_backward_and_item_errors_are_fungrad_errors():
    y = Tensor(np.ones(3), autograd=True) * 2
    with pytest.raises(DTypeError, match="backward"):
        y.backward("a")
    with pytest.raises(ShapeError, match="item"):
        y.item()
    assert Tensor([2.5]).item() == 2.5


def test_error_messages_do_not_repeat_the_op_name():
    scatter_add = fg.ops()["scatter_add"]
    with pytest.raises(ShapeError) as info:
        scatter_add(Tensor(np.ones((4, 3))), np.array([0, 1, 2]), n_rows=5)
    assert str(info.value).startswith("scatter_add: values shape")


def test_floating_point_errors_requested_by_the_user_become_anomaly_errors():
    with np.errstate(all="raise"):
        with pytest.raises(AnomalyError, match="^log: divide by zero") as info:
            fg.log(Tensor(np.zeros(2), autograd=True))
    assert isinstance(info.value, FloatingPointError)


@pytest.mark.parametrize("bad, error", [
    (lambda: Tensor(np.ones((3, 4))) + Tensor(np.ones(5)), ShapeError),
    (lambda: Tensor(np.ones((3, 4))).sum(2), ShapeError),
    (lambda: Tensor(np.ones((3, 4))).reshape(5), ShapeError),
    (lambda: Tensor(np.ones((3, 4))).mm(Tensor(np.ones((3, 4)))), ShapeError),
    (lambda: Tensor(np.ones((3, 4))).index_select([3]), IndexRangeError),
    (lambda: Tensor(np.ones((3, 4))).index_select([0.5]), DTypeError),
    (lambda: Tensor(np.ones((3, 4))).cross_entropy([0, 1, 4]), IndexRangeError),
    (lambda: Tensor(np.ones((3, 4))).cross_entropy([0, 1]), ShapeError),
    (lambda: Tensor(np.ones((3, 4)))[np.array([0, 7])], IndexRangeError),
    (lambda: Tensor(np.ones((3, 4))).expand(5, 2), ShapeError),
    (lambda: fg.concatenate([Tensor(np.ones((3, 4))), Tensor(np.ones((3, 5)))]), ShapeError),
    (lambda: fg.max(Tensor(np.ones((0, 3)))), ShapeError),
    (lambda: fg.exp(np.array(["a"])), DTypeError),
    (lambda: fg.add(Tensor(np.ones(2)), np.array(["a", "b"])), DTypeError),
])
def test_bad_input_gives_a_fungrad_error_naming_the_op(bad, error):
    with pytest.raises(error) as info:
        bad()
    assert isinstance(info.value, FungradError)
    assert str(info.value).split(":")[0] in {op for op in fg.ops()}


# -- in-place safety: a version counter per Tensor --------------------------------------------

def _modified(op: str, made_by: str):
    return pytest.raises(GraphError, match=rf"backward of '{op}'.*\({made_by}\).*modified in place")


def test_leaf_weight_replaced_between_forward_and_backward():
    w = Tensor([1.0, 2.0], autograd=True)
    y = fg.tanh(w).sum()
    w.data = w.data * 0.5
    with _modified("tanh", "a leaf"):
        y.backward()


def test_leaf_weight_updated_in_place_through_the_property():
    w = Tensor([1.0, 2.0], autograd=True)
    y = (w * w).sum()
    w.data -= 0.1  # getter, in-place subtract, setter: the version moves
    with _modified("multiply", "a leaf"):
        y.backward()


def test_intermediate_tensor_replaced():
    x = Tensor([1.0, 2.0], autograd=True)
    h = x * 3.0
    y = fg.sigmoid(h).sum()
    h.data = np.zeros(2)
    with _modified("sigmoid", "made by 'multiply'"):
        y.backward()


@pytest.mark.parametrize("target", ["leaf", "intermediate"])
def test_item_assignment_declared_with_bump_version(target):
    x = Tensor([1.0, 2.0, 3.0], autograd=True)
    h = x * 2.0
    y = (h * x).sum()
    t = x if target == "leaf" else h
    t.data[1] = 10.0  # an ndarray cannot tell us: the caller declares it
    t.bump_version()
    with _modified("multiply", "a leaf" if target == "leaf" else "made by 'multiply'"):
        y.backward()


def test_modification_detected_on_a_retained_graph_too():
    w = Tensor([1.0, 2.0], autograd=True)
    y = fg.exp(w).sum()
    y.backward(retain_graph=True)
    w.data = w.data + 1
    with _modified("exp", "a leaf"):
        y.backward()


def test_updates_after_backward_stay_legal():
    w = Tensor(np.array([1.0, -2.0]), autograd=True)
    for _ in range(3):
        loss = (w * w).sum()
        loss.backward()
        w.data -= 0.1 * w.grad.data  # the book's update
        w.grad.data[...] = 0  # the book's zeroing, in place
        w.bump_version()  # declaring an in-place edit after backward is harmless
    np.testing.assert_allclose(w.data, np.array([1.0, -2.0]) * 0.8 ** 3)


@pytest.mark.parametrize("make", [lambda ps: fg.optim.SGD(ps, alpha=0.1),
                                  lambda ps: fg.optim.SGD(ps, alpha=0.1, momentum=0.9),
                                  lambda ps: fg.optim.Adam(ps, lr=0.1)])
def test_optimizer_steps_after_backward_stay_legal(make):
    w = Tensor(np.array([[1.0, -2.0], [0.5, 3.0]], np.float32), autograd=True)
    opt = make([w])
    first = None
    for _ in range(5):
        loss = fg.sum(fg.tanh(w) ** 2)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first and w.dtype == np.float32


@pytest.mark.parametrize("make", [lambda ps: fg.optim.SGD(ps, alpha=0.1),
                                  lambda ps: fg.optim.Adam(ps, lr=0.1)])
def test_optimizer_step_between_forward_and_backward_is_detected(make):
    w = Tensor(np.array([1.0, 2.0]), autograd=True)
    opt = make([w])
    first, second = (w * w).sum(), (w * w * w).sum()
    first.backward()
    opt.step()
    with pytest.raises(GraphError):
        second.backward()


def test_a_refused_backward_leaves_no_gradient_behind():
    a = Tensor([1.0, 2.0], autograd=True)
    b = Tensor([3.0, 4.0], autograd=True)
    y = (b * b).sum() + (a * 2.0).sum()
    b.data = b.data + 1
    with pytest.raises(GraphError):
        y.backward()
    assert a.grad is None and b.grad is None


def test_in_place_change_of_an_output_its_own_vjp_reuses_is_detected():
    x = Tensor([0.0, 1.0], autograd=True)
    y = fg.exp(x)
    y.data[...] = 0.0
    y.bump_version()
    with pytest.raises(GraphError, match="'exp': its output"):
        y.backward(np.ones(2))


def test_in_place_change_of_an_intermediate_output_is_detected():
    x = Tensor([0.0, 1.0], autograd=True)
    y = fg.exp(x)
    z = (y * 2.0).sum()
    y.data[...] = 0.0
    y.bump_version()
    with pytest.raises(GraphError, match="made by 'exp'.*modified in place"):
        z.backward()
    assert x.grad is None
