"""Verification for users: finite-difference gradient checks and Hypothesis strategies.

``fungrad.testing.strategies`` imports Hypothesis on first use, so the runtime never needs it.

>>> import numpy as np, fungrad as fg
>>> from fungrad.testing import check_grads
>>> check_grads(fg.sigmoid, np.array([0.5, -2.0]), order=2)
"""

from __future__ import annotations

import importlib
from typing import Any

from ._check import check_grads

__all__ = ["check_grads", "strategies"]


def __getattr__(name: str) -> Any:
    if name == "strategies":
        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module 'fungrad.testing' has no attribute '{name}'")
