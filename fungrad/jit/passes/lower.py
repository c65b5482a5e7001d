"""Lowering: each program step becomes a view, an elementwise node, a block node or a Python
step, and each value gets a storage.

- *Views* cost nothing at run time: ``reshape`` of a contiguous value, ``transpose``,
  ``squeeze``/``expand_dims``, ``broadcast_to``, basic indexing (``w[i]`` is the row at an
  offset), ``identity`` and copies (program values are never written in place).
- *Elementwise nodes* (``EW``) are fused later into groups (:mod:`fungrad.jit.passes.schedule`).
- *Block nodes* map one step to one kernel: matmul, reductions, gathers and scatters of rows,
  softmax cross-entropy and its gradient, the LSTM cell and its gradient, row softmax.
- Anything else — a user's ``defop``, an op added later, a NumPy call — becomes a *Python
  step* that runs the step's own function on NumPy views of the buffers. So every op works
  compiled; the compiled ones are just faster.

The rules, one module per op family, are in :mod:`fungrad.jit.passes.rules`, keyed by op
object; the state they build is :class:`~fungrad.jit.passes.lowering.Lowering`; the storages
and nodes are defined in :mod:`fungrad.jit.ir`.
"""

from __future__ import annotations

import warnings
from typing import Callable

from ...errors import JitFallbackWarning
from .. import tracer as _tracer
from ..ir import BUFFER_DTYPES, Ext, PyObj, Unsupported
from ..program import Program, Step
from .lowering import MATMUL_BLAS_MIN, RULES, Lowering
from .rules import elementwise as _elementwise

__all__ = ["lower", "Lowering", "MATMUL_BLAS_MIN", "fallback_warning"]


def lower(program: Program, python_steps: frozenset = frozenset()) -> Lowering:
    """Lower every step of ``program`` (see the module docstring). Steps whose ``id`` is in
    ``python_steps`` become Python steps (a later pass failed on them). A handler that fails
    with anything but :class:`Unsupported` (a bug) leaves its step to Python too, with a
    :class:`~fungrad.errors.JitFallbackWarning` naming the op: the answer stays right."""
    low = Lowering(program)
    for var, _ in program.inputs:
        if var.weak is not None and var.weak is not complex:
            low.storage[var.id] = low.runtime_scalar(var.weak)
        elif var.weak is None and var.dtype in BUFFER_DTYPES:
            low.storage[var.id] = Ext(len(low.ext_vars))
            low.ext_vars.append(var)
        else:
            low.storage[var.id] = PyObj()
    # _rule's answer per kind of step, memoised by the id of its op, then of its function
    # (two lookups, no key tuple: this runs once per recorded op)
    by_op: dict[int, dict[int, Callable | None]] = {}
    nodes = low.nodes
    for step in program.steps:
        low.step = step
        if python_steps and id(step) in python_steps:
            handler = None
        else:
            fns = by_op.get(id(step.op))
            if fns is None:
                fns = by_op[id(step.op)] = {}
            handler = fns.get(id(step.fn), _rule)
            if handler is _rule:
                handler = fns[id(step.fn)] = _rule(step)
        if handler is not None:
            mark = len(nodes)
            try:
                handler(low, step)
                continue
            except Unsupported as why:
                reason = str(why)
            except Exception as e:  # noqa: BLE001 (a lowering bug: that op runs in Python)
                reason = f"{type(e).__name__}: {e}"
                fallback_warning(step, "lower", reason)
            del nodes[mark:]
            for v in step.outputs:
                low.storage.pop(v.id, None)
            low.fallbacks.append((step.name, reason))
        elif id(step) in python_steps:
            low.fallbacks.append((step.name, "a later pass failed on it"))
        else:
            low.fallbacks.append((step.name, "no compiled form"))
        low.python(step)
    if low.dropped:  # (the fills of scatters summed while lowering: Lowering.add_scatter)
        dropped = low.dropped
        low.nodes = [n for n in low.nodes if n not in dropped]
    return low


def fallback_warning(step: Step, pass_name: str, reason: str) -> None:
    """Say once per compile that ``step`` runs as a Python step because pass ``pass_name``
    failed on it (a compiler bug the user should not pay for with a wrong answer or crash)."""
    warnings.warn(f"fg.jit: op {step.name!r} could not be compiled ({pass_name} failed: "
                  f"{reason}); it runs as a Python step (correct, slower). {step!r}",
                  JitFallbackWarning, stacklevel=2)


def _rule(step: Step):
    """The lowering rule of ``step``: by its op object, or by the function it calls."""
    own = getattr(step.fn, "jit_lower", None)  # a step that brings its own rule (a loop)
    if own is not None:
        return own
    if step.op is not None:
        return RULES.get(step.op)
    if isinstance(step.fn, _tracer._Check):
        return _elementwise.BOUNDS_CHECK if step.fn.bounds is not None else None
    try:
        return RULES.get(step.fn)
    except TypeError:  # an unhashable callable: no rule
        return None
