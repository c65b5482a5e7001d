"""Embedding bags: gather rows of a table and sum them per bag, and the transpose (scatter-add).

    bag_sum(table, indices, scale)        out[b] = scale * sum_k table[indices[b, k]]
    bag_scatter(n_rows, indices, g, scale) out[r] = scale * sum of g[b] over every (b, k)
                                                    with indices[b, k] == r

``bag_sum`` never materialises the ``(B, L, D)`` gathered rows that ``table[indices].sum(1)``
would; ``bag_scatter`` never materialises ``g`` repeated ``L`` times. Sums run in index order
in the table's (or ``g``'s) dtype. Twins: ``bag_sum_numpy`` adds one ``take`` per bag position
(``L`` gathers of ``(B, D)`` beat one ``(B, L, D)`` gather and a reduction 2-3x,
``benchmarks/KERNELS.md``); ``bag_scatter_numpy`` is ``np.add.at`` on flat indices, the
fastest NumPy scatter (see :mod:`fungrad.kernels.scatter`).

Entry point contract (the calling op has checked and normalised everything once; nothing is
checked again here): ``table``/``g`` C-contiguous float32 or float64 ``(rows, D)`` / ``(B, D)``
arrays, ``indices`` a C-contiguous ``(B, L)`` int64 array of values in ``[0, rows)``, ``scale``
a number (``1`` for sums, ``1 / L`` for means).
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
from ._background import deferrable, with_twin
import numpy as np

__all__ = ["bag_scatter", "bag_scatter_numpy", "bag_sum", "bag_sum_numpy"]


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bag_sum_kernel(table, indices, scale):
    n_bags, length = indices.shape
    d = table.shape[1]
    out = np.zeros((n_bags, d), dtype=table.dtype)
    for b in range(n_bags):
        for k in range(length):
            row = indices[b, k]
            for j in range(d):
                out[b, j] += table[row, j]
        if scale != 1:
            for j in range(d):
                out[b, j] *= scale
    return out


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bag_scatter_kernel(n_rows, indices, g, scale):
    n_bags, length = indices.shape
    d = g.shape[1]
    out = np.zeros((n_rows, d), dtype=g.dtype)
    row_g = np.empty(d, dtype=g.dtype)
    for b in range(n_bags):
        for j in range(d):
            row_g[j] = g[b, j] * scale
        for k in range(length):
            row = indices[b, k]
            for j in range(d):
                out[row, j] += row_g[j]
    return out


@with_twin("bag_sum_numpy")
def bag_sum(table: np.ndarray, indices: np.ndarray, scale) -> np.ndarray:
    """``scale * table[indices].sum(1)`` without the gathered ``(B, L, D)`` array.

    >>> import numpy as np
    >>> bag_sum(np.arange(6.0).reshape(3, 2), np.array([[0, 2], [1, 1]]), 1.0)
    array([[4., 6.],
           [4., 6.]])
    """
    return _bag_sum_kernel(table, indices, table.dtype.type(scale))


def bag_sum_numpy(table: np.ndarray, indices: np.ndarray, scale) -> np.ndarray:
    """NumPy twin of :func:`bag_sum`.

    >>> import numpy as np
    >>> bag_sum_numpy(np.ones((2, 2), np.float32), np.array([[0, 1, 1]]), 1 / 3)
    array([[1., 1.]], dtype=float32)
    """
    n_bags, length = indices.shape
    out = np.zeros((n_bags, table.shape[1]), dtype=table.dtype)
    for k in range(length):
        out += table.take(indices[:, k], axis=0)
    if scale != 1:
        out *= table.dtype.type(scale)
    return out


@with_twin("bag_scatter_numpy")
def bag_scatter(n_rows: int, indices: np.ndarray, g: np.ndarray, scale) -> np.ndarray:
    """The transpose of :func:`bag_sum`: ``scale * g[b]`` added at every index of bag ``b``.

    >>> import numpy as np
    >>> bag_scatter(3, np.array([[0, 2], [2, 2]]), np.array([[1.0], [10.0]]), 1.0)
    array([[ 1.],
           [ 0.],
           [21.]])
    """
    return _bag_scatter_kernel(n_rows, indices, g, g.dtype.type(scale))


def bag_scatter_numpy(n_rows: int, indices: np.ndarray, g: np.ndarray, scale) -> np.ndarray:
    """NumPy twin of :func:`bag_scatter`.

    >>> import numpy as np
    >>> bag_scatter_numpy(2, np.array([[1, 1]]), np.array([[3.0]], np.float32), 0.5)
    array([[0.],
           [3.]], dtype=float32)
    """
    d = g.shape[1]
    length = indices.shape[1]
    rows = np.repeat(g * g.dtype.type(scale), length, axis=0)
    out = np.zeros(n_rows * d, dtype=g.dtype)
    np.add.at(out, (indices.reshape(-1, 1) * d + np.arange(d)).reshape(-1), rows.reshape(-1))
    return out.reshape(n_rows, d)
