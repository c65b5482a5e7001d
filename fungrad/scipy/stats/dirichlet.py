"""The Dirichlet distribution, as ``scipy.stats.dirichlet``: differentiable in x and alpha.
As SciPy, the components run along the first axis of x (shape (K,) or (K, N) for N points).

>>> import numpy as np
>>> from fungrad.scipy.stats import dirichlet
>>> float(dirichlet.pdf(np.array([0.2, 0.8]), np.array([1.0, 1.0])))
1.0
"""

from __future__ import annotations

from typing import Any

from ... import numpy as fnp
from ..special import gammaln, xlogy
from ._base import exp_of, sampler

__all__ = ["pdf", "logpdf", "rvs"]


def logpdf(x: Any, alpha: Any) -> Any:
    """log density: sum((alpha - 1) log x) - log B(alpha)."""
    k = fnp.shape(alpha)[0]
    extra = fnp.ndim(x) - 1
    a = fnp.reshape(alpha, (k,) + (1,) * extra) if extra > 0 else alpha
    log_norm = fnp.sum(gammaln(alpha)) - gammaln(fnp.sum(alpha))
    return fnp.sum(xlogy(a - 1.0, x), axis=0) - log_norm


pdf = exp_of(logpdf, "The density.")

rvs = sampler("dirichlet")
