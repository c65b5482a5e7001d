"""The gamma distribution, as ``scipy.stats.gamma`` (shape a): differentiable in x, a, loc
and scale.

>>> import numpy as np
>>> from fungrad.scipy.stats import gamma
>>> float(gamma.pdf(1.0, 1.0).round(6))  # exp(-1)
0.367879
"""

from __future__ import annotations

from typing import Any

from ... import numpy as fnp
from ..special import gammainc, gammaincc, gammaln, xlogy
from ._base import draw, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpdf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The log density of the gamma distribution of shape a."""
    z = standardize(x, loc, scale)
    return xlogy(a - 1.0, z) - z - gammaln(a) - fnp.log(scale)


def pdf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The density of the gamma distribution of shape a."""
    return fnp.exp(logpdf(x, a, loc, scale))


def cdf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x): the regularized lower incomplete gamma function."""
    return gammainc(a, standardize(x, loc, scale))


def logcdf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X <= x)."""
    return fnp.log(cdf(x, a, loc, scale))


def sf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x): the regularized upper incomplete gamma function."""
    return gammaincc(a, standardize(x, loc, scale))


def logsf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X > x)."""
    return fnp.log(sf(x, a, loc, scale))


def rvs(*args: Any, **kwargs: Any) -> Any:
    """Random draws from scipy.stats.gamma (not differentiated: Tensor parameters are read
    as constants)."""
    return draw("gamma", *args, **kwargs)
