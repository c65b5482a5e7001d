"""The kernel of the loops' data movement: ``rowcopy`` (see :data:`~.isa.ROWCOPY`).

Inside a compiled loop (:mod:`fungrad.jit.passes.loops`) it copies row ``i`` of a scanned
``xs`` leaf into the body's input, the body's ``y`` into row ``i`` of the stacked ``ys``, the
carry before a step into row ``i`` of the saved carries, and each carry's new value into the
buffer the next step reads — ``i`` being the loop's counter, which the runner keeps in the
runtime scalars ``S``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import carray

from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)

from .isa import ROWCOPY, block_length
from .native import C_ADDRS, C_S, CTX_LEN, ptr, register

__all__ = ["ROWCOPY_LEN"]

I0 = np.int64(0)

ROWCOPY_LEN = block_length(ROWCOPY)


@numba.njit(inline="always")
def _addr(ctx, b):
    """The address of buffer ``b`` (its entry of the address table)."""
    return carray(ptr(ctx[C_ADDRS] + b * 8, I0), 1)[0]


@register("rowcopy")
def _rowcopy(dt):
    if dt is np.bool_:  # one byte per element (the buffers' bools)
        dt = np.uint8
    isz = np.dtype(dt).itemsize

    def kernel(code_addr, pc, ctx_addr, n):
        # the instruction seen from its first word: constant field indices, never wrapped
        ins = carray(ptr(code_addr + pc * 8, I0), ROWCOPY_LEN)
        ctx = carray(ptr(ctx_addr, I0), CTX_LEN)
        sidx = ins[ROWCOPY.sidx]
        i = np.int64(carray(ptr(ctx[C_S] + sidx * 8, 0.0), 1)[0])
        if ins[ROWCOPY.rev]:
            i = ins[ROWCOPY.n] - 1 - i
        z = dt(0)
        s0 = ins[ROWCOPY.src_off] + ins[ROWCOPY.src_t] * i
        d0 = ins[ROWCOPY.dst_off] + ins[ROWCOPY.dst_t] * i
        count = ins[ROWCOPY.count]
        # exact-length views, not X[s0 + j]: an index Numba cannot prove non-negative is
        # wrapped element by element, which keeps the copy scalar, and the next iteration's
        # vector loads of the carry would then wait on four-byte stores (store forwarding)
        src = carray(ptr(_addr(ctx, ins[ROWCOPY.src]) + s0 * isz, z), count)
        dst = carray(ptr(_addr(ctx, ins[ROWCOPY.dst]) + d0 * isz, z), count)
        for j in range(count):
            dst[j] = src[j]

    return kernel
