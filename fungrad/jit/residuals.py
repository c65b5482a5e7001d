"""Residuals: a loop's VJP reads what its forward loop computed instead of computing it again.

A loop's VJP (:func:`fungrad.control.primitives._transpose`) is a scan the other way whose
body runs the forward body once more on the saved carry and the ``x`` slice, then its
backward. Under fg.jit both loops are steps of one program (:mod:`.loops`), so the recomputed
values are the forward loop's own: for ``x = tanh(x * w[i] + b[i])`` the backward body
computes ``tanh(x * w + b)`` again to get ``1 - tanh**2``. JAX's partial evaluation of a scan
(``_scan_partial_eval`` in ``jax/_src/lax/control_flow/loops.py``) splits the body into what
depends only on primal values — computed in the forward loop, its results stacked as
*residuals*, extra ``ys`` — and the rest, which the backward loop runs reading them. This
module does the same after the fact, when the VJP's loop ``B`` is recorded:

1. ``B``'s ``xs`` tell which forward loop ``F`` it belongs to: the carries ``F`` saved (row
   ``t``: the carry before step ``t``), ``F``'s own ``xs`` and ``ys`` (row ``t``: the step's
   slice and output) — so each of those ``x`` inputs of ``B``'s body *is*, at row ``t``, a
   value of ``F``'s body at step ``t``; the program's values both bodies read are the same.
2. Walking ``B``'s body in order, a step whose function, parameters and inputs are those of a
   step of ``F``'s body computes the same value at every row: its outputs are ``F``'s.
3. The values of matched steps that the rest of ``B`` reads become new ``ys`` of ``F`` (the
   residuals: ``F``'s group stores them as it computes them) and new ``xs`` of ``B``; the
   matched steps leave ``B``, and so do ``xs`` it no longer reads.

It is done only where it saves work (the steps removed outweigh the residual rows read, a
transcendental or block op counting more than an arithmetic one), never for values a
checkpoint recomputes (:func:`fungrad.control.checkpoint.rematerializing`: the user asked not
to keep them), and only when both loops are in the same part of the program (the top level, or
one loop body being traced). Both loops stay what :class:`~.loops.LoopStep` runs, in Python
as compiled: the rewrite changes which loop computes a value, never the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .program import Step, Var

__all__ = ["note_loop", "forward_residuals"]

#: ops cheaper than reading a row of a residual back: arithmetic and moves of one element
_CHEAP = frozenset({
    "add", "subtract", "multiply", "negative", "copy", "reshape", "square", "abs",
    "maximum", "minimum", "where", "sign", "less", "less_equal", "greater",
    "greater_equal", "equal", "not_equal", "logical_not", "astype", "broadcast_to",
    "expand_dims", "squeeze", "transpose", "getitem", "real",
})
_DEAR = 4  # a step of any other op (exp, tanh, divide, a matmul...) counts as this many reads
_SMALL = 64  # constants up to this many elements are compared by value


def note_loop(tracer: Any, step: Step) -> None:
    """Remember a recorded scan step: its outputs (saved carries, ys) may be a later loop's
    ``xs``. Kept on the tracer with the step's position in the program."""
    if step.fn.spec.kind != "scan":
        return
    known = tracer.__dict__.setdefault("_loop_outputs", {})
    where = (step, len(tracer.steps) - 1)
    for pos, v in enumerate(step.outputs):
        known[v.id] = where + (pos,)


def forward_residuals(tracer: Any, step: Step, scope_start: int) -> None:
    """If scan step ``step`` (just recorded, last in the program) reruns the body of a scan
    recorded before it at or after position ``scope_start``, make that loop store the values
    ``step``'s body recomputes and ``step`` read them (see the module docstring)."""
    spec = step.fn.spec
    if spec.kind != "scan" or not spec.steps or not spec.m:
        return
    fwd = _forward_loop(tracer, step, scope_start)
    if fwd is None:
        return
    f_step, corr = fwd
    fspec = f_step.fn.spec
    consts = _const_values(tracer, scope_start)
    table = _step_table(fspec, consts)
    match = _match(spec, corr, table, consts)
    plan = _plan(spec, match)
    if plan is None:
        return
    kept_steps, needed = plan
    outs = [_residual_output(tracer, f_step, fv) for fv in needed]
    _rewrite_backward(tracer, step, kept_steps, match, needed, outs)


