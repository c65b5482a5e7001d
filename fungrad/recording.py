"""Recording state: per-thread flags, the global sequence counter, and anomaly checks.

Every recorded op call stamps its output Tensor with a number from one global counter, so
creation order is a topological order of the graph; :mod:`fungrad.backprop` walks it backwards.
Whether ops are recorded (``no_grad``), whether NaN/inf raise (``detect_anomaly``) and how many
functional transformations are tracing are per-thread flags: threads training separate models
do not see each other's settings.

This module is the bottom of the engine: it imports nothing else from fungrad but the errors.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .errors import AnomalyError

if TYPE_CHECKING:  # the interface only: the engine never imports fungrad.jit
    from .hooks import TracerHook

__all__ = ["thread", "next_seq", "no_grad", "enable_grad", "detect_anomaly", "is_grad_enabled",
           "structure_version", "structure_changed",
           "check_finite", "is_traced", "check_values"]

next_seq = itertools.count(1).__next__  # atomic under the GIL: safe across threads


class _State(threading.local):
    """Recording flags, one set per thread (threads training separate models do not mix)."""

    def __init__(self) -> None:
        self.enabled = True  # record ops that touch a Tensor requiring grad
        self.anomaly = False  # raise at the first NaN/inf in forward or backward
        self.depth = 0  # how many functional transformations are tracing on this thread
        # fg.jit's tracer while it traces on this thread: every method the engine calls on it
        # is declared in fungrad/hooks.py (TracerHook)
        self.hook: TracerHook | None = None
        self.vmap: Any = None  # fg.vmap's batching interpreter while a vmap runs (fungrad/batching)


thread = _State()

# How many times a Module's Tensor or sub-Module attribute was replaced by another object
# (``model.fc.weight = Tensor(...)``): fg.jit guards its programs with it, since a program
# reads the Tensors it captured, not the attribute. One counter for all modules: a
# replacement is rare, and checking one int per call costs nothing.
_structure = [0]


def structure_version() -> int:
    """The count of Module attribute replacements so far (see :func:`structure_changed`)."""
    return _structure[0]


def structure_changed() -> None:
    """A Module's Tensor or sub-Module attribute now holds another object."""
    _structure[0] += 1


def is_traced(x: object) -> bool:
    """Whether ``x`` is an array without one concrete value: traced by fg.jit (no value yet)
    or batched by fg.vmap (a value per example). Do not branch on it.

    >>> import numpy as np
    >>> is_traced(np.ones(2))
    False
    """
    hook = thread.hook  # fg.jit (fungrad/jit): value checks in VJPs skip or defer traced arrays
    if hook is not None and type(x) is hook.traced_type:
        return True
    vm = thread.vmap  # fg.vmap (fungrad/batching)
    return vm is not None and type(x) is vm.batched_type


def check_values(fn: Any, *args: Any) -> None:
    """Run the value check ``fn(*args)`` on arrays for which :func:`is_traced` is true:
    fg.vmap runs it on the values of every example at once, fg.jit now and at every call of
    the compiled program.
    """
    vm = thread.vmap
    if vm is not None and any(type(a) is vm.batched_type for a in args):
        vm.check(fn, *args)
    else:
        hook = thread.hook
        if hook is None:
            raise RuntimeError("check_values: no traced array among the arguments "
                               "(call it only where recording.is_traced is true of one)")
        hook.check(fn, *args)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Do not record ops on this thread inside the block (inference, optimizer updates).

    >>> import fungrad as fg
    >>> w = fg.Tensor([1.0, 2.0], autograd=True)
    >>> with fg.no_grad():
    ...     y = w * 2
    >>> y.creation_op is None
    True
    """
    previous = thread.enabled
    thread.enabled = False
    try:
        yield
    finally:
        thread.enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Record ops inside the block even within ``no_grad()``.

    >>> import fungrad as fg
    >>> w = fg.Tensor([1.0], autograd=True)
    >>> with fg.no_grad():
    ...     with fg.enable_grad():
    ...         y = w * 2
    >>> y.creation_op
    'multiply'
    """
    previous = thread.enabled
    thread.enabled = True
    try:
        yield
    finally:
        thread.enabled = previous


def is_grad_enabled() -> bool:
    """Whether ops are being recorded on this thread.

    >>> import fungrad as fg
    >>> fg.is_grad_enabled()
    True
    """
    return thread.enabled


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise :class:`~fungrad.errors.AnomalyError` at the first NaN or inf an op produces.

    Checks every forward output and every cotangent a VJP returns, and names the op.

    >>> import numpy as np, fungrad as fg
    >>> x = fg.Tensor([0.0], autograd=True)
    >>> with fg.detect_anomaly():
    ...     try:
    ...         fg.log(x)
    ...     except fg.errors.AnomalyError as e:
    ...         print(str(e).split(":")[0])
    log
    """
    previous = thread.anomaly
    thread.anomaly = True
    try:
        yield
    finally:
        thread.anomaly = previous


def check_finite(op_name: str, value: Any, where: str) -> None:
    """Raise AnomalyError if a floating array holds a NaN or inf (used under detect_anomaly)."""
    data = getattr(value, "_data", value)
    vm = thread.vmap
    while vm is not None and type(data) is vm.batched_type:  # fg.vmap: every example's values
        data = getattr(data.value, "_data", data.value)
    if thread.hook is not None and type(data) is thread.hook.traced_type:
        return  # fg.jit: no values yet
    arr = np.asarray(data)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise AnomalyError(
            f"{op_name}: {where} produced {bad} (shape {tuple(arr.shape)}, dtype {arr.dtype})"
        )
