"""Running a program step by step with NumPy, and committing its effects.

:class:`Interpreter` is the reference executor: each step calls the function it recorded (an
op's NumPy forward, a NumPy call) on the values of its inputs, and values are dropped after
their last use. The compiled runner (:mod:`fungrad.jit.compiled`) must give the same results;
it falls back to this one when Numba cannot be used. :func:`commit` writes a finished run's
effects back into the objects the step changed.

>>> import numpy as np, fungrad as fg
>>> from fungrad.jit.tracer import trace
>>> prog, _ = trace(lambda x: fg.sum(x * 2), (np.ones(3),), {})
>>> Interpreter(prog)([np.arange(3.0)])[0]
[np.float64(6.0)]
"""

from __future__ import annotations

import itertools
import operator
from typing import Any

import numpy as np

from ..errors import FungradError
from ..registry import _explain
from ..tensor import Tensor
from .program import Binding, Effect, Program, Var, subst, var_refs

__all__ = ["Interpreter", "commit", "Committer", "locate", "run_step", "call_step", "IN_PLACE"]


class _InPlace:
    def __repr__(self) -> str:
        return "IN_PLACE"


#: an effect value the compiled program already stored in place (commit bumps the version)
IN_PLACE = _InPlace()


def call_step(step, args: list, params, fn=None):
    """``step``'s function (or ``fn``, a variant of it) on ``args``: an error of its op is
    explained as eager mode explains it (the op, the shapes and dtypes). The interpreter and
    the compiled program's Python steps both run steps through here."""
    try:
        return (step.fn if fn is None else fn)(*args, **params)
    except FungradError:
        raise
    except Exception as e:
        if step.op is None:
            raise
        raise _explain(step.op, e, args, params) from e


def run_step(step, env: list) -> None:
    """Run one step on the values in ``env`` (indexed by Var id), storing its outputs there."""
    args = [env[x.id] if type(x) is Var else x for x in step.inputs]
    params = subst(step.params, env) if step.dynamic else step.params
    out = call_step(step, args, params)
    if step.multi:
        for v, o in zip(step.outputs, out):
            env[v.id] = o
    else:
        env[step.outputs[0].id] = out


class Interpreter:
    """Run a :class:`Program` with NumPy: ``Interpreter(p)(leaves) -> (outputs, effect values)``.

    ``leaves`` are the call's dynamic argument leaves (what the inputs' bindings read).
    """

    def __init__(self, program: Program) -> None:
        self.program = program
        keep = {x.id for x in program.outputs if type(x) is Var}
        for e in program.effects:
            keep.update(v.id for v in var_refs(e.ref))
        last: dict[int, int] = {}
        for i, step in enumerate(program.steps):
            for v in step.input_vars():
                last[v.id] = i
        free: list[list[int]] = [[] for _ in program.steps]
        for vid, i in last.items():
            if vid not in keep:
                free[i].append(vid)
        self.free = free

    def __call__(self, leaves: list) -> tuple[list, list]:
        p = self.program
        env: list = [None] * p.n_vars
        for var, binding in p.inputs:
            env[var.id] = binding.read(leaves)
        for step, dead in zip(p.steps, self.free):
            run_step(step, env)
            for vid in dead:
                env[vid] = None
        outs = [env[x.id] if type(x) is Var else x for x in p.outputs]
        effs = [subst(e.ref, env) for e in p.effects]
        return outs, effs


def locate(binding: Binding, leaves: list) -> Any:
    """The Tensor an effect's target binding names."""
    kind = binding.kind
    if kind == "arg":
        return leaves[binding.key]
    if kind == "data":
        return binding.obj
    if kind == "grad":
        return binding.obj._grad
    if kind == "arg_grad":
        return leaves[binding.key]._grad
    raise ValueError(f"no Tensor behind binding {binding!r}")


def commit(effects: list[Effect], values: list, leaves: list, fresh: bool = False) -> None:
    """Write effects into the objects they name: data in place (bumping the version), new
    ``.grad`` Tensors, optimizer state. ``fresh`` says the values are the run's own arrays
    (no copy needed for a new ``.grad``). See :class:`Committer` for the fast form."""
    Committer(effects)(values, leaves, fresh)


