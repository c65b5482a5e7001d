"""How an op call on batched arrays runs: the op's batching rule, applied once for the batch.

While ``fg.vmap`` runs on a thread, :func:`fungrad.registry.apply` hands every op call to the
thread's :class:`Interpreter` first. A call that touches a batched array of a running vmap
(among its array arguments or inside a static parameter such as ``getitem``'s index) is
batched at the innermost such level, as JAX's batching interpreter does:

1. each argument of that level is replaced by its value and batch axis (other arguments,
   including the batched arrays of outer levels, are passed as they are, unbatched);
2. the op's rule ``op.batch(op, values, dims, **params)`` computes the batched result with
   ordinary op calls (so it is recorded for gradients, traced by fg.jit, and batched again by
   outer levels); an op without a rule runs once per example in a loop, with one warning;
3. the result becomes a batched array of that level, and if an argument was a Tensor of that
   level that requires grad (``fg.grad`` inside the vmap), the call is recorded on the tape
   like any other, so its VJP later runs on batched arrays too.

>>> import numpy as np, fungrad as fg
>>> fg.vmap(lambda x, y: fg.matmul(x, y), in_axes=(0, None))(np.ones((4, 3)), np.ones((3, 2)))
array([[3., 3.],
       [3., 3.],
       [3., 3.],
       [3., 3.]])
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

import numpy as np

from .. import primitives as _ops
from .. import recording, registry
from ..errors import BatchingFallbackWarning, FungradError, VmapError
from ..tensor import Tensor
from ..tree import tree_map
from .rules import BatchedParam, move_axis
from .value import BatchedArray, Level, _data, map_elementwise, map_examples

__all__ = ["Interpreter", "BatchingFallbackWarning", "loop_rule", "lift", "push", "pop",
           "map_elementwise", "map_examples", "innermost"]

_SEQUENCES = (list, tuple)


class Interpreter:
    """The running vmap levels of one thread, and how op calls on their arrays are batched."""

    batched_type = BatchedArray

    def __init__(self) -> None:
        self.levels: list[Level] = []

    # -- the entry from registry.apply ----------------------------------------------------------

    def apply(self, op, args: tuple, params: Mapping) -> Any:
        """The batched result of ``op(*args, **params)``, or NotImplemented if no argument is
        batched (the call then runs as usual)."""
        level = None
        for a in args:
            d = a._data if isinstance(a, Tensor) else a
            if type(d) is BatchedArray:
                if level is None or d.level.id > level.id:
                    level = d.level
            elif type(d) in _SEQUENCES and _holds_batched(d):
                return registry.apply(op, tuple(_joined(a) for a in args), params)
        if params:
            for v in params.values():
                level = _param_level(v, level)
        if level is None:
            return NotImplemented
        if not level.active:
            raise VmapError(f"{op.name}: called on a batched value that escaped the fg.vmap "
                            "that made it (kept in a global, an attribute or a closure, and "
                            "used after the vmapped function returned)")
        return _batched_call(op, args, params, level)

    def check(self, fn: Callable, *args: Any) -> None:
        """A VJP's value check (``recording.check_values``): run it on every example at once."""
        fn(*[_stacked(a) if type(a) is BatchedArray else a for a in args])


def _param_level(v, level):
    if isinstance(v, Tensor):
        v = v._data
    if type(v) is BatchedArray:
        return v.level if level is None or v.level.id > level.id else level
    if type(v) in _SEQUENCES:
        for item in v:
            level = _param_level(item, level) if type(item) is not slice else level
    return level


def _holds_batched(seq) -> bool:
    for x in seq:
        d = x._data if isinstance(x, Tensor) else x
        if type(d) is BatchedArray or (type(d) in _SEQUENCES and _holds_batched(d)):
            return True
    return False


def _joined(a):
    """A list argument holding batched values, stacked into one array (as apply does)."""
    if type(a) in _SEQUENCES and _holds_batched(a):
        return _ops.stack([_joined(x) for x in a], axis=0)
    return a


def _stacked(x: BatchedArray):
    """The data of every example, batch axis first (a Tensor's data, not the Tensor)."""
    value = _data(x.value)
    if x.bdim is None:
        return value
    return move_axis(value, x.bdim, 0)


# -- one batched call -----------------------------------------------------------------------------


