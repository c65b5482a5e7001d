"""Optimizer step time before and after a change, eager and under ``fg.jit``, side by side.

    python benchmarks/optim_ab.py --before-path DIR [--after-path DIR] [--pairs 5]

Each side (a fungrad source tree) runs in its own process, ``--pairs`` times, alternating
before and after, so that machine noise hits both alike. A process times ``opt.step()`` alone
(gradients already in ``p.grad``, as backward leaves them; ``step(zero=False)`` so that they
stay) for each optimizer on deep_chain's parameters — 3,000 layers of a (64,) float32 weight
and bias, 6,000 leaf Tensors — eagerly with flat buffers (``flat=True``, the default) and
without (``flat=False``), and for a jitted step on the first 400 of them (tracing 6,000
parameters would time the tracer, not the step). It reports the median of its steps in
milliseconds. Printed: per case, each side's median over the pairs and the after/before ratio.
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
import json, os, sys, time
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[v] = "1"
import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np
import fungrad as fg
from fungrad.jit import jit

KINDS = {
    "SGD": ("SGD", {"alpha": 0.01}),
    "SGD momentum=0.9": ("SGD", {"alpha": 0.01, "momentum": 0.9}),
    "SGD nesterov, weight_decay": ("SGD", {"alpha": 0.01, "momentum": 0.9, "nesterov": True,
                                           "weight_decay": 1e-4}),
    "Adam": ("Adam", {"lr": 1e-3}),
    "AdamW": ("AdamW", {"lr": 1e-3}),
    "RMSprop": ("RMSprop", {"lr": 1e-3}),
}
rng = np.random.default_rng(0)
values = [rng.standard_normal(64).astype(np.float32) for _ in range(6000)]
grads = [(rng.standard_normal(64) * 1e-3).astype(np.float32) for _ in range(6000)]

def case(kind, n, flat):
    cls, kw = KINDS[kind]
    params = [fg.Tensor(v.copy(), autograd=True) for v in values[:n]]
    for p, g in zip(params, grads):
        p.grad = fg.Tensor(g.copy())
    if cls in ("SGD", "Adam"):
        kw = dict(kw, flat=flat)
    return getattr(fg.optim, cls)(params, **kw)

def timed(fn, steps):
    for _ in range(3):
        fn()
    out = []
    for _ in range(steps):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return 1e3 * sorted(out)[len(out) // 2]

result = {}
for kind in KINDS:
    for flat in (True, False):
        opt = case(kind, 6000, flat)
        result[f"{kind} | eager flat={flat} (6,000 params)"] = timed(
            lambda: opt.step(zero=False), 15)
    opt = case(kind, 400, True)
    step = jit(lambda: opt.step(zero=False))
    result[f"{kind} | jit (400 params)"] = timed(step, 30)
print(json.dumps(result))
'''


def run_side(path: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(path))
    out = subprocess.run([sys.executable, "-c", _WORKER], env=env, cwd=path, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before-path", type=Path, required=True)
    ap.add_argument("--after-path", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    sides: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(args.pairs):
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        for side in order:
            path = args.before_path if side == "before" else args.after_path
            sides[side].append(run_side(path))
    print(f"| case | before ms | after ms | after / before |   ({args.pairs} pairs, medians)")
    print("|---|---:|---:|---:|")
    for key in sides["before"][0]:
        b = statistics.median(r[key] for r in sides["before"])
        a = statistics.median(r[key] for r in sides["after"])
        print(f"| {key} | {b:.3f} | {a:.3f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
