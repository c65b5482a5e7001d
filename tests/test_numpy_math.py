"""fungrad.numpy math: elementwise functions, reductions and scans against NumPy.

Each function is checked on ndarrays (NumPy's values and dtypes, an ndarray back), on Tensors
through NumPy's own entry point (``np.tan(t)`` dispatches and differentiates), with NumPy's
keywords, and through ``check_grads``. The registry-driven property suite checks the ops
themselves; this module checks the NumPy face and the issue-11 reproducers.
"""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad import Tensor
from fungrad import primitives as ops
from fungrad.errors import DTypeError, ShapeError
from fungrad.testing import check_grads

# NumPy name -> the op behind it (its domain gives valid inputs)
UNARY = {
    "tan": "tan", "arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan", "sinh": "sinh",
    "cosh": "cosh", "arcsinh": "arcsinh", "arccosh": "arccosh", "arctanh": "arctanh",
    "asin": "arcsin", "acosh": "arccosh", "log1p": "log1p", "expm1": "expm1", "log2": "log2",
    "log10": "log10", "exp2": "exp2", "square": "square", "reciprocal": "reciprocal",
    "cbrt": "cbrt", "absolute": "abs", "fabs": "abs", "deg2rad": "deg2rad",
    "rad2deg": "rad2deg", "degrees": "rad2deg", "radians": "deg2rad", "floor": "floor",
    "ceil": "ceil", "rint": "rint", "trunc": "trunc", "fix": "trunc", "round": "round",
    "around": "round", "conjugate": "conj", "conj": "conj", "real": "real", "imag": "imag",
    "sinc": "sinc", "nan_to_num": "nan_to_num", "exp": "exp", "log": "log", "sqrt": "sqrt",
    "sin": "sin", "cos": "cos", "tanh": "tanh", "sign": "sign", "negative": "negative",
}
BINARY = {
    "arctan2": "arctan2", "atan2": "arctan2", "hypot": "hypot", "logaddexp": "logaddexp",
    "logaddexp2": "logaddexp2", "mod": "mod", "remainder": "mod", "fmod": "fmod",
    "fmax": "fmax", "fmin": "fmin", "true_divide": "divide", "float_power": "power",
    "power": "power", "pow": "power", "maximum": "maximum", "minimum": "minimum",
}
MY_MODULES = ("elementwise", "trig", "explog", "rounding", "scan", "reduce")


def _draw(op_name: str, shapes, seed: int = 0) -> list:
    domain = fg.ops()[op_name].domain
    args, _ = domain.draw(np.random.default_rng(seed), (tuple(shapes), {}))
    return args


def _calls():
    for name, op in UNARY.items():
        yield pytest.param(name, op, ((3, 4),), id=name)
    for name, op in BINARY.items():
        yield pytest.param(name, op, ((3, 4), (4,)), id=name)


@pytest.mark.parametrize("name, op, shapes", list(_calls()))
def test_forward_dispatch_and_gradient_match_numpy(name, op, shapes):
    args = _draw(op, shapes)
    expected = getattr(np, name)(*args)
    got = getattr(fnp, name)(*args)
    assert type(got) is np.ndarray, f"fnp.{name} on ndarrays must give an ndarray"
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)  # float_power: 1 ulp
    assert got.dtype == expected.dtype
    out = getattr(np, name)(*[Tensor(a, autograd=True) for a in args])
    assert isinstance(out, Tensor), f"np.{name}(Tensor) must dispatch to fungrad"
    np.testing.assert_allclose(out.data, expected, rtol=1e-15, atol=0)
    check_grads(lambda *xs: getattr(np, name)(*xs), *args, modes=("rev",))


@pytest.mark.parametrize("name, op, shapes", list(_calls()))
def test_dtypes_follow_numpy(name, op, shapes):
    args = _draw(op, shapes)
    for dtype in (np.float32, np.int64, np.int8):
        xs = [a.astype(dtype) if dtype == np.float32 else
              np.clip(np.round(a), 1, 3).astype(dtype) for a in args]
        with np.errstate(all="ignore"):
            try:
                expected = getattr(np, name)(*xs)
            except TypeError:  # NumPy refuses this dtype (bitwise-free ufunc loops)
                continue
            got = getattr(fnp, name)(*xs)
        assert np.asarray(got).dtype == np.asarray(expected).dtype, (name, dtype)
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


