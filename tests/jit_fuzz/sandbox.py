"""Run batches of fuzz programs in child processes, so that a crash names its program.

A batch runs in a process forked from a *forkserver* that has imported fungrad once (so a
restart after a crash costs a fork, not a fresh import). The child writes a ``start`` line
(with the program's JSON) before each program and a ``result`` line after it to a file; the
parent reads that file when the child exits. A child killed by a signal (a segmentation
fault) or past its time budget leaves a ``start`` with no ``result``: that program is the
crash (``crash:SIGSEGV``...) or the hang (``hang``), the fault handler's stack names the site,
and the rest of the batch runs in a new child.

A job is ``{"seed": s, "index": i}`` (generated in the child) or ``{"program": <json>}``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from typing import Iterable

__all__ = ["run_jobs", "Result"]

_CTX = None


def _context():
    global _CTX
    if _CTX is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["jit_fuzz._warm"])
        _CTX = ctx
    return _CTX


class Result(dict):
    """A job's result: ``status`` (ok/invalid/fail), ``cls``, ``detail``, ``program``
    (JSON), ``job``."""


def _child(jobs: list, out_path: str, err_path: str) -> None:
    """Run ``jobs`` in this process (the batch child)."""
    import faulthandler  # noqa: PLC0415

    err = open(err_path, "w")  # noqa: SIM115 (kept open for the fault handler)
    faulthandler.enable(err, all_threads=False)
    sys.stderr = err
    from .check import check  # noqa: PLC0415
    from .generator import generate  # noqa: PLC0415
    from .program import Program  # noqa: PLC0415

    with open(out_path, "a", buffering=1) as out:
        for k, job in enumerate(jobs):
            if "call" in job:  # a test function run in isolation: "module:qualname"
                out.write(json.dumps({"k": k, "event": "start", "program": None}) + "\n")
                out.flush()
                os.fsync(out.fileno())
                out.write(json.dumps({"k": k, "event": "result", **_call(job["call"])}) + "\n")
                out.flush()
                continue
            if "program" in job:
                program = Program.from_json(job["program"])
            else:
                try:
                    program = generate(job["seed"], job["index"])
                except Exception as exc:  # noqa: BLE001 (a generator bug: report, go on)
                    out.write(json.dumps({"k": k, "event": "result", "status": "invalid",
                                          "cls": "generator", "detail": repr(exc)}) + "\n")
                    continue
            out.write(json.dumps({"k": k, "event": "start", "program": program.to_json()}) + "\n")
            out.flush()
            os.fsync(out.fileno())
            outcome = check(program)
            out.write(json.dumps({"k": k, "event": "result", **outcome.to_dict()}) + "\n")
            out.flush()


def _call(target: str) -> dict:
    """Import ``module:qualname`` and call it; its outcome as a result dict."""
    import importlib  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    from .check import _site  # noqa: PLC0415
    from fungrad.errors import FungradError  # noqa: PLC0415

    module, _, name = target.partition(":")
    try:
        fn = importlib.import_module(module)
        for part in name.split("."):
            fn = getattr(fn, part)
        fn()
    except BaseException as exc:  # noqa: BLE001 (every outcome is reported)
        site = _site(exc)
        if isinstance(exc, AssertionError) and site == "?":
            kind = "wrong"
        else:
            kind = "refused" if isinstance(exc, FungradError) else "internal"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-8:])
        return {"status": "fail", "cls": f"{kind}:{type(exc).__name__}@{site}",
                "detail": tb[-3000:]}
    return {"status": "ok", "cls": "", "detail": ""}


def _fault_site(err_text: str) -> str:
    """The innermost fungrad frame of a fault handler's dump (its first 'File' line there)."""
    for line in err_text.splitlines():
        line = line.strip()
        if line.startswith("File ") and "/fungrad/" in line:
            path = line.split('"')[1].split("/fungrad/", 1)[1]
            func = line.rsplit(" in ", 1)[-1]
            return f"{path}:{func}"
    return "?"


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except (ValueError, TypeError):
        return f"exit{code}"


