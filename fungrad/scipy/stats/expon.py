"""The exponential distribution, as ``scipy.stats.expon``: differentiable in x, loc, scale.

>>> import numpy as np
>>> from fungrad.scipy.stats import expon
>>> float(expon.logpdf(2.0))
-2.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import numpy as fnp
from ...registry import unwrap
from ._base import draw, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def _inside(z: Any) -> np.ndarray:
    return np.asarray(unwrap(z)) >= 0


def logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log density: -z - log(scale) for z = (x - loc) / scale >= 0, -inf below."""
    z = standardize(x, loc, scale)
    return fnp.where(_inside(z), -z - fnp.log(scale), -np.inf)


def pdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The density."""
    return fnp.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x) = 1 - exp(-z)."""
    z = standardize(x, loc, scale)
    return fnp.where(_inside(z), -fnp.expm1(-z), 0.0)


def logcdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X <= x)."""
    return fnp.log(cdf(x, loc, scale))


def logsf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X > x) = -z."""
    z = standardize(x, loc, scale)
    return fnp.where(_inside(z), -z, 0.0)


def sf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x) = exp(-z)."""
    return fnp.exp(logsf(x, loc, scale))


def rvs(*args: Any, **kwargs: Any) -> Any:
    """Random draws from scipy.stats.expon (not differentiated: Tensor parameters are read
    as constants)."""
    return draw("expon", *args, **kwargs)
