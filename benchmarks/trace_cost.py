"""fg.jit's tracing cost per recorded op as the program grows (issue 19: remove what grows).

    python benchmarks/trace_cost.py [--layers 300 3000] [--style functional object]
        [--repeats 5]

Traces (no compile, no run) two unrolled programs and prints, per length, the steps
recorded and the best of ``--repeats`` traces in CPU seconds (``time.process_time``: on a
shared machine the wall clock grows with the load) and microseconds per recorded op:

- *functional*: the chain ``x = tanh(x * w[i] + b[i])`` over stacked float32 (layers, 64)
  parameters, ``value_and_grad`` and the SGD update in one ``fg.jit`` (``Jitted.lower``);
- *object*: the book's style, ``deep_chain``'s — a ``w`` and a ``b`` Tensor per layer,
  ``loss.backward()`` and ``SGD.step()`` jitted (the optimizer's first step runs eagerly
  first: it lays out its state).

A cost per op that stays flat as the layers grow is the goal; it grew from 148 to 264 us/op
between 300 and 3000 layers before the tracer stopped summing row-by-row gradient
accumulations while tracing and stopped running the cyclic collector during a trace. To
compare two checkouts, run this file with ``PYTHONPATH`` pointing at each in turn (see
``COMPILE_COST.md``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np

import fungrad as fg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from jit_programs import stacked_chain  # noqa: E402


def make(layers: int, n: int = 64):
    """The jitted functional step and its parameters for a chain of ``layers`` layers of
    ``n`` float32 numbers (the jit tests' ``stacked_chain``, not a copy of it)."""
    params, _, step = stacked_chain(np.random.default_rng(0), layers, n, np.float32)
    return fg.jit(step), params


def tracer_of(style: str, layers: int):
    """A function tracing the program once and returning its step count."""
    if style == "functional":
        step, params = make(layers)
        return lambda: len(step.lower(params).steps)
    from tasks import deep_chain  # noqa: PLC0415

    deep_chain.LAYERS = layers
    impl = deep_chain.fungrad_jit_step(deep_chain.make_problem(0))
    impl.step()  # the first call runs eagerly (the optimizer lays out its state)
    return lambda: len(impl.step.lower().steps)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[300, 3000])
    ap.add_argument("--style", nargs="+", default=["functional", "object"],
                    choices=["functional", "object"])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    for style in args.style:
        for layers in args.layers:
            trace = tracer_of(style, layers)
            best, steps = float("inf"), 0
            for _ in range(args.repeats):
                gc.collect()
                gc.disable()  # as a jitted call's trace runs (fungrad/jit/api.py)
                t0 = time.process_time()
                steps = trace()
                best = min(best, time.process_time() - t0)
                gc.enable()
            print(f"{style:10s} {layers:5d} layers: {steps:6d} steps, trace {best:6.3f} CPU s, "
                  f"{best / steps * 1e6:5.1f} us/op", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
