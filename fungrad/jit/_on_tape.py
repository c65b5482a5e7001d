"""A jitted function's outputs on the eager tape: ``loss = jitted(x); loss.backward()``.

When a jitted function returns Tensors recorded for backward (they depend on parameters that
require grad) and runs no backward itself, a PyTorch or book-style caller differentiates the
result after the call. A compiled run does not extend the tape, so such a function is traced
once more with its backward: cotangents for the tape outputs are values of the program, and
the engine's backward (to the leaf Tensors reached, returning their cotangents rather than
writing ``.grad``) is recorded after the forward. The program is then split in two, as JAX's
linearize and PyTorch's AOTAutograd split a joint graph:

- the **forward** — every step that does not depend on the cotangents — computes the outputs
  and the *residuals* (the values the backward reads); it runs at the call;
- the **backward** — the steps that do — takes the cotangents and the residuals and returns
  one cotangent per leaf; it runs when backward reaches the outputs.

The outputs join the tape through one op node (:func:`tape_op`) whose inputs are the leaf
Tensors and whose VJP runs the backward program; the engine then accumulates into ``.grad``
as for any op, checks the leaves' versions, and frees the residuals with the graph. Random
draws are in the forward, so the backward sees the call's own dropout masks.

>>> import numpy as np, fungrad as fg
>>> w = fg.Tensor(np.array([1.0, 2.0]), autograd=True)
>>> f = fg.jit(lambda x: fg.sum(fg.tanh(w * x)))
>>> loss = f(np.ones(2))
>>> loss.backward()
>>> np.round(w.grad.data, 4)
array([0.42  , 0.0707])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backprop
from ..domains import default_domain
from ..registry import Op
from ..tensor import Tensor
from ..tree import flatten
from .program import Binding, Program, Var, var_refs
from .traced import TracedArray

__all__ = ["Backward", "trace_backward", "split", "tape_op", "tape_leaves"]


class Backward:
    """What :func:`trace_backward` recorded: the tape outputs (positions among the output
    leaves), the cotangent Vars fed to them, where the leaf Tensors reached are found at a
    call (Bindings) and their cotangents (Vars or constant arrays)."""

    __slots__ = ("positions", "g_vars", "bindings", "cots")

    def __init__(self, positions: list, g_vars: list, bindings: list, cots: list) -> None:
        self.positions = positions
        self.g_vars = g_vars
        self.bindings = bindings  # where each leaf Tensor is found at a call
        self.cots = cots


def tape_leaves(outs: list) -> list[Tensor]:
    """The leaf Tensors requiring grad that the recorded graph of ``outs`` reaches, in the
    order first met (an explicit stack: deep graphs do not recurse)."""
    seen: set = set()
    found: list[Tensor] = []
    stack = list(outs)
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = t._parent if t._parent is not None else t
        if node._op is None:
            if t.requires_grad:
                found.append(t)
            continue
        if node is not t:
            if id(node) in seen:
                continue
            seen.add(id(node))
        for a, v in zip(node._inputs or (), node._versions or ()):
            if v is not None and isinstance(a, Tensor) and a.requires_grad:
                stack.append(a)
    return found


def trace_backward(tracer: Any, result: Any) -> Backward | None:
    """While ``tracer`` is active, record the backward of ``result``'s tape outputs."""
    leaves, _ = flatten(result)
    positions = [i for i, x in enumerate(leaves) if isinstance(x, Tensor) and x.requires_grad
                 and (x._op is not None or x._parent is not None)]
    if not positions:
        return None
    if tracer.backward_ran:
        return None  # the function ran its own backward: the graph is spent
    outs = [leaves[i] for i in positions]
    targets = tape_leaves(outs)
    if not targets:
        return None
    g_vars, seeds = [], []
    for t in outs:
        value = np.ones(t._data.shape, t._data.dtype)
        var = tracer.new_var(value)
        g_vars.append(var)
        seeds.append(TracedArray(tracer, var, value))
    n_steps = len(tracer.steps)
    try:
        cots = backprop.backward(outs, seeds, retain_graph=True, targets=targets)
    except Exception:  # noqa: BLE001 (no traced backward: such calls then run eagerly)
        del tracer.steps[n_steps:]
        return None
    refs: list = []
    for t, c in zip(targets, cots or [None] * len(targets)):
        c = getattr(c, "_data", c)
        if type(c) is TracedArray:
            refs.append(c._var)
        elif c is None:
            refs.append(np.zeros(t._data.shape, np.result_type(t._data.dtype, np.float64)
                                 if t._data.dtype.kind not in "fc" else t._data.dtype))
        else:
            refs.append(np.array(c))
    bindings = [Binding("arg", key=tracer.arg_index[id(t)]) if id(t) in tracer.arg_index
                else Binding("data", t) for t in targets]
    return Backward(positions, g_vars, bindings, refs)


