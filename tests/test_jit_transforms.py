"""The transformations inside fg.jit (issue 18, item 6): ``grad`` of ``grad``, ``hessian``,
``jacobian`` (reverse and forward), ``jvp``, ``vjp`` and ``hvp`` of functions with matmul,
indexing (0-d values, slices, reversals, fancy indices) and broadcasting, equal eager within
1e-12 (float64), three calls each, each case in a sandbox child.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from jit_fuzz.isolate import isolated

A = np.random.default_rng(1).standard_normal((4, 3))
B = np.random.default_rng(2).standard_normal((3, 3))


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


INDEXING = True  # the functions below index (the case functions set it per variant)


def scalar_fn(x):
    """Matmul and broadcasting; with INDEXING, a 0-d value by indexing, a reversal, a fancy
    index and a slice too."""
    h = fg.tanh(A @ x)                     # (4,)
    if not INDEXING:
        return fg.sum(h * fg.sum(x)) + fg.sum(fg.sin(x) * x) + fg.mean(fg.square(h))
    return fg.sum(h * x[0]) + fg.sum(fg.sin(x[::-1]) * x[[0, 2, 2]]) + fg.mean(h[1:] ** 2)


def matrix_fn(w):
    """A function of a matrix: (3, 3) -> scalar, with .T; with INDEXING a row and an entry."""
    z = fg.tanh(w @ B + w.T)
    if not INDEXING:
        return fg.sum(z * fg.sum(w, axis=0)) + fg.sum(fg.sum(z, axis=1) * fg.mean(w))
    return fg.sum(z * w[0]) + fg.sum(z[:, 1] * w[-1, -1])


def vector_fn(x):
    """(3,) -> (4,): for jacobians."""
    if not INDEXING:
        return fg.tanh(A @ x) * fg.sum(x * x) + fg.mean(x)
    return fg.tanh(A @ x) * x[1] + fg.sum(x[::-1] * x)


def _same(got, want, what):
    g = [np.asarray(getattr(v, "data", v)) for v in _flat(got)]
    w = [np.asarray(getattr(v, "data", v)) for v in _flat(want)]
    assert len(g) == len(w), f"{what}: {len(g)} results under fg.jit, {len(w)} eagerly"
    for i, (a, b) in enumerate(zip(g, w)):
        assert a.shape == b.shape, f"{what} [{i}]: shape {a.shape} under jit, {b.shape} eager"
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(b).max()),
                                   err_msg=f"{what} [{i}]")


def _flat(x):
    if isinstance(x, (tuple, list)):
        return [y for v in x for y in _flat(v)]
    return [x]


def _agree(fn, *args):
    jitted = fg.jit(fn)
    for k in range(3):
        moved = [np.asarray(a * (1 + 0.01 * k)) for a in args]
        _same(jitted(*moved), fn(*moved), f"call {k}")


def _grad_of_grad():
    _agree(fg.grad(lambda s: fg.grad(lambda t: fg.sum(fg.sin(t * A) * t))(s) * s),
           np.array(0.3))
    _agree(fg.grad(lambda x: fg.sum(fg.grad(scalar_fn)(x) ** 2)), rand(3))


def _hessian():
    _agree(fg.hessian(scalar_fn), rand(3))
    _agree(fg.hessian(matrix_fn), rand(3, 3, seed=1))


def _jacobian():
    _agree(fg.jacobian(vector_fn), rand(3))
    _agree(fg.jacrev(vector_fn), rand(3, seed=1))
    _agree(fg.jacfwd(vector_fn), rand(3, seed=2))


def _jvp():
    _agree(lambda x, v: fg.jvp(vector_fn, (x,), (v,)), rand(3), rand(3, seed=1))
    _agree(lambda w, v: fg.jvp(matrix_fn, (w,), (v,)), rand(3, 3), rand(3, 3, seed=1))


def _vjp():
    def pull(x, g):
        out, back = fg.vjp(vector_fn, x)
        return out, back(g)
    _agree(pull, rand(3), rand(4, seed=1))

    def pull2(w, x):
        out, back = fg.vjp(lambda w, x: (w @ x) * (x[0] if INDEXING else fg.sum(x))
                           + (w[::-1, 0] if INDEXING else fg.mean(w, axis=1)), w, x)
        return out, back(np.ones(3))
    _agree(pull2, rand(3, 3), rand(3, seed=2))


def _hvp():
    _agree(fg.hvp(scalar_fn), rand(3), rand(3, seed=1))
    _agree(fg.hvp(matrix_fn), rand(3, 3), rand(3, 3, seed=1))


def _value_and_grad_with_transforms_inside_a_step():
    """A step that uses a hessian-vector product and a jacobian beside its gradient."""
    def step(w, x, v):
        corner = (lambda w: w[0, 0]) if INDEXING else fg.mean
        loss, g = fg.value_and_grad(lambda w: matrix_fn(w) + fg.sum(vector_fn(x) * corner(w)))(w)
        return loss, w - 0.1 * g, fg.hvp(matrix_fn)(w, v), fg.jacobian(vector_fn)(x)
    _agree(step, rand(3, 3), rand(3, seed=1), rand(3, 3, seed=2))


CASES = ["grad_of_grad", "hessian", "jacobian", "jvp", "vjp", "hvp",
         "value_and_grad_with_transforms_inside_a_step"]


def _variant(name: str, indexing: bool):
    def run():
        global INDEXING
        INDEXING = indexing
        globals()[f"_{name}"]()
    run.__name__ = run.__qualname__ = f"_{name}_{'indexing' if indexing else 'matmul_broadcast'}"
    globals()[run.__name__] = run  # module level: the sandbox child imports it by name
    return run


VARIANTS = {f.__name__.lstrip("_"): f for name in CASES for f in
            (_variant(name, False), _variant(name, True))}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_transformation_inside_jit(name):
    isolated(VARIANTS[name], timeout=180.0)
