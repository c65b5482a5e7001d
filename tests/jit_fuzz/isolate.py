"""Run a test's body in a sandbox child, so that a segmentation fault fails that test only.

>>> # in a test module:  def test_x(): isolated(_case_x)   (``_case_x`` a module-level function)
"""

from __future__ import annotations

from typing import Callable

from .sandbox import run_batch

__all__ = ["isolated", "run_isolated"]


def run_isolated(fns: list[Callable], timeout: float = 120.0) -> list[dict]:
    """Run module-level functions ``fns`` in one child (restarted after a crash); one result
    dict per function (``status``, ``cls``, ``detail``)."""
    jobs = [{"call": f"{fn.__module__}:{fn.__qualname__}"} for fn in fns]
    return run_batch(jobs, timeout_per_job=timeout)


def isolated(fn: Callable, timeout: float = 120.0) -> None:
    """Call ``fn`` in a sandbox child; fail (AssertionError) with its class and traceback, or
    the signal that killed the child, if it failed there."""
    r = run_isolated([fn], timeout)[0]
    if r["status"] != "ok":
        raise AssertionError(f"{fn.__qualname__}: {r['cls']}\n{r['detail']}")
