"""Helpers the pytest files share: run programs in the sandbox, report failures readably."""

from __future__ import annotations

import os

from fungrad.testing.profiles import selected_profile

from .program import Program
from .sandbox import run_jobs

__all__ = ["thorough", "workers", "run_programs", "failure_report"]


def thorough() -> bool:
    """Whether the long profile is selected (``HYPOTHESIS_PROFILE=thorough``)."""
    return selected_profile() == "thorough"


def workers() -> int:
    """Children at a time: ``JIT_FUZZ_JOBS``, else 2 (the CI machine's cores)."""
    return int(os.environ.get("JIT_FUZZ_JOBS", "2"))


def run_programs(programs: list[Program], batch_size: int = 40,
                 timeout_per_job: float = 120.0) -> list[dict]:
    """Each program's result (``status``, ``cls``, ``detail``), in order."""
    jobs = [{"program": p.to_json()} for p in programs]
    return run_jobs(jobs, batch_size=batch_size, n_workers=workers(),
                    timeout_per_job=timeout_per_job)


def failure_report(pairs: list[tuple[Program, dict]], limit: int = 4) -> str:
    """The failures as text: class, detail and the program's source (the first ``limit``)."""
    lines = [f"{len(pairs)} program(s) differ between fg.jit and eager:"]
    for p, r in pairs:
        lines.append(f"  - {p.label}: {r['cls']}: {r['detail'][:300]}")
    for p, r in pairs[:limit]:
        lines += ["", "=" * 90, f"{p.label}: {r['cls']}", r["detail"][:1500], "-" * 90,
                  p.source().split("\n\ndef run(")[0]]
    return "\n".join(lines)
