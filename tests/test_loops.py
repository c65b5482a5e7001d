"""fg.scan, fg.fori_loop and fg.while_loop against the Python loops they stand for.

Every loop is checked against the same computation unrolled in Python (values, gradients,
JVPs, second order, pytrees, ``reverse``, closures, the object style), then the edges (zero
steps, integer and Python-number carries) and the errors. The ``scan`` and ``while_loop``
primitives are also in the registry, so tests/test_properties.py and the other registry-driven
suites check them against finite differences to second order in both modes.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fungrad as fg
from fungrad.errors import CarryError, DTypeError, ShapeError
from fungrad.testing import check_grads
from smooth_ops import SMOOTH

RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 3)) * 0.6
XS = RNG.standard_normal((5, 3))
H0 = RNG.standard_normal(3)


def cell(W, h, x):
    h = fg.tanh(h @ W + x)
    return h, {"sq": fg.sum(h * h), "h": h * 2.0}


def run_scan(W, h0, xs, reverse=False):
    h, ys = fg.scan(lambda h, x: cell(W, h, x), h0, xs, reverse=reverse)
    return fg.sum(h) + fg.sum(ys["sq"] * np.arange(1.0, 6.0)) + fg.sum(ys["h"][1] ** 2)


def run_python(W, h0, xs, reverse=False):
    h, ys = h0, [None] * len(xs)
    for t in (range(len(xs) - 1, -1, -1) if reverse else range(len(xs))):
        h, ys[t] = cell(W, h, xs[t])
    sq = fg.stack([y["sq"] for y in ys])
    hs = fg.stack([y["h"] for y in ys])
    return fg.sum(h) + fg.sum(sq * np.arange(1.0, 6.0)) + fg.sum(hs[1] ** 2)


def close(a, b, tol=1e-12):
    leaves_a, leaves_b = fg.tree.flatten(a)[0], fg.tree.flatten(b)[0]
    assert len(leaves_a) == len(leaves_b), (a, b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_allclose(np.asarray(getattr(x, "data", x)),
                                   np.asarray(getattr(y, "data", y)), rtol=tol, atol=tol)


# -- scan against the unrolled loop ----------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_values_and_ys_match_the_python_loop(reverse):
    def f(c, x):
        return {"h": fg.tanh(c["h"] @ W + x[0]), "n": c["n"] + 1}, (x[1] * c["h"], None)
    xs = (XS, XS[:, :1] * 3)
    init = {"h": H0, "n": 0}
    carry, (ys, empty) = fg.scan(f, init, xs, reverse=reverse)
    c, ref = init, [None] * 5
    for t in (range(4, -1, -1) if reverse else range(5)):
        c, (ref[t], _) = f(c, (xs[0][t], xs[1][t]))
    close(carry, c)
    assert carry["n"].dtype == np.int64 and int(carry["n"]) == 5
    assert empty is None and ys.shape == (5, 3)
    close(ys, np.stack(ref))


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_gradients_match_the_python_loop(reverse):
    g = fg.grad(run_scan, argnums=(0, 1, 2))(W, H0, XS, reverse)
    close(g, fg.grad(run_python, argnums=(0, 1, 2))(W, H0, XS, reverse))


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_second_order_and_forward_mode_match_the_python_loop(reverse):
    for argnums in (0, 1):
        close(fg.hessian(run_scan, argnums)(W, H0, XS, reverse),
              fg.hessian(run_python, argnums)(W, H0, XS, reverse), 1e-10)
    v = RNG.standard_normal(W.shape)
    close(fg.jvp(lambda w: run_scan(w, H0, XS, reverse), (W,), (v,)),
          fg.jvp(lambda w: run_python(w, H0, XS, reverse), (W,), (v,)))

    def norm_of_grad(run):
        return lambda w: fg.sum(fg.grad(run)(w, H0, XS, reverse) ** 2)
    close(fg.grad(norm_of_grad(run_scan))(W), fg.grad(norm_of_grad(run_python))(W), 1e-10)


def test_third_order_through_scan():
    def f(run):
        return lambda s: run(W * s, H0, XS)
    third = fg.grad(fg.grad(fg.grad(f(run_scan))))(1.0)
    np.testing.assert_allclose(third, fg.grad(fg.grad(fg.grad(f(run_python))))(1.0), rtol=1e-9)


@given(op1=st.sampled_from(SMOOTH), op2=st.sampled_from(SMOOTH), steps=st.integers(0, 4),
       size=st.integers(1, 3), reverse=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_generated_bodies_match_the_python_loop(op1, op2, steps, size, reverse, seed):
    """Bodies made of registry ops drawn at random: scan = the unrolled loop, values and
    gradients with respect to the closure, init and xs."""
    f1, f2 = fg.ops()[op1], fg.ops()[op2]
    rng = np.random.default_rng(seed)
    w, h0 = rng.uniform(-1, 1, size), rng.uniform(-1, 1, size)
    xs = rng.uniform(-1, 1, (steps, size))
    scale = rng.uniform(-1, 1, (steps, size))

    def step(w, h, x):
        h = fg.tanh(f1(fg.tanh(h * w + x)))
        return h, f2(h)

    def looped(w, h0, xs):
        h, ys = fg.scan(lambda h, x: step(w, h, x), h0, xs, reverse=reverse)
        return fg.sum(h) + fg.sum(ys * scale)

    def python(w, h0, xs):
        h, ys = h0, [None] * steps
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            h, ys[t] = step(w, h, xs[t])
        return fg.sum(h) + (fg.sum(fg.stack(ys) * scale) if steps else 0.0)
    close(looped(w, h0, xs), python(w, h0, xs))
    close(fg.grad(looped, argnums=(0, 1, 2))(w, h0, xs),
          fg.grad(python, argnums=(0, 1, 2))(w, h0, xs), 1e-10)


def test_scan_against_finite_differences():
    check_grads(lambda w, h, xs: run_scan(w, h, xs), W, H0, XS, order=2, modes=("rev", "fwd"))


def test_vjp_with_cotangents_on_carry_and_ys():
    def f(h0, xs):
        return fg.scan(lambda h, x: (fg.sin(h * x) + h, h * x), h0, xs)
    out, back = fg.vjp(f, H0, XS)

    def g(h0, xs):
        h, ys = h0, []
        for x in xs:
            ys.append(h * x)
            h = fg.sin(h * x) + h
        return h, fg.stack(ys)
    ref_out, ref_back = fg.vjp(g, H0, XS)
    ct = (RNG.standard_normal(3), RNG.standard_normal((5, 3)))
    close(out, ref_out)
    close(back(ct), ref_back(ct))


def test_scan_object_style_backward_and_closures():
    w = fg.Tensor(W, autograd=True)
    x = fg.Tensor(XS, autograd=True)
    h, ys = fg.scan(lambda h, x: (fg.tanh(h @ w + x), h.sum()), H0, x)
    assert isinstance(h, fg.Tensor) and h.creation_op == "scan"
    (h.sum() + (ys * ys).sum()).backward()
    gw, gx = w.grad.data.copy(), x.grad.data.copy()
    w.grad = x.grad = None
    h, ys = H0, []
    for t in range(5):
        ys.append(fg.sum(h))
        h = fg.tanh(h @ w + x[t])
    (h.sum() + (fg.stack(ys) ** 2).sum()).backward()
    close(gw, w.grad.data)
    close(gx, x.grad.data)


def test_length_without_xs_and_one_node_per_loop():
    seen = []
    fg.scan(lambda c, x: (seen.append(x) or c, None), 0.0, length=3)
    assert seen and all(x is None for x in seen)
    w = fg.Tensor(0.9, autograd=True)
    h, ys = fg.scan(lambda c, x: (c * w + 1.0, c), 0.5, length=40)
    assert ys.shape == (40,) and h.creation_op == "scan"
    assert [t.creation_op for t in h.creators] == [None]  # w: one node for the whole loop
    h.backward()
    c, v = fg.Tensor(0.9, autograd=True), 0.5
    for _ in range(40):
        v = v * c + 1.0
    v.backward()
    np.testing.assert_allclose(w.grad.data, c.grad.data, rtol=1e-12)


def test_nested_scans_differentiate():
    def inner(h, w):
        return fg.scan(lambda c, x: (fg.tanh(c * w + x), None), h, XS[:3, 0])[0]

    def outer(w):
        return fg.sum(fg.scan(lambda h, x: (inner(h, w) + x, h), H0, XS)[1])

    def plain(w):
        h, ys = H0, []
        for x in XS:
            ys.append(h)
            c = h
            for xi in XS[:3, 0]:
                c = fg.tanh(c * w + xi)
            h = c + x
        return fg.sum(fg.stack(ys))
    close(fg.grad(outer)(0.7), fg.grad(plain)(0.7))
    close(fg.grad(fg.grad(outer))(0.7), fg.grad(fg.grad(plain))(0.7), 1e-10)


def test_closure_over_an_output_of_a_multi_output_op():
    def f(x):
        a, b = fg.split(x, indices=[2])  # b is the second output of one node
        return fg.scan(lambda c, _: (c * b + a, None), np.ones(2), length=3)[0].sum()

    def g(x):
        a, b = fg.split(x, indices=[2])
        c = np.ones(2)
        for _ in range(3):
            c = c * b + a
        return c.sum()
    x = np.array([0.3, -0.2, 0.9, 1.1])
    close(fg.grad(f)(x), fg.grad(g)(x))


def test_a_closed_over_value_returned_unchanged_is_differentiated():
    """A body that returns a closure's value as it is (``y = w``, no op on it) still reads it:
    its gradient reaches the closure, eager and under fg.jit (it was lost: zero)."""
    w, xs = np.array([0.7, -0.4]), np.linspace(-1, 1, 6).reshape(3, 2)

    def f(w):
        h, ys = fg.scan(lambda h, x: (fg.tanh(h * 0.5 + x), w), np.zeros(2), xs)
        return fg.sum(h * h) + fg.sum(ys * ys)

    def unrolled(w):
        h, total = np.zeros(2), 0.0
        for x in xs:
            h = fg.tanh(h * 0.5 + x)
            total = total + fg.sum(w * w)
        return fg.sum(h * h) + total

    want = fg.grad(unrolled)(w)
    np.testing.assert_allclose(want, 6 * w)
    np.testing.assert_allclose(fg.grad(f)(w), want, rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(w), want, rtol=1e-12)
    g = fg.grad(lambda w: fg.scan(lambda c, x: (w, c * x), np.zeros(2), xs)[1].sum())(w)
    np.testing.assert_allclose(g, xs[1:].sum(0))  # the carry is w from the second step on


def test_backward_frees_each_step_and_the_loop_keeps_only_carries():
    probe = []

    def body(h, x):
        y = fg.tanh(h * x)
        probe.append(weakref.ref(y))
        return y, None
    x = fg.Tensor(np.full((50, 4), 0.5), autograd=True)
    h, _ = fg.scan(body, np.ones(4), x)
    gc.collect()
    assert all(r() is None for r in probe)  # no step's graph outlives the forward
    h.sum().backward()
    assert x.grad.shape == (50, 4)


def test_the_backward_keeps_carries_not_every_intermediate():
    def body(h, x):  # five intermediates of the carry's size per step
        a = fg.sin(h * x)
        b = fg.cos(a + h)
        return fg.tanh(a * b + h) * 0.5, None

    def unrolled(h0, xs):
        h = h0
        for x in xs:
            h = body(h, x)[0]
        return fg.sum(h)

    def peak(loss):
        xs = fg.Tensor(np.full((100, 2048), 0.3), autograd=True)
        tracemalloc.start()
        try:
            value = loss(np.ones(2048), xs)
            tracemalloc.reset_peak()
            value.backward()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    plain = peak(unrolled)
    looped = peak(lambda h0, xs: fg.sum(fg.scan(body, h0, xs)[0]))
    assert looped < 0.5 * plain, (looped, plain)


# -- fori_loop and while_loop ---------------------------------------------------------------


def test_fori_loop_matches_python_and_differentiates():
    def body(i, v):
        return {"a": v["a"] * fg.cos(v["b"]) + i, "b": v["b"] + 0.1 * v["a"]}
    init = {"a": np.array([0.5, -0.3]), "b": np.array([1.0, 2.0])}

    def loop(a):
        return fg.sum(fg.fori_loop(2, 7, body, {"a": a, "b": init["b"]})["a"])

    def python(a):
        v = {"a": a, "b": init["b"]}
        for i in range(2, 7):
            v = body(np.array(i), v)
        return fg.sum(v["a"])
    close(loop(init["a"]), python(init["a"]))
    close(fg.grad(loop)(init["a"]), fg.grad(python)(init["a"]))
    close(fg.hessian(loop)(init["a"]), fg.hessian(python)(init["a"]), 1e-10)
    seen = []
    fg.fori_loop(np.int32(0), np.int32(2), lambda i, v: seen.append(i) or v, 1.0)
    assert all(np.asarray(getattr(i, "data", i)).dtype == np.int32 for i in seen)


def test_fori_loop_with_no_steps_returns_init():
    assert float(fg.fori_loop(5, 2, lambda i, v: v + 1.0, 3.0)) == 3.0
    assert fg.grad(lambda x: fg.fori_loop(3, 3, lambda i, v: v * 5, x))(2.0) == 1.0


def wl(x):
    return fg.while_loop(lambda c: c[0] < 4, lambda c: (c[0] + 1, fg.sin(c[1]) * x), (0, x))[1]


def wl_python(x):
    v = x
    for _ in range(4):
        v = fg.sin(v) * x
    return v


def test_while_loop_reverse_mode_and_forward_mode():
    for x in (0.7, np.array([0.3, -1.2])):
        close(wl(x), wl_python(x))
        close(fg.elementwise_grad(wl)(x), fg.elementwise_grad(wl_python)(x))
        close(fg.jvp(wl, (x,), (np.ones_like(x),)), fg.jvp(wl_python, (x,), (np.ones_like(x),)))
    close(fg.grad(fg.grad(wl))(0.7), fg.grad(fg.grad(wl_python))(0.7), 1e-10)
    check_grads(wl, np.array([0.3, -1.2]), order=2)


def test_while_loop_trip_count_depends_on_values():
    def f(x):  # doubles until above 10: the trip count is recorded, not assumed
        return fg.while_loop(lambda v: fg.sum(v) < 10.0, lambda v: v * 2.0, x)
    for x, trips in ((np.array([1.0, 2.0]), 2), (np.array([0.1, 0.2]), 6)):
        np.testing.assert_allclose(f(x), x * 2.0 ** trips)
        np.testing.assert_allclose(fg.jacobian(f)(x), np.eye(2) * 2.0 ** trips)


def test_while_loop_zero_trips_and_object_style():
    w = fg.Tensor(np.array([0.5, 2.0]), autograd=True)
    out = fg.while_loop(lambda c: c[0] < 0, lambda c: (c[0] + 1, c[1] * w), (0, w))
    assert out[1] is w  # the body never ran
    out = fg.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * w), (0, w * 1.0))
    out[1].sum().backward()
    np.testing.assert_allclose(w.grad.data, 4 * w.data ** 3)


# -- carries: integers, Python numbers, zero steps, dtypes -----------------------------------


def test_integer_carries_pass_through_without_gradients():
    def f(x):
        (i, h), _ = fg.scan(lambda c, x: ((c[0] + 2, c[1] * x), None), (np.int32(1), 1.0), x)
        assert i.dtype == np.int32 and int(i) == 1 + 2 * len(XS)
        return fg.sum(h)
    close(fg.grad(f)(XS[:, 0]), fg.grad(lambda x: fg.prod(x))(XS[:, 0]))


def test_python_numbers_in_init_take_the_bodys_dtype():
    xs = XS.astype(np.float32)
    carry, ys = fg.scan(lambda c, x: (c + fg.sum(x), c), 0, xs)
    assert carry.dtype == np.float32 and ys.dtype == np.float32
    g = fg.grad(lambda xs: fg.scan(lambda c, x: (c * 0.5 + fg.sum(x), None), 0.0, xs)[0])(xs)
    assert g.dtype == np.float32
    carry, ys = fg.scan(lambda c, x: (c + x, c), 0, np.arange(5.0))  # int made float64
    assert carry.dtype == np.float64 and float(carry) == 10.0 and ys.tolist() == [0, 0, 1, 3, 6]
    assert fg.fori_loop(1, 6, lambda i, acc: acc * i, 1).dtype == np.int64  # stays an int
    assert fg.scan(lambda c, x: (c * 0.5, None), 1.0, length=2)[0].dtype == np.float64
    assert fg.scan(lambda c, x: (1.5, None), 0, length=2)[0].dtype == np.float64


def test_float32_stays_float32_in_gradients():
    w32, h32, x32 = W.astype(np.float32), H0.astype(np.float32), XS.astype(np.float32)
    g = fg.grad(run_scan, argnums=(0, 1, 2))(w32, h32, x32)
    assert all(a.dtype == np.float32 for a in g)
    close(g, fg.grad(run_scan, argnums=(0, 1, 2))(W, H0, XS), 1e-4)


def test_zero_length_scan():
    carry, ys = fg.scan(lambda c, x: (c + x, {"y": c * x, "z": fg.sum(x)}), H0, XS[:0])
    close(carry, H0)
    assert carry is not H0
    assert ys["y"].shape == (0, 3) and ys["z"].shape == (0,)
    g = fg.grad(lambda h, xs: fg.sum(fg.scan(lambda c, x: (c * x, None), h, xs)[0]),
                argnums=(0, 1))(H0, XS[:0])
    close(g[0], np.ones(3))
    assert g[1].shape == (0, 3)
    assert fg.scan(lambda c, x: (c, x), 1.0, length=0)[1] is None


# -- errors ----------------------------------------------------------------------------------


def test_a_carry_that_changes_shape_or_dtype_names_the_loop_and_the_leaf():
    with pytest.raises(CarryError, match=r"scan: .*carry\['h'\]\[1\].*\(3,\).*\(4,\)"):
        fg.scan(lambda c, x: ({"h": (c["h"][0], fg.concatenate([c["h"][1], x[:1]]))}, None),
                {"h": (1.0, H0)}, XS)
    with pytest.raises(TypeError, match=r"fori_loop: .*carry\[1\] from float32.*float64"):
        fg.fori_loop(0, 3, lambda i, v: (v[0], v[1] * np.float64(2.0)),
                     (0, np.ones(2, np.float32)))
    with pytest.raises(ValueError, match=r"while_loop: .*carry"):
        fg.while_loop(lambda v: v.shape[0] < 4, lambda v: fg.concatenate([v, v]), np.ones(1))
    with pytest.raises(CarryError, match="structure"):
        fg.scan(lambda c, x: ((c, c), None), 1.0, XS)


def test_xs_errors():
    with pytest.raises(ShapeError, match=r"xs\[1\] has leading length 4.*5 steps"):
        fg.scan(lambda c, x: (c, None), 0.0, (XS, XS[:4]))
    with pytest.raises(ShapeError, match="length 5.*3 steps"):
        fg.scan(lambda c, x: (c, None), 0.0, XS, length=3)
    with pytest.raises(ShapeError, match=r"xs\['a'\] is a 0-d value"):
        fg.scan(lambda c, x: (c, None), 0.0, {"a": 1.0})
    with pytest.raises(TypeError, match="length"):
        fg.scan(lambda c, x: (c, None), 0.0)


def test_bad_functions_and_bodies():
    with pytest.raises(TypeError, match="scan: f must be callable"):
        fg.scan(3, 0.0, XS)
    with pytest.raises(TypeError, match="fori_loop: body_fun must be callable"):
        fg.fori_loop(0, 2, None, 0.0)
    with pytest.raises(TypeError, match="while_loop: cond_fun must be callable"):
        fg.while_loop("no", lambda v: v, 0.0)
    with pytest.raises(TypeError, match="pair"):
        fg.scan(lambda c, x: c, 0.0, XS)
    with pytest.raises(DTypeError, match="boolean scalar"):
        fg.while_loop(lambda v: v, lambda v: v - 1, 3.0)
    with pytest.raises(TypeError, match="integer"):
        fg.fori_loop(0.0, 3, lambda i, v: v, 1.0)
    with pytest.raises(TypeError, match=r"carry\[1\] is a str"):
        fg.scan(lambda c, x: (c, None), (1.0, "a"), XS)


def test_an_error_in_the_body_comes_out_as_itself():
    def body(c, x):
        if float(x[0].data if isinstance(x, fg.Tensor) else x[0]) > 0.5:
            raise KeyError("from the body")
        return c, None
    xs = np.array([[0.1], [0.9]])
    with pytest.raises(KeyError, match="from the body"):
        fg.scan(body, 0.0, xs)


def test_a_step_reading_a_tensor_the_traced_step_did_not_is_refused():
    w = fg.Tensor(np.full(2, 0.5), autograd=True)
    v = fg.Tensor(np.full(2, 2.0), autograd=True)

    def body(c, x):  # branches on values: v is read only from the second step on
        return c * (w if float(np.asarray(getattr(x, "data", x))) < 0.5 else v), None
    h, _ = fg.scan(body, np.ones(2), np.array([0.1, 0.9]))
    with pytest.raises(fg.errors.GraphError, match="did not read when it was traced"):
        h.sum().backward()


# -- the book's cells over a sequence -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_book_cells_run_over_a_sequence_with_scan(kind):
    if kind == "rnn":
        cell_ = fg.nn.RNNCell(4, 6, 3, activation="tanh", rng=0)
    else:
        cell_ = fg.nn.LSTMCell(4, 6, 3, rng=0)
    xs = np.random.default_rng(1).standard_normal((7, 2, 4))

    def step(hidden, x):
        out, hidden = cell_(x, hidden)
        return hidden, out

    _, outs = fg.scan(step, cell_.init_hidden(2), xs)
    fg.sum(outs ** 2).backward()
    grads = [p.grad.data.copy() for p in cell_.parameters()]
    for p in cell_.parameters():
        p.grad = None
    hidden, ref = cell_.init_hidden(2), []
    for x in xs:
        out, hidden = cell_(x, hidden)
        ref.append(out)
    fg.sum(fg.stack(ref) ** 2).backward()
    close(outs, fg.stack(ref))
    close(grads, [p.grad.data for p in cell_.parameters()])


def test_loops_under_jit_match_eager():
    """Under fg.jit each loop is one step compiled as a loop of the runner (tests/
    test_jit_loops.py checks that in depth); the results are eager's."""
    def step(w, xs):
        def loss(w):
            h, hs = fg.scan(lambda h, x: (fg.tanh(h @ w + x), h * x), H0, xs)
            v = fg.fori_loop(0, 3, lambda i, v: v * 0.5 + h, h)
            return fg.sum(hs * hs) + fg.sum(v)
        return fg.value_and_grad(loss)(w)
    jitted = fg.jit(step)
    for _ in range(2):
        close(jitted(W, XS), step(W, XS))