def _forward_loop(tracer: Any, step: Step, scope_start: int) -> tuple[Step, dict] | None:
    """The forward scan ``step``'s ``xs`` come from, and which of its body's Vars each of
    ``step``'s ``x`` inputs is at every row (``{B's x Var id: F's Var}``); None if there is
    none, or more than one, or it is out of scope."""
    spec = step.fn.spec
    known = getattr(tracer, "_loop_outputs", {})
    k, n = spec.k, spec.n
    f_step = None
    corr: dict[int, Var] = {}
    for ref, xv in zip(step.inputs[k + n:k + n + spec.m], spec.x_in):
        hit = known.get(ref.id) if type(ref) is Var else None
        if hit is None:
            continue
        f, at, pos = hit
        if at < scope_start or at >= len(tracer.steps) or tracer.steps[at] is not f:
            continue
        if f_step is not None and f is not f_step:
            return None  # rows of two loops: left alone
        f_step = f
        fs = f.fn.spec
        p = len(fs.y_out)
        if pos < fs.n:
            continue  # the final carry is no row
        corr[xv.id] = fs.y_out[pos - fs.n] if pos < fs.n + p else fs.c_in[fs.kept[pos - fs.n - p]]
    if f_step is None:
        return None
    fs = f_step.fn.spec
    if fs.length != spec.length or fs.kind != "scan":
        return None
    # the same xs (a program value, or the same constant array): the same slice at every row
    f_xs = {_ref_key(r): v for r, v in zip(f_step.inputs[fs.k + fs.n:fs.k + fs.n + fs.m],
                                            fs.x_in)}
    for ref, xv in zip(step.inputs[k + n:k + n + spec.m], spec.x_in):
        if _ref_key(ref) in f_xs and xv.id not in corr:
            corr[xv.id] = f_xs[_ref_key(ref)]
    return f_step, corr


def _ref_key(ref: Any) -> tuple:
    """A loop input: a program Var by id, a constant (the tracer's snapshot of an array the
    function closed over, shared by every use) by identity."""
    return ("v", ref.id) if type(ref) is Var else ("o", id(ref))


def _const_values(tracer: Any, scope_start: int) -> dict[int, Any]:
    """Var id -> value of the constant steps in scope (hoisted out of loop bodies): two bodies'
    equal constants are different Vars."""
    from .loops import _is_const  # noqa: PLC0415 (loops imports this module)

    return {s.outputs[0].id: s.inputs[0] for s in tracer.steps[scope_start:] if _is_const(s)}


def _frozen(x: Any) -> Any:
    """A hashable stand-in of a constant input or parameter that compares as its value, or
    None when it cannot be compared."""
    if x is None or isinstance(x, (bool, int, float, complex, str)):
        return (type(x).__name__, x)
    if isinstance(x, np.generic):
        return ("g", x.dtype.str, x.tobytes())
    if isinstance(x, np.ndarray):
        return ("a", x.dtype.str, x.shape, x.tobytes()) if x.size <= _SMALL else None
    if isinstance(x, np.dtype):
        return ("d", x.str)
    if isinstance(x, (tuple, list)):
        inner = tuple(_frozen(v) for v in x)
        return None if any(v is None for v in inner) else (type(x).__name__, inner)
    if isinstance(x, dict):
        items = tuple(sorted((str(k), _frozen(v)) for k, v in x.items()))
        return None if any(v is None for _, v in items) else ("dict", items)
    if isinstance(x, slice):
        return _frozen(("slice", x.start, x.stop, x.step))
    if x is Ellipsis:
        return ("...",)
    return None


def _key(s: Step, name_of: Any) -> tuple | None:
    """What ``s`` computes, as a hashable key (its function, parameters and inputs, each input
    named by ``name_of(var)``); None if it cannot be compared (impure, Vars in its
    parameters, a loop, uncomparable constants)."""
    if not s.pure or s.dynamic or s.name.startswith("check:") or hasattr(s.fn, "spec"):
        return None
    ins = []
    for x in s.inputs:
        k = name_of(x) if type(x) is Var else _frozen(x)
        if k is None:
            return None
        ins.append(k)
    params = _frozen(s.params)
    if params is None:
        return None
    return (id(s.fn), id(s.op), s.name, tuple(ins), params, len(s.outputs))


def _var_name(v: Var, consts: dict) -> tuple:
    """A program Var as a key: its value when it is a small constant, else its id."""
    c = consts.get(v.id)
    if c is not None:
        frozen = _frozen(c)
        if frozen is not None:
            return ("c", v.dtype.str, tuple(v.shape), frozen)
    return ("v", v.id)


def _step_table(fspec: Any, consts: dict) -> dict:
    """key -> step of the forward body (the first of equal ones)."""
    table: dict = {}
    for s in fspec.steps:
        key = _key(s, lambda v: _var_name(v, consts))
        if key is not None:
            table.setdefault(key, s)
    return table


