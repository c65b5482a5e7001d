"""LSTM cell gate math, fused: activations, cell update and their backward in one pass.

Gate pre-activations come as one ``(B, 4H)`` array (``x @ W_x + h @ W_h + b``) in the order
``[i, f, g, o]``::

    i, f, o = sigmoid(...)   g = tanh(...)
    c = f * c_prev + i * g   h = o * tanh(c)

``lstm_gates_forward`` returns ``(h, c, acts)`` where ``acts`` is the ``(B, 4H)`` array of
activated gates ``[i, f, g, o]``; the backward takes ``acts`` and ``c`` back (it recomputes
``tanh(c)``, one tanh per cell, rather than saving a fifth array). ``dh`` or ``dc`` may be
None (no gradient flows into that output), and ``c_prev`` None means a zero initial cell.
Results keep the inputs' float dtype (float32 when all inputs are float32, float64
otherwise). Sigmoid is the overflow-free ``exp(-|x|)`` form.

The transcendentals (``exp``, ``tanh``) are whole-array NumPy calls even on the kernel path:
NumPy's are SIMD, Numba's are scalar libm calls without Intel SVML, and a kernel that called
them per element lost to the twin 3-5x at B=32, H=128. The kernels fuse the arithmetic
between them (sigmoid from ``exp(-|x|)``, the cell update, the whole backward).
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
import numpy as np

from ._dtypes import float_dtype as _float_dtype

__all__ = [
    "lstm_gates_backward",
    "lstm_gates_backward_numpy",
    "lstm_gates_forward",
    "lstm_gates_forward_numpy",
]


def _check(name: str, gates_name: str, gates, **cells):
    """C-contiguous arrays in one float dtype; gates (B, 4H), every cell array (B, H)."""
    gates = np.asarray(gates)
    if gates.ndim != 2 or gates.shape[1] % 4:
        raise ValueError(f"{name}: {gates_name} must have shape (B, 4H), got {gates.shape}")
    b, h = gates.shape[0], gates.shape[1] // 4
    arrays = {}
    for key, a in cells.items():
        a = np.zeros((b, h), gates.dtype) if a is None else np.asarray(a)
        if a.shape != (b, h):
            raise ValueError(
                f"{name}: {key} must have shape (B, H) = {(b, h)} for {gates_name} of shape "
                f"{gates.shape}, got {a.shape}"
            )
        arrays[key] = a
    dtype = _float_dtype(name, gates.dtype, *(a.dtype for a in arrays.values()))
    gates = np.ascontiguousarray(gates, dtype=dtype)
    return gates, [np.ascontiguousarray(a, dtype=dtype) for a in arrays.values()]


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lstm_forward_kernel(gates, acts, c_prev):
    """acts holds exp(-|gates|) in the i, f, o columns and tanh(g) in the g columns; turn
    i, f, o into sigmoids in place and return c = f * c_prev + i * g."""
    b_size, hid = c_prev.shape
    one = gates.dtype.type(1)
    c = np.empty_like(c_prev)
    for b in range(b_size):
        for j in range(hid):
            for k in (j, hid + j, 3 * hid + j):
                e = acts[b, k]
                acts[b, k] = (one if gates[b, k] >= 0 else e) / (one + e)
            c[b, j] = acts[b, hid + j] * c_prev[b, j] + acts[b, j] * acts[b, 2 * hid + j]
    return c


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lstm_backward_kernel(dh, dc, acts, c_prev, tc):
    b_size, hid = tc.shape
    one = acts.dtype.type(1)
    dgates = np.empty_like(acts)
    dc_prev = np.empty_like(tc)
    for b in range(b_size):
        for j in range(hid):
            i = acts[b, j]
            f = acts[b, hid + j]
            g = acts[b, 2 * hid + j]
            o = acts[b, 3 * hid + j]
            t = tc[b, j]
            dct = dh[b, j] * o * (one - t * t) + dc[b, j]
            dgates[b, j] = dct * g * i * (one - i)
            dgates[b, hid + j] = dct * c_prev[b, j] * f * (one - f)
            dgates[b, 2 * hid + j] = dct * i * (one - g * g)
            dgates[b, 3 * hid + j] = dh[b, j] * t * o * (one - o)
            dc_prev[b, j] = dct * f
    return dgates, dc_prev


def _exp_neg_abs(x: np.ndarray) -> np.ndarray:
    """exp(-|x|), in (0, 1] so it cannot overflow, in a new array (two passes in place)."""
    e = np.abs(x)
    np.negative(e, out=e)
    return np.exp(e, out=e)


# --------------------------------------------------------------------------- public wrappers


def lstm_gates_forward(gates, c_prev):
    """Activate ``(B, 4H)`` LSTM gate pre-activations and update the cell.

    Returns ``(h, c, acts)``: new hidden and cell state ``(B, H)`` and the activated gates.

    >>> import numpy as np
    >>> h, c, acts = lstm_gates_forward(np.zeros((1, 4)), np.ones((1, 1)))
    >>> h.round(6), c, acts
    (array([[0.231059]]), array([[0.5]]), array([[0.5, 0.5, 0. , 0.5]]))
    """
    gates, (c_prev,) = _check("lstm_gates_forward", "gates", gates, c_prev=c_prev)
    hid = c_prev.shape[1]
    acts = _exp_neg_abs(gates)
    np.tanh(gates[:, 2 * hid : 3 * hid], out=acts[:, 2 * hid : 3 * hid])
    c = _lstm_forward_kernel(gates, acts, c_prev)
    h = np.tanh(c)
    h *= acts[:, 3 * hid :]
    return h, c, acts


def lstm_gates_forward_numpy(gates, c_prev):
    """NumPy twin of :func:`lstm_gates_forward`.

    >>> import numpy as np
    >>> h, c, acts = lstm_gates_forward_numpy(np.zeros((1, 4), np.float32), np.ones((1, 1)))
    >>> c
    array([[0.5]])
    """
    gates, (c_prev,) = _check("lstm_gates_forward", "gates", gates, c_prev=c_prev)
    hid = c_prev.shape[1]
    e = _exp_neg_abs(gates)
    acts = np.where(gates >= 0, gates.dtype.type(1), e)
    e += 1
    acts /= e  # sigmoid of every gate; g is overwritten next
    np.tanh(gates[:, 2 * hid : 3 * hid], out=acts[:, 2 * hid : 3 * hid])
    i, f, g, o = (acts[:, k * hid : (k + 1) * hid] for k in range(4))
    c = f * c_prev
    c += i * g
    h = np.tanh(c)
    h *= o
    return h, c, acts


def lstm_gates_backward(dh, dc, acts, c_prev, c):
    """VJP of :func:`lstm_gates_forward`: ``(dgates (B, 4H), dc_prev (B, H))``.

    ``dh``/``dc`` are the cotangents of ``h``/``c`` (None for zero).

    >>> import numpy as np
    >>> h, c, acts = lstm_gates_forward(np.zeros((1, 4)), np.ones((1, 1)))
    >>> dgates, dc_prev = lstm_gates_backward(None, np.ones((1, 1)), acts, np.ones((1, 1)), c)
    >>> dgates, dc_prev
    (array([[0.  , 0.25, 0.5 , 0.  ]]), array([[0.5]]))
    """
    acts, (dh, dc, c_prev, c) = _check(
        "lstm_gates_backward", "acts", acts, dh=dh, dc=dc, c_prev=c_prev, c=c
    )
    return _lstm_backward_kernel(dh, dc, acts, c_prev, np.tanh(c))


def lstm_gates_backward_numpy(dh, dc, acts, c_prev, c):
    """NumPy twin of :func:`lstm_gates_backward`.

    >>> import numpy as np
    >>> dgates, dc_prev = lstm_gates_backward_numpy(
    ...     np.ones((1, 1)), None, np.full((1, 4), 0.5), np.ones((1, 1)), np.zeros((1, 1)))
    >>> dgates
    array([[0.0625, 0.125 , 0.1875, 0.    ]])
    """
    acts, (dh, dc, c_prev, c) = _check(
        "lstm_gates_backward", "acts", acts, dh=dh, dc=dc, c_prev=c_prev, c=c
    )
    hid = c.shape[1]
    i, f, g, o = (acts[:, k * hid : (k + 1) * hid] for k in range(4))
    tc = np.tanh(c)
    dct = dh * o
    dct *= 1 - tc * tc
    dct += dc
    dgates = np.empty_like(acts)
    dgates[:, :hid] = dct * g * i * (1 - i)
    dgates[:, hid : 2 * hid] = dct * c_prev * f * (1 - f)
    dgates[:, 2 * hid : 3 * hid] = dct * i * (1 - g * g)
    dgates[:, 3 * hid :] = dh * tc * o * (1 - o)
    return dgates, dct * f
