"""Lowering rules of the fused neural-network ops: embedding bags (a summing gather, a
scatter), the LSTM sequence (unrolled into matmuls and fused groups), the LSTM cell,
softmax cross-entropy and row softmax (block kernels)."""

from __future__ import annotations

import numpy as np

from ....primitives.shape import normalize_axes
from ...ir import FLOATS, Node, Own, Unsupported
from ...program import Step, Var
from ..lowering import Lowering, registered, rule, view_of
from .linalg import softmax_over

__all__: list[str] = []


def _bag_operands(low: Lowering, idx) -> tuple[Var, int]:
    if type(idx) is not Var or not low.is_array(idx) or idx.dtype != np.dtype(np.int64) \
            or not idx.shape or idx.shape[-1] == 0:
        raise Unsupported("bag indices")
    return low.contiguous_copy(idx), idx.shape[-1]


def _embedding_bag(low: Lowering, step: Step) -> None:
    """A gather that sums each bag's rows as it reads them (then scales, for the mean)."""
    table, out = low.arg(step.inputs[0]), step.outputs[0]
    if type(table) is not Var or not low.is_array(table) or len(table.shape) != 2 \
            or table.dtype not in FLOATS or out.dtype != table.dtype:
        raise Unsupported("bag table")
    idx, length = _bag_operands(low, low.arg(step.inputs[1]))
    table = low.contiguous_copy(table)
    rows, dim = table.shape
    summed = out if step.params.get("mode", "sum") == "sum" else low.new_var(out.shape, out.dtype)
    low.block("gather", (table, idx), summed, out.dtype, count=idx.size, rows=rows, row=dim,
              sum_r=length)
    if summed is not out:
        low.ew("multiply", (summed, 1.0 / length), out, out.dtype)


def _embedding_bag_grad(low: Lowering, step: Step) -> None:
    """Each bag's cotangent row added at every index of the bag: a scatter reading one value
    row per ``length`` indices."""
    g, out = low.arg(step.inputs[0]), step.outputs[0]
    if type(g) is not Var or not low.is_array(g) or g.dtype != out.dtype \
            or out.dtype not in FLOATS or len(out.shape) != 2:
        raise Unsupported("bag cotangent")
    idx, length = _bag_operands(low, low.arg(step.inputs[1]))
    if g.shape != idx.shape[:-1] + out.shape[1:]:
        raise Unsupported("bag shapes")
    if step.params.get("mode", "sum") == "mean":
        scaled = low.new_var(g.shape, g.dtype)
        low.ew("multiply", (g, 1.0 / length), scaled, g.dtype)
        g = scaled
    g = low.contiguous_copy(g)
    dim = out.shape[1]
    low.block("scatter", (g, idx), out, out.dtype, count=idx.size, rows=out.shape[0], row=dim,
              inner=length, vs_out=dim, vs_in=0)


# -- lstm_sequence: the recurrence unrolled into per-step matmuls and fused elementwise groups


class _Seq:
    """Helpers to lower one LSTM recurrence: views of step ``t`` and of gate columns, new
    (B, H) values, and stores into parts of an output buffer."""

    def __init__(self, low: Lowering, dtype, batch: int, hid: int) -> None:
        self.low, self.dt, self.B, self.H = low, np.dtype(dtype), batch, hid

    def view(self, x: Var, shape: tuple, fn) -> Var:
        v = self.low.new_var(shape, x.dtype)
        view_of(self.low, x, v, fn)
        return v

    def step(self, x: Var, t: int) -> Var:
        return self.view(x, x.shape[1:], lambda a: a[t])

    def gate(self, x: Var, k: int) -> Var:
        H = self.H
        return self.view(x, (x.shape[0], H), lambda a: a[:, k * H:(k + 1) * H])

    def ew(self, op: str, *args) -> Var:
        out = self.low.new_var((self.B, self.H), self.dt)
        self.low.ew(op, args, out, self.dt)
        return out

    def store(self, value, root: Var, fn, shape: tuple) -> None:
        target = self.view(root, shape, fn)
        self.low.nodes.append(Node("ew", "copy", (value,), (target,), dtype=self.dt,
                                   params={"into": root}))

    def matmul(self, a: Var, b: Var, out: Var | None = None) -> Var:
        M, K = a.shape
        N = b.shape[1]
        out = out if out is not None else self.low.new_var((M, N), self.dt)
        self.low.block("matmul", (a, b), out, self.dt, M=M, K=K, N=N)
        return out


