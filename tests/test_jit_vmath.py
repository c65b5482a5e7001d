"""The runner's vectorised transcendentals (``fungrad/jit/backend/vmath.py``) against NumPy in
float64: the accuracy their docstrings promise, over the whole float32 range that matters."""

import numpy as np

from fungrad.jit.backend.vmath import vtanh


def _tanh32(x: np.ndarray) -> np.ndarray:
    n = x.size
    out = np.empty(n, np.float32)
    vtanh(x, out, n, np.empty(n, np.int32), np.empty(n, np.float32))
    return out


def test_tanh32_within_its_bound_everywhere():
    # every float32 of magnitude 2^-30 .. 16 (both signs) at a stride, plus the edges
    mags = np.arange(np.float32(2.0 ** -30).view(np.int32), np.float32(16.0).view(np.int32),
                     97, dtype=np.int32).view(np.float32)
    x = np.concatenate([mags, -mags, np.float32([0.0, -0.0, 7.9053111, 9.0, 1e30, -1e30])])
    got = _tanh32(x).astype(np.float64)
    want = np.tanh(x.astype(np.float64))
    rel = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(np.float32).tiny)
    assert rel.max() <= 5e-7, (rel.max(), x[rel.argmax()])
    assert np.all(np.abs(got) <= 1.0)
    assert np.array_equal(np.signbit(got), np.signbit(x))


def test_tanh32_nan_and_infinities():
    x = np.float32([np.nan, np.inf, -np.inf, 0.0])
    got = _tanh32(x)
    assert np.isnan(got[0]) and got[1] == 1.0 and got[2] == -1.0 and got[3] == 0.0


def test_tanh32_saturates_where_float32_rounds_to_one():
    x = np.float32([9.011, 9.5, 20.0, 1e30, np.inf])
    assert np.array_equal(_tanh32(x), np.ones(5, np.float32))
    assert np.array_equal(_tanh32(-x), -np.ones(5, np.float32))
