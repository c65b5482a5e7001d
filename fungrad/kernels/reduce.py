"""Sum the middle axis of a C-contiguous ``(A, M, K)`` array: the bias-gradient reduction.

``sum_middle(x)`` returns ``x.sum(axis=1)``, shape ``(A, K)``, adding the ``M`` rows of each
block in order in the input dtype, as NumPy does along a non-contiguous axis. Every broadcast
cotangent whose summed axes form one run between kept runs reduces to this shape once
neighbouring axes are merged (``(B, H) -> (H,)`` is ``(1, B, H)``; ``(B, T, H) -> (1, 1, H)``
and ``(N, C, H, W) -> (N, 1, H, W)`` likewise): ``fungrad.primitives.shape.sum_to`` does the merging.

The kernel is a plain row-accumulating loop; NumPy's reduction over a middle axis pays a
per-call setup of a few microseconds and walks the array in a less cache-friendly order
(3-4x slower at (100, 16) and (800, 512), ``benchmarks/KERNELS.md``).

Entry point contract (checked by the caller, not here): ``x`` is a C-contiguous 3-d float32
or float64 ndarray.
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
from ._background import deferrable, with_twin
import numpy as np

__all__ = ["sum_middle", "sum_middle_numpy"]


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sum_middle_kernel(x):
    out = np.zeros((x.shape[0], x.shape[2]), dtype=x.dtype)
    for a in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                out[a, j] += x[a, i, j]
    return out


@with_twin("sum_middle_numpy")
def sum_middle(x: np.ndarray) -> np.ndarray:
    """``x.sum(axis=1)`` for a C-contiguous float ``(A, M, K)`` array, in one pass.

    >>> import numpy as np
    >>> sum_middle(np.arange(12.0).reshape(1, 3, 4))
    array([[12., 15., 18., 21.]])
    """
    return _sum_middle_kernel(x)


def sum_middle_numpy(x: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`sum_middle`.

    >>> import numpy as np
    >>> sum_middle_numpy(np.ones((2, 3, 1), np.float32))
    array([[3.],
           [3.]], dtype=float32)
    """
    return np.add.reduce(x, axis=1)
