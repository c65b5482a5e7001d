"""The kernel of the loops' data movement: ``rowcopy`` (see :data:`~.isa.ROWCOPY`).

Inside a compiled loop (:mod:`fungrad.jit.passes.loops`) it copies row ``i`` of a scanned
``xs`` leaf into the body's input, the body's ``y`` into row ``i`` of the stacked ``ys``, the
carry before a step into row ``i`` of the saved carries, and each carry's new value into the
buffer the next step reads — ``i`` being the loop's counter, which the runner keeps in the
runtime scalars ``S``.
"""

from __future__ import annotations

import numpy as np
from numba import carray

from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)

from .isa import ROWCOPY, block_length
from .kernels_block import _buf, _head
from .native import C_S, ptr, register

__all__ = ["ROWCOPY_LEN"]

ROWCOPY_LEN = block_length(ROWCOPY)


@register("rowcopy")
def _rowcopy(dt):
    if dt is np.bool_:  # one byte per element (the buffers' bools)
        dt = np.uint8

    def kernel(code_addr, pc, ctx_addr, n):
        code, ctx = _head(code_addr, pc, ctx_addr, ROWCOPY_LEN)
        sidx = code[pc + ROWCOPY.sidx]
        i = np.int64(carray(ptr(ctx[C_S], 0.0), sidx + 1)[sidx])
        if code[pc + ROWCOPY.rev]:
            i = code[pc + ROWCOPY.n] - 1 - i
        X = _buf(ctx, code[pc + ROWCOPY.src], dt(0))
        Y = _buf(ctx, code[pc + ROWCOPY.dst], dt(0))
        s0 = code[pc + ROWCOPY.src_off] + code[pc + ROWCOPY.src_t] * i
        d0 = code[pc + ROWCOPY.dst_off] + code[pc + ROWCOPY.dst_t] * i
        count = code[pc + ROWCOPY.count]
        # slices, not Y[d0 + j]: an index Numba cannot prove non-negative is wrapped element
        # by element, which keeps the copy scalar, and the next iteration's vector loads of
        # the carry would then wait on four-byte stores (store forwarding fails)
        src = X[s0:s0 + count]
        dst = Y[d0:d0 + count]
        for j in range(count):
            dst[j] = src[j]

    return kernel
