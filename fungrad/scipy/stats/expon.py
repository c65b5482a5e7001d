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
from ._base import exp_of, log_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def _inside(z: Any) -> np.ndarray:
    return np.asarray(unwrap(z)) >= 0


def logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log density: -z - log(scale) for z = (x - loc) / scale >= 0, -inf below."""
    z = standardize(x, loc, scale)
    return fnp.where(_inside(z), -z - fnp.log(scale), -np.inf)


pdf = exp_of(logpdf, "The density.")


def cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x) = 1 - exp(-z)."""
    z = standardize(x, loc, scale)
    return fnp.where(_inside(z), -fnp.expm1(-z), 0.0)


logcdf = log_of(cdf, "log P(X <= x).")


def logsf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X > x) = -z."""
    z = standardize(x, loc, scale)
    return fnp.where(_inside(z), -z, 0.0)


sf = exp_of(logsf, "P(X > x) = exp(-z).")

rvs = sampler("expon")
