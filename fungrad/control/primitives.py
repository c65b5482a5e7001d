"""The loop primitives, ``scan`` and ``while_loop``: their forwards, their VJPs (each a scan,
the other way, over the body's one-step VJP) and their registry stanzas.

A primitive works on flat leaves — the consts, the carry's leaves, then the leaves of ``xs`` —
with the :class:`~._body.Body` as a static parameter. Its forward runs the body in Python on
values (:func:`~._body.pure`: nothing recorded); it saves the carry before each step when the
call is recorded (``save=True``), and a VJP called without them runs the forward again.

``_scan`` and ``_while`` are the reference semantics that a compiled loop must match (the
registry-driven jit suite runs them as Python steps today); :mod:`.loops` turns the users'
calls into these primitives.

Their batching rules (``fg.vmap``, met when a loop's VJP runs under ``jacrev`` or when the
primitive is vmapped directly): a vmapped scan is a scan of the vmapped body, and a vmapped
while_loop steps every example while any example's condition holds, the others keeping their
carry (``where``), as in JAX.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from .. import recording
from ..domains import Domain, Real
from ..errors import DTypeError, ShapeError
from ..batching import batch_size, materialize, move_axis
from ..batching.api import vmap
from ..batching.interpreter import loop_rule
from ..primitives import sin, tanh, where
from ..primitives import sum as _sum
from ..registry import apply, defop, unwrap
from ..tensor import Tensor
from ._body import (
    Body, Reraise, Tree, at_step, aval, check_carry, is_float, pure, step_vjp, value, wrap,
    zeros_like,
)

__all__ = ["scan_op", "while_op"]  # (and call, unwrapped, check_length, truth, condition)


# -- the primitives' forwards -----------------------------------------------------------------


def _scan(*arrays, body: Body, length: int, reverse: bool = False, save: bool = False):
    """The scan primitive on flat leaves: ``body.n_consts`` consts, the carry's leaves, then
    the leaves of ``xs``. Returns the final carry's leaves, the stacked ``y`` leaves and, with
    ``save``, the carry before every step (stacked; leaves the body only adds to left out)."""
    k, n = body.n_consts, body.carry.n
    consts, init, xs = arrays[:k], arrays[k:k + n], arrays[k + n:]
    check_length(body.name, body.x, xs, length)
    carry = [value(c) for c in init]
    ref = [aval(c) for c in carry]
    kept = _kept(body, save)
    saved = [np.empty((length,) + ref[j][0], ref[j][1]) for j in kept]
    ys = None
    step = _Step(body.name)
    with pure():
        wk = [wrap(c) for c in consts]
        with step:
            for t in (range(length - 1, -1, -1) if reverse else range(length)):
                step.t = t
                for buf, j in zip(saved, kept):
                    buf[t] = carry[j]
                c_out, y_out = body.call(wk, [Tensor._make(c) for c in carry],
                                         [Tensor._make(leaf[t, ...]) for leaf in xs])
                carry = check_carry(body.name, body.carry, ref, c_out, t)
                ys = _store(body, ys, y_out, t, length)
        if ys is None:
            ys = [np.empty((0,) + s, d) for s, d in _y_avals(body, wk, carry, xs)]
    return (*_own(carry, arrays), *ys, *saved)


def _while(*arrays, body: Body, cond: Callable, save: bool = False):
    """The while_loop primitive on flat leaves: consts, then the carry's leaves. Returns the
    final carry's leaves and, with ``save``, the carry before every step, stacked: their
    leading length is the trip count."""
    k = body.n_consts
    consts, init = arrays[:k], arrays[k:]
    carry = [value(c) for c in init]
    ref = [aval(c) for c in carry]
    kept = _kept(body, save)
    saved: list = [[] for _ in kept]
    step = _Step(body.name)
    with pure(), step:
        wk = [wrap(c) for c in consts]
        while truth(body.name, cond(body.carry.build([Tensor._make(c) for c in carry]))):
            for lst, j in zip(saved, kept):
                lst.append(carry[j])
            c_out, _ = body.call(wk, [Tensor._make(c) for c in carry], [])
            carry = check_carry(body.name, body.carry, ref, c_out, step.t)
            step.t += 1
    stacked = [np.stack(lst) if lst else np.empty((0,) + ref[j][0], ref[j][1])
               for lst, j in zip(saved, kept)]
    return (*_own(carry, arrays), *stacked)


class _Step:
    """Around a primitive's loop: which step an error in the body came from (as
    :func:`~._body.at_step`, without a context manager per step)."""

    def __init__(self, name: str) -> None:
        self.name, self.t = name, 0

    def __enter__(self) -> "_Step":
        return self

    def __exit__(self, kind, error, tb) -> None:
        if error is not None and isinstance(error, Exception) and not isinstance(error, Reraise):
            where = f"at step {self.t}"
            with at_step(self.name, where):
                raise error


def _kept(body: Body, save: bool) -> list[int]:
    """The carry leaves whose value before each step the forward saves."""
    return [j for j in range(body.carry.n) if save and not body.additive[j]]


def check_length(name: str, x_tree: Tree, xs, length: int) -> None:
    """Every leaf of ``xs`` has a leading axis of ``length``; else a ShapeError naming it."""
    for path, leaf in zip(x_tree.paths, xs):
        shape = np.shape(unwrap(leaf))
        if not shape:
            raise ShapeError(f"{name}: {path} is a 0-d value; every leaf of xs needs a "
                             "leading axis to scan over (one slice per step). A Python list "
                             "is a pytree of separate leaves: pass np.array([...]) for one "
                             "sequence")
        if shape[0] != length:
            raise ShapeError(f"{name}: {path} has leading length {shape[0]} but the loop runs "
                             f"{length} steps; every leaf of xs needs one slice per step")


def _store(body: Body, ys: list | None, y_out: list, t: int, length: int) -> list:
    vals = [value(v) for v in y_out]
    if ys is None:
        ys = [np.empty((length,) + tuple(np.shape(v)), np.asarray(v).dtype) for v in vals]
    for path, buf, v in zip(body.ys.paths, ys, vals):
        if tuple(np.shape(v)) != buf.shape[1:] or np.asarray(v).dtype != buf.dtype:
            raise ShapeError(f"{body.name}: the body's {path} is {np.asarray(v).dtype} of shape "
                             f"{tuple(np.shape(v))} at step {t} but {buf.dtype} of shape "
                             f"{buf.shape[1:]} at the first step; ys are stacked, so each "
                             "keeps its shape and dtype")
        buf[t] = v
    return ys


def _y_avals(body: Body, consts: list, carry: list, xs) -> list:
    """The shapes and dtypes of a step's ``y`` without a step to run (a zero-length loop):
    known from the body, or from running it once on zeros."""
    if body.y_avals is not None:
        return body.y_avals
    dummy = [np.zeros(np.shape(leaf)[1:], np.asarray(unwrap(leaf)).dtype) for leaf in xs]
    with at_step(body.name, "run once on zeros to find the shapes of ys (zero steps)"):
        _, y = body.call(consts, [wrap(c) for c in carry], [wrap(x) for x in dummy])
    return [aval(v) for v in y]


def _own(carry: list, arrays: tuple) -> list:
    """The final carry, with any leaf that is an input (or a view of one) copied."""
    given = {id(a) for a in arrays}
    return [c.copy() if id(c) in given or getattr(c, "base", None) is not None else c
            for c in carry]


def truth(name: str, v: Any) -> bool:
    """What ``cond_fun`` returned, as a Python bool: a boolean scalar, or a DTypeError."""
    return bool(condition(name, v))


def condition(name: str, v: Any) -> Any:
    """What ``cond_fun`` returned, checked to be a boolean scalar (one per example under
    fg.vmap, a traced one under fg.jit), as an array."""
    d = unwrap(v)
    a = d if recording.is_traced(d) else np.asarray(d)
    if a.shape != () or a.dtype != np.bool_:
        raise DTypeError(f"{name}: cond_fun must return a boolean scalar, got {a.dtype} of "
                         f"shape {tuple(a.shape)}")
    return a


# -- the VJPs: each a scan over the body's one-step VJP, the other way -------------------------


def _scan_vjp(g, out, *arrays, body: Body, length: int, reverse: bool = False,
              save: bool = False, needs: tuple):
    k, n, p = body.n_consts, body.carry.n, body.ys.n
    consts, init, xs = arrays[:k], arrays[k:k + n], arrays[k + n:]
    if save:
        saved, g_saved = out[n + p:], g[n + p:]
    else:  # nothing saved (called without recording): run the forward again, saving
        again = call(scan_op, arrays, {"body": body, "length": length, "reverse": reverse,
                                        "save": True})
        saved, g_saved = again[n + p:], (None,) * len(_kept(body, True))
    return _transpose(body, consts, init, xs, out[:n], g[:n], g[n:n + p], saved, g_saved,
                      length, reverse, needs)


def _while_vjp(g, out, *arrays, body: Body, cond: Callable, save: bool = False, needs: tuple):
    k, n = body.n_consts, body.carry.n
    consts, init = arrays[:k], arrays[k:]
    if save:
        saved, g_saved = out[n:], g[n:]
    else:
        again = call(while_op, arrays, {"body": body, "cond": cond, "save": True})
        saved, g_saved = again[n:], (None,) * len(_kept(body, True))
    length = np.shape(unwrap(saved[0]))[0] if saved else 0
    return _transpose(body, consts, init, (), out[:n], g[:n], (), saved, g_saved, length,
                      False, needs)


def _transpose(body: Body, consts, init, xs, out_carry, g_carry, g_ys, saved, g_saved,
               length: int, reverse: bool, needs: tuple) -> list:
    """The VJP of a loop of ``length`` steps of ``body``: a scan running the other way whose
    carry is the cotangent of the carry (one leaf per float carry leaf) and the gradients of
    the consts summed so far, and whose ``xs`` are the saved carries, ``xs`` and the
    cotangents of ``ys`` and of the saved carries; each step is :func:`step_vjp` at the saved
    carry, and the stacked cotangents of ``xs`` are its ``ys``."""
    k, n, m = len(consts), len(init), len(xs)
    kept = _kept(body, True)
    floats = [j for j in range(n) if is_float(out_carry[j])]
    k_at = [i for i in range(k) if needs[i] and is_float(consts[i])]
    x_at = [i for i in range(m) if needs[k + n + i] and is_float(xs[i])]
    gy_at = [q for q, gq in enumerate(g_ys) if gq is not None]
    gs_at = [r for r, gr in enumerate(g_saved) if gr is not None]
    a0 = [g_carry[j] if g_carry[j] is not None else zeros_like(out_carry[j]) for j in floats]
    acc0 = [zeros_like(consts[i]) for i in k_at]
    x_avals = [(np.shape(unwrap(xs[i]))[1:], np.dtype(unwrap(xs[i]).dtype)) for i in x_at]
    unsaved = {j: aval(out_carry[j]) for j in range(n) if j not in kept}
    step = _TransposedStep(body, kept, unsaved, floats, k_at, x_at, gy_at, gs_at, m, len(g_ys))
    tbody = Body(body.name, step, Tree.flat_list(len(floats) + len(k_at), "carry"),
                 Tree.flat_list(len(kept) + m + len(gy_at) + len(gs_at), "x"),
                 n_consts=k, captured=body.captured, y=Tree.flat_list(len(x_at), "y"),
                 additive=[False] * len(floats) + [True] * len(k_at), y_avals=x_avals)
    rxs = [*saved, *xs, *(g_ys[q] for q in gy_at), *(g_saved[r] for r in gs_at)]
    outs = call(scan_op, [*consts, *a0, *acc0, *rxs],
                 {"body": tbody, "length": length, "reverse": not reverse,
                  "save": recording.thread.enabled})  # recorded (create_graph): it is differentiated
    cots: list = [None] * (k + n + m)
    a_end, acc_end = outs[:len(floats)], outs[len(floats):len(floats) + len(k_at)]
    dxs = outs[len(floats) + len(k_at):]
    for i, c in zip(k_at, acc_end):
        cots[i] = c
    for j, c in zip(floats, a_end):
        if needs[k + j]:
            cots[k + j] = c
    for i, c in zip(x_at, dxs):
        cots[k + n + i] = c
    return cots


class _TransposedStep:
    """One step of a loop's VJP: ``(carry cotangent, const gradients so far), (saved carry, x,
    y cotangent, saved-carry cotangent) -> (carry cotangent before the step, const gradients),
    x cotangent``. A class rather than a closure so that it reads as what it holds."""

    def __init__(self, body, kept, unsaved, floats, k_at, x_at, gy_at, gs_at, m, p):
        self.body, self.kept, self.unsaved = body, kept, unsaved
        self.floats, self.k_at, self.x_at, self.gy_at, self.gs_at = floats, k_at, x_at, gy_at, gs_at
        self.m, self.p = m, p
        self.slot = {j: s for s, j in enumerate(kept)}
        self.g_saved_of = {kept[r]: i for i, r in enumerate(gs_at)}
        self.const_needs = [i in set(k_at) for i in range(body.n_consts)]
        self.x_needs = [i in set(x_at) for i in range(m)]

    def __call__(self, consts, carry, x):
        nf, nk, s, m = len(self.floats), len(self.k_at), len(self.kept), self.m
        a, acc = carry[:nf], carry[nf:nf + nk]
        saved_t, x_t = x[:s], x[s:s + m]
        gy, gs = x[s + m:s + m + len(self.gy_at)], x[s + m + len(self.gy_at):]
        c_t = [saved_t[self.slot[j]] if j in self.slot else np.zeros(*self.unsaved[j])
               for j in range(self.body.carry.n)]
        ct_carry: list = [None] * self.body.carry.n
        for i, j in enumerate(self.floats):
            ct_carry[j] = a[i]
        ct_y: list = [None] * self.p
        for q, v in zip(self.gy_at, gy):
            ct_y[q] = v
        d_k, d_c, d_x = step_vjp(self.body, consts, c_t, x_t, ct_carry, ct_y,
                                 self.const_needs, self.x_needs)
        new_a = []
        for i, j in enumerate(self.floats):
            d = d_c[j] if d_c[j] is not None else zeros_like(a[i])
            if j in self.g_saved_of:  # the saved carry is the carry before this step
                d = d + gs[self.g_saved_of[j]]
            new_a.append(d)
        new_acc = [acc[s_] + d_k[i] if d_k[i] is not None else acc[s_]
                   for s_, i in enumerate(self.k_at)]
        dx = [d_x[i] if d_x[i] is not None else zeros_like(x_t[i]) for i in self.x_at]
        return new_a + new_acc, dx


def call(op, args, params: dict):
    """``apply`` the loop op; an exception the user's body raised comes out as itself."""
    with unwrapped():
        return apply(op, tuple(args), params)


