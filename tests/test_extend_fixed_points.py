"""fungrad.extend (autograd's primitive/defvjp/defjvp...) and fungrad.misc.fixed_points, as an
autograd user would use them, under grad, jvp, higher order, vmap and jit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad.extend import (
    Node, def_linear, defjvp, defjvp_argnum, defvjp, defvjp_argnum, notrace_primitive, primitive,
    trace,
)
from fungrad.misc.fixed_points import fixed_point
from fungrad.testing import check_grads

_x = np.random.default_rng(0).normal(size=4)


@primitive
def _logsumexp(x):
    """Numerically stable log(sum(exp(x))) (autograd's define_gradient example)."""
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


defvjp(_logsumexp, lambda ans, x: lambda g: g * fnp.exp(x - ans))


def test_primitive_with_vjp_any_order_both_modes():
    assert isinstance(_logsumexp(_x), np.floating) or np.ndim(_logsumexp(_x)) == 0
    check_grads(lambda y: _logsumexp(y ** 2), _x, order=2, modes=("rev", "fwd"))


def test_primitive_under_vmap_warns_once_and_loops():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fg.vmap(_logsumexp)(np.stack([_x, 2 * _x]))
    np.testing.assert_allclose(out, [_logsumexp(_x), _logsumexp(2 * _x)])
    assert any("no batching rule" in str(w.message) for w in caught)


def test_primitive_under_jit():
    np.testing.assert_allclose(fg.jit(lambda y: 2 * _logsumexp(y))(_x), 2 * _logsumexp(_x))
    np.testing.assert_allclose(fg.jit(fg.grad(_logsumexp))(_x), fg.grad(_logsumexp)(_x))


def test_per_argument_rules_none_and_errors():
    f = primitive(lambda x, y: x * np.sin(y))
    defvjp(f, lambda ans, x, y: lambda g: g * fnp.sin(y), None)
    assert float(fg.grad(f, argnums=1)(2.0, 0.3)) == 0.0  # None: declared zero
    g = primitive(lambda x, y: x * y)
    defvjp(g, lambda ans, x, y: lambda g_: g_ * y)
    with pytest.raises(NotImplementedError, match="argument 1"):
        fg.grad(g, argnums=1)(2.0, 3.0)
    with pytest.raises(TypeError, match="not a primitive"):
        defvjp(lambda x: x, None)


def test_vjp_argnum_and_keyword_arguments():
    scale = primitive(lambda x, factor=2.0: factor * x)
    defvjp_argnum(scale, lambda argnum, ans, args, kwargs: lambda g: g * kwargs.get(
        "factor", 2.0))
    assert float(fg.grad(lambda x: scale(x, factor=3.0))(1.0)) == 3.0


def test_jvp_rules_are_transposed_for_reverse_mode():
    sin = primitive(np.sin)
    defjvp(sin, lambda g, ans, x: g * fnp.cos(x))
    check_grads(sin, _x, order=2, modes=("rev", "fwd"))
    cube = primitive(lambda x: x ** 3)
    defjvp_argnum(cube, lambda argnum, g, ans, args, kwargs: 3 * g * args[0] ** 2)
    check_grads(cube, _x, order=2)


def test_def_linear():
    dot = primitive(lambda a, b: fnp.dot(a, b))
    def_linear(dot)
    check_grads(dot, np.ones((3, 4)), _x, order=2, modes=("rev", "fwd"))


def test_notrace_primitive_reads_values():
    argmax = notrace_primitive(np.argmax)
    t = fg.Tensor(_x, autograd=True)
    assert int(argmax(t)) == int(np.argmax(_x))


def _dist(x, y):
    return float(np.max(np.abs(np.asarray(x) - np.asarray(y))))


def test_fixed_point_value_and_gradients():
    newton_sqrt = lambda a: lambda x: 0.5 * (x + a / x)  # noqa: E731
    np.testing.assert_allclose(fixed_point(newton_sqrt, 2.0, 1.0, _dist, 1e-14), np.sqrt(2.0))
    check_grads(lambda a: fixed_point(newton_sqrt, a, 1.0, _dist, 1e-14), np.array(3.0),
                order=2, modes=("rev", "fwd"))
    pair = lambda p: lambda x: 0.5 * fnp.cos(x * p[0]) + 0.2 * p[1]  # noqa: E731
    check_grads(lambda a, b: fixed_point(pair, (a, b), np.zeros(2), _dist, 1e-15),
                np.array(0.4), np.array([0.3, -0.2]), order=2)


def test_fixed_point_reports_divergence():
    with pytest.raises(fg.errors.FungradError, match="no convergence"):
        fixed_point(lambda a: lambda x: 2.0 * x + a, 1.0, 1.0, _dist, 1e-12)


class _Printed(Node):
    """autograd's print_trace example's node: each call as ``name = fun(args) = value``."""

    def __init__(self, value, fun, args, kwargs, parent_argnums, parents):
        self.lines = parents[0].lines
        self.name = f"v{len(self.lines)}"
        shown = [f"{a:g}" if np.ndim(a) == 0 else "arr" for a in args]
        for i, parent in zip(parent_argnums, parents):
            shown[i] = parent.name
        self.lines.append(f"{self.name} = {fun.__name__}({','.join(shown)}) = {float(value):.6f}")
        self.fun, self.parents, self.kwargs = fun, dict(zip(parent_argnums, parents)), kwargs

    def initialize_root(self, lines):
        self.lines, self.name = lines, "x"


def test_trace_replays_the_calls_in_order_into_the_users_nodes():
    lines: list[str] = []
    value, end = trace(_Printed.new_root(lines), lambda x: fnp.sin(x + x) / 2, 1.23)
    assert lines == ["v0 = add(x,x) = 2.460000", f"v1 = sin(v0) = {np.sin(2.46):.6f}",
                     f"v2 = divide(v1,2) = {np.sin(2.46) / 2:.6f}"]
    assert value == pytest.approx(np.sin(2.46) / 2)
    assert end.fun.__name__ == "divide" and end.parents[0].parents[0].parents[0].name == "x"
    assert end.fun(np.array(3.0), 2) == 1.5  # the op, callable as a function


def test_trace_through_grad_records_the_backward_and_skips_constants():
    lines: list[str] = []
    closed = fg.Tensor(np.array(5.0), requires_grad=True)  # recorded, but not from x
    c = closed * 2
    value, end = trace(_Printed.new_root(lines), fg.grad(lambda x: fnp.sin(x) * c), 0.5)
    assert value == pytest.approx(np.cos(0.5) * 10.0)
    # the backward's calls that reach the gradient; c = closed * 2 is a value, not a node
    assert lines == ["v0 = identity(x) = 0.500000", f"v1 = cos(v0) = {np.cos(0.5):.6f}",
                     f"v2 = multiply(10,v1) = {10 * np.cos(0.5):.6f}"]
    assert end.name == "v2"
    # a function of something else than x makes no node
    _, none = trace(_Printed.new_root([]), lambda x: c * 3, 0.5)
    assert none is None
