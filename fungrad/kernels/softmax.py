"""Rowwise softmax and fused softmax + cross-entropy, numerically stable.

Every row is shifted by its maximum before ``exp`` and the log-sum-exp is ``max + log(sum)``,
so logits of magnitude 1e4 give finite probabilities and a finite loss. Results keep the
logits' float dtype; the cross-entropy mean over rows is accumulated in float64 (a long float32
running sum over a big batch would lose digits) and returned in the logits' dtype as a 0-d
array. The mean over zero rows is NaN, as in PyTorch.

Speed (``benchmarks/KERNELS.md``): the forward kernels call a scalar ``exp`` per element
(Numba has no SIMD ``exp`` without Intel SVML), so they win only while per-call overhead
dominates: narrow rows, about C <= 64 (e.g. 128x10, 32x65). For wider rows NumPy's SIMD
``exp`` makes the twins 2-4x faster (128x1000, 32x10000): use the twins there. The backward
kernel has no ``exp`` and wins at every measured width.

Entry point contract (the calling op, ``fungrad.primitives.nn.cross_entropy``, has checked and
normalised everything once; nothing is checked again here): ``x`` and ``probs`` are
C-contiguous ``(N, C)`` float32 or float64 arrays, ``targets`` a C-contiguous int64 array of
``N`` class indices in ``[0, C)``, ``g`` a Python float.
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
from ._background import deferrable, with_twin
import numpy as np

__all__ = [
    "softmax_forward",
    "softmax_forward_numpy",
    "softmax_xent_backward",
    "softmax_xent_backward_numpy",
    "softmax_xent_forward",
    "softmax_xent_forward_numpy",
]


# --------------------------------------------------------------------------- the row's formula


@numba.njit(cache=True, nogil=True, error_model="numpy")
def xent_row_grad(probs, t, scale, out, one):
    """One row of the cross-entropy's gradient, ``(probs - onehot(t)) * scale``, into ``out``
    (which may be ``probs``); ``one`` is 1 in the row's dtype. Written once: the eager backward
    kernel below and fg.jit's block kernel (``fungrad/jit/backend/kernels_block.py``, which
    computes the row's softmax with its own vectorised exp) both call it."""
    pt = probs[t]
    for j in range(probs.shape[0]):
        out[j] = probs[j] * scale
    out[t] = (pt - one) * scale


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softmax_rows(x, probs, r):
    """Write softmax of row r into probs; return (row max, sum of exp(x - max))."""
    c = x.shape[1]
    m = x[r, 0]
    for j in range(1, c):
        m = max(m, x[r, j])
    s = x.dtype.type(0)
    for j in range(c):
        e = np.exp(x[r, j] - m)
        probs[r, j] = e
        s += e
    for j in range(c):
        probs[r, j] = probs[r, j] / s
    return m, s


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softmax_xent_forward_kernel(x, targets):
    n = x.shape[0]
    probs = np.empty_like(x)
    total = 0.0  # float64 accumulator for the mean
    for r in range(n):
        m, s = _softmax_rows(x, probs, r)
        total += np.log(s) - (x[r, targets[r]] - m)
    return total / n if n else np.nan, probs


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softmax_xent_backward_kernel(probs, targets, scale):
    out = np.empty_like(probs)
    one = probs.dtype.type(1)
    for r in range(probs.shape[0]):
        xent_row_grad(probs[r], targets[r], scale, out[r], one)
    return out


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softmax_kernel(x):
    probs = np.empty_like(x)
    for r in range(x.shape[0]):
        _softmax_rows(x, probs, r)
    return probs


# --------------------------------------------------------------------------- entry points


@with_twin("softmax_xent_forward_numpy")
def softmax_xent_forward(x: np.ndarray, targets: np.ndarray):
    """Mean cross-entropy of rowwise softmax(x) against class ``targets``, and the softmax.

    Returns ``(loss, probs)``: ``loss`` a 0-d array of x's dtype, ``probs`` shaped like ``x``.

    >>> import numpy as np
    >>> loss, probs = softmax_xent_forward(np.array([[0.0, 0.0], [1e4, 0.0]]), np.array([0, 1]))
    >>> round(float(loss), 6), probs[0].tolist()
    (5000.346574, [0.5, 0.5])
    """
    loss, probs = _softmax_xent_forward_kernel(x, targets)
    return np.asarray(loss, dtype=x.dtype), probs


def softmax_xent_forward_numpy(x: np.ndarray, targets: np.ndarray):
    """NumPy twin of :func:`softmax_xent_forward`.

    >>> import numpy as np
    >>> loss, probs = softmax_xent_forward_numpy(np.zeros((2, 4), np.float32), np.array([1, 3]))
    >>> loss.dtype, float(loss) == float(np.log(np.float32(4)))
    (dtype('float32'), True)
    """
    n = x.shape[0]
    if n == 0:
        return np.asarray(np.nan, dtype=x.dtype), np.empty_like(x)
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    probs = e / s
    per_row = np.log(s[:, 0]) - z[np.arange(n), targets]
    return np.asarray(per_row.mean(dtype=np.float64), dtype=x.dtype), probs


@with_twin("softmax_xent_backward_numpy")
def softmax_xent_backward(probs: np.ndarray, targets: np.ndarray, g: float) -> np.ndarray:
    """Gradient of ``g * mean cross-entropy`` w.r.t. the logits: ``(probs - onehot) * g / N``.

    ``probs`` is the softmax from :func:`softmax_xent_forward`.

    >>> import numpy as np
    >>> softmax_xent_backward(np.array([[0.25, 0.75], [0.5, 0.5]]), np.array([1, 0]), 2.0)
    array([[ 0.25, -0.25],
           [-0.5 ,  0.5 ]])
    """
    n = probs.shape[0]
    scale = probs.dtype.type(g / n if n else 0.0)
    return _softmax_xent_backward_kernel(probs, targets, scale)


def softmax_xent_backward_numpy(probs: np.ndarray, targets: np.ndarray, g: float) -> np.ndarray:
    """NumPy twin of :func:`softmax_xent_backward`.

    >>> import numpy as np
    >>> softmax_xent_backward_numpy(np.array([[0.5, 0.5]]), np.array([0]), 1.0)
    array([[-0.5,  0.5]])
    """
    n = probs.shape[0]
    scale = probs.dtype.type(g / n if n else 0.0)
    out = probs.copy()
    out[np.arange(n), targets] -= 1
    out *= scale
    return out


@with_twin("softmax_forward_numpy")
def softmax_forward(x: np.ndarray) -> np.ndarray:
    """Softmax of each row, stable for large magnitudes.

    >>> import numpy as np
    >>> softmax_forward(np.array([[1e4, 1e4], [0.0, np.log(3.0)]])).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    if x.shape[1] == 0:
        return x.copy()
    return _softmax_kernel(x)


def softmax_forward_numpy(x: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`softmax_forward`.

    >>> import numpy as np
    >>> softmax_forward_numpy(np.zeros((1, 4), np.float32))
    array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
    """
    if x.shape[1] == 0:
        return x.copy()
    e = np.exp(x - x.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e
