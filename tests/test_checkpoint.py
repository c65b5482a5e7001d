"""fg.checkpoint: the same values and gradients as the function itself (bit for bit in
float64, first order), in every style, at higher orders and inside loops; the intermediate
values are really freed; a recomputation that differs is refused."""

from __future__ import annotations

import gc
import re
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fungrad as fg
from fungrad.errors import GraphError
from smooth_ops import SMOOTH

RNG = np.random.default_rng(3)
N = 16
W = RNG.uniform(0.5, 1.0, N)
B = RNG.uniform(-0.1, 0.1, N)
H0 = RNG.standard_normal(N)


def segment(h, w, b, n=6):
    for _ in range(n):
        h = fg.tanh(h * w + b)
    return h


def chain(block):
    def loss(w, b):
        h = H0
        for _ in range(5):
            h = block(h, w, b)
        return fg.sum(h * h) + fg.sum(w * h)  # w used outside the blocks too
    return loss


plain_loss = chain(segment)
ckpt_loss = chain(fg.checkpoint(segment))


def equal(a, b):
    leaves_a, leaves_b = fg.tree.flatten(a)[0], fg.tree.flatten(b)[0]
    assert len(leaves_a) == len(leaves_b), (a, b)
    for x, y in zip(leaves_a, leaves_b):
        x, y = np.asarray(getattr(x, "data", x)), np.asarray(getattr(y, "data", y))
        assert x.dtype == y.dtype and np.array_equal(x, y)


def test_gradients_are_bit_identical_functional():
    equal(ckpt_loss(W, B), plain_loss(W, B))
    equal(fg.grad(ckpt_loss, argnums=(0, 1))(W, B), fg.grad(plain_loss, argnums=(0, 1))(W, B))
    out, back = fg.vjp(ckpt_loss, W, B)
    ref_out, ref_back = fg.vjp(plain_loss, W, B)
    equal(back(np.array(1.5)), ref_back(np.array(1.5)))


@given(ops=st.lists(st.sampled_from(SMOOTH), min_size=1, max_size=4), blocks=st.integers(1, 4),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2 ** 16))
def test_generated_blocks_give_bit_identical_gradients(ops, blocks, dtype, seed):
    """Blocks made of registry ops drawn at random, sharing their weights across blocks and
    with the loss: the checkpointed gradients equal the plain ones bit for bit."""
    rng = np.random.default_rng(seed)
    w, b = (rng.uniform(-1, 1, 5).astype(dtype) for _ in range(2))
    h0 = rng.uniform(-1, 1, 5).astype(dtype)

    def block(h, w, b):
        for name in ops:
            h = fg.tanh(fg.ops()[name](fg.tanh(h * w + b)))
        return h + 0.5 * h * b

    def loss(blk):
        def f(w, b):
            h, total = h0, 0.0
            for _ in range(blocks):
                h = blk(h, w, b)
                total = total + fg.sum(h * w)
            return total + fg.sum(h * h)
        return f
    equal(fg.grad(loss(fg.checkpoint(block)), argnums=(0, 1))(w, b),
          fg.grad(loss(block), argnums=(0, 1))(w, b))


def test_gradients_are_bit_identical_object_style_and_closures():
    w, b = fg.Tensor(W, autograd=True), fg.Tensor(B, autograd=True)
    plain_loss(w, b).backward()
    ref = w.grad.data.copy(), b.grad.data.copy()
    w.grad = b.grad = None
    block = fg.checkpoint(lambda h: segment(h, w, b))  # w and b read through the closure
    h = fg.Tensor(H0)
    for _ in range(5):
        h = block(h)
    (fg.sum(h * h) + fg.sum(w * h)).backward()
    equal((w.grad.data, b.grad.data), ref)


def test_torch_style_call_and_keyword_arguments():
    def loss(w):
        h = H0
        for _ in range(3):
            h = fg.checkpoint(segment, h, w, b=B, n=4)
        return fg.sum(h)

    def ref(w):
        h = H0
        for _ in range(3):
            h = segment(h, w, B, 4)
        return fg.sum(h)
    equal(fg.grad(loss)(W), fg.grad(ref)(W))


def test_float32_gradients_are_bit_identical():
    w32, b32 = W.astype(np.float32), B.astype(np.float32)
    g = fg.grad(ckpt_loss, argnums=(0, 1))(w32, b32)
    assert g[0].dtype == np.float32
    equal(g, fg.grad(plain_loss, argnums=(0, 1))(w32, b32))


