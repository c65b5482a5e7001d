"""Every elementwise op of the registry compiles inside a loop body under fg.jit.

A loop body is compiled whole or not at all: one step without a compiled form sends the loop
to Python (with a warning, an error in this suite). The unary functions beyond the common
activations (tan, arctan, log1p, expm1, cbrt, floor, rint...), ``integer_pow`` (which every
gradient of ``x ** 2`` records) and reversed slicing (``c[::-1]``) had no compiled form. Each
case is drawn from the registry (an op's own domain gives its inputs), run as a scan body and
as a top-level program, forward and with its gradient, against eager.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad.domains import Real

#: ops with no compiled form by design: complex parts, and those whose result is not a float
_NOT_COMPILED = {"angle", "conj", "imag", "real", "real_if_close", "nan_to_num", "round",
                 "sinc", "deg2rad", "rad2deg"}


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