def _batched_call(op, args: tuple, params: Mapping, level: Level) -> Any:
    values, dims, needs = [], [], []
    any_tensor = record = False
    for a in args:
        if isinstance(a, Tensor):
            any_tensor = True
            d = a._data
            if type(d) is BatchedArray and d.level is level:
                values.append(d.value)
                dims.append(d.bdim)
                r = a.requires_grad
                needs.append(r)
                record = record or r
                continue
        elif type(a) is BatchedArray and a.level is level:
            values.append(a.value)
            dims.append(a.bdim)
            needs.append(False)
            continue
        values.append(a)
        dims.append(None)
        needs.append(False)
    rule_params, batched_params = _peeled(params, level)
    if batched_params or any(d is not None for d in dims):
        rule = op.batch
        if rule is None:
            _warn_fallback(op)
            rule = loop_rule
        try:
            result = rule(op, tuple(values), tuple(dims), **rule_params)
            if result is NotImplemented:  # the rule declines these batch axes
                result = loop_rule(op, tuple(values), tuple(dims), **rule_params)
            out, out_dims = result
        except FungradError as e:
            raise _in_vmap(e, values, dims, level) from e
    else:  # nothing varies across this level: the op itself, on the values
        out, out_dims = registry.apply(op, tuple(values), params), None
    result = _wrapped(op, out, out_dims, level)
    if not any_tensor:
        return result
    return _as_tensors(op, args, params, result, needs, record)


def _in_vmap(e: FungradError, values: list, dims: list, level: Level) -> FungradError:
    """``e`` (raised by a rule on the whole batch, so it shows batched shapes) with the shapes
    of one example added, once."""
    text = str(e)
    if "under fg.vmap" in text:
        return e
    shapes = []
    for v, d in zip(values, dims):
        shape = tuple(np.shape(_data(v)) if not hasattr(v, "shape") else v.shape)
        shapes.append(str(shape if d is None else shape[:d] + shape[d + 1:]))
    try:
        return type(e)(f"{text} (under fg.vmap over {level.size} examples: one example's "
                       f"arguments have shapes {', '.join(shapes)})")
    except TypeError:  # an error class with another constructor: leave it as it is
        return e


def _peeled(params: Mapping, level: Level) -> tuple[dict, bool]:
    """``params`` with each batched array of ``level`` (also inside a tuple, such as an index)
    replaced by a :class:`BatchedParam` of its value and batch axis."""
    found = False
    out = {}
    for k, v in params.items():
        new = _peel(v, level)
        found = found or new is not v
        out[k] = new
    return (out, True) if found else (dict(params), False)


def _peel(v, level: Level):
    d = v._data if isinstance(v, Tensor) else v
    if type(d) is BatchedArray and d.level is level:
        return BatchedParam(d.value, d.bdim)
    if type(v) in _SEQUENCES:
        items = [_peel(x, level) if type(x) is not slice else x for x in v]
        if any(a is not b for a, b in zip(items, v)):
            return type(v)(items)
    return v


def _wrapped(op, out, out_dims, level: Level):
    """The rule's result as batched arrays of ``level``, its batch axes checked."""
    if op.n_outputs == 1:
        return _checked(op, out, out_dims, level)
    if not isinstance(out, tuple):
        raise TypeError(f"{op.name}: its batching rule must return a tuple of outputs for an op "
                        f"with several outputs, got {type(out).__name__}")
    dims = out_dims if isinstance(out_dims, (tuple, list)) else (out_dims,) * len(out)
    return tuple(_checked(op, o, d, level) for o, d in zip(out, dims))


def _checked(op, value, dim, level: Level) -> BatchedArray:
    if dim is not None:
        shape = getattr(value, "shape", None)
        if shape is None:
            shape = np.shape(value)
        if not (isinstance(dim, int) and 0 <= dim < len(shape)) or shape[dim] != level.size:
            raise VmapError(
                f"{op.name}: its batching rule returned an output of shape {tuple(shape)} with "
                f"batch axis {dim!r}, which does not hold the batch of {level.size} examples")
    return BatchedArray(value, dim, level)


def _as_tensors(op, args: tuple, params: Mapping, result, needs: list, record: bool):
    """Tensors around the batched result, recorded if an argument of this level requires grad
    (as :func:`fungrad.registry.apply` records an ordinary call)."""
    multi = op.n_outputs != 1
    outs = result if multi else (result,)
    if record:
        datas = [a._data if isinstance(a, Tensor) else a for a in args]
        if all(o.dtype.kind in "biu" for o in outs) and registry._only_floats_need(datas, needs):
            record = False  # an integer result of float inputs: piecewise constant
    if record:
        if not recording.thread.enabled:
            made = tuple(Tensor._made_without_grad(o) for o in outs)
            return made if multi else made[0]
        masked = registry._interned_needs(op, needs)
        if masked is not None:
            versions = registry._interned(
                tuple(a._version if isinstance(a, Tensor) else None for a in args))
            if multi:
                return Tensor._record_multi(outs, op, args, params, masked, versions)
            return Tensor._record(result, op, args, params, masked, versions)
    made = tuple(Tensor._make(o) for o in outs)
    return made if multi else made[0]