@contextlib.contextmanager
def unwrapped() -> Iterator[None]:
    """An exception the body raised (carried as :class:`~._body.Reraise`) comes out as
    itself."""
    try:
        yield
    except Reraise as r:
        raise r.error from None


# -- batching rules (fg.vmap): a loop of the batched body --------------------------------------


def _scan_batch(op, args, dims, *, body: Body, length: int, reverse: bool = False,
                save: bool = False):
    """vmap of a scan is a scan of the vmapped body: the carry batched along axis 0 (a shared
    init broadcast), batched ``xs`` along axis 1 (their leading axis stays the steps'), the
    consts as they are; the ys and saved carries come out batched along axis 1."""
    k, n = body.n_consts, body.carry.n
    if body.captured is not None and any(d is not None for d in dims[:k]):
        return loop_rule(op, args, dims, body=body, length=length, reverse=reverse, save=save)
    size = batch_size(args, dims)
    carry = [materialize(a, d, size) for a, d in zip(args[k:k + n], dims[k:k + n])]
    xs = [a if d is None else move_axis(a, d, 1) for a, d in zip(args[k + n:], dims[k + n:])]
    x_dims = [None if d is None else 0 for d in dims[k + n:]]
    vbody = _vmapped(body, dims[:k], x_dims, size)
    outs = call(scan_op, [*args[:k], *carry, *xs],
                {"body": vbody, "length": length, "reverse": reverse, "save": save})
    return tuple(outs), (0,) * n + (1,) * (len(outs) - n)


