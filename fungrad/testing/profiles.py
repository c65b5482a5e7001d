"""fungrad's Hypothesis settings profiles, for your project as for fungrad's own tests.

``import fungrad.testing`` registers three profiles and, unless you already chose a profile of
your own, loads the one the environment selects: ``HYPOTHESIS_PROFILE`` if it names one of
them, else ``ci`` when the ``CI`` environment variable is set, else ``dev``. It does so as soon
as Hypothesis is imported: at once if it already is, else right after your first
``import hypothesis`` (so that ``check_grads`` alone never pays Hypothesis's import).

- ``ci``: 20 examples per test, derandomized (every run tests the same examples), no example
  database, so a CI run is bounded and repeatable;
- ``dev``: 50 random examples per test; failures are saved and replayed first next time;
- ``thorough``: 500 random examples per test, for a long local run
  (``HYPOTHESIS_PROFILE=thorough python -m pytest``).

None has a deadline: the first call of a new op (or a new shape under ``fg.jit``) compiles
Numba kernels and can take seconds, which Hypothesis's default 200 ms deadline would report
as a flaky ``DeadlineExceeded``. The ``too_slow`` and ``data_too_large`` health checks are
off for the same reason.

>>> from fungrad.testing import profiles
>>> sorted(profiles.PROFILES)
['ci', 'dev', 'thorough']
>>> profiles.selected_profile({"CI": "true"}), profiles.selected_profile({})
('ci', 'dev')
>>> profiles.selected_profile({"HYPOTHESIS_PROFILE": "thorough", "CI": "1"})
'thorough'
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from typing import Any, Mapping, Sequence

__all__ = ["PROFILES", "register_profiles", "selected_profile", "load_profile"]

#: The settings of each profile (``suppress_health_check`` is added when registering).
PROFILES: dict[str, dict[str, Any]] = {
    "ci": dict(max_examples=20, derandomize=True, deadline=None, print_blob=True,
               database=None),
    "dev": dict(max_examples=50, derandomize=False, deadline=None),
    "thorough": dict(max_examples=500, derandomize=False, deadline=None),
}


def register_profiles() -> None:
    """Register ``ci``, ``dev`` and ``thorough`` with Hypothesis (again is harmless).

    >>> from hypothesis import settings
    >>> from fungrad.testing.profiles import register_profiles
    >>> register_profiles(); settings.get_profile("ci").derandomize
    True
    """
    from hypothesis import HealthCheck, settings  # noqa: PLC0415 (a test-time dependency)

    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large]
    for name, values in PROFILES.items():
        settings.register_profile(name, suppress_health_check=quiet, **values)


def selected_profile(environ: Mapping[str, str] | None = None) -> str:
    """The profile the environment selects: ``HYPOTHESIS_PROFILE``, else ``ci`` if ``CI`` is
    set (to anything but an empty string), else ``dev``."""
    env = os.environ if environ is None else environ
    name = env.get("HYPOTHESIS_PROFILE")
    if name:
        return name
    return "ci" if env.get("CI") else "dev"


def load_profile(name: str | None = None) -> str:
    """Register the profiles and load ``name`` (default: :func:`selected_profile`); returns
    the name loaded. An unknown name raises Hypothesis's ``InvalidArgument`` naming it.

    >>> from hypothesis import settings
    >>> from fungrad.testing.profiles import load_profile
    >>> previous = settings.get_current_profile_name()
    >>> load_profile("thorough"), settings.default.max_examples
    ('thorough', 500)
    >>> _ = load_profile(previous)
    """
    from hypothesis import settings  # noqa: PLC0415

    register_profiles()
    name = selected_profile() if name is None else name
    settings.load_profile(name)
    return name


def _load_on_import() -> None:
    """What ``import fungrad.testing`` does: :func:`_register_and_select` now if Hypothesis is
    imported, else right after it is (or never, if it is not installed)."""
    if "hypothesis" in sys.modules:
        _register_and_select()
    elif not any(isinstance(f, _AfterHypothesisImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterHypothesisImport())


def _register_and_select() -> None:
    """Register the profiles, and load the selected one unless the project already loaded a
    profile of its own."""
    from hypothesis import settings  # noqa: PLC0415

    register_profiles()
    chosen = selected_profile()
    current = settings.get_current_profile_name()
    if chosen in PROFILES and (current == "default" or current in PROFILES):
        settings.load_profile(chosen)


class _AfterHypothesisImport(importlib.abc.MetaPathFinder):
    """An import hook, used once: finds ``hypothesis`` with the other finders and gives its
    spec a loader that runs :func:`_register_and_select` once the package has been executed."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: Any = None) -> Any:
        if fullname != "hypothesis":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    """Hypothesis's own loader, then :func:`_register_and_select`; once the package is
    executed, the module and its spec get the loader back."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            module.__loader__ = module.__spec__.loader = self._loader
        _register_and_select()
