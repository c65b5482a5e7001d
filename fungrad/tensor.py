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

from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from . import backprop, recording, registry
from .errors import ConversionError, DTypeError, GraphError, ShapeError

if TYPE_CHECKING:  # the operators and op methods, attached by fungrad._tensor_methods
    from ._tensor_methods import Methods as _Methods
else:
    _Methods = object

__all__ = ["Tensor"]

_state = recording.thread
_NUMERIC = "biufc"  # the dtype kinds a Tensor holds: bool, integers, floats, complex


class Tensor(_Methods):
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
    # inputs that required grad (so backward() can say so); a leaf's _seq is 0, or the sequence
    # number of its making when a transformation made it as an input's stand-in (so that a loop
    # step or a checkpoint can tell a leaf made inside it from one it reads).
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
        self.requires_grad = bool(autograd if requires_grad is None else requires_grad)
        self._grad = self._op = self._inputs = self._params = self._needs = self._versions = None
        self._outs = self._parent = None
        self._version = self._seq = self._index = 0

    @staticmethod
    def _make(data: np.ndarray, node: None = None) -> "Tensor":
        """A Tensor around ``data`` that requires no grad and records nothing (no copy)."""
        t = object.__new__(Tensor)
        t._data = data
        t.requires_grad = False
        t._grad = t._op = t._inputs = t._params = t._needs = t._versions = None
        t._outs = t._parent = None
        t._version = t._seq = t._index = 0
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
        t.requires_grad = True
        t._op = op
        t._inputs = inputs
        t._params = params
        t._needs = needs
        t._versions = versions
        t._seq = recording.next_seq()
        t._grad = t._outs = t._parent = None
        t._version = t._index = 0
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

    # -- conversions: a recorded Tensor is never silently turned into a constant ---------------

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if type(self._data) is not np.ndarray:  # fg.jit: a traced array refuses, naming fixes
            return np.asarray(self._data, dtype=dtype)
        if self.requires_grad and _state.enabled:
            raise ConversionError(_detach_message("numpy.asarray / numpy.array (__array__)"))
        data = self._values()
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
        return self._values()

    def __bool__(self) -> bool:
        return bool(self._values())  # control flow on values: its zero derivative is right

    def __int__(self) -> int:
        return int(self._values())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub":
            raise TypeError(f"only integer Tensors can be used as an index, got dtype "
                            f"{self._data.dtype}")
        return int(self._values())

    def __float__(self) -> float:
        self._refuse_traced_scalar("float(t)")
        return float(self._values())

    def __complex__(self) -> complex:
        self._refuse_traced_scalar("complex(t)")
        return complex(self._values())

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
        return self._values().item()

    def _values(self) -> Any:
        """The data, for a conversion to a Python or NumPy value. While fg.jit traces, the
        values of a Tensor not traced (state the function closes over) become constants of
        the program, guarded: a change retraces (a traced Tensor's array refuses instead)."""
        hook = _state.hook
        if hook is not None and type(self._data) is not hook.traced_type \
                and not _batched(self._data):
            hook.read_values(self)
        return self._data

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
        return registry.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Callable, types: tuple, args: tuple, kwargs: dict):
        return registry.array_function(func, types, args, kwargs)

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
        seed = backprop.seed_of(self, grad, create_graph)
        backprop.backward([self], [seed], retain_graph=retain_graph or create_graph,
                          create_graph=create_graph)


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


def _batched(data) -> bool:
    """Whether ``data`` is an array fg.vmap batches (the data of a Tensor under vmap)."""
    vm = _state.vmap
    return vm is not None and type(data) is vm.batched_type


def _detach_message(what: str) -> str:
    return (f"{what}: this Tensor requires grad (it is recorded, or being differentiated), "
            "and turning it into an ndarray would silently cut it from the graph, so its "
            "gradient would be wrong. Use a differentiable function instead (fg.X or "
            "fungrad.numpy.X — e.g. fungrad.numpy.array([...]) or fg.stack for a list of "
            "Tensors — or register one with fg.defop); if you mean a constant, use "
            "t.detach() or t.data.")


registry._bind_tensor(Tensor)
