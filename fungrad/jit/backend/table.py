"""The kernel table: kernel groups compiled on first use, by name and dtypes, as addresses.

The runner calls kernels through a table of function addresses (see
:mod:`fungrad.jit.backend.native`); this module compiles a group's factory into a Numba
``cfunc`` the first time a program needs it (then Numba loads it from its disk cache).

>>> import numpy as np
>>> from fungrad.jit.backend.table import kernel_address
>>> kernel_address("arith", np.float32) > 0
True
"""

from __future__ import annotations

import platform
import threading

import numpy as np
from numba import cfunc

from . import kernels_block, kernels_ew, kernels_loop  # noqa: F401 (they register factories)
from .native import SIG, factory

__all__ = ["kernel_address", "csr_address"]

_COMPILED: dict[tuple, object] = {}
_LOCK = threading.Lock()


def kernel_address(name: str, *dtypes) -> int:
    """The address of kernel group ``name`` specialised to ``dtypes`` (compiled on first use,
    then cached on disk by Numba)."""
    key = (name,) + tuple(np.dtype(d).name for d in dtypes)
    k = _COMPILED.get(key)
    if k is None:
        with _LOCK:
            k = _COMPILED.get(key)
            if k is None:
                pyfunc = factory(name)(*(np.dtype(d).type for d in dtypes))
                k = _COMPILED[key] = cfunc(SIG, cache=True, error_model="numpy")(pyfunc)
    return k.address  # type: ignore[attr-defined]


def csr_address() -> int:
    """The address of the kernel that flushes subnormal floats to zero for a run (``q = 0``:
    save the caller's MXCSR in the context and set FTZ and DAZ; ``q = 1``: restore it), as
    XLA's CPU runtime does; 0 where there is no MXCSR (not x86-64)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return 0
    return kernel_address("csr", np.int64)