def test_float32_in_float32_gradients_out():
    x = np.linspace(0.1, 0.9, 6, dtype=np.float32)
    for name in ("tan", "arcsin", "log1p", "cbrt", "sinc", "mod", "logaddexp", "float_power"):
        fn = getattr(fnp, name)
        f = (lambda t, fn=fn: fnp.sum(fn(t))) if fn.__name__ not in (
            "remainder", "logaddexp", "float_power") else (
            lambda t, fn=fn: fnp.sum(fn(t, np.float32(0.7))))
        g = fg.grad(f)(x)
        assert g.dtype == np.float32, name


# -- keywords ------------------------------------------------------------------------------------


def test_ufunc_keywords():
    x = np.array([0.25, 0.5])
    assert fnp.tan(x, dtype=np.float32).dtype == np.float32
    with pytest.raises(DTypeError, match="out="):
        fnp.arcsinh(x, out=np.empty(2))
    with pytest.raises(DTypeError, match="out="):
        np.arcsinh(Tensor(x, autograd=True), out=np.empty(2))
    with pytest.raises(ShapeError, match="where="):
        fnp.log1p(x, where=np.array([True, False]))
    t = Tensor(x, autograd=True)
    np.testing.assert_allclose(np.hypot.outer(t, t).data, np.hypot.outer(x, x))


def test_rounding_functions_take_numpy_arguments_and_pass_zero_gradient():
    x = np.array([1.26, -2.51, 0.04])
    for f, expected in ((lambda a: np.round(a, 1), np.round(x, 1)),
                        (lambda a: np.around(a, decimals=1), np.round(x, 1)),
                        (np.fix, np.fix(x)), (np.floor, np.floor(x)), (np.rint, np.rint(x))):
        t = Tensor(x, autograd=True)
        y = f(t)
        assert isinstance(y, Tensor) and y.creators  # recorded: the graph stays connected
        np.testing.assert_array_equal(y.data, expected)
        (y * 3.0).sum().backward()
        np.testing.assert_array_equal(t.grad.data, np.zeros(3))
    with pytest.raises(DTypeError, match="out="):
        fnp.round(x, 1, out=np.empty(3))


def test_nan_to_num_keywords_and_gradient():
    x = np.array([np.nan, np.inf, -np.inf, 2.0])
    np.testing.assert_array_equal(fnp.nan_to_num(x, nan=1.0, posinf=5.0, neginf=-5.0),
                                  np.nan_to_num(x, nan=1.0, posinf=5.0, neginf=-5.0))
    y = x.copy()
    assert fnp.nan_to_num(y, copy=False) is y and np.isfinite(y).all()  # in place, as NumPy
    t = Tensor(x, autograd=True)
    np.nan_to_num(t, posinf=7.0).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [0.0, 0.0, 0.0, 1.0])


def test_real_imag_conj_of_real_tensors():
    x = np.array([1.5, -2.0])
    t = Tensor(x, autograd=True)
    (np.real(t) * 2 + np.imag(t) * 5 + np.conj(t) * 7).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [9.0, 9.0])
    np.testing.assert_array_equal(fnp.imag(x), [0.0, 0.0])
    z = np.array([1 + 2j])  # plain NumPy still serves complex ndarrays
    assert fnp.real(z)[0] == 1.0 and fnp.imag(z)[0] == 2.0


def test_mod_on_arrays_and_tensors():
    x = np.array([5.5, -5.5, 7.0])
    t = Tensor(x, autograd=True)
    y = np.array([2.0, 2.0, 3.0]) % t  # ndarray % Tensor goes through np.remainder
    np.testing.assert_array_equal(y.data, np.array([2.0, 2.0, 3.0]) % x)
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.data, -np.floor_divide([2.0, 2.0, 3.0], x))
    np.testing.assert_array_equal(np.mod(t, 2).data, np.mod(x, 2))


