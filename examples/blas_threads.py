"""How much BLAS threading costs a small model: one MLP training step, 1 thread vs the default.

NumPy's matrix products run on BLAS (OpenBLAS in NumPy's wheels), which starts one thread per
core. For small matrices those threads cost more than they save, and on a busy machine they
wait for each other. This script times the same training step (a 784-128-10 MLP on a batch of
64, cross-entropy, SGD) in child processes started alternately with ``OPENBLAS_NUM_THREADS=1``
(and the MKL/OpenMP equivalents) and with BLAS's default, and prints the medians side by side.
Nothing here changes the BLAS settings of the process you run it from.

Run ``python examples/blas_threads.py`` (about 10 seconds).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the _cli helper
import _cli  # noqa: E402

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")

_CHILD = """
import sys, time
import numpy as np
try:
    import fungrad as fg
except ImportError:  # a source checkout without fungrad installed
    sys.path.insert(0, {root!r})
    import fungrad as fg
from fungrad import nn

rng = np.random.default_rng(0)
model = nn.Sequential(nn.Linear(784, 128, rng=rng), nn.ReLU(), nn.Linear(128, 10, rng=rng))
criterion = nn.CrossEntropyLoss()
optim = fg.optim.SGD(model.parameters(), alpha=0.01)
x, y = rng.standard_normal((64, 784)), rng.integers(0, 10, 64)
times = []
for i in range({steps} + 5):
    start = time.perf_counter()
    loss = criterion(model(x), y)
    loss.backward()
    optim.step()
    times.append(time.perf_counter() - start)
print(sorted(times[5:])[len(times[5:]) // 2])
"""


def step_time(one_thread: bool, steps: int = 40) -> float:
    """Median seconds per training step in a fresh process, with 1 BLAS thread or the default."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    if one_thread:
        env.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
    code = _CHILD.format(root=os.path.abspath(root), steps=steps)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, stdin=subprocess.DEVNULL)
    return float(done.stdout.split()[-1])


def main(rounds: int = 5, steps: int = 40) -> dict:
    """Alternate ``rounds`` processes of each kind; returns the medians in seconds."""
    one, default = [], []
    for r in range(rounds):
        one.append(step_time(True, steps))
        default.append(step_time(False, steps))
        print(f"round {r + 1}/{rounds}: 1 thread {one[-1] * 1e3:.2f} ms, default "
              f"{default[-1] * 1e3:.2f} ms", flush=True)
    result = {"one_thread": statistics.median(one), "default": statistics.median(default)}
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"MLP 784-128-10, batch 64, one training step (median of {rounds} processes x "
          f"{steps} steps; {os.cpu_count()} cores{load}):")
    print(f"  1 BLAS thread : {result['one_thread'] * 1e3:7.2f} ms")
    print(f"  BLAS default  : {result['default'] * 1e3:7.2f} ms   "
          f"({result['default'] / result['one_thread']:.2f}x the 1-thread time)")
    return result


if __name__ == "__main__":
    parser = _cli.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5,
                        help="processes of each kind, alternating (a line of progress each)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per process")
    args = parser.parse_args()
    main(rounds=args.rounds, steps=args.steps)
