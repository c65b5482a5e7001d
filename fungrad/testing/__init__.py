"""Verification for users: finite-difference gradient checks, Hypothesis strategies, op properties.

- :func:`check_grads` checks any function of ndarrays / Tensors / pytrees against central
  differences, in reverse and forward mode, to any order.
- ``fungrad.testing.strategies`` draws shapes, arrays within a domain, valid inputs for any
  registered op (``op_inputs``) and pytrees of parameters.
- ``fungrad.testing.properties`` holds the checks the registry-driven test suite runs on every
  op, and ``check_op`` to run them all on your own op.
- ``fungrad.testing.profiles``: the Hypothesis settings profiles ``ci``, ``dev`` and
  ``thorough`` (no deadline, so a first call that compiles is not a failure). Importing
  ``fungrad.testing`` registers them and loads the one ``HYPOTHESIS_PROFILE`` or ``CI``
  selects, unless your project loaded a profile of its own first.

Nothing here imports Hypothesis before you do: the profiles are registered when it is
imported, ``strategies`` and ``properties`` import it on first use, and ``check_grads`` never
needs it; ``fungrad`` itself never imports this package.

>>> import numpy as np, fungrad as fg
>>> from fungrad.testing import check_grads
>>> check_grads(fg.sigmoid, np.array([0.5, -2.0]), order=2)
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Iterator

from . import profiles
from ._check import check_grads, default_tolerances
from ._opcall import OpCall

__all__ = ["check_grads", "default_tolerances", "OpCall", "temporary_ops", "strategies",
           "properties", "profiles"]

profiles._load_on_import()  # Hypothesis's profiles for your tests (see fungrad.testing.profiles)

_LAZY = ("strategies", "properties")


@contextlib.contextmanager
def temporary_ops() -> Iterator[None]:
    """Undo every registration made inside the block: new ops are removed, replaced ones
    restored. For tests that register throwaway ops without leaking them into the registry.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.testing import temporary_ops
    >>> with temporary_ops():
    ...     twice = fg.defop("twice_tmp", lambda x: 2 * x, lambda g, out, x: (2 * g,))
    ...     "twice_tmp" in fg.ops()
    True
    >>> "twice_tmp" in fg.ops()
    False
    """
    from ..registry import _REGISTRY  # noqa: PLC0415

    saved = dict(_REGISTRY)
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fungrad.testing' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
