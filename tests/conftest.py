"""The Hypothesis profile for this suite: fungrad.testing's own (``ci`` when CI is set, ``dev``
locally, ``thorough`` with ``HYPOTHESIS_PROFILE=thorough``), defined once in
``fungrad/testing/profiles.py`` and shared with users' projects.

- ``ci``: derandomized, 20 examples per test, no example database: the whole suite stays
  within a few minutes on a 2-core machine and every CI run tests the same examples.
- ``dev`` (default locally): random, 50 examples per test, failures saved and replayed.
- ``thorough``: random, 500 examples per test (tests/test_properties.py alone took about 14
  minutes on the 2-core machine): ``HYPOTHESIS_PROFILE=thorough python -m pytest``.

fg.jit runs in its checked mode here (``FUNGRAD_JIT_CHECKS=1``: every buffer between guard
bytes, checked after each run of instructions), and a ``JitFallbackWarning`` (an op fg.jit
failed to compile and ran in Python) is an error (pyproject.toml's ``filterwarnings``), so no
compiler bug hides behind the fallback.
"""

from __future__ import annotations

import os

os.environ.setdefault("FUNGRAD_JIT_CHECKS", "1")  # before fungrad.jit.compiled is imported
# compile in the test process (and wait): a test of fg.jit or of a kernel tests the compiled
# code, not the NumPy form that runs while a background build is on (test_cold_start.py does)
os.environ.setdefault("FUNGRAD_BACKGROUND_BUILD", "0")

from fungrad.testing.profiles import load_profile  # noqa: E402

load_profile()

# fungrad.scipy's ops join the registry-driven suites when SciPy is installed (it is the
# optional extra fungrad[scipy]); imported here so that every test module sees the same registry
try:
    import scipy  # noqa: F401
except ImportError:  # pragma: no cover - the suites then check fungrad's own ops only
    pass
else:
    import fungrad.scipy  # noqa: F401
# so do the ops of fungrad.misc (fixed_point), whatever test module is collected first
import fungrad.misc.fixed_points  # noqa: E402,F401