# -- the fallback for ops without a rule ----------------------------------------------------------

_WARNED: set = set()


def _warn_fallback(op) -> None:
    if op.name in _WARNED:
        return
    _WARNED.add(op.name)
    warnings.warn(
        f"fg.vmap: op '{op.name}' has no batching rule, so it runs once per example in a Python "
        "loop (correct, but slow for large batches). Give it one: "
        f"fg.defop('{op.name}', ..., batch=rule), e.g. batch=fungrad.batching.elementwise for "
        "an elementwise op", BatchingFallbackWarning, stacklevel=4)


def loop_rule(op, args: tuple, dims: tuple, **params) -> tuple[Any, Any]:
    """A batching rule for any op: the op once per example, the results stacked (axis 0).

    What ``fg.vmap`` runs for an op without a rule of its own; correct for every op, but one
    call per example.
    """
    size = _size_of(args, dims, params)
    if size == 0:
        raise VmapError(f"{op.name}: has no batching rule, and the per-example loop that "
                        "stands in for one cannot tell the shape of an empty batch's result")
    pieces = [_ops.unstack(a, axis=d) if d is not None else None for a, d in zip(args, dims)]
    param_pieces = {k: _param_pieces(v) for k, v in params.items()}
    outs = []
    for b in range(size):
        call_args = tuple(a if p is None else p[b] for a, p in zip(args, pieces))
        call_params = {k: _param_at(v, param_pieces[k], b) for k, v in params.items()}
        outs.append(registry.apply(op, call_args, call_params))
    if op.n_outputs == 1:
        return _ops.stack(outs, axis=0), 0
    return tuple(_ops.stack([o[k] for o in outs], axis=0) for k in range(len(outs[0]))), 0


def _size_of(args, dims, params) -> int:
    for a, d in zip(args, dims):
        if d is not None:
            return int(np.shape(a)[d]) if not hasattr(a, "shape") else int(a.shape[d])
    for v in params.values():
        for item in (v if type(v) in _SEQUENCES else (v,)):
            if isinstance(item, BatchedParam):
                return int(item.value.shape[item.dim])
    raise VmapError("fg.vmap: no batched argument in a batched call")  # internal invariant


def _param_pieces(v):
    if isinstance(v, BatchedParam):
        return _ops.unstack(v.value, axis=v.dim) if v.dim is not None else None
    if type(v) in _SEQUENCES:
        return [_param_pieces(x) for x in v]
    return None


def _param_at(v, pieces, b: int):
    if isinstance(v, BatchedParam):
        return v.value if pieces is None else pieces[b]
    if type(v) in _SEQUENCES and pieces is not None:
        return type(v)(_param_at(x, p, b) for x, p in zip(v, pieces))
    return v


# -- NumPy functions without gradient on batched arrays -------------------------------------------


# -- levels ---------------------------------------------------------------------------------------


def push(size: int) -> Level:
    """Start a vmap level of ``size`` examples on this thread."""
    st = recording.thread
    if st.vmap is None:
        st.vmap = Interpreter()
    level = Level(size)
    st.vmap.levels.append(level)
    return level


def pop(level: Level) -> None:
    """End ``level``: its batched arrays can no longer be used."""
    level.active = False
    st = recording.thread
    levels = st.vmap.levels
    levels.remove(level)
    if not levels:
        st.vmap = None


def innermost() -> Level | None:
    """The innermost running vmap level of this thread, or None."""
    vm = recording.thread.vmap
    return vm.levels[-1] if vm is not None and vm.levels else None


def lift(x: Any) -> Any:
    """``x`` as an unbatched array of the innermost running vmap level (``x`` itself if no
    vmap runs, or if it already belongs to that level).

    ``fg.grad`` and its relatives differentiate with respect to lifted leaves: a gradient
    computed inside a vmap then belongs to that vmap (one per example), however the leaf was
    passed, as in JAX, where the transformation called later is the inner one.
    """
    level = innermost()
    if level is None:
        return x
    d = x._data if isinstance(x, Tensor) else x
    if type(d) is BatchedArray and d.level is level:
        return x
    return BatchedArray(x, None, level)