def test_fabs_and_float_power_follow_numpy_dtypes():
    i = np.array([-1, 2], dtype=np.int8)
    assert fnp.fabs(i).dtype == np.fabs(i).dtype == np.float16
    x = np.float32([1.5, 2.0])
    assert fnp.float_power(x, 2).dtype == np.float64
    g = fg.grad(lambda v: fnp.sum(fnp.float_power(v, 3)))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2)


# -- reductions and scans ------------------------------------------------------------------------

X = np.random.default_rng(3).uniform(0.5, 1.5, (3, 4))
REDUCTIONS = [
    ("prod", {}), ("prod", {"axis": 1, "keepdims": True}), ("prod", {"axis": (0, 1)}),
    ("prod", {"axis": 0, "initial": 2.0}), ("prod", {"dtype": np.float32}),
    ("prod", {"where": X > 0.8, "axis": 1}),
    ("std", {}), ("std", {"axis": 0, "ddof": 1}), ("std", {"axis": 1, "correction": 1}),
    ("std", {"axis": -1, "keepdims": True}),
    ("average", {}), ("average", {"axis": 1, "weights": np.arange(1.0, 5.0)}),
    ("average", {"axis": 0, "weights": np.arange(1.0, 4.0), "keepdims": True}),
    ("average", {"weights": X[::-1]}), ("average", {"axis": (1, 0), "weights": X.T}),
    ("ptp", {}), ("ptp", {"axis": 1, "keepdims": True}),
    ("nansum", {"axis": 0}), ("nanmean", {"axis": 1}),
    ("cumsum", {}), ("cumsum", {"axis": 0}), ("cumsum", {"axis": 1, "dtype": np.float32}),
    ("cumprod", {}), ("cumprod", {"axis": -1}),
    ("cumulative_sum", {"axis": 1, "include_initial": True}),
    ("cumulative_prod", {"axis": 0}),
    ("diff", {}), ("diff", {"n": 2, "axis": 0}), ("diff", {"prepend": 0.0, "append": X[:, :1]}),
    ("diff", {"n": 0}),
    ("gradient", {}), ("gradient", {"axis": 1, "edge_order": 2}),
]


def _as_list(r):
    return list(r) if isinstance(r, (tuple, list)) else [r]


@pytest.mark.parametrize("name, kwargs", REDUCTIONS,
                         ids=[f"{n}-{'-'.join(k)}" for n, k in REDUCTIONS])
def test_reductions_and_scans_match_numpy(name, kwargs):
    expected = _as_list(getattr(np, name)(X, **kwargs))
    got = _as_list(getattr(fnp, name)(X, **kwargs))
    for g, e in zip(got, expected, strict=True):
        assert type(g) is np.ndarray or np.ndim(g) == 0
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=0)
        assert np.asarray(g).dtype == np.asarray(e).dtype
    t = Tensor(X, autograd=True)
    through = _as_list(getattr(np, name)(t, **kwargs))
    for g, e in zip(through, expected):
        assert isinstance(g, Tensor)
        np.testing.assert_allclose(g.data, e, rtol=1e-13, atol=0)
    check_grads(lambda x: _as_list(getattr(np, name)(x, **kwargs)), X, modes=("rev",))


def test_integer_inputs_keep_numpy_dtypes():
    a = np.arange(1, 7).reshape(2, 3)
    m = a % 2 == 1
    for name, kw in [("sum", {"where": m}), ("prod", {"where": m, "axis": 1}),
                     ("nansum", {"axis": 0}), ("cumsum", {}), ("cumprod", {"axis": 1}),
                     ("prod", {}), ("diff", {}), ("ptp", {}), ("std", {}), ("nanmean", {}),
                     ("average", {"weights": a}), ("gradient", {"axis": 0})]:
        for x in (a, a.astype(np.int8), a > 2):
            try:
                want = getattr(np, name)(x, **kw)
            except TypeError:  # NumPy refuses (ptp of bools): so does fungrad.numpy
                with pytest.raises(TypeError):
                    getattr(fnp, name)(x, **kw)
                continue
            got = getattr(fnp, name)(x, **kw)
            assert np.asarray(got).dtype == np.asarray(want).dtype, (name, x.dtype)
            np.testing.assert_allclose(got, want, rtol=1e-15)


