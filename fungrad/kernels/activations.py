"""Fused elementwise activation forward/backward: one pass instead of a chain of ufuncs.

    tanh_backward(g, out)    = g * (1 - out * out)      out = tanh(x)
    sigmoid_forward(x)       = 1 / (1 + exp(-x)), stable: never overflows, no warnings
                               (exp from NumPy's SIMD loop, the rest fused in the kernel)
    sigmoid_backward(g, out) = g * out * (1 - out)      out = sigmoid(x)
    relu_backward(g, x)      = g * (x > 0)

Any shape; the two arguments of a backward must have the same shape (no broadcasting: the
cotangent of an elementwise op has its output's shape). The result dtype is float32 when the
inputs are float32 (float16 computes in float32), float64 otherwise (float64 or integers).
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
import numpy as np

from ._dtypes import float_dtype as _float_dtype

__all__ = [
    "relu_backward",
    "relu_backward_numpy",
    "sigmoid_backward",
    "sigmoid_backward_numpy",
    "sigmoid_forward",
    "sigmoid_forward_numpy",
    "tanh_backward",
    "tanh_backward_numpy",
]


def _common(name: str, arrays):
    """The arrays as ndarrays, their shared shape and their common float dtype (checked)."""
    arrays = [np.asarray(a) for a in arrays]
    shape = arrays[0].shape
    for a in arrays[1:]:
        if a.shape != shape:
            raise ValueError(
                f"{name}: arguments must have the same shape, got {[b.shape for b in arrays]}"
            )
    return arrays, shape, _float_dtype(name, *(a.dtype for a in arrays))


def _flat(name: str, *arrays):
    """C-contiguous 1-D views in the common float dtype, and the shared shape."""
    arrays, shape, dtype = _common(name, arrays)
    return [np.ascontiguousarray(a, dtype=dtype).reshape(-1) for a in arrays], shape


def _same(name: str, *arrays):
    """Arrays (at least 1-d, any layout) in the common float dtype, and the shared shape."""
    arrays, shape, dtype = _common(name, arrays)
    return [np.atleast_1d(a.astype(dtype, copy=False)) for a in arrays], shape


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tanh_backward_kernel(g, out):
    res = np.empty_like(g)
    one = g.dtype.type(1)
    for i in range(g.shape[0]):
        res[i] = g[i] * (one - out[i] * out[i])
    return res


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sigmoid_from_exp_kernel(x, e):
    """Overwrite e = exp(-|x|) with sigmoid(x)."""
    one = x.dtype.type(1)
    for i in range(x.shape[0]):
        ei = e[i]
        e[i] = (one if x[i] >= 0 else ei) / (one + ei)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sigmoid_backward_kernel(g, out):
    res = np.empty_like(g)
    one = g.dtype.type(1)
    for i in range(g.shape[0]):
        res[i] = g[i] * out[i] * (one - out[i])
    return res


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _relu_backward_kernel(g, x):
    res = np.empty_like(g)
    one = g.dtype.type(1)
    zero = g.dtype.type(0)
    for i in range(g.shape[0]):
        res[i] = g[i] * (one if x[i] > 0 else zero)
    return res


# --------------------------------------------------------------------------- public wrappers


def tanh_backward(g, out) -> np.ndarray:
    """``g * (1 - out**2)``: the VJP of ``out = tanh(x)``.

    >>> import numpy as np
    >>> tanh_backward(np.array([2.0, 1.0]), np.array([0.5, 0.0]))
    array([1.5, 1. ])
    """
    (g2, o2), shape = _flat("tanh_backward", g, out)
    return _tanh_backward_kernel(g2, o2).reshape(shape)


def tanh_backward_numpy(g, out) -> np.ndarray:
    """NumPy twin of :func:`tanh_backward`.

    >>> import numpy as np
    >>> tanh_backward_numpy(np.float32([2.0]), np.float32([0.5]))
    array([1.5], dtype=float32)
    """
    (g, out), shape = _same("tanh_backward", g, out)
    res = out * out
    np.subtract(1, res, out=res)
    res *= g
    return res.reshape(shape)


def _exp_neg_abs(x: np.ndarray) -> np.ndarray:
    """exp(-|x|), in (0, 1] so it cannot overflow, in a new array (two passes in place)."""
    e = np.abs(x)
    np.negative(e, out=e)
    return np.exp(e, out=e)


def sigmoid_forward(x) -> np.ndarray:
    """Logistic sigmoid, computed from ``exp(-|x|)`` so it never overflows.

    ``exp`` comes from NumPy, which has SIMD ``exp`` (Numba has none without Intel SVML, and
    a scalar ``exp`` per element lost to NumPy); the kernel fuses the rest into one pass.

    >>> import numpy as np
    >>> sigmoid_forward(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    (x2,), shape = _flat("sigmoid_forward", x)
    e = _exp_neg_abs(x2)
    _sigmoid_from_exp_kernel(x2, e)
    return e.reshape(shape)


def sigmoid_forward_numpy(x) -> np.ndarray:
    """NumPy twin of :func:`sigmoid_forward`.

    >>> import numpy as np
    >>> sigmoid_forward_numpy(np.float32([0.0, -200.0]))
    array([0.5, 0. ], dtype=float32)
    """
    (x,), shape = _same("sigmoid_forward", x)
    e = _exp_neg_abs(x)
    num = np.where(x >= 0, x.dtype.type(1), e)
    e += 1
    num /= e
    return num.reshape(shape)


def sigmoid_backward(g, out) -> np.ndarray:
    """``g * out * (1 - out)``: the VJP of ``out = sigmoid(x)``.

    >>> import numpy as np
    >>> sigmoid_backward(np.array([4.0]), np.array([0.5]))
    array([1.])
    """
    (g2, o2), shape = _flat("sigmoid_backward", g, out)
    return _sigmoid_backward_kernel(g2, o2).reshape(shape)


def sigmoid_backward_numpy(g, out) -> np.ndarray:
    """NumPy twin of :func:`sigmoid_backward`.

    >>> import numpy as np
    >>> sigmoid_backward_numpy(np.array([4.0]), np.array([0.5]))
    array([1.])
    """
    (g, out), shape = _same("sigmoid_backward", g, out)
    res = g * out
    res *= 1 - out
    return res.reshape(shape)


def relu_backward(g, x) -> np.ndarray:
    """``g * (x > 0)``: the VJP of ``relu(x)`` (zero gradient at the kink ``x == 0``).

    >>> import numpy as np
    >>> relu_backward(np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.0, 5.0]))
    array([0., 0., 3.])
    """
    (g2, x2), shape = _flat("relu_backward", g, x)
    return _relu_backward_kernel(g2, x2).reshape(shape)


def relu_backward_numpy(g, x) -> np.ndarray:
    """NumPy twin of :func:`relu_backward`.

    >>> import numpy as np
    >>> relu_backward_numpy(np.float32([1.0, 2.0]), np.float32([-1.0, 5.0]))
    array([0., 2.], dtype=float32)
    """
    (g, x), shape = _same("relu_backward", g, x)
    return (g * (x > 0)).reshape(shape)
