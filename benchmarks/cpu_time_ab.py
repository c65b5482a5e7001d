"""The engine's per-op cost before and after a change, in CPU time, side by side.

    python benchmarks/cpu_time_ab.py --before-path DIR [--after-path DIR] [--pairs 8]

Tiny real programs whose time is the engine's bookkeeping, not arithmetic: ``(x * y).sum()``
with ``.backward()`` on 4-element float32 leaves, a 20-layer ``tanh(h @ W)`` chain with
``.backward()``, and ``fg.grad`` of ``sum(tanh(a * b))``. Each side runs in its own process
(one library cannot be loaded twice in one process), ``--pairs`` times, alternating before and
after; each process reports the median of 7 batches of CPU time (``time.process_time``: this
process only, so other work on a shared machine perturbs it far less than wall time). Printed:
per program, each side's median over the pairs and the after/before ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_WORKER = r'''
import json, os, time
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[v] = "1"
import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np
import fungrad as fg

x = np.array([0.5, -1.0, 2.0, 0.25], dtype=np.float32)
y = np.array([1.5, 0.5, -0.75, 3.0], dtype=np.float32)
X, Y = fg.Tensor(x, autograd=True), fg.Tensor(y, autograd=True)
W = fg.Tensor(np.random.default_rng(0).standard_normal((16, 16)), autograd=True)
h0 = np.random.default_rng(1).standard_normal((8, 16))

def mul_sum():
    X.grad = Y.grad = None
    (X * Y).sum().backward()

def chain20():
    W.grad = None
    h = h0
    for _ in range(20):
        h = fg.tanh(h @ W)
    fg.sum(h * h).backward()

def functional():
    fg.grad(lambda a, b: fg.sum(fg.tanh(a * b)), argnums=(0, 1))(x, y)

out = {}
for name, fn, n in (("mul_sum", mul_sum, 3000), ("chain20", chain20, 300),
                    ("fg.grad", functional, 2000)):
    for _ in range(50):
        fn()
    runs = []
    for _ in range(7):
        t = time.process_time()
        for _ in range(n):
            fn()
        runs.append((time.process_time() - t) / n * 1e6)
    out[name] = sorted(runs)[3]
print(json.dumps(out))
'''


def _run(library: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(library))
    done = subprocess.run([sys.executable, "-c", _WORKER], env=env, capture_output=True,
                          text=True, check=True, cwd=library)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--before-path", type=Path, required=True,
                    help="a checkout of the before side (git worktree add --detach DIR REV)")
    ap.add_argument("--after-path", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="a checkout of the after side")
    ap.add_argument("--pairs", type=int, default=8, help="alternating before/after processes")
    args = ap.parse_args(argv)
    samples: dict = {"before": [], "after": []}
    for i in range(args.pairs):
        for side, path in (("before", args.before_path), ("after", args.after_path)):
            samples[side].append(_run(path.resolve()))
            print(f"pair {i + 1}/{args.pairs} {side}: {samples[side][-1]}", file=sys.stderr,
                  flush=True)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print("| program | before (µs CPU) | after (µs CPU) | after / before |")
    print("|---|---:|---:|---:|")
    for name in samples["before"][0]:
        b = statistics.median(s[name] for s in samples["before"])
        a = statistics.median(s[name] for s in samples["after"])
        print(f"| {name} | {b:.2f} | {a:.2f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
