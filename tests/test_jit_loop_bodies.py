"""Every elementwise op of the registry compiles inside a loop body under fg.jit.

A loop body is compiled whole or not at all: one step without a compiled form sends the loop
to Python (with a warning, an error in this suite). The unary functions beyond the common
activations (tan, arctan, log1p, expm1, cbrt, floor, rint...), ``integer_pow`` (which every
gradient of ``x ** 2`` records) and reversed slicing (``c[::-1]``) had no compiled form. Each
case is drawn from the registry (an op's own domain gives its inputs), run as a scan body and
as a top-level program, forward and with its gradient, against eager.

The reductions and the shape ops a body uses are drawn the same way: max's and min's gradient
(it counted ties with an integer sum, and masked them with ``np.where``), var, std, logsumexp,
softmax over an axis that is not the last, sums over axes that are not adjacent (a
broadcast's gradient), split, unstack, diagonal, clip's gradient (masks combined with ``&``),
fmax, fmin, logaddexp, logaddexp2, deg2rad, rad2deg, l2norm and mse had no compiled form; nor
had arctan2, hypot, fmod, mod (and mod's gradient, ``np.floor_divide``), round, sinc,
nan_to_num, real, imag and conj of real arrays, roll and pad. Those computed from NumPy's own formulas
are checked bit for bit against NumPy on a grid of edge values.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad.domains import Real

#: ops with no compiled form by design: a complex number's angle, and real_if_close (whose
#: result's dtype depends on the values)
_NOT_COMPILED = {"angle", "real_if_close"}


def _unary_ops() -> list:
    out = []
    for name, op in sorted(fg.ops().items()):
        if (op.domain.kind == "elementwise" and (op.n_inputs or 1) == 1
                and name in fg.primitives.__all__ and name not in _NOT_COMPILED
                and isinstance(op.domain.spec(0), Real)):
            out.append(name)
    return out


UNARY = _unary_ops()


def _inputs(name: str, dtype) -> tuple[np.ndarray, dict]:
    op = fg.ops()[name]
    params = dict(op.domain.cases[0][1])
    xs = op.domain.spec(0).from_unit(np.random.default_rng(1).uniform(size=(3, 4)))
    return np.asarray(xs, dtype=dtype), params


def test_the_list_is_the_registry():
    assert {"tanh", "arctan", "log1p", "cbrt", "floor", "integer_pow", "square"} <= set(UNARY)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_op_in_a_scan_body(name, dtype):
    fn = getattr(fg.primitives, name)
    xs, params = _inputs(name, dtype)

    def f(w):
        c, ys = fg.scan(lambda c, x: (c + fn(x * w, **params), fn(x, **params) * w), xs[0] * 0,
                        xs)
        return fg.sum(c) + fg.sum(ys)

    w = np.ones(4, dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fg.jit(f)(w), f(w), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(w), fg.grad(f)(w), rtol=10 * rtol,
                               atol=10 * rtol)


@pytest.mark.parametrize("index", [np.s_[::-1], np.s_[..., ::-1], np.s_[::-2, 1:],
                                   np.s_[1, ::-1], np.s_[2:0:-1, ::2]],
                         ids=["rows", "columns", "every-other-row", "one-row", "both"])
def test_reversed_slices_in_a_body_and_at_top_level(index):
    xs = np.random.default_rng(2).normal(size=(3, 4, 4))
    w = np.linspace(0.5, 1.5, 4)

    def body(c, x):
        r = fg.tanh(c * w + x)
        return r + 0.5 * fg.tanh(r[index]).sum() * r[::-1, ::-1], None

    def f(w0):
        c, _ = fg.scan(body, fg.tanh(xs[0] * w0), xs)
        return fg.sum(c * c) + fg.sum(c[index] * w0[0])

    w0 = np.full(4, 0.7)
    np.testing.assert_allclose(fg.jit(f)(w0), f(w0), rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(w0), fg.grad(f)(w0), rtol=1e-10)


#: reductions with no compiled form (NumPy's product has no block kernel)
_REDUCTIONS_NOT_COMPILED = {"prod"}
#: other ops a loop body uses that compile: views, masks, diagonals, broadcasts' gradients
_GENERAL = ["arctan2", "broadcast_to", "clip", "diag_embed", "diagonal", "fmax", "fmin",
            "fmod", "hypot", "l2norm", "logaddexp", "logaddexp2", "mod", "mse", "pad", "roll",
            "split", "sum_to", "unstack"]


def _reductions_and_more() -> list:
    ops = fg.ops()
    names = [n for n, op in sorted(ops.items())
             if op.domain.kind == "reduction" and n not in _REDUCTIONS_NOT_COMPILED]
    return [(n, i) for n in names + _GENERAL for i, case in enumerate(ops[n].domain.cases)
            if not _empty_output(n, case)]


def _empty_output(name: str, case: tuple) -> bool:
    """Whether the case has an empty output (split's empty piece): not compiled."""
    shapes, params = case
    outs = getattr(fg.primitives, name)(*[np.ones(s) for s in shapes], **params)
    return any(np.size(o) == 0 for o in (outs if isinstance(outs, tuple) else (outs,)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,case", _reductions_and_more(),
                         ids=[f"{n}-{i}" for n, i in _reductions_and_more()])
def test_reductions_and_views_in_a_scan_body(name, case, dtype):
    """Each declared case of the op, in a scan body, compiles as a loop (a fallback warning
    is an error here) and equals eager, forward and with its gradient. Reductions over axes
    that are not adjacent, var, std and logsumexp are composed of reduction blocks; split,
    unstack and diagonal are views; a mask combined with ``&`` (clip's gradient) is a
    logical op."""
    op = fg.ops()[name]
    shapes, params = op.domain.cases[case]
    rng = np.random.default_rng(case)
    xs = [np.asarray(op.domain.spec(i).from_unit(rng.uniform(size=s)), dtype)
          for i, s in enumerate(shapes)]
    fn = getattr(fg.primitives, name)

    def f(w):
        def body(c, _):
            outs = fn(*[x * w for x in xs], **params)
            outs = outs if isinstance(outs, tuple) else (outs,)
            return c + sum(fg.sum(fg.sin(o)) for o in outs), None
        c, _ = fg.scan(body, np.zeros((), dtype), None, length=3)
        return c

    w = np.asarray(0.9, dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fg.jit(f)(w), f(w), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(w), fg.grad(f)(w), rtol=10 * rtol,
                               atol=10 * rtol)


@pytest.mark.parametrize("axis", [None, 0, 1, 2, (0, 2), (0, 1, 2), (1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_composed_reductions_against_numpy(axis, keepdims):
    """var (ddof 0 and 1), std and logsumexp under fg.jit against NumPy itself (SciPy's
    logsumexp form), with a non-finite slice for logsumexp: the maximum shift of 0 there."""
    x = np.random.default_rng(0).normal(size=(2, 3, 4)) * 3
    x[1, 2] = -np.inf
    finite = np.where(np.isfinite(x), x, 0.0)
    for fn, ref in [
            (lambda a: fg.var(a, axis=axis, keepdims=keepdims),
             np.var(finite, axis=axis, keepdims=keepdims)),
            (lambda a: fg.var(a, axis=axis, keepdims=keepdims, ddof=1),
             np.var(finite, axis=axis, keepdims=keepdims, ddof=1)),
            (lambda a: fg.std(a, axis=axis, keepdims=keepdims),
             np.std(finite, axis=axis, keepdims=keepdims))]:
        np.testing.assert_allclose(fg.jit(fn)(finite), ref, rtol=1e-13)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    ref = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    ref = ref if keepdims else np.squeeze(ref, axis=axis)
    got = fg.jit(lambda a: fg.logsumexp(a, axis=axis, keepdims=keepdims))(x)
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    assert got.shape == np.shape(ref)


#: (no subnormal inputs: the runner reads them as zeros, by design; see _flushed)
_EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 3.0, -7.25, 1e-300,
                   -1e-300, 1e300, -1e300, 0.1, 123456.789, -0.5, 0.5, 1.5, 1e20, -3.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_binary_math_rounding_and_replacements_are_numpys_bit_for_bit(dtype):
    """arctan2, hypot, fmod, mod, mod's gradient (``-np.floor_divide``), round at several
    ``decimals``, sinc and nan_to_num under fg.jit give NumPy's bits on every pair of edge
    values (NaN, infinities, signed zeros, halves, huge and tiny), not only near values;
    a subnormal result is a zero of its sign (the runner flushes them)."""
    with np.errstate(all="ignore"):
        v = _EDGES.astype(dtype)
        x, y = (a.ravel() for a in np.meshgrid(v, v))
        pairs = [(fg.jit(getattr(fg, name))(x, y), getattr(np, name)(x, y))
                 for name in ("arctan2", "hypot", "fmod", "mod")]
        pairs.append((fg.jit(fg.grad(lambda b: fg.sum(fg.mod(x, b))))(y), -np.floor_divide(x, y)))
        scaled = v * dtype(1.37)
        pairs += [(fg.jit(lambda a, d=d: fg.round(a, decimals=d))(scaled), np.round(scaled, d))
                  for d in (-2, -1, 0, 1, 3)]
        pairs.append((fg.jit(fg.sinc)(v), np.sinc(v)))
        for kw in ({}, {"nan": 1.5, "posinf": 9.0, "neginf": -1e40}):
            pairs.append((fg.jit(lambda a, kw=kw: fg.nan_to_num(a, **kw))(v),
                          np.nan_to_num(v, **kw)))
    for i, (got, want) in enumerate(pairs):
        assert got.dtype == want.dtype, i
        want = _flushed(want)
        assert np.array_equal(got, want, equal_nan=True), i
        numbers = ~np.isnan(want)
        assert np.array_equal(np.signbit(got[numbers]), np.signbit(want[numbers])), i


def _flushed(a: np.ndarray) -> np.ndarray:
    """``a`` with its subnormal numbers made zeros of their sign, as fg.jit's runner makes
    them (flush-to-zero, as XLA's CPU backend does)."""
    tiny = np.finfo(a.dtype).tiny
    return np.where((a != 0) & (np.abs(a) < tiny), np.copysign(0.0, a).astype(a.dtype), a)


def test_parts_of_a_real_array_in_a_loop_body():
    xs = np.random.default_rng(3).normal(size=(4, 3))

    def f(w):
        def body(c, x):
            z = x * w
            return c + fg.real(z) * fg.conj(z) + fg.imag(z) + fg.sinc(z), None
        c, _ = fg.scan(body, np.zeros(3), xs)
        return fg.sum(c)

    w = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(fg.jit(f)(w), f(w), rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(w), fg.grad(f)(w), rtol=1e-10)


@pytest.mark.parametrize("order", ["c@w", "w@c", "x@w"])
def test_a_product_of_float32_and_float64_in_a_loop_body(order):
    """``h @ W`` with a float64 carry and float32 weights multiplies in float64, as NumPy
    does (the float32 operand cast first): it had no compiled form."""
    rng = np.random.default_rng(4)
    ws = rng.normal(size=(4, 3, 3)).astype(np.float32)
    h0 = rng.normal(size=3)

    def step(c, w):
        prod = {"c@w": lambda: c @ w, "w@c": lambda: w @ c,
                "x@w": lambda: c.astype(np.float32)[None] @ w.astype(np.float64)}[order]()
        return fg.tanh(prod.reshape(3)), None

    def f(h, ws):
        return fg.sum(fg.scan(step, h, ws)[0])

    assert fg.jit(f)(h0, ws).dtype == np.float64
    np.testing.assert_allclose(fg.jit(f)(h0, ws), f(h0, ws), rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.grad(f, argnums=(0, 1)))(h0, ws)[1],
                               fg.grad(f, argnums=(0, 1))(h0, ws)[1], rtol=1e-6)
