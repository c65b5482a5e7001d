"""Numba's start-up without SciPy's linear algebra: the BLAS check deferred to a BLAS call.

The first time Numba compiles or loads any function from its cache, it imports its NumPy
implementations; one of them, ``numba.np.arraymath``, asks at import whether a BLAS is there by
importing ``scipy.linalg.cython_blas`` — all of ``scipy.linalg`` (0.3-0.5 s here, more than
any of fungrad's kernels takes to load). fungrad's kernels call no BLAS, so every process's
first ``fg.jit`` call (and first eager kernel) paid that import for nothing.

:func:`defer_blas_check` imports ``numba.np.arraymath`` with ``scipy.linalg`` refused for that
one import, then sets the module's answer (``_HAVE_BLAS``) to whether ``scipy.linalg`` can be
found: the answer Numba's check gives, without running SciPy's package code. Every Numba BLAS
call still imports SciPy's BLAS when it is typed (Numba's ``ensure_blas``), so a user's own
``@njit`` code that calls ``np.dot`` works as before; it pays the import on first use.

It does nothing when ``scipy.linalg`` or ``numba.np.arraymath`` is already imported (nothing
to save), and it refuses ``scipy.linalg`` to this thread only: another thread importing it at
that moment is let through.

>>> import importlib.util
>>> defer_blas_check()  # (once Numba has started, there is nothing to do)
>>> import numba.np.arraymath as arraymath
>>> arraymath._HAVE_BLAS == (importlib.util.find_spec("scipy.linalg") is not None)
True
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading

__all__ = ["defer_blas_check"]

_REFUSED = "scipy.linalg"


class _RefuseScipyLinalg(importlib.abc.MetaPathFinder):
    """A finder that makes ``import scipy.linalg`` (and so its submodules) fail, in one thread."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, fullname, path=None, target=None):
        if fullname == _REFUSED and threading.get_ident() == self.thread:
            raise ImportError(f"fungrad: {_REFUSED} deferred while Numba starts")
        return None


def defer_blas_check() -> None:
    """Import ``numba.np.arraymath`` without importing ``scipy.linalg`` (see the module doc)."""
    if "numba.np.arraymath" in sys.modules or _REFUSED in sys.modules:
        return
    refuse = _RefuseScipyLinalg()
    sys.meta_path.insert(0, refuse)
    try:
        import numba.np.arraymath as arraymath  # noqa: PLC0415
    finally:
        sys.meta_path.remove(refuse)
    try:
        found = importlib.util.find_spec(_REFUSED) is not None
    except (ImportError, ValueError):  # no scipy at all
        found = False
    if hasattr(arraymath, "_HAVE_BLAS"):  # (Numba's name for the answer, 0.56 to 0.68)
        arraymath._HAVE_BLAS = found
