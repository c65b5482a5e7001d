"""Rowwise softmax, log-softmax and fused softmax + cross-entropy, numerically stable.

Every row is shifted by its maximum before ``exp`` and the log-sum-exp is ``max + log(sum)``,
so logits of magnitude 1e4 give finite probabilities and a finite loss. Functions work on the
last axis of any ``(..., C)`` array (the leading axes are the rows). Results keep the logits'
float dtype; the cross-entropy mean over rows is accumulated in float64 (a long float32 running
sum over a big batch would lose digits) and returned in the logits' dtype as a 0-d array.

Cross-entropy targets are class indices, one per row, in ``[0, C)``; anything else raises
``ValueError``. The mean over zero rows is NaN, as in PyTorch.

Speed (``benchmarks/KERNELS.md``): the forward kernels call a scalar ``exp`` per element
(Numba has no SIMD ``exp`` without Intel SVML), so they win only while per-call overhead
dominates: narrow rows, about C <= 64 (e.g. 128x10, 32x65). For wider rows NumPy's SIMD
``exp`` makes the twins 2-4x faster (128x1000, 32x10000): use the twins there. The backward
kernel has no ``exp`` and wins at every measured width.
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
import numpy as np

from ._dtypes import float_dtype as _float_dtype

__all__ = [
    "log_softmax_forward",
    "log_softmax_forward_numpy",
    "softmax_forward",
    "softmax_forward_numpy",
    "softmax_xent_backward",
    "softmax_xent_backward_numpy",
    "softmax_xent_forward",
    "softmax_xent_forward_numpy",
]


def _rows(name: str, x):
    """(C-contiguous (N, C) float view, original shape) for an array of ndim >= 1."""
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"{name}: expected an array of shape (..., C), got a 0-d array")
    dtype = _float_dtype(name, x.dtype)
    c = x.shape[-1]
    n = x.size // c if c else int(np.prod(x.shape[:-1], dtype=np.int64))
    return np.ascontiguousarray(x, dtype=dtype).reshape(n, c), x.shape


def _targets(name: str, targets, n: int, c: int) -> np.ndarray:
    """Flat int64 class indices, one per row, each in [0, c)."""
    t = np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: targets must be integer class indices, got dtype {t.dtype}")
    if t.size != n:
        raise ValueError(
            f"{name}: expected one target per row ({n} rows), got targets of shape {t.shape}"
        )
    t = t.reshape(n)
    if n:
        lo, hi = t.min(), t.max()
        if lo < 0 or hi >= c:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name}: target {bad} out of range for {c} classes")
    return np.ascontiguousarray(t, dtype=np.int64)


def _scalar(name: str, g) -> float:
    g = np.asarray(g)
    if g.size != 1 or g.dtype.kind not in "biuf":
        raise ValueError(f"{name}: g must be a real scalar, got shape {g.shape} dtype {g.dtype}")
    return float(g.reshape(()))


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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softmax_xent_forward_kernel(x, targets):
    n = x.shape[0]
    probs = np.empty_like(x)
    total = 0.0  # float64 accumulator for the mean
    for r in range(n):
        m, s = _softmax_rows(x, probs, r)
        total += np.log(s) - (x[r, targets[r]] - m)
    return total / n if n else np.nan, probs


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softmax_xent_backward_kernel(probs, targets, scale):
    out = np.empty_like(probs)
    one = probs.dtype.type(1)
    for r in range(probs.shape[0]):
        for j in range(probs.shape[1]):
            out[r, j] = probs[r, j] * scale
        t = targets[r]
        out[r, t] = (probs[r, t] - one) * scale
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _softmax_kernel(x):
    probs = np.empty_like(x)
    for r in range(x.shape[0]):
        _softmax_rows(x, probs, r)
    return probs


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_softmax_kernel(x):
    out = np.empty_like(x)
    c = x.shape[1]
    for r in range(x.shape[0]):
        m = x[r, 0]
        for j in range(1, c):
            m = max(m, x[r, j])
        s = x.dtype.type(0)
        for j in range(c):
            z = x[r, j] - m
            out[r, j] = z
            s += np.exp(z)
        ls = np.log(s)
        for j in range(c):
            out[r, j] = out[r, j] - ls
    return out


# --------------------------------------------------------------------------- public wrappers


def softmax_xent_forward(logits, targets):
    """Mean cross-entropy of rowwise softmax(logits) against class ``targets``, and the softmax.

    Returns ``(loss, probs)``: ``loss`` a 0-d array of the logits' dtype, ``probs`` shaped like
    ``logits``.

    >>> import numpy as np
    >>> loss, probs = softmax_xent_forward(np.array([[0.0, 0.0], [1e4, 0.0]]), np.array([0, 1]))
    >>> round(float(loss), 6), probs[0].tolist()
    (5000.346574, [0.5, 0.5])
    """
    name = "softmax_xent_forward"
    x, shape = _rows(name, logits)
    t = _targets(name, targets, x.shape[0], x.shape[1])
    loss, probs = _softmax_xent_forward_kernel(x, t)
    return np.asarray(loss, dtype=x.dtype), probs.reshape(shape)


def softmax_xent_forward_numpy(logits, targets):
    """NumPy twin of :func:`softmax_xent_forward`.

    >>> import numpy as np
    >>> loss, probs = softmax_xent_forward_numpy(np.zeros((2, 4), np.float32), [1, 3])
    >>> loss.dtype, float(loss) == float(np.log(np.float32(4)))
    (dtype('float32'), True)
    """
    name = "softmax_xent_forward"
    x, shape = _rows(name, logits)
    n, c = x.shape
    t = _targets(name, targets, n, c)
    if n == 0:
        return np.asarray(np.nan, dtype=x.dtype), np.empty(shape, x.dtype)
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    probs = e / s
    per_row = np.log(s[:, 0]) - z[np.arange(n), t]
    return np.asarray(per_row.mean(dtype=np.float64), dtype=x.dtype), probs.reshape(shape)


def softmax_xent_backward(probs, targets, g=1.0) -> np.ndarray:
    """Gradient of ``g * mean cross-entropy`` w.r.t. the logits: ``(probs - onehot) * g / N``.

    ``probs`` is the softmax from :func:`softmax_xent_forward`; ``g`` a scalar.

    >>> import numpy as np
    >>> softmax_xent_backward(np.array([[0.25, 0.75], [0.5, 0.5]]), np.array([1, 0]), 2.0)
    array([[ 0.25, -0.25],
           [-0.5 ,  0.5 ]])
    """
    name = "softmax_xent_backward"
    p, shape = _rows(name, probs)
    t = _targets(name, targets, p.shape[0], p.shape[1])
    g = _scalar(name, g)
    scale = p.dtype.type(g / p.shape[0] if p.shape[0] else 0.0)
    return _softmax_xent_backward_kernel(p, t, scale).reshape(shape)


def softmax_xent_backward_numpy(probs, targets, g=1.0) -> np.ndarray:
    """NumPy twin of :func:`softmax_xent_backward`.

    >>> import numpy as np
    >>> softmax_xent_backward_numpy(np.array([[0.5, 0.5]]), [0])
    array([[-0.5,  0.5]])
    """
    name = "softmax_xent_backward"
    p, shape = _rows(name, probs)
    n = p.shape[0]
    t = _targets(name, targets, n, p.shape[1])
    g = _scalar(name, g)
    scale = p.dtype.type(g / n if n else 0.0)
    out = p.copy()
    out[np.arange(n), t] -= 1
    out *= scale
    return out.reshape(shape)


def softmax_forward(x) -> np.ndarray:
    """Softmax along the last axis, stable for large magnitudes.

    >>> import numpy as np
    >>> softmax_forward(np.array([[1e4, 1e4], [0.0, np.log(3.0)]])).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    x2, shape = _rows("softmax_forward", x)
    if x2.shape[1] == 0:
        return x2.reshape(shape)
    return _softmax_kernel(x2).reshape(shape)


