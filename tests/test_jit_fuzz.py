"""The differential fuzzer of fg.jit, bounded for CI (issue 18, item 4).

Random programs of 3-30 registered ops (``jit_fuzz/generator.py``: the registry's ops on
inputs fitted to their domains, slicing with negative steps, ``y * y[0]``, fancy indexing,
reshapes, joins of 0-d values, reductions with axes, matmul/einsum, index_select,
cross_entropy, where/maximum, float32 and float64), each run under one calling convention
(call, value_and_grad, jvp, vjp, hvp, a functional SGD step with ``donate_argnums=(0,)``, an
object-style step with Tensors and an optimizer), three calls, non-contiguous and aliased
inputs, outputs that are inputs: fg.jit against eager for values, gradients, updates and the
arguments left untouched. Each batch runs in a sandbox child, so a segmentation fault fails
its batch's test and names the program.

Profiles (``fungrad/testing/profiles.py``): ``ci``/``dev`` run 300 programs of the fixed seed
(derandomized: every run checks the same programs); ``thorough`` runs 3000 programs of a fresh
seed (printed; ``JIT_FUZZ_SEED`` and ``JIT_FUZZ_PROGRAMS`` override both). A failure prints its
program; ``cd tests && python -m jit_fuzz --seed S --start I --programs 1`` reruns and shrinks it.
"""

from __future__ import annotations

import os
import random

import pytest

from jit_fuzz.program import Program
from jit_fuzz.sandbox import run_jobs
from jit_fuzz.testing import thorough, workers

SEED = int(os.environ.get("JIT_FUZZ_SEED", random.randrange(1, 2**31) if thorough() else 20261))
PROGRAMS = int(os.environ.get("JIT_FUZZ_PROGRAMS", 3000 if thorough() else 300))
BATCH = 30
BATCHES = [(start, min(BATCH, PROGRAMS - start)) for start in range(0, PROGRAMS, BATCH)]


@pytest.fixture(scope="module")
def results(request):
    """The selected batches, run once for the module (two children at a time)."""
    chosen = sorted({item.callspec.params["batch"] for item in request.session.items
                     if item.module is request.module and hasattr(item, "callspec")})
    jobs = [{"seed": SEED, "index": i} for start, n in chosen for i in range(start, start + n)]
    out = run_jobs(jobs, batch_size=BATCH, n_workers=workers(), timeout_per_job=120.0)
    return {r["job"]["index"]: r for r in out}


@pytest.mark.parametrize("batch", BATCHES, ids=[f"programs{s}-{s + n - 1}" for s, n in BATCHES])
def test_fuzz_batch(batch, results):
    start, n = batch
    bad = [results[i] for i in range(start, start + n) if results[i]["status"] == "fail"]
    if not bad:
        return
    lines = [f"seed {SEED}: {len(bad)} of {n} programs differ between fg.jit and eager "
             f"(rerun and shrink: cd tests && python -m jit_fuzz --seed {SEED} --start I "
             f"--programs 1):"]
    lines += [f"  - program {r['job']['index']}: {r['cls']}: {r['detail'][:240]}" for r in bad]
    for r in bad[:2]:
        if r.get("program"):
            src = Program.from_json(r["program"]).source().split("\n\ndef run(")[0]
            lines += ["", "=" * 90, f"program {r['job']['index']}: {r['cls']}", src]
    pytest.fail("\n".join(lines), pytrace=False)


def test_fuzzer_checks_most_programs(results):
    """The generator writes programs eager accepts (a fuzzer that drops most of its programs
    tests little)."""
    invalid = [r for r in results.values() if r["status"] == "invalid"]
    assert len(invalid) <= 0.15 * max(len(results), 1), (
        f"{len(invalid)} of {len(results)} programs dropped: "
        f"{[(r['job']['index'], r['detail'][:80]) for r in invalid[:5]]}")
