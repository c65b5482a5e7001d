"""Raw memory and function pointers for the compiled runner, and its kernel table.

The runner (:mod:`fungrad.jit.runner`) and its kernels address memory through integer
addresses (``carray(ptr(addr), n)``): a buffer read this way carries no reference count, so
a kernel touching a few 64-element rows costs a few nanoseconds, not the hundreds that typed
lists and array views cost. Kernels are Numba ``cfunc`` s with one C signature,
``void kernel(int64 code, int64 pc, int64 ctx, int64 n)``: the address of the program's
instruction array, the position of the instruction (or op), the address of the *context* (an
int64 array: buffer table, scratch registers, tile position, error slots — the ``C_*``
offsets below) and the number of elements in the current tile. The runner calls them through
a table of function addresses, so it is compiled once and stays small, while each kernel
group is compiled only when a program first uses it (then loaded from Numba's disk cache).

>>> import numpy as np
>>> from fungrad.jit.native import kernel_address
>>> kernel_address("arith", np.float32) > 0
True
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np
from llvmlite import ir
from numba import cfunc, types
from numba.extending import intrinsic

__all__ = ["ptr", "call", "kernel_address", "register", "SIG", "CTX_LEN"]

SIG = types.void(types.int64, types.int64, types.int64, types.int64)

# -- context layout (int64 words) -------------------------------------------------------------
C_ADDRS = 0     # address of the buffer address table (int64, one entry per buffer)
C_R32 = 1       # float32 registers (n_registers x T), then one tmp row
C_R64 = 2       # float64 registers, then one tmp row
C_T = 3         # tile length (elements per register)
C_S = 4         # runtime scalars (float64)
C_K = 5         # constants (float64)
C_BITS = 6      # T int64 of scratch (int32 view for float32)
C_WORK = 7      # work scratch for row kernels (8-byte aligned, C_WORK_N bytes)
C_WORK_N = 8
C_ERR = 9       # error code (0: none)
C_ERR_VALUE = 10  # the offending value (an index)
C_ROW0, C_NR, C_C0, C_NC, C_D1, C_D2 = 11, 12, 13, 14, 15, 16  # the current tile
C_TMP32 = 17    # address of the float32 tmp row
C_TMP64 = 18
C_STRIDE = 19   # elements from one register to the next: T plus a pad, so that two
#                 registers are never a multiple of 4 KiB apart (the CPU would stall loads
#                 behind stores to the "same" address: 4K aliasing, measured 3x slower)
CTX_LEN = 20


@intrinsic
def ptr(typingctx, addr, like):
    """A typed pointer (``CPointer`` of ``like``'s type) from an int64 address."""
    ty = like.dtype if isinstance(like, types.Array) else like
    sig = types.CPointer(ty)(types.int64, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(ty)))

    return sig, codegen


@intrinsic
def call(typingctx, fn, a, b, c, d):
    """Call the kernel at address ``fn`` with ``(a, b, c, d)`` (all int64)."""
    sig = types.void(types.int64, types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(ir.VoidType(), [i64, i64, i64, i64])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), args[1:])
        return context.get_dummy_value()

    return sig, codegen


_FACTORIES: dict[str, Callable] = {}
_COMPILED: dict[tuple, object] = {}
_LOCK = threading.Lock()


def register(name: str) -> Callable:
    """Decorator: ``factory(*dtypes) -> python function`` of a kernel group named ``name``."""
    def deco(factory: Callable) -> Callable:
        _FACTORIES[name] = factory
        return factory
    return deco


def kernel_address(name: str, *dtypes) -> int:
    """The address of kernel group ``name`` specialised to ``dtypes`` (compiled on first use,
    then cached on disk by Numba)."""
    key = (name,) + tuple(np.dtype(d).name for d in dtypes)
    k = _COMPILED.get(key)
    if k is None:
        _load_kernel_modules()
        with _LOCK:
            k = _COMPILED.get(key)
            if k is None:
                pyfunc = _FACTORIES[name](*(np.dtype(d).type for d in dtypes))
                k = _COMPILED[key] = cfunc(SIG, cache=True, error_model="numpy")(pyfunc)
    return k.address


def _load_kernel_modules() -> None:
    from . import kernels_block, kernels_ew  # noqa: F401, PLC0415 (they register factories)
