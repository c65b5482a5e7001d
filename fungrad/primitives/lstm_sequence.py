"""A whole LSTM layer's recurrence as one op, for speed (what ``nn.LSTM`` runs).

``lstm_sequence(xp, w_hh, h0, c0)`` takes the input projections of every step at once,
``xp = x @ W_ih + b`` of shape ``(T, B, 4H)`` (one GEMM over all steps, done by the caller
with ``affine``), the recurrent weights ``w_hh`` ``(H, 4H)`` and the initial state ``h0``,
``c0`` ``(B, H)``. Per step ``t``, with gates in the order ``[i, f, g, o]``::

    gates = xp[t] + h @ w_hh;  i, f, o = sigmoid(...);  g = tanh(...)
    c = f * c + i * g;         h = o * tanh(c)

It returns three arrays: ``hs`` and ``cs`` ``(T, B, H)``, the hidden and cell state after
every step, and ``acts`` ``(T, B, 4H)``, the activated gates, which the backward pass reads
instead of recomputing them (as PyTorch's fused LSTM keeps a workspace). Its VJP is the op
``lstm_sequence_grad`` (the recurrence backwards, one kernel call and one small GEMM per
step) followed by ``w_hh``'s gradient as a single GEMM over all steps; the projection's
weight gradients are single GEMMs in ``affine``'s VJP. Second derivatives come from a
composite reference of the backward recurrence written in ops (:func:`sequence_grad_reference`).

>>> import numpy as np, fungrad as fg
>>> hs, cs, acts = fg.lstm_sequence(np.zeros((2, 1, 4)), np.zeros((1, 4)), np.zeros((1, 1)),
...                                 np.ones((1, 1)))
>>> cs.ravel().tolist()  # c = 0.5 * c_prev + 0.5 * tanh(0) at each step
[0.5, 0.25]
"""

from __future__ import annotations

import numpy as np

from .batch_rules import batch_size, materialize, move_axis, ndim_of
from ..domains import Domain, Real
from ..errors import ShapeError
from ..registry import defop, unwrap
from .elementwise import tanh
from .recurrent import _kernel_arrays
from .shape import broadcast_to, concatenate, expand_dims, reshape, shape_of, stack, transpose

__all__ = ["lstm_sequence", "lstm_sequence_grad", "sequence_grad_reference"]


def _sizes(op: str, xp_shape, w_shape, *state_shapes) -> tuple[int, int, int]:
    """(T, B, H), checked: xp (T, B, 4H) with T >= 1, w_hh (H, 4H), states (B, H)."""
    if len(xp_shape) != 3 or xp_shape[2] % 4 or xp_shape[0] < 1:
        raise ShapeError(f"{op}: the input projections must have shape (T, B, 4H) with T >= 1, "
                         f"got {tuple(xp_shape)}")
    t, b, hid = xp_shape[0], xp_shape[1], xp_shape[2] // 4
    if tuple(w_shape) != (hid, 4 * hid):
        raise ShapeError(f"{op}: w_hh must have shape (H, 4H) = {(hid, 4 * hid)} for input "
                         f"projections of shape {tuple(xp_shape)}, got {tuple(w_shape)}")
    for s in state_shapes:
        if tuple(s) != (b, hid):
            raise ShapeError(f"{op}: the states h0 and c0 must have shape (B, H) = {(b, hid)} "
                             f"for input projections of shape {tuple(xp_shape)}, got "
                             f"{tuple(s)}")
    return t, b, hid


def _lstm_sequence(xp, w_hh, h0, c0):
    from ..kernels import recurrent  # noqa: PLC0415 (lazy Numba)

    t_len, b, hid = _sizes("lstm_sequence", np.shape(xp), np.shape(w_hh), np.shape(h0),
                           np.shape(c0))
    xp, w_hh, h, c = _kernel_arrays("lstm_sequence", xp, w_hh, h0, c0)
    hs = np.empty((t_len, b, hid), xp.dtype)
    cs = np.empty_like(hs)
    acts = np.empty_like(xp)
    for t in range(t_len):
        a = acts[t]
        np.matmul(h, w_hh, out=a)
        a += xp[t]
        recurrent.lstm_forward_step(a, c, a, cs[t], hs[t])
        h, c = hs[t], cs[t]
    return hs, cs, acts