def _seq_operands(low: Lowering, step: Step, n_arrays: int) -> list:
    args = [low.arg(v) for v in step.inputs]
    for a in args[-n_arrays:]:
        if type(a) is not Var or not low.is_array(a) or a.dtype not in FLOATS:
            raise Unsupported("lstm_sequence operands")
    dt = args[-1].dtype
    if any(type(a) is Var and a.dtype != dt for a in args):
        raise Unsupported("lstm_sequence dtypes")
    return args


def _lstm_sequence(low: Lowering, step: Step) -> None:
    xp, w_hh, h0, c0 = _seq_operands(low, step, 4)
    T, B, H4 = xp.shape
    H = H4 // 4
    if 0 in (T, B, H):
        raise Unsupported("empty")
    hs, cs, acts = step.outputs
    for v in (hs, cs, acts):
        low.storage[v.id] = Own()
    q = _Seq(low, xp.dtype, B, H)
    h_prev, c_prev = h0, c0
    for t in range(T):
        pre = q.matmul(h_prev, w_hh)  # (B, 4H), then + xp[t] in the fused group
        x_t = q.step(xp, t)
        a = [q.ew("add", q.gate(pre, k), q.gate(x_t, k)) for k in range(4)]
        i, f, o = (q.ew("sigmoid", a[k]) for k in (0, 1, 3))
        g = q.ew("tanh", a[2])
        c = q.ew("add", q.ew("multiply", f, c_prev), q.ew("multiply", i, g))
        h = q.ew("multiply", o, q.ew("tanh", c))
        for k, v in enumerate((i, f, g, o)):
            q.store(v, acts, lambda arr, t=t, k=k: arr[t, :, k * H:(k + 1) * H], (B, H))
        q.store(c, cs, lambda arr, t=t: arr[t], (B, H))
        q.store(h, hs, lambda arr, t=t: arr[t], (B, H))
        h_prev, c_prev = q.step(hs, t), q.step(cs, t)


def _lstm_sequence_grad(low: Lowering, step: Step) -> None:
    g_hs, g_cs, g_acts, cs, acts, c0, w_hh = _seq_operands(low, step, 4)
    T, B, H4 = acts.shape
    H = H4 // 4
    if 0 in (T, B, H):
        raise Unsupported("empty")
    grads = []
    for g in (g_hs, g_cs, g_acts):
        if type(g) is not Var:
            if g != 0.0:
                raise Unsupported("a nonzero scalar cotangent")
            grads.append(None)
        elif not low.is_array(g) or g.shape != (acts.shape if g is g_acts else cs.shape):
            raise Unsupported("lstm_sequence_grad cotangents")
        else:
            grads.append(g)
    g_hs, g_cs, g_acts = grads
    dxp, dh_out, dc_out = step.outputs
    low.storage[dxp.id] = Own()
    q = _Seq(low, acts.dtype, B, H)
    w_t = q.view(w_hh, (H4, H), lambda a: a.T)
    one = 1.0
    dh = dc = None
    for t in range(T - 1, -1, -1):
        if g_hs is not None:
            g_t = q.step(g_hs, t)
            dh = g_t if dh is None else q.ew("add", dh, g_t)
        if g_cs is not None:
            g_t = q.step(g_cs, t)
            dc = g_t if dc is None else q.ew("add", dc, g_t)
        a_t = q.step(acts, t)
        i, f, g, o = (q.gate(a_t, k) for k in range(4))
        c_prev = q.step(cs, t - 1) if t else c0
        tc = q.ew("tanh", q.step(cs, t))
        dct = dc
        if dh is not None:
            dtc = q.ew("multiply", q.ew("multiply", dh, o),
                       q.ew("subtract", one, q.ew("multiply", tc, tc)))
            dct = dtc if dct is None else q.ew("add", dtc, dct)
        d = [None] * 4
        if dct is not None:
            d[0] = q.ew("multiply", q.ew("multiply", dct, g),
                        q.ew("multiply", i, q.ew("subtract", one, i)))
            d[1] = q.ew("multiply", q.ew("multiply", dct, c_prev),
                        q.ew("multiply", f, q.ew("subtract", one, f)))
            d[2] = q.ew("multiply", q.ew("multiply", dct, i),
                        q.ew("subtract", one, q.ew("multiply", g, g)))
        if dh is not None:
            d[3] = q.ew("multiply", q.ew("multiply", dh, tc),
                        q.ew("multiply", o, q.ew("subtract", one, o)))
        if g_acts is not None:
            ga = q.step(g_acts, t)
            for k, a in enumerate((i, f, g, o)):
                deriv = (q.ew("subtract", one, q.ew("multiply", a, a)) if k == 2 else
                         q.ew("multiply", a, q.ew("subtract", one, a)))
                extra = q.ew("multiply", q.gate(ga, k), deriv)
                d[k] = extra if d[k] is None else q.ew("add", d[k], extra)
        for k in range(4):
            q.store(0.0 if d[k] is None else d[k], dxp,
                    lambda arr, t=t, k=k: arr[t, :, k * H:(k + 1) * H], (B, H))
        dh = q.matmul(q.step(dxp, t), w_t, dh_out if t == 0 else None)
        dc = None if dct is None else q.ew("multiply", dct, f)
    if dc is None:
        low.block("fill", (), dc_out, dc_out.dtype, value=0.0)
    else:
        low.ew("copy", (dc,), dc_out, dc_out.dtype)


