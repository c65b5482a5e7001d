"""fg.jit's tracing cost per recorded op as the program grows (issue 19: remove what grows).

    python benchmarks/trace_cost.py [layers ...]      (default: 300 1000 3000)

Traces (``Jitted.lower``: no compile, no run) the functional chain
``x = tanh(x * w[i] + b[i])`` over stacked parameters, with ``value_and_grad`` and an SGD
update, and prints the best of two traces per length: steps recorded, seconds, and
microseconds per recorded op. A cost per op that stays flat as the layers grow is the goal;
it grew from 148 to 264 us/op between 300 and 3000 layers before the tracer stopped summing
row-by-row gradient accumulations while tracing and stopped running the cyclic collector
during a trace.
"""

from __future__ import annotations

import sys
import time

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np

import fungrad as fg


def make(layers: int, n: int = 64):
    """The jitted step and its parameters for a chain of ``layers`` layers of ``n``."""
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(1, 0.1, (layers, n)), "b": rng.normal(0, 0.1, (layers, n))}
    x0 = rng.standard_normal(n)

    def loss(p):
        x = x0
        for i in range(layers):
            x = fg.tanh(x * p["w"][i] + p["b"][i])
        return fg.sum(x)

    def step(p):
        value, g = fg.value_and_grad(loss)(p)
        return value, {k: p[k] - 0.01 * g[k] for k in p}

    return fg.jit(step), params


def main(argv: list[str]) -> None:
    for layers in [int(a) for a in argv] or [300, 1000, 3000]:
        step, params = make(layers)
        best, steps = float("inf"), 0
        for _ in range(2):
            t0 = time.perf_counter()
            steps = len(step.lower(params).steps)
            best = min(best, time.perf_counter() - t0)
        print(f"{layers:5d} layers: {steps:6d} steps, trace {best:6.3f} s, "
              f"{best / steps * 1e6:6.1f} us/op", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