def softmax_forward_numpy(x) -> np.ndarray:
    """NumPy twin of :func:`softmax_forward`.

    >>> import numpy as np
    >>> softmax_forward_numpy(np.zeros(4, np.float32))
    array([0.25, 0.25, 0.25, 0.25], dtype=float32)
    """
    x2, shape = _rows("softmax_forward", x)
    if x2.shape[1] == 0:
        return x2.reshape(shape)
    e = np.exp(x2 - x2.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e.reshape(shape)


def log_softmax_forward(x) -> np.ndarray:
    """Log-softmax along the last axis: ``x - max - log(sum(exp(x - max)))``.

    >>> import numpy as np
    >>> log_softmax_forward(np.array([1e4, 1e4]))
    array([-0.69314718, -0.69314718])
    """
    x2, shape = _rows("log_softmax_forward", x)
    if x2.shape[1] == 0:
        return x2.reshape(shape)
    return _log_softmax_kernel(x2).reshape(shape)


def log_softmax_forward_numpy(x) -> np.ndarray:
    """NumPy twin of :func:`log_softmax_forward`.

    >>> import numpy as np
    >>> log_softmax_forward_numpy(np.array([[0.0, 0.0]]))
    array([[-0.69314718, -0.69314718]])
    """
    x2, shape = _rows("log_softmax_forward", x)
    if x2.shape[1] == 0:
        return x2.reshape(shape)
    z = x2 - x2.max(axis=1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
    return z.reshape(shape)
