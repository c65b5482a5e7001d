"""HIPS autograd's examples, run with upstream autograd and with fungrad, side by side.

    PYTHONPATH=$PWD python benchmarks/autograd_examples.py /path/to/autograd/examples \
        [--only NAME ...] [--timeout 120] [--repeat 1] [--out FILE.md] [--note TEXT]
    PYTHONPATH=$PWD python benchmarks/autograd_examples.py EXAMPLES --merge A.json B.json

Each example runs in its own subprocess, once with upstream autograd and once with fungrad
behind the renaming import shim (``benchmarks/_autograd_shim.py``: the example's source is not
changed), interleaved upstream, fungrad, upstream, fungrad... so that both meet the same load.
Every run has a timeout (120 s), MPLBACKEND=Agg and one thread (OMP/MKL/OPENBLAS/NUMBA).
The examples run in a scratch copy of the directory (they write figures beside themselves).

"Keeps the graph" is judged on what the example prints, not on fungrad's word: each example
seeds NumPy's generator and draws the same numbers under both libraries, so an example whose
gradient is right prints the same losses. The harness takes every decimal number each run
printed to stdout and compares the two sequences over their common length (relative 1e-3 or
absolute 1e-6), and it reports both runs' counts of gradients taken and of all-zero gradients
(the shim counts them). Results go to ``benchmarks/AUTOGRAD_EXAMPLES.md`` (table) and
``benchmarks/autograd_examples.json`` (raw, merged with earlier runs under ``--only``), logs to
``benchmarks/autograd_examples_logs/`` (not committed).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNNER = HERE / "_autograd_shim.py"
NOT_EXAMPLES = {"__init__.py", "data.py", "data_mnist.py"}
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?")
SHIM_LINE = re.compile(r"\[shim\] gradients: (\d+) taken, (\d+) all-zero")


def _environment() -> dict:
    """One thread, Agg, fungrad importable, and compiled bytecode cached for both libraries
    alike (PYTHONPYCACHEPREFIX: a source tree run with PYTHONDONTWRITEBYTECODE would otherwise
    compile fungrad's modules on every start while site-packages' autograd has its .pyc)."""
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir()) / "autograd-examples-pyc"),
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get(
                   "PYTHONPATH", "")] if p]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


WARM_UP = ("import matplotlib.pyplot, scipy.optimize, scipy.stats, autograd, autograd.numpy, "
           "autograd.scipy.stats, autograd.misc.optimizers, autograd.test_util, fungrad, "
           "fungrad.numpy, fungrad.scipy.stats, fungrad.scipy.special, fungrad.misc.optimizers, "
           "fungrad.testing")


def warm_up() -> None:
    """Import both libraries once, untimed, so that neither run pays for writing bytecode."""
    subprocess.run([sys.executable, "-c", WARM_UP], env=_environment(), check=True)


def run_one(mode: str, example: Path, timeout: float, logdir: Path) -> dict:
    """One subprocess run of ``example`` under ``mode``; its status, seconds and output."""
    env = _environment()
    out_path = logdir / f"{example.stem}.{mode}.out"
    err_path = logdir / f"{example.stem}.{mode}.err"
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, str(RUNNER), mode, str(example)],
                                cwd=example.parent, env=env, stdout=out, stderr=err,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # the runner exits and prints its counts
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = None
    seconds = time.perf_counter() - start
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    shim = SHIM_LINE.search(stderr)
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not SHIM_LINE.search(ln)]
    if rc is None:
        status = "timeout"
    elif rc == 0:
        status = "finished"
    else:
        status = "error: " + (lines[-1].strip()[:160] if lines else f"exit code {rc}")
    return {"status": status, "seconds": round(seconds, 2), "load": round(load, 2),
            "numbers": NUMBER.findall(stdout)[:2000],
            "grads": [int(shim.group(1)), int(shim.group(2))] if shim else None}


def _close(a: str, b: str) -> bool:
    return abs(float(a) - float(b)) <= max(1e-6, 1e-3 * abs(float(a)))


def compare(up: list, fg: list) -> tuple[int, int, float]:
    """Over the common length n of the printed numbers: how many lead in agreement (the
    matching prefix), n, and the median relative difference after it (a long stochastic
    optimisation amplifies rounding differences, so late numbers drift a little even when
    every gradient is right)."""
    n = min(len(up), len(fg))
    prefix = next((i for i in range(n) if not _close(up[i], fg[i])), n)
    after = [abs(float(a) - float(b)) / max(abs(float(a)), abs(float(b)), 1e-12)
             for a, b in zip(up[prefix:n], fg[prefix:n])]
    return prefix, n, statistics.median(after) if after else 0.0


def graph_verdict(r: dict) -> str:
    """The "keeps the graph" cell: printed numbers and gradient counts against upstream's."""
    up, fg = r["upstream"], r["fungrad"]
    if fg["status"] not in ("finished", "timeout"):
        return "n/a (did not run)"
    prefix, n, after = compare(up["numbers"], fg["numbers"])
    if not n:
        parts = ["prints no numbers"]
    elif prefix == n:
        parts = [f"all {n} printed numbers match"]
    else:
        parts = [f"the first {prefix} of {n} printed numbers match (after them, median "
                 f"difference {100 * after:.2g}%)"]
    good = prefix >= min(n, 20)  # the first 20 (losses of the first iterations) agree
    if fg["grads"] is not None:
        taken, zero = fg["grads"]
        parts.append(f"{taken} grads, {zero} all-zero" + (
            f" (upstream {up['grads'][0]}, {up['grads'][1]})" if up["grads"] else ""))
        up_taken, up_zero = up["grads"] or (0, 0)
        # as often all-zero as upstream's (a few percent more: a run does not take the
        # same gradients when, e.g., scipy's line search takes other steps)
        good = good and (taken > 0 or up_taken == 0) and (
            zero <= taken * (up_zero / up_taken + 0.02) if up_taken else zero == 0)
    if n == 0 and fg["grads"] is None:
        return "unknown: " + "; ".join(parts)
    return ("yes: " if good else "NO: ") + "; ".join(parts)


