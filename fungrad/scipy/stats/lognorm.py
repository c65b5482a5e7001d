"""The log-normal distribution, as ``scipy.stats.lognorm`` (shape s): differentiable in x,
s, loc and scale.

>>> import numpy as np
>>> from fungrad.scipy.stats import lognorm
>>> float(lognorm.cdf(1.0, 0.5))
0.5
"""

from __future__ import annotations

from typing import Any

from ... import numpy as fnp
from ..special import log_ndtr, ndtr
from ._base import LOG_2PI, exp_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpdf(x: Any, s: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log density of exp(s N(0, 1)) scaled by scale and shifted by loc."""
    y = standardize(x, loc, scale)
    logy = fnp.log(y)
    return -0.5 * (logy / s) ** 2 - logy - fnp.log(s) - 0.5 * LOG_2PI - fnp.log(scale)


pdf = exp_of(logpdf, "The density.")


def cdf(x: Any, s: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x) = ndtr(log(y) / s)."""
    return ndtr(fnp.log(standardize(x, loc, scale)) / s)


def logcdf(x: Any, s: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X <= x)."""
    return log_ndtr(fnp.log(standardize(x, loc, scale)) / s)


def sf(x: Any, s: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x)."""
    return ndtr(-fnp.log(standardize(x, loc, scale)) / s)


def logsf(x: Any, s: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X > x)."""
    return log_ndtr(-fnp.log(standardize(x, loc, scale)) / s)


rvs = sampler("lognorm")
