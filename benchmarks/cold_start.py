"""Cold start: each benchmark step's first call in a new process with empty caches, and what
Numba compiles meanwhile.

    PYTHONPATH=. python benchmarks/cold_start.py [--groups mlp babi_rnn ...] [--repeats 1]
        [--json out.json]

A *probe* is one new process with ``FUNGRAD_CACHE_DIR`` pointing at a fresh empty directory
(every thread count set to 1). It imports fungrad, builds one implementation of one benchmark
step (the tasks of ``benchmarks/tasks``, eager and under fg.jit, the ``fg.scan`` chain of 300
steps and the object-style MLP with Adam of ``jit_peers.py``) and calls the step until it runs
compiled, then once more. It reports

- the first call's wall seconds and the slowest call's (the waits a user sees), and the time
  until the step runs compiled (no background build left, nothing compiled in the process on
  the last call; calls 20 ms apart meanwhile) with the process's CPU seconds;
- ``next``: the call after, in ms;
- what Numba compiled in the process: each dispatcher or ``cfunc`` compile with its own
  seconds (nested compiles subtracted), and how many loaded from the disk cache instead.

Compiles in another process (fg.jit's background builder) are not in the list; the probe's
wall time is what the user waits.
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
ROOT = HERE.parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}
TASK_GROUPS = ("mlp", "babi_rnn", "embed_ce", "lstm_char", "deep_chain")
GROUPS = ("tiny",) + TASK_GROUPS + ("scan_chain_300", "mlp_adam")

_PROBE = r"""
import json, os, sys, time
t_start = time.perf_counter()
sys.path.insert(0, {here!r})
compiles, loads, stack = [], [0], []

def _record():
    from numba.core import event as ev
    from numba.core import ccallback

    class L(ev.Listener):
        def on_start(self, event):
            stack.append([time.perf_counter(), 0.0])
        def on_end(self, event):
            t0, inner = stack.pop()
            dt = time.perf_counter() - t0
            if stack:
                stack[-1][1] += dt
            d = event.data["dispatcher"]
            f = d.py_func
            compiles.append((f.__module__ + "." + f.__qualname__,
                             ",".join(str(a) for a in event.data["args"]), dt - inner))
    ev.register("numba:compile", L())
    plain = ccallback.CFunc._compile_uncached
    compile_ = ccallback.CFunc.compile

    def uncached(self):
        stack.append([time.perf_counter(), 0.0])
        try:
            return plain(self)
        finally:
            t0, inner = stack.pop()
            dt = time.perf_counter() - t0
            if stack:
                stack[-1][1] += dt
            f = self._pyfunc
            closure = [c.cell_contents for c in (f.__closure__ or ())]
            dts = [getattr(c, "__name__", "") for c in closure
                   if isinstance(c, type) and c.__module__ == "numpy"]
            compiles.append((f.__module__ + "." + f.__qualname__, ",".join(dts), dt - inner))

    def compile(self):
        before = len(compiles)
        out = compile_(self)
        if len(compiles) == before:
            loads[0] += 1
        return out
    ccallback.CFunc._compile_uncached = uncached
    ccallback.CFunc.compile = compile

_record()
t_imp = time.perf_counter()
import numpy as np
import fungrad as fg
import_s = time.perf_counter() - t_imp
assert fg.__file__.startswith({root!r}), fg.__file__
group, impl = {group!r}, {impl!r}

def build():
    if group == "tiny":
        f = lambda w, x: fg.sum(fg.tanh(x @ w))
        g = fg.grad(f)
        w = np.ones((8, 4), np.float32) * 0.1
        x = np.ones((3, 8), np.float32)
        run = fg.jit(g) if impl == "fungrad_jit" else g
        return (lambda: run(w, x)), run
    if group == "scan_chain_300":
        import jit_peers
        step = jit_peers.scan_chain(300)[impl]
        return step, step.__closure__ and next(
            (c.cell_contents for c in step.__closure__ if hasattr(c.cell_contents, "timings")),
            step)
    if group == "mlp_adam":
        import jit_peers
        step = jit_peers.mlp_adam()[impl]
        return step, step
    import importlib
    mod = importlib.import_module("tasks." + group)
    impl_obj = getattr(mod, impl + "_step")(mod.make_problem(0))
    return impl_obj.step, getattr(impl_obj.step, "jitted", impl_obj.step)

t0 = time.perf_counter()
step, jitted = build()
build_s = time.perf_counter() - t0
try:
    from fungrad.kernels._background import busy
except ImportError:  # a fungrad without background builds
    busy = lambda: False

def warming():
    cache = getattr(jitted, "_cache", {{}})
    return any(getattr(v, "warming", False) for vs in cache.values() for v in vs)

