"""The Bernoulli distribution, as ``scipy.stats.bernoulli``: differentiable in p.

>>> import numpy as np
>>> from fungrad.scipy.stats import bernoulli
>>> float(bernoulli.pmf(1.0, 0.3))
0.3
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import numpy as fnp
from ...registry import unwrap
from ..special import xlog1py, xlogy
from ._base import exp_of, log_of, sampler

__all__ = ["pmf", "logpmf", "cdf", "logcdf", "sf", "logsf", "rvs"]


def logpmf(k: Any, p: Any, loc: Any = 0) -> Any:
    """log P(K = k): log p at 1, log(1 - p) at 0, -inf elsewhere."""
    k = np.asarray(unwrap(k), dtype=np.float64) - np.asarray(unwrap(loc), dtype=np.float64)
    valid = (k == 0) | (k == 1)
    kk = np.where(valid, k, 0.0)
    return fnp.where(valid, xlogy(kk, p) + xlog1py(1.0 - kk, -p), -np.inf)


pmf = exp_of(logpmf, "P(K = k).")


def cdf(k: Any, p: Any, loc: Any = 0) -> Any:
    """P(K <= k): 0 below 0, 1 - p on [0, 1), 1 from 1."""
    k = np.asarray(unwrap(k), dtype=np.float64) - np.asarray(unwrap(loc), dtype=np.float64)
    return fnp.where(k < 0, 0.0, fnp.where(k < 1, 1.0 - p, 1.0))


logcdf = log_of(cdf, "log P(K <= k).")


def sf(k: Any, p: Any, loc: Any = 0) -> Any:
    """P(K > k)."""
    return 1.0 - cdf(k, p, loc)


logsf = log_of(sf, "log P(K > k).")

rvs = sampler("bernoulli")
