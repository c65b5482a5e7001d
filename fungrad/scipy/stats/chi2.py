"""The chi-squared distribution, as ``scipy.stats.chi2``: a gamma distribution of shape df/2
and scale 2; differentiable in x, df, loc and scale.

>>> import numpy as np
>>> from fungrad.scipy.stats import chi2
>>> float(chi2.cdf(2.0, 2.0).round(6))  # 1 - exp(-1)
0.632121
"""

from __future__ import annotations

from typing import Any

from . import gamma as _gamma
from ._base import exp_of, log_of, sampler

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The log density of chi-squared with df degrees of freedom."""
    return _gamma.logpdf(x, 0.5 * df, loc, 2.0 * scale)


def cdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x)."""
    return _gamma.cdf(x, 0.5 * df, loc, 2.0 * scale)


def sf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x)."""
    return _gamma.sf(x, 0.5 * df, loc, 2.0 * scale)


pdf = exp_of(logpdf, "The density of chi-squared with df degrees of freedom.")
logcdf = log_of(cdf, "log P(X <= x).")
logsf = log_of(sf, "log P(X > x).")
rvs = sampler("chi2")
