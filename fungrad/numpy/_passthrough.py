"""NumPy functions whose results carry no gradient, made to accept Tensors.

Indices (``argmax``), comparisons and logic, tests (``allclose``), shapes, and arrays created
from a Tensor's shape (``zeros_like``) do not depend differentiably on values, so they run on the
Tensors' data and return NumPy's result: that is exact, not a detached gradient.
"""

from __future__ import annotations

import numpy

from ._wrap import nondiff

__all__: list[str] = []

_FUNCTIONS = [
    "shape", "ndim", "size", "zeros_like", "ones_like", "empty_like",
    "argmax", "argmin", "argsort", "argpartition", "nanargmax", "nanargmin", "argwhere",
    "nonzero", "flatnonzero", "count_nonzero",
    "searchsorted", "digitize", "allclose", "isclose", "array_equal", "array_equiv",
    "any", "all", "result_type", "iscomplexobj", "isrealobj", "iscomplex", "isreal",
    "unique", "bincount",
    "histogram", "isin", "lexsort", "unravel_index", "ravel_multi_index", "may_share_memory",
    "shares_memory", "min_scalar_type", "can_cast", "ndenumerate", "ndindex",
]
_UFUNCS = [
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not", "isnan", "isinf",
    "isfinite", "signbit", "isnat", "bitwise_and", "bitwise_or", "bitwise_xor", "invert",
    "left_shift", "right_shift", "gcd", "lcm",
]

nondiff(*[getattr(numpy, name) for name in _FUNCTIONS + _UFUNCS if hasattr(numpy, name)])
