"""Ops with several outputs (``defop(..., n_outputs=k)``): calling, recording, backward through
any subset of the outputs, higher order, and the registry-driven property suite."""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.domains import Domain, Real
from fungrad.errors import GraphError
from fungrad.testing import check_grads, properties, temporary_ops


def _polar_vjp(g, out, x, y):
    """(r, theta) = (hypot(x, y), arctan2(y, x)); skip the terms of outputs with no cotangent."""
    gr, gt = g
    r = out[0]
    dx = dy = 0.0
    if gr is not None:
        dx, dy = dx + gr * x / r, dy + gr * y / r
    if gt is not None:
        dx, dy = dx - gt * y / (r * r), dy + gt * x / (r * r)
    return dx, dy


def _polar():
    return fg.defop(
        "test_polar", lambda x, y: (np.hypot(x, y), np.arctan2(y, x)), _polar_vjp,
        Domain((Real(0.5, 2.0), Real(0.5, 2.0)), [((3,), (3,)), ((2, 2), (2,))],
               kind="elementwise"),
        n_outputs=2, doc="Polar coordinates (r, theta) of the point (x, y).")


def test_a_multi_output_op_returns_a_tuple_recorded_as_one_node():
    with temporary_ops():
        polar = _polar()
        x = Tensor(np.array([3.0]), autograd=True)
        r, theta = polar(x, np.array([4.0]))
        assert r.creation_op == theta.creation_op == "test_polar"
        assert r.creators == theta.creators == [x]
        np.testing.assert_allclose([r.data[0], theta.data[0]], [5.0, np.arctan2(4.0, 3.0)])
        plain = polar(np.array([3.0]), np.array([4.0]))
        assert isinstance(plain, tuple) and isinstance(plain[0], np.ndarray)


@pytest.mark.parametrize("use", ["r", "theta", "both"])
def test_backward_through_any_subset_of_the_outputs(use):
    with temporary_ops():
        polar = _polar()
        x = Tensor(np.array([3.0]), autograd=True)
        y = Tensor(np.array([4.0]), autograd=True)
        r, theta = polar(x, y)
        loss = {"r": r, "theta": theta, "both": r * theta}[use].sum()
        loss.backward()
        f = {"r": lambda a, b: np.hypot(a, b), "theta": lambda a, b: np.arctan2(b, a),
             "both": lambda a, b: np.hypot(a, b) * np.arctan2(b, a)}[use]
        h = 1e-6
        np.testing.assert_allclose(x.grad.data, (f(3 + h, 4.0) - f(3 - h, 4.0)) / (2 * h),
                                   rtol=1e-6)
        np.testing.assert_allclose(y.grad.data, (f(3.0, 4 + h) - f(3.0, 4 - h)) / (2 * h),
                                   rtol=1e-6)


def test_both_outputs_feeding_one_op_accumulate_into_one_vjp_call():
    calls = []

    def vjp(g, out, x):
        calls.append(g)
        return (g[0] + 2.0 * g[1],)

    with temporary_ops():
        two = fg.defop("test_two", lambda x: (x * 1.0, x * 2.0), vjp, n_outputs=2)
        x = Tensor(np.array([1.0, 2.0]), autograd=True)
        a, b = two(x)
        (a * b).sum().backward()
        assert len(calls) == 1
        np.testing.assert_allclose(x.grad.data, 4 * x.data)


def test_higher_order_through_a_multi_output_op():
    with temporary_ops():
        polar = _polar()
        check_grads(lambda x, y: polar(x, y), np.array([1.0, 2.0]), np.array([0.7, 1.5]),
                    order=2)


def test_the_property_suite_checks_multi_output_ops_view_by_view():
    with temporary_ops():
        polar = _polar()
        properties.check_op(polar, max_examples=4)


def test_the_property_suite_catches_a_wrong_term_for_one_output():
    def wrong(g, out, x, y):
        dx, dy = _polar_vjp(g, out, x, y)
        return (dx * 1.5 if g[1] is not None else dx), dy  # theta's x-term scaled

    with temporary_ops():
        bad = fg.defop("test_bad_polar", lambda x, y: (np.hypot(x, y), np.arctan2(y, x)),
                       wrong, Domain((Real(0.5, 2.0), Real(0.5, 2.0)), [((3,), (3,))]),
                       n_outputs=2)
        with pytest.raises(AssertionError):
            properties.check_op(bad, properties=["vjp_matches_finite_differences"],
                                max_examples=10)


def test_released_multi_output_nodes_refuse_a_second_backward():
    with temporary_ops():
        polar = _polar()
        x = Tensor(np.array([3.0]), autograd=True)
        r, theta = polar(x, np.array([4.0]))
        loss = (r + theta).sum()
        loss.backward()
        with pytest.raises(GraphError, match="second time"):
            (theta * 2.0).sum().backward()


def test_a_forward_that_returns_the_wrong_number_of_outputs_is_refused():
    with temporary_ops():
        op = fg.defop("test_wrong_count", lambda x: (x,), lambda g, out, x: (g[0],),
                      n_outputs=2)
        with pytest.raises(TypeError, match="tuple of 2 arrays"):
            op(Tensor(np.ones(2)))