# -- under fg.vmap ------------------------------------------------------------------------------


def seq_loss(w, xs):
    return fg.sum(fg.scan(lambda h, x: (fg.tanh(h * w + x), None), np.zeros(3), xs)[0] ** 2)


def seq_loss_python(w, xs):
    h = np.zeros(3)
    for x in xs:
        h = fg.tanh(h * w + x)
    return fg.sum(h ** 2)


def test_vmap_of_loops_and_their_gradients():
    batch = RNG.standard_normal((4, 5, 3))
    for f, ref in ((seq_loss, seq_loss_python), (fg.grad(seq_loss), fg.grad(seq_loss_python))):
        close(fg.vmap(f, in_axes=(None, 0))(W[0], batch),
              np.stack([ref(W[0], xs) for xs in batch]))
    # per-example parameters read through the closure, and fg.grad of the vmap
    ws = RNG.standard_normal((4, 3))
    close(fg.vmap(lambda w: seq_loss(w, XS))(ws), np.stack([seq_loss_python(w, XS) for w in ws]))
    close(fg.grad(lambda w: fg.sum(fg.vmap(lambda xs: seq_loss(w, xs))(batch)))(W[0]),
          fg.grad(lambda w: fg.sum(fg.vmap(lambda xs: seq_loss_python(w, xs))(batch)))(W[0]))