calls, c_first = [], time.process_time()
t_first = time.perf_counter()
# call until the step runs compiled: no builder running, no program warming, and a call that
# compiled nothing in this process (jit: after the trace)
while time.perf_counter() - t_first < 600:
    n = len(compiles)
    t0 = time.perf_counter()
    step()
    calls.append(time.perf_counter() - t0)
    done = not busy() and not warming() and len(compiles) == n
    if done and (not hasattr(jitted, "timings") or jitted.timings()) and len(calls) >= 2:
        break
    if busy() or warming():
        time.sleep(0.02)
until_s = time.perf_counter() - t_first
until_cpu = time.process_time() - c_first
t0 = time.perf_counter()
step()
next_ms = (time.perf_counter() - t0) * 1e3
timings = [list(t) for t in jitted.timings()] if hasattr(jitted, "timings") else []
print(json.dumps(dict(import_s=import_s, build_s=build_s, calls=calls[:50] + [max(calls)],
                      n_calls=len(calls), until_s=until_s,
                      until_cpu=until_cpu, next_ms=next_ms, compiles=compiles, loads=loads[0],
                      timings=timings, total_s=time.perf_counter() - t_start,
                      load=os.getloadavg()[0])))
"""


def impls_of(group: str) -> list[str]:
    """The fungrad implementations a group has (eager, fg.jit, fg.jit stacked)."""
    if group in ("tiny", "mlp_adam"):
        return ["fungrad", "fungrad_jit"]
    if group == "scan_chain_300":
        return ["fungrad_jit"]
    text = (HERE / "tasks" / f"{group}.py").read_text()
    return [i for i in ("fungrad", "fungrad_jit", "fungrad_jit_stacked")
            if f"def {i}_step" in text]


def probe(group: str, impl: str, root: Path = ROOT) -> dict:
    """One new process with an empty cache directory, running the fungrad of checkout
    ``root`` (this one's benchmark tasks): see the module doc."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(ONE_THREAD)
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(HERE)])
    # the steps of jit_peers.py import _steady_state.py, which turns the background build off
    # unless the environment says otherwise: say it here, since the cold path is what we measure
    env.setdefault("FUNGRAD_BACKGROUND_BUILD", "1")
    with tempfile.TemporaryDirectory(prefix="fungrad-cold-") as fresh:
        env["FUNGRAD_CACHE_DIR"] = os.path.join(fresh, "cache")
        code = _PROBE.format(here=str(HERE), group=group, impl=impl, root=str(root))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=1800,
                              cwd=fresh)  # (not a checkout: "" on sys.path is the cwd)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["stderr"] = done.stderr
    return out


def summary(compiles: list, top: int = 8) -> str:
    """The costliest compiles, ``name[types] s`` (exclusive seconds)."""
    by = sorted(compiles, key=lambda c: -c[2])[:top]
    return "; ".join(f"{n.rsplit('.', 2)[-2] if n.count('.') > 1 else n}."
                     f"{n.rsplit('.', 1)[-1]}[{a[:30]}] {s:.2f}" for n, a, s in by)


def _line(group: str, impl: str, label: str, runs: list, detail: bool) -> str:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return f"| {group} | {impl} | {label} | failed: {runs[0]['error']} |"

    def med(key):
        return statistics.median(r[key] for r in ok)
    first = statistics.median(r["calls"][0] for r in ok)
    slowest = statistics.median(max(r["calls"]) for r in ok)
    n_comp = statistics.median(len(r["compiles"]) for r in ok)
    comp_s = statistics.median(sum(c[2] for c in r["compiles"]) for r in ok)
    line = (f"| {group} | {impl} | {label} | {first:.2f} | {slowest:.2f} | {med('until_s'):.2f} "
            f"({med('n_calls'):g}) | {med('until_cpu'):.2f} | {med('next_ms'):.3g} "
            f"| {n_comp:g} | {comp_s:.2f} | {med('import_s'):.2f} | {med('load'):.1f} |")
    if detail:
        line += "\n  " + summary(ok[0]["compiles"])
    return line


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS)
    ap.add_argument("--impls", nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--detail", action="store_true", help="list the costliest compiles")
    ap.add_argument("--before", default=None, metavar="DIR",
                    help="also probe the fungrad checkout in DIR, alternating with this one")
    args = ap.parse_args(argv)
    roots = [("after", ROOT)] if not args.before else [("before", Path(args.before)),
                                                        ("after", ROOT)]
    rows, results = [], {}
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("| step | impl | code | first call s | slowest call s | until compiled s (calls) "
          "| CPU s | next ms | compiles in process | their s | import s | load |", flush=True)
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for group in args.groups:
        for impl in impls_of(group):
            if args.impls and impl not in args.impls:
                continue
            runs: dict = {label: [] for label, _ in roots}
            for _ in range(args.repeats):  # before and after alternate: the same load
                for label, root in roots:
                    runs[label].append(probe(group, impl, root))
            for label, _ in roots:
                results[f"{group}/{impl}/{label}"] = runs[label]
                line = _line(group, impl, label, runs[label], args.detail)
                rows.append(line)
                print(line, flush=True)
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
