"""Vectorisable exp, tanh, sigmoid and log for the compiled runner, on rows of a register.

Numba calls the C library's ``tanh``/``exp`` one element at a time (16 ns per float32 tanh
here, against NumPy's 0.4 ns SIMD loops). These functions use Cephes' range reduction and
polynomials written as plain arithmetic, so LLVM vectorises them: float64 to within 1 ulp of
the C library (``exp``) and a few ulp (``tanh``, ``log``), float32 to within 2e-7 relative
(``tanh``: 4e-7, XLA's rational form).
Each works on ``src[:n]`` into ``dst[:n]`` and may use ``bits`` (an integer row of the same
byte width) and ``tmp`` as scratch; only ``vexp`` may write over its input (``dst`` may be
``src``): the others need ``dst`` distinct from ``src``. The loops are branch-free (both
sides computed, then selected) so that LLVM vectorises them, and no loop reads and writes
the same row (LLVM would then fall back to scalar code). Imports only NumPy and Numba.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)

__all__ = ["vexp", "vtanh", "vsigmoid", "vlog", "vsoftplus"]

_NJIT = dict(cache=True, nogil=True, error_model="numpy")

LOG2E = 1.4426950408889634
# float64 exp (Cephes): exp(x) = 2^k * exp(r), exp(r) by a Pade form
_C1 = 6.93145751953125e-1
_C2 = 1.42860682030941723212e-6
_P0, _P1, _P2 = 1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1
_Q0, _Q1 = 3.00198505138664455042e-6, 2.52448340349684104192e-3
_Q2, _Q3 = 2.27265548208155028766e-1, 2.00000000000000000009e0


@numba.njit(**_NJIT)
def _exp64(src, dst, n, bits):
    # dst may be src: an element outside the fast range keeps x in dst, marked by bits = -1,
    # and gets the C library's exp in the last loop (run only if one exists).
    slow = 0
    for i in range(n):
        x = src[i]
        v = min(max(x, -708.0), 708.0)
        k = np.floor(LOG2E * v + 0.5)
        r = v - k * _C1
        r = r - k * _C2
        xx = r * r
        px = r * ((_P0 * xx + _P1) * xx + _P2)
        q = ((_Q0 * xx + _Q1) * xx + _Q2) * xx + _Q3
        p = 1.0 + 2.0 * px / (q - px)
        fast = -708.0 <= x <= 708.0
        bits[i] = ((np.int64(k) + 1023) << 52) if fast else -1
        dst[i] = p if fast else x
        slow |= not fast
    scale = bits.view(np.float64)
    for i in range(n):
        dst[i] = dst[i] * scale[i] if bits[i] != -1 else dst[i]
    if slow:
        for i in range(n):
            if bits[i] == -1:
                dst[i] = math.exp(dst[i])


# float32 exp's limits: above _HI32 it overflows to inf; below _LO32 it is subnormal, and the
# runner flushes subnormals to zero (as XLA's CPU runtime does)
_HI32, _LO32 = 88.72283935546875, -87.33654022216797


@numba.njit(**_NJIT)
def _exp32(src, dst, n, bits):
    # Branch- and reduction-free (a loop that also folds a "slow" flag does not vectorise):
    # the first loop leaves the mantissa in dst and 2^k's bits in ``bits``; out-of-range
    # inputs get a mantissa of 1 and the bits of inf, 0 or NaN. k is at most 127 (2^k a
    # normal float), so between 88.38 and 88.72 r reaches ln 2 (measured: 2 ulp).
    for i in range(n):
        x = src[i]
        v = min(max(x, np.float32(_LO32)), np.float32(_HI32))
        k = min(np.floor(np.float32(LOG2E) * v + np.float32(0.5)), np.float32(127.0))
        r = v - k * np.float32(0.693359375)
        r = r + k * np.float32(2.12194440e-4)
        z = r * r
        p = ((((np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)) * r
               + np.float32(8.3334519073e-3)) * r + np.float32(4.1665795894e-2)) * r
             + np.float32(1.6666665459e-1)) * r + np.float32(5.0000001201e-1)
        e = (np.int32(k) + np.int32(127)) << np.int32(23)
        e = np.int32(0x7F800000) if x > np.float32(_HI32) else e
        e = np.int32(0) if x < np.float32(_LO32) else e
        e = e if x == x else np.int32(0x7FC00000)
        normal = (x <= np.float32(_HI32)) & (x >= np.float32(_LO32))
        dst[i] = (p * z + r + np.float32(1.0)) if normal else np.float32(1.0)
        bits[i] = e
    scale = bits.view(np.float32)
    for i in range(n):
        dst[i] = dst[i] * scale[i]


def vexp(src, dst, n, bits):
    """dst[:n] = exp(src[:n]) (float32 or float64 rows; ``bits`` an int row as wide).

    Called from Numba code, it resolves to the float32 or float64 loop at compile time.
    """
    (_exp32 if src.dtype == np.float32 else _exp64)(src, dst, n, bits)


@overload(vexp, jit_options=_NJIT)
def _vexp_impl(src, dst, n, bits):
    if src.dtype == types.float32:
        return lambda src, dst, n, bits: _exp32(src, dst, n, bits)
    return lambda src, dst, n, bits: _exp64(src, dst, n, bits)


# tanh: a rational/polynomial in x^2 near 0, else 1 - 2 / (exp(2|x|) + 1)
_TP0, _TP1, _TP2 = -9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3
_TQ0, _TQ1, _TQ2 = 1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3


# float32 tanh: XLA's (Eigen's) odd rational p(x)/q(x) on x clamped to +-7.9053 (where the
# rounded tanh is 1), one branch-free pass and one division: about 6 ulp (4e-7 relative) at
# most, against Cephes' exp-based form that took four passes and an exp (measured 4x slower).
# Its polynomials' multiply-adds are contracted into FMAs, as Eigen's pmadd is where the CPU
# has them (the only fast-math liberty: no NaN or range assumptions): 64 elements in 61 ns
# against 77 ns with separate multiplies and adds (AMD EPYC, AVX2; best of 30 runs), the
# bound unchanged (tests/test_jit_vmath.py).
_RA = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
       5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
       4.89352455891786e-03)
_RB = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
       4.89352518554385e-03)
_RCLAMP = 7.90531110763549805
# from here on tanh(x) rounds to 1 in float32 (the contracted rational gives 1 - 2 ulp at the
# clamp, which is tanh's rounded value at 7.9, not at infinity)
_ROUNDS_TO_ONE = 9.0109


@numba.njit(**_NJIT, fastmath={"contract"})
def _tanh32(src, dst, n, bits, tmp):
    one, lim = np.float32(1.0), np.float32(_RCLAMP)
    a0, a1, a2, a3, a4, a5, a6 = (np.float32(_RA[0]), np.float32(_RA[1]), np.float32(_RA[2]),
                                  np.float32(_RA[3]), np.float32(_RA[4]), np.float32(_RA[5]),
                                  np.float32(_RA[6]))
    b0, b1, b2, b3 = (np.float32(_RB[0]), np.float32(_RB[1]), np.float32(_RB[2]),
                      np.float32(_RB[3]))
    for i in range(n):
        v = src[i]
        x = v if v < lim else lim
        x = x if x > -lim else -lim
        z = x * x
        p = ((((((a0 * z + a1) * z + a2) * z + a3) * z + a4) * z + a5) * z + a6) * x
        q = (((b0 * z + b1) * z + b2) * z + b3)
        r = p / q
        r = r if r < one else one
        r = r if r > -one else -one
        r = v if abs(v) < np.float32(0.0004) else r  # tanh(x) rounds to x there
        r = (one if v > 0 else -one) if abs(v) >= np.float32(_ROUNDS_TO_ONE) else r
        dst[i] = r if v == v else v


@numba.njit(**_NJIT)
def _tanh64(src, dst, n, bits, tmp):
    for i in range(n):
        tmp[i] = 2.0 * abs(src[i])
    _exp64(tmp, dst, n, bits)
    for i in range(n):
        v = src[i]
        z = v * v
        small = v + v * z * ((_TP0 * z + _TP1) * z + _TP2) / (((z + _TQ0) * z + _TQ1) * z
                                                               + _TQ2)
        big = 1.0 - 2.0 / (dst[i] + 1.0)
        big = big if v >= 0 else -big
        r = small if abs(v) < 0.625 else big
        dst[i] = r if v == v else v


def vtanh(src, dst, n, bits, tmp):
    """dst[:n] = tanh(src[:n]); ``tmp`` a float row of the same dtype (scratch)."""
    (_tanh32 if src.dtype == np.float32 else _tanh64)(src, dst, n, bits, tmp)


@overload(vtanh, jit_options=_NJIT)
def _vtanh_impl(src, dst, n, bits, tmp):
    if src.dtype == types.float32:
        return lambda src, dst, n, bits, tmp: _tanh32(src, dst, n, bits, tmp)
    return lambda src, dst, n, bits, tmp: _tanh64(src, dst, n, bits, tmp)


@numba.njit(inline="always")
def _exp_neg_abs(src, dst, n, bits, tmp):
    """dst[:n] = exp(-|src[:n]|), in (0, 1]: it never overflows (``tmp``: scratch)."""
    for i in range(n):
        tmp[i] = -abs(src[i])
    vexp(tmp, dst, n, bits)


@numba.njit(**_NJIT)
def vsigmoid(src, dst, n, bits, tmp):
    """dst[:n] = 1 / (1 + exp(-src[:n])), without overflow (exp of -|x| only)."""
    _exp_neg_abs(src, dst, n, bits, tmp)
    for i in range(n):
        e = dst[i]
        v = src[i]
        r = (1 / (1 + e)) if v >= 0 else (e / (1 + e))
        dst[i] = r if v == v else v


@numba.njit(**_NJIT)
def vlog(src, dst, n):
    """dst[:n] = log(src[:n]) (the C library's, one element at a time)."""
    for i in range(n):
        dst[i] = math.log(src[i]) if src[i] > 0 else (
            -np.inf if src[i] == 0 else np.nan)


@numba.njit(**_NJIT)
def vsoftplus(src, dst, n, bits, tmp):
    """dst[:n] = log(1 + exp(src[:n])) = max(x, 0) + log1p(exp(-|x|)), as np.logaddexp(0, x)."""
    _exp_neg_abs(src, dst, n, bits, tmp)
    for i in range(n):
        v = src[i]
        r = (v if v > 0 else 0) + math.log1p(dst[i])
        dst[i] = r if v == v else v