def _lstm_sequence_vjp(g, out, xp, w_hh, h0, c0):
    hs, cs, acts = out
    t_len, b, hid = shape_of(hs)
    zero = np.zeros((), dtype=unwrap(hs).dtype)  # (dtype only: hs may be traced by fg.jit)
    gs = [zero if gi is None else gi for gi in g]
    dxp, dh0, dc0 = lstm_sequence_grad(*gs, cs, acts, c0, w_hh)
    h_prev = concatenate([reshape(h0, (1, b, hid)), hs[:-1]], axis=0)
    dw_hh = transpose(reshape(h_prev, (t_len * b, hid))) @ reshape(dxp, (t_len * b, 4 * hid))
    return dxp, dw_hh, dh0, dc0


def _cotangent(op: str, g, shape: tuple, dtype):
    """A cotangent given in full, or as a 0-d array broadcast over ``shape`` (None for 0)."""
    g = np.asarray(g)
    if g.ndim == 0:
        return np.full(shape, g, dtype) if g else None
    if g.shape != shape:
        raise ShapeError(f"{op}: a cotangent of shape {g.shape} for an output of shape {shape}")
    return np.ascontiguousarray(g, dtype=dtype)


def _gate_derivatives(acts):
    """d act / d pre-activation from the activations: a (1 - a), and 1 - a^2 for g."""
    hid = acts.shape[-1] // 4
    d = acts * (1 - acts)
    g = acts[..., 2 * hid:3 * hid]
    d[..., 2 * hid:3 * hid] = 1 - g * g
    return d


def _lstm_sequence_grad(g_hs, g_cs, g_acts, cs, acts, c0, w_hh):
    from ..kernels import recurrent  # noqa: PLC0415

    op = "lstm_sequence_grad"
    t_len, b, hid = _sizes(op, np.shape(acts), np.shape(w_hh), np.shape(c0), np.shape(cs)[1:])
    if np.shape(cs)[0] != t_len:
        raise ShapeError(f"{op}: cs of shape {np.shape(cs)} for acts of shape {np.shape(acts)}")
    cs, acts, c0, w_hh = _kernel_arrays(op, cs, acts, c0, w_hh)
    dt = cs.dtype
    g_hs, g_cs = (_cotangent(op, x, cs.shape, dt) for x in (g_hs, g_cs))
    g_acts = _cotangent(op, g_acts, acts.shape, dt)
    dxp = np.empty_like(acts)
    dh, dc, dc_prev = (np.zeros((b, hid), dt) for _ in range(3))
    tcs = np.tanh(cs)
    w_t = np.ascontiguousarray(w_hh.T)
    for t in range(t_len - 1, -1, -1):
        if g_hs is not None:
            dh += g_hs[t]
        if g_cs is not None:
            dc += g_cs[t]
        recurrent.lstm_backward_step(dh, dc, acts[t], cs[t - 1] if t else c0, tcs[t], dxp[t],
                                     dc_prev)
        if g_acts is not None:
            dxp[t] += g_acts[t] * _gate_derivatives(acts[t])
        np.matmul(dxp[t], w_t, out=dh)
        dc, dc_prev = dc_prev, dc
    return dxp, dh, dc


def _step_of(g, t: int):
    return g if len(shape_of(g)) == 0 else g[t]


def sequence_grad_reference(g_hs, g_cs, g_acts, cs, acts, c0, w_hh):
    """The backward recurrence of ``lstm_sequence`` composed from registered ops: the
    definition ``lstm_sequence_grad`` must match (cotangents may be 0-d, broadcast).

    >>> import numpy as np, fungrad as fg
    >>> args = [np.full(s, 0.5) for s in [(2, 1, 1)] * 2 + [(2, 1, 4), (2, 1, 1), (2, 1, 4),
    ...                                                     (1, 1), (1, 4)]]
    >>> fused, ref = fg.primitives.lstm_sequence_grad(*args), sequence_grad_reference(*args)
    >>> all(np.allclose(a, b) for a, b in zip(fused, ref))
    True
    """
    t_len, _, hid = shape_of(cs)
    dh = dc = 0.0
    dgates = []
    for t in range(t_len - 1, -1, -1):
        a = acts[t]
        i, f, g, o = (a[:, k * hid:(k + 1) * hid] for k in range(4))
        tc = tanh(cs[t])
        dh = dh + _step_of(g_hs, t)
        dct = dh * o * (1 - tc * tc) + dc + _step_of(g_cs, t)
        d_act = concatenate([dct * g, dct * (cs[t - 1] if t else c0), dct * i, dh * tc],
                            axis=-1) + _step_of(g_acts, t)
        deriv = concatenate([i * (1 - i), f * (1 - f), 1 - g * g, o * (1 - o)], axis=-1)
        dgates.append(d_act * deriv)
        dc = dct * f
        dh = dgates[-1] @ transpose(w_hh)
    return stack(dgates[::-1]), dh, dc


