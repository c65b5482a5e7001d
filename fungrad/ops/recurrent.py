"""A fused LSTM cell update, for speed: one kernel pass instead of a dozen elementwise ops.

``lstm_cell(gates, c_prev)`` takes the pre-activations ``(..., 4H)`` in the order
``[input, forget, candidate, output]`` and the previous cell state ``(..., H)``, and returns
``[h | c]`` as one ``(..., 2H)`` array (ops have one output; slice it). Its VJP is the op
``lstm_cell_grad``, also one kernel pass. Higher derivatives come from the composite definition
(:func:`lstm_cell_reference`, written in ops), so the fused pair stays differentiable to any
order without hand-written second derivatives.

>>> import numpy as np, fungrad as fg
>>> hc = fg.lstm_cell(np.zeros((1, 4)), np.ones((1, 1)))
>>> hc.round(6)  # h = 0.5 * tanh(0.5), c = 0.5 * 1 + 0.5 * tanh(0)
array([[0.231059, 0.5     ]])
"""

from __future__ import annotations

import numpy as np

from ..domains import Domain, Real
from ..errors import ShapeError
from ..registry import defop
from .elementwise import sigmoid, tanh
from .shape import concatenate, shape_of

__all__ = ["lstm_cell", "lstm_cell_grad", "lstm_cell_reference"]


def _hidden(gates, c_prev, op: str = "lstm_cell") -> int:
    gs, cs = np.shape(gates), np.shape(c_prev)
    if len(gs) == 0 or gs[-1] % 4 or gs[:-1] != cs[:-1] or gs[-1] // 4 != cs[-1]:
        raise ShapeError(f"{op}: gates of shape {gs} and cell state of shape {cs} do not fit: "
                         "expected gates (..., 4H) and c_prev (..., H)")
    return cs[-1]


def _rows(a, width):
    a = np.asarray(a)
    return a.reshape(-1, width)


def _lstm_cell(gates, c_prev):
    from ..kernels.recurrent import lstm_gates_forward  # noqa: PLC0415 (lazy Numba)

    hid = _hidden(gates, c_prev)
    h, c, _ = lstm_gates_forward(_rows(gates, 4 * hid), _rows(c_prev, hid))
    return np.concatenate([h, c], axis=-1).reshape(np.shape(gates)[:-1] + (2 * hid,))


def _lstm_cell_grad(g, gates, c_prev):
    from ..kernels.recurrent import lstm_gates_backward, lstm_gates_forward  # noqa: PLC0415

    hid = _hidden(gates, c_prev, "lstm_cell_grad")
    gates2, c_prev2 = _rows(gates, 4 * hid), _rows(c_prev, hid)
    g2 = _rows(g, 2 * hid)
    _, c, acts = lstm_gates_forward(gates2, c_prev2)  # recomputed: ops keep no hidden state
    dgates, dc_prev = lstm_gates_backward(np.ascontiguousarray(g2[:, :hid]),
                                          np.ascontiguousarray(g2[:, hid:]), acts, c_prev2, c)
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


def _reference_grad(g, gates, c_prev):
    from ..functional import vjp  # noqa: PLC0415 (functional imports the ops)

    dgates, dc_prev = vjp(lstm_cell_reference, gates, c_prev)[1](g)
    return concatenate([dgates, dc_prev], axis=-1)


def _lstm_cell_vjp(g, out, gates, c_prev):
    both = lstm_cell_grad(g, gates, c_prev)
    split = 4 * shape_of(c_prev)[-1]
    return both[..., :split], both[..., split:]


def _lstm_cell_grad_vjp(h, out, g, gates, c_prev):
    from ..functional import vjp  # noqa: PLC0415

    return vjp(_reference_grad, g, gates, c_prev)[1](h)


_CASES = [((3, 8), (3, 2)), ((2, 12), (2, 3)), ((2, 2, 4), (2, 2, 1))]

lstm_cell = defop(
    "lstm_cell", _lstm_cell, _lstm_cell_vjp,
    Domain((Real(), Real()), _CASES),
    doc="Fused LSTM update: gates (..., 4H) as [i, f, g, o] and c_prev (..., H) give [h | c].",
)

lstm_cell_grad = defop(
    "lstm_cell_grad", _lstm_cell_grad, _lstm_cell_grad_vjp,
    Domain((Real(), Real(), Real()), [((3, 4), (3, 8), (3, 2)), ((2, 6), (2, 12), (2, 3))]),
    doc="The VJP of lstm_cell: [d gates | d c_prev] for the cotangent g of [h | c].",
)
