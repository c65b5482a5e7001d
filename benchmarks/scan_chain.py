"""The deep chain written with ``fg.scan``: trace + compile seconds and step time at 300 and
3000 steps, against JAX's ``lax.scan`` in the same run.

    PYTHONPATH=. /work/bench-venv/bin/python benchmarks/scan_chain.py [--steps 300 3000]
        [--repeats 3] [--impls fungrad jax]

The task is deep_chain's (``benchmarks/tasks/deep_chain.py``) written as a JAX user writes it:
``x = tanh(x * w[i] + b[i])`` over stacked (steps, 64) float32 parameters, the loss
``sum(x)``, functional ``value_and_grad`` and the SGD update in one jitted function whose
parameters are donated. Every measurement is a new process (1 thread), so it includes what a
user's first call pays; processes of the two implementations alternate, ``--repeats`` times,
and the table shows medians. fg.jit runs *warm*: one untimed process fills Numba's cache
first, in a cache directory of this run's own (``FUNGRAD_CACHE_DIR``, kept if set) — Numba
drops a cache entry written from another checkout of the same files, so a directory shared
with other checkouts may be cold. JAX has no disk cache here: it compiles in every process.

Columns: *jit start s* — the first call of a 3-op jitted function in the process, before the
chain: what any first fg.jit call pays once per process (importing Numba, loading the runner
and the kernels from the cache); *first call s* — the chain's first call (trace, compile,
first run) after that; *trace s*, *compile s* — fg.jit's own ``timings()`` of it (the trace
includes computing the loop's values once, compiled); *program words* — the instruction
array's length; *step ms* — median wall time of 200 steps after it, and the median CPU time
of the process per step (the machine may be shared: CPU time is what the step costs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIDTH, LR, STEPS = 64, 0.01, 200

_COMMON = """
import json, sys, time
t_start = time.perf_counter()
sys.path.insert(0, {here!r})
import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np
L, WIDTH, LR, STEPS = {layers}, {width}, {lr}, {steps}
rng = np.random.default_rng(0)
W = rng.normal(1.0, 0.1, (L, WIDTH)).astype(np.float32)
B = rng.normal(0.0, 0.1, (L, WIDTH)).astype(np.float32)
X0 = rng.standard_normal(WIDTH).astype(np.float32)
"""

_FUNGRAD = _COMMON + """
import fungrad as fg
t_import = time.perf_counter()
t_s = time.perf_counter()  # fg.jit's start in a process: Numba, the runner and kernels loaded
fg.jit(lambda x: fg.sum(fg.tanh(x * 2.0)))(np.ones(3, np.float32))
START_S = time.perf_counter() - t_s

def loss(q):
    x, _ = fg.scan(lambda x, wb: (fg.tanh(x * wb[0] + wb[1]), None), X0, (q["w"], q["b"]))
    return fg.sum(x)

@fg.jit(donate_argnums=0)
def update(q):
    value, g = fg.value_and_grad(loss)(q)
    return value, {{k: q[k] - LR * g[k] for k in q}}

def step(p):
    return update(p)[1]
"""

_JAX = _COMMON + """
import jax, jax.numpy as jnp, functools
t_import = time.perf_counter()

def loss(q):
    x, _ = jax.lax.scan(lambda x, wb: (jnp.tanh(x * wb[0] + wb[1]), None), X0, (q["w"], q["b"]))
    return jnp.sum(x)

@functools.partial(jax.jit, donate_argnums=0)
def update(q):
    value, g = jax.value_and_grad(loss)(q)
    return value, jax.tree_util.tree_map(lambda a, b: a - LR * b, q, g)

def step(p):
    v, p = update(p)
    v.block_until_ready()
    return p

START_S = None
"""

_MEASURE = """
p = {{"w": W.copy(), "b": B.copy()}}
if {jax}:
    p = {{k: jnp.asarray(v) for k, v in p.items()}}
t0 = time.perf_counter()
p = step(p)
t1 = time.perf_counter()
walls, cpus = [], []
for _ in range(STEPS):
    a, c = time.perf_counter(), time.process_time()
    p = step(p)
    walls.append(time.perf_counter() - a)
    cpus.append(time.process_time() - c)
timings = [list(t) for t in update.timings()] if hasattr(update, "timings") else []
code = None
if timings:
    variant = next(iter(update._cache.values()))[0]
    code = len(variant.run.plan.code)
print(json.dumps({{"import_s": t_import - t_start, "first_s": t1 - t0, "timings": timings,
                  "start_s": START_S,
                  "code_words": code,
                  "step_ms": sorted(walls)[len(walls) // 2] * 1e3,
                  "cpu_ms": sorted(cpus)[len(cpus) // 2] * 1e3}}))
"""


def probe(impl: str, layers: int, cache: str) -> dict:
    """One new process: build ``impl`` for ``layers`` steps, time its first call and steps."""
    src = (_JAX if impl == "jax" else _FUNGRAD) + _MEASURE
    code = src.format(here=str(HERE), layers=layers, width=WIDTH, lr=LR, steps=STEPS, jax=impl == "jax")
    env = dict(os.environ, FUNGRAD_CACHE_DIR=cache, OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=1800)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(rows: list, key) -> float:
    return statistics.median(key(r) for r in rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", nargs="+", type=int, default=[300, 3000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impls", nargs="+", default=["fungrad", "jax"],
                    choices=["fungrad", "jax"])
    args = ap.parse_args(argv)
    cache = os.environ.get("FUNGRAD_CACHE_DIR") or tempfile.mkdtemp(prefix="fungrad-scan-")
    if "fungrad" in args.impls:
        probe("fungrad", args.steps[0], cache)  # fills Numba's cache: the runs below are warm
    results: dict = {}
    for _ in range(args.repeats):
        for layers in args.steps:
            for impl in args.impls:
                r = probe(impl, layers, cache)
                if "error" in r:
                    print(f"{impl} {layers}: {r['error']}", file=sys.stderr)
                    continue
                results.setdefault((impl, layers), []).append(r)
    lines = [f"scan chain, float32, width {WIDTH}, medians of {args.repeats} processes; "
             f"load average at the end {os.getloadavg()[0]:.1f}", "",
             "| implementation | steps | jit start s | first call s | trace s | compile s "
             "| program words | step ms (wall) | step ms (CPU) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (impl, layers), rows in results.items():
        t = [r["timings"][0] for r in rows if r["timings"]]
        trace = f"{statistics.median(x[1] for x in t):.3f}" if t else "–"
        comp = f"{statistics.median(x[2] for x in t):.3f}" if t else "–"
        words = rows[0]["code_words"] if rows[0]["code_words"] is not None else "–"
        start = (f"{_median(rows, lambda r: r['start_s']):.3f}"
                 if rows[0]["start_s"] is not None else "–")
        lines.append(f"| {impl} | {layers} | {start} | {_median(rows, lambda r: r['first_s']):.3f} "
                     f"| {trace} | {comp} | {words} | "
                     f"{_median(rows, lambda r: r['step_ms']):.3f} | "
                     f"{_median(rows, lambda r: r['cpu_ms']):.3f} |")
    print("\n".join(lines))
    print(json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