# -- batching: the examples become more sequences of one layer --------------------------------


def _folded(x, d, size: int, time_major: bool):
    """A batched ``(T, B, X)`` (``time_major``) or ``(B, X)`` array as one more set of
    sequences: ``(T, size * B, X)`` or ``(size * B, X)``."""
    if not time_major:
        x = materialize(x, d, size)
        shape = shape_of(x)
        return reshape(x, (size * shape[1],) + shape[2:])
    if d is None:
        x = broadcast_to(expand_dims(x, axis=1), shape=_insert(shape_of(x), 1, size))
    else:
        x = move_axis(x, d, 1)
    shape = shape_of(x)
    return reshape(x, (shape[0], size * shape[2]) + shape[3:])


def _insert(shape: tuple, pos: int, n: int) -> tuple:
    return shape[:pos] + (n,) + shape[pos:]


def _unfolded(x, size: int, time_major: bool):
    shape = shape_of(x)
    if time_major:
        return reshape(x, (shape[0], size, shape[1] // size) + shape[2:])
    return reshape(x, (size, shape[0] // size) + shape[1:])


def _lstm_sequence_batch(op, args, dims):
    (xp, w_hh, h0, c0), (dx, dw, dh, dc) = args, dims
    if dw is not None:  # a layer per example: fg.vmap runs the op once per example
        return NotImplemented
    size = batch_size(args, dims)
    outs = lstm_sequence(_folded(xp, dx, size, True), w_hh, _folded(h0, dh, size, False),
                         _folded(c0, dc, size, False))
    return tuple(_unfolded(o, size, True) for o in outs), 1


def _lstm_sequence_grad_batch(op, args, dims):
    if dims[-1] is not None:  # a layer per example: once per example, as above
        return NotImplemented
    size = batch_size(args, dims)
    folded = []
    for k, (x, d) in enumerate(zip(args[:-1], dims[:-1])):
        if k < 3 and d is not None and ndim_of(x) == 1:  # a 0-d cotangent per example:
            like = 3 if k < 2 else 4  # broadcast to the shape of cs (or acts) first
            x = broadcast_to(reshape(x, (size,) + (1,) * 3),
                             shape=(size,) + _example_shape(args[like], dims[like]))
            d = 0
        folded.append(x if k < 3 and d is None and ndim_of(x) == 0
                      else _folded(x, d, size, time_major=k != 5))
    dxp, dh, dc = lstm_sequence_grad(*folded, args[-1])
    return (_unfolded(dxp, size, True), _unfolded(dh, size, False),
            _unfolded(dc, size, False)), (1, 0, 0)


def _example_shape(x, d) -> tuple:
    shape = shape_of(x)
    return shape if d is None else shape[:d] + shape[d + 1:]


lstm_sequence = defop(
    "lstm_sequence", _lstm_sequence, _lstm_sequence_vjp,
    Domain((Real(),) * 4, [((3, 2, 8), (2, 8), (2, 2), (2, 2)),
                           ((1, 3, 4), (1, 4), (3, 1), (3, 1))]),
    n_outputs=3,
    doc="An LSTM layer's recurrence: projections xp (T, B, 4H) as [i, f, g, o], w_hh (H, 4H), "
        "h0 and c0 (B, H) give hs, cs (T, B, H) and the activated gates (T, B, 4H).",
    batch=_lstm_sequence_batch,
)

lstm_sequence_grad = defop(  # fused for speed; its derivatives come from the reference
    "lstm_sequence_grad", _lstm_sequence_grad, None, reference=sequence_grad_reference,
    domain=Domain((Real(),) * 7, [
        ((2, 2, 2), (2, 2, 2), (2, 2, 8), (2, 2, 2), (2, 2, 8), (2, 2), (2, 8)),
        ((3, 1, 1), (), (), (3, 1, 1), (3, 1, 4), (1, 1), (1, 4)),
    ]),
    n_outputs=3,
    doc="The backward recurrence of lstm_sequence: from the cotangents of hs, cs and acts "
        "(each full or 0-d, broadcast) give d xp, d h0 and d c0.",
    batch=_lstm_sequence_grad_batch,
)
