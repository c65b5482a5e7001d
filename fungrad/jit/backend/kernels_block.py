"""Kernels of the runner's block instructions: matmul, reductions, rows, losses, LSTM cell.

Each instruction is ``[BLOCK, length, slot, fields...]``, its fields named in
:mod:`fungrad.jit.backend.isa` and read here by name (``ins[MATMUL.a_off]``); a buffer
operand is a pair (buffer, offset) into the runner's buffer table (its dtype is the kernel's)
and the rest are sizes and strides in elements. A kernel that finds bad input (an index out of
range) stores an error code and the offending value in the context and returns; the runner stops
there and Python re-runs the step with NumPy to raise eager's exact error.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import carray

from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)

from .isa import (
    BOUNDS, FILL, GATHER, LSTM, LSTM_GRAD, MATMUL, REDUCE, ROWS, SCATTER, SGD_DENSE, SGD_ROWS,
    XENT, XENT_GRAD, block_length,
)
from .kernels_ew import BIG, I0
from .native import (
    C_ADDRS, C_BITS, C_DGEMM, C_ERR, C_ERR_VALUE, C_K, C_S, C_SGEMM, C_WORK, CTX_LEN, gemm,
    ptr, register,
)
from .vmath import vexp, vsigmoid, vtanh
from ...kernels.recurrent import lstm_cell, lstm_cell_backward
from ...kernels.softmax import xent_row_grad

__all__ = ["E_INDEX", "R_SUM", "R_MAX", "R_MIN", "ROW_SOFTMAX", "ROW_LOG_SOFTMAX"]

E_INDEX = 1
R_SUM, R_MAX, R_MIN = 0, 1, 2
ROW_SOFTMAX, ROW_LOG_SOFTMAX = 0, 1
_NJIT = dict(cache=True, nogil=True, error_model="numpy")
# words of each instruction (its fields are read by name: ins[MATMUL.a])
MATMUL_LEN = block_length(MATMUL)
REDUCE_LEN = block_length(REDUCE)
GATHER_LEN = block_length(GATHER)
BOUNDS_LEN = block_length(BOUNDS)
SCATTER_LEN = block_length(SCATTER)
SGD_ROWS_LEN = block_length(SGD_ROWS)
SGD_DENSE_LEN = block_length(SGD_DENSE)
XENT_LEN = block_length(XENT)
XENT_GRAD_LEN = block_length(XENT_GRAD)
ROWS_LEN = block_length(ROWS)
LSTM_LEN = block_length(LSTM)
LSTM_GRAD_LEN = block_length(LSTM_GRAD)
FILL_LEN = block_length(FILL)


@numba.njit(inline="always")
def _decode(code_addr, pc, ctx_addr, n_words):
    """The instruction at ``pc`` seen from its own first word (its fields are constant,
    non-negative indices, read without wrapping) and the context."""
    return carray(ptr(code_addr + pc * 8, I0), n_words), carray(ptr(ctx_addr, I0), CTX_LEN)


@numba.njit(inline="always")
def _buf(ctx, b, z):
    addrs = carray(ptr(ctx[C_ADDRS], I0), b + 1)
    return carray(ptr(addrs[b], z), BIG)


@numba.njit(inline="always")
def _operand(ins, ctx, field, z):
    """``(buffer, offset)`` of the buffer operand at ``field`` of instruction ``ins`` (every
    layout puts an operand's offset right after its buffer), the buffer read as ``z``'s
    dtype."""
    return _buf(ctx, ins[field], z), ins[field + 1]


def _bits_dt(dt):
    return np.int32 if np.dtype(dt).itemsize == 4 else np.int64


# -- matmul ------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _dot(A, ai, acs, B, bj, brs, k):
    s = A[ai] * B[bj] * 0
    for t in range(k):
        s += A[ai + t * acs] * B[bj + t * brs]
    return s


BLAS_MIN = 4096  # multiply-adds from which a matmul calls BLAS (below: loops)
NO_TRANS, TRANS = 111, 112  # CBLAS_TRANSPOSE


@numba.njit(inline="always")
def _addr(ctx, b):
    return carray(ptr(ctx[C_ADDRS], I0), b + 1)[b]


@numba.njit(inline="always")
def _blas_operand(rows, cols, rs, cs):
    """(transpose flag, leading dimension) of a strided matrix for row-major BLAS, or (0, 0)
    when its layout is not one BLAS takes."""
    if cs == 1 and (rs >= max(cols, 1) or rows == 1):
        return NO_TRANS, max(rs, cols, 1) if rows == 1 else rs
    if rs == 1 and (cs >= max(rows, 1) or cols == 1):
        return TRANS, max(cs, rows, 1) if cols == 1 else cs
    return 0, 0


@register("matmul")
def _matmul(dt):
    isz = np.dtype(dt).itemsize
    gemm_slot = C_SGEMM if isz == 4 else C_DGEMM

    def kernel(code_addr, pc, ctx_addr, n):
        ins, ctx = _decode(code_addr, pc, ctx_addr, MATMUL_LEN)
        z = dt(0)
        A, a0 = _operand(ins, ctx, MATMUL.a, z)
        B, b0 = _operand(ins, ctx, MATMUL.b, z)
        C, c0 = _operand(ins, ctx, MATMUL.c, z)
        ars, acs, brs, bcs = ins[MATMUL.a_rs], ins[MATMUL.a_cs], ins[MATMUL.b_rs], ins[MATMUL.b_cs]
        crs = ins[MATMUL.c_rs]
        M, K, N = ins[MATMUL.M], ins[MATMUL.K], ins[MATMUL.N]
        acc = ins[MATMUL.acc]
        fn = ctx[gemm_slot]
        if fn != 0 and M * K * N >= BLAS_MIN:
            ta, lda = _blas_operand(M, K, ars, acs)
            tb, ldb = _blas_operand(K, N, brs, bcs)
            if ta != 0 and tb != 0 and crs >= N:
                gemm(fn, ta, tb, M, N, K, dt(1), _addr(ctx, ins[MATMUL.a]) + a0 * isz, lda,
                     _addr(ctx, ins[MATMUL.b]) + b0 * isz, ldb, dt(acc),
                     _addr(ctx, ins[MATMUL.c]) + c0 * isz, crs)
                return
        if bcs == 1:  # i-k-j: the inner loop runs along rows of B and C (vectorised: rows
            for i in range(M):  # as slices, which Numba does not wrap index by index)
                crow = c0 + i * crs
                c = C[crow:crow + N]
                if acc == 0:
                    for j in range(N):
                        c[j] = 0
                for k in range(K):
                    aik = A[a0 + i * ars + k * acs]
                    brow = b0 + k * brs
                    b = B[brow:brow + N]
                    for j in range(N):
                        c[j] += aik * b[j]
        else:  # B's columns are contiguous (a transposed view): dot products along k
            for i in range(M):
                for j in range(N):
                    s = _dot(A, a0 + i * ars, acs, B, b0 + j * bcs, brs, K)
                    if acc == 0:
                        C[c0 + i * crs + j] = s
                    else:
                        C[c0 + i * crs + j] += s

    return kernel


# -- reductions --------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _sum_run(X, start, n):
    """sum(X[start:start + n]) in float64 (vectorised: reassociation allowed)."""
    x = X[start:start + n]
    s = 0.0
    for j in range(n):
        s += x[j]
    return s


@register("reduce")
def _reduce(dt):
    def kernel(code_addr, pc, ctx_addr, n):
        ins, ctx = _decode(code_addr, pc, ctx_addr, REDUCE_LEN)
        z = dt(0)
        kind = ins[REDUCE.kind]
        X, x0 = _operand(ins, ctx, REDUCE.x, z)
        Y, y0 = _operand(ins, ctx, REDUCE.y, z)
        A, R, C = ins[REDUCE.A], ins[REDUCE.R], ins[REDUCE.C]
        kscale = ins[REDUCE.kscale]
        scale = 1.0
        if kscale >= 0:
            scale = carray(ptr(ctx[C_K], 0.0), kscale + 1)[kscale]
        work = carray(ptr(ctx[C_WORK], 0.0), C)
        for a in range(A):
            base = x0 + a * R * C
            out = y0 + a * C
            if kind == R_SUM:
                if C == 1:
                    Y[out] = _sum_run(X, base, R) * scale
                else:  # float64 accumulators: a long float32 running sum loses digits
                    for c in range(C):
                        work[c] = 0.0
                    for r in range(R):
                        x = X[base + r * C:base + (r + 1) * C]
                        for c in range(C):
                            work[c] += x[c]
                    y = Y[out:out + C]
                    for c in range(C):
                        y[c] = work[c] * scale
            else:
                y = Y[out:out + C]
                x = X[base:base + C]
                for c in range(C):
                    y[c] = x[c]
                for r in range(1, R):
                    x = X[base + r * C:base + (r + 1) * C]
                    for c in range(C):
                        u = y[c]
                        v = x[c]
                        if kind == R_MAX:
                            y[c] = u if (u >= v or u != u) else v
                        else:
                            y[c] = u if (u <= v or u != u) else v

    return kernel


# -- gather / scatter rows ---------------------------------------------------------------------


@register("gather")
def _gather(dt):
    def kernel(code_addr, pc, ctx_addr, n):
        """Rows of a table at indices (``sum_r`` > 0: each output row the sum of ``sum_r``
        consecutive looked-up rows, an embedding bag: index_select then sum over the bag)."""
        ins, ctx = _decode(code_addr, pc, ctx_addr, GATHER_LEN)
        z = dt(0)
        sum_r = ins[GATHER.sum_r]
        T, t0 = _operand(ins, ctx, GATHER.t, z)
        idx, i0 = _operand(ins, ctx, GATHER.idx, I0)
        Out, o0 = _operand(ins, ctx, GATHER.out, z)
        count, rows, D = ins[GATHER.count], ins[GATHER.rows], ins[GATHER.row]
        for i in range(count):
            r = idx[i0 + i]
            if r < -rows or r >= rows:
                ctx[C_ERR] = E_INDEX
                ctx[C_ERR_VALUE] = r
                return
        if sum_r == 0:
            for i in range(count):
                r = idx[i0 + i]
                r = r + rows if r < 0 else r
                src = T[t0 + r * D:t0 + (r + 1) * D]
                dst = Out[o0 + i * D:o0 + (i + 1) * D]
                for j in range(D):
                    dst[j] = src[j]
            return
        for a in range(count // sum_r):
            dst = Out[o0 + a * D:o0 + (a + 1) * D]
            for j in range(D):
                dst[j] = 0
            for k in range(sum_r):
                r = idx[i0 + a * sum_r + k]
                r = r + rows if r < 0 else r
                src = T[t0 + r * D:t0 + (r + 1) * D]
                for j in range(D):
                    dst[j] = dst[j] + src[j]

    return kernel


@register("bounds")
def _bounds(dt):
    def kernel(code_addr, pc, ctx_addr, n):
        """Check ``lo <= ids[i] < hi`` for ``count`` contiguous int64 ids."""
        ins, ctx = _decode(code_addr, pc, ctx_addr, BOUNDS_LEN)
        idx, i0 = _operand(ins, ctx, BOUNDS.idx, I0)
        count = ins[BOUNDS.count]
        lo, hi = ins[BOUNDS.lo], ins[BOUNDS.hi]
        bad = 0
        for i in range(count):
            r = idx[i0 + i]
            bad |= (r < lo) | (r >= hi)
        if bad:
            for i in range(count):
                r = idx[i0 + i]
                if r < lo or r >= hi:
                    ctx[C_ERR] = E_INDEX
                    ctx[C_ERR_VALUE] = r
                    return

    return kernel


SCATTER_ADD, SCATTER_ZERO, SCATTER_CHECK, SCATTER_SCALED = 0, 1, 2, 3


@register("scatter")
def _scatter(dt):
    def kernel(code_addr, pc, ctx_addr, n):
        """``Out[idx[i]] += V[row(i)]``, row(i) = ``v0 + (i // inner) * vs_out + (i % inner) *
        vs_in`` (so values may be broadcast along the index axes). Modes: accumulate, zero the
        table first, only check the indices, or accumulate ``-scale * V`` (a sparse SGD step)."""
        ins, ctx = _decode(code_addr, pc, ctx_addr, SCATTER_LEN)
        z = dt(0)
        mode = ins[SCATTER.mode]
        V, v0 = _operand(ins, ctx, SCATTER.v, z)
        idx, i0 = _operand(ins, ctx, SCATTER.idx, I0)
        Out, o0 = _operand(ins, ctx, SCATTER.out, z)
        count, rows, D = ins[SCATTER.count], ins[SCATTER.rows], ins[SCATTER.row]
        inner = ins[SCATTER.inner]
        vs_out, vs_in = ins[SCATTER.vs_out], ins[SCATTER.vs_in]
        for i in range(count):
            r = idx[i0 + i]
            if r < -rows or r >= rows:
                ctx[C_ERR] = E_INDEX
                ctx[C_ERR_VALUE] = r
                return
        if mode == SCATTER_CHECK:
            return
        if mode == SCATTER_ZERO:
            table = Out[o0:o0 + rows * D]
            for j in range(rows * D):
                table[j] = 0
        alpha = dt(1)
        if mode == SCATTER_SCALED:
            ks = ins[SCATTER.sindex]
            alpha = dt(-carray(ptr(ctx[C_K] if ins[SCATTER.skind] == -1 else ctx[C_S], 0.0),
                               ks + 1)[ks])
        for i in range(count):
            r = idx[i0 + i]
            r = r + rows if r < 0 else r
            dst = Out[o0 + r * D:o0 + (r + 1) * D]
            start = v0 + (i // inner) * vs_out + (i % inner) * vs_in
            src = V[start:start + D]
            if mode == SCATTER_SCALED:
                for j in range(D):
                    dst[j] = dst[j] + alpha * src[j]
            else:
                for j in range(D):
                    dst[j] = dst[j] + src[j]

    return kernel


@register("sgd_rows")
def _sgd_rows(dt):
    def kernel(code_addr, pc, ctx_addr, n):
        """An SGD step on a table whose gradient accumulates scattered rows, then is zeroed:
        ``G += scatter(V, idx); W -= lr * G; G = 0``. When ``G`` held zeros (checked first)
        only the scattered rows can change, and only they are visited: the same numbers as
        the dense update (``W - lr * 0`` is ``W``). Indices were checked before."""
        ins, ctx = _decode(code_addr, pc, ctx_addr, SGD_ROWS_LEN)
        z = dt(0)
        V, v0 = _operand(ins, ctx, SGD_ROWS.v, z)
        idx, i0 = _operand(ins, ctx, SGD_ROWS.idx, I0)
        W, w0 = _operand(ins, ctx, SGD_ROWS.w, z)
        G, g0 = _operand(ins, ctx, SGD_ROWS.g, z)
        count = ins[SGD_ROWS.count]
        rows, D = ins[SGD_ROWS.rows], ins[SGD_ROWS.row]
        inner = ins[SGD_ROWS.inner]
        vs_out, vs_in = ins[SGD_ROWS.vs_out], ins[SGD_ROWS.vs_in]
        ks = ins[SGD_ROWS.sindex]
        table = ctx[C_K] if ins[SGD_ROWS.skind] == -1 else ctx[C_S]
        lr = dt(carray(ptr(table, 0.0), ks + 1)[ks])
        grad = G[g0:g0 + rows * D]
        zero = True
        for start in range(0, rows * D, 4096):  # stops at the first chunk holding a nonzero
            part = grad[start:min(start + 4096, rows * D)]
            nonzero = False
            for j in range(part.size):
                nonzero |= part[j] != 0
            if nonzero:
                zero = False
                break
        for i in range(count):
            r = idx[i0 + i]
            r = r + rows if r < 0 else r
            dst = G[g0 + r * D:g0 + (r + 1) * D]
            start = v0 + (i // inner) * vs_out + (i % inner) * vs_in
            src = V[start:start + D]
            for j in range(D):
                dst[j] = dst[j] + src[j]
        if zero:
            for i in range(count):
                r = idx[i0 + i]
                r = r + rows if r < 0 else r
                w = W[w0 + r * D:w0 + (r + 1) * D]
                g = G[g0 + r * D:g0 + (r + 1) * D]
                for j in range(D):
                    step = lr * g[j]
                    w[j] = w[j] - step
                    g[j] = 0
        else:
            w = W[w0:w0 + rows * D]
            for j in range(rows * D):
                step = lr * grad[j]
                w[j] = w[j] - step
                grad[j] = 0

    return kernel


@register("sgd_dense")
def _sgd_dense(dt):
    def kernel(code_addr, pc, ctx_addr, n):
        """``Out = W - lr * (G + T); Zeroed = 0``: an SGD step on a parameter whose ``.grad``
        (``G``) accumulates this step's gradient ``T`` and is then zeroed, in one pass, each
        number rounded as the traced program rounds it (the sum, the product, the difference).
        ``Out`` may be ``W`` and ``Zeroed`` may be ``G`` (in place): element ``j`` is read
        before it is written."""
        ins, ctx = _decode(code_addr, pc, ctx_addr, SGD_DENSE_LEN)
        z = dt(0)
        count = ins[SGD_DENSE.n]
        T, t0 = _operand(ins, ctx, SGD_DENSE.t, z)
        G, g0 = _operand(ins, ctx, SGD_DENSE.g, z)
        W, w0 = _operand(ins, ctx, SGD_DENSE.w, z)
        O, o0 = _operand(ins, ctx, SGD_DENSE.out, z)
        Z, z0 = _operand(ins, ctx, SGD_DENSE.zeroed, z)
        T, G, Wt = T[t0:t0 + count], G[g0:g0 + count], W[w0:w0 + count]
        Out, Zeroed = O[o0:o0 + count], Z[z0:z0 + count]
        ks = ins[SGD_DENSE.sindex]
        table = ctx[C_K] if ins[SGD_DENSE.skind] == -1 else ctx[C_S]
        lr = dt(carray(ptr(table, 0.0), ks + 1)[ks])
        if (ins[SGD_DENSE.out] == ins[SGD_DENSE.w] and o0 == w0
                and ins[SGD_DENSE.zeroed] == ins[SGD_DENSE.g] and z0 == g0):
            for j in range(count):  # in place, the usual case: one array per stream, so
                g = G[j] + T[j]    # LLVM's overlap checks pass and the loop vectorises
                step = lr * g
                Wt[j] = Wt[j] - step
                G[j] = z
        else:
            for j in range(count):
                g = G[j] + T[j]
                step = lr * g
                Out[j] = Wt[j] - step
                Zeroed[j] = z

    return kernel


# -- softmax rows and cross-entropy ------------------------------------------------------------


@numba.njit(**_NJIT)
def _softmax_row(X, x0, P, p0, C, bits):
    """P[p0:p0+C] = softmax(X[x0:x0+C]) (as the eager kernel: exp(x - max) / sum); returns
    (max, sum of exp)."""
    m = X[x0]
    for j in range(1, C):
        v = X[x0 + j]
        m = v if v > m else m
    row = P[p0:p0 + C]
    for j in range(C):
        row[j] = X[x0 + j] - m
    vexp(row, row, C, bits)
    s = row[0] * 0
    for j in range(C):
        s += row[j]
    for j in range(C):
        row[j] = row[j] / s
    return m, s


@numba.njit(**_NJIT)
def _shifted_exp(X, x0, Out, o0, N, C, bits, ms):
    """Out rows = exp(X rows - row max), the maxima in ``ms``; one vectorised exp over all."""
    for r in range(N):
        x = X[x0 + r * C:x0 + (r + 1) * C]
        m = x[0]
        for j in range(1, C):
            m = x[j] if x[j] > m else m
        ms[r] = m
        o = Out[o0 + r * C:o0 + (r + 1) * C]
        for j in range(C):
            o[j] = x[j] - m
    flat = Out[o0:o0 + N * C]
    vexp(flat, flat, N * C, bits)


@register("xent")
def _xent(dt):
    bdt = _bits_dt(dt)

    def kernel(code_addr, pc, ctx_addr, n):
        ins, ctx = _decode(code_addr, pc, ctx_addr, XENT_LEN)
        z = dt(0)
        X, x0 = _operand(ins, ctx, XENT.x, z)
        tg, t0 = _operand(ins, ctx, XENT.t, I0)
        Out, o0 = _operand(ins, ctx, XENT.out, z)
        N, C = ins[XENT.N], ins[XENT.C]
        for r in range(N):
            t = tg[t0 + r]
            if t < 0 or t >= C:
                ctx[C_ERR] = E_INDEX
                ctx[C_ERR_VALUE] = t
                return
        work = carray(ptr(ctx[C_WORK], z), N * C + N)
        bits = carray(ptr(ctx[C_BITS], bdt(0)), N * C)
        e, ms = work[:N * C], work[N * C:]
        _shifted_exp(X, x0, e, 0, N, C, bits, ms)
        total = 0.0  # float64, as the eager kernel
        for r in range(N):
            s = _sum_run(e, r * C, C)
            total += math.log(s) - (X[x0 + r * C + tg[t0 + r]] - ms[r])
        Out[o0] = total / N if N else np.nan

    return kernel


@register("xent_grad")
def _xent_grad(dt):
    bdt = _bits_dt(dt)

    def kernel(code_addr, pc, ctx_addr, n):
        """(softmax(X) - onehot(targets)) * g / N, the softmax's exp over all rows at once."""
        ins, ctx = _decode(code_addr, pc, ctx_addr, XENT_GRAD_LEN)
        z = dt(0)
        gb, g0 = ins[XENT_GRAD.g], ins[XENT_GRAD.g_off]
        if gb >= 0:
            gval = float(_buf(ctx, gb, z)[g0])
        else:  # a number: a constant (K) or a runtime scalar (S)
            gval = carray(ptr(ctx[C_K] if gb == -1 else ctx[C_S], 0.0), g0 + 1)[g0]
        X, x0 = _operand(ins, ctx, XENT_GRAD.x, z)
        tg, t0 = _operand(ins, ctx, XENT_GRAD.t, I0)
        Out, o0 = _operand(ins, ctx, XENT_GRAD.out, z)
        N, C = ins[XENT_GRAD.N], ins[XENT_GRAD.C]
        for r in range(N):
            t = tg[t0 + r]
            if t < 0 or t >= C:
                ctx[C_ERR] = E_INDEX
                ctx[C_ERR_VALUE] = t
                return
        bits = carray(ptr(ctx[C_BITS], bdt(0)), N * C)
        ms = carray(ptr(ctx[C_WORK], z), N)
        _shifted_exp(X, x0, Out, o0, N, C, bits, ms)
        scale = dt(gval / N if N else 0.0)
        one = dt(1)
        for r in range(N):
            row = Out[o0 + r * C:o0 + (r + 1) * C]
            s = dt(_sum_run(row, 0, C))
            for j in range(C):  # the softmax, rounded as the eager forward rounds it
                row[j] = row[j] / s
            xent_row_grad(row, tg[t0 + r], scale, row, one)

    return kernel


@register("rows")
def _rows(dt):
    bdt = _bits_dt(dt)

    def kernel(code_addr, pc, ctx_addr, n):
        ins, ctx = _decode(code_addr, pc, ctx_addr, ROWS_LEN)
        z = dt(0)
        kind = ins[ROWS.kind]
        X, x0 = _operand(ins, ctx, ROWS.x, z)
        Out, o0 = _operand(ins, ctx, ROWS.out, z)
        N, C = ins[ROWS.N], ins[ROWS.C]
        bits = carray(ptr(ctx[C_BITS], bdt(0)), C)
        work = carray(ptr(ctx[C_WORK], z), C)
        for r in range(N):
            if kind == ROW_SOFTMAX:
                _softmax_row(X, x0 + r * C, Out, o0 + r * C, C, bits)
            else:  # log-softmax: (x - m) - log(sum(exp(x - m)))
                base = x0 + r * C
                m = X[base]
                for j in range(1, C):
                    v = X[base + j]
                    m = v if v > m else m
                out = o0 + r * C
                for j in range(C):
                    Out[out + j] = X[base + j] - m
                    work[j] = Out[out + j]
                vexp(work, work, C, bits)
                s = work[0] * 0
                for j in range(C):
                    s += work[j]
                ls = np.log(s)
                for j in range(C):
                    Out[out + j] = Out[out + j] - ls

    return kernel


# -- the fused LSTM cell -----------------------------------------------------------------------


@numba.njit(**_NJIT)
def _lstm_row(G, gr, Cp, cp, H, act, cand, c, tc, bits, tmp):
    """One batch row's forward: activated gates ``act`` (sigmoid, all four), ``cand`` (tanh of
    g), the cell ``c`` and ``tc = tanh(c)``, from the gates at ``G[gr:]`` and ``Cp[cp:]``."""
    vsigmoid(G[gr:gr + 4 * H], act, 4 * H, bits, tmp)
    vtanh(G[gr + 2 * H:gr + 3 * H], cand, H, bits, tmp)
    for j in range(H):
        c[j] = lstm_cell(act[j], act[H + j], cand[j], Cp[cp + j])
    vtanh(c, tc, H, bits, tmp)


@register("lstm")
def _lstm(dt):
    bdt = _bits_dt(dt)

    def kernel(code_addr, pc, ctx_addr, n):
        """[h | c] (B, 2H) from gates [i, f, g, o] (B, 4H) and c_prev (B, H)."""
        ins, ctx = _decode(code_addr, pc, ctx_addr, LSTM_LEN)
        z = dt(0)
        G, g0 = _operand(ins, ctx, LSTM.g, z)
        Cp, c0 = _operand(ins, ctx, LSTM.cp, z)
        Out, o0 = _operand(ins, ctx, LSTM.out, z)
        B, H = ins[LSTM.B], ins[LSTM.H]
        work = carray(ptr(ctx[C_WORK], z), 10 * H)
        act, cand, tc, tmp = work[:4 * H], work[4 * H:5 * H], work[5 * H:6 * H], work[6 * H:]
        bits = carray(ptr(ctx[C_BITS], bdt(0)), 4 * H)
        for r in range(B):
            out = o0 + r * 2 * H
            _lstm_row(G, g0 + r * 4 * H, Cp, c0 + r * H, H, act, cand, Out[out + H:out + 2 * H],
                      tc, bits, tmp)
            for j in range(H):
                Out[out + j] = act[3 * H + j] * tc[j]

    return kernel


@register("lstm_grad")
def _lstm_grad(dt):
    bdt = _bits_dt(dt)

    def kernel(code_addr, pc, ctx_addr, n):
        """[d gates | d c_prev] (B, 5H) for the cotangent of [h | c] (B, 2H)."""
        ins, ctx = _decode(code_addr, pc, ctx_addr, LSTM_GRAD_LEN)
        z = dt(0)
        D, d0 = _operand(ins, ctx, LSTM_GRAD.d, z)
        G, g0 = _operand(ins, ctx, LSTM_GRAD.g, z)
        Cp, c0 = _operand(ins, ctx, LSTM_GRAD.cp, z)
        Out, o0 = _operand(ins, ctx, LSTM_GRAD.out, z)
        B, H = ins[LSTM_GRAD.B], ins[LSTM_GRAD.H]
        work = carray(ptr(ctx[C_WORK], z), 11 * H)
        act, cand, c, tc, tmp = (work[:4 * H], work[4 * H:5 * H], work[5 * H:6 * H],
                                 work[6 * H:7 * H], work[7 * H:])
        bits = carray(ptr(ctx[C_BITS], bdt(0)), 4 * H)
        one = dt(1)
        for r in range(B):
            cp = c0 + r * H
            _lstm_row(G, g0 + r * 4 * H, Cp, cp, H, act, cand, c, tc, bits, tmp)
            gh = d0 + r * 2 * H
            out = o0 + r * 5 * H
            for j in range(H):
                (Out[out + j], Out[out + H + j], Out[out + 2 * H + j], Out[out + 3 * H + j],
                 Out[out + 4 * H + j]) = lstm_cell_backward(
                    D[gh + j], D[gh + H + j], act[j], act[H + j], cand[j], act[3 * H + j],
                    Cp[cp + j], tc[j], one)

    return kernel


@register("fill")
def _fill(dt):
    def kernel(code_addr, pc, ctx_addr, n):
        ins, ctx = _decode(code_addr, pc, ctx_addr, FILL_LEN)
        X, x0 = _operand(ins, ctx, FILL.x, dt(0))
        count, kv = ins[FILL.count], ins[FILL.k]
        v = dt(carray(ptr(ctx[C_K], 0.0), kv + 1)[kv])
        for j in range(count):
            X[x0 + j] = v

    return kernel
