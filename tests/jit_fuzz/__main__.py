"""``python -m jit_fuzz``: fuzz fg.jit against eager, print the failures grouped by class.

    cd tests && PYTHONPATH=<checkout> python -m jit_fuzz --programs 2000 --seed 1 --jobs 2

Options: ``--programs N`` ``--seed S`` ``--jobs J`` (children at a time) ``--batch B``
(programs per child) ``--no-shrink`` ``--shrink-budget SECONDS`` (per failure class)
``--json PATH`` (every failure, with its program, for later replay) ``--replay PATH``
(run the programs of such a file again) ``--show N`` (reproducers printed per class).
The exit status is 1 when some program failed.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time

from .program import Program
from .sandbox import run_jobs
from .shrink import shrink


def _group(cls: str) -> str:
    return cls


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jit_fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first program index")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per program")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--shrink-budget", type=float, default=120.0)
    ap.add_argument("--show", type=int, default=1, help="reproducers printed per class")
    ap.add_argument("--json", help="write every failure (with its program) here")
    ap.add_argument("--replay", help="run the failures saved by --json again")
    ap.add_argument("--time-budget", type=float, default=None,
                    help="start no new batch after this many seconds (report what ran)")
    ap.add_argument("--save", help="directory: write each shrunk reproducer as a script")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    if args.replay:
        saved = json.load(open(args.replay))
        jobs = [{"program": f["program"]} for f in saved if f.get("program")]
    else:
        jobs = [{"seed": args.seed, "index": i}
                for i in range(args.start, args.start + args.programs)]
    done = [0]

    def progress(batch):
        done[0] += len(batch)
        bad = sum(r["status"] == "fail" for r in batch)
        print(f"[{time.monotonic() - t0:7.1f}s] {done[0]}/{len(jobs)} programs "
              f"({bad} failing in this batch)", file=sys.stderr, flush=True)

    results = run_jobs(jobs, batch_size=args.batch, n_workers=args.jobs,
                       timeout_per_job=args.timeout, progress=progress,
                       time_budget=args.time_budget)
    status = collections.Counter(r["status"] for r in results)
    fails = [r for r in results if r["status"] == "fail"]
    groups: dict[str, list] = collections.defaultdict(list)
    for r in fails:
        groups[_group(r["cls"])].append(r)
    kinds = collections.Counter(r["cls"].split(":", 1)[0] for r in fails)
    checked = status["ok"] + status["fail"]
    print(f"\njit_fuzz: seed {args.seed}, {len(results)} programs, {checked} checked "
          f"({status['invalid']} dropped: eager refuses them), {len(fails)} failing "
          f"in {len(groups)} classes; {dict(kinds)}; {time.monotonic() - t0:.0f} s\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{**r, "job": r["job"]} for r in fails], f, indent=1)
    for cls, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        labels = ", ".join(str(r["job"].get("index", "?")) for r in rs[:12])
        print("=" * 100)
        print(f"{cls}: {len(rs)} program(s) (indices {labels}{', ...' if len(rs) > 12 else ''})")
        print(f"  {rs[0]['detail'][:600]}")
        for r in rs[: args.show]:
            if not r.get("program"):
                continue
            prog = Program.from_json(r["program"])
            if not args.no_shrink:
                prog = shrink(prog, cls, budget_s=args.shrink_budget,
                              timeout_per_job=args.timeout)
            print("-" * 100)
            print(prog.source().split("\n\ndef inputs")[0])
            print(f"# inputs: {[(i.name, i.shape, i.layout, i.alias) for i in prog.inputs]}")
            print(f"# mode: {prog.mode}")
            print(f"# replay: python -m jit_fuzz --replay <file> (the JSON below)")
            print("# " + prog.to_json())
            if args.save:
                import os  # noqa: PLC0415
                import re  # noqa: PLC0415

                os.makedirs(args.save, exist_ok=True)
                stem = re.sub(r"[^A-Za-z0-9_]+", "_", cls).strip("_")
                with open(os.path.join(args.save, f"{stem}.py"), "w") as f:
                    f.write(f"# {cls}\n# {rs[0]['detail'][:300]!r}\n" + prog.source())
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