def _while_batch(op, args, dims, *, body: Body, cond: Callable, save: bool = False):
    """vmap of a while_loop: every example's carry steps while any example's condition holds;
    those whose condition is false keep their carry (``where``), as JAX does."""
    k, n = body.n_consts, body.carry.n
    if body.captured is not None and any(d is not None for d in dims[:k]):
        return loop_rule(op, args, dims, body=body, cond=cond, save=save)
    size = batch_size(args, dims)
    carry = [materialize(a, d, size) for a, d in zip(args[k:], dims[k:])]
    in_axes = (list(dims[:k]), [0] * n)
    going = vmap(lambda consts, c: cond(body.carry.build(c)), in_axes=in_axes)

    def step(consts, c):
        c2, _ = body.call(consts, c, [])
        return [where(cond(body.carry.build(c)), new, old) for new, old in zip(c2, c)]

    stepped = vmap(step, in_axes=in_axes)
    consts = list(args[:k])
    vbody = Body(body.name, lambda consts, c, x: (stepped(list(consts), list(c)), None),
                 Tree.flat_list(n, "carry"), body.x, n_consts=k, captured=body.captured,
                 additive=body.additive)
    outs = call(while_op, [*consts, *carry],
                {"body": vbody, "save": save,
                 "cond": lambda c: np.any(value(going(consts, list(c))))})
    return tuple(outs), (0,) * n + (1,) * (len(outs) - n)


