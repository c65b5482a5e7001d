"""fg.jit's trace and compile seconds for unrolled programs, pass by pass, each in a new process.

    PYTHONPATH=. python benchmarks/compile_cost.py [--layers 300 3000] [--style functional object]
        [--repeats 2]

*functional*: the chain ``x = tanh(x * w[i] + b[i])`` over stacked (layers, 64) float32
parameters, ``value_and_grad`` and the SGD update in one ``fg.jit`` (about 14 recorded ops per
layer: 42,000 at 3000 layers). *object*: the book's style, ``deep_chain``'s — one ``w`` and one
``b`` Tensor per layer, ``loss.backward()`` and ``SGD.step()`` jitted (its first call runs
eagerly: the optimizer lays out its state; the second traces). Every measurement is a new
process with the cache directory warm (``FUNGRAD_CACHE_DIR``: set it, and run once first), so
it includes what a user's first call pays; a process first makes one tiny jitted call (Numba
and the runner loaded: *start s*). Reported: the traced program's steps, trace and compile
seconds (``Jitted.timings()``), and each compiler pass's seconds and microseconds per
recorded op in CPU time (the passes wrapped with a timer: lower, accumulate + embedding_bags =
rewrite, schedule, emit, verify; the rest of *compile* is building the executable and loading
kernels), and the process's CPU seconds for the first call: on a shared machine the CPU
columns are the ones to compare, the wall ones grow with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_WORKER = r"""
import importlib, json, sys, time
sys.path.insert(0, {here!r})
t_start = time.perf_counter()
import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np
import fungrad as fg
fg.jit(lambda x: fg.sum(fg.tanh(x * 2.0)))(np.ones(3, np.float32))
start_s = time.perf_counter() - t_start
layers, style = {layers}, {style!r}
comp = importlib.import_module("fungrad.jit.compiled")
passes = {{}}
def timed(name):
    f = getattr(comp, name)
    def g(*a, **k):
        t = time.process_time()
        try:
            return f(*a, **k)
        finally:
            passes[name] = passes.get(name, 0.0) + time.process_time() - t
    setattr(comp, name, g)
for name in ("lower", "accumulate", "embedding_bags", "schedule", "emit", "verify"):
    timed(name)
if style == "functional":
    from trace_cost import make  # (the chain, one definition for the benchmarks)
    step, params = make(layers)
    call = lambda: step(params)
    jitted = step
else:
    from tasks import deep_chain
    deep_chain.LAYERS = layers
    impl = deep_chain.fungrad_jit_step(deep_chain.make_problem(0))
    impl.step()  # the optimizer's first step (eager: it lays out its state)
    call, jitted = impl.step, impl.step
    passes.clear()
t0, c0 = time.perf_counter(), time.process_time()
call()
first_s, first_cpu = time.perf_counter() - t0, time.process_time() - c0
tm = jitted.timings()[0]
passes["rewrite"] = passes.pop("accumulate", 0.0) + passes.pop("embedding_bags", 0.0)
print(json.dumps({{"start_s": start_s, "first_s": first_s, "first_cpu_s": first_cpu,
                  "ops": tm.ops, "trace_s": tm.trace_s, "compile_s": tm.compile_s,
                  "passes": passes}}))
"""

PASSES = ("lower", "rewrite", "schedule", "emit", "verify")


def run(layers: int, style: str) -> dict:
    code = _WORKER.format(here=str(HERE), layers=layers, style=style)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode:
        raise SystemExit(f"{style} {layers}: failed\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[300, 3000])
    ap.add_argument("--style", nargs="+", default=["functional"], choices=["functional", "object"])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; medians of "
          f"{args.repeats} processes\n")
    print("| style | layers | ops | start s | first call s (cpu s) | trace s (us/op) | "
          "compile s | " + " | ".join(f"{p} cpu s (us/op)" for p in PASSES) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(PASSES))
    for style in args.style:
        for layers in args.layers:
            rs = [run(layers, style) for _ in range(args.repeats)]
            med = lambda f: statistics.median(f(r) for r in rs)  # noqa: E731
            ops = rs[0]["ops"]
            cells = [f"{med(lambda r, p=p: r['passes'].get(p, 0.0)):.3f} "
                     f"({med(lambda r, p=p: r['passes'].get(p, 0.0)) / ops * 1e6:.1f})"
                     for p in PASSES]
            print(f"| {style} | {layers} | {ops} | {med(lambda r: r['start_s']):.2f} | "
                  f"{med(lambda r: r['first_s']):.2f} ({med(lambda r: r['first_cpu_s']):.2f}) | "
                  f"{med(lambda r: r['trace_s']):.3f} ({med(lambda r: r['trace_s']) / ops * 1e6:.1f}) | "
                  f"{med(lambda r: r['compile_s']):.3f} | " + " | ".join(cells) + " |",
                  flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
