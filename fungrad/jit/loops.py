"""Structured loops under fg.jit: a loop is one step of the program, its body traced once.

When the tracer meets the ``scan`` or ``while_loop`` primitive (:mod:`fungrad.control`) — a
user's ``fg.scan`` / ``fori_loop`` / ``while_loop``, or the scan a loop's VJP runs — it calls
:func:`record_loop` instead of running the primitive's forward. That traces *one step* of the
body on traced inputs standing for the carry and the ``x`` slice (and, for a while_loop, the
condition before it), takes the steps it recorded out of the program into a
:class:`LoopSpec`, and records a single step whose function is a :class:`LoopStep`. Values the
body reads from outside — parameters through its closure, a caller's traced values — are the
step's *free* inputs, read by the body at every iteration. So the program holds one copy of the
body, whatever the trip count; the compiler (:mod:`fungrad.jit.passes.loops`) turns it into a
loop of the runner, and anything it cannot compile runs the loop as a Python step
(:meth:`LoopStep.__call__`, the body's steps interpreted once per iteration) with a
:class:`~fungrad.errors.JitFallbackWarning` naming the loop.

The loop's values when tracing (the tracer is concrete) come from compiling the loop step on
its own and running it once (:func:`_run_compiled`): one compile of the body, not a Python run
of every iteration. Constants the body records are hoisted into the program.

A while_loop differentiated in reverse mode saves the carry before each step, so its outputs'
shapes hold the trip count: the program is specialised on the trip count it traced, and a
call whose loop runs another number of steps traces again (the Python step that runs it
raises :class:`~fungrad.jit.program.Stale`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import recording
from ..errors import TracingError
from ..tensor import Tensor
from .program import Stale, Step, Var, var_refs
from .traced import TracedArray

__all__ = ["LoopSpec", "LoopStep", "record_loop", "LOOP_OPS"]

#: the names of the primitives recorded as loops
LOOP_OPS = frozenset({"scan", "while_loop"})


class LoopSpec:
    """One traced step of a loop's body, and the loop around it.

    ``k``, ``n``, ``m``: the numbers of consts, carry leaves and ``xs`` leaves among the
    primitive's inputs; ``c_in``/``x_in``: the Vars standing for the carry and the ``x``
    slice in the body; ``cond_steps`` then ``flag`` (a while_loop's condition on ``c_in``);
    ``steps``: the body's steps; ``c_out``/``y_out``: the Vars of the new carry and of ``y``;
    ``free``: Vars of the program the body reads; ``kept``: the carry leaves saved before each
    step (``save``); ``trips``: a saving while_loop's traced trip count; ``remat``: ids of
    the body's Vars a checkpoint recomputes (never taken from another loop, see
    :mod:`.residuals`).
    """

    __slots__ = ("kind", "name", "k", "n", "m", "length", "reverse", "save", "kept", "c_in",
                 "x_in", "cond_steps", "flag", "steps", "c_out", "y_out", "free", "trips",
                 "remat")

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def all_steps(self) -> list[Step]:
        return list(self.cond_steps) + list(self.steps)


class LoopStep:
    """A loop step's function: runs the loop in Python, interpreting the body's steps once per
    iteration (the reference the compiled loop matches, and its fallback). Its inputs are the
    primitive's (consts, init, xs) then the free Vars' values; its outputs the primitive's
    (final carry, stacked ys, saved carries)."""

    def __init__(self, spec: LoopSpec) -> None:
        self.spec = spec
        self.__name__ = spec.name

    def jit_lower(self, low: Any, step: Step) -> None:
        """Lower this loop (the compiler's rule for the step, see :mod:`.passes.loops`)."""
        from .passes.loops import lower_loop  # noqa: PLC0415 (the compiler imports this)

        lower_loop(low, step)

    def __call__(self, *values: Any) -> tuple:
        from .interpret import run_step  # noqa: PLC0415

        sp = self.spec
        k, n, m = sp.k, sp.n, sp.m
        env: dict[int, Any] = {v.id: x for v, x in zip(sp.free, values[k + n + m:])}
        carry = [np.array(values[k + j], dtype=sp.c_in[j].dtype) for j in range(n)]
        xs = [np.asarray(x) for x in values[k + n:k + n + m]]
        saved: list[list] = [[] for _ in sp.kept]
        ys: list[list] = [[] for _ in sp.y_out]
        if sp.kind == "scan":
            order: Any = range(sp.length - 1, -1, -1) if sp.reverse else range(sp.length)
        else:
            order = iter(int, 1)  # until the condition fails
        trips = 0
        for t in order:
            for j, c in zip(sp.c_in, carry):
                env[j.id] = c
            if sp.kind == "while":
                for s in sp.cond_steps:
                    run_step(s, env)
                if not bool(env[sp.flag.id]):
                    break
            for lst, j in zip(saved, sp.kept):
                lst.append(carry[j])
            for v, x in zip(sp.x_in, xs):
                env[v.id] = x[t, ...]
            for s in sp.steps:
                run_step(s, env)
            for lst, v in zip(ys, sp.y_out):
                lst.append(np.array(env[v.id], dtype=v.dtype))
            carry = [np.array(env[v.id], dtype=c.dtype) for v, c in zip(sp.c_out, sp.c_in)]
            trips += 1
        if sp.trips is not None and trips != sp.trips:
            raise Stale()  # a saving while_loop ran another number of steps: trace again
        if sp.reverse:
            for lst in ys:
                lst.reverse()
            for lst in saved:
                lst.reverse()
        out = list(carry)
        out += [_stacked(lst, v) for lst, v in zip(ys, sp.y_out)]
        out += [_stacked(lst, sp.c_in[j]) for lst, j in zip(saved, sp.kept)]
        return tuple(out)


def _stacked(rows: list, v: Var) -> np.ndarray:
    return np.stack(rows) if rows else np.empty((0,) + tuple(v.shape), v.dtype)


class _Spy:
    """While a body is traced: the values of the program's Vars it reads (the free Vars' values
    the loop's first run needs), where its steps start in the program (``start``), and the
    Vars of the steps it records while a checkpoint recomputes its function (``remat``: what
    the user asked not to keep, see :mod:`.residuals`)."""

    def __init__(self, tracer: Any, start: int) -> None:
        self.tracer = tracer
        self.start = start
        self.values: dict[int, Any] = {}
        self.remat: set[int] = set()
        from ..control.checkpoint import rematerializing  # noqa: PLC0415 (control sits above)

        self.rematerializing = rematerializing
        self.record = tracer.record
        self.check = tracer.check

    def see(self, tree: Any) -> None:
        if type(tree) is TracedArray:
            self.values.setdefault(tree._var.id, tree._value)
        elif isinstance(tree, (tuple, list)):
            for x in tree:
                self.see(x)
        elif isinstance(tree, dict):
            for x in tree.values():
                self.see(x)

    def _mark(self, before: int) -> None:
        if self.rematerializing():
            for s in self.tracer.steps[before:]:
                self.remat.update(o.id for o in s.outputs)

    def __enter__(self) -> "_Spy":
        t = self.tracer

        def record(fn, args, params, op=None, name=None):
            self.see(args)
            if params:
                self.see(params)
            before = len(t.steps)
            out = self.record(fn, args, params, op, name)
            self._mark(before)
            return out

        def check(fn, *args, bounds=None):
            self.see(args)
            before = len(t.steps)
            out = self.check(fn, *args, bounds=bounds)
            self._mark(before)
            return out

        self.outer = getattr(t, "_loop_spy", None)
        t.record, t.check, t._loop_spy = record, check, self
        return self

    def __exit__(self, *exc: Any) -> None:
        t = self.tracer
        if self.outer is None:
            del t.record, t.check
        else:  # a loop inside a loop's body: the outer spy's again
            t.record, t.check = self.record, self.check
        t._loop_spy = self.outer
        if self.outer is not None:
            self.outer.values.update(self.values)
            self.outer.remat.update(self.remat)


def _concrete(x: Any) -> Any:
    return x._value if type(x) is TracedArray else x


def record_loop(tracer: Any, op: Any, datas: list, params: dict) -> tuple:
    """Record the loop primitive ``op`` on ``datas`` as one step (see the module docstring);
    returns its outputs as traced arrays, computed by running it once."""
    from .residuals import forward_residuals, note_loop  # noqa: PLC0415

    body = params["body"]
    kind = "while" if "cond" in params else "scan"
    k, n = body.n_consts, body.carry.n
    save = bool(params.get("save", False))
    spec = LoopSpec(kind=kind, name=body.name, k=k, n=n, m=len(datas) - k - n,
                    length=int(params["length"]) if kind == "scan" else None,
                    reverse=bool(params.get("reverse", False)), save=save,
                    kept=[j for j in range(n) if save and not body.additive[j]])
    outer = getattr(tracer, "_loop_spy", None)
    if outer is not None:
        outer.see(list(datas))
    concrete = [np.asarray(_concrete(d)) for d in datas]
    sub = _trace_body(tracer, body, params, spec, datas, concrete)
    free_vals = [sub.values[v.id] for v in spec.free]
    if outer is not None:
        outer.values.update(zip((v.id for v in spec.free), free_vals))
    fn = LoopStep(spec)
    refs = tuple(d._var if type(d) is TracedArray else d for d in datas)
    step = Step(fn, None, body.name, refs + tuple(spec.free), {}, (), False, True,
                pure=not _impure(spec))
    outs = _loop_values(tracer, step, concrete, free_vals)
    step.outputs = tuple(tracer.new_var(o) for o in outs)
    tracer.steps.append(step)
    forward_residuals(tracer, step, outer.start if outer is not None else 0)
    note_loop(tracer, step)
    return tuple(TracedArray(tracer, v, o) for v, o in zip(step.outputs, outs))


def _trace_body(tracer: Any, body: Any, params: dict, spec: LoopSpec, datas: list,
                concrete: list) -> "_Spy":
    """Trace one step of ``body`` (and a while_loop's condition before it) on traced arrays
    standing for the carry and the ``x`` slice; fill ``spec`` with what it recorded, taken out
    of the program. Returns the spy that saw the program values the body reads."""
    from ..control._body import pure  # noqa: PLC0415 (control sits above jit)

    k, n = spec.k, spec.n
    c_vals = [concrete[k + j] for j in range(n)]
    x_vals = _first_slices(spec, concrete[k + n:])
    first_var = len(tracer.vars)
    c_in = [_sub_input(tracer, v) for v in c_vals]
    x_in = [_sub_input(tracer, v) for v in x_vals]
    start = len(tracer.steps)
    with pure(), _Spy(tracer, start) as sub:
        flag, mid, c_vars, y_vars = _call_body(tracer, sub, body, params, datas[:k], c_in,
                                               x_in, c_vals)
        steps, n_cond = _take_steps(tracer, start, mid, sub)
    _refuse_changes(tracer, body.name, first_var)
    spec.c_in, spec.x_in = [a._var for a in c_in], [a._var for a in x_in]
    spec.cond_steps, spec.steps, spec.flag = steps[:n_cond], steps[n_cond:], flag
    spec.c_out, spec.y_out = c_vars, y_vars
    spec.free = _free_vars(spec)
    spec.remat = frozenset(sub.remat)
    return sub


def _first_slices(spec: LoopSpec, xs: list) -> list:
    """The ``x`` slice the body is traced on: the first step's (zeros for an empty scan)."""
    if spec.kind != "scan":
        return []
    t0 = spec.length - 1 if spec.reverse else 0
    return [x[t0, ...] if spec.length else np.zeros(x.shape[1:], x.dtype) for x in xs]


def _call_body(tracer: Any, sub: "_Spy", body: Any, params: dict, consts: list, c_in: list,
               x_in: list, c_vals: list) -> tuple:
    """Run the condition (a while_loop's) and the body on the traced stand-ins: ``(flag,
    where the body's steps start, carry Vars, y Vars)``."""
    from ..control._body import check_carry  # noqa: PLC0415 (control sits above jit)
    from ..control.primitives import condition  # noqa: PLC0415

    wk = [Tensor._make(d) for d in consts]
    flag = None
    if "cond" in params:
        going = params["cond"](body.carry.build([Tensor._make(c) for c in c_in]))
        flag = _var_of(tracer, condition(body.name, going), np.dtype(np.bool_))
    mid = len(tracer.steps)
    c_out, y_out = body.call(wk, [Tensor._make(c) for c in c_in], [Tensor._make(x) for x in x_in])
    ref = [(tuple(v.shape), v.dtype) for v in c_vals]
    c_out = check_carry(body.name, body.carry, ref, c_out, 0)
    c_vars = [_var_of(tracer, c, dt) for c, (_, dt) in zip(c_out, ref)]
    y_vars = [_var_of(tracer, _data(y), None) for y in y_out]
    sub.see(list(c_out) + [_data(y) for y in y_out])
    return flag, mid, c_vars, y_vars


def _take_steps(tracer: Any, start: int, mid: int, sub: "_Spy") -> tuple[list, int]:
    """The steps the body recorded (from ``start``), out of the program, and how many of them
    are the condition's (those before ``mid``). Constants do not depend on the step: they are
    hoisted into the program (a Tensor whose data the trace made a constant may be read after
    the loop too)."""
    steps = tracer.steps[start:]
    del tracer.steps[start:]
    hoisted = {id(s) for s in steps if _is_const(s)}
    for s in steps:
        if id(s) in hoisted:
            tracer.steps.append(s)
            sub.values[s.outputs[0].id] = s.inputs[0]
    n_cond = sum(1 for s in steps[:mid - start] if id(s) not in hoisted)
    return [s for s in steps if id(s) not in hoisted], n_cond


def _free_vars(spec: LoopSpec) -> list[Var]:
    """The program's Vars the body (and the condition) reads: what it does not make itself."""
    made = {v.id for v in list(spec.c_in) + list(spec.x_in)}
    for s in spec.all_steps():
        made.update(o.id for o in s.outputs)
    free: dict[int, Var] = {}
    for s in spec.all_steps():
        for v in list(s.input_vars()) + list(var_refs(s.params)):
            if v.id not in made:
                free.setdefault(v.id, v)
    for v in list(spec.c_out) + list(spec.y_out) + ([spec.flag] if spec.flag is not None
                                                    else []):
        if v.id not in made:
            free.setdefault(v.id, v)
    return list(free.values())


def _loop_values(tracer: Any, step: Step, concrete: list, free_vals: list) -> list:
    """The loop's outputs on the trace's values: compiled (:func:`_run_compiled`), or, for a
    saving while_loop whose outputs' shapes are its trip count, run in Python."""
    fn = step.fn
    sp = fn.spec
    values = list(concrete) + free_vals
    if sp.kind == "scan" or not sp.save:
        return _run_compiled(tracer, step, values, sp)
    hook, recording.thread.hook = recording.thread.hook, None
    try:
        outs = fn(*values)
        sp.trips = len(outs[sp.n]) if sp.kept else _count_trips(fn, concrete, free_vals)
    finally:
        recording.thread.hook = hook
    return outs


def _run_compiled(tracer: Any, step: Step, values: list, spec: LoopSpec) -> list:
    """The loop's outputs on the trace's values, computed by compiling the loop on its own
    (a program of this one step): what the tracer needs costs one compile of the body, not a
    Python run of every iteration. (A body the compiler leaves to Python runs as the Python
    step inside that program; its warning comes with the whole program's compile.)"""
    import warnings  # noqa: PLC0415

    from .compiled import compile_program  # noqa: PLC0415 (the compiler imports the tracer)
    from .interpret import Interpreter  # noqa: PLC0415
    from .program import Binding, Program  # noqa: PLC0415

    inputs: list = []
    leaves: list = []
    seen: set[int] = set()
    for ref, val in zip(step.inputs, values):
        if type(ref) is Var and ref.id not in seen:
            seen.add(ref.id)
            inputs.append((ref, Binding("arg", key=len(leaves))))
            leaves.append(ref.weak(val) if ref.weak is not None else np.asarray(val))
    outs = [Var(len(tracer.vars) + i, tuple(v.shape), v.dtype)
            for i, v in enumerate(_out_avals(spec))]
    step.outputs = tuple(outs)
    program = Program(inputs, [step], list(outs), None, ["array"] * len(outs), [], [],
                      len(tracer.vars) + len(outs), spec.name)
    st = recording.thread
    hook = st.hook
    st.hook = None  # (the program runs NumPy steps on values)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # (with Numba's kernels not built yet, the loop runs in Python meanwhile)
            exe = compile_program(program, fallback=Interpreter(program))
        result, _ = exe(leaves)
    finally:
        st.hook = hook
    return [np.array(r) for r in result]


def _out_avals(spec: LoopSpec) -> list:
    """Stand-ins of the loop's outputs (shape, dtype): final carry, ys, saved carries."""
    out = [_Aval(v.shape, v.dtype) for v in spec.c_in]
    if spec.kind == "scan":
        rows = (spec.length,)
        out += [_Aval(rows + tuple(v.shape), v.dtype) for v in spec.y_out]
        out += [_Aval(rows + tuple(spec.c_in[j].shape), spec.c_in[j].dtype) for j in spec.kept]
    return out


class _Aval:
    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple, dtype: Any) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)


