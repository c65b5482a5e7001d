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
from ._base import exp_of, log_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpdf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The log density of the gamma distribution of shape a."""
    z = standardize(x, loc, scale)
    return xlogy(a - 1.0, z) - z - gammaln(a) - fnp.log(scale)


pdf = exp_of(logpdf, "The density of the gamma distribution of shape a.")


def cdf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x): the regularized lower incomplete gamma function."""
    return gammainc(a, standardize(x, loc, scale))


logcdf = log_of(cdf, "log P(X <= x).")


def sf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x): the regularized upper incomplete gamma function."""
    return gammaincc(a, standardize(x, loc, scale))


logsf = log_of(sf, "log P(X > x).")

rvs = sampler("gamma")
