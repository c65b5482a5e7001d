"""Loops written once, run by JAX and by fungrad: values, gradients, jvps, Hessians, vmap, jit.

Each program below is written against a namespace ``L`` (``L.np`` is ``jax.numpy`` or
``fungrad.numpy``; ``L.scan``, ``L.fori``, ``L.while_`` are ``jax.lax``'s loops or fungrad's)
in JAX's idioms — pytrees of carries and ys, ``reverse``, ``xs=None`` with ``length``,
``fori_loop`` indexing a closed-over array with ``i``, nested scans, ``checkpoint`` in a body,
a matrix carry, an empty scan, ``fori_loop`` with a bound that is a jit argument — and both
libraries' answers are compared in float64 (JAX with x64). Reverse mode through
``while_loop`` (and through ``fori_loop`` with a traced bound), which JAX refuses, is compared
with JAX's forward-mode Jacobian.

JAX is a benchmark extra, not a test dependency: without it this module is skipped
(``pip install -e .[bench]`` installs it).
"""

from __future__ import annotations

import types

import numpy as onp
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import fungrad as fg  # noqa: E402
import fungrad.numpy as fnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

JAX = types.SimpleNamespace(np=jnp, scan=jax.lax.scan, fori=jax.lax.fori_loop,
                            while_=jax.lax.while_loop, grad=jax.grad, jvp=jax.jvp,
                            hessian=jax.hessian, vmap=jax.vmap, jit=jax.jit,
                            checkpoint=jax.checkpoint, jacrev=jax.jacrev, jacfwd=jax.jacfwd)
FG = types.SimpleNamespace(np=fnp, scan=fg.scan, fori=fg.fori_loop, while_=fg.while_loop,
                           grad=fg.grad, jvp=fg.jvp, hessian=fg.hessian, vmap=fg.vmap,
                           jit=fg.jit, checkpoint=fg.checkpoint, jacrev=fg.jacrev,
                           jacfwd=fg.jacfwd)

RNG = onp.random.default_rng(0)
W = RNG.normal(size=(4, 4)) * 0.5
XS = RNG.normal(size=(6, 4))
V = RNG.normal(size=4)


def programs(L) -> dict:
    """``name -> f(w, xs)``, a scalar, written once for both libraries."""
    np = L.np

    def rnn(w, xs):
        def body(c, x):
            h = np.tanh(c @ w + x)
            return h, np.sum(h ** 2)
        c, ys = L.scan(body, np.zeros(4), xs)
        return np.sum(c) + np.sum(ys)

    def reverse(w, xs):
        c, ys = L.scan(lambda c, x: (np.sin(c * w[0] + x),) * 2, np.ones(4), xs, reverse=True)
        return np.sum(c * ys[0]) + np.sum(ys[-1] * 2.0)

    def pytree(w, xs):
        def body(c, x):
            a, (b, count) = c
            a2 = a * x["u"] + b
            b2 = np.cos(b) + x["v"][0]
            return (a2, (b2, count + 1)), {"s": np.sum(a2), "t": (b2 * 2.0,)}
        (a, (b, n)), ys = L.scan(body, (w[0], (w[1], 0)), {"u": xs, "v": xs * 0.5})
        return np.sum(a) + np.sum(b) + np.sum(ys["s"]) + np.sum(ys["t"][0]) + n * 0.0

    def no_xs(w, xs):
        c, ys = L.scan(lambda c, _: (c * 0.9 + np.sin(c), None), w[0], None, length=5)
        assert ys is None
        return np.sum(c)

    def fori(w, xs):
        return np.sum(L.fori(0, 4, lambda i, c: c + np.tanh(c @ w) * i, xs[0]))

    def fori_indexing(w, xs):
        xs = np.asarray(xs)

        def body(i, c):
            a, b = c
            return a * b + xs[i], b - 0.1 * a
        a, b = L.fori(1, 5, body, (w[0], w[1]))
        return np.sum(a * b)

    def fori_empty(w, xs):
        return np.sum(L.fori(3, 3, lambda i, c: c * 2.0, w[0]))

    def nested(w, xs):
        def outer(c, x):
            d, ys = L.scan(lambda d, y: (np.tanh(d * y + c), d), x, w)
            return c + d, np.sum(ys)
        c, ys = L.scan(outer, np.zeros(4), xs)
        return np.sum(c) + np.sum(ys)

    def where_max(w, xs):
        def body(c, x):
            h = np.where(x > 0, c * x, np.exp(-c * c) - x)
            return h, np.max(h)
        c, ys = L.scan(body, w[0] * 0.1, xs)
        return np.sum(c) + np.sum(ys)

    def checkpointed(w, xs):
        step = L.checkpoint(lambda c, x: np.tanh(c @ w) * x)
        c, _ = L.scan(lambda c, x: (step(c, x), None), np.ones(4), xs)
        return np.sum(c)

    def scalar_carry(w, xs):
        def body(c, x):
            c = c + np.dot(x, w[0])
            return c, c ** 2
        c, ys = L.scan(body, 0.5, xs)
        return c + np.sum(ys * np.arange(6.0))

    def empty(w, xs):
        c, ys = L.scan(lambda c, x: (c + x, x * 2.0), w[0], xs[:0])
        return np.sum(c) + np.sum(ys)

    def matrix_carry(w, xs):
        def body(m, x):
            return m @ w * 0.5 + np.outer(x, x) * 0.1, np.trace(m)
        m, ys = L.scan(body, np.eye(4), xs)
        return np.sum(m) + np.sum(ys)

    return {f.__name__: f for f in (rnn, reverse, pytree, no_xs, fori, fori_indexing,
                                    fori_empty, nested, where_max, checkpointed, scalar_carry,
                                    empty, matrix_carry)}


