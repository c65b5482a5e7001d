"""Where Numba keeps fg.jit's compiled runner and kernels: the user's cache dir, not the package.

The same rule and the same directory as ``fungrad/kernels/_cache.py`` (read its docstring for
why and where): each module here that compiles with ``cache=True`` imports this one, which
puts a locator for this directory's modules in front of Numba's list, pointing at
``fungrad.kernels._cache.cache_dir()``. Entries are named by module (``runner.run-...``,
``kernels_ew...``: no name is shared with ``fungrad/kernels``), and Numba drops an entry whose
source file changed since it was written. The directory's key covers this package's sources
too, and it is used only when it is private to the user (owner-only, created ``0o700``;
never one another user can write: ``fungrad.kernels._cache.unsafe_reason``).

>>> from fungrad.jit.backend import runner
>>> from fungrad.kernels._cache import cache_dir
>>> runner.run.stats.cache_path == cache_dir()
True
"""

from __future__ import annotations

import os

from ...kernels._cache import cache_dir, claim_directory

__all__ = ["cache_dir"]

claim_directory(os.path.dirname(os.path.realpath(__file__)))
