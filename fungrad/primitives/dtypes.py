"""The one dtype rule for ops that compute in floating point (sigmoid, softplus, ...).

NumPy's floating ufuncs (``exp``, ``tanh``, ``logaddexp``) pick their result dtype from the input
dtype alone: floats keep theirs, and bools and integers get the smallest float that holds them
(int8 and bool -> float16, int16 -> float32, int32/int64 -> float64). An op that computes with a
Numba kernel for large arrays and with NumPy for small ones converts its input with
:func:`as_float` first, so its result dtype and the inputs it accepts never depend on the size.

>>> import numpy as np
>>> from fungrad.primitives.dtypes import float_result_dtype
>>> [float_result_dtype(np.dtype(t)).name for t in ("bool", "int8", "int16", "int64", "float32")]
['float16', 'float16', 'float32', 'float64', 'float32']
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["float_result_dtype", "as_float"]


def float_result_dtype(dtype: Any) -> np.dtype:
    """The floating dtype NumPy's float ufuncs give for an input of ``dtype``.

    >>> import numpy as np
    >>> from fungrad.primitives.dtypes import float_result_dtype
    >>> float_result_dtype(np.int16)
    dtype('float32')
    """
    dt = np.dtype(dtype)
    if dt.kind in "biu":
        return np.result_type(dt, np.float16)
    return dt


def as_float(x: Any) -> np.ndarray:
    """``x`` as an ndarray of :func:`float_result_dtype` (no copy when it already is one).

    >>> import numpy as np
    >>> from fungrad.primitives.dtypes import as_float
    >>> as_float(np.array([True, False])).dtype
    dtype('float16')
    """
    x = np.asarray(x)
    if x.dtype.kind == "c":  # these ops have no complex meaning (apply names the op)
        raise TypeError(f"expected real numbers, got dtype {x.dtype}")
    return x.astype(float_result_dtype(x.dtype), copy=False)