def while_programs(L) -> dict:
    """``name -> f(a)``: while_loops (a vector out)."""
    np = L.np

    def newton(a):
        return L.while_(lambda s: s[0] < 20, lambda s: (s[0] + 1, 0.5 * (s[1] + a / s[1])),
                        (0, a))[1]

    def growth(x):
        return L.while_(lambda s: np.sum(s) < 100.0, lambda s: s * 1.7 + 1.0, x)

    return {"newton": newton, "growth": growth}


PJ, PF = programs(JAX), programs(FG)
WJ, WF = while_programs(JAX), while_programs(FG)


def close(ours, theirs) -> None:
    ours = [onp.asarray(x) for x in jax.tree_util.tree_leaves(ours)]
    theirs = [onp.asarray(x) for x in jax.tree_util.tree_leaves(theirs)]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        onp.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", sorted(PJ))
@pytest.mark.parametrize("how", ["value", "jit", "grad", "jit-grad", "grad-xs", "jvp",
                                 "hessian", "vmap-grad"])
def test_scan_and_fori_programs_match_jax(name, how):
    fj, ff = PJ[name], PF[name]
    batch = onp.stack([XS, XS * 0.5])
    tangent = RNG.normal(size=W.shape)

    def hessian(L, f):
        return L.hessian(lambda v: f(L.np.concatenate([v[None], W[1:]]), XS))(W[0])
    cases = {
        "value": lambda L, f: f(W, XS),
        "jit": lambda L, f: L.jit(f)(W, XS),
        "grad": lambda L, f: L.grad(f)(W, XS),
        "jit-grad": lambda L, f: L.jit(L.grad(f))(W, XS),
        "grad-xs": lambda L, f: L.jit(L.grad(f, 1))(W, XS),
        "jvp": lambda L, f: L.jvp(lambda w: f(w, XS), (W,), (tangent,)),
        "hessian": hessian,
        "vmap-grad": lambda L, f: L.vmap(L.grad(f), (None, 0))(W, batch),
    }
    close(cases[how](FG, ff), cases[how](JAX, fj))


@pytest.mark.parametrize("name", sorted(WJ))
def test_while_loops_match_jax(name):
    fj, ff = WJ[name], WF[name]
    a = onp.array([2.0, 9.0, 0.3])
    close(ff(a), fj(a))
    close(fg.jit(ff)(a), jax.jit(fj)(a))
    close(fg.jvp(ff, (a,), (onp.ones(3),)), jax.jvp(fj, (a,), (onp.ones(3),)))
    # reverse mode, which JAX refuses: against its forward-mode Jacobian
    expected = jnp.sum(jax.jacfwd(fj)(a), 0)
    close(fg.grad(lambda x: fnp.sum(ff(x)))(a), expected)
    close(fg.jit(fg.grad(lambda x: fnp.sum(ff(x))))(a), expected)


@pytest.mark.parametrize("n", [0, 1, 4])
def test_fori_loop_with_a_traced_bound_matches_jax(n):
    def make(L):
        return lambda n, x: L.fori(0, n, lambda i, v: v * 1.5 + L.np.sin(v) * i, x)
    fj, ff = make(JAX), make(FG)
    close(fg.jit(ff)(n, V), jax.jit(fj)(n, V))
    close(fg.jvp(lambda x: fg.jit(ff)(n, x), (V,), (V,)),
          jax.jvp(lambda x: jax.jit(fj)(n, x), (V,), (V,)))
    close(fg.jit(fg.grad(lambda x, n: fnp.sum(ff(n, x))))(V, n),
          jnp.sum(jax.jacfwd(lambda x: jax.jit(fj)(n, x))(V), 0))


def test_per_example_gradients_and_jacobians_of_a_scanned_rnn_match_jax():
    def make(L):
        def loss(w, xs):
            def body(h, x):
                h = L.np.tanh(h @ w + x)
                return h, L.np.sum(h)
            h, ys = L.scan(body, L.np.zeros(4), xs)
            return L.np.mean(ys) + L.np.sum(h ** 2)
        return loss
    lj, lf = make(JAX), make(FG)
    batch = RNG.normal(size=(3, 6, 4))
    close(fg.vmap(fg.grad(lf), (None, 0))(W, batch), jax.vmap(jax.grad(lj), (None, 0))(W, batch))
    close(fg.jit(fg.vmap(fg.grad(lf), (None, 0)))(W, batch),
          jax.jit(jax.vmap(jax.grad(lj), (None, 0)))(W, batch))
    close(fg.jacrev(lf, 1)(W, batch[0]), jax.jacrev(lj, 1)(W, batch[0]))
    close(fg.jacfwd(lf)(W, batch[0]), jax.jacfwd(lj)(W, batch[0]))
    close(fg.hessian(lf, 1)(W, batch[0]), jax.hessian(lj, 1)(W, batch[0]))
