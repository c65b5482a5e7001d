"""Structured loops — ``fg.scan``, ``fg.fori_loop``, ``fg.while_loop`` — as primitives that
carry a traced body.

Each loop is one op of the registry (``scan`` and ``while_loop``; ``fori_loop`` with concrete
bounds is a scan), recorded as one node however many steps it runs. Its forward runs the body
in Python on values; its VJP is itself a loop — a scan, the other way, over the body's
one-step VJP at the carries the forward saved (:func:`_transpose`) — written with fungrad's own
functions, so loops nest and differentiate to any order, in reverse and (as the transpose of
the VJP) forward mode. ``while_loop`` differentiates in reverse mode too: its forward records
the trip count by saving each step's carry.

What a loop keeps for the backward pass: the carry before every step (``T`` copies of the
carry, not of everything the body computes), plus its inputs. The backward recomputes each
step's internals from its saved carry, one step at a time, so a 1,000-step loop's backward
holds one step's graph at once; the price is one more run of the body per step. Carries a
body only adds to (the gradient accumulators of a VJP's own loop) are not saved.

How a loop call becomes a primitive (:func:`_run_scan`): the body is first run once on the
first step's values, recorded, to learn its output structure and to find the Tensors
requiring grad it reads through its closure — the loop's consts, inputs of the node like the
carry and ``xs``, whose gradients the VJP accumulates. Python numbers in ``init`` are weakly
typed (as in JAX): they take the dtype the body gives them.

**For fg.jit** (the compiled form comes with the jit's loop support): under a jit trace these
functions run the body as a plain Python loop, which the tracer unrolls (today's behaviour for
any Python loop). The compiled form plugs in at that branch (``tape.state.hook is not None``
in :func:`_run_scan` and :func:`while_loop`): it receives the :class:`~._body.Body`
(``body.fn(consts, carry, x) -> (carry, y)`` on pytrees, ``body.carry``/``body.x`` the
trees' structures, ``body.captured`` the closed-over Tensors, which the tracer captures as it
captures any Tensor), the carry avals (shape and dtype per leaf of ``init``, fixed for every
step), the ``xs`` avals with the leading axis removed, and ``length`` and ``reverse`` — or for
``while_loop`` the ``cond`` function of the carry. It traces ``body.fn`` once on traced carry
and ``x`` values into a sub-program and emits a loop around it; a jitted backward meets the
``scan`` op's VJP, which is again a scan (of :func:`~._body.step_vjp`), and compiles the same
way. The forwards ``_scan`` and ``_while`` are the reference semantics a compiled loop must
match (the registry-driven jit ≡ eager suite runs them as Python steps today).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Callable, Iterator

import numpy as np

from .. import tape
from ..domains import Domain, Real
from ..errors import DTypeError, ShapeError
from ..ops import sin, stack, tanh
from ..ops import sum as _sum
from ..registry import apply, defop, unwrap
from ..tensor import Tensor
from ._body import (
    Body, Reraise, Tree, at_step, aval, check_carry, check_leaves, is_float, pure, step_vjp,
    trace_step, value, wrap, zeros_like,
)

__all__ = ["scan", "fori_loop", "while_loop", "scan_op", "while_op"]


# -- the primitives' forwards -----------------------------------------------------------------


def _scan(*arrays, body: Body, length: int, reverse: bool = False, save: bool = False):
    """The scan primitive on flat leaves: ``body.n_consts`` consts, the carry's leaves, then
    the leaves of ``xs``. Returns the final carry's leaves, the stacked ``y`` leaves and, with
    ``save``, the carry before every step (stacked; leaves the body only adds to left out)."""
    k, n = body.n_consts, body.carry.n
    consts, init, xs = arrays[:k], arrays[k:k + n], arrays[k + n:]
    _check_length(body.name, body.x, xs, length)
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
        while _truth(body.name, cond(body.carry.build([Tensor._make(c) for c in carry]))):
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

    def __exit__(self, kind, error, tb) -> bool:
        if error is not None and isinstance(error, Exception) and not isinstance(error, Reraise):
            where = f"at step {self.t}"
            with at_step(self.name, where):
                raise error
        return False


def _kept(body: Body, save: bool) -> list[int]:
    """The carry leaves whose value before each step the forward saves."""
    return [j for j in range(body.carry.n) if save and not body.additive[j]]


def _check_length(name: str, x_tree: Tree, xs, length: int) -> None:
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
    for path, buf, v in zip(body.y.paths, ys, vals):
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


def _truth(name: str, v: Any) -> bool:
    d = unwrap(v)
    a = d if tape.is_traced(d) else np.asarray(d)
    if a.shape != () or a.dtype != np.bool_:
        raise DTypeError(f"{name}: cond_fun must return a boolean scalar, got {a.dtype} of "
                         f"shape {tuple(a.shape)}")
    return bool(a)


# -- the VJPs: each a scan over the body's one-step VJP, the other way -------------------------


def _scan_vjp(g, out, *arrays, body: Body, length: int, reverse: bool = False,
              save: bool = False, needs: tuple):
    k, n, p = body.n_consts, body.carry.n, body.y.n
    consts, init, xs = arrays[:k], arrays[k:k + n], arrays[k + n:]
    if save:
        saved, g_saved = out[n + p:], g[n + p:]
    else:  # nothing saved (called without recording): run the forward again, saving
        again = _call(scan_op, arrays, {"body": body, "length": length, "reverse": reverse,
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
        again = _call(while_op, arrays, {"body": body, "cond": cond, "save": True})
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
    outs = _call(scan_op, [*consts, *a0, *acc0, *rxs],
                 {"body": tbody, "length": length, "reverse": not reverse,
                  "save": tape.state.enabled})  # recorded (create_graph): it is differentiated
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


def _call(op, args, params: dict):
    """``apply`` the loop op; an exception the user's body raised comes out as itself."""
    with _unwrapped():
        return apply(op, tuple(args), params)


