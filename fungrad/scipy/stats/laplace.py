"""The Laplace distribution, as ``scipy.stats.laplace``: differentiable in x, loc, scale
(away from x = loc, where the density has a kink).

>>> import numpy as np
>>> from fungrad.scipy.stats import laplace
>>> float(laplace.cdf(0.0))
0.5
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import numpy as fnp
from ...registry import unwrap
from ._base import exp_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]

_LOG2 = math.log(2.0)


def logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log density: -|z| - log(2 scale)."""
    z = standardize(x, loc, scale)
    return -fnp.abs(z) - fnp.log(scale) - _LOG2


pdf = exp_of(logpdf, "The density.")


def logcdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X <= x)."""
    z = standardize(x, loc, scale)
    below = np.asarray(unwrap(z)) < 0
    return fnp.where(below, fnp.where(below, z, 0.0) - _LOG2,
                     fnp.log1p(-0.5 * fnp.exp(-fnp.where(below, 0.0, z))))


cdf = exp_of(logcdf, "P(X <= x).")


def logsf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log P(X > x) (the cdf mirrored)."""
    return logcdf(-x, -loc, scale)


sf = exp_of(logsf, "P(X > x).")

rvs = sampler("laplace")
