"""Fused elementwise activation: one pass instead of a chain of ufuncs.

    sigmoid_forward(x)       = 1 / (1 + exp(-x)), stable: never overflows, no warnings
                               (exp from NumPy's SIMD loop, the rest fused in the kernel)

Any shape. The result dtype is float32 when the input is float32 (float16 computes in
float32), float64 otherwise (float64 or integers).

(Fused backwards of tanh, sigmoid and relu were measured and removed: a kernel call beats
``g * (1 - out * out)`` by ~10 us at 128x256 but loses at the 64-vectors of deep_chain once
it sits behind an op of its own, and no benchmark step gains 1%; ``benchmarks/KERNELS.md``.)
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
from ._background import deferrable, with_twin
import numpy as np

from ._dtypes import float_dtype as _float_dtype

__all__ = ["sigmoid_forward", "sigmoid_forward_numpy"]


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


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sigmoid_from_exp_kernel(x, e):
    """Overwrite e = exp(-|x|) with sigmoid(x)."""
    one = x.dtype.type(1)
    for i in range(x.shape[0]):
        ei = e[i]
        e[i] = (one if x[i] >= 0 else ei) / (one + ei)


# --------------------------------------------------------------------------- public wrappers


def _exp_neg_abs(x: np.ndarray) -> np.ndarray:
    """exp(-|x|), in (0, 1] so it cannot overflow, in a new array (two passes in place)."""
    e = np.abs(x)
    np.negative(e, out=e)
    return np.exp(e, out=e)


@with_twin("sigmoid_forward_numpy")
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