def _xent(low: Lowering, step: Step) -> None:
    logits, targets = low.arg(step.inputs[0]), low.arg(step.inputs[1])
    out = step.outputs[0]
    if not (low.is_array(logits) and low.is_array(targets)) or logits.dtype not in FLOATS:
        raise Unsupported("cross_entropy operands")
    if targets.dtype != np.dtype(np.int64) or out.dtype != logits.dtype:
        raise Unsupported("cross_entropy targets")
    C = logits.shape[-1] if logits.shape else 0
    N = logits.size // C if C else 0
    if targets.size != N or N == 0:
        raise Unsupported("cross_entropy shapes")
    logits = low.contiguous_copy(logits)
    targets = low.contiguous_copy(targets)
    low.block("xent", (logits, targets), out, out.dtype, N=N, C=C)


def _xent_grad(low: Lowering, step: Step) -> None:
    g, logits, targets = (low.arg(x) for x in step.inputs)
    out = step.outputs[0]
    if not all(low.is_array(v) for v in (logits, targets)) or logits.dtype not in FLOATS:
        raise Unsupported("cross_entropy_grad operands")
    if targets.dtype != np.dtype(np.int64) or out.dtype != logits.dtype:
        raise Unsupported("cross_entropy_grad targets")
    if type(g) is Var and low.is_array(g):
        if g.size != 1 or g.dtype != out.dtype:
            raise Unsupported("cross_entropy_grad g")
        g = low.contiguous_copy(g)
    elif low.kind_of(g) != "scalar":
        raise Unsupported("cross_entropy_grad g")
    C = logits.shape[-1]
    N = logits.size // C if C else 0
    if targets.size != N or N == 0:
        raise Unsupported("cross_entropy_grad shapes")
    logits = low.contiguous_copy(logits)
    targets = low.contiguous_copy(targets)
    low.block("xent_grad", (g, logits, targets), out, out.dtype, N=N, C=C)


def _lstm(grad: bool):
    def handle(low: Lowering, step: Step) -> None:
        args = tuple(low.arg(x) for x in step.inputs)
        out = step.outputs[0]
        if not all(low.is_array(v) and v.dtype == out.dtype for v in args):
            raise Unsupported("lstm operands")
        if out.dtype not in FLOATS or any(len(v.shape) != 2 for v in args):
            raise Unsupported("lstm ranks")
        args = tuple(low.contiguous_copy(v) for v in args)
        B, H = args[-1].shape
        low.block("lstm_grad" if grad else "lstm", args, out, out.dtype, B=B, H=H)
    return handle


def _rows(kind: str):
    def handle(low: Lowering, step: Step) -> None:
        x, out = step.inputs[0], step.outputs[0]
        if type(x) is not Var or not low.is_array(x) or x.dtype not in FLOATS or not x.shape:
            raise Unsupported("rows input")
        axis = normalize_axes(kind, step.params.get("axis", -1), len(x.shape))
        if x.size == 0 or out.dtype != x.dtype:
            raise Unsupported("softmax of an empty array or to another dtype")
        if axis != (len(x.shape) - 1,):
            softmax_over(low, kind, x, out, axis)
            return
        x = low.contiguous_copy(x)
        C = x.shape[-1]
        low.block("rows", (x,), out, out.dtype, kind=kind, N=x.size // C, C=C)
    return handle


rule(registered("embedding_bag"))(_embedding_bag)
rule(registered("embedding_bag_grad"))(_embedding_bag_grad)
rule(registered("lstm_sequence"))(_lstm_sequence)
rule(registered("lstm_sequence_grad"))(_lstm_sequence_grad)
rule(registered("cross_entropy"))(_xent)
rule(registered("cross_entropy_grad"))(_xent_grad)
rule(registered("lstm_cell"))(_lstm(False))
rule(registered("lstm_cell_grad"))(_lstm(True))
rule(registered("softmax"))(_rows("softmax"))
rule(registered("log_softmax"))(_rows("log_softmax"))
