"""``scipy.stats`` distributions with gradients in their values and parameters: one module
per distribution (``norm``, ``t``, ``poisson``, ``gamma``, ``beta``, ``chi2``, ``dirichlet``,
``multivariate_normal``, ``bernoulli``, ``binom``, ``laplace``, ``expon``, ``uniform``,
``lognorm``, ``cauchy``), each with SciPy's ``pdf``/``logpdf`` (``pmf``/``logpmf``),
``cdf``/``logcdf`` and ``sf``/``logsf`` where SciPy has them, composed of fungrad ops and
:mod:`fungrad.scipy.special`, and ``rvs`` (SciPy's draws, not differentiated).

>>> import numpy as np, fungrad as fg
>>> from fungrad.scipy import stats
>>> float(fg.grad(lambda s: stats.norm.logpdf(1.0, 0.0, s))(1.0))  # -1/s + x**2/s**3
0.0
"""

from . import (  # noqa: F401
    bernoulli, beta, binom, cauchy, chi2, dirichlet, expon, gamma, laplace, lognorm,
    multivariate_normal, norm, poisson, t, uniform,
)

__all__ = ["bernoulli", "beta", "binom", "cauchy", "chi2", "dirichlet", "expon", "gamma",
           "laplace", "lognorm", "multivariate_normal", "norm", "poisson", "t", "uniform"]
