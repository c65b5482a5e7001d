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

``<key>`` hashes fungrad's version, the Python, NumPy and Numba versions, this package's path
and the text of every source file Numba compiles from (here and in ``fungrad/jit``), so two
checkouts or versions of fungrad never read each other's entries. When that directory cannot
be created or written, the kernels are compiled into a private temporary directory that is
removed when the process exits: they work, but nothing is kept for the next run. (Setting
``NUMBA_CACHE_LOCATOR_CLASSES`` replaces Numba's whole list, this locator included.)

Numba's cache files are pickles: loading a planted one runs its code. So the directories are
created owner-only (``0o700``), and a cache directory is used only when it, and the fungrad
directory above it, belong to this user and no other user can write them (nor replace them:
a parent writable by others must be sticky, as ``/tmp`` is). Otherwise fungrad warns once
and compiles into a private temporary directory instead.

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
import stat
import sys
import tempfile
import warnings

from numba.core import caching

from ._numba_start import defer_blas_check

defer_blas_check()  # (every Numba-using module of fungrad imports this one first)

__all__ = ["ENV_VAR", "cache_dir", "claim_directory", "user_cache_root", "unsafe_reason",
           "choose_cache_dir", "use_directory"]

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


#: the directories whose modules compile with ``cache=True`` (fg.jit's runner and kernels too)
_SOURCES = (_HERE, os.path.join(os.path.dirname(_HERE), "jit"))


def _source_key() -> str:
    """A hash of what the cached code is built from: fungrad's version, the Python, NumPy and
    Numba versions, this package's path and every source file under :data:`_SOURCES`."""
    import numba  # noqa: PLC0415
    import numpy  # noqa: PLC0415

    version = _fungrad_version()
    digest = hashlib.sha256(_HERE.encode())
    digest.update(f"{version}|{sys.version}|{numpy.__version__}|{numba.__version__}".encode())
    for top in _SOURCES:
        for base, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(base, name)
                    digest.update(os.path.relpath(path, top).encode())
                    with open(path, "rb") as f:
                        digest.update(f.read())
    return "kernels-" + digest.hexdigest()[:16]


def _fungrad_version() -> str:
    """fungrad's version, read from its ``__init__.py`` (this module imports nothing of
    fungrad: the kernels stay usable on their own)."""
    try:
        with open(os.path.join(os.path.dirname(_HERE), "__init__.py"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("__version__"):
                    return line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return "unknown"


def unsafe_reason(path: str) -> str | None:
    """Why ``path`` must not hold cache files that this process will load (None: it may).

    It must be a real directory (not a symlink) that belongs to this user and that no other
    user can write; its parent, if others can write it, must be sticky (``/tmp``) so that
    they cannot replace it.

    >>> import tempfile
    >>> unsafe_reason(tempfile.mkdtemp()) is None
    True
    """
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"{path} cannot be inspected ({e.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: the per-user %LOCALAPPDATA% is private by its ACLs
        return None
    if st.st_uid != getuid():
        return f"{path} belongs to another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    parent = os.path.dirname(os.path.abspath(path))
    try:
        pst = os.stat(parent)
    except OSError:
        return None
    if pst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not pst.st_mode & stat.S_ISVTX \
            and pst.st_uid != getuid():
        return f"its parent {parent} is writable by other users and not sticky"
    return None


def _private_dir(path: str) -> str | None:
    """Create ``path`` (owner-only) and check it; the reason it cannot be used, or None."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as e:
        return f"{path} cannot be created ({e.strerror})"
    getuid = getattr(os, "getuid", None)
    try:  # tighten a directory of ours an older fungrad made with the default umask
        st = os.lstat(path)
        mode = stat.S_IMODE(st.st_mode)
        if getuid is not None and st.st_uid == getuid() and stat.S_ISDIR(st.st_mode) \
                and mode & 0o077 and not mode & 0o022:  # readable by others, never writable:
            os.chmod(path, 0o700)  # nothing can have been planted, so tighten it
    except OSError:
        pass
    return unsafe_reason(path)


def _writable(path: str) -> bool:
    try:
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def choose_cache_dir(root: str | None) -> tuple[str | None, str | None]:
    """``(directory, why not)``: the keyed cache directory under ``root`` if it can be used
    safely, else ``(None, the reason)`` (None, None when there is no root).

    >>> import os, tempfile
    >>> path, why = choose_cache_dir(os.path.join(tempfile.mkdtemp(), "cache"))
    >>> why is None and os.path.basename(path).startswith("kernels-")
    True
    """
    if root is None:
        return None, None
    for path in (root, os.path.join(root, _source_key())):
        reason = _private_dir(path)
        if reason is not None:
            return None, reason
    path = os.path.join(root, _source_key())
    if not _writable(path):
        return None, f"{path} is not writable"
    return path, None


@functools.lru_cache(maxsize=None)
def cache_dir() -> str | None:
    """The directory fungrad's compiled kernels are cached in for this process.

    A temporary directory (removed at exit) when the user's one is not writable; None only
    when no directory at all could be written, and then Numba's own rules apply.

    >>> import os
    >>> cache_dir() is None or os.path.isdir(cache_dir())
    True
    """
    if _EXACT:
        return _EXACT[0]
    path, reason = choose_cache_dir(user_cache_root())
    if path is not None:
        return path
    if reason is not None and "cannot be created" not in reason and "not writable" not in reason:
        warnings.warn(f"fungrad: not using the compiled-code cache: {reason}. Numba's cache "
                      "files are pickles that run code when loaded, so fungrad compiles into a "
                      "private temporary directory instead (nothing is kept for the next run); "
                      f"set {ENV_VAR} to a directory only you can write.", RuntimeWarning,
                      stacklevel=2)
    try:
        path = tempfile.mkdtemp(prefix="fungrad-kernels-")
    except OSError:
        return None
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


_EXACT: list[str] = []  # the directory a background builder was told to use


def use_directory(path: str) -> str | None:
    """Make :func:`cache_dir` return ``path`` in this process — fungrad's background builder
    (:mod:`fungrad.kernels._background`) compiles into its parent's directory — if it passes
    :func:`unsafe_reason` and is writable; else the reason it is refused (nothing changes).
    Call it before any kernel module is imported.

    >>> import tempfile
    >>> use_directory("/nonexistent/fungrad-cache") is not None
    True
    """
    reason = unsafe_reason(path)
    if reason is None and not _writable(path):
        reason = f"{path} is not writable"
    if reason is None:
        _EXACT[:] = [path]
        cache_dir.cache_clear()
    return reason


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
