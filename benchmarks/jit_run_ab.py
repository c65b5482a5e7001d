"""A compiled step's run time before and after a change to fg.jit, in one run.

    python benchmarks/jit_run_ab.py --before /path/to/old/checkout [--rounds 3] [--steps 200]

Each measurement is a subprocess running the same user code (the programs of
``jit_verify_cost.py``: an MLP step, a 25-step LSTM step, a 3000-layer chain, all functional
``value_and_grad`` + SGD under ``fg.jit``) on one library, ``before`` and ``after`` (this
checkout) alternating, rounds rotating the order. A worker compiles the step, warms it up and
reports the median CPU time (``time.thread_time``: the machine is shared, wall time is not a
measure of the program) of single calls; printed: the median over rounds per side, and the
after/before ratio.
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
PROGRAMS = ("mlp", "lstm", "chain")


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
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args.steps)
        return
    sides = {"before": str(args.before.resolve()), "after": str(HERE.parent)}
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


if __name__ == "__main__":
    main()
