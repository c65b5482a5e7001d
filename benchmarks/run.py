"""Run the fungrad benchmark suite against its peers and write ``benchmarks/RESULTS.md``.

    python benchmarks/run.py [--threads 1 2] [--tasks mlp lstm_char] [--repeat 20]

For each thread count the suite runs in a fresh subprocess (``--worker``) whose environment
sets OMP/OPENBLAS/MKL/NUMBA thread counts before NumPy is imported; the worker also calls
``torch.set_num_threads``.  Per task the worker:

1. builds the problem (``make_problem(seed)``) and a float64 NumPy-by-hand reference gradient;
2. builds every available implementation (numpy, torch, autograd, fungrad — a peer that does
   not import is skipped, an implementation that raises is reported, not fatal) and checks its
   first-step gradients against the reference (max normwise relative error);
3. warms each up, then times training steps round-robin: each round runs a block of steps of
   every implementation in turn (rotating the order), so machine noise hits all of them alike;
   the statistic is the median over all timed steps;
4. measures peak memory per step with tracemalloc: peak traced bytes from building a fresh
   implementation through two steps, minus its copy of the weights.  PyTorch allocates
   outside Python's allocator, so tracemalloc cannot see its tensors: n/a.

The parent process never imports NumPy; it collects the workers' JSON and writes markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
from tasks import IMPLS, TASKS  # noqa: E402  (no NumPy import: the package __init__ is plain)

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
GRAD_TOL = 1e-4          # float32 vs float64 reference, normwise: above this is flagged
LABELS = {"numpy": "NumPy by hand", "torch": "PyTorch", "autograd": "HIPS autograd",
          "fungrad": "fungrad", "fungrad_jit": "fungrad fg.jit",
          "fungrad_jit_stacked": "fungrad fg.jit (stacked params)", "jax": "JAX jit"}
COMPILED = ("fungrad_jit", "fungrad_jit_stacked", "jax")  # first call traces and compiles


# --------------------------------------------------------------------------------------------
# worker (one thread setting, in its own process)
# --------------------------------------------------------------------------------------------


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("numpy", "numba", "torch", "autograd", "fungrad", "jax"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _import_peer(name: str, threads: int) -> None:
    """Import a peer library (raising ImportError if it is missing) and set its threads."""
    if name == "torch":
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    elif name == "autograd":
        import autograd  # noqa: F401
    elif name == "jax":
        import jax  # noqa: F401
    elif name.startswith("fungrad_jit"):
        import fungrad.jit  # noqa: F401
    elif name == "fungrad":
        import fungrad

        if not hasattr(fungrad, "Tensor"):
            raise ImportError("fungrad has no Tensor yet")


def _available(threads: int, wanted) -> dict[str, str | None]:
    """impl -> None if usable, else why it is skipped.

    Only the requested peers are imported (an unused library's thread pool stays out of
    the process); autograd is always tried, as it validates the reference gradients.
    """
    status: dict[str, str | None] = {"numpy": None}
    for name in ("torch", "autograd", "fungrad", "fungrad_jit", "fungrad_jit_stacked", "jax"):
        if name not in wanted and name != "autograd":
            status[name] = "not requested"
            continue
        try:
            _import_peer(name, threads)
            status[name] = None
        except ImportError as exc:
            status[name] = f"not importable ({exc})"
    return status


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _time_round_robin(impls: dict, rounds: int, budget: float, block_s: float = 0.010,
                      warmup_s: float = 0.3, min_samples: int = 5):
    """Warm up, then time ``impls`` (name -> Impl) in interleaved blocks.

    Returns ``(samples, errors)``: seconds per step for each implementation, and the error
    of any implementation that raised (it is dropped from the remaining rounds).
    """
    import gc
    import time

    clock = time.perf_counter
    per_block: dict[str, int] = {}
    errors: dict[str, str] = {}
    for name, impl in impls.items():
        times, start = [], clock()
        try:
            while len(times) < 2 or (clock() - start < warmup_s and len(times) < 50):
                t0 = clock()
                impl.step()
                times.append(clock() - t0)
        except Exception as exc:
            errors[name] = f"during warm-up: {_short(exc)}"
            continue
        est = sorted(times[1:])[len(times[1:]) // 2]
        per_block[name] = max(1, int(block_s / max(est, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in per_block}
    spent = dict.fromkeys(per_block, 0.0)
    names = list(per_block)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            if name in errors or (spent[name] > budget and len(samples[name]) >= min_samples):
                continue
            step, out, k = impls[name].step, samples[name], per_block[name]
            gc.collect()
            try:
                for _ in range(k):
                    t0 = clock()
                    step()
                    out.append(clock() - t0)
            except Exception as exc:
                errors[name] = f"during timing: {_short(exc)}"
                continue
            spent[name] += sum(out[-k:])
    return {n: ts for n, ts in samples.items() if n not in errors and ts}, errors


def _peak_memory(factory, problem) -> float:
    """Peak traced MiB from building a fresh implementation through two steps, minus weights."""
    import tracemalloc

    weights = sum(v.nbytes for v in problem.params.values())
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        impl = factory(problem)
        impl.step()
        impl.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0.0, (peak - base - weights) / 2**20)


def worker(args) -> None:
    import importlib
    import time

    import numpy as np

    from tasks.common import as_float64, max_rel_error

    status = _available(args.threads, args.impls)
    result = {"threads": args.threads, "versions": _versions(), "skipped": {},
              "tasks": {}, "loadavg": list(os.getloadavg())}
    for impl in args.impls:
        if status.get(impl) and status[impl] != "not requested":
            result["skipped"][impl] = status[impl]
    for task in args.tasks:
        mod = importlib.import_module(f"tasks.{task}")
        problem = mod.make_problem(args.seed)
        ref_loss, ref = mod.numpy_step(problem, np.float64).grads()
        ref_check = None
        if status.get("autograd") is None:
            # validate the hand-written backprop itself: autograd in float64 must agree
            # with it to rounding (~1e-15), not just to float32 precision
            try:
                ref_check = max_rel_error(mod.autograd_step(as_float64(problem)).grads()[1], ref)
            except Exception as exc:
                ref_check = _short(exc)
        rows, built = {}, {}
        for name in args.impls:
            if status.get(name):
                continue
            factory = getattr(mod, f"{name}_step", None)
            if factory is None:  # an implementation this task does not have
                continue
            row = rows[name] = {"error": None}
            try:
                if name in COMPILED:  # the first call traces and compiles: time it, in a
                    probe = factory(problem)  # copy whose weights the gradient check skips
                    t0 = time.perf_counter()
                    probe.step()
                    row["first_s"] = time.perf_counter() - t0
                    del probe
                impl = factory(problem)
                loss, grads = impl.grads()
                row["grad_err"] = max_rel_error(grads, ref)
                row["loss_err"] = abs(loss - ref_loss) / max(abs(ref_loss), 1e-30)
                built[name] = impl
            except Exception as exc:  # an unfinished engine must not stop the suite
                row["error"] = _short(exc)
        print(f"[{args.threads} thr] {task}: timing {', '.join(built)}", file=sys.stderr,
              flush=True)
        samples, errors = _time_round_robin(built, args.repeat, args.budget)
        for name, msg in errors.items():
            rows[name]["error"] = msg
        for name, ts in samples.items():
            rows[name].update(ms=float(np.median(ts)) * 1e3, n=len(ts),
                              iqr_ms=float(np.subtract(*np.percentile(ts, [75, 25]))) * 1e3)
            if name not in ("torch", "jax"):
                try:
                    rows[name]["mem_mib"] = _peak_memory(getattr(mod, f"{name}_step"), problem)
                except Exception as exc:
                    rows[name]["mem_error"] = _short(exc)
        result["tasks"][task] = {"rows": rows, "meta": problem.meta, "ref_check": ref_check}
    result["loadavg_end"] = list(os.getloadavg())
    Path(args.json).write_text(json.dumps(result, indent=1))


# --------------------------------------------------------------------------------------------
# parent: one worker per thread setting, then the markdown report
# --------------------------------------------------------------------------------------------


def _fmt_ms(ms: float) -> str:
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _table(res: dict) -> list[str]:
    lines = ["| task | implementation | median ms/step | × NumPy by hand | × PyTorch "
             "| × JAX jit | first call s | peak MiB/step | grad max rel err |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for task, tres in res["tasks"].items():
        rows = tres["rows"]
        base = rows.get("numpy", {}).get("ms")
        tref = rows.get("torch", {}).get("ms")
        jref = rows.get("jax", {}).get("ms")
        for name, row in rows.items():
            label = LABELS[name]
            if row.get("error") and "ms" not in row:
                lines.append(f"| {task} | {label} | failed: {row['error']} | | | | | | |")
                continue
            ms = row["ms"]
            r_np = f"{ms / base:.2f}" if base else "–"
            r_t = f"{ms / tref:.2f}" if tref else "–"
            r_j = f"{ms / jref:.2f}" if jref else "–"
            first = f"{row['first_s']:.2f}" if "first_s" in row else "–"
            if name in ("torch", "jax"):
                mem = "n/a"
            elif "mem_mib" in row:
                mem = f"{row['mem_mib']:.2f}"
            else:
                mem = "error"
            err = row.get("grad_err")
            err_s = "–" if err is None else f"{err:.1e}" + (" ✗" if err > GRAD_TOL else "")
            lines.append(f"| {task} | {label} | {_fmt_ms(ms)} | {r_np} | {r_t} | {r_j} "
                         f"| {first} | {mem} | {err_s} |")
    return lines


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def render(results: list[dict], argv: list[str]) -> str:
    v = results[0]["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("numpy", "numba", "torch", "autograd", "fungrad",
                                             "jax") if v.get(k))
    missing = ", ".join(k for k in ("torch", "autograd", "fungrad") if not v.get(k))
    out = [
        "# fungrad benchmark results",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {platform.platform()}, {platform.machine()}, "
        f"{os.cpu_count()} logical CPUs ({_cpu_model()})",
        f"- Python {v['python']}; {libs}" + (f"; not installed: {missing}" if missing else ""),
        f"- command: `{' '.join(['python benchmarks/run.py', *argv])}`",
        "",
        "Median wall-clock milliseconds per training step (forward + backward + SGD update, "
        "lr 0.01, float32), implementations interleaved round-robin after warm-up. "
        "Ratios are this row's median over the NumPy-by-hand and PyTorch medians of the same "
        "run (< 1 is faster). Peak MiB/step: tracemalloc peak from building the "
        "implementation through two steps, minus its copy of the weights (work buffers, "
        "gradients, activations, temporaries); PyTorch's tensors are invisible to tracemalloc "
        "(n/a), and so would be memory allocated inside Numba kernels. Grad max rel err: "
        "first-step gradients vs a float64 NumPy-by-hand reference, max over parameters of "
        f"max|g - ref| / max|ref| (✗ above {GRAD_TOL:g}); fg.jit's are computed under "
        "fg.jit. First call s (fg.jit, JAX jit): the first step of the first build in the "
        "worker process — tracing, compiling, and compiling or loading the compiled kernels "
        "(Numba's on-disk cache, XLA's in-memory one); × JAX jit: this row's median over "
        "JAX jit's.",
        "",
    ]
    checks = [(t, r.get("ref_check")) for t, r in results[0]["tasks"].items()]
    if any(c is not None for _, c in checks):
        out.append("Reference check — HIPS autograd in float64 vs the float64 NumPy-by-hand "
                   "gradients used as reference: " + ", ".join(
                       f"{t} {c:.1e}" if isinstance(c, float) else f"{t} {c}"
                       for t, c in checks if c is not None) + ".")
        out.append("")
    for res in results:
        n = res["threads"]
        out.append(f"## {n} thread{'s' if n != 1 else ''}")
        out.append("")
        la, lb = res["loadavg"], res.get("loadavg_end", res["loadavg"])
        out.append(f"Load average (1/5/15 min) at start {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}, "
                   f"at end {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}.")
        if n > 1:
            out.append(f"With {n} threads every parallel region, even a small matmul, needs "
                       "its helper threads running: on a shared machine a parallel region "
                       "that finds them descheduled or parked waits milliseconds, so read "
                       "this table against the load average and the 1-thread table.")
        if n > 1 and max(la[0], lb[0]) > (os.cpu_count() or 1):
            out.append(f"**Warning:** the load exceeded the {os.cpu_count()} CPUs during this "
                       "run: these timings mostly measure the other load.")
        for impl, why in res["skipped"].items():
            out.append(f"{LABELS[impl]} skipped: {why}.")
        out.append("")
        out.extend(_table(res))
        out.append("")
    return "\n".join(out)


def main(argv=None) -> None:
    raw = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    ap.add_argument("--repeat", type=int, default=50,
                    help="round-robin rounds (each round: a ~10 ms block per implementation)")
    ap.add_argument("--budget", type=float, default=15.0,
                    help="seconds of timed steps per implementation and task before it stops "
                         "taking part in further rounds (at least 5 steps are timed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", default=str(HERE / "RESULTS.md"),
                    help="markdown file to write ('-' for stdout only)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    args = ap.parse_args(raw)
    if "numpy" not in args.impls:
        args.impls.insert(0, "numpy")       # the baseline of every ratio
    if args.worker:
        args.threads = args.threads[0]
        worker(args)
        return

    results = []
    for n in args.threads:
        env = dict(os.environ, **{var: str(n) for var in THREAD_VARS})
        if n == 1:  # XLA's CPU backend: one intra-op thread, as the others
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1").strip()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker",
                   "--threads", str(n), "--tasks", *args.tasks, "--impls", *args.impls,
                   "--repeat", str(args.repeat), "--budget", str(args.budget),
                   "--seed", str(args.seed), "--json", str(out)]
            subprocess.run(cmd, env=env, check=True)
            results.append(json.loads(out.read_text()))
    text = render(results, raw)
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text + "\n")
        print(f"\nwritten to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
