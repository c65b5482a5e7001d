"""Student's t distribution, as ``scipy.stats.t``: differentiable in x, df, loc and scale
(the cdf's derivative in df is computed numerically, see fungrad.scipy.special.stdtr).

>>> import numpy as np
>>> from fungrad.scipy.stats import t
>>> float(t.cdf(0.0, 3.0))
0.5
"""

from __future__ import annotations

from typing import Any

from ... import numpy as fnp
from ..special import gammaln, stdtr
from ._base import LOG_PI, exp_of, log_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The log density of the t distribution with df degrees of freedom."""
    z = standardize(x, loc, scale)
    half = 0.5 * (df + 1.0)
    return (gammaln(half) - gammaln(0.5 * df) - 0.5 * (fnp.log(df) + LOG_PI)
            - fnp.log(scale) - half * fnp.log1p(z * z / df))


pdf = exp_of(logpdf, "The density of the t distribution.")


def cdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x)."""
    return stdtr(df, standardize(x, loc, scale))


logcdf = log_of(cdf, "log P(X <= x).")


def sf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x) (by symmetry, the cdf at -x)."""
    return stdtr(df, -standardize(x, loc, scale))


logsf = log_of(sf, "log P(X > x).")

rvs = sampler("t")
