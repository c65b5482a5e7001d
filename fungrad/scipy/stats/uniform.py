"""The uniform distribution on [loc, loc + scale], as ``scipy.stats.uniform``:
differentiable in x, loc and scale.

>>> import numpy as np
>>> from fungrad.scipy.stats import uniform
>>> float(uniform.cdf(0.25))
0.25
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import numpy as fnp
from ...registry import unwrap
from ._base import exp_of, log_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def _inside(z: Any) -> np.ndarray:
    z = np.asarray(unwrap(z))
    return (z >= 0) & (z <= 1)


def logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """log density: -log(scale) inside the interval, -inf outside."""
    z = standardize(x, loc, scale)
    return fnp.where(_inside(z), -fnp.log(scale) + 0.0 * z, -np.inf)


pdf = exp_of(logpdf, "The density.")


def cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x) = clip(z, 0, 1)."""
    return fnp.clip(standardize(x, loc, scale), 0.0, 1.0)


logcdf = log_of(cdf, "log P(X <= x).")


def sf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x)."""
    return fnp.clip(1.0 - standardize(x, loc, scale), 0.0, 1.0)


logsf = log_of(sf, "log P(X > x).")

rvs = sampler("uniform")
