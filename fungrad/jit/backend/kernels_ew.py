"""Kernels of fused elementwise groups: each runs one op over one tile of registers.

A group's ops live in the instruction array as ``W``-word records, their fields named in
:mod:`fungrad.jit.backend.isa` (``OP``: ``slot, sub, dst, a, b, c``; ``MEM``: ``slot, sub,
reg, buf, off, s0..s3``; ``SCALAR``: ``slot, sub, reg, index``): ``slot`` picks the kernel in
the runner's table, ``sub`` the op inside that kernel, and the rest are register numbers or,
for loads and stores, a buffer, an offset and four strides (one per iteration dimension, in
elements). Registers are rows of ``T``
elements of the group's dtype. Ops are grouped into a few kernels per dtype (memory,
arithmetic, selection, activations, other math, casts) because a Numba compilation has a
fixed cost of about half a second: grouping keeps a program's first compile to the kernels
it uses, a handful. Every loop is a plain ``for j in range(n)`` over distinct rows, so LLVM
vectorises it.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import carray

from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)

from .isa import MEM, OP, SCALAR, W
from .native import (
    C_ADDRS, C_BITS, C_C0, C_D1, C_D2, C_K, C_NC, C_NR, C_R32, C_R64, C_ROW0, C_S, C_STRIDE,
    C_TMP32, C_TMP64, CTX_LEN, ptr, register,
)
from .vmath import vexp, vlog, vsigmoid, vsoftplus, vtanh

__all__ = ["SUB"]

I0 = np.int64(0)
BIG = 1 << 40  # the length given to a buffer seen through a pointer (no bounds checks)
_NJIT = dict(cache=True, nogil=True, error_model="numpy")

# sub-op codes, per kernel group
LOAD, STORE, SCALAR_S, SCALAR_K, STORE_ADD = 0, 1, 2, 3, 4
ADD, SUB_, MUL, DIV, NEG, COPY, SQUARE, RECIP, ABS, MULADD, MULSUB, RMULSUB = range(12)
MAX, MIN, LT, LE, GT, GE, EQ, NE, WHERE, AND, OR, XOR, NOT, SIGN, ISFINITE, RELU, \
    FLOOR = range(17)
EXP, TANH, SIGMOID, SOFTPLUS, LOG = range(5)
SQRT, SIN, COS, POW = range(4)
TAN, SINH, COSH, ARCTAN, ARCSIN, ARCCOS, ARCSINH, ARCCOSH, ARCTANH, LOG1P, EXPM1, LOG2, \
    LOG10, EXP2, CBRT, CEIL, TRUNC, RINT = range(18)
ARCTAN2, HYPOT, FMOD, MOD, FLOOR_DIVIDE = range(5)

#: op name -> (kernel group, sub-op, number of register inputs)
SUB = {
    "add": ("arith", ADD, 2), "subtract": ("arith", SUB_, 2), "multiply": ("arith", MUL, 2),
    "divide": ("arith", DIV, 2), "negative": ("arith", NEG, 1), "copy": ("arith", COPY, 1),
    "square": ("arith", SQUARE, 1), "reciprocal": ("arith", RECIP, 1),
    "abs": ("arith", ABS, 1), "muladd": ("arith", MULADD, 3), "mulsub": ("arith", MULSUB, 3),
    "rmulsub": ("arith", RMULSUB, 3),
    "maximum": ("select", MAX, 2), "minimum": ("select", MIN, 2), "less": ("select", LT, 2),
    "less_equal": ("select", LE, 2), "greater": ("select", GT, 2),
    "greater_equal": ("select", GE, 2), "equal": ("select", EQ, 2),
    "not_equal": ("select", NE, 2), "where": ("select", WHERE, 3),
    "logical_and": ("select", AND, 2), "logical_or": ("select", OR, 2),
    "logical_xor": ("select", XOR, 2), "logical_not": ("select", NOT, 1),
    "sign": ("select", SIGN, 1), "isfinite": ("select", ISFINITE, 1),
    "relu": ("select", RELU, 1), "floor": ("select", FLOOR, 1),
    "exp": ("exp", EXP, 1), "tanh": ("tanh", TANH, 1), "sigmoid": ("sigmoid", SIGMOID, 1),
    "softplus": ("softplus", SOFTPLUS, 1), "log": ("log", LOG, 1),
    "sqrt": ("math", SQRT, 1), "sin": ("math", SIN, 1), "cos": ("math", COS, 1),
    "power": ("math", POW, 2),
    "tan": ("special", TAN, 1), "sinh": ("special", SINH, 1), "cosh": ("special", COSH, 1),
    "arctan": ("special", ARCTAN, 1), "arcsin": ("special", ARCSIN, 1),
    "arccos": ("special", ARCCOS, 1), "arcsinh": ("special", ARCSINH, 1),
    "arccosh": ("special", ARCCOSH, 1), "arctanh": ("special", ARCTANH, 1),
    "log1p": ("special", LOG1P, 1), "expm1": ("special", EXPM1, 1),
    "log2": ("special", LOG2, 1), "log10": ("special", LOG10, 1), "exp2": ("special", EXP2, 1),
    "cbrt": ("special", CBRT, 1), "ceil": ("special", CEIL, 1), "trunc": ("special", TRUNC, 1),
    "rint": ("special", RINT, 1),
    "arctan2": ("binary", ARCTAN2, 2), "hypot": ("binary", HYPOT, 2), "fmod": ("binary", FMOD, 2),
    "mod": ("binary", MOD, 2), "floor_divide": ("binary", FLOOR_DIVIDE, 2),
}
#: ops whose output register must differ from their inputs' (vmath's contract)
FRESH = {"exp", "tanh", "sigmoid", "softplus", "log"}


# -- strided rows between a buffer and a register ------------------------------------------


@numba.njit(inline="always")
def _row_at(off0, s0, s1, s2, s3, d1, d2, row, c0):
    """Element offset of the start of ``row`` (tile column ``c0``) of a strided operand."""
    if d1 == 1 and d2 == 1:  # the usual case: no divisions to find a row
        return off0 + row * s0 + c0 * s3
    i2 = row % d2
    t = row // d2
    return off0 + (t // d1) * s0 + (t % d1) * s1 + i2 * s2 + c0 * s3


# Loops index slices, never ``a[off + j]``: Numba cannot prove ``off + j >= 0`` and then wraps
# negative indices element by element, which stops LLVM vectorising (measured 9x slower).


@numba.njit(**_NJIT)
def _rows_in(out, src, off0, s0, s1, s2, s3, d1, d2, row0, nr, c0, nc):
    for r in range(nr):
        off = _row_at(off0, s0, s1, s2, s3, d1, d2, row0 + r, c0)
        o = out[r * nc:(r + 1) * nc]
        if s3 == 1 or nc == 1:
            x = src[off:off + nc]
            for j in range(nc):
                o[j] = x[j]
        elif s3 == 0:
            v = src[off]
            for j in range(nc):
                o[j] = v
        else:
            x = src[off:off + (nc - 1) * s3 + 1:s3]
            for j in range(nc):
                o[j] = x[j]


@numba.njit(inline="always")
def _store_row(o, v, nc, add):
    """o[:nc] = v[:nc], or with ``add`` o[:nc] += v[:nc] element by element as a load, add
    and store; ``o`` contiguous or strided (each its own specialisation: each loop
    vectorises)."""
    if add:
        for j in range(nc):
            o[j] = o[j] + v[j]
    else:
        for j in range(nc):
            o[j] = v[j]


@numba.njit(**_NJIT)
def _rows_store(vals, dst, walk, add):
    """dst = vals, or with ``add`` dst += vals (a running sum's slice), over the tile ``walk``
    (``off0, s0, s1, s2, s3, d1, d2, row0, nr, c0, nc``: a tuple, which ``numba.literally``
    binds where star-arguments fail). One walk for both, specialised on ``add`` (each call
    passes the literal True or False): as fast as the two copies of the walk it replaced,
    with the same vector loops, where deciding ``add`` at run time cost 1-5 ns per 64-element
    row and a combine function passed as an argument 8 ns (benchmarks/rows_store.py)."""
    numba.literally(add)
    off0, s0, s1, s2, s3, d1, d2, row0, nr, c0, nc = walk
    for r in range(nr):
        off = _row_at(off0, s0, s1, s2, s3, d1, d2, row0 + r, c0)
        v = vals[r * nc:(r + 1) * nc]
        if s3 == 1 or nc == 1:  # two calls, not one conditional slice: both would type as
            _store_row(dst[off:off + nc], v, nc, add)  # non-contiguous, and the contiguous
        else:                                          # loop would not vectorise
            _store_row(dst[off:off + (nc - 1) * s3 + 1:s3], v, nc, add)


@numba.njit(**_NJIT)
def _rows_out_bool(vals, dst, off0, s0, s1, s2, s3, d1, d2, row0, nr, c0, nc):
    for r in range(nr):
        off = _row_at(off0, s0, s1, s2, s3, d1, d2, row0 + r, c0)
        v = vals[r * nc:(r + 1) * nc]
        for j in range(nc):
            dst[off + j * s3] = 1 if v[j] != 0 else 0


def _reg_slot(dt) -> tuple[int, int, int]:
    isz = np.dtype(dt).itemsize
    return isz, (C_R32 if isz == 4 else C_R64), (C_TMP32 if isz == 4 else C_TMP64)


# -- memory: loads and stores in the group's own dtype, scalars ----------------------------


@register("mem")
def _mem(dt):
    isz, rslot, _ = _reg_slot(dt)

    def kernel(code_addr, q, ctx_addr, n):
        # the record seen from its own first word: its fields are constant, non-negative
        # indices, which Numba reads without wrapping (a record-relative view, as _regs)
        rec = carray(ptr(code_addr + q * 8, I0), W)
        ctx = carray(ptr(ctx_addr, I0), CTX_LEN)
        z = dt(0)
        reg = carray(ptr(ctx[rslot] + rec[MEM.reg] * ctx[C_STRIDE] * isz, z), n)
        sub = rec[MEM.sub]
        if sub == SCALAR_S or sub == SCALAR_K:
            at = rec[SCALAR.index]
            v = dt(carray(ptr((ctx[C_S] if sub == SCALAR_S else ctx[C_K]) + at * 8, 0.0), 1)[0])
            for j in range(n):
                reg[j] = v
            return
        addr = carray(ptr(ctx[C_ADDRS] + rec[MEM.buf] * 8, I0), 1)[0]
        s3 = rec[MEM.s3]
        if s3 == 1 and ctx[C_NR] == 1 and ctx[C_D1] == 1 and ctx[C_D2] == 1:
            # one contiguous run (a loop body's vectors, a long row): a straight copy
            start = rec[MEM.off] + ctx[C_ROW0] * rec[MEM.s0] + ctx[C_C0]
            run = carray(ptr(addr + start * isz, z), n)
            if sub == LOAD:
                for j in range(n):
                    reg[j] = run[j]
            elif sub == STORE:
                for j in range(n):
                    run[j] = reg[j]
            else:
                for j in range(n):
                    run[j] = run[j] + reg[j]
            return
        buf = carray(ptr(addr, z), BIG)
        args = (rec[MEM.off], rec[MEM.s0], rec[MEM.s1], rec[MEM.s2], s3, ctx[C_D1],
                ctx[C_D2], ctx[C_ROW0], ctx[C_NR], ctx[C_C0], ctx[C_NC])
        if sub == LOAD:
            _rows_in(reg, buf, *args)
        elif sub == STORE:
            _rows_store(reg, buf, args, False)
        else:
            _rows_store(reg, buf, args, True)

    return kernel


@register("cast")
def _cast(buf_dt, dt):
    """Loads from (and stores into) buffers of another dtype than the group's."""
    isz, rslot, _ = _reg_slot(dt)
    is_bool = np.dtype(buf_dt) == np.dtype(np.uint8)

    def kernel(code_addr, q, ctx_addr, n):
        code = carray(ptr(code_addr, I0), q + W)
        ctx = carray(ptr(ctx_addr, I0), CTX_LEN)
        reg = carray(ptr(ctx[rslot] + code[q + MEM.reg] * ctx[C_STRIDE] * isz, dt(0)), n)
        addrs = carray(ptr(ctx[C_ADDRS], I0), code[q + MEM.buf] + 1)
        buf = carray(ptr(addrs[code[q + MEM.buf]], buf_dt(0)), BIG)
        args = (code[q + MEM.off], code[q + MEM.s0], code[q + MEM.s1], code[q + MEM.s2],
                code[q + MEM.s3], ctx[C_D1], ctx[C_D2], ctx[C_ROW0], ctx[C_NR], ctx[C_C0], ctx[C_NC])
        if code[q + MEM.sub] == LOAD:
            _rows_in(reg, buf, *args)
        elif is_bool:
            _rows_out_bool(reg, buf, *args)
        else:
            _rows_store(reg, buf, args, False)

    return kernel


# -- register arithmetic ---------------------------------------------------------------------


@numba.njit(inline="always")
def _regs(code_addr, q, ctx_addr, n, z, isz, rslot):
    """(sub-op, out, x, y, c, ctx): the register rows of a group op, of ``z``'s dtype."""
    rec = carray(ptr(code_addr + q * 8, I0), W)  # constant field indices: no wrapping
    ctx = carray(ptr(ctx_addr, I0), CTX_LEN)
    base = ctx[rslot]
    step = ctx[C_STRIDE] * isz
    o = carray(ptr(base + rec[OP.dst] * step, z), n)
    x = carray(ptr(base + rec[OP.a] * step, z), n)
    y = carray(ptr(base + rec[OP.b] * step, z), n)
    c = carray(ptr(base + rec[OP.c] * step, z), n)
    return rec[OP.sub], o, x, y, c, ctx


@register("arith")
def _arith(dt):
    isz, rslot, _ = _reg_slot(dt)

    def kernel(code_addr, q, ctx_addr, n):
        sub, o, x, y, c, _ = _regs(code_addr, q, ctx_addr, n, dt(0), isz, rslot)
        if sub == ADD:
            for j in range(n):
                o[j] = x[j] + y[j]
        elif sub == SUB_:
            for j in range(n):
                o[j] = x[j] - y[j]
        elif sub == MUL:
            for j in range(n):
                o[j] = x[j] * y[j]
        elif sub == DIV:
            for j in range(n):
                o[j] = x[j] / y[j]
        elif sub == NEG:
            for j in range(n):
                o[j] = -x[j]
        elif sub == COPY:
            for j in range(n):
                o[j] = x[j]
        elif sub == SQUARE:
            for j in range(n):
                o[j] = x[j] * x[j]
        elif sub == RECIP:
            for j in range(n):
                o[j] = 1 / x[j]
        elif sub == ABS:
            for j in range(n):
                o[j] = abs(x[j])
        elif sub == MULADD:  # x * y + c, rounded twice as NumPy's two ops (no FMA)
            for j in range(n):
                o[j] = x[j] * y[j] + c[j]
        elif sub == MULSUB:  # x * y - c
            for j in range(n):
                o[j] = x[j] * y[j] - c[j]
        elif sub == RMULSUB:  # c - x * y
            for j in range(n):
                o[j] = c[j] - x[j] * y[j]

    return kernel


@register("select")
def _select(dt):
    isz, rslot, _ = _reg_slot(dt)

    def kernel(code_addr, q, ctx_addr, n):
        sub, o, x, y, c, _ = _regs(code_addr, q, ctx_addr, n, dt(0), isz, rslot)
        if sub == MAX:
            for j in range(n):
                u, v = x[j], y[j]
                o[j] = u if (u >= v or u != u) else v
        elif sub == MIN:
            for j in range(n):
                u, v = x[j], y[j]
                o[j] = u if (u <= v or u != u) else v
        elif sub == LT:
            for j in range(n):
                o[j] = 1 if x[j] < y[j] else 0
        elif sub == LE:
            for j in range(n):
                o[j] = 1 if x[j] <= y[j] else 0
        elif sub == GT:
            for j in range(n):
                o[j] = 1 if x[j] > y[j] else 0
        elif sub == GE:
            for j in range(n):
                o[j] = 1 if x[j] >= y[j] else 0
        elif sub == EQ:
            for j in range(n):
                o[j] = 1 if x[j] == y[j] else 0
        elif sub == NE:
            for j in range(n):
                o[j] = 1 if x[j] != y[j] else 0
        elif sub == WHERE:  # where(x, y, c): x is the condition
            for j in range(n):
                o[j] = y[j] if x[j] != 0 else c[j]
        elif sub == AND:
            for j in range(n):
                o[j] = 1 if (x[j] != 0 and y[j] != 0) else 0
        elif sub == OR:
            for j in range(n):
                o[j] = 1 if (x[j] != 0 or y[j] != 0) else 0
        elif sub == XOR:
            for j in range(n):
                o[j] = 1 if ((x[j] != 0) != (y[j] != 0)) else 0
        elif sub == NOT:
            for j in range(n):
                o[j] = 1 if x[j] == 0 else 0
        elif sub == SIGN:
            for j in range(n):
                v = x[j]
                o[j] = 1 if v > 0 else (-1 if v < 0 else (0 if v == 0 else v))
        elif sub == ISFINITE:
            for j in range(n):
                o[j] = 1 if np.isfinite(x[j]) else 0
        elif sub == RELU:  # np.maximum(x, 0): NaN stays NaN
            for j in range(n):
                v = x[j]
                o[j] = v if (v > 0 or v != v) else 0
        elif sub == FLOOR:
            for j in range(n):
                o[j] = np.floor(x[j])

    return kernel


def _activation(sub: int):
    """A kernel group of one vmath function: each is its own (their vectorised bodies are the
    costliest to compile, and a program compiles only the ones it uses). ``sub`` is a
    constant Numba prunes the other branches by; the kernel must not close over the vmath
    functions themselves, which would pickle differently in every process and defeat Numba's
    cache."""
    def factory(dt):
        isz, rslot, tslot = _reg_slot(dt)
        bits_dt = np.int32 if isz == 4 else np.int64

        def kernel(code_addr, q, ctx_addr, n):
            _, o, x, _, _, ctx = _regs(code_addr, q, ctx_addr, n, dt(0), isz, rslot)
            bits = carray(ptr(ctx[C_BITS], bits_dt(0)), n)
            tmp = carray(ptr(ctx[tslot], dt(0)), n)
            if sub == EXP:
                vexp(x, o, n, bits)
            elif sub == TANH:
                vtanh(x, o, n, bits, tmp)
            elif sub == SIGMOID:
                vsigmoid(x, o, n, bits, tmp)
            elif sub == SOFTPLUS:
                vsoftplus(x, o, n, bits, tmp)
            else:
                vlog(x, o, n)

        return kernel
    return factory


for _name, _sub in (("exp", EXP), ("tanh", TANH), ("sigmoid", SIGMOID), ("softplus", SOFTPLUS),
                    ("log", LOG)):
    register(_name)(_activation(_sub))


@register("math")
def _math(dt):
    isz, rslot, _ = _reg_slot(dt)

    def kernel(code_addr, q, ctx_addr, n):
        sub, o, x, y, _, _ = _regs(code_addr, q, ctx_addr, n, dt(0), isz, rslot)
        if sub == SQRT:
            for j in range(n):
                o[j] = np.sqrt(x[j])
        elif sub == SIN:
            for j in range(n):
                o[j] = math.sin(x[j])
        elif sub == COS:
            for j in range(n):
                o[j] = math.cos(x[j])
        elif sub == POW:
            for j in range(n):
                o[j] = x[j] ** y[j]

    return kernel


@register("special")
def _special(dt):
    """The other unary functions of NumPy's: a group of their own, so that a program using
    only sqrt/sin/cos does not compile them (each a call to the C library's function, as
    NumPy's own loops make)."""
    isz, rslot, _ = _reg_slot(dt)

    def kernel(code_addr, q, ctx_addr, n):
        sub, o, x, _, _, _ = _regs(code_addr, q, ctx_addr, n, dt(0), isz, rslot)
        if sub == TAN:
            for j in range(n):
                o[j] = np.tan(x[j])
        elif sub == SINH:
            for j in range(n):
                o[j] = np.sinh(x[j])
        elif sub == COSH:
            for j in range(n):
                o[j] = np.cosh(x[j])
        elif sub == ARCTAN:
            for j in range(n):
                o[j] = np.arctan(x[j])
        elif sub == ARCSIN:
            for j in range(n):
                o[j] = np.arcsin(x[j])
        elif sub == ARCCOS:
            for j in range(n):
                o[j] = np.arccos(x[j])
        elif sub == ARCSINH:
            for j in range(n):
                o[j] = np.arcsinh(x[j])
        elif sub == ARCCOSH:
            for j in range(n):
                o[j] = np.arccosh(x[j])
        elif sub == ARCTANH:
            for j in range(n):
                o[j] = np.arctanh(x[j])
        elif sub == LOG1P:
            for j in range(n):
                o[j] = np.log1p(x[j])
        elif sub == EXPM1:
            for j in range(n):
                o[j] = np.expm1(x[j])
        elif sub == LOG2:
            for j in range(n):
                o[j] = np.log2(x[j])
        elif sub == LOG10:
            for j in range(n):
                o[j] = np.log10(x[j])
        elif sub == EXP2:
            for j in range(n):
                o[j] = np.exp2(x[j])
        elif sub == CBRT:
            for j in range(n):
                o[j] = np.cbrt(x[j])
        elif sub == CEIL:
            for j in range(n):
                o[j] = np.ceil(x[j])
        elif sub == TRUNC:
            for j in range(n):
                o[j] = np.trunc(x[j])
        elif sub == RINT:
            for j in range(n):
                o[j] = np.rint(x[j])

    return kernel



@register("binary")
def _binary(dt):
    """NumPy's two-argument functions of the C library (arctan2, hypot, fmod) and its float
    ``mod`` and ``floor_divide``, written as NumPy's ``npy_divmod`` computes them: from
    ``fmod`` (exact), the quotient snapped to an integer, signs of zeros kept."""
    isz, rslot, _ = _reg_slot(dt)
    zero, one, half = dt(0.0), dt(1.0), dt(0.5)

    def kernel(code_addr, q, ctx_addr, n):
        sub, o, x, y, _, _ = _regs(code_addr, q, ctx_addr, n, dt(0), isz, rslot)
        if sub == ARCTAN2:
            for j in range(n):
                o[j] = np.arctan2(x[j], y[j])
        elif sub == HYPOT:
            for j in range(n):
                o[j] = np.hypot(x[j], y[j])
        elif sub == FMOD:
            for j in range(n):
                o[j] = np.fmod(x[j], y[j])
        elif sub == MOD:
            for j in range(n):
                a, b = x[j], y[j]
                m = np.fmod(a, b)
                if b == zero:
                    o[j] = m  # NaN, as fmod gives
                elif m != zero:
                    o[j] = m + b if (b < zero) != (m < zero) else m
                else:
                    o[j] = math.copysign(zero, b)
        elif sub == FLOOR_DIVIDE:
            for j in range(n):
                a, b = x[j], y[j]
                if b == zero:
                    o[j] = a / b
                    continue
                m = np.fmod(a, b)
                div = (a - m) / b
                if m != zero and (b < zero) != (m < zero):
                    div -= one
                if div != zero:
                    f = np.floor(div)
                    o[j] = f + one if div - f > half else f
                else:
                    o[j] = math.copysign(zero, a / b)

    return kernel
