"""fg.jit's trace and compile times per benchmark task, with a cold and a warm Numba cache.

    python benchmarks/jit_times.py [--tasks mlp deep_chain] [--impls fungrad_jit jax]

Every (task, implementation) runs twice, each time in a new process: first with an empty
fungrad cache directory (``FUNGRAD_CACHE_DIR`` pointing at a fresh temporary directory, so
Numba compiles every kernel: *cold*), then again with the directory the first run filled
(Numba loads the kernels from disk: *warm*). A process builds the task's implementation
and times its steps until the first compiled one (object style: an optimizer's first step
creates its state eagerly, the second is traced), then one more. For fg.jit it also reports
the split ``Jitted.timings()`` records (trace; compile — lowering, fusion, buffer plan and
compiling or loading the kernels; the first run), and the process's peak resident memory.
JAX has no on-disk cache configured here: its two runs both compile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
from tasks import TASKS  # noqa: E402

_PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {here!r})
import importlib
import numpy as np
import fungrad
mod = importlib.import_module("tasks." + {task!r})
problem = mod.make_problem(0)
impl = getattr(mod, {impl!r} + "_step")(problem)
jitted = getattr(impl.step, "jitted", impl.step)
t1 = time.perf_counter()
steps = 0
while steps < 3:  # an optimizer's first step creates its state eagerly; the next one traces
    impl.step()
    steps += 1
    if not hasattr(jitted, "timings") or jitted.timings():
        break
t2 = time.perf_counter()
impl.step()
t3 = time.perf_counter()
timings = [list(t) for t in jitted.timings()] if hasattr(jitted, "timings") else []
print(json.dumps({{"build_s": t1 - t0, "first_s": t2 - t1, "second_s": t3 - t2, "steps": steps,
                  "timings": timings,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def probe(task: str, impl: str, cache: str) -> dict:
    """Run one process that builds ``impl`` for ``task`` and times its first two steps."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR",)}
    env.update(FUNGRAD_CACHE_DIR=cache, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    code = _PROBE.format(here=str(HERE), task=task, impl=impl)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=1800)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(task: str, impl: str, kind: str, r: dict) -> str:
    if "error" in r:
        return f"| {task} | {impl} | {kind} | failed: {r['error']} | | | | | |"
    t = r["timings"][0] if r["timings"] else None
    ops = f"{t[0]}" if t else "–"
    split = (f"{t[1]:.3f} | {t[2]:.2f} | {t[3]:.3f}" if t and t[3] is not None
             else "– | – | –")
    return (f"| {task} | {impl} | {kind} | {ops} | {split} | {r['first_s']:.2f} ({r['steps']}) "
            f"| {r['second_s'] * 1e3:.3g} | {r['peak_rss_mib']:.0f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--impls", nargs="+", default=["fungrad_jit", "fungrad_jit_stacked", "jax"])
    args = ap.parse_args(argv)
    lines = ["| task | implementation | cache | ops | trace s | compile s | first run s "
             "| until compiled s (steps) | next step ms | peak RSS MiB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    for task in args.tasks:
        mod_text = (HERE / "tasks" / f"{task}.py").read_text()
        for impl in args.impls:
            if f"def {impl}_step" not in mod_text:
                continue
            with tempfile.TemporaryDirectory(prefix="fungrad-cold-") as cache:
                for kind in ("cold", "warm"):
                    line = _row(task, impl, kind, probe(task, impl, cache))
                    lines.append(line)
                    print(line, flush=True)
    print(json.dumps({"load_end": os.getloadavg()}), file=sys.stderr)


if __name__ == "__main__":
    main()
