"""Proof that the checker bites: deliberately wrong ops are rejected by check_grads and by the
generated property tests (the very test functions of tests/test_properties.py).

Each wrong op is registered inside its test with ``temporary_ops()``, so it never reaches the
registry that tests/test_properties.py is generated from.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, settings
import test_properties as generated  # tests/ is on sys.path under pytest's default import mode

import fungrad as fg
from fungrad.domains import Domain, Real
from fungrad.registry import unwrap
from fungrad.testing import check_grads, temporary_ops


@pytest.fixture(autouse=True)
def _no_shrinking():
    """The wrong ops fail at once; minimising each failure would only cost time."""
    settings.register_profile("before_bites", parent=settings.default)
    settings.register_profile("bites", parent=settings.default,
                              phases=(Phase.explicit, Phase.reuse, Phase.generate))
    settings.load_profile("bites")
    yield
    settings.load_profile("before_bites")


def rejects(test, *args) -> str:
    """Run ``test`` and return the message of the AssertionError(s) it raises; fail if none."""
    try:
        test(*args)
    except AssertionError as e:
        return str(e)
    except Exception as group:  # an ExceptionGroup: Hypothesis found several distinct failures
        leaves = getattr(group, "exceptions", None)
        if not leaves or not all(isinstance(e, AssertionError) for e in leaves):
            raise
        return "\n".join(str(e) for e in leaves)
    pytest.fail(f"{getattr(test, '__name__', test)} accepted a wrong op")


def passes(test, *args) -> None:
    test(*args)


# -- the wrong ops -------------------------------------------------------------------------------


def wrong_sign():
    return fg.defop("bite_wrong_sign", lambda x: np.sin(x),
                    lambda g, out, x: (-g * fg.cos(x),), replace=True)


def off_by_factor():
    return fg.defop("bite_off_by_factor", lambda x: x ** 3,
                    lambda g, out, x: (2 * g * x * x,), replace=True)  # should be 3


def outside_tape():
    # right value, but computed on the raw array: under create_graph nothing is recorded, so
    # the second derivative loses the -sin(x) term
    return fg.defop("bite_outside_tape", lambda x: np.sin(x),
                    lambda g, out, x: (g * np.cos(unwrap(x)),), replace=True)


def _first_slice_to(gx, shape):
    """The bug: collapse broadcast axes by taking their first entry instead of summing. The
    result already has the input's shape, so the engine has nothing to sum."""
    full = tuple(np.shape(unwrap(gx)))
    lead = len(full) - len(shape)
    index = (0,) * lead + tuple(slice(0, 1) if n == 1 and m != 1 else slice(None)
                                for n, m in zip(shape, full[lead:]))
    return gx[index]


def missing_reduction():
    return fg.defop("bite_missing_reduction", lambda x, y: x * y, (
        lambda g, out, x, y: _first_slice_to(g * y, np.shape(unwrap(x))),
        lambda g, out, x, y: _first_slice_to(g * x, np.shape(unwrap(y))),
    ), replace=True)


def wrong_axis():
    # y of shape (3, 1) or (1, 3) scales a square x; the VJP of y sums, but over the wrong axis
    def dy(g, out, x, y):
        y_shape = np.shape(unwrap(y))
        axis = 0 if y_shape[1] == 1 else 1  # should be 1 if y_shape[1] == 1
        return fg.reshape(fg.sum(g * x, axis=axis), shape=y_shape)

    return fg.defop("bite_wrong_axis", lambda x, y: x * y, (
        lambda g, out, x, y: g * y, dy,
    ), Domain((Real(), Real()), [((3, 3), (3, 1)), ((3, 3), (1, 3))]), replace=True)


def upcasts():
    return fg.defop("bite_upcasts", lambda x: np.asarray(x, dtype=np.float64) * 2,
                    lambda g, out, x: (2 * g,), replace=True)


def mutates_cotangent():
    def vjp(g, out, x):
        if isinstance(g, np.ndarray):
            g *= 2  # in place: the caller's cotangent changes
            return (g,)
        return (g * 2,)

    return fg.defop("bite_mutates_cotangent", lambda x: 2 * x, vjp, replace=True)


X = np.array([0.3, -1.2, 0.8])


# -- check_grads rejects each one ----------------------------------------------------------------


