"""What the verifier costs: its share of fg.jit's compile time, on a few programs.

For each program: trace once, then time (median of ``--repeats``) the passes lower → rewrite →
schedule → emit, the verify pass, and building the executable (kernels already in Numba's
cache), and print verify's share of the whole compile (trace + passes + verify + executable).

    PYTHONPATH=$PWD python benchmarks/jit_verify_cost.py --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np

import fungrad as fg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from jit_programs import lstm_loss  # noqa: E402 (the jit tests' LSTM, not a copy of it)


def _mlp():
    rng = np.random.default_rng(0)
    P = {"W1": rng.standard_normal((64, 128)) * 0.1, "b1": np.zeros(128),
         "W2": rng.standard_normal((128, 10)) * 0.1, "b2": np.zeros(10)}
    x, y = rng.standard_normal((32, 64)), rng.integers(0, 10, 32)

    def step(P, x, y):
        def loss(P):
            h = fg.tanh(x @ P["W1"] + P["b1"])
            return fg.cross_entropy(h @ P["W2"] + P["b2"], y)
        value, g = fg.value_and_grad(loss)(P)
        return {k: P[k] - 0.1 * g[k] for k in P}, value
    return step, (P, x, y)


def _lstm(T=25):
    rng = np.random.default_rng(0)
    B, I, H, C = 4, 6, 8, 5
    P = {"Wx": rng.standard_normal((I, 4 * H)) * 0.3, "Wh": rng.standard_normal((H, 4 * H)) * 0.3,
         "b": np.zeros(4 * H), "Wo": rng.standard_normal((H, C)) * 0.3}
    xs, ys = rng.standard_normal((T, B, I)), rng.integers(0, C, (T, B))

    def step(P, xs, ys):
        value, g = fg.value_and_grad(lstm_loss)(P, xs, ys)
        return {k: P[k] - 0.05 * g[k] for k in P}, value
    return step, (P, xs, ys)


def _chain(n=3000):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, 16)) * 0.1

    def step(w, x):
        def loss(w):
            h = x
            for k in range(n):
                h = fg.tanh(h * w[k] + 0.1)
            return fg.sum(h * h)
        value, g = fg.value_and_grad(loss)(w)
        return w - 0.01 * g, value
    return step, (w, rng.standard_normal(16))


def main() -> None:
    from fungrad.jit.compiled import Executable, _passes
    from fungrad.jit.passes.verify import verify
    from fungrad.jit.tracer import trace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"{'program':<22}{'trace':>9}{'passes':>9}{'verify':>9}{'exe':>9}  verify share")
    for name, make in (("mlp step", _mlp), ("lstm 25 steps", _lstm),
                       ("3000-layer chain", _chain)):
        fn, fargs = make()
        times: dict[str, list[float]] = {"trace": [], "passes": [], "verify": [], "exe": []}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            program, _ = trace(fn, fargs, {})
            t1 = time.perf_counter()
            low, plan = _passes(program, frozenset(), frozenset())
            t2 = time.perf_counter()
            verify(low, plan, program)
            t3 = time.perf_counter()
            Executable(program, low, plan)
            t4 = time.perf_counter()
            for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[k].append(dt)
        med = {k: statistics.median(v) for k, v in times.items()}
        total = sum(med.values())
        print(f"{name:<22}" + "".join(f"{med[k] * 1e3:8.1f}m" for k in med)
              + f"  {100 * med['verify'] / total:5.1f}% of {total * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