@pytest.mark.parametrize("spacing, kwargs", [
    ((2.0,), {}), ((np.array([0.0, 1.0, 3.0]), 0.5), {}),
    ((np.array([0.0, 1.0, 3.0]), np.array([0.0, 0.5, 2.0, 2.5])), {"edge_order": 2}),
    ((np.array([0.0, 2.0, 4.0]),), {"axis": 0}), ((np.arange(4),), {"axis": -1}),
])
def test_gradient_spacing_matches_numpy(spacing, kwargs):
    expected = _as_list(np.gradient(X, *spacing, **kwargs))
    got = _as_list(fnp.gradient(X, *spacing, **kwargs))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-15)
    ints = np.array([[1, 4, 9, 16], [2, 3, 5, 7]])
    np.testing.assert_array_equal(fnp.gradient(ints, axis=1), np.gradient(ints, axis=1))
    check_grads(lambda x: _as_list(fnp.gradient(x, *spacing, **kwargs)), X, order=2,
                modes=("rev",))


def test_gradient_and_average_are_differentiable_in_spacing_and_weights():
    coords = np.array([0.0, 1.0, 3.0, 3.5])
    check_grads(lambda h: fnp.sum(fnp.gradient(X, h, axis=1, edge_order=2) ** 2), coords)
    w = np.array([1.0, 2.0, 0.5, 1.5])
    check_grads(lambda x, v: fnp.average(x, axis=1, weights=v) ** 2, X, w, order=2)
    avg, scl = fnp.average(Tensor(X), axis=1, weights=w, returned=True)
    np.testing.assert_allclose(scl.data, np.full(3, w.sum()))


def test_reduction_errors_name_the_function():
    with pytest.raises(TypeError, match="average"):
        fnp.average(X, weights=np.ones(4))
    with pytest.raises(ShapeError, match="average"):
        fnp.average(X, axis=0, weights=np.ones(4))
    with pytest.raises(ZeroDivisionError, match="average"):
        fnp.average(X, axis=1, weights=np.zeros(4))
    with pytest.raises(ValueError, match="diff"):
        fnp.diff(X, n=-1)
    with pytest.raises(ValueError, match="gradient"):
        fnp.gradient(np.ones(2), edge_order=2)
    with pytest.raises(ValueError, match="cumulative_sum"):
        fnp.cumulative_sum(X)
    with pytest.raises(DTypeError, match="out="):
        fnp.cumsum(X, out=np.empty(12))


def test_ufunc_methods_reduce_and_accumulate():
    t = Tensor(X, autograd=True)
    for method, expected in ((np.multiply.reduce, np.prod(X, axis=0)),
                             (np.add.accumulate, np.cumsum(X, axis=0)),
                             (np.multiply.accumulate, np.cumprod(X, axis=0))):
        y = method(t)
        assert isinstance(y, Tensor)
        np.testing.assert_allclose(y.data, expected, rtol=1e-14)
    np.testing.assert_allclose(np.add.accumulate(t, axis=1).data, np.cumsum(X, axis=1))
    check_grads(lambda x: np.multiply.accumulate(x, axis=1), X, order=2, modes=("rev",))


def test_nan_reductions_give_nan_elements_zero_gradient():
    x = np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, 4.0]])
    t = Tensor(x, autograd=True)
    total = np.nansum(t, axis=1) + np.nanmean(t, axis=1)
    np.testing.assert_array_equal(total.data, [4.0 + 2.0, 6.0 + 3.0])
    total.sum().backward()
    np.testing.assert_array_equal(t.grad.data, [[1.5, 0.0, 1.5], [0.0, 1.5, 1.5]])


# -- zeros in products: exact gradients at every order -------------------------------------------

ZEROS = np.array([2.0, 0.0, 3.0, 0.0, 1.5])


