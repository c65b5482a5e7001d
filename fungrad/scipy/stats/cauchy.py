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
from ._base import LOG_PI, exp_of, log_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log density: -log(pi scale (1 + z ** 2))."""
    z = standardize(x, loc, scale)
    return -LOG_PI - fnp.log(scale) - fnp.log1p(z * z)


pdf = exp_of(logpdf, "The density.")


def cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x) = 1/2 + arctan(z) / pi."""
    return 0.5 + fnp.arctan(standardize(x, loc, scale)) / math.pi


logcdf = log_of(cdf, "log P(X <= x).")


def sf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x)."""
    return 0.5 - fnp.arctan(standardize(x, loc, scale)) / math.pi


logsf = log_of(sf, "log P(X > x).")

rvs = sampler("cauchy")
