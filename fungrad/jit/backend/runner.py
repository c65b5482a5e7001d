"""The compiled runner: one small fixed Numba loop that executes a program's instructions.

Its compile cost does not depend on the program: a 21,000-op step and a 3-op step run the
same machine code, compiled once and then loaded from Numba's disk cache. Instructions live
in one ``int64`` array (the format: :mod:`fungrad.jit.backend.isa`):

- ``[EW, length, f64, d0, d1, d2, d3, n_ops, T, stride, op records...]`` — a fused
  elementwise group. Its iteration space ``(d0, d1, d2, d3)`` is walked in tiles of up to
  ``T`` elements (whole rows of ``d3`` when rows are short); for each tile the runner calls
  every op's kernel (:mod:`fungrad.jit.backend.kernels_ew`) on registers — rows of scratch memory,
  ``stride`` elements apart. Dispatch costs once per op per tile, not per element.
- ``[BLOCK, length, slot, ...]`` — a block instruction (matmul, reduction, gather, scatter,
  cross-entropy, LSTM cell...: :mod:`fungrad.jit.backend.kernels_block`).

Kernels are called through ``table`` (kernel addresses, indexed by each record's ``slot``);
``ctx`` is the context array described in :mod:`fungrad.jit.backend.native`. ``run`` returns
``stop``, or the position of an instruction that reported an error in ``ctx``.
"""

from __future__ import annotations

import numba

from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)

from .isa import BLOCK_SLOT, EW, EW_HEAD, HEAD, OP, W
from .native import (
    C_C0, C_CSR_FN, C_D1, C_D2, C_ERR, C_NC, C_NR, C_ROW0, C_STRIDE, C_T, call,
)

__all__ = ["run"]

H = EW_HEAD


@numba.njit(cache=True, nogil=True)
def run(code, pc, stop, table, ctx):
    """Execute ``code[pc:stop]``; return ``stop``, or the position of a failing instruction.
    Subnormal floats are flushed to zero meanwhile where ``ctx`` has a "csr" kernel."""
    code_addr = code.ctypes.data
    ctx_addr = ctx.ctypes.data
    csr = ctx[C_CSR_FN]
    if csr != 0:
        call(csr, code_addr, 0, ctx_addr, 0)
    pc = _run(code, pc, stop, table, ctx, code_addr, ctx_addr)
    if csr != 0:
        call(csr, code_addr, 1, ctx_addr, 0)
    return pc


@numba.njit(inline="always")
def _run(code, pc, stop, table, ctx, code_addr, ctx_addr):
    while pc < stop:
        if code[pc + H.kind] == EW:
            d1 = code[pc + H.d1]
            d2 = code[pc + H.d2]
            d3 = code[pc + H.d3]
            rows = code[pc + H.d0] * d1 * d2
            n_ops = code[pc + H.n_ops]
            T = code[pc + H.T]
            ctx[C_T] = T
            ctx[C_STRIDE] = code[pc + H.stride]
            ops = pc + HEAD
            if d3 >= T:
                cw = T
                rpt = 1
            else:
                cw = d3
                rpt = T // d3
            ctx[C_D1] = d1
            ctx[C_D2] = d2
            for row0 in range(0, rows, rpt):
                nr = min(rpt, rows - row0)
                ctx[C_ROW0] = row0
                ctx[C_NR] = nr
                for c0 in range(0, d3, cw):
                    nc = min(cw, d3 - c0)
                    ctx[C_C0] = c0
                    ctx[C_NC] = nc
                    n = nr * nc
                    for k in range(n_ops):
                        q = ops + k * W
                        call(table[code[q + OP.slot]], code_addr, q, ctx_addr, n)
        else:
            call(table[code[pc + BLOCK_SLOT]], code_addr, pc, ctx_addr, 0)
            if ctx[C_ERR] != 0:
                return pc
        pc += code[pc + H.length]
    return pc
