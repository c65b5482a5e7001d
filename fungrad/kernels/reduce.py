"""Sum a broadcast cotangent back to an input's shape (NumPy broadcasting rules).

``sum_to_shape(x, shape)`` sums away the leading axes that broadcasting added and, with
keepdims, every axis where ``shape`` has 1 and ``x`` does not. Axes are first merged into
alternating runs of kept and summed axes; when the runs are ``[summed, kept]`` or
``[kept, summed, kept]`` (a bias gradient: ``(B, H) -> (H,)``, ``(B, T, H) -> (1, 1, H)``,
``(N, C, H, W) -> (N, 1, H, W)``) on a float32/float64 C-contiguous array, a Numba kernel
adds whole rows in one pass; every other case, and the twin ``sum_to_shape_numpy``, is one
``np.add.reduce`` over a tuple of axes. Both add rows in the same order in the input dtype, as
NumPy does along a non-contiguous axis.
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
import numpy as np

__all__ = ["sum_to_shape", "sum_to_shape_numpy"]


def _plan(x: np.ndarray, shape):
    """(target shape tuple, axes of x to sum) after checking that x broadcasts from shape."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        shape = (int(shape),)
    lead = x.ndim - len(shape)
    if lead < 0 or any(
        s != d and s != 1 for s, d in zip(shape, x.shape[lead:])
    ) or any(s < 0 for s in shape):
        raise ValueError(
            f"sum_to_shape: cannot sum an array of shape {x.shape} to shape {shape}: "
            f"{shape} does not broadcast to {x.shape}"
        )
    axes = tuple(range(lead)) + tuple(
        lead + k for k, s in enumerate(shape) if s == 1 and x.shape[lead + k] != 1
    )
    return shape, axes


def _runs(x: np.ndarray, axes) -> list:
    """Merged runs ``[summed?, size]`` of consecutive axes, size-1 axes dropped."""
    summed = set(axes)
    runs = []
    for k, d in enumerate(x.shape):
        if d == 1:
            continue
        flag = k in summed
        if runs and runs[-1][0] == flag:
            runs[-1][1] *= d
        else:
            runs.append([flag, d])
    return runs


def sum_to_shape_numpy(x, shape) -> np.ndarray:
    """NumPy twin of :func:`sum_to_shape`: one ``np.add.reduce`` over the broadcast axes.

    A C-contiguous input is first viewed with its runs of summed and kept axes merged, which
    makes NumPy's reduction loop much faster than a reduction over a tuple of axes.

    >>> import numpy as np
    >>> sum_to_shape_numpy(np.ones((2, 3, 4)), (3, 1))
    array([[8.],
           [8.],
           [8.]])
    """
    x = np.asarray(x)
    shape, axes = _plan(x, shape)
    if x.shape == shape:
        return x
    if not axes:
        return x.reshape(shape)
    if x.flags.c_contiguous:
        runs = _runs(x, axes)
        axes = tuple(k for k, (summed, _) in enumerate(runs) if summed)
        if not axes:  # every summed axis has size 1
            return x.reshape(shape)
        merged = x.reshape([size for _, size in runs])
        return np.add.reduce(merged, axis=axes).reshape(shape)
    return np.add.reduce(x, axis=axes, keepdims=True).reshape(shape)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sum_middle_kernel(x):
    """(A, M, K) -> (A, K): add the M rows of each of the A blocks."""
    out = np.zeros((x.shape[0], x.shape[2]), dtype=x.dtype)
    for a in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                out[a, j] += x[a, i, j]
    return out


def sum_to_shape(x, shape) -> np.ndarray:
    """Sum ``x`` down to ``shape``, undoing NumPy broadcasting.

    Returns ``x`` itself (not a copy) when nothing needs summing, reshaped if only size-1
    axes differ. Raises ``ValueError`` when ``shape`` does not broadcast to ``x.shape``.

    >>> import numpy as np
    >>> sum_to_shape(np.ones((4, 3)), (3,))
    array([4., 4., 4.])
    >>> sum_to_shape(np.ones((4, 3)), (4, 1)).ravel()
    array([3., 3., 3., 3.])
    """
    x = np.asarray(x)
    shape, axes = _plan(x, shape)
    if x.shape == shape:
        return x
    if not axes:
        return x.reshape(shape)
    if x.flags.c_contiguous and (x.dtype == np.float32 or x.dtype == np.float64):
        runs = _runs(x, axes)
        flags = [summed for summed, _ in runs]
        if flags == [True, False]:
            amk = (1, runs[0][1], runs[1][1])
        elif flags == [False, True, False]:
            amk = (runs[0][1], runs[1][1], runs[2][1])
        else:
            amk = None
        if amk is not None:
            return _sum_middle_kernel(x.reshape(amk)).reshape(shape)
    return sum_to_shape_numpy(x, shape)
