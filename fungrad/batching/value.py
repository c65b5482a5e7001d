"""BatchedArray: what an array is while ``fg.vmap`` runs a function once for a whole batch.

A batched array holds the values of every example at once (``value``, an ndarray, a Tensor, an
array fg.jit traces, or the batched array of an outer vmap) and says which axis of it is the
batch (``bdim``; None for a value that is the same for every example). It looks like one
example: ``shape``, ``ndim`` and ``len()`` leave the batch axis out. Operators, registered ops,
NumPy's functions and ufuncs and the usual ndarray methods work on it through the ops'
batching rules (:mod:`fungrad.batching.interpreter`); what it refuses is becoming one Python
value (``bool(x)``, ``float(x)``, ``np.asarray(x)``), since each example has its own.

Functions under ``fg.vmap`` normally see Tensors whose data is a batched array, so that the
whole Tensor API works; bare batched arrays appear where a VJP or a NumPy function works on
Tensors' data.

>>> import numpy as np, fungrad as fg
>>> fg.vmap(lambda x: (x.shape, x * 2)[1])(np.ones((3, 2)))
array([[2., 2.],
       [2., 2.],
       [2., 2.]])
"""

from __future__ import annotations

import itertools
import operator
from typing import Any, Callable, Mapping

import numpy as np

from .. import primitives as _ops
from .._stand_in import StandIn
from ..errors import BatchedConversionError, VmapError
from ..primitives.indexing import _plain_index
from ..registry import numpy_impl
from ..tensor import Tensor
from ..tree import tree_map
from ..primitives.batch_rules import BatchedParam, align

__all__ = ["BatchedArray", "Level", "conversion_error"]

_next_level = itertools.count(1).__next__


class Level:
    """One running ``fg.vmap`` call: its batch size and whether it is still running.

    Levels are numbered in creation order, so a vmap called inside another has the larger
    number: an op on arrays of several levels applies the innermost level's rule first.
    """

    __slots__ = ("id", "size", "active")

    def __init__(self, size: int) -> None:
        self.id = _next_level()
        self.size = size
        self.active = True

    def __repr__(self) -> str:
        return f"<vmap level {self.id}: {self.size} examples>"


_FIXES = ("Compute it with ops instead: fungrad.numpy.where(x > 0, a, b) for an if/else, "
          "fg.while_loop for a loop whose end depends on values; or pass this argument with "
          "in_axes=None if it is the same for every example.")


def conversion_error(what: str, x: "BatchedArray") -> BatchedConversionError:
    """The error raised when a batched value would become one Python value."""
    return BatchedConversionError(
        f"fg.vmap: {what} of a batched value (one per example: {x.level.size} examples of "
        f"shape {x.shape}, dtype {x.dtype}) needs a single value, but each example has its "
        f"own. {_FIXES}")


def _shape(v) -> tuple:
    shape = getattr(v, "shape", None)
    return shape if type(shape) is tuple else tuple(np.shape(v))


def _dtype(v) -> np.dtype:
    dt = getattr(v, "dtype", None)
    return np.dtype(dt) if dt is not None else np.result_type(v)


def _data(x):
    """A Tensor's data (results of non-differentiable functions carry no gradient)."""
    return getattr(x, "_data", x) if isinstance(x, Tensor) else x


