"""The Poisson distribution, as ``scipy.stats.poisson``: differentiable in the rate mu (the
count k is data; a count that is negative or not an integer has probability 0).

>>> import numpy as np
>>> from fungrad.scipy.stats import poisson
>>> float(poisson.pmf(0.0, 2.0).round(6))  # exp(-2)
0.135335
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import numpy as fnp
from ...registry import unwrap
from ..special import gammainc, gammaincc, gammaln, xlogy
from ._base import exp_of, log_of, sampler

__all__ = ["pmf", "logpmf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def _counts(k: Any, loc: Any) -> tuple[np.ndarray, np.ndarray]:
    """The counts (as constants) shifted by loc, and where they are valid counts."""
    k = np.asarray(unwrap(k), dtype=np.float64) - np.asarray(unwrap(loc), dtype=np.float64)
    valid = (k >= 0) & (k == np.floor(k))
    return np.where(valid, k, 0.0), valid


def logpmf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """log P(K = k)."""
    kk, valid = _counts(k, loc)
    return fnp.where(valid, xlogy(kk, mu) - mu - gammaln(kk + 1.0), -np.inf)


pmf = exp_of(logpmf, "P(K = k).")


def _next_count(k: Any, loc: Any) -> tuple[np.ndarray, np.ndarray]:
    """``floor(k - loc) + 1`` (as a constant; 1 where ``k - loc < 0``), and where
    ``k - loc >= 0``: what the cdf and sf evaluate the incomplete gamma function at."""
    kk = np.floor(np.asarray(unwrap(k), dtype=np.float64) - np.asarray(unwrap(loc)))
    inside = kk >= 0
    return np.where(inside, kk, 0.0) + 1.0, inside


def cdf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """P(K <= k) = Q(floor(k) + 1, mu)."""
    next_k, inside = _next_count(k, loc)
    return fnp.where(inside, gammaincc(next_k, mu), 0.0)


logcdf = log_of(cdf, "log P(K <= k).")


def sf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """P(K > k) = P(floor(k) + 1, mu)."""
    next_k, inside = _next_count(k, loc)
    return fnp.where(inside, gammainc(next_k, mu), 1.0)


logsf = log_of(sf, "log P(K > k).")

rvs = sampler("poisson")
