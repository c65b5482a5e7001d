"""The 6,000-Tensor object-style chain under ``fg.jit`` against JAX, in one process.

    FUNGRAD_CACHE_DIR=<warm dir> PYTHONPATH=. python benchmarks/object_chain.py [--rounds 30]
        [--no-jax] [--profile FILE]

deep_chain's object style (``benchmarks/tasks/deep_chain.py``: 3000 layers, a ``w`` and a
``b`` Tensor each, ``loss.backward()`` and ``SGD.step()``) jitted, against its ``jax_step``
(``lax.scan``, parameters donated). Both are warmed (three steps: the optimizer's eager first
step, the trace and compile, one compiled step), then timed interleaved: ``--rounds`` rounds
of 5 steps each, medians of wall and CPU time per step (the machine may be shared: CPU time
is what a step costs). ``--profile FILE`` writes a cProfile of 200 fg.jit steps after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
from tasks import deep_chain  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--profile", help="write a cProfile of 200 fg.jit steps to this file")
    args = ap.parse_args()
    problem = deep_chain.make_problem(0)
    impls = {"fungrad_jit": deep_chain.fungrad_jit_step(problem)}
    if not args.no_jax:
        impls["jax"] = deep_chain.jax_step(problem)
    for name, impl in impls.items():
        t0 = time.perf_counter()
        for _ in range(3):
            impl.step()
        print(f"{name}: first three steps {time.perf_counter() - t0:.2f} s", flush=True)
    wall: dict[str, list[float]] = {k: [] for k in impls}
    cpu: dict[str, list[float]] = {k: [] for k in impls}
    for _ in range(args.rounds):
        for name, impl in impls.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(5):
                impl.step()
            wall[name].append((time.perf_counter() - t0) / 5)
            cpu[name].append((time.process_time() - c0) / 5)
    for name in impls:
        print(f"{name}: step {statistics.median(wall[name]) * 1e3:.3f} ms wall, "
              f"{statistics.median(cpu[name]) * 1e3:.3f} ms CPU")
    if "jax" in impls:
        print(f"ratio (CPU): {statistics.median(cpu['fungrad_jit']) / statistics.median(cpu['jax']):.2f}x")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.profile:
        import cProfile  # noqa: PLC0415

        step = impls["fungrad_jit"].step
        cProfile.runctx("for _ in range(200): step()", {}, {"step": step}, args.profile)


if __name__ == "__main__":
    main()
