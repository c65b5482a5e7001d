"""Memory layouts the edge-case and fuzz tests run every op on."""

from __future__ import annotations

import numpy as np

LAYOUTS = ("C", "F", "strided", "reversed", "transposed", "readonly")


def with_layout(a, kind: str) -> np.ndarray:
    """The same values as ``a`` in another memory layout."""
    a = np.asarray(a)
    if kind == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if kind == "C" or a.ndim == 0:
        return a.copy(order="C")
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
        view = big[(slice(None, None, 2),) * a.ndim]
        view[...] = a
        return view
    if kind == "reversed":
        rev = (slice(None, None, -1),) * a.ndim
        return a[rev].copy()[rev]
    if kind == "transposed":
        return a.T.copy().T
    raise ValueError(kind)
