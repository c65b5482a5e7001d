"""What the distributions share: standardizing a value, the log of a scale, and ``rvs``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import numpy as fnp
from ...registry import unwrap
from .._common import scipy_module

__all__ = ["standardize", "LOG_2PI", "LOG_PI", "draw", "log_of_cdf"]

LOG_2PI = math.log(2.0 * math.pi)
LOG_PI = math.log(math.pi)


def standardize(x: Any, loc: Any, scale: Any) -> Any:
    """``(x - loc) / scale``: every location-scale family is its standard form of this."""
    return (x - loc) / scale


def log_of_cdf(cdf: Any) -> Any:
    """log of a probability computed as such (where SciPy has no more accurate formula)."""
    return fnp.log(cdf)


def draw(name: str, *args: Any, **kwargs: Any) -> np.ndarray:
    """SciPy's ``scipy.stats.<name>.rvs(*args, **kwargs)`` (random draws are not
    differentiated: parameters given as Tensors are read as constants)."""
    dist = getattr(scipy_module("stats"), name)
    return dist.rvs(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in kwargs.items()})
