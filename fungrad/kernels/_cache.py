"""Where Numba keeps the compiled kernels (``cache=True``): a per-user directory, never the package.

Numba's default puts cache files beside the source, in ``fungrad/kernels/__pycache__/``. In an
installed package those files belong to no installer record: ``pip uninstall`` (or the
uninstall step of ``pip install -e``) leaves them behind, and the leftover ``fungrad/`` folder
then shadows the real package as an empty namespace package. So each kernel module imports
this one, which puts a cache locator in front of Numba's list. The locator claims only the
modules in this directory; any other Numba code keeps Numba's own choice (no process-wide
``NUMBA_CACHE_DIR`` is set). fungrad's kernels are cached in::

    $FUNGRAD_CACHE_DIR/<key>/            when that variable is set, else
    <user cache dir>/fungrad/<key>/      $XDG_CACHE_HOME or ~/.cache (Linux and other Unix),
                                         ~/Library/Caches (macOS), %LOCALAPPDATA% (Windows)

``<key>`` hashes this directory's path and the text of every kernel source file, so two
checkouts or versions of fungrad never read each other's entries. When that directory cannot
be created or written, the kernels are compiled into a private temporary directory that is
removed when the process exits: they work, but nothing is kept for the next run. (Setting
``NUMBA_CACHE_LOCATOR_CLASSES`` replaces Numba's whole list, this locator included.)

>>> from fungrad.kernels import scatter
>>> from fungrad.kernels._cache import cache_dir
>>> scatter._scatter_add_kernel.stats.cache_path == cache_dir()
True
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import shutil
import sys
import tempfile

from numba.core import caching

__all__ = ["ENV_VAR", "cache_dir", "claim_directory", "user_cache_root"]

#: The environment variable that moves the cache (read once, when the first kernel loads).
ENV_VAR = "FUNGRAD_CACHE_DIR"

_HERE = os.path.dirname(os.path.realpath(__file__))


def user_cache_root() -> str | None:
    """The directory fungrad's caches go under: ``$FUNGRAD_CACHE_DIR`` or the user's cache dir.

    None when neither can be found (no home directory).

    >>> import os
    >>> os.path.basename(user_cache_root() or "fungrad") != ""
    True
    """
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return _absolute(os.path.join(base, "fungrad", "Cache"))
    if sys.platform == "darwin":
        return _absolute(os.path.expanduser("~/Library/Caches/fungrad"))
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.expanduser("~/.cache")  # XDG: absolute only
    return _absolute(os.path.join(base, "fungrad"))


def _absolute(path: str) -> str | None:
    # expanduser leaves "~" in place when there is no home directory
    return path if os.path.isabs(path) else None


def _source_key() -> str:
    """A hash of this directory's path and of every kernel source file in it."""
    digest = hashlib.sha256(_HERE.encode())
    for name in sorted(os.listdir(_HERE)):
        if name.endswith(".py"):
            digest.update(name.encode())
            with open(os.path.join(_HERE, name), "rb") as f:
                digest.update(f.read())
    return "kernels-" + digest.hexdigest()[:16]


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def cache_dir() -> str | None:
    """The directory fungrad's compiled kernels are cached in for this process.

    A temporary directory (removed at exit) when the user's one is not writable; None only
    when no directory at all could be written, and then Numba's own rules apply.

    >>> import os
    >>> cache_dir() is None or os.path.isdir(cache_dir())
    True
    """
    root = user_cache_root()
    if root is not None:
        path = os.path.join(root, _source_key())
        if _writable(path):
            return path
    try:
        path = tempfile.mkdtemp(prefix="fungrad-kernels-")
    except OSError:
        return None
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def claim_directory(directory: str) -> None:
    """Send the ``cache=True`` files of Numba functions defined in ``directory``'s modules to
    :func:`cache_dir` (fungrad's kernels, and fg.jit's runner and kernels, call this for their
    own directory); every other function keeps Numba's own choice.

    >>> import os, fungrad.kernels
    >>> claim_directory(os.path.dirname(fungrad.kernels.__file__))  # already claimed: no-op
    """
    here = os.path.realpath(directory)
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # type: ignore[attr-defined]
    if any(getattr(c, "_claimed_dir", None) == here for c in impl._locator_classes):
        return

    class _Locator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """Numba cache locator for the functions defined in one directory's modules."""

        _claimed_dir = here

        def __init__(self, py_func, py_file: str) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = cache_dir()

        def get_cache_path(self) -> str | None:
            return self._cache_path

        @classmethod
        def from_function(cls, py_func, py_file: str):
            if os.path.dirname(os.path.realpath(py_file)) != here or cache_dir() is None:
                return None
            return super().from_function(py_func, py_file)

    impl._locator_classes.insert(0, _Locator)


claim_directory(_HERE)
