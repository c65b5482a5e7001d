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
from numba.core import sigutils
from numba.core.ccallback import CFunc

from . import kernels_block, kernels_ew, kernels_loop  # noqa: F401 (they register factories)
from .native import SIG, factory
from ...kernels._background import on_disk

__all__ = ["kernel_address", "csr_address", "kernel_spec", "kernel_on_disk", "mem_addresses"]

_COMPILED: dict[tuple, CFunc] = {}   # compiled (or loaded): their addresses are valid
_MADE: dict[tuple, CFunc] = {}       # made, not compiled yet
_LOCK = threading.Lock()


def _key(name: str, dtypes) -> tuple:
    return (name,) + tuple(np.dtype(d).name for d in dtypes)


def _cfunc(key: tuple) -> CFunc:
    """Kernel group ``key[0]`` specialised to ``key[1:]``, as a ``cfunc`` not compiled yet
    (what ``numba.cfunc(SIG, cache=True)`` makes before it compiles)."""
    k = _MADE.get(key)
    if k is None:
        pyfunc = factory(key[0])(*(np.dtype(d).type for d in key[1:]))
        args, ret = sigutils.normalize_signature(SIG)
        k = _MADE[key] = CFunc(pyfunc, (args, ret), {}, {"error_model": "numpy"})
        k.enable_caching()
    return k


def kernel_address(name: str, *dtypes) -> int:
    """The address of kernel group ``name`` specialised to ``dtypes`` (compiled on first use,
    then cached on disk by Numba)."""
    key = _key(name, dtypes)
    k = _COMPILED.get(key)
    if k is None:
        with _LOCK:
            k = _COMPILED.get(key)
            if k is None:
                k = _cfunc(key)
                k.compile()
                _COMPILED[key] = k
    return k.address


def kernel_on_disk(name: str, *dtypes) -> bool | None:
    """Whether kernel ``name`` for ``dtypes`` is compiled in this process or in the disk cache
    (so :func:`kernel_address` loads it rather than compiles it; None: cannot tell)."""
    key = _key(name, dtypes)
    if key in _COMPILED:
        return True
    with _LOCK:
        k = _cfunc(key)
        return on_disk(k._cache, k._sig, k._targetdescr.target_context.codegen())


def kernel_spec(name: str, *dtypes) -> tuple:
    """What a background builder calls to compile kernel ``name`` for ``dtypes``."""
    return ("fungrad.jit.backend.table", "kernel_address", list(_key(name, dtypes)))


def csr_address() -> int:
    """The address of the kernel that flushes subnormal floats to zero for a run (``q = 0``:
    save the caller's MXCSR in the context and set FTZ and DAZ; ``q = 1``: restore it), as
    XLA's CPU runtime does; 0 where there is no MXCSR (not x86-64)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return 0
    return kernel_address("csr", np.int64)


def csr_key() -> tuple | None:
    """The kernel key of :func:`csr_address` (None where there is none)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    return ("csr", "int64")


def mem_addresses(kernels: dict, table) -> tuple[int, int]:
    """The addresses of a program's float32 and float64 "mem" kernels in its ``table``
    (``kernels``: the plan's key -> slot), -1 for one it does not use: the runner moves
    contiguous rows itself where a record names one (``runner._move``)."""
    def address(dtype: str) -> int:
        slot = kernels.get(("mem", dtype))
        return -1 if slot is None else int(table[slot])
    return address("float32"), address("float64")