def _match(spec: Any, corr: dict, table: dict, consts: dict) -> dict[int, Var]:
    """``{B Var id: F Var}`` for the backward body's values that are the forward body's at
    every row: its ``x`` inputs in ``corr``, and the outputs of its steps that match one of
    ``F`` (not those a checkpoint recomputes)."""
    made = {v.id for v in spec.c_in} | {v.id for v in spec.x_in if v.id not in corr}
    for s in spec.steps:
        made.update(o.id for o in s.outputs)
    match = dict(corr)

    def name_of(v: Var) -> tuple | None:
        if v.id in match:
            return ("v", match[v.id].id)
        return None if v.id in made else _var_name(v, consts)

    remat = spec.remat or frozenset()
    for s in spec.steps:
        if any(o.id in remat for o in s.outputs):
            continue
        key = _key(s, name_of)
        f = table.get(key) if key is not None else None
        if f is None:
            continue
        if all(o.shape == fo.shape and o.dtype == fo.dtype for o, fo in zip(s.outputs,
                                                                              f.outputs)):
            match.update((o.id, fo) for o, fo in zip(s.outputs, f.outputs))
    return match


def _plan(spec: Any, match: dict) -> tuple[list, list] | None:
    """``(the backward body's steps that stay, the F Vars to store as residuals)``, or None
    when reading the residuals would not save work."""
    computed = {o.id for s in spec.steps for o in s.outputs if o.id in match}
    live = _live(spec)
    stay, removed = [], 0
    for s in spec.steps:
        if s.outputs and all(o.id in computed for o in s.outputs):
            if id(s) in live:
                removed += 1 if s.name in _CHEAP else _DEAR
            continue
        if id(s) in live or not s.pure:
            stay.append(s)
    needed: dict[int, Var] = {}
    for s in stay:
        for v in s.input_vars():
            if v.id in computed:
                if s.dynamic or hasattr(s.fn, "spec"):
                    return None  # (a Var inside parameters, or a loop whose body reads it)
                needed.setdefault(match[v.id].id, match[v.id])
    for v in list(spec.c_out) + list(spec.y_out):
        if v.id in computed:
            needed.setdefault(match[v.id].id, match[v.id])
    if removed <= len(needed):
        return None
    return stay, list(needed.values())


def _live(spec: Any) -> set[int]:
    """ids of the body's steps its new carry and ys need (and the impure ones)."""
    need = {v.id for v in list(spec.c_out) + list(spec.y_out)}
    live: set[int] = set()
    for s in reversed(spec.steps):
        if s.pure and not any(o.id in need for o in s.outputs):
            continue
        live.add(id(s))
        need.update(v.id for v in s.input_vars())
    return live


def _residual_output(tracer: Any, f_step: Step, fv: Var) -> Var:
    """The program Var of ``F``'s stacked ``ys`` holding ``fv`` at every row: an existing
    ``y``, or a new one."""
    fs = f_step.fn.spec
    p = len(fs.y_out)
    for q, y in enumerate(fs.y_out):
        if y.id == fv.id:
            return f_step.outputs[fs.n + q]
    out = Var(len(tracer.vars), (fs.length,) + tuple(fv.shape), fv.dtype)
    tracer.vars.append(out)
    fs.y_out.append(fv)
    f_step.outputs = f_step.outputs[:fs.n + p] + (out,) + f_step.outputs[fs.n + p:]
    known = tracer._loop_outputs
    f, at, _ = known[f_step.outputs[0].id]
    for pos, v in enumerate(f_step.outputs):
        known[v.id] = (f, at, pos)
    return out


def _rewrite_backward(tracer: Any, step: Step, stay: list, match: dict, needed: list,
                      outs: list) -> None:
    """``step``'s body without the matched steps, reading the residuals as new ``x`` inputs;
    the ``x`` inputs it no longer reads dropped."""
    from .loops import _free_vars  # noqa: PLC0415 (loops imports this module)

    spec = step.fn.spec
    r_in = {}
    for fv in needed:
        v = Var(len(tracer.vars), tuple(fv.shape), fv.dtype)
        tracer.vars.append(v)
        r_in[fv.id] = v
    sub = {vid: r_in[fv.id] for vid, fv in match.items() if fv.id in r_in}

    def put(x: Any) -> Any:
        return sub.get(x.id, x) if type(x) is Var else x

    spec.steps = [s if not any(type(x) is Var and x.id in sub for x in s.inputs) else
                  Step(s.fn, s.op, s.name, tuple(put(x) for x in s.inputs), s.params,
                       s.outputs, s.dynamic, s.multi, s.pure) for s in stay]
    spec.c_out = [put(v) for v in spec.c_out]
    spec.y_out = [put(v) for v in spec.y_out]
    read = {v.id for s in spec.steps for v in s.input_vars()}
    read.update(v.id for v in list(spec.c_out) + list(spec.y_out))
    k, n = spec.k, spec.n
    xs = [(r, v) for r, v in zip(step.inputs[k + n:k + n + spec.m], spec.x_in) if v.id in read]
    xs += [(o, r_in[fv.id]) for o, fv in zip(outs, needed)]
    spec.x_in = [v for _, v in xs]
    spec.m = len(xs)
    spec.free = _free_vars(spec)
    step.inputs = step.inputs[:k + n] + tuple(r for r, _ in xs) + tuple(spec.free)
