"""The program ``fg.jit`` traces a step into: values, steps, inputs, outputs and effects.

A :class:`Program` is a straight line of :class:`Step` s over :class:`Var` s (single
assignment, in execution order). Each step calls one function on arrays: a registered op's
forward (``step.op`` set) or a NumPy function reached through a traced array's methods.
Inputs say where each input value comes from when the program runs (a :class:`Binding`:
an argument, the data of a Tensor the function closed over, its ``.grad``, a number read
from an object); effects say what the program writes back when the whole step has
succeeded (a Tensor's data or ``.grad``, an optimizer's state); guards say what must still
hold for the program to be valid (a captured Tensor's shape, whether a ``.grad`` exists).

>>> import numpy as np
>>> from fungrad.jit.program import Var
>>> Var(0, (3, 4), np.dtype("float32"))
%0:float32[3,4]
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import FungradError

__all__ = ["Var", "Step", "Program", "Binding", "Effect", "Guard", "is_var", "map_vars", "subst",
           "var_refs", "format_program", "Stale"]


class Stale(FungradError):
    """Internal: the state a program was traced for has changed (a captured Tensor's shape,
    the number of elements a boolean mask selects); the caller traces again. Raised before
    anything is committed; the message, if any, says what changed. (A FungradError so that
    the runners' error handling passes it through as it is.)"""


class Var:
    """One value of a program: an id (its position in the program's value table), a shape, a
    dtype, and ``weak`` — the Python type of a value that is a Python number (``float``,
    ``int``, ``bool``), which NumPy promotes weakly (``float32 * 0.5`` stays float32)."""

    __slots__ = ("id", "shape", "dtype", "weak")

    def __init__(self, id: int, shape: tuple, dtype: np.dtype, weak: type | None = None):
        self.id = id
        self.shape = shape
        self.dtype = dtype
        self.weak = weak

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self) -> str:
        if self.weak is not None:
            return f"%{self.id}:{self.weak.__name__}"
        return f"%{self.id}:{self.dtype}[{','.join(map(str, self.shape))}]"


def is_var(x: Any) -> bool:
    """Whether ``x`` is a program value (else it is a constant)."""
    return type(x) is Var


class Step:
    """``outputs = fn(*inputs, **params)``; inputs and params may hold Vars or constants.

    ``op`` is the registered op when ``fn`` is its forward (``None`` for a NumPy call);
    ``dynamic`` says whether ``params`` holds Vars (a traced index array, say); ``multi``
    whether ``fn`` returns a tuple (one Var per element).
    """

    __slots__ = ("fn", "op", "name", "inputs", "params", "outputs", "dynamic", "multi", "pure")

    def __init__(self, fn: Callable, op: Any, name: str, inputs: tuple, params: dict,
                 outputs: tuple, dynamic: bool, multi: bool, pure: bool = True) -> None:
        self.pure = pure  # False: runs even if its result is unused (a random draw)
        self.fn = fn
        self.op = op
        self.name = name
        self.inputs = inputs
        self.params = params
        self.outputs = outputs
        self.dynamic = dynamic
        self.multi = multi

    def input_vars(self) -> list[Var]:
        """Every Var this step reads (inputs, then any inside its params)."""
        out = [x for x in self.inputs if type(x) is Var]
        if self.dynamic:
            out.extend(var_refs(self.params))
        return out

    def __repr__(self) -> str:
        outs = ", ".join(map(repr, self.outputs))
        ins = ", ".join(_short(x) for x in self.inputs)
        extra = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return f"{outs} = {self.name}({ins}{', ' if ins and extra else ''}{extra})"


def _short(x: Any) -> str:
    if type(x) is Var:
        return repr(x)
    if isinstance(x, np.ndarray):
        return f"const:{x.dtype}[{','.join(map(str, x.shape))}]"
    if isinstance(x, (tuple, list)):
        inner = ", ".join(_short(v) for v in x)
        return f"({inner})" if isinstance(x, tuple) else f"[{inner}]"
    return repr(x)


def var_refs(tree: Any) -> list[Var]:
    """The Vars inside nested tuples, lists and dicts."""
    out: list[Var] = []
    stack = [tree]
    while stack:
        x = stack.pop()
        if type(x) is Var:
            out.append(x)
        elif isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return out


def map_vars(tree: Any, fn: Callable[[Var], Any]) -> Any:
    """``tree`` (tuples, lists and dicts) with every Var ``v`` replaced by ``fn(v)``."""
    if type(tree) is Var:
        return fn(tree)
    if isinstance(tree, tuple):
        return tuple(map_vars(x, fn) for x in tree)
    if isinstance(tree, list):
        return [map_vars(x, fn) for x in tree]
    if isinstance(tree, dict):
        return {k: map_vars(v, fn) for k, v in tree.items()}
    return tree


def subst(tree: Any, env: list) -> Any:
    """``tree`` with every Var replaced by its value in ``env`` (indexed by Var id)."""
    return map_vars(tree, lambda v: env[v.id])


