"""Tensor: an ndarray, its gradient, and the tape node that made it.

Operators and methods delegate to registered ops, so a Tensor method, the ``fg.*`` function of
the same name and the generated tests all run the same code.

>>> import numpy as np
>>> from fungrad import Tensor
>>> x = Tensor(np.array([1.0, 2.0, 3.0]), autograd=True)
>>> y = (x * x).sum(0)
>>> y.backward()
>>> x.grad
array([2., 4., 6.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops as _ops
from . import registry, tape
from .registry import apply as _apply
from .errors import DTypeError, GraphError, ShapeError
from .ops.indexing import _plain_index

__all__ = ["Tensor"]


class Tensor:
    """An ndarray that records the ops applied to it when ``autograd`` (``requires_grad``) is set.

    ``Tensor(data, autograd=False)`` copies ``data`` into an ndarray (keeping its dtype, or
    ``dtype`` if given). ``.grad`` is a Tensor filled by ``backward()``. Integer tensors may be
    marked ``autograd=True``; they receive floating-point gradients.

    >>> from fungrad import Tensor
    >>> a = Tensor([1, 2, 3], autograd=True)
    >>> b = a + a
    >>> b.backward(Tensor([1, 1, 1]))
    >>> a.grad, b.creation_op
    (array([2., 2., 2.]), 'add')
    """

    __slots__ = ("_data", "_grad", "requires_grad", "_node", "_version", "__weakref__")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operators
    __hash__ = object.__hash__

    def __init__(self, data: Any, autograd: bool = False, *, requires_grad: bool | None = None,
                 dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        hook = tape.state.hook
        if hook is not None and type(data) is hook.traced_type:  # fg.jit: a traced Tensor
            self._data = hook.new_tensor_data(data, dtype)
        else:
            self._data = np.array(data, dtype=dtype)
        self._version = 0
        self._grad: Tensor | None = None
        self.requires_grad = bool(autograd if requires_grad is None else requires_grad)
        self._node = None

    @staticmethod
    def _make(data: np.ndarray, node) -> "Tensor":
        t = object.__new__(Tensor)
        t._data = data
        t._version = 0
        t._grad = None
        t.requires_grad = node is not None
        t._node = node
        return t

    # -- the book's attributes ------------------------------------------------------------------

    @property
    def data(self) -> np.ndarray:
        """The values, an ndarray. Assigning to it (``w.data -= ...``) bumps a version counter,
        so a backward that still needs the old values raises instead of going wrong."""
        hook = tape.state.hook
        if hook is not None:  # fg.jit: a captured Tensor's data is a traced array
            return hook.tensor_data(self)
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        hook = tape.state.hook
        if hook is not None:  # fg.jit: journaled, committed when the step succeeds
            hook.set_tensor_data(self, value)
            return
        self._data = value if type(value) is np.ndarray else np.asarray(value)
        self._version += 1

    @property
    def grad(self) -> "Tensor | None":
        """The gradient backward accumulated (a Tensor), or None."""
        hook = tape.state.hook
        if hook is not None:  # fg.jit: an existing gradient becomes captured state
            return hook.get_grad(self)
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        hook = tape.state.hook
        if hook is not None:  # fg.jit: journaled, committed when the step succeeds
            hook.set_grad(self, value)
            return
        self._grad = value

    def bump_version(self) -> None:
        """Declare an in-place change of ``.data`` made without assigning to it (``d[...] = x``)."""
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
        node = self._node
        if node is None:
            return None
        if node.inputs is None:  # freed by backward: leaf creators are kept (see Node.release)
            return [t for t in node.released if isinstance(t, Tensor)]
        return [t for t in node.inputs if isinstance(t, Tensor)]

    @property
    def creation_op(self) -> str | None:
        """The registry name of the op that made this tensor (``"add"``, ``"mm"``...)."""
        return None if self._node is None else self._node.op.name

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def T(self) -> "Tensor":
        return _apply(_ops.transpose, (self,), {})

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        for i in range(len(self.data)):
            yield self[i]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self.data
        if type(data) is not np.ndarray:  # fg.jit: a traced array refuses, naming the fixes
            return np.asarray(data, dtype=dtype)
        return data if dtype is None else data.astype(dtype)

    def __repr__(self) -> str:
        return repr(self.data)  # as the book prints it

    def __str__(self) -> str:
        return str(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def numpy(self) -> np.ndarray:
        """The data as an ndarray (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        """The single element as a Python number."""
        if self.data.size != 1:
            raise ShapeError(f"item: only a tensor of one element converts to a Python number, "
                             f"got shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor._make(self.data, None)

    # -- backward -------------------------------------------------------------------------------

    def backward(self, grad: Any = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the cotangent of this tensor; ``None`` means ones, as in the book. The graph
        is freed as backward walks it unless ``retain_graph=True``; with ``create_graph=True``
        the gradients are themselves recorded, so they can be differentiated again.
        """
        if not self.requires_grad:
            raise GraphError(
                "backward: this tensor does not require grad; create its inputs with "
                "Tensor(..., autograd=True) so that ops on them are recorded"
            )
        dtype = self.data.dtype if self.data.dtype.kind == "f" else np.dtype(np.float64)
        if grad is None:
            seed: Any = np.ones(self.data.shape, dtype=dtype)
        else:
            if isinstance(grad, Tensor) and create_graph:
                seed = grad
            elif tape.state.hook is not None and type(_raw(grad)) is tape.state.hook.traced_type:
                seed = _raw(grad)  # fg.jit: a traced seed (Tensor(np.ones_like(loss.data)))
                if seed.dtype != dtype:
                    seed = seed.astype(dtype)
            else:
                seed = np.asarray(_raw(grad))
                if seed.dtype.kind not in "biuf":
                    raise DTypeError(f"backward: grad must hold real numbers, "
                                     f"got dtype {seed.dtype}")
                if seed.dtype != dtype:
                    seed = seed.astype(dtype)
            if tuple(np.shape(seed.data if isinstance(seed, Tensor) else seed)) != self.shape:
                raise ShapeError(
                    f"backward: grad of shape {tuple(np.shape(_raw(seed)))} "
                    f"does not match the tensor's shape {self.shape}"
                )
        tape.backward([self], [seed], retain_graph=retain_graph or create_graph,
                      create_graph=create_graph)

    # -- operators ------------------------------------------------------------------------------

    def __add__(self, other): return _apply(_ops.add, (self, other), {})
    def __radd__(self, other): return _apply(_ops.add, (other, self), {})
    def __sub__(self, other): return _apply(_ops.subtract, (self, other), {})
    def __rsub__(self, other): return _apply(_ops.subtract, (other, self), {})
    def __mul__(self, other): return _apply(_ops.multiply, (self, other), {})
    def __rmul__(self, other): return _apply(_ops.multiply, (other, self), {})
    def __truediv__(self, other): return _apply(_ops.divide, (self, other), {})
    def __rtruediv__(self, other): return _apply(_ops.divide, (other, self), {})
    def __pow__(self, other): return _apply(_ops.power, (self, other), {})
    def __rpow__(self, other): return _apply(_ops.power, (other, self), {})
    def __matmul__(self, other): return _apply(_ops.matmul, (self, other), {})
    def __rmatmul__(self, other): return _apply(_ops.matmul, (other, self), {})
    def __neg__(self): return _apply(_ops.negative, (self,), {})
    def __pos__(self): return self
    def __abs__(self): return _ops.abs(self)

    def __getitem__(self, index) -> "Tensor":
        return _ops.getitem(self, index=_plain_index(index))

    # comparisons are not differentiable: they give boolean Tensors outside the graph
    def __lt__(self, other): return Tensor._make(self.data < _raw(other), None)
    def __le__(self, other): return Tensor._make(self.data <= _raw(other), None)
    def __gt__(self, other): return Tensor._make(self.data > _raw(other), None)
    def __ge__(self, other): return Tensor._make(self.data >= _raw(other), None)
    def __eq__(self, other): return Tensor._make(self.data == _raw(other), None)  # type: ignore[override]
    def __ne__(self, other): return Tensor._make(self.data != _raw(other), None)  # type: ignore[override]

    # -- methods (the book's positional ``dim`` and NumPy's ``axis`` both work) -----------------

    def sum(self, dim=None, keepdims=False, *, axis=None):
        return _ops.sum(self, axis=_axis(dim, axis), keepdims=keepdims)

    def mean(self, dim=None, keepdims=False, *, axis=None):
        return _ops.mean(self, axis=_axis(dim, axis), keepdims=keepdims)

    def var(self, dim=None, keepdims=False, *, axis=None, ddof=0):
        return _ops.var(self, axis=_axis(dim, axis), keepdims=keepdims, ddof=ddof)

    def max(self, dim=None, keepdims=False, *, axis=None):
        return _ops.max(self, axis=_axis(dim, axis), keepdims=keepdims)

    def min(self, dim=None, keepdims=False, *, axis=None):
        return _ops.min(self, axis=_axis(dim, axis), keepdims=keepdims)

    def logsumexp(self, dim=None, keepdims=False, *, axis=None):
        return _ops.logsumexp(self, axis=_axis(dim, axis), keepdims=keepdims)

    def softmax(self, dim=-1):
        return _ops.softmax(self, axis=dim)

    def log_softmax(self, dim=-1):
        return _ops.log_softmax(self, axis=dim)

    def expand(self, dim, copies):
        """The book's expand: a new axis at ``dim`` holding ``copies`` copies of the data."""
        return _ops.expand(self, dim=dim, copies=copies)

    def transpose(self, *axes):
        """Reverse the axes (the book's ``transpose()``) or permute them as given."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _ops.transpose(self, axes=tuple(axes) if axes else None)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _ops.reshape(self, shape=tuple(int(s) for s in shape))

    def squeeze(self, dim=None):
        return _ops.squeeze(self, axis=dim)

    def unsqueeze(self, dim):
        return _ops.expand_dims(self, axis=dim)

    def broadcast_to(self, shape):
        return _ops.broadcast_to(self, shape=tuple(shape))

    def astype(self, dtype):
        return _ops.astype(self, dtype=np.dtype(dtype).name)

    def mm(self, other): return _ops.mm(self, other)
    def matmul(self, other): return _ops.matmul(self, other)
    def dot(self, other): return _ops.matmul(self, other)
    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def sqrt(self): return _ops.sqrt(self)
    def abs(self): return _ops.abs(self)
    def sin(self): return _ops.sin(self)
    def cos(self): return _ops.cos(self)
    def tanh(self): return _ops.tanh(self)
    def sigmoid(self): return _ops.sigmoid(self)
    def relu(self): return _ops.relu(self)
    def softplus(self): return _ops.softplus(self)

    def clip(self, min=None, max=None):  # noqa: A002 (NumPy's names)
        return _ops.clip(self, a_min=min, a_max=max)

    def index_select(self, indices):
        """Rows of this tensor at ``indices`` (the book's embedding lookup)."""
        return _ops.index_select(self, indices)

    def cross_entropy(self, target_indices):
        """Softmax cross-entropy against integer targets, averaged over the batch."""
        return _ops.cross_entropy(self, target_indices)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _axis(dim, axis):
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"got dim={dim!r} and axis={axis!r}; pass one of them")
    return axis if dim is None else dim


registry._bind_tensor(Tensor)