def split(program: Program, bw: Backward) -> tuple[Program, Program, list] | None:
    """``(forward, backward, leaf bindings)`` from a program traced with its backward, or
    None when the split does not apply (an effect or an output reads a backward value)."""
    dep = {v.id for v in bw.g_vars}
    fwd, bwd = [], []
    for s in program.steps:
        if any(v.id in dep for v in s.input_vars()):
            bwd.append(s)
            dep.update(o.id for o in s.outputs)
        else:
            fwd.append(s)
    for e in program.effects:
        if any(v.id in dep for v in var_refs(e.ref)):
            return None
    for o in program.outputs:
        if type(o) is Var and o.id in dep:
            return None
    residuals: dict[int, Var] = {}
    for s in bwd:
        for v in s.input_vars():
            if v.id not in dep:
                residuals.setdefault(v.id, v)
    for c in bw.cots:
        if type(c) is Var and c.id not in dep:
            residuals.setdefault(c.id, c)
    res = list(residuals.values())
    outs = list(program.outputs) + res
    forward = Program(program.inputs, fwd, outs, flatten(list(range(len(outs))))[1],
                      list(program.out_kinds) + ["array"] * len(res), program.effects,
                      program.guards, program.n_vars, program.name)
    ins = [(v, Binding("arg", key=j)) for j, v in enumerate(bw.g_vars)]
    ins += [(v, Binding("arg", key=len(bw.g_vars) + j)) for j, v in enumerate(res)]
    backward = Program(ins, bwd, list(bw.cots), flatten(list(range(len(bw.cots))))[1],
                       ["array"] * len(bw.cots), [], [], program.n_vars,
                       f"{program.name} (backward)")
    return forward, backward, bw.bindings


class _Call:
    """One call's forward results kept for its backward: outputs and residuals."""

    __slots__ = ("outputs", "residuals", "backward", "shapes")

    def __init__(self, outputs: tuple, residuals: list, backward: Any, shapes: list) -> None:
        self.outputs = outputs
        self.residuals = residuals
        self.backward = backward
        self.shapes = shapes


def _forward(*datas: Any, call: Any = None) -> Any:
    outs = call.outputs
    return outs if len(outs) > 1 else outs[0]


def _vjp(g: Any, out: Any, *datas: Any, call: Any = None) -> tuple:
    gs = g if isinstance(g, tuple) else (g,)
    seeds = []
    for x, (shape, dtype) in zip(gs, call.shapes):
        x = getattr(x, "_data", x)
        seeds.append(np.zeros(shape, dtype) if x is None else np.asarray(x))
    cots, _ = call.backward(seeds + list(call.residuals))
    return tuple(cots)


def tape_op(name: str, n_inputs: int, n_outputs: int) -> Op:
    """The op a jitted call's tape outputs are recorded with (not registered: it exists for
    one jitted program and is never called by name)."""
    return Op(f"jit[{name}]", _forward, _vjp, domain=default_domain(1), n_inputs=n_inputs,
              param_names=("call",), differentiable=None, twice_differentiable=False,
              check=None, builtin=True, doc="A jitted function's call on the tape.",
              n_outputs=n_outputs)


def call_on_tape(op: Op, tensors: list, outputs: list, residuals: list, backward: Any) -> Any:
    """Record the call: its tape outputs become the outputs of one node of ``op``."""
    from ..registry import apply  # noqa: PLC0415

    shapes = [(np.shape(o), np.asarray(o).dtype) for o in outputs]
    call = _Call(tuple(np.asarray(o) for o in outputs), residuals, backward, shapes)
    out = apply(op, tuple(tensors), {"call": call})
    return list(out) if isinstance(out, tuple) else [out]