def _count_trips(fn: LoopStep, concrete: list, free_vals: list) -> int:
    """The trip count of a saving while_loop that keeps no carry (none to count rows of)."""
    sp = fn.spec
    probe = LoopSpec(**{name: getattr(sp, name) for name in LoopSpec.__slots__})
    probe.kept = list(range(sp.n))
    return len(LoopStep(probe)(*concrete, *free_vals)[sp.n])


def _is_const(s: Step) -> bool:
    """A constant step of the tracer (``Tracer.constant``): no inputs, one value."""
    return s.name == "const" and s.op is None and not s.input_vars() and len(s.outputs) == 1


def _impure(spec: LoopSpec) -> bool:
    return any(not s.pure and not s.name.startswith("check:") for s in spec.all_steps())


def _sub_input(tracer: Any, value: np.ndarray) -> TracedArray:
    """A traced array standing for a loop's carry or ``x`` in its body (no program input)."""
    return TracedArray(tracer, tracer.new_var(value), value)


def _data(v: Any) -> Any:
    return v._data if isinstance(v, Tensor) else v


def _var_of(tracer: Any, v: Any, dtype: Any) -> Var:
    """The Var of a body's output: its traced array's, or a constant step's."""
    v = _data(v)
    if type(v) is TracedArray:
        return v._var
    return tracer.constant(np.asarray(v, dtype=dtype))._var


def _refuse_changes(tracer: Any, name: str, first_var: int) -> None:
    """A body that assigns a Tensor's data or .grad would leave the program a value of one
    iteration: refused (its new value belongs in the carry)."""
    inputs = {v.id for v, _ in tracer.inputs}
    for tr in tracer.tracked.values():
        for what, d in (("data", tr.tensor._data), ("grad", getattr(tr.tensor._grad, "_data",
                                                                    None))):
            if type(d) is TracedArray and d._var.id >= first_var and d._var.id not in inputs:
                raise TracingError(
                    f"fg.jit: the body of {name} assigns a Tensor's .{what} (of shape "
                    f"{tuple(tr.tensor.shape)}); a loop body must be a function of its carry "
                    "and x: return the new value in the carry instead")
