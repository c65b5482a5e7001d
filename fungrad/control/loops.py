"""Structured loops — ``fg.scan``, ``fg.fori_loop``, ``fg.while_loop`` — as primitives that
carry a traced body.

Each loop is one op of the registry (``scan`` and ``while_loop``; ``fori_loop`` with concrete
bounds is a scan), recorded as one node however many steps it runs. Its forward runs the body
in Python on values; its VJP is itself a loop — a scan, the other way, over the body's
one-step VJP at the carries the forward saved (:mod:`.primitives`) — written with fungrad's
own functions, so loops nest and differentiate to any order, in reverse and (as the transpose of
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

Under ``fg.vmap`` a loop runs as a Python loop whose ops are each batched by their rules (the
closure of a body may hold batched Tensors, which no primitive input could pass); a
``while_loop`` whose condition differs between examples steps until none holds, the finished
examples keeping their carry.

**Under fg.jit** a loop call takes the primitive path, as eagerly: the body is probed once
at the call site (the program steps that records are dropped, :func:`_probing`), and the
tracer meets ``apply(scan_op | while_op)`` — the user's loop, or the transposed scan of a
loop's VJP in a jitted backward — as ``hook.forward``, which records it as one step whose
body is traced once (:mod:`fungrad.jit.loops`) and compiled as a loop of the runner
(:mod:`fungrad.jit.passes.loops`). The primitives' forwards in :mod:`.primitives` are the
reference semantics that compiled loop matches.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Callable, Iterator

import numpy as np

from .. import recording
from ..errors import VmapError
from ..primitives import stack, where
from ..registry import unwrap
from ..tensor import Tensor
from ._body import (
    Body, Tree, at_step, aval, check_carry, check_leaves, pure, trace_step, value, wrap,
)
from .primitives import call, check_length, condition, scan_op, truth, unwrapped, while_op

__all__ = ["scan", "fori_loop", "while_loop"]


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
    with unwrapped():
        return _run_scan("scan", lambda consts, c, x: f(c, x), init, xs, length, reverse)


def fori_loop(lower: int, upper: int, body_fun: Callable, init_val: Any, *,
              unroll: int | bool | None = None) -> Any:
    """``body_fun(i, val)`` for ``i`` from ``lower`` up to ``upper - 1``, starting from
    ``init_val``: the final ``val``.

    As ``jax.lax.fori_loop``: with concrete bounds it is a scan over ``i`` (a 0-d integer
    Tensor, of the bounds' dtype), so it differentiates like one, in reverse mode too. A bound
    known only when the program runs (an argument of an ``fg.jit`` function, or one per
    example under ``fg.vmap``) makes it a :func:`while_loop` over ``(i, val)``, which
    differentiates in reverse mode too (JAX's refuses). ``val`` is a pytree whose structure,
    shapes and dtypes stay fixed. ``unroll`` is accepted as in :func:`scan`.

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
    if lo is None or hi is None:
        return _fori_while(lower, upper, body_fun, init_val)
    dtype = np.result_type(unwrap(lower), unwrap(upper))
    steps = np.arange(lo, max(lo, hi), dtype=dtype)
    with unwrapped():
        carry, _ = _run_scan("fori_loop", lambda consts, c, i: (body_fun(i, c), None),
                             init_val, steps, None, False)
    return carry


def _check_unroll(name: str, unroll: Any) -> None:
    if not (isinstance(unroll, (bool, int, np.integer)) and (isinstance(unroll, bool)
                                                             or unroll >= 1)):
        raise ValueError(f"{name}: unroll must be a positive int or a bool, got {unroll!r}")


def _bound(name: str, v: Any) -> int | None:
    """A fori_loop bound's value; None if it has none yet (traced, or batched)."""
    d = unwrap(v)
    traced = recording.is_traced(d)
    kind = d.dtype.kind if traced else np.asarray(d).dtype.kind
    if isinstance(d, bool) or kind not in "iu" or np.ndim(d) != 0:
        raise TypeError(f"fori_loop: {name} must be an integer (a Python int or a 0-d integer "
                        f"array), got {d!r}")
    return None if traced else int(d)


def _fori_while(lower: Any, upper: Any, body_fun: Callable, init_val: Any) -> Any:
    """fori_loop as a while_loop over ``(i, val)``: for bounds without a value yet."""
    dtype = np.result_type(*(unwrap(b).dtype if recording.is_traced(unwrap(b)) else
                             np.asarray(unwrap(b)).dtype for b in (lower, upper)))
    start = lower if recording.is_traced(unwrap(lower)) else np.asarray(lower, dtype)

    def step(state: tuple) -> tuple:
        i, val = state
        return i + 1, body_fun(i, val)
    return while_loop(lambda state: state[0] < upper, step, (start, init_val))[1]


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
    with unwrapped():
        return _run_while(cond_fun, body_fun, init_val)


def _run_while(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    leaves, tree = Tree.of(init_val, "carry")
    check_leaves("while_loop", tree, leaves, "init_val")
    body = Body("while_loop", lambda consts, c, x: (body_fun(c), None), tree,
                Tree.of(None, "xs")[1])
    if recording.thread.vmap is not None:  # fg.vmap: each op batched
        return _python_loop(body, cond_fun, leaves, [], None, False)
    if recording.thread.hook is not None:  # fg.jit: the condition is a value of the program
        first = True
    else:
        with pure(), at_step("while_loop", "in cond_fun before the first step"):
            first = truth("while_loop", cond_fun(tree.build([wrap(v) for v in leaves])))
    if not first:  # zero steps: the body is not run (not even to trace it)
        return tree.build([v if isinstance(v, (Tensor, np.ndarray)) else value(v)
                           for v in leaves])
    leaves, _ = _traced(body, leaves, [])
    if not leaves:  # an empty carry: nothing comes out
        return init_val
    save = _records(body, leaves, [])
    outs = call(while_op, [*(body.captured or ()), *leaves],
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
    check_length(name, x_tree, x_leaves, length)
    body = Body(name, fn, tree, x_tree)
    if recording.thread.vmap is not None:  # fg.vmap: each op batched
        return _python_loop(body, None, leaves, x_leaves, length, reverse)
    t0 = (length - 1 if reverse else 0) if length else None
    with _probing():
        first = [unwrap(leaf)[t0, ...] if t0 is not None else
                 np.zeros(np.shape(unwrap(leaf))[1:], _dtype(unwrap(leaf)))
                 for leaf in x_leaves]
    leaves, y_avals = _traced(body, leaves, first)
    body.y_avals = y_avals
    if not leaves and not y_avals:  # nothing comes out: nothing to run
        return tree.build([]), body.ys.build([])
    save = _records(body, leaves, x_leaves)
    outs = call(scan_op, [*(body.captured or ()), *leaves, *x_leaves],
                 {"body": body, "length": length, "reverse": bool(reverse), "save": save})
    n = tree.n
    return tree.build(outs[:n]), body.ys.build(outs[n:n + body.ys.n])


def _traced(body: Body, leaves: list, x: list) -> tuple[list, list]:
    """Trace the body's first step: its consts captured, weakly typed ``init`` leaves (Python
    numbers) given the dtypes the body gives them (:func:`_weak_dtypes`), every carry leaf
    checked."""
    with _probing():
        leaves = _weak_dtypes(body, leaves, x)
        consts, c_out, y_avals = trace_step(body, leaves, x, record=recording.thread.enabled)
    check_carry(body.name, body.carry, [aval(v) for v in leaves], c_out, 0)
    body.capture(consts)
    return leaves, y_avals


@contextlib.contextmanager
def _probing() -> Iterator[None]:
    """Under fg.jit: the program steps recorded while the body is probed (for its consts and
    dtypes) are dropped — the tracer records the loop itself as one step
    (:mod:`fungrad.jit.loops`). The Tensors it captured stay inputs of the program."""
    steps = getattr(recording.thread.hook, "steps", None)
    mark = len(steps) if steps is not None else 0
    try:
        yield
    finally:
        if steps is not None:  # (constants stay: a Tensor's data may have become one)
            steps[mark:] = [s for s in steps[mark:] if s.name == "const" and s.op is None
                            and not s.inputs[1:] and len(s.outputs) == 1
                            and not s.input_vars()]


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
        if isinstance(c_out[j], (bool, int, float)):  # numbers in, numbers out: Python's kinds
            out[j] = np.asarray(leaves[j], dtype=np.result_type(leaves[j], c_out[j]))
            continue
        got = aval(c_out[j])[1]  # (np.dtype == None is true for float64: compare explicitly)
        out[j] = np.asarray(leaves[j], dtype=got if got != probe[j].dtype else None)
    return out


def _records(body: Body, leaves: list, x_leaves: list) -> bool:
    """Whether the loop will be recorded (so its forward should save the carries)."""
    return recording.thread.enabled and (bool(body.captured) or any(
        isinstance(v, Tensor) and v.requires_grad for v in (*leaves, *x_leaves)))


def _python_loop(body: Body, cond: Callable | None, leaves: list, x_leaves: list,
                 length: int | None, reverse: bool):
    """The loop as plain Python on whatever values it is given: under fg.jit's tracer (which
    unrolls it) and under fg.vmap (each op batched by its rule; a while_loop's condition may
    differ between examples: the loop runs while it holds for any, and the others keep their
    carry, as JAX's batched while_loop does)."""
    ref = [aval(v) for v in leaves]
    carry, ys = list(leaves), []
    if length is None:  # while_loop: until cond says stop
        steps: Any = itertools.count()
    else:
        steps = range(length - 1, -1, -1) if reverse else range(length)
    for t in steps:
        going = None
        if cond is not None:
            going = cond(body.carry.build(carry))
            if not _any_example(going):
                break
        c_out, y_out = body.call((), carry, [leaf[t] for leaf in x_leaves])
        check_carry(body.name, body.carry, ref, c_out, t)
        if going is not None and recording.is_traced(unwrap(going)):
            c_out = [where(going, new, old) for new, old in zip(c_out, carry)]
        carry = c_out
        ys.append(y_out)
    final = body.carry.build(carry)
    if cond is not None:
        return final
    if reverse:
        ys.reverse()
    if not ys:
        dummy = [np.zeros(np.shape(d)[1:], _dtype(d)) for d in map(unwrap, x_leaves)]
        with pure():
            _, y = body.call((), [wrap(v) for v in leaves], [wrap(d) for d in dummy])
        return final, body.ys.build([np.empty((0,) + aval(v)[0], aval(v)[1]) for v in y])
    return final, body.ys.build([stack([y[i] for y in ys], axis=0) for i in range(body.ys.n)])


def _dtype(d: Any) -> np.dtype:
    """A leaf's dtype (a traced array's, and under fg.vmap a batched one's, too)."""
    dtype = getattr(d, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(d).dtype


def _any_example(going: Any) -> bool:
    """Whether a while_loop's condition holds — under fg.vmap, for any example."""
    d = condition("while_loop", going)
    vm = recording.thread.vmap
    if vm is None or type(d) is not vm.batched_type:
        return bool(d)
    values = getattr(d.value, "_data", d.value)
    if recording.is_traced(values):
        raise VmapError("while_loop under nested fg.vmap calls: its condition differs between "
                        "the examples of more than one of them; loop in an outer function or "
                        "make the condition the same for the examples of all but one vmap")
    return bool(np.any(values))