def test_vmap_of_a_scan_over_no_steps():
    """A batch of empty sequences (xs of shape (batch, 0, ...)): the carry passes through and
    the stacked ys are empty, per example (np.asarray of the batched xs failed)."""
    def f(w, xs):
        c, ys = fg.scan(lambda c, x: (c * w + x, x * 2.0), np.zeros(3), xs)
        return fg.sum(c) + fg.sum(ys), ys

    batch = np.zeros((2, 0, 3))
    total, ys = fg.vmap(f, in_axes=(None, 0))(W[0], batch)
    assert ys.shape == (2, 0, 3)
    close(total, np.zeros(2))
    close(fg.vmap(fg.grad(lambda w, xs: f(w, xs)[0]), in_axes=(None, 0))(W[0], batch),
          np.zeros((2, 3)))


def test_jacobians_of_loops_map_the_loops_vjp():
    def ys(w):
        return fg.scan(lambda h, x: (fg.tanh(h * w + x), fg.sin(h * w)), H0, XS)[1]

    def ys_python(w):
        h, out = H0, []
        for x in XS:
            out.append(fg.sin(h * w))
            h = fg.tanh(h * w + x)
        return fg.stack(out)
    for jac in (fg.jacrev, fg.jacfwd):
        close(jac(ys)(W[0]), jac(ys_python)(W[0]))
    close(fg.hessian(lambda w: fg.sum(ys(w) ** 2))(W[0]),
          fg.hessian(lambda w: fg.sum(ys_python(w) ** 2))(W[0]), 1e-10)
    close(fg.jacrev(wl)(np.array([0.3, 0.6])), fg.jacrev(wl_python)(np.array([0.3, 0.6])))


def test_a_while_loop_under_vmap_steps_each_example_as_long_as_it_needs():
    def doubled(x):
        return fg.while_loop(lambda v: fg.sum(v) < 10.0, lambda v: v * 2.0, x)
    xs = np.array([[1.0, 2.0], [0.1, 0.2], [20.0, 1.0]])
    close(fg.vmap(doubled)(xs), np.stack([x * 2.0 ** k for x, k in zip(xs, (2, 6, 0))]))
    close(fg.vmap(fg.jacrev(doubled))(xs),
          np.stack([np.eye(2) * 2.0 ** k for k in (2, 6, 0)]))