class BatchedArray(StandIn):
    """The values of every example of a batch, one axis of ``value`` being the batch."""

    __slots__ = ("value", "bdim", "level", "shape", "dtype", "__weakref__")
    __array_priority__ = 2000  # NumPy defers to it (and to its ufunc protocol) over ndarrays

    def __init__(self, value: Any, bdim: int | None, level: Level) -> None:
        if isinstance(value, (bool, int, float)):
            value = np.asarray(value)
        shape = _shape(value)
        self.value = value
        self.bdim = bdim
        self.level = level
        self.shape = shape if bdim is None else shape[:bdim] + shape[bdim + 1:]
        self.dtype = _dtype(value)

    # -- what is known: one example's shape and the dtype -------------------------------------

    @property
    def T(self) -> "BatchedArray":
        return _ops.transpose(self)

    @property
    def mT(self) -> "BatchedArray":
        nd = self.ndim
        return _ops.transpose(self, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d batched value (each example is a scalar)")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        where = "unbatched" if self.bdim is None else f"batch axis {self.bdim}"
        return (f"BatchedArray(shape={self.shape}, dtype={self.dtype}, {where} of "
                f"{self.level.size} examples, value=\n{self.value!r})")

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)

    def _conversion_error(self, what: str) -> BatchedConversionError:
        return conversion_error(what, self)

    def _check_active(self) -> None:
        if not self.level.active:
            raise VmapError(
                "fg.vmap: a batched value escaped the vmap that made it (kept in a global, an "
                "attribute or a closure, and used after the vmapped function returned); return "
                "it from the function instead")

    def __array__(self, dtype=None, copy=None):
        self._check_active()
        raise conversion_error(
            "np.asarray() / np.array() (or indexing a NumPy array with it: index a Tensor "
            "instead, fg.Tensor(table)[i], or use fungrad.numpy.take)", self)

    def __setitem__(self, index, value) -> None:
        raise VmapError(
            "fg.vmap: item assignment (x[i] = v) into a batched value is not supported; build "
            "the result with ops instead (fungrad.numpy.where, fg.concatenate, fg.pad)")

    # -- arithmetic: the registered ops, so it is recorded and batched like any op call -------

    def __add__(self, o): return _ops.add(self, o)
    def __radd__(self, o): return _ops.add(o, self)
    def __sub__(self, o): return _ops.subtract(self, o)
    def __rsub__(self, o): return _ops.subtract(o, self)
    def __mul__(self, o): return _ops.multiply(self, o)
    def __rmul__(self, o): return _ops.multiply(o, self)
    def __truediv__(self, o): return _ops.divide(self, o)
    def __rtruediv__(self, o): return _ops.divide(o, self)
    def __pow__(self, o): return _ops.power(self, o)
    def __rpow__(self, o): return _ops.power(o, self)
    def __matmul__(self, o): return _ops.matmul(self, o)
    def __rmatmul__(self, o): return _ops.matmul(o, self)
    def __mod__(self, o): return _ops.mod(self, o)
    def __rmod__(self, o): return _ops.mod(o, self)
    def __neg__(self): return _ops.negative(self)
    def __pos__(self): return self
    def __abs__(self): return _ops.abs(self)

    # comparisons, logic and integer division carry no gradient: NumPy's ufuncs, batched
    def __lt__(self, o): return np.less(self, o)
    def __le__(self, o): return np.less_equal(self, o)
    def __gt__(self, o): return np.greater(self, o)
    def __ge__(self, o): return np.greater_equal(self, o)
    def __eq__(self, o): return np.equal(self, o)
    def __ne__(self, o): return np.not_equal(self, o)
    def __and__(self, o): return np.bitwise_and(self, o)
    def __rand__(self, o): return np.bitwise_and(o, self)
    def __or__(self, o): return np.bitwise_or(self, o)
    def __ror__(self, o): return np.bitwise_or(o, self)
    def __xor__(self, o): return np.bitwise_xor(self, o)
    def __rxor__(self, o): return np.bitwise_xor(o, self)
    def __invert__(self): return np.invert(self)
    def __floordiv__(self, o): return np.floor_divide(self, o)
    def __rfloordiv__(self, o): return np.floor_divide(o, self)

    def __getitem__(self, index):
        return _ops.getitem(self, index=_plain_index(index))

    # -- ndarray methods ---------------------------------------------------------------------

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        x = self if dtype is None else self.astype(dtype)
        return _ops.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return _ops.mean(self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        return _ops.prod(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _ops.var(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _ops.std(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def max(self, axis=None, out=None, keepdims=False):
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, out=None, keepdims=False):
        return _ops.min(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis=None, dtype=None, out=None):
        return _ops.cumsum(self, axis=axis)

    def cumprod(self, axis=None, dtype=None, out=None):
        return _ops.cumprod(self, axis=axis)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _ops.reshape(self, shape=tuple(operator.index(s) for s in shape))

    def ravel(self, order="C"):
        return _ops.reshape(self, shape=(-1,))

    def flatten(self, order="C"):
        return _ops.copy(_ops.reshape(self, shape=(-1,)))

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _ops.transpose(self, axes=tuple(axes) if axes else None)

    def swapaxes(self, axis1: int, axis2: int):
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return _ops.transpose(self, axes=tuple(axes))

    def squeeze(self, axis=None):
        return _ops.squeeze(self, axis=axis)

    def astype(self, dtype, copy=True, **kwargs):
        dt = np.dtype(dtype)
        if dt == self.dtype and not copy:
            return self
        return _ops.astype(self, dtype=dt.name)

    def copy(self, order="C"):
        return _ops.copy(self)

    def dot(self, other):
        return _ops.matmul(self, other)

    def clip(self, min=None, max=None, out=None):  # noqa: A002 (NumPy's names)
        return _ops.clip(self, a_min=min, a_max=max)

    def round(self, decimals: int = 0, out=None):
        return _ops.round(self, decimals=decimals)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1):
        return _ops.diagonal(self, offset=offset, axis1=axis1, axis2=axis2)

    def conj(self):
        return _ops.conj(self)

    conjugate = conj

    # indices and truth values: no gradient, computed on the data with the axis shifted
    def argmax(self, axis=None, out=None, keepdims=False):
        return _reduce_data(np.argmax, self, axis, keepdims=keepdims)

    def argmin(self, axis=None, out=None, keepdims=False):
        return _reduce_data(np.argmin, self, axis, keepdims=keepdims)

    def any(self, axis=None, out=None, keepdims=False):
        return _reduce_data(np.any, self, axis, keepdims=keepdims)

    def all(self, axis=None, out=None, keepdims=False):
        return _reduce_data(np.all, self, axis, keepdims=keepdims)

    def argsort(self, axis=-1, kind=None, order=None):
        return _reduce_data(np.argsort, self, axis, keeps_axis=True)

    def nonzero(self):
        raise VmapError("fg.vmap: nonzero() of a batched value has a different length per "
                        "example; use fungrad.numpy.where(mask, x, 0) to keep shapes fixed")

    # -- NumPy's protocols ---------------------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        self._check_active()
        if kwargs.get("out") is not None:
            raise VmapError(f"fg.vmap: numpy.{ufunc.__name__}(..., out=) cannot write into a "
                            "batched value; assign the result instead")
        kwargs.pop("out", None)
        impl = numpy_impl(ufunc, method)
        if impl is not None and getattr(impl, "__wrapped__", None) is not ufunc:
            return impl(*inputs, **kwargs)  # a differentiable implementation: its ops batch
        if method == "__call__":
            return map_elementwise(ufunc, inputs, kwargs)
        return map_examples(getattr(ufunc, method), inputs, kwargs,
                            f"numpy.{ufunc.__name__}.{method}")

    def __array_function__(self, func, types, args, kwargs):
        self._check_active()
        if func in _SHAPE_ONLY:
            return func(*_shape_stand_ins(args), **kwargs)
        if func in _LIKE and len(args) == 1 and set(kwargs) <= {"dtype", "shape"}:
            return np.full(kwargs.get("shape", self.shape), _LIKE[func],
                           dtype=kwargs.get("dtype", self.dtype))
        impl = numpy_impl(func)
        if impl is not None and getattr(impl, "__wrapped__", None) is not func:
            return impl(*args, **kwargs)  # a differentiable implementation: its ops batch
        if func in _ALONG_AXIS and args and args[0] is self and len(args) <= 2 and \
                set(kwargs) <= {"axis", "keepdims"}:  # one call with the axis shifted
            axis = args[1] if len(args) == 2 else kwargs.get("axis", _ALONG_AXIS[func])
            if func is np.argsort:
                return _reduce_data(func, self, axis, keeps_axis=True)
            return _reduce_data(func, self, axis, keepdims=kwargs.get("keepdims", False))
        name = f"{getattr(func, '__module__', 'numpy')}.{getattr(func, '__name__', func)}"
        return map_examples(func, args, kwargs, name)


_SHAPE_ONLY = {np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj}
# NumPy functions without gradient computed along an axis (default as NumPy's)
_ALONG_AXIS = {np.argmax: None, np.argmin: None, np.any: None, np.all: None, np.argsort: -1}
_LIKE = {np.ones_like: 1, np.zeros_like: 0, np.empty_like: 0}


def _shape_stand_ins(args):
    return tuple(np.empty(a.shape, a.dtype) if type(a) is BatchedArray else a for a in args)


def _reduce_data(fn, x: BatchedArray, axis, keepdims: bool = False, keeps_axis: bool = False):
    """``fn(x, axis)`` for a NumPy reduction without gradient (argmax, any...), computed once
    on the batch's data with the axis shifted past the batch axis."""
    value = _data(x.value)
    if x.bdim is None:
        out = fn(value, axis=axis, **({"keepdims": keepdims} if not keeps_axis else {}))
        return BatchedArray(out, None, x.level)
    value = _ops.transpose(value, axes=_front(x.bdim, len(_shape(value))))
    if axis is None:
        value = _ops.reshape(value, shape=(x.level.size, -1))
        pos = 1
    else:
        pos = operator.index(axis) % max(x.ndim, 1) + 1
    if keeps_axis:
        return BatchedArray(fn(value, axis=pos), 0, x.level)
    out = fn(value, axis=pos, keepdims=keepdims)
    if axis is None and keepdims:
        out = _ops.reshape(out, shape=(x.level.size,) + (1,) * x.ndim)
    return BatchedArray(out, 0, x.level)


def _front(d: int, nd: int) -> tuple:
    """The permutation that moves axis ``d`` of ``nd`` axes to the front."""
    return (d,) + tuple(i for i in range(nd) if i != d)


# -- NumPy functions without a differentiable implementation, on batched values ------------------


def map_elementwise(fn: Callable, inputs: tuple, kwargs: Mapping) -> Any:
    """An elementwise NumPy function (a ufunc) on batched arrays: once, on the aligned data."""
    level = _level_of(inputs)
    values, dims = _values(inputs, level)
    if all(d is None for d in dims):
        out = fn(*values, **kwargs)
        return _wrap_any(out, None, level)

    out = fn(*align(values, dims), **kwargs)
    return _wrap_any(out, 0, level)


def map_examples(fn: Callable, args: tuple, kwargs: Mapping, name: str) -> Any:
    """Any NumPy function without gradient on batched arrays: once per example, stacked."""
    level = _level_of((args, kwargs))
    flat_args, flat_kwargs = _unwrap_tree(args, level), _unwrap_tree(kwargs, level)
    if not _has_param(flat_args) and not _has_param(flat_kwargs):
        return _wrap_any(fn(*flat_args, **flat_kwargs), None, level)
    outs = [fn(*_at(flat_args, b), **_at(flat_kwargs, b)) for b in range(level.size)]
    if outs and isinstance(outs[0], tuple):
        return tuple(_wrap_any(_ops.stack([np.asarray(o[k]) if _plain(o[k]) else o[k]
                                          for o in outs], axis=0), 0, level)
                     for k in range(len(outs[0])))
    if not outs:
        raise VmapError(f"fg.vmap: {name} on an empty batch: its result's shape is unknown")
    return _wrap_any(_ops.stack([np.asarray(o) if _plain(o) else o for o in outs], axis=0), 0,
                     level)


def _plain(x) -> bool:
    return isinstance(x, (bool, int, float, complex, np.generic))


def _level_of(tree) -> Level:
    level = None
    stack = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, Tensor):
            x = x._data
        if type(x) is BatchedArray:
            if level is None or x.level.id > level.id:
                level = x.level
        elif isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return level  # type: ignore[return-value]  # callers pass a tree holding a batched value


def _values(inputs: tuple, level: Level) -> tuple[list, list]:
    values, dims = [], []
    for x in inputs:
        x = _data(x)
        if type(x) is BatchedArray and x.level is level:
            values.append(_data(x.value))
            dims.append(x.bdim)
        else:
            values.append(x)
            dims.append(None)
    return values, dims


def _unwrap_tree(tree, level: Level):
    """``tree`` with Tensors replaced by their data and batched arrays of ``level`` by
    :class:`BatchedParam` markers (a function without gradient runs on data)."""
    def leaf(x):
        if isinstance(x, Tensor):
            x = x._data
        if type(x) is BatchedArray and x.level is level:
            return BatchedParam(_data(x.value), x.bdim)
        return x

    return tree_map(leaf, tree)


def _has_param(tree) -> bool:
    if isinstance(tree, BatchedParam):
        return tree.dim is not None
    if isinstance(tree, (tuple, list)):
        return any(_has_param(x) for x in tree)
    if isinstance(tree, dict):
        return any(_has_param(x) for x in tree.values())
    return False


def _at(tree, b: int):
    def leaf(x):
        if not isinstance(x, BatchedParam):
            return x
        if x.dim is None:
            return x.value
        return _ops.getitem(x.value, index=(slice(None),) * x.dim + (b,))

    return tree_map(leaf, tree)


def _wrap_any(out, dim, level: Level):
    if isinstance(out, tuple):
        return tuple(BatchedArray(o, dim, level) for o in out)
    return BatchedArray(out, dim, level)
