"""Raw memory and function pointers for the compiled runner, and its kernel table.

The runner (:mod:`fungrad.jit.backend.runner`) and its kernels address memory through integer
addresses (``carray(ptr(addr), n)``): a buffer read this way carries no reference count, so
a kernel touching a few 64-element rows costs a few nanoseconds, not the hundreds that typed
lists and array views cost. Kernels are Numba ``cfunc`` s with one C signature,
``void kernel(int64 code, int64 pc, int64 ctx, int64 n)``: the address of the program's
instruction array, the position of the instruction (or op), the address of the *context* (an
int64 array: buffer table, scratch registers, tile position, error slots — the ``C_*``
offsets below) and the number of elements in the current tile. The runner calls them through
a table of function addresses, so it is compiled once and stays small, while each kernel
group is compiled only when a program first uses it (then loaded from Numba's disk cache).

The kernels register their factories here (:func:`register`); the table of compiled
kernels is :mod:`fungrad.jit.backend.table`, which imports the kernel modules: imports run
one way (kernels → native, table → kernels).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.extending import intrinsic

from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)

__all__ = ["ptr", "call", "register", "factory", "SIG", "CTX_LEN"]

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
C_SGEMM = 20    # address of cblas_sgemm (0: none found; matmuls then run as loops)
C_DGEMM = 21
C_CSR_FN = 22   # address of the "csr" kernel (x86-64; 0: none): subnormals flushed in a run
C_CSR = 23      # the caller's MXCSR, restored when the run returns
C_MEM32 = 24    # address of the program's float32 "mem" kernel (-1: none): the runner moves
C_MEM64 = 25    # a contiguous row itself rather than call it (see runner._move)
CTX_LEN = 26

#: MXCSR bits: flush-to-zero (results) and denormals-are-zero (inputs)
FTZ_DAZ = 0x8040


def _mxcsr_fn(builder, name: str):
    i8p = ir.IntType(8).as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i8p])
    fn = builder.module.globals.get(name)
    return fn if fn is not None else ir.Function(builder.module, fnty, name)


@intrinsic
def mxcsr_get(typingctx):
    """The calling thread's SSE control/status register (x86-64 only)."""
    def codegen(context, builder, signature, args):
        slot = builder.alloca(ir.IntType(32))
        builder.call(_mxcsr_fn(builder, "llvm.x86.sse.stmxcsr"),
                     [builder.bitcast(slot, ir.IntType(8).as_pointer())])
        return builder.zext(builder.load(slot), ir.IntType(64))

    return types.int64(), codegen


@intrinsic
def mxcsr_set(typingctx, value):
    """Set the calling thread's SSE control/status register (x86-64 only)."""
    def codegen(context, builder, signature, args):
        slot = builder.alloca(ir.IntType(32))
        builder.store(builder.trunc(args[0], ir.IntType(32)), slot)
        builder.call(_mxcsr_fn(builder, "llvm.x86.sse.ldmxcsr"),
                     [builder.bitcast(slot, ir.IntType(8).as_pointer())])
        return context.get_dummy_value()

    return types.void(types.int64), codegen


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


@intrinsic
def gemm(typingctx, fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """``cblas_?gemm(RowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)``
    through the address ``fn`` (ILP64: 64-bit sizes, as NumPy's bundled OpenBLAS);
    ``sgemm`` or ``dgemm`` as ``alpha`` is float32 or float64. (One module-level intrinsic:
    a kernel that closed over one would pickle differently in every process, and Numba's
    cache would never find it again.)"""
    if alpha not in (types.float32, types.float64):
        return None
    i64 = types.int64
    float_type = alpha
    sig = types.void(i64, i64, i64, i64, i64, i64, float_type, i64, i64, i64, i64,
                     float_type, i64, i64)

    def codegen(context, builder, signature, args):
        i32, l64 = ir.IntType(32), ir.IntType(64)
        ft = ir.FloatType() if float_type == types.float32 else ir.DoubleType()
        ptr_t = ft.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, l64, l64, l64, ft, ptr_t, l64,
                                               ptr_t, l64, ft, ptr_t, l64])
        f = builder.inttoptr(args[0], fnty.as_pointer())
        (_, ta_, tb_, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_) = args
        call_args = [ir.Constant(i32, 101), builder.trunc(ta_, i32), builder.trunc(tb_, i32),
                     m_, n_, k_, alpha_, builder.inttoptr(a_, ptr_t), lda_,
                     builder.inttoptr(b_, ptr_t), ldb_, beta_, builder.inttoptr(c_, ptr_t),
                     ldc_]
        builder.call(f, call_args)
        return context.get_dummy_value()

    return sig, codegen

_GEMM: list = []


def gemm_addresses() -> tuple[int, int]:
    """Addresses of ``cblas_sgemm`` and ``cblas_dgemm`` with 64-bit sizes, from the OpenBLAS
    that NumPy's wheels bundle (``numpy.libs``/``.dylibs``), or ``(0, 0)`` when there is
    none: the runner then multiplies small matrices in loops and hands large ones to NumPy.
    The address is read at run time, never compiled in, so Numba's cache stays valid."""
    if not _GEMM:
        _GEMM.append(_find_gemm())
    return _GEMM[0]


def _find_gemm() -> tuple[int, int]:
    import ctypes  # noqa: PLC0415
    import glob  # noqa: PLC0415
    import os  # noqa: PLC0415

    root = os.path.dirname(os.path.dirname(np.__file__))
    here = os.path.dirname(np.__file__)
    candidates = (glob.glob(os.path.join(root, "numpy.libs", "*openblas*"))
                  + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))
                  + glob.glob(os.path.join(root, "numpy.libs", "*openblas*.dll")))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_cblas_", "64_"), ("cblas_", "64_")):
            try:
                s = getattr(lib, f"{prefix}sgemm{suffix}")
                d = getattr(lib, f"{prefix}dgemm{suffix}")
            except AttributeError:
                continue
            return (ctypes.cast(s, ctypes.c_void_p).value or 0,
                    ctypes.cast(d, ctypes.c_void_p).value or 0)
    return (0, 0)


_FACTORIES: dict[str, Callable] = {}


def register(name: str) -> Callable:
    """Decorator: ``factory(*dtypes) -> python function`` of a kernel group named ``name``
    (compiled on demand by :func:`fungrad.jit.backend.table.kernel_address`)."""
    def deco(factory: Callable) -> Callable:
        _FACTORIES[name] = factory
        return factory
    return deco


def factory(name: str) -> Callable:
    """The registered factory of kernel group ``name``."""
    return _FACTORIES[name]


@register("csr")
def _csr(dt):
    def kernel(code_addr, q, ctx_addr, n):
        ctx = carray(ptr(ctx_addr, np.int64(0)), CTX_LEN)
        if q == 0:
            old = mxcsr_get()
            ctx[C_CSR] = old
            mxcsr_set(old | FTZ_DAZ)
        else:
            mxcsr_set(ctx[C_CSR])

    return kernel
