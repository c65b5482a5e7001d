"""``vmap``: map a function over a batch axis of its arguments, running it once.

The function receives, for each batched argument, a Tensor whose data is a
:class:`~fungrad.batching.value.BatchedArray` (it looks like one example), and every op it calls
applies its batching rule. Arguments and results are pytrees; ``in_axes`` and ``out_axes`` say
where the batch axis is, leaf by leaf, as JAX's ``vmap`` does.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import numpy as np

from .. import primitives as _ops
from ..errors import VmapError
from ..tensor import Tensor
from . import interpreter
from .rules import move_axis, ndim_of
from .value import BatchedArray

__all__ = ["vmap"]

_SCALARS = (bool, int, float, complex)


def vmap(f: Callable, in_axes: Any = 0, out_axes: Any = 0, *,
         axis_size: int | None = None) -> Callable:
    """``f`` mapped over an axis of its arguments: ``vmap(f)(xs)`` equals
    ``stack([f(x) for x in xs])``, computed by running ``f`` once on the whole batch.

    ``in_axes`` says which axis of each positional argument holds the batch: an int for all of
    them, ``None`` for an argument shared by every example, or a tuple with one entry per
    argument, each an int, ``None`` or a pytree prefix of that argument (a dict of the same
    keys, a list or tuple of the same length...). Keyword arguments are mapped over their first
    axis; Python numbers are never mapped. ``out_axes`` places the batch axis in the results
    the same way (``None``: a result that is the same for every example). ``axis_size`` gives
    the batch size when no argument is mapped.

    Each op applies its batching rule (``fg.ops()[name].batch``), so a matrix product of a
    batch stays one matrix product; an op without one runs once per example, with a warning.
    It composes with the other transformations: ``fg.vmap(fg.grad(loss), in_axes=(None, 0,
    0))(params, xs, ys)`` gives per-example gradients, ``fg.grad`` of a function that uses
    ``vmap`` differentiates through it, vmaps nest, and ``fg.jit(fg.vmap(f))`` compiles one
    batched program. Python control flow on a batched value (``if x > 0``, ``float(x)``)
    raises :class:`~fungrad.errors.BatchedConversionError`: use ``fungrad.numpy.where``.

    >>> import numpy as np, fungrad as fg
    >>> fg.vmap(lambda x, w: fg.sum(x * w), in_axes=(0, None))(np.eye(3), np.arange(3.0))
    array([0., 1., 2.])
    >>> fg.vmap(lambda p: p["a"] + p["b"], in_axes=({"a": 1, "b": None},))(
    ...     {"a": np.ones((2, 3)), "b": 10.0})
    array([[11., 11.],
           [11., 11.],
           [11., 11.]])
    """
    if not callable(f):
        raise TypeError(f"fg.vmap: expected a function to map, got {type(f).__name__}")
    _check_axes_spec(in_axes, "in_axes")
    _check_axes_spec(out_axes, "out_axes")
    if axis_size is not None and (not isinstance(axis_size, int) or axis_size < 0):
        raise VmapError(f"fg.vmap: axis_size must be a non-negative int, got {axis_size!r}")

    names = _positional_names(f)

    @functools.wraps(f)
    def batched(*args, **kwargs):
        specs = _per_argument(in_axes, args, f)
        found: list = []  # (size, description) of every mapped leaf
        for i, (spec, arg) in enumerate(zip(specs, args)):
            where = f"argument {i} ('{names[i]}')" if i < len(names) else f"argument {i}"
            _walk(spec, arg, _collect(found), where, "in_axes")
        for key in sorted(kwargs):
            _walk(0, kwargs[key], _collect(found), f"keyword argument '{key}'", "in_axes")
        size = _batch_size(found, axis_size)
        level = interpreter.push(size)
        try:
            wrap = _wrapper(level)
            call_args = [_walk(spec, arg, wrap, "", "in_axes") for spec, arg in zip(specs, args)]
            call_kwargs = {k: _walk(0, v, wrap, "", "in_axes") for k, v in kwargs.items()}
            out = f(*call_args, **call_kwargs)
            leaves = _leaves((args, kwargs))
            unwrap = _unwrapper(level, [x for x in leaves if isinstance(x, np.ndarray)],
                                tensors=any(isinstance(x, Tensor) for x in leaves))
            return _walk(out_axes, out, unwrap, "the output", "out_axes")
        finally:
            interpreter.pop(level)

    return batched


# -- in_axes and out_axes --------------------------------------------------------------------------


def _is_axis(spec) -> bool:
    return spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool))


def _check_axes_spec(spec, what: str) -> None:
    if _is_axis(spec):
        return
    if isinstance(spec, dict):
        for v in spec.values():
            _check_axes_spec(v, what)
        return
    if isinstance(spec, (tuple, list)):
        for v in spec:
            _check_axes_spec(v, what)
        return
    raise VmapError(f"fg.vmap: {what} must be an int, None, or a tuple, list or dict of them "
                    f"(a prefix of the arguments' structure), got {spec!r} "
                    f"({type(spec).__name__})")


def _per_argument(in_axes, args: tuple, f) -> list:
    """One spec per positional argument."""
    if _is_axis(in_axes):
        return [in_axes] * len(args)
    if isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            raise VmapError(
                f"fg.vmap: in_axes has {len(in_axes)} entries ({in_axes!r}) but "
                f"{_name(f)} was called with {len(args)} positional argument"
                f"{'s' if len(args) != 1 else ''}; give one entry per argument (None for "
                "those shared by every example)")
        return list(in_axes)
    raise VmapError(f"fg.vmap: in_axes must be an int, None or a tuple with one entry per "
                    f"positional argument, got a {type(in_axes).__name__} ({in_axes!r}); for "
                    "one argument that is a dict, write in_axes=({...},)")


def _walk(spec, tree, fn: Callable, where: str, what: str):
    """``tree`` rebuilt with ``fn(leaf, axis, where)`` at each leaf, ``spec`` a prefix of it."""
    if isinstance(tree, dict):
        if isinstance(spec, dict):
            if set(spec) != set(tree):
                raise VmapError(f"fg.vmap: {what} for {where} is a dict with keys "
                                f"{sorted(map(str, spec))} but the value is a dict with keys "
                                f"{sorted(map(str, tree))}; the keys must be the same")
            return {k: _walk(spec[k], v, fn, f"{where}[{k!r}]", what) for k, v in tree.items()}
        if not _is_axis(spec):
            raise _mismatch(spec, tree, where, what)
        return {k: _walk(spec, v, fn, f"{where}[{k!r}]", what) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        if isinstance(spec, (tuple, list)):
            if len(spec) != len(tree):
                raise VmapError(f"fg.vmap: {what} for {where} has {len(spec)} entries but the "
                                f"value is a {type(tree).__name__} of {len(tree)}")
            items = [_walk(s, t, fn, f"{where}[{i}]", what)
                     for i, (s, t) in enumerate(zip(spec, tree))]
        elif _is_axis(spec):
            items = [_walk(spec, t, fn, f"{where}[{i}]", what) for i, t in enumerate(tree)]
        else:
            raise _mismatch(spec, tree, where, what)
        if hasattr(tree, "_fields"):  # a namedtuple
            return type(tree)(*items)
        return type(tree)(items)
    if not _is_axis(spec):
        raise _mismatch(spec, tree, where, what)
    return fn(tree, None if spec is None else int(spec), where)


def _mismatch(spec, tree, where: str, what: str) -> VmapError:
    kind = type(tree).__name__ if isinstance(tree, (dict, list, tuple)) else "an array"
    return VmapError(f"fg.vmap: {what} for {where} is a {type(spec).__name__} ({spec!r}) but "
                     f"the value is {kind}; {what} must be an int, None, or a prefix of the "
                     "value's structure (the same containers)")


def _leaves(tree) -> list:
    out, stack = [], [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (tuple, list)):
            stack.extend(x)
        else:
            out.append(x)
    return out


# -- arguments -------------------------------------------------------------------------------------


def _is_array(x) -> bool:
    return not (x is None or isinstance(x, (*_SCALARS, str, bytes))) and hasattr(x, "shape")


def _collect(found: list) -> Callable:
    def visit(leaf, axis, where):
        if axis is None or not _is_array(leaf):
            return leaf
        nd = ndim_of(leaf)
        if not -nd <= axis < nd:
            if nd == 0:
                raise VmapError(f"fg.vmap: in_axes={axis} for {where}, a 0-d array: it has "
                                "no axis to map over (pass in_axes=None to share it across "
                                "the batch)")
            raise VmapError(f"fg.vmap: in_axes={axis} for {where} of shape "
                            f"{tuple(leaf.shape)}: out of range for {nd} dimensions (valid: "
                            f"{-nd}..{nd - 1})")
        found.append((int(leaf.shape[axis]), f"{where} has size {leaf.shape[axis]} along axis "
                                             f"{axis} (shape {tuple(leaf.shape)})"))
        return leaf
    return visit


def _batch_size(found: list, axis_size: int | None) -> int:
    sizes = {n for n, _ in found}
    if axis_size is not None:
        sizes.add(axis_size)
    if len(sizes) > 1:
        lines = "; ".join(desc for _, desc in found)
        given = f"; axis_size={axis_size}" if axis_size is not None else ""
        raise VmapError(f"fg.vmap: the mapped axes have different sizes: {lines}{given}. Every "
                        "mapped argument must hold the same number of examples")
    if not sizes:
        raise VmapError("fg.vmap: no argument is mapped (in_axes is None for every argument, "
                        "or they are Python numbers); map at least one array, or pass "
                        "axis_size=n")
    return sizes.pop()


def _positional_names(f) -> list[str]:
    """The names of ``f``'s positional parameters, for messages (none if unreadable)."""
    try:
        return [p.name for p in inspect.signature(f).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


def _name(f) -> str:
    return getattr(f, "__name__", "the function")


def _wrapper(level) -> Callable:
    def wrap(leaf, axis, where):
        if not _is_array(leaf):
            return leaf
        value = np.asarray(leaf) if isinstance(leaf, np.generic) else leaf
        if axis is None:  # shared: a Tensor too, so that it indexes (and is indexed) like one
            return Tensor._make(value) if isinstance(value, np.ndarray) else leaf
        return Tensor._make(BatchedArray(value, axis % ndim_of(leaf), level))
    return wrap


# -- results ---------------------------------------------------------------------------------------


def _unwrapper(level, inputs: list, tensors: bool) -> Callable:
    """Results as the caller passed arguments: ndarrays for ndarrays (unless a result is
    connected to a recorded graph), Tensors if any argument was a Tensor."""
    size = level.size

    def unwrap(leaf, axis, where):
        d = leaf._data if isinstance(leaf, Tensor) else leaf
        if type(d) is BatchedArray and d.level is level:
            value, bdim = d.value, d.bdim
        else:
            value, bdim = leaf, None
        if not tensors and isinstance(value, Tensor) and not value.requires_grad and \
                isinstance(value._data, np.ndarray):
            value = value._data
        if axis is None:
            if bdim is not None:
                raise VmapError(f"fg.vmap: out_axes is None for {where}, but it differs from "
                                "one example to the next (it depends on a mapped argument); "
                                "give it an axis in out_axes")
            return value
        if value is None or isinstance(value, (str, bytes)):
            return value
        if isinstance(value, _SCALARS + (np.generic,)):
            value = np.asarray(value)
        nd = ndim_of(value) + (bdim is None)
        if not -nd <= axis < nd:
            raise VmapError(f"fg.vmap: out_axes={axis} for {where}: out of range for a "
                            f"batched result of {nd} dimensions (valid: {-nd}..{nd - 1})")
        axis %= nd
        if bdim is None:  # the same for every example: repeated along the new axis
            shape = tuple(np.shape(getattr(value, "_data", value)))
            expanded = _ops.expand_dims(value, axis=axis)
            value = _ops.broadcast_to(expanded, shape=shape[:axis] + (size,) + shape[axis:])
            return np.array(value) if isinstance(value, np.ndarray) else value
        value = move_axis(value, bdim, axis)
        if isinstance(value, np.ndarray) and any(np.may_share_memory(value, x) for x in inputs):
            value = value.copy()  # never hand back (a view of) the caller's own array
        return value
    return unwrap
