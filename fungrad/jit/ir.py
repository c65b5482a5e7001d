"""The compiler's intermediate representation: storages of values and lowered nodes.

Lowering (:mod:`fungrad.jit.passes.lower`) turns each program step into :class:`Node` s and
gives every value (a :class:`~fungrad.jit.program.Var`) a *storage*:

- ``Ext`` (a program input, an array read at each call), ``Const`` (an array constant),
  ``Scalar`` (a Python number or 0-d constant: runtime slot ``S`` or constant slot ``K``),
  ``View`` (elements of an ``Ext``/``Const``/``Own`` root, in element offsets and strides),
  ``Own`` (produced by a node; its buffer is planned by emission) and ``PyObj`` (a value only
  Python steps can use: a dtype the kernels do not handle).

Rewriting, scheduling and emission read and refine these; nothing here runs anything.
"""

from __future__ import annotations

import functools

import numpy as np

from .program import Step, Var

__all__ = ["Node", "Ext", "Const", "Scalar", "View", "Own", "PyObj", "Unsupported", "PassFailure",
           "BUFFER_DTYPES", "FLOATS", "c_strides", "is_c_contiguous"]

BUFFER_DTYPES = {np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64),
                 np.dtype(np.bool_)}
FLOATS = {np.dtype(np.float32), np.dtype(np.float64)}



# -- storages ----------------------------------------------------------------------------------


class Ext:
    """A program input array (its binding is read at each call)."""
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class Const:
    __slots__ = ("value",)

    def __init__(self, value: np.ndarray) -> None:
        self.value = np.ascontiguousarray(value)


class Scalar:
    """A number: runtime (``S[index]``, an input or a Python step's result) or constant."""
    __slots__ = ("runtime", "index", "value", "weak")

    def __init__(self, runtime: bool, index: int = -1, value: float = 0.0, weak=None) -> None:
        self.runtime = runtime
        self.index = index
        self.value = value
        self.weak = weak


class View:
    """Elements ``offset + sum(i_k * strides[k])`` of root ``base``'s buffer."""
    __slots__ = ("base", "offset", "shape", "strides")

    def __init__(self, base: int, offset: int, shape: tuple, strides: tuple) -> None:
        self.base = base
        self.offset = offset
        self.shape = shape
        self.strides = strides


class Own:
    """Produced by a node into a buffer of its own (C-contiguous)."""
    __slots__ = ()


class PyObj:
    """Only Python steps can use this value (a dtype without kernels)."""
    __slots__ = ()


@functools.lru_cache(maxsize=4096)
def c_strides(shape: tuple) -> tuple:
    """Element strides of a C-contiguous array of ``shape`` (memoised: asked per operand)."""
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return tuple(reversed(out))


# -- nodes -------------------------------------------------------------------------------------


class Node:
    """One lowered step. ``kind``: ``"ew"``, ``"block"`` or ``"py"``.

    EW: ``op`` (a name of :data:`fungrad.jit.backend.kernels_ew.SUB`), ``args`` (Vars, or floats for
    constants), ``dtype`` (the compute dtype), ``out`` (one Var). Block: ``op`` (a kernel
    group name), ``args`` (Vars), ``params``, ``out``. Python: ``step`` and ``out`` (its Vars).
    """

    __slots__ = ("kind", "op", "args", "params", "out", "dtype", "step", "order")

    def __init__(self, kind: str, op: str, args: tuple, out: tuple, dtype=None, params=None,
                 step: Step | None = None) -> None:
        self.kind = kind
        self.op = op
        self.args = args
        self.out = out
        self.dtype = dtype
        self.params = params or {}
        self.step = step
        self.order = 0

    def in_vars(self) -> list[Var]:
        if self.kind == "py":
            assert self.step is not None  # (a Python node always has its step)
            return self.step.input_vars()
        out = [a for a in self.args if type(a) is Var]
        after = self.params.get("after")  # a running sum this node adds into
        if after is not None:
            out.append(after)
        return out

    def __repr__(self) -> str:
        return f"<{self.kind} {self.op} -> {self.out}>"


class Unsupported(Exception):
    """A step this lowering does not compile (it becomes a Python step)."""


class PassFailure(Exception):
    """A pass after lowering failed on the nodes of ``steps`` (a bug): the compiler lowers
    those steps as Python steps instead and tries again (see ``compiled.compile_program``)."""

    def __init__(self, pass_name: str, steps: list, cause: BaseException) -> None:
        super().__init__(f"{pass_name}: {type(cause).__name__}: {cause}")
        self.pass_name = pass_name
        self.steps = [s for s in steps if s is not None]
        self.cause = cause


def is_c_contiguous(shape: tuple, strides: tuple) -> bool:
    expect = 1
    for d, s in zip(reversed(shape), reversed(strides)):
        if d != 1 and s != expect:
            return False
        expect *= d
    return True