class Binding:
    """Where an input value comes from when the program runs.

    ``kind`` is one of ``"arg"`` (``key`` = position among the call's dynamic leaves; a
    Tensor leaf gives its data), ``"arg_grad"`` (the ``.grad`` data of argument Tensor
    ``key``), ``"data"`` (``obj`` is a Tensor the traced function reached: its data),
    ``"grad"`` (the data of ``obj.grad``), ``"attr"`` (a number: ``getattr(obj, key)``),
    ``"call"`` (``obj()`` — an optimizer's state array, say), ``"array"`` (``obj``, a NumPy
    array the function closed over and wrote into with ``out=``).
    """

    __slots__ = ("kind", "obj", "key")

    def __init__(self, kind: str, obj: Any = None, key: Any = None) -> None:
        self.kind = kind
        self.obj = obj
        self.key = key

    def read(self, leaves: list) -> Any:
        kind = self.kind
        if kind == "arg":
            x = leaves[self.key]
            return x._data if hasattr(x, "_data") and not isinstance(x, np.ndarray) else x
        if kind == "data":
            return self.obj._data
        if kind == "grad":
            return self.obj.grad._data
        if kind == "arg_grad":
            return leaves[self.key].grad._data
        if kind == "attr":
            return getattr(self.obj, self.key)
        if kind == "array":
            return self.obj
        return self.obj()

    def __repr__(self) -> str:
        if self.kind in ("arg", "arg_grad"):
            return f"{self.kind}[{self.key}]"
        if self.kind == "array":
            return f"array{tuple(np.shape(self.obj))}@{id(self.obj):x}"
        if self.kind == "attr":
            return f"{type(self.obj).__name__}.{self.key}"
        return f"{self.kind}({type(self.obj).__name__}@{id(self.obj):x})"


class Effect:
    """A write the program makes when the whole step has succeeded.

    ``kind``: ``"data"`` (store ``ref``'s value into the Tensor's array in place, bumping its
    version), ``"grad"`` (set the Tensor's ``.grad`` to a new Tensor holding ``ref``'s value,
    or to None when ``ref`` is None), ``"call"`` (``target(value)``: an optimizer's state),
    ``"write"`` (store ``ref``'s value into an ndarray in place: an argument the function
    changed in place, ``x += 1``, or an array it wrote with ``out=``).
    ``target`` is a Binding naming the Tensor (``arg``/``data``/``grad`` kinds) or, for
    ``"call"``, the function that stores the value.
    """

    __slots__ = ("kind", "target", "ref")

    def __init__(self, kind: str, target: Any, ref: Any) -> None:
        self.kind = kind
        self.target = target
        self.ref = ref

    def __repr__(self) -> str:
        return f"{self.kind} {self.target!r} <- {_short(self.ref)}"


class Guard:
    """A fact the program was traced under: ``read()`` must still equal ``expected``."""

    __slots__ = ("read", "expected", "what")

    def __init__(self, read: Callable[[], Any], expected: Any, what: str) -> None:
        self.read = read
        self.expected = expected
        self.what = what

    def holds(self) -> bool:
        try:
            return self.read() == self.expected
        except Exception:  # the object changed beyond recognition: not the traced state
            return False

    def __repr__(self) -> str:
        return f"guard {self.what} == {self.expected!r}"


class Program:
    """A traced step: inputs (Var, Binding), steps, outputs (Vars or constants) with the
    tree spec to rebuild them, effects and guards. ``n_vars`` sizes the value table."""

    __slots__ = ("inputs", "steps", "outputs", "out_spec", "out_kinds", "effects", "guards",
                 "n_vars", "name", "tape_outputs")

    def __init__(self, inputs, steps, outputs, out_spec, out_kinds, effects, guards, n_vars,
                 name: str = "step", tape_outputs: bool = False) -> None:
        self.inputs: list[tuple[Var, Binding]] = inputs
        self.steps: list[Step] = steps
        self.outputs: list = outputs
        self.out_spec = out_spec
        self.out_kinds: list[str] = out_kinds
        self.effects: list[Effect] = effects
        self.guards: list[Guard] = guards
        self.n_vars = n_vars
        self.name = name
        #: an output is a Tensor recorded for backward (it requires grad): differentiating
        #: it after the call needs the tape, which a compiled run does not extend
        self.tape_outputs = tape_outputs

    def __repr__(self) -> str:
        return format_program(self)


def format_program(p: Program, limit: int = 60) -> str:
    """A readable listing of a program (the first ``limit`` steps)."""
    lines = [f"program {p.name}: {len(p.inputs)} inputs, {len(p.steps)} steps, "
             f"{len(p.outputs)} outputs, {len(p.effects)} effects"]
    for var, b in p.inputs:
        lines.append(f"  in  {var!r} <- {b!r}")
    for s in p.steps[:limit]:
        lines.append(f"  {s!r}")
    if len(p.steps) > limit:
        lines.append(f"  ... {len(p.steps) - limit} more steps")
    for o in p.outputs:
        lines.append(f"  out {_short(o)}")
    for e in p.effects:
        lines.append(f"  eff {e!r}")
    return "\n".join(lines)