@pytest.mark.parametrize("make, mode", [
    (wrong_sign, "rev"), (wrong_sign, "fwd"), (off_by_factor, "rev"), (off_by_factor, "fwd"),
])
def test_check_grads_rejects_wrong_first_derivatives(make, mode):
    with temporary_ops():
        op = make()
        msg = rejects(lambda: check_grads(op, X, modes=(mode,)))
    assert f"order 1 (checking op '{op.name}')" in msg and "argument 0 ('x')" in msg
    assert ("reverse mode" if mode == "rev" else "forward mode") in msg
    assert "analytic" in msg and "numeric" in msg


def test_check_grads_rejects_a_vjp_computed_outside_the_tape_at_second_order():
    with temporary_ops():
        op = outside_tape()
        check_grads(op, X, order=1)  # first order is right
        for modes in [("rev",), ("fwd",), ("rev", "fwd")]:
            msg = rejects(lambda m=modes: check_grads(op, X, order=2, modes=m))
            assert "order 2" in msg and f"op '{op.name}'" in msg


def test_check_grads_rejects_a_missing_reduction_over_a_broadcast_axis():
    with temporary_ops():
        op = missing_reduction()
        x, y = np.linspace(-1, 1, 12).reshape(3, 4), np.array([[0.5], [-1.5], [2.0]])
        check_grads(op, x, x + 1)  # same shapes: nothing to reduce, and it is right
        msg = rejects(lambda: check_grads(op, x, y))
        assert "argument 1 ('y')" in msg and "worst element" in msg


def test_check_grads_rejects_a_sum_over_the_wrong_axis():
    with temporary_ops():
        op = wrong_axis()
        x = np.arange(9.0).reshape(3, 3) / 4
        msg = rejects(lambda: check_grads(op, x, np.array([[1.0], [2.0], [3.0]])))
        assert "argument 1 ('y')" in msg


# -- and so do the generated property tests -----------------------------------------------------


@pytest.mark.parametrize("make, test", [
    (wrong_sign, generated.test_vjp_matches_finite_differences),
    (wrong_sign, generated.test_second_order_matches_finite_differences),
    (off_by_factor, generated.test_vjp_matches_finite_differences),
    (outside_tape, generated.test_second_order_matches_finite_differences),
    (missing_reduction, generated.test_vjp_matches_finite_differences),
    (missing_reduction, generated.test_broadcasting_agrees),
    (wrong_axis, generated.test_vjp_matches_finite_differences),
    (upcasts, generated.test_float32_preserved),
    (mutates_cotangent, generated.test_inputs_not_mutated),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_generated_tests_reject(make, test):
    with temporary_ops():
        op = make()
        rejects(test, op)


def test_a_vjp_outside_the_tape_passes_first_order_tests():
    """The first-order tests are right to accept it: only the second-order one can tell."""
    with temporary_ops():
        op = outside_tape()
        passes(generated.test_vjp_matches_finite_differences, op)
        passes(generated.test_jvp_matches_vjp, op)


def test_the_generated_tests_accept_the_same_ops_written_correctly():
    with temporary_ops():
        ops = [
            fg.defop("bite_right_sin", lambda x: np.sin(x), lambda g, out, x: (g * fg.cos(x),)),
            fg.defop("bite_right_mul", lambda x, y: x * y,
                     (lambda g, out, x, y: g * y, lambda g, out, x, y: g * x)),
        ]
        for op in ops:
            for test in [generated.test_vjp_matches_finite_differences,
                         generated.test_second_order_matches_finite_differences,
                         generated.test_float32_preserved, generated.test_inputs_not_mutated]:
                passes(test, op)
        passes(generated.test_broadcasting_agrees, ops[1])


def test_meta_test_rejects_a_builtin_op_without_a_domain():
    def forward(x):
        return x * 1.0

    forward.__module__ = "fungrad.primitives.pretend"  # what makes an op built-in
    with temporary_ops():
        op = fg.defop("bite_no_domain", forward, lambda g, out, x: (g,))
        assert op.builtin
        assert "has no domain" in rejects(generated.test_builtin_op_declares_its_domain, op)


def test_kernel_twin_check_rejects_a_kernel_that_disagrees_with_its_twin(monkeypatch):
    from fungrad.kernels import scatter

    real = scatter.scatter_add_numpy
    monkeypatch.setattr(scatter, "scatter_add_numpy",
                        lambda n_rows, indices, values: 2 * real(n_rows, indices, values))
    msg = rejects(generated.test_kernels_match_numpy_twins, fg.ops()["index_select"])
    assert "scatter_add" in msg
