"""Tensor: an ndarray, its gradient, and — for a recorded op's output — the graph node itself.

As in the book, a Tensor made by an op knows its creators: the op, its inputs, its static
parameters. That record lives on the output Tensor (one object per recorded op, so the garbage
collector has little to scan); :mod:`fungrad.backprop` walks it. Operators and methods delegate
to registered ops, so a Tensor method, the ``fg.*`` function of the same name, NumPy's own
functions called on Tensors and the generated tests all run the same code.

>>> import numpy as np
>>> from fungrad import Tensor
>>> x = Tensor(np.array([1.0, 2.0, 3.0]), autograd=True)
>>> y = (x * x).sum(0)
>>> y.backward()
>>> x.grad
array([2., 4., 6.])
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator, Mapping, Tuple, Union, overload

import numpy as np

from . import backprop, recording, registry
from . import ops as _ops
from ._keywords import hints, keepdims_of as _keepdims
from .errors import (
    ConversionError, DTypeError, GraphError, IndexRangeError, NonScalarBackwardWarning, ShapeError,
)
from .ops.indexing import _plain_index
from .ops.shape import normalize_axes as _normalize_axes
from .registry import apply as _apply
from .registry import unwrap_tree

__all__ = ["Tensor"]

Axis = Union[int, Tuple[int, ...], None]  # an axis, several, or all of them
ArrayLike = Any  # a Tensor, an ndarray, a (nested) list or a Python number

_state = recording.thread
_NUMERIC = "biufc"  # the dtype kinds a Tensor holds: bool, integers, floats, complex


class Tensor:
    """An ndarray that records the ops applied to it when ``autograd`` (``requires_grad``) is set.

    ``Tensor(data, autograd=False)`` copies ``data`` into an ndarray (keeping its dtype, or
    ``dtype`` if given); it must hold numbers (bool, integers, floats or complex). ``.grad`` is a
    Tensor filled by ``backward()``. Integer tensors may be marked ``autograd=True``; they
    receive floating-point gradients.

    >>> from fungrad import Tensor
    >>> a = Tensor([1, 2, 3], autograd=True)
    >>> b = a + a
    >>> b.backward(Tensor([1, 1, 1]))
    >>> a.grad, b.creation_op
    (array([2., 2., 2.]), 'add')
    """

    # _op, _inputs, _params, _needs, _versions, _seq: the node of the op that made this tensor
    # (_op is None for leaves; _versions is None once backward has released the node). A
    # multi-output op's first output holds the node and all outputs in _outs; the others point
    # to it through _parent and _index. _seq is -1 for a result computed under no_grad() from
    # inputs that required grad (so backward() can say so).
    __slots__ = ("_data", "_grad", "requires_grad", "_version", "_op", "_inputs", "_params",
                 "_needs", "_versions", "_seq", "_outs", "_parent", "_index", "__weakref__")
    __hash__ = object.__hash__
    _data: np.ndarray  # (a traced array while fg.jit traces)
    _grad: "Tensor | None"
    requires_grad: bool
    _version: int
    _op: Any
    _inputs: tuple | None
    _params: Mapping | None
    _needs: tuple | None
    _versions: tuple | None
    _seq: int
    _outs: Any  # a multi-output node's outputs
    _parent: "Tensor | None"
    _index: int

    def __init__(self, data: Any, autograd: bool = False, *, requires_grad: bool | None = None,
                 dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            if data.requires_grad and _state.enabled and _state.depth:
                raise ConversionError(
                    "Tensor(t): t is being differentiated by fg.grad/vjp/jvp, and copying it "
                    "into a new leaf would cut it from the graph (a wrong gradient). Use t "
                    "itself, or t.detach() if a constant is meant.")
            data = data._data
        hook = _state.hook
        if hook is not None and type(data) is hook.traced_type:  # fg.jit: a traced Tensor
            self._data = hook.new_tensor_data(data, dtype)
        elif _batched(data):  # fg.vmap
            self._data = data if dtype is None or np.dtype(dtype) == data.dtype \
                else data.astype(dtype)
        else:
            self._data = _real_array(data, dtype, "Tensor")
        self._version = 0
        self._grad: Tensor | None = None
        self.requires_grad = bool(autograd if requires_grad is None else requires_grad)
        self._op = self._inputs = self._params = self._needs = self._versions = None
        self._seq = 0
        self._outs = self._parent = None
        self._index = 0

    @staticmethod
    def _make(data: np.ndarray, node: None = None) -> "Tensor":
        """A Tensor around ``data`` that requires no grad and records nothing (no copy)."""
        t = object.__new__(Tensor)
        t._data = data
        t._version = 0
        t._grad = None
        t.requires_grad = False
        t._op = t._inputs = t._params = t._needs = t._versions = None
        t._seq = 0
        t._outs = t._parent = None
        t._index = 0
        return t

    @staticmethod
    def _made_without_grad(data: np.ndarray) -> "Tensor":
        t = Tensor._make(data)
        t._seq = -1
        return t

    @staticmethod
    def _record(out: np.ndarray, op, inputs: tuple, params: Mapping, needs: tuple,
                versions: tuple) -> "Tensor":
        """The output of a recorded op call: a Tensor that is also that call's graph node."""
        t = object.__new__(Tensor)
        t._data = out
        t._version = 0
        t._grad = None
        t.requires_grad = True
        t._op = op
        t._inputs = inputs
        t._params = params
        t._needs = needs
        t._versions = versions
        t._seq = recording.next_seq()
        t._outs = t._parent = None
        t._index = 0
        return t

    @staticmethod
    def _record_multi(outs: tuple, op, inputs: tuple, params: Mapping, needs: tuple,
                      versions: tuple) -> tuple:
        first = Tensor._record(outs[0], op, inputs, params, needs, versions)
        first._outs = outs
        return (first,) + tuple(first._output(i) for i in range(1, len(outs)))

    def _output(self, i: int) -> "Tensor":
        """Output ``i`` of this multi-output node, as a Tensor whose gradient flows here."""
        t = Tensor._make(self._outs[i])
        t.requires_grad = True
        t._parent = self
        t._index = i
        return t

    def _output_tensors(self) -> tuple:
        return (self,) + tuple(self._output(i) for i in range(1, len(self._outs)))

    # -- the book's attributes ------------------------------------------------------------------

    @property
    def data(self) -> np.ndarray:
        """The values, an ndarray. Assigning to it (``w.data -= ...``) bumps a version counter,
        so a backward that still needs the old values raises instead of going wrong."""
        hook = _state.hook
        if hook is not None and not _batched(self._data):  # fg.jit: a captured Tensor's data
            return hook.tensor_data(self)  # is a traced array (fg.vmap's batched data is not
        return self._data  # captured: its values are)

    @data.setter
    def data(self, value: Any) -> None:
        hook = _state.hook
        if hook is not None:  # fg.jit: journaled, committed when the step succeeds
            hook.set_tensor_data(self, value)
            return
        if type(value) is not np.ndarray:
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
        if value.dtype.kind not in _NUMERIC:
            raise DTypeError(f"Tensor.data: cannot assign an array of dtype {value.dtype}; "
                             "Tensors hold numbers (bool, integer, floating point or complex)")
        self._data = value
        self._version += 1

    @property
    def grad(self) -> "Tensor | None":
        """The gradient backward accumulated (a Tensor), or None."""
        hook = _state.hook
        if hook is not None:  # fg.jit: an existing gradient becomes captured state
            return hook.get_grad(self)
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        hook = _state.hook
        if hook is not None:  # fg.jit: journaled, committed when the step succeeds
            hook.set_grad(self, value)
            return
        self._grad = value

    def bump_version(self) -> None:
        """Declare an in-place change of ``.data`` made without assigning to it (``d[...] = x``).

        >>> from fungrad import Tensor
        >>> w = Tensor([1.0, 2.0], autograd=True)
        >>> w.data[0] = 5.0; w.bump_version()
        """
        self._version += 1

    @property
    def autograd(self) -> bool:
        """Whether gradients flow into this tensor (the book's name for ``requires_grad``)."""
        return self.requires_grad

    @autograd.setter
    def autograd(self, value: bool) -> None:
        self.requires_grad = bool(value)

    @property
    def creators(self) -> list | None:
        """The Tensors this one was computed from (``None`` for a leaf)."""
        node = self._parent if self._parent is not None else self
        if node._op is None:
            return None
        return [t for t in node._inputs or () if isinstance(t, Tensor)]

    @property
    def creation_op(self) -> str | None:
        """The registry name of the op that made this tensor (``"add"``, ``"mm"``...)."""
        node = self._parent if self._parent is not None else self
        return None if node._op is None else node._op.name

    @property
    def is_leaf(self) -> bool:
        """Whether this tensor was made by the user rather than recorded from an op."""
        return self._op is None and self._parent is None

    @property
    def shape(self) -> tuple:
        """The shape of the data."""
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the data."""
        return self._data.dtype

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self._data.ndim

    @property
    def size(self) -> "Size":
        """The number of elements (NumPy's ``t.size``); called, the shape or one of its
        lengths (PyTorch's ``t.size()``, ``t.size(0)``).

        >>> from fungrad import Tensor
        >>> t = Tensor([[1.0, 2.0, 3.0]])
        >>> t.size, t.size(), t.size(1), t.size(-1)
        (3, (1, 3), 3, 3)
        """
        return Size(self._data.size, self._data.shape)

    @property
    def T(self) -> "Tensor":
        """The transpose (axes reversed), as ``ndarray.T``."""
        return _apply(_ops.transpose, (self,), {})

    @property
    def mT(self) -> "Tensor":
        """The matrix transpose of a stack of matrices (last two axes swapped)."""
        nd = self.ndim
        if nd < 2:
            raise ShapeError(f"mT: needs at least 2 dimensions, got shape {self.shape}")
        return _ops.transpose(self, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator["Tensor"]:
        for i in range(len(self._data)):
            yield self[i]

    def __repr__(self) -> str:
        return repr(self._data)  # as the book prints it

    def __str__(self) -> str:
        return str(self._data)

    # -- conversions: a recorded Tensor is never silently turned into a constant ---------------

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if type(self._data) is not np.ndarray:  # fg.jit: a traced array refuses, naming fixes
            return np.asarray(self._data, dtype=dtype)
        if self.requires_grad and _state.enabled:
            raise ConversionError(_detach_message("numpy.asarray / numpy.array (__array__)"))
        data = self._data
        if dtype is not None and np.dtype(dtype) != data.dtype:
            return data.astype(dtype)
        return data.copy() if copy else data

    def numpy(self) -> np.ndarray:
        """The data as an ndarray (shared, not copied); refused while it is being recorded.

        As PyTorch's ``.numpy()``: use ``t.detach().numpy()`` or ``t.data`` for the values of
        a tensor that requires grad.

        >>> from fungrad import Tensor
        >>> Tensor([1.0, 2.0]).numpy()
        array([1., 2.])
        """
        if self.requires_grad and _state.enabled:
            raise ConversionError(_detach_message("Tensor.numpy()"))
        return self._data

    def __bool__(self) -> bool:
        return bool(self._data)  # control flow on values: its zero derivative is right

    def __int__(self) -> int:
        return int(self._data)

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub":
            raise TypeError(f"only integer Tensors can be used as an index, got dtype "
                            f"{self._data.dtype}")
        return int(self._data)

    def __float__(self) -> float:
        self._refuse_traced_scalar("float(t)")
        return float(self._data)

    def __complex__(self) -> complex:
        self._refuse_traced_scalar("complex(t)")
        return complex(self._data)

    def item(self) -> Any:
        """The single element as a Python number.

        Allowed in eager code (log a loss with ``loss.item()``); refused on a floating value
        being differentiated by ``fg.grad``/``vjp``/``jvp``, where it would drop the derivative.

        >>> from fungrad import Tensor
        >>> Tensor([2.5]).item()
        2.5
        """
        if self._data.size != 1:
            raise ShapeError(f"item: only a tensor of one element converts to a Python number, "
                             f"got shape {self.shape}")
        self._refuse_traced_scalar("t.item()")
        return self._data.item()

    def _refuse_traced_scalar(self, what: str) -> None:
        if self.requires_grad and _state.depth and _state.enabled \
                and self._data.dtype.kind in "fc":
            raise ConversionError(
                f"{what}: this value is being differentiated by fg.grad/vjp/jvp, and a Python "
                "number would drop its derivative (a wrong gradient). Keep it a Tensor and use "
                "fg functions on it, or use t.detach() if a constant is meant. (bool(t) and "
                "int(t) are allowed: control flow and integer casts are piecewise constant.)")

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no gradient flows through it).

        >>> from fungrad import Tensor
        >>> Tensor([1.0], autograd=True).detach().requires_grad
        False
        """
        return Tensor._make(self._data)

    # -- NumPy's protocols: np.tanh(t), np.sum(t), np.linalg.norm(t) differentiate ---------------

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs, **kwargs):
        name = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        if kwargs.get("out") is not None:
            if _tracked(inputs) or _holds_tensor(kwargs["out"]):
                raise DTypeError(
                    f"{name}: out= is not supported with Tensors (NumPy cannot write a "
                    f"Tensor's result in place); assign the result instead: y = {name}(...)")
            return getattr(ufunc, method)(*unwrap_tree(inputs), **kwargs)
        impl = registry.numpy_impl(ufunc, method)
        if impl is not None:
            return impl(*inputs, **kwargs)
        if _tracked(inputs):
            raise TypeError(_no_impl_message(name))
        return getattr(ufunc, method)(*unwrap_tree(inputs), **unwrap_tree(kwargs))

    def __array_function__(self, func: Callable, types: tuple, args: tuple, kwargs: dict):
        if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
            return NotImplemented
        impl = registry.numpy_impl(func)
        if impl is not None:
            return impl(*args, **kwargs)
        name = f"{getattr(func, '__module__', 'numpy')}.{getattr(func, '__name__', func)}"
        if _tracked(args) or _tracked(tuple(kwargs.values())):
            raise TypeError(_no_impl_message(name))
        return func(*unwrap_tree(args), **unwrap_tree(kwargs))

    # -- backward -------------------------------------------------------------------------------

    def backward(self, grad: Any = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the cotangent of this tensor; ``None`` means ones, as in the book. The graph
        is freed as backward walks it unless ``retain_graph=True``; with ``create_graph=True``
        the gradients are themselves recorded, so they can be differentiated again. If a VJP
        raises, no ``.grad`` is changed and the graph stays usable.

        >>> from fungrad import Tensor
        >>> w = Tensor([3.0], autograd=True)
        >>> (w * w).backward()
        >>> w.grad
        array([6.])
        """
        if not self.requires_grad:
            if self._seq == -1:
                raise GraphError(
                    "backward: this tensor was computed inside fg.no_grad(), so nothing was "
                    "recorded; compute the loss outside the no_grad() block")
            raise GraphError(
                "backward: this tensor does not require grad; create its inputs with "
                "Tensor(..., autograd=True) so that ops on them are recorded"
            )
        dtype = self._data.dtype if self._data.dtype.kind in "fc" else np.dtype(np.float64)
        if grad is None:
            if dtype.kind == "c":
                raise DTypeError(
                    f"backward: this tensor is complex (dtype {dtype}); pass grad= (its "
                    "cotangent, see the README's complex convention), or backpropagate a real "
                    "value such as fg.abs(t) ** 2 or fg.real(t)")
            if self._data.size != 1:
                _warn_non_scalar(self.shape)
            seed: Any = np.ones(self._data.shape, dtype=dtype)
        else:
            if isinstance(grad, Tensor) and create_graph:
                seed = grad
                if grad._data.dtype.kind not in _NUMERIC:
                    raise DTypeError(f"backward: grad must hold numbers, got dtype "
                                     f"{grad.dtype}")
            elif isinstance(grad, (str, bytes)) or grad is Ellipsis:
                raise DTypeError(f"backward: grad must be an array or Tensor of numbers, "
                                 f"got {type(grad).__name__}")
            else:
                seed = backprop.as_seed(grad, dtype, "backward")
            seed_shape = tuple(np.shape(getattr(seed, "_data", seed)))
            if seed_shape != self.shape:
                raise ShapeError(f"backward: grad of shape {seed_shape} does not match the "
                                 f"tensor's shape {self.shape}")
        backprop.backward([self], [seed], retain_graph=retain_graph or create_graph,
                          create_graph=create_graph)

    # -- operators ------------------------------------------------------------------------------

    def __add__(self, other: ArrayLike) -> Tensor: return _apply(_ops.add, (self, other), {})
    def __radd__(self, other: ArrayLike) -> Tensor: return _apply(_ops.add, (other, self), {})
    def __sub__(self, other: ArrayLike) -> Tensor: return _apply(_ops.subtract, (self, other), {})
    def __rsub__(self, other: ArrayLike) -> Tensor: return _apply(_ops.subtract, (other, self), {})
    def __mul__(self, other: ArrayLike) -> Tensor: return _apply(_ops.multiply, (self, other), {})
    def __rmul__(self, other: ArrayLike) -> Tensor: return _apply(_ops.multiply, (other, self), {})
    def __truediv__(self, other: ArrayLike) -> Tensor: return _apply(_ops.divide, (self, other), {})
    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return _apply(_ops.divide, (other, self), {})
    def __pow__(self, other: ArrayLike) -> Tensor: return _apply(_ops.power, (self, other), {})
    def __rpow__(self, other: ArrayLike) -> Tensor: return _apply(_ops.power, (other, self), {})
    def __matmul__(self, other: ArrayLike) -> Tensor: return _apply(_ops.matmul, (self, other), {})
    def __rmatmul__(self, other: ArrayLike) -> Tensor: return _apply(_ops.matmul, (other, self), {})
    def __mod__(self, other: ArrayLike) -> Tensor: return _apply(_ops.mod, (self, other), {})
    def __rmod__(self, other: ArrayLike) -> Tensor: return _apply(_ops.mod, (other, self), {})
    def __neg__(self) -> Tensor: return _apply(_ops.negative, (self,), {})
    def __pos__(self) -> Tensor: return self
    def __abs__(self) -> Tensor: return _ops.abs(self)

    def __getitem__(self, index: Any) -> "Tensor":
        return _ops.getitem(self, index=_plain_index(index))

    # comparisons are not differentiable: they give boolean Tensors outside the graph
    def __lt__(self, other: ArrayLike) -> Tensor: return Tensor._make(self._data < _raw(other))
    def __le__(self, other: ArrayLike) -> Tensor: return Tensor._make(self._data <= _raw(other))
    def __gt__(self, other: ArrayLike) -> Tensor: return Tensor._make(self._data > _raw(other))
    def __ge__(self, other: ArrayLike) -> Tensor: return Tensor._make(self._data >= _raw(other))
    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        return Tensor._make(self._data == _raw(other))
    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        return Tensor._make(self._data != _raw(other))

    # -- methods (the book's positional ``dim`` and NumPy's ``axis`` both work) -----------------

    @hints
    def sum(self, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
            keepdim: bool | None = None) -> "Tensor":
        """Sum over ``dim`` (all axes when None), as ``fg.sum``."""
        return _ops.sum(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim))

    @hints
    def mean(self, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
            keepdim: bool | None = None) -> "Tensor":
        """Mean over ``dim`` (all axes when None), as ``fg.mean``."""
        return _ops.mean(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim))

    @hints
    def var(self, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
            ddof: int = 0, keepdim: bool | None = None) -> "Tensor":
        """Variance over ``dim`` with ``ddof``, as ``fg.var``."""
        return _ops.var(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim),
                        ddof=ddof)

    @hints
    def prod(self, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
            keepdim: bool | None = None) -> "Tensor":
        """Product over ``dim`` (all axes when None), as ``fg.prod``; exact where zeros are."""
        return _ops.prod(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim))

    @hints
    def std(self, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
            ddof: int = 0, keepdim: bool | None = None) -> "Tensor":
        """Standard deviation over ``dim`` with ``ddof``, as ``fg.std``."""
        return _ops.std(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim),
                        ddof=ddof)

    def cumsum(self, axis: int | None = None, dtype: Any = None, *,
               reverse: bool = False) -> "Tensor":
        """Cumulative sums along ``axis`` (of the flattened data when None), as
        ``ndarray.cumsum``; ``reverse=True`` sums from the end."""
        x = self if dtype is None else self.astype(dtype)
        return _ops.cumsum(x, axis=axis, reverse=reverse)

    def cumprod(self, axis: int | None = None, dtype: Any = None, *,
                reverse: bool = False) -> "Tensor":
        """Cumulative products along ``axis`` (of the flattened data when None), as
        ``ndarray.cumprod``; ``reverse=True`` multiplies from the end."""
        x = self if dtype is None else self.astype(dtype)
        return _ops.cumprod(x, axis=axis, reverse=reverse)

    def round(self, decimals: int = 0) -> "Tensor":
        """Round to ``decimals`` (half to even, as NumPy); the gradient is zero."""
        return _ops.round(self, decimals=decimals)

    def __round__(self, ndigits: int | None = None) -> "Tensor":
        return _ops.round(self, decimals=ndigits or 0)

    def conj(self) -> "Tensor":
        """The complex conjugate (for real data, the data itself), as ``fg.conj``."""
        return _ops.conj(self)

    conjugate = conj

    @property
    def real(self) -> "Tensor":
        """The real part (for real data, the data itself), as ``fg.real``."""
        return _ops.real(self)

    @property
    def imag(self) -> "Tensor":
        """The imaginary part (for real data, zeros), as ``fg.imag``."""
        return _ops.imag(self)

    @hints
    def max(self, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
            keepdim: bool | None = None) -> "Tensor":
        """Maximum over ``dim``; tied maxima share the gradient."""
        return _ops.max(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim))

    @hints
    def min(self, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
            keepdim: bool | None = None) -> "Tensor":
        """Minimum over ``dim``; tied minima share the gradient."""
        return _ops.min(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim))

    @hints
    def logsumexp(self, dim: Axis = None, keepdims: bool = False, *,
                  axis: Axis = None, keepdim: bool | None = None) -> "Tensor":
        """log(sum(exp(self))) over ``dim``, stable for large values."""
        return _ops.logsumexp(self, axis=_axis(dim, axis),
                              keepdims=_keepdims(keepdims, keepdim))

    def softmax(self, dim: int = -1) -> "Tensor":
        """Softmax along ``dim``."""
        return _ops.softmax(self, axis=dim)

    def log_softmax(self, dim: int = -1) -> "Tensor":
        """Log-softmax along ``dim``."""
        return _ops.log_softmax(self, axis=dim)

    def argmax(self, dim: int | None = None, *, axis: int | None = None) -> "Tensor":
        """Indices of the maxima (an integer Tensor outside the graph)."""
        return Tensor._make(_index_array(self._data.argmax(axis=_axis(dim, axis))))

    def argmin(self, dim: int | None = None, *, axis: int | None = None) -> "Tensor":
        """Indices of the minima (an integer Tensor outside the graph)."""
        return Tensor._make(_index_array(self._data.argmin(axis=_axis(dim, axis))))

    def expand(self, dim: int, copies: int) -> "Tensor":
        """The book's expand: a new axis at ``dim`` holding ``copies`` copies of the data."""
        return _ops.expand(self, dim=dim, copies=copies)

    def transpose(self, *axes: int) -> "Tensor":
        """Reverse the axes (the book's ``transpose()``) or permute them as given."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _ops.transpose(self, axes=tuple(axes) if axes else None)

    def reshape(self, *shape: int) -> "Tensor":
        """The same data in a new shape (``t.reshape(2, 3)`` or ``t.reshape((2, 3))``)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _ops.reshape(self, shape=_shape_arg("reshape", shape))

    def ravel(self, order: str = "C") -> "Tensor":
        """The data as one axis, read in C (row-major) or F (column-major) order."""
        x = self if order in ("C", "A", "K") else self._fortran("ravel", order)
        return _ops.reshape(x, shape=(-1,))

    def flatten(self, order: str = "C") -> "Tensor":
        """A copy of the data as one axis, read in C or F order."""
        return _ops.copy(self.ravel(order))

    def _fortran(self, op: str, order: str) -> "Tensor":
        if order != "F":
            raise ValueError(f"{op}: order must be 'C', 'F', 'A' or 'K', got {order!r}")
        return _ops.transpose(self)

    def swapaxes(self, axis1: int, axis2: int) -> "Tensor":
        """The axes ``axis1`` and ``axis2`` exchanged, as ``ndarray.swapaxes``."""
        axes = list(range(self.ndim))
        try:
            axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        except (IndexError, TypeError):
            raise ShapeError(f"swapaxes: axes {axis1} and {axis2} are out of range for shape "
                             f"{self.shape}") from None
        return _ops.transpose(self, axes=tuple(axes))

    def take(self, indices: ArrayLike, axis: int | None = None) -> "Tensor":
        """Elements at ``indices`` along ``axis`` (of the flattened data when None), as
        ``ndarray.take``; repeated indices accumulate their gradients."""
        idx = np.asarray(_raw(indices))
        if axis is None:
            return _ops.getitem(_ops.reshape(self, shape=(-1,)), index=idx)
        ax = _normalize_axes("take", axis, self.ndim)[0]
        return _ops.getitem(self, index=(slice(None),) * ax + (idx,))

    def repeat(self, repeats: ArrayLike, axis: int | None = None) -> "Tensor":
        """Each element repeated ``repeats`` times along ``axis`` (flattened when None), as
        ``ndarray.repeat``."""
        x = _ops.reshape(self, shape=(-1,)) if axis is None else self
        ax = 0 if axis is None else _normalize_axes("repeat", axis, self.ndim)[0]
        picks = np.repeat(np.arange(x.shape[ax]), _raw(repeats))
        return _ops.getitem(x, index=(slice(None),) * ax + (picks,))

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> "Tensor":
        """The diagonal of the plane ``(axis1, axis2)``, as ``ndarray.diagonal``."""
        return _ops.diagonal(self, offset=offset, axis1=axis1, axis2=axis2)

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> "Tensor":
        """The sum of the diagonal, as ``ndarray.trace``."""
        return _ops.sum(self.diagonal(offset, axis1, axis2), axis=-1)

    def argsort(self, axis: int = -1) -> "Tensor":
        """The indices that sort the data along ``axis`` (an integer Tensor outside the graph)."""
        return Tensor._make(np.argsort(self._data, axis=axis))

    def squeeze(self, dim: Axis = None) -> "Tensor":
        """Drop axes of length one (all of them, or ``dim``)."""
        return _ops.squeeze(self, axis=dim)

    def unsqueeze(self, dim: int | Tuple[int, ...]) -> "Tensor":
        """A new axis of length one at ``dim``."""
        return _ops.expand_dims(self, axis=dim)

    def broadcast_to(self, shape: Tuple[int, ...]) -> "Tensor":
        """Broadcast to ``shape``, as ``numpy.broadcast_to``."""
        return _ops.broadcast_to(self, shape=_shape_arg("broadcast_to", shape))

    def astype(self, dtype: Any) -> "Tensor":
        """Cast to ``dtype``; casting to an integer or boolean dtype cuts the gradient."""
        return _ops.astype(self, dtype=np.dtype(dtype).name)

    def copy(self) -> "Tensor":
        """A copy with its own data, still connected to the graph."""
        return _ops.copy(self)

    def mm(self, other: ArrayLike) -> "Tensor":
        """The book's 2-D matrix product."""
        return _ops.mm(self, other)

    def matmul(self, other: ArrayLike) -> "Tensor":
        """Matrix product with NumPy's rules (``self @ other``)."""
        return _ops.matmul(self, other)

    def dot(self, other: ArrayLike) -> "Tensor":
        """The dot product as ``ndarray.dot``: ``self @ other`` up to two dimensions; beyond,
        a sum over the last axis of ``self`` and the second-to-last of ``other``."""
        a_nd, b_nd = self.ndim, np.ndim(_raw(other))
        if a_nd == 0 or b_nd == 0:
            return _ops.multiply(self, other)
        if a_nd <= 2 and b_nd <= 2:
            return _ops.matmul(self, other)
        a = "abcdefgh"[:a_nd - 1] + "z"
        b = "ijklmnop"[:max(b_nd - 2, 0)] + "z" + ("q" if b_nd >= 2 else "")
        return _ops.einsum([self, other], subscripts=f"{a},{b}->{a[:-1]}{b.replace('z', '')}")

    def exp(self) -> "Tensor":
        """e ** self, elementwise."""
        return _ops.exp(self)

    def log(self) -> "Tensor":
        """The natural logarithm, elementwise."""
        return _ops.log(self)

    def sqrt(self) -> "Tensor":
        """The square root, elementwise."""
        return _ops.sqrt(self)

    def abs(self) -> "Tensor":
        """The absolute value, elementwise."""
        return _ops.abs(self)

    def sin(self) -> "Tensor":
        """The sine, elementwise."""
        return _ops.sin(self)

    def cos(self) -> "Tensor":
        """The cosine, elementwise."""
        return _ops.cos(self)

    def tanh(self) -> "Tensor":
        """The hyperbolic tangent, elementwise."""
        return _ops.tanh(self)

    def sigmoid(self) -> "Tensor":
        """1 / (1 + exp(-self)), elementwise and stable."""
        return _ops.sigmoid(self)

    def relu(self) -> "Tensor":
        """max(self, 0), elementwise."""
        return _ops.relu(self)

    def floor(self) -> "Tensor":
        """The largest integer not above each element; the gradient is zero."""
        return _ops.floor(self)

    def ceil(self) -> "Tensor":
        """The smallest integer not below each element; the gradient is zero."""
        return _ops.ceil(self)

    def trunc(self) -> "Tensor":
        """Each element rounded toward zero; the gradient is zero."""
        return _ops.trunc(self)

    def square(self) -> "Tensor":
        """self * self, elementwise."""
        return _ops.square(self)

    def tan(self) -> "Tensor":
        """The tangent, elementwise."""
        return _ops.tan(self)

    def sinh(self) -> "Tensor":
        """The hyperbolic sine, elementwise."""
        return _ops.sinh(self)

    def cosh(self) -> "Tensor":
        """The hyperbolic cosine, elementwise."""
        return _ops.cosh(self)

    def log1p(self) -> "Tensor":
        """log(1 + self), accurate for small values."""
        return _ops.log1p(self)

    def expm1(self) -> "Tensor":
        """exp(self) - 1, accurate for small values."""
        return _ops.expm1(self)

    def log2(self) -> "Tensor":
        """The base-2 logarithm, elementwise."""
        return _ops.log2(self)

    def log10(self) -> "Tensor":
        """The base-10 logarithm, elementwise."""
        return _ops.log10(self)

    def reciprocal(self) -> "Tensor":
        """1 / self, elementwise."""
        return _ops.reciprocal(self)

    def softplus(self) -> "Tensor":
        """log(1 + exp(self)), elementwise and stable."""
        return _ops.softplus(self)


    def clip(self, min: ArrayLike = None, max: ArrayLike = None) -> "Tensor":  # noqa: A002 (NumPy's names)
        """Limit values to [min, max]; the gradient is zero where clipped."""
        return _ops.clip(self, a_min=min, a_max=max)

    def index_select(self, indices: ArrayLike) -> "Tensor":
        """Rows of this tensor at ``indices`` (the book's embedding lookup)."""
        return _ops.index_select(self, indices)

    def cross_entropy(self, target_indices: ArrayLike) -> "Tensor":
        """Softmax cross-entropy against integer targets, averaged over the batch."""
        return _ops.cross_entropy(self, target_indices)

    # -- PyTorch's names for the same things, so that ported code runs ----------------------------

    def pow(self, exponent: ArrayLike) -> "Tensor":
        """``self ** exponent`` (PyTorch's name).

        >>> from fungrad import Tensor
        >>> Tensor([2.0, 3.0]).pow(2)
        array([4., 9.])
        """
        return _apply(_ops.power, (self, exponent), {})

    def float(self) -> "Tensor":
        """Cast to float32, as PyTorch's ``.float()`` (fungrad's default is NumPy's float64).

        >>> from fungrad import Tensor
        >>> Tensor([1, 2]).float().dtype
        dtype('float32')
        """
        return _ops.astype(self, dtype="float32")

    def double(self) -> "Tensor":
        """Cast to float64, as PyTorch's ``.double()``.

        >>> from fungrad import Tensor
        >>> Tensor([1, 2]).double().dtype
        dtype('float64')
        """
        return _ops.astype(self, dtype="float64")

    def view(self, *shape: int) -> "Tensor":
        """The data in a new shape, as PyTorch's ``.view`` (here the same as ``reshape``; a
        view of the data wherever NumPy can make one).

        >>> from fungrad import Tensor
        >>> Tensor([[1.0, 2.0], [3.0, 4.0]]).view(-1).shape
        (4,)
        """
        return self.reshape(*shape)

    def dim(self) -> int:
        """The number of axes (PyTorch's name for ``ndim``).

        >>> from fungrad import Tensor
        >>> Tensor([[1.0, 2.0]]).dim()
        2
        """
        return self._data.ndim

    def numel(self) -> int:
        """The number of elements (PyTorch's name for ``size``).

        >>> from fungrad import Tensor
        >>> Tensor([[1.0, 2.0]]).numel()
        2
        """
        return int(self._data.size)

    def clamp(self, min: ArrayLike = None, max: ArrayLike = None) -> "Tensor":  # noqa: A002
        """Limit values to [min, max], as PyTorch's ``.clamp`` (``clip``'s other name).

        >>> from fungrad import Tensor
        >>> Tensor([-2.0, 0.5, 3.0]).clamp(min=0.0, max=1.0)
        array([0. , 0.5, 1. ])
        """
        if min is None and max is None:
            raise ValueError("clamp: give min, max or both")
        return _ops.clip(self, a_min=min, a_max=max)

    def t(self) -> "Tensor":
        """The transpose of a matrix (a tensor of at most two axes), as PyTorch's ``.t()``.

        >>> from fungrad import Tensor
        >>> Tensor([[1.0, 2.0, 3.0]]).t().shape
        (3, 1)
        """
        if self._data.ndim > 2:
            raise ShapeError(f"t: expects a tensor of at most 2 axes, got shape {self.shape}; "
                             "use transpose(axes) or mT for stacks of matrices")
        return _ops.transpose(self)

    def zero_(self) -> "Tensor":
        """Set every element to zero in place and return this tensor (PyTorch's ``zero_``).

        Used on gradients (``p.grad.zero_()``); a backward that still needs the old values
        raises rather than computing a wrong gradient.

        >>> from fungrad import Tensor
        >>> g = Tensor([1.0, 2.0])
        >>> g.zero_() is g, g
        (True, array([0., 0.]))
        """
        data = self.data
        data[...] = 0
        self.bump_version()
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Turn recording on (or off) for this tensor in place and return it (PyTorch's).

        >>> from fungrad import Tensor
        >>> Tensor([1.0]).requires_grad_().requires_grad
        True
        """
        self.requires_grad = bool(requires_grad)
        return self


class Size(int):
    """``Tensor.size``: the number of elements, an ``int`` as NumPy's ``size`` is, that can also
    be called as PyTorch's ``size()``: ``t.size()`` is the shape, ``t.size(dim)`` one length.

    >>> from fungrad import Tensor
    >>> n = Tensor([[1.0, 2.0], [3.0, 4.0]]).size
    >>> n + 1, n(0)
    (5, 2)
    """

    _shape: tuple

    def __new__(cls, n: int, shape: tuple) -> "Size":
        out = super().__new__(cls, n)
        out._shape = tuple(shape)
        return out

    @overload
    def __call__(self) -> tuple: ...
    @overload
    def __call__(self, dim: int) -> int: ...

    def __call__(self, dim: int | None = None) -> tuple | int:
        if dim is None:
            return self._shape
        try:
            return int(self._shape[dim])
        except (IndexError, TypeError):
            raise IndexRangeError(f"size: dimension {dim!r} is out of range for a tensor of "
                                  f"shape {self._shape} (valid: {-len(self._shape)}.."
                                  f"{len(self._shape) - 1})") from None

    def __repr__(self) -> str:
        return int.__repr__(self)

    def __reduce__(self) -> tuple:
        return (int, (int(self),))


_warned_non_scalar = False


def _warn_non_scalar(shape: tuple) -> None:
    """Say once per process that ``backward()`` without a seed summed a non-scalar loss."""
    global _warned_non_scalar
    if _warned_non_scalar:
        return
    _warned_non_scalar = True
    warnings.warn(
        f"backward: the loss has shape {shape}, not a single number, and no grad was given, "
        "so its gradient is that of its sum (the book's seed of ones; PyTorch refuses this). "
        "Pass grad= to weigh the elements, or reduce the loss first: loss.sum() or "
        "loss.mean() (nn.MSELoss(reduction='mean') is PyTorch's default). This warning is "
        "shown once.", NonScalarBackwardWarning, stacklevel=3)


def _real_array(data: Any, dtype: Any, where: str) -> np.ndarray:
    """``data`` as a new ndarray of numbers, or a fungrad error naming ``where``."""
    if isinstance(data, (str, bytes)) or data is None:
        raise DTypeError(f"{where}: expected numbers (an array, a list or a number), got "
                         f"{type(data).__name__} {data!r}")
    try:
        arr = np.array(data, dtype=dtype)
    except ValueError as e:
        raise ShapeError(f"{where}: could not make an array from the data: {e} (nested lists "
                         "must have equal lengths)") from None
    except TypeError as e:
        raise DTypeError(f"{where}: could not make an array of dtype {dtype} from the data: "
                         f"{e}") from None
    if arr.dtype.kind not in _NUMERIC:
        raise DTypeError(f"{where}: data of dtype {arr.dtype}: expected numbers (bool, "
                         "integer, floating point or complex)")
    return arr


def _shape_arg(op: str, shape) -> tuple:
    try:
        return tuple(int(s) if isinstance(s, (int, np.integer)) else _bad_dim(op, s)
                     for s in shape)
    except TypeError:
        raise DTypeError(f"{op}: the shape must be ints or a tuple of ints, got "
                         f"{shape!r}") from None


def _bad_dim(op: str, s):
    raise DTypeError(f"{op}: the shape must be made of ints, got {s!r} ({type(s).__name__})")


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


def _batched(data) -> bool:
    """Whether ``data`` is an array fg.vmap batches (the data of a Tensor under vmap)."""
    vm = _state.vmap
    return vm is not None and type(data) is vm.batched_type


def _index_array(x):
    """NumPy's index scalar as a 0-d array (a traced or batched array stays one)."""
    return x if recording.is_traced(x) else np.asarray(x)


def _axis(dim, axis):
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"got dim={dim!r} and axis={axis!r}; pass one of them")
    return axis if dim is None else dim


def _tracked(values: tuple) -> bool:
    """Whether a Tensor that requires grad is among ``values`` (searched through lists)."""
    if not _state.enabled:
        return False
    for v in values:
        if isinstance(v, Tensor):
            if v.requires_grad:
                return True
        elif isinstance(v, (list, tuple)) and _tracked(tuple(v)):
            return True
    return False


def _holds_tensor(value) -> bool:
    if isinstance(value, Tensor):
        return True
    return isinstance(value, (list, tuple)) and any(_holds_tensor(v) for v in value)


def _detach_message(what: str) -> str:
    return (f"{what}: this Tensor requires grad (it is recorded, or being differentiated), "
            "and turning it into an ndarray would silently cut it from the graph, so its "
            "gradient would be wrong. Use a differentiable function instead (fg.X or "
            "fungrad.numpy.X — e.g. fungrad.numpy.array([...]) or fg.stack for a list of "
            "Tensors — or register one with fg.defop); if you mean a constant, use "
            "t.detach() or t.data.")


def _no_impl_message(name: str) -> str:
    return (f"{name} has no differentiable fungrad implementation, and it was called on a "
            "Tensor that requires grad, whose gradient it would silently drop. Use a fungrad "
            "function (fg.X or fungrad.numpy.X), register the function with fg.defop, or pass "
            "t.detach() / t.data if a constant is meant.")


registry._bind_tensor(Tensor)