class Committer:
    """``commit`` for one program's effects, with the common case — a captured parameter
    updated in place by the compiled program — reduced to a version bump in one loop."""

    def __init__(self, effects: list[Effect], in_place: frozenset = frozenset()) -> None:
        self.effects = effects
        self.fixed = [i for i, e in enumerate(effects)
                      if e.kind == "data" and e.target.kind in ("data", "grad")]
        self.fixed_tensors = [effects[i].target.obj for i in self.fixed
                              if effects[i].target.kind == "data"]
        self.fixed_grads = [effects[i].target.obj for i in self.fixed
                            if effects[i].target.kind == "grad"]
        fixed = set(self.fixed)
        self.rest = [i for i in range(len(effects)) if i not in fixed]
        self.always_in_place = fixed <= in_place  # ``in_place``: the runner's static promise
        #: a deferred optimizer step (jit/optimizers.py) whose claim may have bumped the
        #: accumulated gradients' versions already
        self.deferred = next((e.target for e in effects if e.kind == "call"
                              and hasattr(e.target, "bumped_grads")), None)

    def __call__(self, values: list, leaves: list, fresh: bool = False) -> None:
        if self.deferred is None:
            return self._commit(values, leaves, fresh)
        try:
            self._commit(values, leaves, fresh)
        finally:
            self.deferred.abort(ran=True)  # (a claim its step did not take: the commit failed)

    def _commit(self, values: list, leaves: list, fresh: bool) -> None:
        if self.fixed:
            grads_bumped = self.deferred is not None and self.deferred.bumped_grads()
            fixed_values = [] if self.always_in_place else [values[i] for i in self.fixed]
            if self.always_in_place or sum(map(operator.is_, fixed_values,
                                               itertools.repeat(IN_PLACE))) == len(fixed_values):
                for t in self.fixed_tensors:
                    t._version += 1
                if not grads_bumped:
                    for g in map(_GRAD, self.fixed_grads):  # a .grad accumulated in place
                        if g is not None:
                            g._version += 1
            else:
                _commit_data([self.effects[i] for i in self.fixed], fixed_values, leaves,
                             grads_bumped)
        if self.rest:
            rest = [self.effects[i] for i in self.rest]
            rest_values = [values[i] for i in self.rest]
            _commit_data(rest, rest_values, leaves)
            _commit_other(rest, rest_values, leaves, fresh)


_GRAD = operator.attrgetter("_grad")


def _commit_data(effects: list[Effect], values: list, leaves: list,
                 grads_bumped: bool = False) -> None:
    """Data effects, in place; ``grads_bumped``: the versions of the ``.grad`` Tensors written
    are already bumped (a deferred optimizer step's claim did it)."""
    # data first: a ``.grad`` whose data changed may be replaced by a grad effect afterwards
    for eff, val in zip(effects, values):
        if eff.kind != "data":
            continue
        t = locate(eff.target, leaves)
        if t is None:
            continue
        bump = 0 if grads_bumped and eff.target.kind == "grad" else 1
        if val is IN_PLACE:  # the compiled program wrote it already
            t._version += bump
            continue
        arr = t._data
        if (type(arr) is np.ndarray and arr.shape == np.shape(val) and arr.flags.writeable
                and not np.shares_memory(arr, val)):
            np.copyto(arr, val, casting="unsafe")
        elif val is not arr:
            t._data = np.array(val, dtype=arr.dtype if hasattr(arr, "dtype") else None)
        t._version += bump


def _commit_other(effects: list[Effect], values: list, leaves: list, fresh: bool) -> None:
    seen: set = set()
    for eff, val in zip(effects, values):
        if eff.kind == "write":  # an argument changed in place, an ``out=`` array
            target = eff.target.read(leaves)
            if isinstance(target, np.ndarray) and target.flags.writeable \
                    and val is not IN_PLACE and val is not target:
                np.copyto(target, val, casting="unsafe")
        elif eff.kind == "grad":
            t = locate(eff.target, leaves)
            if val is None:
                t._grad = None
            else:
                arr = np.asarray(val)
                if not fresh or id(arr) in seen or arr.base is not None:
                    arr = np.array(arr, copy=True)
                seen.add(id(arr))
                t._grad = Tensor._make(arr, None)
        elif eff.kind == "call" and val is not IN_PLACE:
            eff.target(val)
