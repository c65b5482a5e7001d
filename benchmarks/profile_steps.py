"""Where the microseconds of a fungrad training step go: forward, backward, update, GC.

    python benchmarks/profile_steps.py [--tasks babi_rnn deep_chain] [--steps 200]

For each task it times the three phases of a step separately (median over steps, 1 thread),
counts the recorded nodes, reports microseconds per node, repeats the step with the cyclic
garbage collector disabled to show its share, and prints the top functions of a cProfile run.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fungrad as fg  # noqa: E402
from tasks import common  # noqa: E402


def _count_nodes(root) -> int:
    """Recorded op calls behind ``root`` (a recorded Tensor is its op call's node)."""
    seen, stack = set(), [root]
    while stack:
        t = stack.pop()
        node = t._parent if t._parent is not None else t
        if node._op is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(a for a in node._inputs or () if isinstance(a, fg.Tensor))
    return len(seen)


def _phases(task, steps: int) -> dict:
    """Median ms of forward, backward and update, with fungrad's own SGD, as in run.py."""
    problem = task.make_problem(0)
    captured = {}
    original = common.fungrad_impl

    def capture(tensors, loss_fn, grad_of):
        captured.update(tensors=tensors, loss_fn=loss_fn)
        return original(tensors, loss_fn, grad_of)

    task.fungrad_impl = capture  # the task module imported the name from common
    try:
        task.fungrad_step(problem)
    finally:
        task.fungrad_impl = original
    opt = fg.optim.SGD(captured["tensors"], alpha=common.LR)
    loss_fn = captured["loss_fn"]
    fwd, bwd, upd = [], [], []
    nodes = 0
    for i in range(steps + 5):
        t0 = time.perf_counter()
        loss = loss_fn()
        t1 = time.perf_counter()
        if i == 0:
            nodes = _count_nodes(loss)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if i >= 5:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            upd.append(t3 - t2)
    med = {k: float(np.median(v)) * 1e3 for k, v in (("forward", fwd), ("backward", bwd),
                                                     ("update", upd))}
    med["nodes"] = nodes
    med["params"] = len(captured["tensors"])
    return med, loss_fn, opt


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["babi_rnn", "deep_chain"])
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)
    import importlib

    for name in args.tasks:
        task = importlib.import_module(f"tasks.{name}")
        med, loss_fn, opt = _phases(task, args.steps)
        gc.disable()
        try:
            no_gc, _, _ = _phases(task, args.steps)
        finally:
            gc.enable()
        total = med["forward"] + med["backward"] + med["update"]
        total_no_gc = no_gc["forward"] + no_gc["backward"] + no_gc["update"]
        print(f"## {name}: {med['nodes']} recorded nodes, {med['params']} parameters")
        print(f"forward  {med['forward']:8.3f} ms  {med['forward'] / med['nodes'] * 1e3:6.2f} "
              f"us/node")
        print(f"backward {med['backward']:8.3f} ms  {med['backward'] / med['nodes'] * 1e3:6.2f} "
              f"us/node")
        print(f"update   {med['update']:8.3f} ms  {med['update'] / med['params'] * 1e3:6.2f} "
              f"us/parameter")
        print(f"step     {total:8.3f} ms; with the cyclic GC disabled {total_no_gc:.3f} ms")
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(10):
            loss_fn().backward()
            opt.step()
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
        print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
        print()


if __name__ == "__main__":
    main()