def test_prod_with_zeros_is_exact_without_dividing():
    x = np.array([2.0, 0.0, 3.0])
    np.testing.assert_array_equal(fg.grad(ops.prod)(x), [0.0, 6.0, 0.0])
    np.testing.assert_array_equal(fg.hessian(ops.prod)(x),
                                  [[0.0, 3.0, 0.0], [3.0, 0.0, 2.0], [0.0, 2.0, 0.0]])
    h = fg.hessian(ops.prod)(np.array([2.0, 0.0, 3.0, 0.0]))
    assert h[1, 3] == h[3, 1] == 6.0 and np.count_nonzero(h) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_grads(ops.prod, ZEROS, order=3)
        check_grads(lambda x: fnp.prod(x.reshape(1, 5), axis=1), ZEROS, order=2)


@pytest.mark.parametrize("axis", [0, 1, (0, 2), None])
def test_prod_over_axes_with_zeros(axis):
    x = np.random.default_rng(5).uniform(-2, 2, (3, 4, 2))
    x[1, 2, 0] = x[0, 1, 1] = x[2, 1, 1] = 0.0
    check_grads(lambda v: ops.prod(v, axis=axis), x, order=2)
    np.testing.assert_allclose(fg.grad(lambda v: ops.sum(ops.prod(v, axis=axis)))(x),
                               _others_by_loop(x, axis))


def _others_by_loop(x, axis):
    """d sum(prod(x, axis)) / dx by brute force: the product of the others in each slice."""
    out = np.empty_like(x)
    axes = tuple(range(x.ndim)) if axis is None else np.atleast_1d(axis)
    for idx in np.ndindex(x.shape):
        same = [j for j in np.ndindex(x.shape)
                if all(j[k] == idx[k] for k in range(x.ndim) if k not in axes)]
        out[idx] = np.prod([x[j] for j in same if j != idx])
    return out


@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_with_zeros_is_exact_at_every_order(reverse):
    w = np.arange(1.0, 6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_grads(lambda x: ops.cumprod(x, reverse=reverse) * w, ZEROS, order=3)
        check_grads(lambda x: ops.cumprod(x.reshape(5, 1), axis=0, reverse=reverse), ZEROS,
                    order=2)


# -- compositions --------------------------------------------------------------------------------


def test_numpy_compositions_differentiate_to_second_order():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((5, 3))
    w = rng.uniform(0.3, 0.9, 3)

    def logistic_like(v):
        return np.sum(np.logaddexp(0.0, A @ v)) + np.prod(np.cos(v)) + np.std(np.cumsum(v))

    def physics(v):
        return np.sum(np.diff(np.sinh(v), prepend=0.0) ** 2) + np.sum(np.arctan2(v, 1.0 + v))

    def smooth_stats(v):
        return np.average(np.expm1(v), weights=np.exp2(v)) + np.ptp(np.hypot(v, 0.5))

    for f in (logistic_like, physics, smooth_stats):
        check_grads(f, w, order=2)
    surface = lambda v: np.log1p(np.multiply.outer(v, v))  # noqa: E731
    check_grads(lambda v: np.sum(np.gradient(surface(v), edge_order=2)[1] ** 2), w, order=2,
                modes=("rev",))


# -- issue 11 ------------------------------------------------------------------------------------


def test_issue11_item8_integer_powers_are_exact_at_zero():
    assert fg.grad(fg.grad(fg.grad(lambda t: t ** 2)))(0.0) == 0.0
    assert fg.grad(lambda t: t ** 0)(0.0) == 0.0
    assert fg.grad(lambda t: t ** 3.0)(0.0) == 0.0
    assert fg.grad(fg.grad(lambda t: t ** 3))(0.0) == 0.0
    assert fg.grad(fg.grad(fg.grad(lambda t: t ** 3)))(0.0) == 6.0
    assert fg.grad(fg.grad(lambda t: fg.power(t, 2)))(0.0) == 2.0


def test_issue11_item8_hvp_of_square_at_zero_is_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fg.detect_anomaly():
            out, tangent = fg.jvp(fg.grad(lambda x: fg.sum(x ** 2)), (np.zeros(2),),
                                  (np.ones(2),))
            h = fg.hessian(lambda x: fg.sum(x ** 3))(np.zeros(2))
    np.testing.assert_array_equal(out, [0.0, 0.0])
    np.testing.assert_array_equal(tangent, [2.0, 2.0])
    np.testing.assert_array_equal(h, np.zeros((2, 2)))


@pytest.mark.parametrize("reduce", [fg.max, fg.min, fnp.amax, fnp.amin])
def test_issue11_item10_extrema_over_nan_give_nan_gradients(reduce):
    x = Tensor(np.array([[1.0, np.nan, 2.0], [3.0, 5.0, 5.0]]), autograd=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reduce(x, axis=1).sum().backward()
    g = x.grad.data
    assert np.isnan(g[0]).all()
    expected = [0.0, 0.5, 0.5] if reduce in (fg.max, fnp.amax) else [1.0, 0.0, 0.0]
    np.testing.assert_array_equal(g[1], expected)


@pytest.mark.parametrize("name", ["sigmoid", "softplus"])
@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint8, np.int16, np.int64,
                                   np.float16, np.float32, np.float64])
