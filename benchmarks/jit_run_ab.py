"""A compiled step's run time before and after a change to fg.jit, in one run.

    python benchmarks/jit_run_ab.py --before /path/to/old/checkout [--rounds 3] [--steps 200]

Each measurement is a subprocess running the same user code (the programs of
``jit_verify_cost.py``: an MLP step, a 25-step LSTM step, a 3000-layer chain, all functional
``value_and_grad`` + SGD under ``fg.jit``) on one library, ``before`` and ``after`` (this
checkout) alternating, rounds rotating the order. A worker compiles the step, warms it up and
reports the median CPU time (``time.thread_time``: the machine is shared, wall time is not a
measure of the program) of single calls; printed: the median over rounds per side, and the
after/before ratio.

    python benchmarks/jit_run_ab.py --before DIR --tasks embed_ce mlp [--rounds 3] [--blocks 15]

measures benchmark tasks instead (``benchmarks/tasks/``, the object-style step under
``fg.jit``), each beside the peer issue 19 names for it (NumPy by hand for mlp, JAX jit for
the others; run with a Python that has JAX). Inside a worker the two alternate in blocks of
about 20 ms of steps; a block's CPU time (``time.process_time``: JAX computes on threads of
its own) per step is one sample, the median of a worker's samples its figure. Printed per
task: fg.jit before and after, the after/before ratio, and fg.jit's ratio to the peer on each
side (each ratio taken inside one worker, the peer beside it).
"""

from __future__ import annotations

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = ("mlp", "lstm", "chain")
#: the peer issue 19 measures each benchmark task against
PEERS = {"mlp": "numpy", "embed_ce": "jax", "babi_rnn": "jax", "lstm_char": "jax"}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def _task_worker(names: list[str], blocks: int) -> None:
    """Per task: median CPU seconds per step of fg.jit and of its peer, in alternating blocks."""
    import importlib
    import time

    sys.path.insert(0, str(HERE))
    out = {}
    for name in names:
        task = importlib.import_module(f"tasks.{name}")
        peer = PEERS[name]
        steps = {"fg.jit": task.fungrad_jit_step(task.make_problem(0)).step,
                 peer: getattr(task, f"{peer}_step")(task.make_problem(0)).step}
        per_block = {}
        for k, fn in steps.items():
            for _ in range(5):  # compile, warm up
                fn()
            t0 = time.process_time()
            for _ in range(5):
                fn()
            per_block[k] = max(3, int(0.02 / max((time.process_time() - t0) / 5, 1e-6)))
        samples: dict[str, list[float]] = {k: [] for k in steps}
        for b in range(blocks):
            for k in (list(steps) if b % 2 == 0 else list(reversed(steps))):
                fn, n = steps[k], per_block[k]
                t0 = time.process_time()
                for _ in range(n):
                    fn()
                samples[k].append((time.process_time() - t0) / n)
        out[name] = {k: statistics.median(v) for k, v in samples.items()}
    print(json.dumps(out))


def _worker(steps: int) -> None:
    import time

    import fungrad as fg
    import jit_verify_cost as J

    out = {}
    for name, make in (("mlp", J._mlp), ("lstm", J._lstm), ("chain", J._chain)):
        fn, args = make()
        step = fg.jit(fn)
        for _ in range(5):
            step(*args)
        n = steps if name != "chain" else max(steps // 3, 10)
        times = []
        for _ in range(n):
            t0 = time.thread_time()
            step(*args)
            times.append(time.thread_time() - t0)
        out[name] = statistics.median(times)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the old version")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--tasks", nargs="*", choices=sorted(PEERS),
                    help="benchmark tasks (object style) beside their peers, instead")
    ap.add_argument("--blocks", type=int, default=15, help="blocks per task and worker")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        if args.tasks:
            _task_worker(args.tasks, args.blocks)
        else:
            _worker(args.steps)
        return
    sides = {"before": str(args.before.resolve()), "after": str(HERE.parent)}
    if args.tasks:
        _tasks_ab(sides, args)
        return
    results: dict[str, dict[str, list[float]]] = {s: {p: [] for p in PROGRAMS} for s in sides}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            env = dict(os.environ, PYTHONPATH=sides[side], PYTHONDONTWRITEBYTECODE="1",
                       OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
            env.pop("FUNGRAD_JIT_CHECKS", None)
            done = subprocess.run([sys.executable, __file__, "--worker", "--before", ".",
                                   "--steps", str(args.steps)], env=env, capture_output=True,
                                  text=True, check=True)
            for p, t in json.loads(done.stdout.strip().splitlines()[-1]).items():
                results[side][p].append(t)
    print(f"{'program':<10}{'before us':>12}{'after us':>12}{'after/before':>14}")
    for p in PROGRAMS:
        b = statistics.median(results["before"][p]) * 1e6
        a = statistics.median(results["after"][p]) * 1e6
        print(f"{p:<10}{b:12.1f}{a:12.1f}{a / b:14.3f}")



def _tasks_ab(sides: dict, args) -> None:
    results: dict[str, list[dict]] = {s: [] for s in sides}
    for r in range(args.rounds):
        for side in (list(sides) if r % 2 == 0 else list(reversed(sides))):
            env = dict(os.environ, PYTHONPATH=sides[side], PYTHONDONTWRITEBYTECODE="1",
                       **ONE_THREAD)
            env.pop("FUNGRAD_JIT_CHECKS", None)
            done = subprocess.run([sys.executable, __file__, "--worker", "--before", ".",
                                   "--tasks", *args.tasks, "--blocks", str(args.blocks)],
                                  env=env, capture_output=True, text=True, check=True)
            results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'task':<10}{'before ms':>11}{'after ms':>10}{'after/before':>14}{'peer':>7}"
          f"{'peer ms':>9}{'ratio before':>14}{'ratio after':>13}")
    for name in args.tasks:
        peer = PEERS[name]

        def med(side: str, key: str) -> float:
            return statistics.median(run[name][key] for run in results[side]) * 1e3

        def ratio(side: str) -> float:
            return statistics.median(run[name]["fg.jit"] / run[name][peer]
                                     for run in results[side])

        b, a = med("before", "fg.jit"), med("after", "fg.jit")
        p = statistics.median([run[name][peer] for s in sides for run in results[s]]) * 1e3
        print(f"{name:<10}{b:11.3f}{a:10.3f}{a / b:14.3f}{peer:>7}{p:9.3f}"
              f"{ratio('before'):14.3f}{ratio('after'):13.3f}")


if __name__ == "__main__":
    main()