def run_batch(jobs: list, timeout_per_job: float = 60.0, batch_timeout: float | None = None
              ) -> list[Result]:
    """Run ``jobs`` (restarting after each crash); one Result per job, in order."""
    results: list[Result | None] = [None] * len(jobs)
    pending = list(range(len(jobs)))
    ctx = _context()
    while pending:
        with tempfile.TemporaryDirectory(prefix="jit_fuzz_") as tmp:
            out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            batch = [jobs[i] for i in pending]
            proc = ctx.Process(target=_child, args=(batch, out_path, err_path), daemon=True)
            proc.start()
            budget = batch_timeout or (30.0 + timeout_per_job * len(batch))
            deadline = time.monotonic() + budget
            hung = False
            while proc.is_alive():
                proc.join(timeout=1.0)
                # a job that started more than timeout_per_job ago and has not finished hangs
                if time.monotonic() > deadline or _current_too_long(out_path, timeout_per_job):
                    hung = True
                    proc.kill()
                    proc.join()
                    break
            code = proc.exitcode
            events = _read(out_path)
            err_text = open(err_path).read() if os.path.exists(err_path) else ""
        started: dict[int, str] = {}
        done: set[int] = set()
        for ev in events:
            k = ev["k"]
            if ev["event"] == "start":
                started[k] = ev["program"]
            else:
                done.add(k)
                results[pending[k]] = Result(job=batch[k], program=started.get(k), **{
                    x: ev[x] for x in ("status", "cls", "detail")})
        unfinished = [k for k in started if k not in done]
        if unfinished:
            k = unfinished[0]
            started[k] = started[k] or json.dumps(batch[k])
            if hung:
                cls, detail = "hang", f"no result after {timeout_per_job:.0f} s"
            else:
                cls = f"crash:{_signal_name(code)}@{_fault_site(err_text)}"
                frames = [ln.strip() for ln in err_text.splitlines() if "/fungrad/" in ln]
                detail = (f"child died ({_signal_name(code)}) in " +
                          " <- ".join(frames[:4]) if frames else err_text[-600:])
            results[pending[k]] = Result(job=batch[k], program=started[k], status="fail",
                                         cls=cls, detail=detail)
            done.add(k)
        elif len(done) < len(batch):
            # died (or stopped) between programs, or before the first one: report it on the
            # next job, so that every round makes progress
            k = min(set(range(len(batch))) - done)
            results[pending[k]] = Result(job=batch[k], program=None, status="fail",
                                         cls=f"crash:{'hang' if hung else _signal_name(code)}"
                                             "@harness",
                                         detail=err_text[-1500:])
            done.add(k)
        pending = [pending[k] for k in range(len(batch)) if k not in done]
    return [r for r in results if r is not None]


_STARTS: dict[str, tuple[int, float]] = {}


def _current_too_long(out_path: str, limit: float) -> bool:
    """Whether the job the child works on started more than ``limit`` seconds ago."""
    try:
        size = os.path.getsize(out_path)
    except OSError:
        return False
    seen = _STARTS.get(out_path)
    now = time.monotonic()
    if seen is None or seen[0] != size:
        _STARTS[out_path] = (size, now)
        return False
    return now - seen[1] > limit


def _read(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by the crash
                break
    return out


def run_jobs(jobs: Iterable[dict], batch_size: int = 50, n_workers: int = 1,
             timeout_per_job: float = 60.0, progress=None, time_budget: float | None = None
             ) -> list[Result]:
    """Run ``jobs`` in batches of ``batch_size`` on ``n_workers`` children at a time; batches
    not started within ``time_budget`` seconds are skipped (their jobs have no result)."""
    import concurrent.futures as cf  # noqa: PLC0415

    jobs = list(jobs)
    t0 = time.monotonic()

    def run_batch_in_budget(batch, timeout):
        if time_budget is not None and time.monotonic() - t0 > time_budget:
            return []
        return run_batch(batch, timeout)

    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    results: list[list[Result]] = [[] for _ in batches]
    with cf.ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
        futures = {pool.submit(run_batch_in_budget, b, timeout_per_job): i for i, b in enumerate(batches)}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if progress is not None:
                progress(results[i])
    return [r for rs in results for r in rs]
