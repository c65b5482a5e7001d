"""Where Numba keeps fg.jit's compiled runner and kernels: the user's cache dir, not the package.

The same rule and the same directory as ``fungrad/kernels/_cache.py`` (read its docstring for
why and where): each module here that compiles with ``cache=True`` imports this one, which
puts a locator for this directory's modules in front of Numba's list, pointing at
``fungrad.kernels._cache.cache_dir()``. Entries are named by module (``runner.run-...``,
``kernels_ew...``: no name is shared with ``fungrad/kernels``), and Numba drops an entry whose
source file changed since it was written.

>>> from fungrad.jit import runner
>>> from fungrad.kernels._cache import cache_dir
>>> runner.run.stats.cache_path == cache_dir()
True
"""

from __future__ import annotations

import os

from numba.core import caching

from ..kernels._cache import cache_dir

__all__ = ["cache_dir"]

_HERE = os.path.dirname(os.path.realpath(__file__))


class _JitCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """Numba cache locator for the functions defined in this directory's modules only."""

    def __init__(self, py_func, py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = cache_dir()

    def get_cache_path(self) -> str:
        return self._cache_path

    @classmethod
    def from_function(cls, py_func, py_file: str):
        if os.path.dirname(os.path.realpath(py_file)) != _HERE or cache_dir() is None:
            return None
        return super().from_function(py_func, py_file)


def _install() -> None:
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # renamed in Numba 0.59
    if _JitCacheLocator not in impl._locator_classes:
        impl._locator_classes.insert(0, _JitCacheLocator)


_install()