def write_table(results: dict, path: Path, timeout: float, note: str = "") -> None:
    rows = ["| example | upstream | fungrad | ratio | keeps the graph |",
            "|---|---|---|---:|---|"]
    loads = []
    for name in sorted(results):
        r = results[name]
        up, fg = r["upstream"], r["fungrad"]
        loads += [up["load"], fg["load"]]
        both = up["status"] == fg["status"] == "finished"
        ratio = f"{fg['seconds'] / up['seconds']:.2f}" if both else "n/a"
        if up["status"] == fg["status"] == "timeout" and up["numbers"] and fg["numbers"]:
            # how far each got in the same time: upstream's printed numbers over fungrad's
            ratio = f"{len(up['numbers']) / len(fg['numbers']):.2f} by progress"
        rows.append(f"| {name} | {up['status']} {up['seconds']:.1f} s | {fg['status']} "
                    f"{fg['seconds']:.1f} s | {ratio} | {graph_verdict(r)} |")
    n_up = sum(r["upstream"]["status"] == "finished" for r in results.values())
    n_both = sum(r["upstream"]["status"] == "finished" and r["fungrad"]["status"] == "finished"
                 for r in results.values())
    n_fg = sum(r["fungrad"]["status"] == "finished" for r in results.values())
    text = [
        "# HIPS autograd's examples: upstream autograd and fungrad",
        "",
        "Produced by `benchmarks/autograd_examples.py` (see its docstring for the method):",
        "",
        "    PYTHONPATH=$PWD /work/venv/bin/python benchmarks/autograd_examples.py "
        "/work/autograd-suite/autograd-1.9.1/examples",
        "",
        f"Each example once per library, interleaved, {timeout:.0f} s timeout, one thread, "
        "MPLBACKEND=Agg. Seconds are wall time of the whole process (imports, Numba's "
        "cache loads and the example); ratio = fungrad / upstream when both finished; when both "
        "timed out, \"by progress\" = upstream's count of printed numbers over fungrad's "
        "(how far each got in the same time: below 1, fungrad got further). "
        f"1-minute load average during the runs: median {statistics.median(loads):.2f}, "
        f"range {min(loads):.2f}-{max(loads):.2f} (a 2-core machine shared with other jobs).",
        "",
        f"Upstream finished {n_up} of {len(results)}; fungrad finished {n_fg}, and "
        f"{n_both} of upstream's {n_up}.",
        "",
    ] + ([note, ""] if note else []) + rows
    path.write_text("\n".join(text) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("examples", type=Path, help="autograd's examples directory")
    ap.add_argument("--only", nargs="*", help="example names (no .py); others keep old results")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs per library; medians reported")
    ap.add_argument("--out", type=Path, default=HERE / "AUTOGRAD_EXAMPLES.md")
    ap.add_argument("--note", default="", help="a line for the table's header (how it was run)")
    ap.add_argument("--merge", type=Path, nargs="*",
                    help="run nothing: merge these raw .json results into --out's")
    args = ap.parse_args()
    raw = args.out.with_name("autograd_examples.json")
    if args.merge:
        merged: dict = {}
        for path in args.merge:
            merged.update(json.loads(path.read_text()))
        raw.write_text(json.dumps(merged) + "\n")
        write_table(merged, args.out, args.timeout, args.note)
        return
    warm_up()
    logdir = HERE / "autograd_examples_logs"
    logdir.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="ag-examples-"))
    shutil.copytree(args.examples, scratch / "examples")
    names = sorted(p.stem for p in (scratch / "examples").glob("*.py")
                   if p.name not in NOT_EXAMPLES)
    if args.only:
        names = [n for n in names if n in set(args.only)]
    results = json.loads(raw.read_text()) if raw.exists() and args.only else {}
    try:
        for name in names:
            example = scratch / "examples" / f"{name}.py"
            runs: dict = {"upstream": [], "fungrad": []}
            for _ in range(args.repeat):
                for mode in ("upstream", "fungrad"):
                    runs[mode].append(run_one(mode, example, args.timeout, logdir))
            entry = {}
            for mode, rs in runs.items():
                best = dict(rs[-1])
                best["seconds"] = round(statistics.median(r["seconds"] for r in rs), 2)
                best["status"] = rs[-1]["status"] if all(
                    r["status"] == rs[-1]["status"] for r in rs) else "/".join(
                    r["status"] for r in rs)
                entry[mode] = best
            results[name] = entry
            print(f"{name:34s} upstream {entry['upstream']['status'][:40]:40s} "
                  f"{entry['upstream']['seconds']:7.1f}s  fungrad "
                  f"{entry['fungrad']['status'][:60]:60s} {entry['fungrad']['seconds']:7.1f}s",
                  flush=True)
            raw.write_text(json.dumps(results) + "\n")
            write_table(results, args.out, args.timeout, args.note)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