def test_issue11_item11_float_dtype_does_not_depend_on_size(name, dtype):
    op = getattr(fg, name)
    expected = np.exp(np.ones(1, dtype)).dtype  # NumPy's rule for a float ufunc
    for n in (3, 255, 256, 1000):
        x = (np.arange(n) % 3).astype(dtype)
        out = op(x)
        assert out.dtype == expected, (name, dtype, n, out.dtype)
        ref = op(x.astype(np.float64))
        np.testing.assert_allclose(out, ref, rtol=2e-3 if expected.itemsize == 2 else 1e-6)


def test_issue11_item16_power_with_list_exponent_and_base():
    x = Tensor([1.5, 2.0], autograd=True)
    (x ** [2, 3]).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 12.0])
    y = Tensor([1.0, 2.0], autograd=True)
    ([2.0, 3.0] ** y).sum().backward()
    np.testing.assert_allclose(y.grad.data, [2.0 * np.log(2.0), 9.0 * np.log(3.0)])


def test_issue11_item16_clip_with_bounds_that_broadcast_x():
    x = Tensor([0.5, 2.0, -1.0], autograd=True)
    lo = np.array([[0.0], [1.0]])
    y = fg.clip(x, lo, 1.5)
    assert y.shape == (2, 3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 0.0, 0.0])
    t = Tensor([0.5, 2.0, -1.0], autograd=True)
    np.clip(t, lo, 1.5).sum().backward()
    np.testing.assert_array_equal(t.grad.data, x.grad.data)


@pytest.mark.parametrize("name", ["abs", "softplus"])
def test_issue11_item16_bool_inputs_differentiate(name):
    x = Tensor(np.array([True, False, True]), autograd=True)
    y = getattr(fg, name)(x)
    y.sum().backward()
    ref = Tensor(np.array([1.0, 0.0, 1.0]), autograd=True)
    getattr(fg, name)(ref).sum().backward()
    np.testing.assert_allclose(x.grad.data, ref.grad.data, rtol=1e-3)


# -- every op here documents itself with an example that runs -------------------------------------


def _my_ops():
    return sorted(name for name, op in fg.ops().items()
                  if op.forward.__module__.rsplit(".", 1)[-1] in MY_MODULES)


@pytest.mark.parametrize("name", _my_ops())
def test_op_docstring_example_runs(name, monkeypatch):
    op = fg.ops()[name]
    if not hasattr(fg, name):  # until fungrad/__init__.py exports it
        monkeypatch.setattr(fg, name, op, raising=False)
    test = doctest.DocTestParser().get_doctest(op.doc, {}, name, None, 0)
    assert test.examples, f"op '{name}' has no example in its docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda s: None)
    assert runner.summarize(verbose=False).failed == 0, f"op '{name}': its example fails"


@pytest.mark.parametrize("name", ["fabs", "float_power", "cumprod", "gradient", "average",
                                  "nan_to_num", "round"])
def test_numpy_function_docstring_example_runs(name):
    test = doctest.DocTestParser().get_doctest(getattr(fnp, name).__doc__, {}, name, None, 0)
    assert test.examples
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda s: None)
    assert runner.summarize(verbose=False).failed == 0
