"""A tiny harness for checks run inside ``mpiexec``: every rank runs every check, rank 0 prints
one line per check, ``PASS name`` when every rank passed, else ``FAIL name: rank r: error``.

``tests/test_distributed.py`` launches the scripts and turns each line into a test result.
"""

from __future__ import annotations

import os
import sys
import traceback

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # two ranks on two cores: one BLAS thread each
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import fungrad as fg  # noqa: E402,F401
import fungrad.distributed as dist  # noqa: E402

CHECKS: list = []


def check(fn):
    """Register a check: a function that raises (AssertionError or any error) on failure and
    may return a short note for the log."""
    CHECKS.append(fn)
    return fn


def main() -> None:
    dist.init()
    comm = _comm()
    failures = 0
    for fn in CHECKS:
        note = None
        try:
            note = fn()
            error = None
        except Exception as e:  # noqa: BLE001 - reported, never hidden
            error = f"{type(e).__name__}: {e} | " + traceback.format_exc(limit=3).replace(
                "\n", " / ")
        errors = comm.allgather(error) if comm is not None else [error]
        bad = [(r, e) for r, e in enumerate(errors) if e]
        if dist.rank() == 0:
            if bad:
                r, e = bad[0]
                print(f"FAIL {fn.__name__}: rank {r}: {e}", flush=True)
            else:
                print(f"PASS {fn.__name__}" + (f" ({note})" if note else ""), flush=True)
        failures += bool(bad)
    dist.barrier()
    sys.exit(1 if failures else 0)


def _comm():
    from fungrad.distributed._comm import world

    return world().comm


def allgather(obj):
    """Every rank's ``obj`` (test-side only; fungrad itself never pickles per step)."""
    comm = _comm()
    return [obj] if comm is None else comm.allgather(obj)


def assert_same_on_all_ranks(arrays: dict, what: str) -> None:
    """The arrays are bitwise equal on every rank."""
    gathered = allgather({k: np.asarray(v) for k, v in arrays.items()})
    for r, other in enumerate(gathered):
        for k, v in other.items():
            if not np.array_equal(v, gathered[0][k]):
                raise AssertionError(f"{what}: '{k}' differs between rank 0 and rank {r}")


def assert_close(got: dict, want: dict, rtol: float, what: str) -> float:
    """Per array, max |got - want| <= rtol * max |want|; returns the worst relative error."""
    worst = 0.0
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for k in want:
        a, b = np.asarray(got[k]), np.asarray(want[k])
        assert a.dtype == b.dtype, f"{what}: '{k}' has dtype {a.dtype}, expected {b.dtype}"
        scale = float(np.max(np.abs(b))) or 1.0
        rel = float(np.max(np.abs(a - b))) / scale
        worst = max(worst, rel)
        if not rel <= rtol:
            raise AssertionError(f"{what}: '{k}' differs by {rel:.3g} relative (> {rtol})")
    return worst
