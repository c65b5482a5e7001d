"""Every registered op, checked against finite differences in float64, from the registry.

The parameters are read from ``fg.ops()`` when the module is collected, so an op registered
with ``fg.defop`` before collection is checked with no new test code.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad.testing import check_grads

CASES = [
    pytest.param(op, k, id=f"{name}-case{k}")
    for name, op in sorted(fg.ops().items())
    for k in range(len(op.domain.cases))
]


def _op_function(op, args, params):
    """f(*float inputs) = op(...) with the non-float inputs (indices, masks) held fixed."""
    floats = op.domain.float_args(len(args))

    def f(*xs):
        full = list(args)
        for i, x in zip(floats, xs):
            full[i] = x
        return op(*full, **params) if op.n_inputs is not None else op(full, **params)

    return f, [args[i] for i in floats]


@pytest.mark.parametrize("op, case", CASES)
def test_vjp_matches_finite_differences(op, case):
    rng = np.random.default_rng(1234 + case)
    args, params = op.domain.draw(rng, op.domain.cases[case])
    f, floats = _op_function(op, args, params)
    order = 2 if op.twice_differentiable else 1
    check_grads(f, *floats, order=order, modes=("rev", "fwd"), rng=rng)


@pytest.mark.parametrize("op, case", CASES)
def test_forward_matches_on_tensors_and_arrays(op, case):
    rng = np.random.default_rng(99 + case)
    args, params = op.domain.draw(rng, op.domain.cases[case])
    f, floats = _op_function(op, args, params)
    plain = f(*floats)
    traced = f(*[fg.Tensor(x, autograd=True) for x in floats])
    assert isinstance(traced, fg.Tensor)
    np.testing.assert_allclose(traced.data, plain, rtol=1e-12, atol=1e-12)


def test_every_builtin_op_declares_its_domain():
    for name, op in fg.ops().items():
        if op.builtin:
            assert op.domain.cases, f"{name} has no test cases"
