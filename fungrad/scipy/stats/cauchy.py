"""The Cauchy distribution, as ``scipy.stats.cauchy``: differentiable in x, loc and scale.

>>> import numpy as np
>>> from fungrad.scipy.stats import cauchy
>>> float(cauchy.cdf(1.0))
0.75
"""

from __future__ import annotations

import math
from typing import Any

from ... import numpy as fnp
from ._base import LOG_PI, draw, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log density: -log(pi scale (1 + z ** 2))."""
    z = standardize(x, loc, scale)
    return -LOG_PI - fnp.log(scale) - fnp.log1p(z * z)


def pdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The density."""
    return fnp.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x) = 1/2 + arctan(z) / pi."""
    return 0.5 + fnp.arctan(standardize(x, loc, scale)) / math.pi


def logcdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X <= x)."""
    return fnp.log(cdf(x, loc, scale))


def sf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x)."""
    return 0.5 - fnp.arctan(standardize(x, loc, scale)) / math.pi


def logsf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X > x)."""
    return fnp.log(sf(x, loc, scale))


def rvs(*args: Any, **kwargs: Any) -> Any:
    """Random draws from scipy.stats.cauchy (not differentiated: Tensor parameters are read
    as constants)."""
    return draw("cauchy", *args, **kwargs)
