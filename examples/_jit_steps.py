"""The examples' ``--jit``: the first training steps run eagerly, the rest under ``fg.jit``.

The training is the same either way (a jitted step updates the model exactly as the eager
one), so one run measures both: :class:`JitSteps` times the eager steps, switches to the
jitted step, and :meth:`JitSteps.report` prints the two median step times and the speed-up.

>>> import numpy as np, fungrad as fg
>>> w = fg.Tensor(np.ones(3), autograd=True)
>>> opt = fg.optim.SGD([w], alpha=0.1)
>>> def step():
...     loss = (w * w).sum()
...     loss.backward()
...     opt.step()
...     return loss
>>> run = JitSteps(step, use_jit=True, eager_steps=2)
>>> losses = [float(run().data) for _ in range(5)]
>>> np.allclose(losses, [3 * 0.8 ** (2 * k) for k in range(5)])
True
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

__all__ = ["JitSteps"]


class JitSteps:
    """Call ``step(*args)``: eagerly for the first ``eager_steps`` calls, then (with
    ``use_jit``) through ``fg.jit``; each call timed."""

    def __init__(self, step: Callable, use_jit: bool, eager_steps: int = 20) -> None:
        self.step = step
        self.use_jit = use_jit
        self.eager_steps = eager_steps
        self.jitted = None
        self.eager_s: list[float] = []
        self.jit_s: list[float] = []

    def __call__(self, *args: Any) -> Any:
        run = self.step
        if self.use_jit and len(self.eager_s) >= self.eager_steps:
            if self.jitted is None:
                from fungrad.jit import jit

                self.jitted = jit(self.step)
            run = self.jitted
        t0 = time.perf_counter()
        out = run(*args)
        (self.jit_s if run is self.jitted else self.eager_s).append(time.perf_counter() - t0)
        return out

    def report(self) -> None:
        """Print the eager and jitted median step times, the speed-up and the compile cost."""
        if not self.use_jit or self.jitted is None or not self.jit_s:
            return
        eager = float(np.median(self.eager_s)) * 1e3
        traced = self.jitted.timings()
        first = sum(t.trace_s + t.compile_s + (t.first_run_s or 0.0) for t in traced)
        jit_ms = float(np.median(self.jit_s)) * 1e3
        print(f"fg.jit: eager {eager:.3g} ms/step (median of {len(self.eager_s)} steps), "
              f"jitted {jit_ms:.3g} ms/step (median of {len(self.jit_s)}): "
              f"{eager / jit_ms:.1f}x faster; {len(traced)} signature(s) traced and compiled "
              f"in {first:.2f} s")
