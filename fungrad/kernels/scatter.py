"""Scatter-add: the backward of indexing and embedding lookups.

``scatter_add(n_rows, indices, values)`` returns a zero table of ``n_rows`` rows with every row
of ``values`` added at its index; repeated indices accumulate. The kernel is one pass over the
values. Its twin, ``scatter_add_numpy``, is the fastest vectorised NumPy we measured
(``benchmarks/kernels_bench.py``): ``np.add.at`` on the flattened table with flat indices
``index * D + column``. It beat ``np.add.at`` on rows, sort + ``np.add.reduceat`` and
``np.bincount`` (per column, or once on flat indices) for float32 and tied ``np.bincount`` for
float64, and, unlike ``bincount``, it accumulates in the values' dtype exactly like the kernel.

Sums accumulate in the values' dtype (float32 stays float32), in index order, as ``np.add.at``.

Both functions share one validation step: indices are assumed to have been checked by the
caller, but an index outside ``[-n_rows, n_rows)`` still raises ``ValueError`` (one min/max
pass) rather than writing out of bounds. Negative indices count from the end, as in NumPy.
"""

from __future__ import annotations

import operator

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
import numpy as np

from ._dtypes import float_dtype as _float_dtype

__all__ = ["scatter_add", "scatter_add_numpy"]


def _prepare(n_rows, indices, values):
    """Validate and normalise to (n_rows, int64 indices (N,), C-contiguous values (N, D), shape)."""
    try:
        n_rows = operator.index(n_rows)
    except TypeError:
        raise TypeError(
            f"scatter_add: n_rows must be an integer, got {type(n_rows).__name__}"
        ) from None
    if n_rows < 0:
        raise ValueError(f"scatter_add: n_rows must be >= 0, got {n_rows}")
    indices = np.asarray(indices)
    values = np.asarray(values)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"scatter_add: indices must be integers, got dtype {indices.dtype}")
    dtype = _float_dtype("scatter_add", values.dtype)
    if values.shape[: indices.ndim] != indices.shape:
        raise ValueError(
            f"scatter_add: values shape {values.shape} must start with indices shape "
            f"{indices.shape} (values.shape == indices.shape + row_shape)"
        )
    row_shape = values.shape[indices.ndim :]
    n = indices.size
    flat_idx = indices.reshape(n)
    if n:
        lo, hi = flat_idx.min(), flat_idx.max()
        if lo < -n_rows or hi >= n_rows:
            bad = lo if lo < -n_rows else hi
            raise ValueError(
                f"scatter_add: index {bad} out of range for {n_rows} rows "
                f"(valid: {-n_rows} to {n_rows - 1})"
            )
        flat_idx = flat_idx.astype(np.int64, copy=False)
        if lo < 0:
            flat_idx = np.where(flat_idx < 0, flat_idx + n_rows, flat_idx)
    flat_idx = np.ascontiguousarray(flat_idx, dtype=np.int64)
    d = int(np.prod(row_shape, dtype=np.int64))
    flat_values = np.ascontiguousarray(values, dtype=dtype).reshape(n, d)
    return n_rows, flat_idx, flat_values, (n_rows,) + row_shape


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scatter_add_kernel(n_rows, indices, values):
    out = np.zeros((n_rows, values.shape[1]), dtype=values.dtype)
    for i in range(indices.shape[0]):
        row = indices[i]
        for j in range(values.shape[1]):
            out[row, j] += values[i, j]
    return out


def scatter_add(n_rows: int, indices, values) -> np.ndarray:
    """Sum rows of ``values`` into a zero table of ``n_rows`` rows at ``indices``.

    ``values.shape == indices.shape + row_shape``; the result has shape
    ``(n_rows,) + row_shape`` and the values' float dtype (float32 stays float32; integer
    values give float64). Raises ``ValueError`` for an index outside ``[-n_rows, n_rows)``.

    >>> import numpy as np
    >>> scatter_add(3, np.array([0, 2, 0]), np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    array([[4., 4.],
           [0., 0.],
           [2., 2.]])
    """
    n_rows, idx, vals, out_shape = _prepare(n_rows, indices, values)
    out = _scatter_add_kernel(n_rows, idx, vals)
    # a view would tell the engine the array may be shared, costing a copy of the whole table
    return out if out.shape == out_shape else out.reshape(out_shape)


def scatter_add_numpy(n_rows: int, indices, values) -> np.ndarray:
    """NumPy twin of :func:`scatter_add` (``np.add.at`` on flat indices), same results.

    >>> import numpy as np
    >>> scatter_add_numpy(2, np.array([1, 1]), np.array([1.5, 2.0], dtype=np.float32))
    array([0. , 3.5], dtype=float32)
    """
    n_rows, idx, vals, out_shape = _prepare(n_rows, indices, values)
    d = vals.shape[1]
    out = np.zeros(n_rows * d, dtype=vals.dtype)
    np.add.at(out, (idx[:, None] * d + np.arange(d)).reshape(-1), vals.reshape(-1))
    return out.reshape(out_shape)
