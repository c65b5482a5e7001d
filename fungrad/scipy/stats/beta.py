"""The beta distribution, as ``scipy.stats.beta``: differentiable in x, a, b, loc and scale
(the cdf's derivatives in a and b are computed numerically, see special.betainc).

>>> import numpy as np
>>> from fungrad.scipy.stats import beta
>>> float(beta.pdf(0.5, 2.0, 2.0))
1.5
"""

from __future__ import annotations

from typing import Any

from ... import numpy as fnp
from ..special import betainc, betaln, xlog1py, xlogy
from ._base import exp_of, log_of, sampler, standardize

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpdf(x: Any, a: Any, b: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """The log density of Beta(a, b)."""
    z = standardize(x, loc, scale)
    return xlogy(a - 1.0, z) + xlog1py(b - 1.0, -z) - betaln(a, b) - fnp.log(scale)


pdf = exp_of(logpdf, "The density of Beta(a, b).")


def cdf(x: Any, a: Any, b: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X <= x): the regularized incomplete beta function."""
    return betainc(a, b, standardize(x, loc, scale))


logcdf = log_of(cdf, "log P(X <= x).")


def sf(x: Any, a: Any, b: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """P(X > x) = I_{1-x}(b, a)."""
    return betainc(b, a, 1.0 - standardize(x, loc, scale))


logsf = log_of(sf, "log P(X > x).")

rvs = sampler("beta")
