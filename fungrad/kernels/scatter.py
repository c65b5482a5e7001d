"""Scatter-add: the backward of indexing and embedding lookups.

``scatter_add(n_rows, indices, values)`` returns a zero table of ``n_rows`` rows with every row
of ``values`` added at its index; repeated indices accumulate, in index order, in the values'
dtype (float32 stays float32), as ``np.add.at`` does. The kernel is one pass over the values.
Its twin, ``scatter_add_numpy``, is the fastest vectorised NumPy we measured
(``benchmarks/kernels_bench.py``): ``np.add.at`` on the flattened table with flat indices
``index * D + column``. It beat ``np.add.at`` on rows, sort + ``np.add.reduceat`` and
``np.bincount`` (per column, or once on flat indices) for float32 and tied ``np.bincount`` for
float64, and, unlike ``bincount``, it accumulates in the values' dtype exactly like the kernel.

Entry point contract (the calling op has checked and normalised everything once, so nothing is
checked again here): ``indices`` a C-contiguous 1-d int64 array of values in ``[0, n_rows)``,
``values`` a C-contiguous ``(len(indices), D)`` float32 or float64 array.
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
from ._background import deferrable, with_twin
import numpy as np

__all__ = ["scatter_add", "scatter_add_numpy"]


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scatter_add_kernel(n_rows, indices, values):
    out = np.zeros((n_rows, values.shape[1]), dtype=values.dtype)
    for i in range(indices.shape[0]):
        row = indices[i]
        for j in range(values.shape[1]):
            out[row, j] += values[i, j]
    return out


@with_twin("scatter_add_numpy")
def scatter_add(n_rows: int, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum the rows of ``values`` into a zero ``(n_rows, D)`` table at ``indices``.

    >>> import numpy as np
    >>> scatter_add(3, np.array([0, 2, 0]), np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    array([[4., 4.],
           [0., 0.],
           [2., 2.]])
    """
    return _scatter_add_kernel(n_rows, indices, values)


def scatter_add_numpy(n_rows: int, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`scatter_add` (``np.add.at`` on flat indices), same results.

    >>> import numpy as np
    >>> scatter_add_numpy(2, np.array([1, 1]), np.array([[1.5], [2.0]], dtype=np.float32))
    array([[0. ],
           [3.5]], dtype=float32)
    """
    d = values.shape[1]
    out = np.zeros(n_rows * d, dtype=values.dtype)
    np.add.at(out, (indices[:, None] * d + np.arange(d)).reshape(-1), values.reshape(-1))
    return out.reshape(n_rows, d)
