"""``fg.jit``: trace a training step once, then run it as one compiled program.

The pieces, in the order a call meets them:

- :mod:`~fungrad.jit.api` — :func:`jit`: signatures, the program cache, commit of effects;
- :mod:`~fungrad.jit.tracer` and :mod:`~fungrad.jit.traced` — tracing on traced arrays into a
  :class:`~fungrad.jit.program.Program` (forward, backward as recorded VJPs, updates);
- :mod:`~fungrad.jit._on_tape` — a jitted function's Tensor outputs joining the eager tape
  (the program traced with its backward and split into a forward and a backward program);
- :mod:`~fungrad.jit.interpret` — the reference executor (each step's NumPy function);
- :mod:`~fungrad.jit.compiled` — the compiled backend: the passes in :mod:`fungrad.jit.passes`
  (lower → rewrite → schedule → emit → verify) over the IR of :mod:`fungrad.jit.ir`, and the
  Numba runner and kernels in :mod:`fungrad.jit.backend`. ``README.md`` here tells the stages.

Nothing in the engine imports this package; the engine only offers a per-thread hook, whose
methods are declared in :mod:`fungrad.hooks`.

>>> import numpy as np, fungrad as fg
>>> from fungrad.jit import jit
>>> f = jit(lambda x, y: fg.tanh(x * y + 1.0))
>>> f(np.zeros(3), np.ones(3)).round(4)
array([0.7616, 0.7616, 0.7616])
"""

from .api import CacheInfo, Jitted, Timing, jit

__all__ = ["jit", "Jitted", "CacheInfo", "Timing"]
