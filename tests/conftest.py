"""Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE`` or else by ``CI``:

- ``ci`` (when CI is set): derandomized, so every run tests the same examples; bounded example
  counts so that the whole suite stays within a few minutes on a 2-core machine; no example
  database.
- ``dev`` (default locally): random, 50 examples per test, failures saved and replayed.
- ``thorough``: random, 500 examples per test (tests/test_properties.py alone took about 14
  minutes on the 2-core machine): ``HYPOTHESIS_PROFILE=thorough python -m pytest``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci", max_examples=20, derandomize=True, deadline=None, print_blob=True, database=None,
    suppress_health_check=_QUIET,
)
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=_QUIET)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=_QUIET,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
