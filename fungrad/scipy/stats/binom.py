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
from ._base import exp_of, log_of, sampler

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


pmf = exp_of(logpmf, "P(K = k).")


def _floored(k: Any, n: Any, loc: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the cdf and sf need: ``floor(k - loc)`` where it lies in ``[0, n)`` (else 0),
    ``n - floor(k - loc)`` there (else 1), where that is, and where ``k - loc >= n``."""
    k, n = _counts(k, n, loc)
    k = np.floor(k)
    inside = (k >= 0) & (k < n)
    kk = np.where(inside, k, 0.0)
    return kk, np.where(inside, n - kk, 1.0), inside, k >= n


def cdf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """P(K <= k) = I_{1-p}(n - floor(k), floor(k) + 1) for 0 <= k < n."""
    kk, rest, inside, past = _floored(k, n, loc)
    return fnp.where(inside, betainc(rest, kk + 1.0, 1.0 - p), np.where(past, 1.0, 0.0))


logcdf = log_of(cdf, "log P(K <= k).")


def sf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """P(K > k) = 1 - cdf (as I_p(floor(k) + 1, n - floor(k)))."""
    kk, rest, inside, past = _floored(k, n, loc)
    return fnp.where(inside, betainc(kk + 1.0, rest, p), np.where(past, 0.0, 1.0))


logsf = log_of(sf, "log P(K > k).")

rvs = sampler("binom")
