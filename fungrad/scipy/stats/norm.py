"""The normal distribution, as ``scipy.stats.norm``: differentiable in x, loc and scale.

>>> import numpy as np, fungrad as fg
>>> from fungrad.scipy.stats import norm
>>> float(norm.logpdf(0.0, 0.0, 1.0).round(6))
-0.918939
>>> float(fg.grad(norm.cdf)(0.0).round(6))  # the density at 0
0.398942
"""

from __future__ import annotations

from typing import Any

from ... import numpy as fnp
from ..special import log_ndtr, ndtr, ndtri
from ._base import LOG_2PI, exp_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf", "rvs"]


def logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The log density of N(loc, scale ** 2) at x."""
    z = standardize(x, loc, scale)
    return -0.5 * z * z - fnp.log(scale) - 0.5 * LOG_2PI


pdf = exp_of(logpdf, "The density of N(loc, scale ** 2) at x.")


def cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x)."""
    return ndtr(standardize(x, loc, scale))


def logcdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X <= x), accurate far into the lower tail."""
    return log_ndtr(standardize(x, loc, scale))


def sf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x) = 1 - cdf, accurate in the upper tail."""
    return ndtr(-standardize(x, loc, scale))


def logsf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X > x)."""
    return log_ndtr(-standardize(x, loc, scale))


def ppf(q: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The quantile function, the inverse of :func:`cdf`."""
    return loc + scale * ndtri(q)


def isf(q: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The inverse of :func:`sf`."""
    return loc - scale * ndtri(q)


rvs = sampler("norm")
