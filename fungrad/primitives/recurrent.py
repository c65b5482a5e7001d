"""Fused LSTM ops, for speed: the gate math of a step in one kernel pass, not a dozen ops.

``lstm_cell(gates, c_prev)`` is one step: it takes the pre-activations ``(..., 4H)`` in the
order ``[input, forget, candidate, output]`` and the previous cell state ``(..., H)``, and
returns ``[h | c]`` as one ``(..., 2H)`` array. ``lstm_sequence`` (in
:mod:`fungrad.primitives.lstm_sequence`) runs a whole sequence. Each VJP is a registered ``*_grad``
op on the same kernels; higher derivatives come from the composite definition
(:func:`lstm_cell_reference`, written in ops), so the fused pair stays differentiable to any
order without hand-written second derivatives.

>>> import numpy as np, fungrad as fg
>>> hc = fg.lstm_cell(np.zeros((1, 4)), np.ones((1, 1)))
>>> hc.round(6)  # h = 0.5 * tanh(0.5), c = 0.5 * 1 + 0.5 * tanh(0)
array([[0.231059, 0.5     ]])
"""

from __future__ import annotations

import numpy as np

from .batch_rules import leading
from ..domains import Domain, Real
from ..errors import ShapeError
from ..kernels._dtypes import float_dtype
from ..registry import defop
from .elementwise import sigmoid, tanh
from .shape import concatenate, shape_of

__all__ = ["lstm_cell", "lstm_cell_grad", "lstm_cell_reference", "lstm_cell_grad_reference"]


def _hidden(gates, c_prev, op: str = "lstm_cell") -> int:
    gs, cs = np.shape(gates), np.shape(c_prev)
    if len(gs) == 0 or gs[-1] % 4 or gs[:-1] != cs[:-1] or gs[-1] // 4 != cs[-1]:
        raise ShapeError(f"{op}: gates of shape {gs} and cell state of shape {cs} do not fit: "
                         "expected gates (..., 4H) and c_prev (..., H)")
    return cs[-1]


def _kernel_arrays(op: str, *arrays) -> list:
    """The arrays C-contiguous in their common computing dtype (float32 if all are float32,
    else float64): the layout the recurrent kernels trust."""
    dtype = float_dtype(op, *(np.asarray(a).dtype for a in arrays))
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def _step(gates2, c_prev2):
    """``(acts, c, h)`` of one step on (B, 4H) / (B, H) kernel arrays."""
    from ..kernels import recurrent  # noqa: PLC0415 (lazy Numba)

    acts = np.empty_like(gates2)
    c, h = np.empty_like(c_prev2), np.empty_like(c_prev2)
    recurrent.lstm_forward_step(gates2, c_prev2, acts, c, h)
    return acts, c, h


def _lstm_cell(gates, c_prev):
    hid = _hidden(gates, c_prev)
    gates2, c_prev2 = _kernel_arrays("lstm_cell", np.reshape(gates, (-1, 4 * hid)),
                                    np.reshape(c_prev, (-1, hid)))
    _, c, h = _step(gates2, c_prev2)
    return np.concatenate([h, c], axis=-1).reshape(np.shape(gates)[:-1] + (2 * hid,))


def _lstm_cell_grad(g, gates, c_prev):
    from ..kernels import recurrent  # noqa: PLC0415

    hid = _hidden(gates, c_prev, "lstm_cell_grad")
    g2, gates2, c_prev2 = _kernel_arrays("lstm_cell_grad", np.reshape(g, (-1, 2 * hid)),
                                        np.reshape(gates, (-1, 4 * hid)),
                                        np.reshape(c_prev, (-1, hid)))
    acts, c, _ = _step(gates2, c_prev2)  # recomputed: ops keep no hidden state
    dgates, dc_prev = np.empty_like(acts), np.empty_like(c)
    recurrent.lstm_backward_step(np.ascontiguousarray(g2[:, :hid]),
                                 np.ascontiguousarray(g2[:, hid:]), acts, c_prev2, np.tanh(c),
                                 dgates, dc_prev)
    return np.concatenate([dgates, dc_prev], axis=-1).reshape(
        np.shape(gates)[:-1] + (5 * hid,))


def lstm_cell_reference(gates, c_prev):
    """The same cell composed from registered ops: the definition the fused op must match."""
    hid = shape_of(c_prev)[-1]
    i = sigmoid(gates[..., :hid])
    f = sigmoid(gates[..., hid:2 * hid])
    cand = tanh(gates[..., 2 * hid:3 * hid])
    o = sigmoid(gates[..., 3 * hid:])
    c = f * c_prev + i * cand
    return concatenate([o * tanh(c), c], axis=-1)


def lstm_cell_grad_reference(g, gates, c_prev):
    """The VJP of :func:`lstm_cell_reference` composed from registered ops, written out: the
    definition the fused ``lstm_cell_grad`` must match, and what its derivatives come from.

    >>> import numpy as np, fungrad as fg
    >>> rng = np.random.default_rng(0)
    >>> g, gates, c = rng.normal(size=(2, 4)), rng.normal(size=(2, 8)), rng.normal(size=(2, 2))
    >>> np.allclose(fg.primitives.lstm_cell_grad(g, gates, c), lstm_cell_grad_reference(g, gates, c))
    True
    """
    hid = shape_of(c_prev)[-1]
    i = sigmoid(gates[..., :hid])
    f = sigmoid(gates[..., hid:2 * hid])
    cand = tanh(gates[..., 2 * hid:3 * hid])
    o = sigmoid(gates[..., 3 * hid:])
    tc = tanh(f * c_prev + i * cand)
    gh = g[..., :hid]
    dc = g[..., hid:] + gh * o * (1 - tc * tc)
    dgates = concatenate([dc * cand * i * (1 - i), dc * c_prev * f * (1 - f),
                          dc * i * (1 - cand * cand), gh * tc * o * (1 - o)], axis=-1)
    return concatenate([dgates, dc * f], axis=-1)


def _lstm_cell_vjp(g, out, gates, c_prev):
    both = lstm_cell_grad(g, gates, c_prev)
    split = 4 * shape_of(c_prev)[-1]
    return both[..., :split], both[..., split:]


_CASES = [((3, 8), (3, 2)), ((2, 12), (2, 3)), ((2, 2, 4), (2, 2, 1))]

lstm_cell = defop(
    "lstm_cell", _lstm_cell, _lstm_cell_vjp,
    Domain((Real(), Real()), _CASES),
    doc="Fused LSTM update: gates (..., 4H) as [i, f, g, o] and c_prev (..., H) give [h | c].",
    batch=leading,
)

lstm_cell_grad = defop(  # fused for speed; its derivatives come from the reference
    "lstm_cell_grad", _lstm_cell_grad, None, reference=lstm_cell_grad_reference,
    domain=Domain((Real(),) * 3, [((3, 4), (3, 8), (3, 2)), ((2, 6), (2, 12), (2, 3))]),
    doc="The VJP of lstm_cell: [d gates | d c_prev] for the cotangent g of [h | c].",
    batch=leading,
)
