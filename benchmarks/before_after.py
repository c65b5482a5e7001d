"""Eager speed before and after a change, in one run.

    python benchmarks/before_after.py [--before 00eb006] [--rounds 3] [--tasks ...]
                                      [--budget 4] [--output benchmarks/BEFORE_AFTER.md]

The *before* side is a git revision checked out beside this one (``git worktree``, removed
afterwards, or an existing checkout given with ``--before-path``); the *after* side is this
checkout. A library cannot be loaded twice in one process, so every measurement is a ``run.py
--worker`` subprocess (one thread), three per task and round, in an order that rotates between
rounds:

* ``before``: the before revision's library running its own benchmark suite;
* ``after, same code``: this library running the *before* revision's suite — the same user
  code, so the difference is the engine alone;
* ``after``: this library running its own suite — what a user of this version writes (it may
  use ops the before side did not have, such as ``nn.LSTM``, and the book's ``step()``
  instead of ``zero_grad()``).

Each worker times fungrad eager, PyTorch eager and NumPy by hand round-robin, as ``run.py``
does, so every ratio is taken within one worker and the machine's drift between workers
cancels out. Reported per task and side: the medians over rounds of the fungrad/PyTorch and
fungrad/NumPy-by-hand ratios, fungrad's median ms per step, and the peak MiB per step of
fungrad and of NumPy by hand (run.py's tracemalloc measure).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import THREAD_VARS  # noqa: E402  (no NumPy import)
from tasks import TASKS  # noqa: E402

IMPLS = ("numpy", "torch", "fungrad")


def _worker(suite: Path, library: Path, task: str, budget: float, out: Path) -> dict:
    """One ``run.py --worker`` of checkout ``suite``'s benchmarks on checkout ``library``'s
    fungrad, for ``task``; its JSON rows."""
    env = dict(os.environ, PYTHONPATH=str(library), **{var: "1" for var in THREAD_VARS})
    cmd = [sys.executable, str(suite / "benchmarks" / "run.py"), "--worker", "--threads", "1",
           "--tasks", task, "--impls", *IMPLS, "--budget", str(budget), "--json", str(out)]
    subprocess.run(cmd, env=env, check=True, cwd=library)
    return json.loads(out.read_text())["tasks"][task]["rows"]


def _ratios(rows: dict) -> dict | None:
    fg, torch, np_ = (rows.get(k, {}) for k in IMPLS[::-1])
    if not all("ms" in r for r in (fg, torch, np_)):
        return None
    return {"ms": fg["ms"], "x_torch": fg["ms"] / torch["ms"], "x_numpy": fg["ms"] / np_["ms"],
            "mem": fg.get("mem_mib"), "mem_numpy": np_.get("mem_mib")}


def _median(samples: list[dict], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return statistics.median(values) if values else None


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="00eb006", help="git revision of the before side")
    ap.add_argument("--before-path", type=Path,
                    help="an existing checkout of the before side (instead of a worktree)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--budget", type=float, default=4.0,
                    help="seconds of timed steps per implementation, task and worker")
    ap.add_argument("--output", default=str(HERE / "BEFORE_AFTER.md"),
                    help="markdown file to write ('-' for stdout only)")
    raw = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(raw)

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()  # at the start
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = args.before_path
        worktree = None
        if before is None:
            worktree = before = tmp / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                            str(worktree), args.before], check=True)
        before = before.resolve()
        sides = {"before": (before, before), "after, same code": (before, ROOT),
                 "after": (ROOT, ROOT)}  # name: (benchmark suite, library)
        samples: dict = {(t, s): [] for t in args.tasks for s in sides}
        load0 = os.getloadavg()
        try:
            for r in range(args.rounds):
                names = list(sides)
                order = names[r % 3:] + names[:r % 3]
                for task in args.tasks:
                    for side in order:
                        print(f"round {r + 1}/{args.rounds} {task} {side}", file=sys.stderr,
                              flush=True)
                        suite, library = sides[side]
                        rows = _worker(suite, library, task, args.budget, tmp / "out.json")
                        got = _ratios(rows)
                        if got is None:
                            errors = {k: v.get("error") for k, v in rows.items()}
                            raise SystemExit(f"{side} {task}: no timing ({errors})")
                        samples[task, side].append(got)
        finally:
            if worktree is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(worktree)], check=False)
    load1 = os.getloadavg()

    lines = [
        "# Eager speed before and after",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{platform.platform()}, {os.cpu_count()} logical CPUs, 1 thread",
        f"- before: `{args.before if args.before_path is None else args.before_path}`; "
        f"after: `{rev}`; {args.rounds} rounds, {args.budget:g} s budget per implementation",
        f"- load average (1 min) {load0[0]:.2f} at start, {load1[0]:.2f} at end",
        f"- command: `{' '.join(['python benchmarks/before_after.py', *raw])}`",
        "",
        "Medians over rounds of per-worker ratios (< 1 is faster). Sides: *before* (the old "
        "library, its own suite), *after, same code* (this library, the old suite), *after* "
        "(this library, its own suite). Peak MiB: tracemalloc peak per step (run.py's "
        "measure) of fungrad and of NumPy by hand.",
        "",
        "| task | side | fungrad ms | × PyTorch | × NumPy by hand | peak MiB | NumPy MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for task in args.tasks:
        for side in sides:
            got = samples[task, side]
            lines.append(
                f"| {task} | {side} | {_fmt(_median(got, 'ms'), 3)} "
                f"| {_fmt(_median(got, 'x_torch'))} | {_fmt(_median(got, 'x_numpy'))} "
                f"| {_fmt(_median(got, 'mem'))} | {_fmt(_median(got, 'mem_numpy'))} |")
    text = "\n".join(lines)
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
