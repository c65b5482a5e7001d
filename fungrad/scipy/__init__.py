"""SciPy's differentiable surface, as HIPS autograd's ``autograd.scipy``: ``special``,
``stats``, ``linalg``, ``signal``, ``integrate`` and ``optimize``, with SciPy's names and
signatures.

SciPy is an optional dependency (``pip install fungrad[scipy]``): ``import fungrad`` never
imports it, and these modules import it on first use. Importing ``fungrad.scipy`` registers its
ops, so that ``fg.ops()`` lists them and the registry-driven tests check them.

>>> import numpy as np, fungrad as fg
>>> from fungrad.scipy import stats
>>> float(fg.grad(lambda mu: stats.norm.logpdf(1.0, mu, 1.0))(0.0))
1.0
"""

from . import integrate, linalg, optimize, signal, special, stats  # noqa: F401

__all__ = ["special", "stats", "linalg", "signal", "integrate", "optimize"]
