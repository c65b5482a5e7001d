"""The binomial distribution, as ``scipy.stats.binom``: differentiable in the success
probability p (the counts k and n are data).

>>> import numpy as np
>>> from fungrad.scipy.stats import binom
>>> float(binom.pmf(1.0, 2.0, 0.5))
0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import numpy as fnp
from ...registry import unwrap
from ..special import betainc, gammaln, xlog1py, xlogy
from ._base import draw

__all__ = ["pmf", "logpmf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def _counts(k: Any, n: Any, loc: Any) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(unwrap(k), dtype=np.float64) - np.asarray(unwrap(loc), dtype=np.float64)
    n = np.asarray(unwrap(n), dtype=np.float64)
    return k, n


def logpmf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """log P(K = k) for n trials of success probability p."""
    k, n = _counts(k, n, loc)
    valid = (k >= 0) & (k <= n) & (k == np.floor(k))
    kk = np.where(valid, k, 0.0)
    log_choose = gammaln(n + 1.0) - gammaln(kk + 1.0) - gammaln(n - kk + 1.0)
    return fnp.where(valid, log_choose + xlogy(kk, p) + xlog1py(n - kk, -p), -np.inf)


def pmf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """P(K = k)."""
    return fnp.exp(logpmf(k, n, p, loc))


def cdf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """P(K <= k) = I_{1-p}(n - floor(k), floor(k) + 1) for 0 <= k < n."""
    k, n = _counts(k, n, loc)
    k = np.floor(k)
    inside = (k >= 0) & (k < n)
    kk = np.where(inside, k, 0.0)
    value = betainc(np.where(inside, n - kk, 1.0), kk + 1.0, 1.0 - p)
    return fnp.where(inside, value, np.where(k >= n, 1.0, 0.0))


def logcdf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """log P(K <= k)."""
    return fnp.log(cdf(k, n, p, loc))


def sf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """P(K > k) = 1 - cdf (as I_p(floor(k) + 1, n - floor(k)))."""
    k, n = _counts(k, n, loc)
    k = np.floor(k)
    inside = (k >= 0) & (k < n)
    kk = np.where(inside, k, 0.0)
    value = betainc(kk + 1.0, np.where(inside, n - kk, 1.0), p)
    return fnp.where(inside, value, np.where(k >= n, 0.0, 1.0))


def logsf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """log P(K > k)."""
    return fnp.log(sf(k, n, p, loc))


def rvs(*args: Any, **kwargs: Any) -> Any:
    """Random draws from scipy.stats.binom (not differentiated: Tensor parameters are read
    as constants)."""
    return draw("binom", *args, **kwargs)