def test_higher_order_and_forward_mode():
    v = RNG.standard_normal(N)
    np.testing.assert_allclose(fg.hessian(lambda w: ckpt_loss(w, B))(W),
                               fg.hessian(lambda w: plain_loss(w, B))(W), rtol=1e-10, atol=1e-12)
    equal(fg.jvp(lambda w: ckpt_loss(w, B), (W,), (v,))[0], plain_loss(W, B))
    np.testing.assert_allclose(fg.jvp(lambda w: ckpt_loss(w, B), (W,), (v,))[1],
                               fg.jvp(lambda w: plain_loss(w, B), (W,), (v,))[1], rtol=1e-12)
    gg = fg.grad(lambda w: fg.sum(fg.grad(ckpt_loss)(w, B) ** 2))(W)
    np.testing.assert_allclose(gg, fg.grad(lambda w: fg.sum(fg.grad(plain_loss)(w, B) ** 2))(W),
                               rtol=1e-10)


def test_inside_a_scan_body_and_nested():
    inner = fg.checkpoint(lambda h, w, b: segment(segment(h, w, b, 2), w, b, 2))
    outer = fg.checkpoint(lambda h, w, b: inner(inner(h, w, b), w, b))

    def scanned(w):
        return fg.sum(fg.scan(lambda h, x: (outer(h, w, x), fg.sum(h)), H0, np.stack([B] * 3))[1])

    def python(w):
        h, total = H0, 0.0
        for _ in range(3):
            total = total + fg.sum(h)
            h = segment(h, w, B, 8)
        return total
    np.testing.assert_allclose(fg.grad(scanned)(W), fg.grad(python)(W), rtol=1e-12)
    np.testing.assert_allclose(fg.grad(fg.grad(lambda s: scanned(W * s)))(1.0),
                               fg.grad(fg.grad(lambda s: python(W * s)))(1.0), rtol=1e-10)


def test_several_outputs_some_unused():
    def f(h, w):
        a = fg.tanh(h * w)
        return {"a": a, "b": fg.sin(a) * w, "given": h, "n": 3}
    cf = fg.checkpoint(f)

    def loss(f):
        return lambda w: fg.sum(f(H0, w)["a"] * 2.0)
    out = cf(fg.Tensor(H0), W)
    assert out["n"] == 3 and isinstance(out["given"], fg.Tensor)
    equal(fg.grad(loss(cf))(W), fg.grad(loss(f))(W))


def test_intermediates_are_freed_and_nothing_recorded_without_grad():
    probe = []

    def f(h, w):
        mid = fg.tanh(h * w)
        probe.append(weakref.ref(mid))
        return fg.sum(mid * w)
    w = fg.Tensor(W, autograd=True)
    out = fg.checkpoint(f)(H0, w)
    gc.collect()
    assert probe[0]() is None and out.creation_op == "checkpoint"
    out.backward()
    np.testing.assert_array_equal(w.grad.data, fg.grad(lambda w: f(H0, w))(W))
    with fg.no_grad():
        assert fg.checkpoint(f)(H0, w).creation_op is None
    assert not isinstance(fg.checkpoint(f)(H0, W), fg.Tensor)  # arrays in, arrays out


def test_a_recomputation_that_differs_is_refused():
    draws = np.random.default_rng(0)

    def noisy(h, w):
        return fg.tanh(h * w + draws.standard_normal(h.shape))
    with pytest.raises(GraphError, match="deterministic"):
        fg.grad(lambda w: fg.sum(fg.checkpoint(noisy)(H0, w)))(W)
    with pytest.raises(TypeError, match="callable"):
        fg.checkpoint(3)


def peak_of_backward(block, layers=300, size=2048):
    w, b = fg.Tensor(W.repeat(size // N), autograd=True), fg.Tensor(B.repeat(size // N),
                                                                     autograd=True)
    h = np.ones(size)
    tracemalloc.start()
    try:
        for _ in range(layers // 20):
            h = block(h, w, b, 20)
        loss = fg.sum(h)
        tracemalloc.reset_peak()
        loss.backward()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_backward_memory_is_a_fraction_of_the_plain_one():
    # benchmarks/checkpoint_memory.py measures the chain (2,000 layers of 4,096)
    plain = peak_of_backward(segment)
    ckpt = peak_of_backward(fg.checkpoint(segment))
    assert ckpt < 0.2 * plain, (ckpt, plain)


def test_the_readme_section_runs():
    """The README's "Loops and rematerialization" examples run as printed."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Loops and rematerialization", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["w"].grad.shape == (4096,) and namespace["outs"].shape == (20, 2, 3)
