"""The compiled runner: one small fixed Numba loop that executes a program's instructions.

Its compile cost does not depend on the program: a 21,000-op step and a 3-op step run the
same machine code, compiled once and then loaded from Numba's disk cache. Instructions live
in one ``int64`` array (the format: :mod:`fungrad.jit.backend.isa`):

- ``[EW, length, f64, d0, d1, d2, d3, n_ops, T, stride, op records...]`` — a fused
  elementwise group. Its iteration space ``(d0, d1, d2, d3)`` is walked in tiles of up to
  ``T`` elements (whole rows of ``d3`` when rows are short); for each tile the runner calls
  every op's kernel (:mod:`fungrad.jit.backend.kernels_ew`) on registers — rows of scratch memory,
  ``stride`` elements apart. Dispatch costs once per op per tile, not per element; a load or
  store of one contiguous run (a loop body's rows) the runner moves itself (``_move``), as
  the "mem" kernel would, without the call.
- ``[BLOCK, length, slot, ...]`` — a block instruction (matmul, reduction, gather, scatter,
  cross-entropy, LSTM cell...: :mod:`fungrad.jit.backend.kernels_block`).
- ``LOOP`` / ``ENDLOOP`` / ``BREAK`` / ``WINDOW`` — control instructions: a compiled loop
  runs the instructions between its ``LOOP`` and ``ENDLOOP`` once per step, its counter kept
  in the runtime scalars (:data:`fungrad.jit.backend.isa.LOOP_HEAD`), and points its window
  buffers at the step's rows of ``xs`` and ``ys``; so a loop's program is as long as one step
  of it, whatever its trip count.

Kernels are called through ``table`` (kernel addresses, indexed by each record's ``slot``);
``ctx`` is the context array described in :mod:`fungrad.jit.backend.native`. ``run`` returns
``stop``, or the position of an instruction that reported an error in ``ctx``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import carray, types

from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)

from .isa import (
    BLOCK, BLOCK_SLOT, BREAK, EW, EW_HEAD, HEAD, LOOP, LOOP_BREAK, LOOP_END, LOOP_HEAD,
    LOOP_WINDOW, MEM, OP, WINDOW, W,
)
from .kernels_ew import LOAD, STORE
from .native import (
    C_ADDRS, C_C0, C_CSR_FN, C_D1, C_D2, C_ERR, C_MEM32, C_MEM64, C_NC, C_NR, C_R32, C_R64,
    C_ROW0, C_S, C_STRIDE, C_T, call, ptr,
)
from ...kernels._background import on_disk

__all__ = ["run", "compile_runner", "runner_on_disk", "RUNNER_SPEC"]

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
        kind = code[pc + H.kind]
        if kind > BLOCK:  # a loop's control instruction
            pc = _control(code, pc, kind, ctx)
            continue
        if kind == EW:
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
            f64 = code[pc + H.f64] != 0
            mem = ctx[C_MEM64] if f64 else ctx[C_MEM32]
            flat = d1 == 1 and d2 == 1
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
                        fn = table[code[q + OP.slot]]
                        if fn == mem and nr == 1 and flat and _move(code, q, ctx, f64, row0, c0, n):
                            continue
                        call(fn, code_addr, q, ctx_addr, n)
        else:
            call(table[code[pc + BLOCK_SLOT]], code_addr, pc, ctx_addr, 0)
            if ctx[C_ERR] != 0:
                return pc
        pc += code[pc + H.length]
    return pc


@numba.njit(inline="always")
def _move(code, q, ctx, f64, row0, c0, n):
    """Run a "mem" record that loads or stores one contiguous run of ``n`` elements (a loop
    body's rows, a row of a group walked whole) here rather than through a kernel call, as
    its kernel would (:func:`fungrad.jit.backend.kernels_ew._mem`); False for any other
    record (a scalar, an accumulating store, a strided walk), which the kernel then runs."""
    sub = code[q + MEM.sub]
    if (sub != LOAD and sub != STORE) or code[q + MEM.s3] != 1:
        return False
    b = code[q + MEM.buf]
    addr = carray(ptr(ctx[C_ADDRS], np.int64(0)), b + 1)[b]
    start = code[q + MEM.off] + row0 * code[q + MEM.s0] + c0
    reg = code[q + MEM.reg] * ctx[C_STRIDE]
    if f64:
        _copy(carray(ptr(ctx[C_R64] + reg * 8, np.float64(0)), n),
              carray(ptr(addr + start * 8, np.float64(0)), n), n, sub == LOAD)
    else:
        _copy(carray(ptr(ctx[C_R32] + reg * 4, np.float32(0)), n),
              carray(ptr(addr + start * 4, np.float32(0)), n), n, sub == LOAD)
    return True


@numba.njit(inline="always")
def _copy(reg, run, n, load):
    if load:
        for j in range(n):
            reg[j] = run[j]
    else:
        for j in range(n):
            run[j] = reg[j]


@numba.njit(inline="always")
def _control(code, pc, kind, ctx):
    """The position after control instruction ``kind`` at ``pc`` (see :mod:`.isa`)."""
    if kind == WINDOW:
        sidx = code[pc + LOOP_WINDOW.sidx]
        t = np.int64(carray(ptr(ctx[C_S], np.float64(0)), sidx + 1)[sidx])
        if code[pc + LOOP_WINDOW.rev]:
            t = code[pc + LOOP_WINDOW.n] - 1 - t
        win = code[pc + LOOP_WINDOW.win]
        parent = code[pc + LOOP_WINDOW.parent]
        addrs = carray(ptr(ctx[C_ADDRS], np.int64(0)), max(win, parent) + 1)
        row = code[pc + LOOP_WINDOW.off] + code[pc + LOOP_WINDOW.step] * t
        addrs[win] = addrs[parent] + row * code[pc + LOOP_WINDOW.isz]
        return pc + code[pc + LOOP_WINDOW.length]
    if kind == BREAK:
        b = code[pc + LOOP_BREAK.buf]
        addrs = carray(ptr(ctx[C_ADDRS], np.int64(0)), b + 1)
        flag = carray(ptr(addrs[b], np.uint8(0)), code[pc + LOOP_BREAK.off] + 1)
        if flag[code[pc + LOOP_BREAK.off]] == 0:
            return pc + code[pc + LOOP_BREAK.exit]
        return pc + code[pc + LOOP_BREAK.length]
    if kind == LOOP:
        sidx = code[pc + LOOP_HEAD.sidx]
        S = carray(ptr(ctx[C_S], np.float64(0)), sidx + 1)
        S[sidx] = 0.0
        if code[pc + LOOP_HEAD.count] == 0:
            return pc + code[pc + LOOP_HEAD.exit]
        return pc + code[pc + LOOP_HEAD.length]
    # ENDLOOP
    sidx = code[pc + LOOP_END.sidx]
    S = carray(ptr(ctx[C_S], np.float64(0)), sidx + 1)
    t = S[sidx] + 1.0
    S[sidx] = t
    count = code[pc + LOOP_END.count]
    if count < 0 or t < count:
        return pc - code[pc + LOOP_END.back]
    return pc + code[pc + LOOP_END.length]


_WORDS = types.Array(types.int64, 1, "C")
#: the one signature the runner is called with: ``run(code, pc, stop, table, ctx)``
RUNNER_SIG = (_WORDS, types.int64, types.int64, _WORDS, _WORDS)
#: what a background builder calls to compile the runner
RUNNER_SPEC = ("fungrad.jit.backend.runner", "compile_runner", [])


def compile_runner() -> None:
    """Compile the runner for :data:`RUNNER_SIG` (or load it from the disk cache)."""
    run.compile(RUNNER_SIG)


def runner_on_disk() -> bool | None:
    """Whether the runner is compiled in this process or in the disk cache (None: cannot
    tell)."""
    if RUNNER_SIG in run.overloads:
        return True
    return on_disk(run._cache, RUNNER_SIG, run.targetctx.codegen())
