"""A loop body that calls a transformation itself (``fg.grad`` inside ``fg.scan``'s body,
a scan inside the function that ``fg.grad`` differentiates there), eagerly and under fg.jit.

fg.grad makes its own leaves for the arguments it differentiates; a loop step must count them
as the step's own, not as Tensors it reads from outside. Before, a body calling fg.grad on a
constant returned a result that required grad (a graph hanging from a leaf made inside one
step), the backward refused with "a step reads a Tensor ... that the body did not read when it
was traced", fg.jit could not trace such a function, and the grad of one failed to compile
(the VJP loop read a value its residual rewrite had renamed). Checked against the same loops
unrolled in Python and against central differences; the suite turns any fallback warning into
an error.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg

XS = np.linspace(0.1, 1.0, 12).reshape(4, 3)
W = np.array([0.5, -0.3, 0.8])


def inner_scan(w, x):
    c, _ = fg.scan(lambda c, xi: (fg.tanh(c * w + xi), None), x, XS)
    return fg.sum(c)


def inner_unrolled(w, x):
    c = x
    for xi in XS:
        c = fg.tanh(c * w + xi)
    return fg.sum(c)


def outer_scan(w):
    def body(c, x):
        return c + fg.grad(inner_scan)(w, x) * x, None
    c, _ = fg.scan(body, np.zeros(3), XS)
    return fg.sum(c * c)


def outer_unrolled(w):
    c = np.zeros(3)
    for x in XS:
        c = c + fg.grad(inner_unrolled)(w, x) * x
    return fg.sum(c * c)


def outer_fori(w):
    return fg.sum(fg.fori_loop(0, 3, lambda i, c: c + 0.1 * fg.grad(inner_scan)(c, W), w))


def outer_fori_unrolled(w):
    c = w
    for _ in range(3):
        c = c + 0.1 * fg.grad(inner_unrolled)(c, W)
    return fg.sum(c)


def central(f, w, eps=1e-6):
    return np.array([(float(f(w + eps * e)) - float(f(w - eps * e))) / (2 * eps)
                     for e in np.eye(len(w))])


def test_grad_inside_a_body_on_constants_gives_a_constant():
    c, _ = fg.scan(lambda c, x: (c + fg.grad(inner_unrolled)(W, x), None), np.ones(3), XS)
    assert isinstance(c, np.ndarray)  # as a plain scan's: nothing outside requires grad
    ref = np.ones(3) + sum(fg.grad(inner_unrolled)(W, x) for x in XS)
    np.testing.assert_allclose(c, ref, rtol=1e-12)


def test_backward_through_a_body_calling_grad():
    init = fg.Tensor(np.ones(3), requires_grad=True)
    c, _ = fg.scan(lambda c, x: (c * fg.grad(inner_unrolled)(W, x), None), init, XS)
    fg.sum(c).backward()
    prod = np.prod([fg.grad(inner_unrolled)(W, x) for x in XS], axis=0)
    np.testing.assert_allclose(init.grad, prod, rtol=1e-12)


@pytest.mark.parametrize("outer, unrolled", [(outer_scan, outer_unrolled),
                                             (outer_fori, outer_fori_unrolled)],
                         ids=["scan", "fori_loop"])
def test_values_and_gradients_eager_and_jit(outer, unrolled):
    want = float(unrolled(W))
    want_g = fg.grad(unrolled)(W)
    np.testing.assert_allclose(central(unrolled, W), want_g, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(float(outer(W)), want, rtol=1e-12)
    np.testing.assert_allclose(float(fg.jit(outer)(W)), want, rtol=1e-12)
    np.testing.assert_allclose(fg.grad(outer)(W), want_g, rtol=1e-10)
    np.testing.assert_allclose(fg.jit(fg.grad(outer))(W), want_g, rtol=1e-10)


def test_second_order_through_nested_loops_under_jit():
    def g2(f):
        return lambda w: fg.sum(fg.grad(f)(w) ** 2)
    want = fg.grad(g2(outer_unrolled))(W)
    np.testing.assert_allclose(fg.grad(g2(outer_scan))(W), want, rtol=1e-9)
    np.testing.assert_allclose(fg.jit(fg.grad(g2(outer_scan)))(W), want, rtol=1e-9)


def _f_in(w, x):
    return fg.sum(fg.sin(w * x) * w)


#: scan bodies that call a transformation, each given the closed-over parameter ``w``
BODIES = {
    "jvp": lambda w: lambda c, x: (c + fg.jvp(lambda v: _f_in(v, x), (w,), (x,))[1] * x, None),
    "vjp": lambda w: lambda c, x: (c + fg.vjp(lambda v: fg.sin(v * x), w)[1](c)[0], None),
    "hessian": lambda w: lambda c, x: (c + fg.hessian(_f_in)(w, x) @ x, None),
    "vmap of grad": lambda w: lambda c, x: (
        c + fg.sum(fg.vmap(fg.grad(_f_in), in_axes=(None, 0))(w, XS), axis=0) * x, None),
    "grad of the carry": lambda w: lambda c, x: (c + fg.grad(_f_in)(c * w, x), None),
    "checkpoint of grad": lambda w: lambda c, x: (
        c + fg.checkpoint(lambda c: fg.grad(_f_in)(c, x) * w)(c), None),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_transformations_inside_a_scan_body(name):
    def outer(w, loop):
        body, c = BODIES[name](w), np.full(3, 0.1)
        if loop:
            return fg.sum(fg.scan(body, c, XS)[0] ** 2)
        for x in XS:
            c, _ = body(c, x)
        return fg.sum(c ** 2)

    scanned = lambda w: outer(w, True)  # noqa: E731
    want, want_g = float(outer(W, False)), fg.grad(lambda w: outer(w, False))(W)
    np.testing.assert_allclose(float(scanned(W)), want, rtol=1e-10)
    np.testing.assert_allclose(float(fg.jit(scanned)(W)), want, rtol=1e-10)
    np.testing.assert_allclose(fg.grad(scanned)(W), want_g, rtol=1e-8)
    np.testing.assert_allclose(fg.jit(fg.grad(scanned))(W), want_g, rtol=1e-8)