@contextlib.contextmanager
def _unwrapped() -> Iterator[None]:
    try:
        yield
    except Reraise as r:
        raise r.error from None


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
    n_outputs=None, pass_needs=True,
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
    n_outputs=None, pass_needs=True,
    doc="""The while_loop primitive behind fg.while_loop, on flat leaves: consts, init (see
    fungrad.control.loops). Call fg.while_loop(cond_fun, body_fun, init_val) rather than
    this.""",
)


# -- the public functions ------------------------------------------------------------------------


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: int | bool = 1) -> tuple[Any, Any]:
    """Loop ``f`` over the leading axis of ``xs``, carrying state: ``(final carry, stacked ys)``.

    As ``jax.lax.scan``: ``f(carry, x) -> (carry, y)``; ``init``, ``xs`` and each ``y`` are
    pytrees (nested tuples, lists, dicts; ``None`` is empty) of arrays, Tensors or numbers. It
    computes::

        carry = init
        for x in xs:                     # each leaf of xs sliced along its first axis
            carry, y = f(carry, x)       # ys stacked along a new leading axis
        return carry, ys

    ``length`` gives the number of steps when ``xs`` is None (``f`` then gets ``x=None``);
    ``reverse=True`` runs from the last slice to the first (``ys`` stay aligned with ``xs``).
    ``unroll`` is accepted as JAX's compilation hint (a positive int or a bool); an eager loop
    runs its steps one by one whatever it says.
    The carry keeps its structure, shapes and dtypes at every step (a
    :class:`~fungrad.errors.CarryError` names the leaf that changed); Python numbers in
    ``init`` take the dtype the body gives them. Integer carries (counters) pass through
    without gradients.

    The loop is one recorded op: it differentiates in reverse and forward mode to any order
    (``fg.grad``, ``vjp``, ``jvp``, ``hessian``, ``.backward()``), with respect to ``init``,
    ``xs`` and the Tensors ``f`` reads through its closure. Its backward keeps only the carry
    before each step and recomputes each step's internals. ``f`` must be a pure function of
    its arguments: it runs once more to be traced, and once per step again in the backward.

    >>> import numpy as np, fungrad as fg
    >>> fg.scan(lambda c, x: (c + x, c * x), 0.0, np.arange(1.0, 5.0))
    (array(10.), array([ 0.,  2.,  9., 24.]))
    >>> def last(w):
    ...     h, _ = fg.scan(lambda h, x: (fg.tanh(h * w + x), None), 0.0, np.ones(3))
    ...     return h
    >>> round(float(fg.grad(last)(0.5)), 6)
    0.19432
    """
    if not callable(f):
        raise TypeError(f"scan: f must be callable, got {type(f).__name__}")
    if length is not None and (isinstance(length, bool) or not isinstance(length, (int, np.integer))
                               or length < 0):
        raise TypeError(f"scan: length must be a non-negative int, got {length!r}")
    _check_unroll("scan", unroll)
    with _unwrapped():
        return _run_scan("scan", lambda consts, c, x: f(c, x), init, xs, length, reverse)