def _vmapped(body: Body, const_dims, x_dims, size: int) -> Body:
    """``body`` on a batch: carry leaves batched along axis 0, x leaves as ``x_dims``."""
    n = body.carry.n

    def step(consts, c, x):
        return body.call(consts, c, x)

    batched = vmap(step, in_axes=(list(const_dims), [0] * n, list(x_dims)))
    y_avals = None if body.y_avals is None else [((size,) + s, d) for s, d in body.y_avals]
    return Body(body.name, lambda consts, c, x: tuple(batched(list(consts), list(c), list(x))),
                Tree.flat_list(n, "carry"), Tree.flat_list(len(x_dims), "xs"),
                n_consts=body.n_consts, captured=body.captured, y=body.y and
                Tree.flat_list(body.ys.n, "y"), additive=body.additive, y_avals=y_avals)


# -- the registry stanzas: the primitives, with bodies to test them on ------------------------


def _rnn_step(consts, h, x):
    w, b = consts
    h = tanh(h * w + x + b)
    return h, sin(h) * x


def _pair_step(consts, carry, x):
    (w,) = consts
    h, s = carry
    h2 = tanh(h * w) + 0.5 * h
    return (h2, s + _sum(h2 * h)), None


def _count_step(consts, carry, x):
    (w,) = consts
    s, h = carry
    return (s + 1.0, tanh(h * w + s)), None


