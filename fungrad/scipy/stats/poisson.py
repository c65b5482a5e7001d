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
from ._base import draw

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


def pmf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """P(K = k)."""
    return fnp.exp(logpmf(k, mu, loc))


def cdf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """P(K <= k) = Q(floor(k) + 1, mu)."""
    kk = np.floor(np.asarray(unwrap(k), dtype=np.float64) - np.asarray(unwrap(loc)))
    inside = kk >= 0
    return fnp.where(inside, gammaincc(np.where(inside, kk, 0.0) + 1.0, mu), 0.0)


def logcdf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """log P(K <= k)."""
    return fnp.log(cdf(k, mu, loc))


def sf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """P(K > k) = P(floor(k) + 1, mu)."""
    kk = np.floor(np.asarray(unwrap(k), dtype=np.float64) - np.asarray(unwrap(loc)))
    inside = kk >= 0
    return fnp.where(inside, gammainc(np.where(inside, kk, 0.0) + 1.0, mu), 1.0)


def logsf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """log P(K > k)."""
    return fnp.log(sf(k, mu, loc))


def rvs(*args: Any, **kwargs: Any) -> Any:
    """Random draws from scipy.stats.poisson (not differentiated: Tensor parameters are read
    as constants)."""
    return draw("poisson", *args, **kwargs)
