"""fg.jit ≡ eager for every registered op, generated from the registry (issue 18, item 3).

For every op of ``fg.ops()`` (but scan/while_loop, whose parameters are Python bodies) and its
domain, small programs (see ``jit_fuzz/registry_programs.py``) compare ``fg.jit`` with eager:
the op's values with non-contiguous inputs, Python and NumPy scalars, outputs that are inputs
and views of them; ``y * y[0]``; ``value_and_grad`` with ``donate_argnums=(0,)``; ``jvp``,
``vjp`` and a Hessian-vector product; float32; 0-d and size-1 shapes and the same array passed
twice; three calls each. Tolerance: 1e-11 of the output's scale in float64 (widened only by the
program's measured sensitivity), 1e-5 in float32 (see ``jit_fuzz/check.py``).

Every program runs in a sandbox child (two at a time), so a segmentation fault fails the op's
test and names the program. ``HYPOTHESIS_PROFILE=thorough`` checks every declared case under
every variant.
"""

from __future__ import annotations

import pytest

from jit_fuzz.registry_programs import all_programs
from jit_fuzz.testing import failure_report, run_programs, thorough

PROGRAMS = all_programs(thorough())


@pytest.fixture(scope="module")
def results(request):
    """The selected ops' programs, run once for the module (two children at a time)."""
    chosen = {item.callspec.params["name"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")}
    flat = [p for name in sorted(chosen) for p in PROGRAMS[name]]
    return dict(zip([p.label for p in flat], run_programs(flat)))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_jit_equals_eager(name, results):
    programs = PROGRAMS[name]
    assert programs, f"no program could be built for op '{name}' from its domain"
    bad = [(p, results[p.label]) for p in programs if results[p.label]["status"] == "fail"]
    if bad:
        pytest.fail(failure_report(bad), pytrace=False)
