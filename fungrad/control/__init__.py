"""Control flow that differentiates: structured loops and rematerialization.

``fg.scan``, ``fg.fori_loop`` and ``fg.while_loop`` (:mod:`.loops`) are primitives that carry a
traced body: one recorded op per loop, whose VJP is itself a loop, so loops nest and
differentiate to any order. ``fg.checkpoint`` (:mod:`.checkpoint`) keeps a function's inputs
instead of its intermediate values and recomputes them in the backward pass.

This package sits above :mod:`fungrad.functional` (a loop's VJP runs the body's VJP) and
below :mod:`fungrad.jit`; nothing in the engine imports it.
"""

from .checkpoint import checkpoint
from .loops import fori_loop, scan, while_loop

__all__ = ["scan", "fori_loop", "while_loop", "checkpoint"]
