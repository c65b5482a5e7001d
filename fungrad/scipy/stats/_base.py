"""What the distributions share: standardizing a value, the functions that follow from the
ones a distribution writes (``pdf = exp(logpdf)``, ``logcdf = log(cdf)``...), and ``rvs``."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from ... import numpy as fnp
from ...registry import unwrap
from .._common import scipy_module

__all__ = ["standardize", "LOG_2PI", "LOG_PI", "draw", "exp_of", "log_of", "sampler"]

LOG_2PI = math.log(2.0 * math.pi)
LOG_PI = math.log(math.pi)


def standardize(x: Any, loc: Any, scale: Any) -> Any:
    """``(x - loc) / scale``: every location-scale family is its standard form of this."""
    return (x - loc) / scale


def _composed(outer: Callable, inner: Callable, name: str, doc: str) -> Callable[..., Any]:
    """``outer(inner(...))`` under ``name``, with ``inner``'s signature (``inspect`` and
    ``help`` show it through ``__wrapped__``)."""
    @functools.wraps(inner)
    def composed(*args: Any, **kwargs: Any) -> Any:
        return outer(inner(*args, **kwargs))

    composed.__name__ = composed.__qualname__ = name
    composed.__doc__ = doc
    return composed


def exp_of(log_f: Callable, doc: str) -> Callable[..., Any]:
    """``exp(log_f(...))``, named for ``log_f`` without its ``log``: ``pdf`` from ``logpdf``
    (and ``cdf`` from ``logcdf`` where the log is the accurate formula).

    >>> import numpy as np
    >>> def logpdf(x, loc=0.0): return -(x - loc)
    >>> pdf = exp_of(logpdf, "The density.")
    >>> pdf.__name__, float(pdf(np.log(2.0), loc=0.0))
    ('pdf', 0.5)
    """
    return _composed(fnp.exp, log_f, log_f.__name__.removeprefix("log"), doc)


def log_of(f: Callable, doc: str) -> Callable[..., Any]:
    """``log(f(...))``, named ``log`` + ``f``'s name: ``logcdf`` from ``cdf``, where SciPy has no
    more accurate formula than the log of the probability."""
    return _composed(fnp.log, f, "log" + f.__name__, doc)


def sampler(name: str) -> Callable[..., np.ndarray]:
    """The ``rvs`` of ``scipy.stats.<name>``: :func:`draw` with the distribution's name."""
    def rvs(*args: Any, **kwargs: Any) -> np.ndarray:
        return draw(name, *args, **kwargs)

    rvs.__doc__ = (f"Random draws from scipy.stats.{name} (not differentiated: Tensor "
                   "parameters are read as constants).")
    rvs.__qualname__ = "rvs"
    rvs.__module__ = f"{__package__}.{name}"  # each distribution's module has SciPy's name
    return rvs


def draw(name: str, *args: Any, **kwargs: Any) -> np.ndarray:
    """SciPy's ``scipy.stats.<name>.rvs(*args, **kwargs)`` (random draws are not
    differentiated: parameters given as Tensors are read as constants)."""
    dist = getattr(scipy_module("stats"), name)
    return dist.rvs(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in kwargs.items()})