def fori_loop(lower: int, upper: int, body_fun: Callable, init_val: Any, *,
              unroll: int | bool | None = None) -> Any:
    """``body_fun(i, val)`` for ``i`` from ``lower`` up to ``upper - 1``, starting from
    ``init_val``: the final ``val``.

    As ``jax.lax.fori_loop``: with concrete bounds it is a scan over ``i`` (a 0-d integer
    Tensor, of the bounds' dtype), so it differentiates like one, in reverse mode too.
    ``val`` is a pytree whose structure, shapes and dtypes stay fixed. ``unroll`` is accepted
    as in :func:`scan`.

    >>> import numpy as np, fungrad as fg
    >>> fg.fori_loop(0, 4, lambda i, v: v * 2 + i, np.array(1.0))
    array(27.)
    >>> round(float(fg.grad(lambda x: fg.fori_loop(0, 3, lambda i, v: fg.sin(v), x))(0.5)), 6)
    0.697266
    """
    if not callable(body_fun):
        raise TypeError(f"fori_loop: body_fun must be callable, got {type(body_fun).__name__}")
    if unroll is not None:
        _check_unroll("fori_loop", unroll)
    lo, hi = _bound("lower", lower), _bound("upper", upper)
    dtype = np.result_type(unwrap(lower), unwrap(upper))
    steps = np.arange(lo, max(lo, hi), dtype=dtype)
    with _unwrapped():
        carry, _ = _run_scan("fori_loop", lambda consts, c, i: (body_fun(i, c), None),
                             init_val, steps, None, False)
    return carry


def _check_unroll(name: str, unroll: Any) -> None:
    if not (isinstance(unroll, (bool, int, np.integer)) and (isinstance(unroll, bool)
                                                             or unroll >= 1)):
        raise ValueError(f"{name}: unroll must be a positive int or a bool, got {unroll!r}")


def _bound(name: str, v: Any) -> int:
    d = unwrap(v)
    kind = np.asarray(d).dtype.kind if not tape.is_traced(d) else d.dtype.kind
    if isinstance(d, bool) or kind not in "iu" or np.ndim(d) != 0:
        raise TypeError(f"fori_loop: {name} must be an integer (a Python int or a 0-d integer "
                        f"array), got {d!r}")
    return int(d)


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """Repeat ``val = body_fun(val)`` while ``cond_fun(val)`` is true: the final ``val``.

    As ``jax.lax.while_loop``; ``cond_fun`` returns a boolean scalar. Unlike JAX's, it
    differentiates in reverse mode as well as forward mode: the forward saves the carry before
    each step (so the trip count), and the backward is a scan over them. ``val`` is a pytree
    whose structure, shapes and dtypes stay fixed.

    >>> import numpy as np, fungrad as fg
    >>> fg.while_loop(lambda v: v[0] < 5, lambda v: (v[0] + 1, v[1] * 1.5), (0, 1.0))
    (array(5), array(7.59375))
    >>> fg.grad(lambda x: fg.while_loop(lambda v: v < 10, lambda v: v * 2, x))(3.0)
    array(4.)
    """
    for name, fn in (("cond_fun", cond_fun), ("body_fun", body_fun)):
        if not callable(fn):
            raise TypeError(f"while_loop: {name} must be callable, got {type(fn).__name__}")
    with _unwrapped():
        return _run_while(cond_fun, body_fun, init_val)


