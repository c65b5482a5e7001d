"""LSTM gate math, fused: one time step's activations, cell update and their backward.

Gate pre-activations come as one ``(B, 4H)`` array (``x @ W_x + h @ W_h + b``) in the order
``[i, f, g, o]``::

    i, f, o = sigmoid(...)   g = tanh(...)
    c = f * c_prev + i * g   h = o * tanh(c)

``lstm_forward_step`` writes the activated gates ``acts = [i, f, g, o]``, ``c`` and ``h`` into
arrays the caller provides (a sequence op fills its ``(T, B, .)`` outputs step by step without
copies; ``acts`` may be ``gates`` itself). ``lstm_backward_step`` takes the cotangents of ``h``
and ``c``, ``acts``, ``c_prev`` and ``tanh(c)`` (the caller computes ``tanh`` of all the steps'
cells in one call) and writes the cotangents of the pre-activations and of ``c_prev``. Sigmoid
is the overflow-free ``exp(-|x|)`` form.

The transcendentals (``exp``, ``tanh``) are whole-array NumPy calls even on the kernel path:
NumPy's are SIMD, Numba's are scalar libm calls without Intel SVML, and a kernel that called
them per element lost to the twin 3-5x at B=32, H=128. The kernels fuse the arithmetic
between them (sigmoid from ``exp(-|x|)``, the cell update, the whole backward).

Entry point contract (the calling op has checked and normalised everything; nothing is checked
again here): every array is a C-contiguous float32 or float64 ndarray of one dtype (row
slices ``a[t]`` of a C-contiguous ``(T, B, .)`` array qualify), gates-like arrays ``(B, 4H)``,
cell-like arrays ``(B, H)``; outputs do not overlap inputs except ``acts is gates``.
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
from ._background import deferrable, with_twin
import numpy as np

__all__ = [
    "lstm_backward_step",
    "lstm_backward_step_numpy",
    "lstm_forward_step",
    "lstm_forward_step_numpy",
]


# --------------------------------------------------------------------------- the cell's formulas
# One element of one step, written once: the eager kernels below and fg.jit's block kernels
# (``fungrad/jit/backend/kernels_block.py``) both call these. Each caller computes the
# transcendentals its own way (NumPy's SIMD exp/tanh here, the jit's vmath there) and passes
# the activated gates in; ``one`` is 1 in the arrays' dtype (a literal 1 would promote float32
# arithmetic to float64 in Numba).


@numba.njit(cache=True, nogil=True, error_model="numpy")
def lstm_cell(i, f, g, c_prev):
    """The cell update ``c = f * c_prev + i * g`` from the activated gates."""
    return f * c_prev + i * g


@numba.njit(cache=True, nogil=True, error_model="numpy")
def lstm_cell_backward(dh, dc, i, f, g, o, c_prev, tc, one):
    """VJP of one cell element: ``(di, df, dg, do, dc_prev)`` of the gate pre-activations and
    ``c_prev`` from the cotangents ``dh``, ``dc`` of ``h``, ``c``; ``tc`` is ``tanh(c)``."""
    dct = dh * o * (one - tc * tc) + dc
    return (dct * g * i * (one - i), dct * c_prev * f * (one - f), dct * i * (one - g * g),
            dh * tc * o * (one - o), dct * f)


# --------------------------------------------------------------------------- kernels


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _forward_kernel(gates, e, c_prev, acts, c):
    """e holds exp(-|gates|) in the i, f, o columns and tanh(g) in the g columns; write the
    activated gates into acts (which may be gates) and c = f * c_prev + i * g."""
    b_size, hid = c_prev.shape
    one = gates.dtype.type(1)
    for b in range(b_size):
        for j in range(hid):
            for k in (j, hid + j, 3 * hid + j):
                ek = e[b, k]
                acts[b, k] = (one if gates[b, k] >= 0 else ek) / (one + ek)
            acts[b, 2 * hid + j] = e[b, 2 * hid + j]
            c[b, j] = lstm_cell(acts[b, j], acts[b, hid + j], acts[b, 2 * hid + j], c_prev[b, j])


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _backward_kernel(dh, dc, acts, c_prev, tc, dgates, dc_prev):
    b_size, hid = tc.shape
    one = acts.dtype.type(1)
    for b in range(b_size):
        for j in range(hid):
            (dgates[b, j], dgates[b, hid + j], dgates[b, 2 * hid + j], dgates[b, 3 * hid + j],
             dc_prev[b, j]) = lstm_cell_backward(
                dh[b, j], dc[b, j], acts[b, j], acts[b, hid + j], acts[b, 2 * hid + j],
                acts[b, 3 * hid + j], c_prev[b, j], tc[b, j], one)


def _exp_neg_abs(x: np.ndarray) -> np.ndarray:
    """exp(-|x|), in (0, 1] so it cannot overflow, in a new array (two passes in place)."""
    e = np.abs(x)
    np.negative(e, out=e)
    return np.exp(e, out=e)


def _hidden_state(acts: np.ndarray, c: np.ndarray, h: np.ndarray) -> None:
    hid = c.shape[1]
    np.tanh(c, out=h)
    h *= acts[:, 3 * hid:]


# --------------------------------------------------------------------------- entry points


@with_twin("lstm_forward_step_numpy")
def lstm_forward_step(gates, c_prev, acts, c, h) -> None:
    """One LSTM step: activate ``(B, 4H)`` pre-activations into ``acts``, write ``c``, ``h``.

    >>> import numpy as np
    >>> gates, c, h = np.zeros((1, 4)), np.empty((1, 1)), np.empty((1, 1))
    >>> lstm_forward_step(gates, np.ones((1, 1)), gates, c, h)
    >>> h.round(6), c, gates
    (array([[0.231059]]), array([[0.5]]), array([[0.5, 0.5, 0. , 0.5]]))
    """
    hid = c_prev.shape[1]
    e = _exp_neg_abs(gates)
    np.tanh(gates[:, 2 * hid:3 * hid], out=e[:, 2 * hid:3 * hid])
    _forward_kernel(gates, e, c_prev, acts, c)
    _hidden_state(acts, c, h)


def lstm_forward_step_numpy(gates, c_prev, acts, c, h) -> None:
    """NumPy twin of :func:`lstm_forward_step`.

    >>> import numpy as np
    >>> acts, c, h = np.empty((1, 4), np.float32), np.empty((1, 1), np.float32), np.empty((1, 1))
    >>> lstm_forward_step_numpy(np.zeros((1, 4), np.float32), np.ones((1, 1), np.float32),
    ...                         acts, c, h)
    >>> c
    array([[0.5]], dtype=float32)
    """
    hid = c_prev.shape[1]
    e = _exp_neg_abs(gates)
    sig = np.where(gates >= 0, gates.dtype.type(1), e)
    e += 1
    sig /= e
    tg = np.tanh(gates[:, 2 * hid:3 * hid])
    acts[...] = sig  # (gates is read above, before acts may overwrite it)
    acts[:, 2 * hid:3 * hid] = tg
    np.multiply(acts[:, hid:2 * hid], c_prev, out=c)
    c += acts[:, :hid] * tg
    _hidden_state(acts, c, h)


@with_twin("lstm_backward_step_numpy")
def lstm_backward_step(dh, dc, acts, c_prev, tc, dgates, dc_prev) -> None:
    """VJP of one step: from the cotangents ``dh``, ``dc`` of ``h``, ``c`` write ``dgates``
    (of the pre-activations) and ``dc_prev``; ``tc`` is ``tanh(c)``.

    >>> import numpy as np
    >>> acts = np.array([[0.5, 0.5, 0.0, 0.5]])
    >>> dgates, dc_prev = np.empty((1, 4)), np.empty((1, 1))
    >>> lstm_backward_step(np.zeros((1, 1)), np.ones((1, 1)), acts, np.ones((1, 1)),
    ...                    np.tanh([[0.5]]), dgates, dc_prev)
    >>> dgates, dc_prev
    (array([[0.  , 0.25, 0.5 , 0.  ]]), array([[0.5]]))
    """
    _backward_kernel(dh, dc, acts, c_prev, tc, dgates, dc_prev)


def lstm_backward_step_numpy(dh, dc, acts, c_prev, tc, dgates, dc_prev) -> None:
    """NumPy twin of :func:`lstm_backward_step`.

    >>> import numpy as np
    >>> dgates, dc_prev = np.empty((1, 4)), np.empty((1, 1))
    >>> lstm_backward_step_numpy(np.ones((1, 1)), np.zeros((1, 1)), np.full((1, 4), 0.5),
    ...                          np.ones((1, 1)), np.zeros((1, 1)), dgates, dc_prev)
    >>> dgates
    array([[0.0625, 0.125 , 0.1875, 0.    ]])
    """
    hid = tc.shape[1]
    i, f, g, o = (acts[:, k * hid:(k + 1) * hid] for k in range(4))
    dct = dh * o
    dct *= 1 - tc * tc
    dct += dc
    dgates[:, :hid] = dct * g * i * (1 - i)
    dgates[:, hid:2 * hid] = dct * c_prev * f * (1 - f)
    dgates[:, 2 * hid:3 * hid] = dct * i * (1 - g * g)
    dgates[:, 3 * hid:] = dh * tc * o * (1 - o)
    np.multiply(dct, f, out=dc_prev)
