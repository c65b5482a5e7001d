"""The multivariate normal distribution, as ``scipy.stats.multivariate_normal``:
``logpdf``/``pdf`` differentiable in x, mean and cov (through a Cholesky factor), ``entropy``
in cov. With ``allow_singular=True`` a rank-deficient cov is read as a constant (its
pseudo-inverse and pseudo-determinant, as SciPy); its gradient there raises.

>>> import numpy as np, fungrad as fg
>>> from fungrad.scipy.stats import multivariate_normal as mvn
>>> float(mvn.logpdf(np.zeros(2), np.zeros(2), np.eye(2)).round(6))  # -log(2 pi)
-1.837877
>>> fg.grad(lambda m: mvn.logpdf(np.ones(2), m, np.eye(2)))(np.zeros(2))
array([1., 1.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import numpy as fnp
from ...errors import FungradError
from ...registry import unwrap
from ...tensor import Tensor
from ._base import LOG_2PI, exp_of, sampler

__all__ = ["logpdf", "pdf", "entropy", "rvs"]


def _dim_and_cov(x: Any, cov: Any) -> tuple[int, Any]:
    d = int(np.shape(unwrap(x))[-1]) if np.ndim(unwrap(x)) else 1
    if np.ndim(unwrap(cov)) == 0:
        cov = cov * np.eye(d)
    elif np.ndim(unwrap(cov)) == 1:
        cov = fnp.diag(cov)
    return d, cov


def _points(x: Any, mean: Any, d: int) -> tuple[Any, tuple]:
    """``x - mean`` as rows (n, d), and the shape of the result (x's leading axes)."""
    diff = x - (0.0 if mean is None else mean)
    lead = tuple(np.shape(unwrap(diff)))[:-1] if np.ndim(unwrap(diff)) else ()
    return fnp.reshape(diff, (-1, d)), lead


def _pseudo(cov: Any, name: str) -> tuple[np.ndarray, float, int]:
    """SciPy's treatment of a possibly singular cov: the factor p with pinv(cov) = p p^T, the
    log pseudo-determinant and the rank (eigenvalues below SciPy's cutoff are dropped)."""
    if isinstance(cov, Tensor):
        raise FungradError(f"multivariate_normal.{name}: with allow_singular=True the "
                           "covariance is read as a constant; its gradient at a singular "
                           "covariance is not defined (pass cov as an ndarray, or "
                           "allow_singular=False for a nonsingular one)")
    s, u = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    eps = 1e6 * np.finfo(np.float64).eps * np.max(np.abs(s))
    if np.min(s) < -eps:
        raise ValueError(f"multivariate_normal.{name}: the covariance is not positive "
                         "semidefinite")
    keep = s > eps
    return u[:, keep] / np.sqrt(s[keep]), float(np.sum(np.log(s[keep]))), int(keep.sum())


def logpdf(x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
    """log density of N(mean, cov) at each point x (the last axis of x holds a point)."""
    d, cov = _dim_and_cov(x, cov)
    rows, lead = _points(x, mean, d)
    if allow_singular:
        factor, log_det, rank = _pseudo(cov, "logpdf")
        maha = fnp.sum((rows @ factor) ** 2, axis=-1)
    else:
        chol = fnp.linalg.cholesky(cov)
        log_det = 2.0 * fnp.sum(fnp.log(fnp.diagonal(chol)))
        z = fnp.linalg.solve(chol, fnp.transpose(rows))
        maha, rank = fnp.sum(z * z, axis=0), d
    out = -0.5 * (rank * LOG_2PI + log_det + maha)
    return fnp.reshape(out, lead)


pdf = exp_of(logpdf, "The density of N(mean, cov) at each point x.")


def entropy(mean: Any = None, cov: Any = 1) -> Any:
    """The differential entropy 0.5 (d (1 + log 2 pi) + log det cov)."""
    d, cov = _dim_and_cov(np.zeros(np.shape(unwrap(cov))[-1:] or (1,)) if mean is None
                          else mean, cov)
    _, log_det = fnp.linalg.slogdet(cov)
    return 0.5 * (d * (1.0 + LOG_2PI) + log_det)


rvs = sampler("multivariate_normal")