def _below(carry):
    return carry[0] < 2.5  # s starts in [-0.4, 0.4]: three steps, whatever the draw


_ONE = Tree.of(0.0, "carry")[1]
_X = Tree.of(0.0, "xs")[1]
_NONE = Tree.of(None, "xs")[1]

scan_op = defop(
    "scan", _scan, _scan_vjp,
    Domain((Real(-1.0, 1.0),), [
        (((2,), (2,), (2,), (3, 2)),
         {"body": Body("scan", _rnn_step, _ONE, _X, n_consts=2), "length": 3}),
        (((2,), (2,), (2,), (3, 2)),
         {"body": Body("scan", _rnn_step, _ONE, _X, n_consts=2), "length": 3, "reverse": True,
          "save": True}),
        (((2,), (2,), ()),
         {"body": Body("scan", _pair_step, Tree.of((0.0, 0.0), "carry")[1], _NONE,
                       n_consts=1), "length": 2, "save": True}),
    ]),
    n_outputs=None, pass_needs=True, batch=_scan_batch,
    doc="""The scan primitive behind fg.scan, on flat leaves: consts, init, xs (see
    fungrad.control.loops). Call fg.scan(f, init, xs) rather than this.""",
)

while_op = defop(
    "while_loop", _while, _while_vjp,
    Domain((Real(-1.0, 1.0), Real(-0.4, 0.4), Real(-1.0, 1.0)), [
        (((2,), (), (2,)),
         {"body": Body("while_loop", _count_step, Tree.of((0.0, 0.0), "carry")[1], _NONE,
                       n_consts=1), "cond": _below, "save": True}),
        (((2,), (), (2,)),
         {"body": Body("while_loop", _count_step, Tree.of((0.0, 0.0), "carry")[1], _NONE,
                       n_consts=1), "cond": _below}),
    ]),
    n_outputs=None, pass_needs=True, batch=_while_batch,
    doc="""The while_loop primitive behind fg.while_loop, on flat leaves: consts, init (see
    fungrad.control.loops). Call fg.while_loop(cond_fun, body_fun, init_val) rather than
    this.""",
)
