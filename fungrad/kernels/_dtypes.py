"""The dtype rule every kernel wrapper shares (no Numba import here)."""

from __future__ import annotations

import numpy as np


def float_dtype(name: str, *dtypes) -> np.dtype:
    """float32 (and float16) compute in float32; float64, integers and bools in float64."""
    dtype = np.result_type(*dtypes)
    if dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numeric arrays, got dtype "
                        f"{', '.join(str(np.dtype(d)) for d in dtypes)}")
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)