def _run_while(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    leaves, tree = Tree.of(init_val, "carry")
    check_leaves("while_loop", tree, leaves, "init_val")
    body = Body("while_loop", lambda consts, c, x: (body_fun(c), None), tree,
                Tree.of(None, "xs")[1])
    if tape.state.hook is not None:  # fg.jit: a Python loop the tracer unrolls (see top)
        return _python_loop(body, lambda c: _truth("while_loop", cond_fun(c)), leaves, [], None,
                            False)
    with pure(), at_step("while_loop", "in cond_fun before the first step"):
        first = _truth("while_loop", cond_fun(tree.build([wrap(v) for v in leaves])))
    if not first:  # zero steps: the body is not run (not even to trace it)
        return tree.build([v if isinstance(v, (Tensor, np.ndarray)) else value(v)
                           for v in leaves])
    leaves, _ = _traced(body, leaves, [])
    save = _records(body, leaves, [])
    outs = _call(while_op, [*body.captured, *leaves],
                 {"body": body, "cond": cond_fun, "save": save})
    return tree.build(outs[:tree.n])


def _run_scan(name: str, fn: Callable, init: Any, xs: Any, length: int | None,
              reverse: bool) -> tuple[Any, Any]:
    leaves, tree = Tree.of(init, "carry")
    check_leaves(name, tree, leaves, "the carry")
    x_leaves, x_tree = Tree.of(xs, "xs")
    check_leaves(name, x_tree, x_leaves, "xs")
    if length is None:
        if not x_leaves:
            raise TypeError(f"{name}: pass xs to scan over, or length (the number of steps) "
                            "when xs is None")
        length = np.shape(unwrap(x_leaves[0]))[0] if np.ndim(unwrap(x_leaves[0])) else 0
    length = int(length)
    _check_length(name, x_tree, x_leaves, length)
    body = Body(name, fn, tree, x_tree)
    if tape.state.hook is not None:  # fg.jit: a Python loop the tracer unrolls (see top)
        return _python_loop(body, None, leaves, x_leaves, length, reverse)
    t0 = (length - 1 if reverse else 0) if length else None
    first = [unwrap(leaf)[t0, ...] if t0 is not None else
             np.zeros(np.shape(unwrap(leaf))[1:], np.asarray(unwrap(leaf)).dtype)
             for leaf in x_leaves]
    leaves, y_avals = _traced(body, leaves, first)
    body.y_avals = y_avals
    save = _records(body, leaves, x_leaves)
    outs = _call(scan_op, [*body.captured, *leaves, *x_leaves],
                 {"body": body, "length": length, "reverse": bool(reverse), "save": save})
    n = tree.n
    return tree.build(outs[:n]), body.y.build(outs[n:n + body.y.n])


def _traced(body: Body, leaves: list, x: list) -> tuple[list, list]:
    """Trace the body's first step: its consts captured, weakly typed ``init`` leaves (Python
    numbers) given the dtypes the body gives them (:func:`_weak_dtypes`), every carry leaf
    checked."""
    leaves = _weak_dtypes(body, leaves, x)
    consts, c_out, y_avals = trace_step(body, leaves, x, record=tape.state.enabled)
    check_carry(body.name, body.carry, [aval(v) for v in leaves], c_out, 0)
    body.capture(consts)
    return leaves, y_avals


_PROBES = {"b": np.bool_, "i": np.int8, "f": np.float16}


def _weak_dtypes(body: Body, leaves: list, x: list) -> list:
    """``init`` with its Python numbers made arrays of the dtype the body gives them, as JAX's
    weak types: a number the body combines with float32 values becomes float32, one it only
    combines with numbers keeps the default dtype (float64, int64). Found by running the body
    once with those leaves in the smallest dtype of their kind: an output in another dtype was
    set by something else the body combined them with."""
    weak = [j for j, v in enumerate(leaves) if isinstance(v, (bool, int, float))]
    if not weak:
        return leaves
    probe = list(leaves)
    for j in weak:
        probe[j] = np.asarray(leaves[j], _PROBES[np.asarray(leaves[j]).dtype.kind])
    with pure(), np.errstate(all="ignore"):
        with at_step(body.name, "tracing its first step"):
            c_out, _ = body.call((), [wrap(v) for v in probe], [wrap(v) for v in x])
    out = list(leaves)
    for j in weak:
        got = aval(c_out[j])[1] if not isinstance(c_out[j], (bool, int, float)) else None
        given = np.asarray(probe[j]).dtype
        out[j] = np.asarray(leaves[j], dtype=got if got not in (None, given) else None)
    return out


def _records(body: Body, leaves: list, x_leaves: list) -> bool:
    """Whether the loop will be recorded (so its forward should save the carries)."""
    return tape.state.enabled and (bool(body.captured) or any(
        isinstance(v, Tensor) and v.requires_grad for v in (*leaves, *x_leaves)))


def _python_loop(body: Body, cond: Callable | None, leaves: list, x_leaves: list,
                 length: int | None, reverse: bool):
    """The loop as plain Python on whatever values it is given (under fg.jit's tracer)."""
    ref = [aval(v) for v in leaves]
    carry, ys = list(leaves), []
    if length is None:  # while_loop: until cond says stop
        steps: Any = itertools.count()
    else:
        steps = range(length - 1, -1, -1) if reverse else range(length)
    for t in steps:
        if cond is not None and not cond(body.carry.build(carry)):
            break
        carry, y_out = body.call((), carry, [leaf[t] for leaf in x_leaves])
        check_carry(body.name, body.carry, ref, carry, t)
        ys.append(y_out)
    final = body.carry.build(carry)
    if cond is not None:
        return final
    if reverse:
        ys.reverse()
    if not ys:
        dummy = [np.zeros(np.shape(unwrap(leaf))[1:], np.asarray(unwrap(leaf)).dtype)
                 for leaf in x_leaves]
        with pure():
            _, y = body.call((), [wrap(v) for v in leaves], [wrap(d) for d in dummy])
        return final, body.y.build([np.empty((0,) + aval(v)[0], aval(v)[1]) for v in y])
    return final, body.y.build([stack([y[i] for y in ys], axis=0) for i in range(body.y.n)])
