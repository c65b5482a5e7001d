"""Tensor's operators and methods that are ops under another name, attached when fungrad imports.

As JAX attaches its array methods to its array type, :class:`Tensor` (``fungrad/tensor.py``)
holds the graph node, its conversions, NumPy's protocols and ``backward``; everything a Tensor
does by running an op — ``a + b``, ``t.sum(0)``, ``t.exp()``, PyTorch's ``t.view(-1)`` — is one
entry of the table :class:`Methods` below: the op it runs, or a small adapter where the method's
arguments are not the op's (the book's positional ``dim``, PyTorch's names). ``fungrad`` imports
this module first, which copies the table onto ``Tensor``: each entry becomes a plain function in
``Tensor``'s namespace, named ``Tensor.<name>`` in help, tracebacks and error messages, so a
method call costs what a method written in the class costs (no wrapper frame).

Type checkers read the same table: ``Tensor`` derives from :class:`Methods` for them only
(``if TYPE_CHECKING:`` in tensor.py), so every entry's signature is the one they check calls
against.

>>> import fungrad as fg
>>> fg.Tensor.exp.__qualname__, fg.Tensor([1.0, 2.0]).sum(0)
('Tensor.exp', array(3.))
"""

from __future__ import annotations

import types
from typing import Any, Callable, Iterator, Tuple, TypeVar, Union, overload

import numpy as np

from . import primitives as _ops
from ._keywords import hints, keepdims_of as _keepdims
from .errors import DTypeError, IndexRangeError, ShapeError
from .primitives.indexing import _plain_index
from .primitives.shape import normalize_axes as _normalize_axes
from .recording import is_traced
from .registry import Op, apply as _apply, unwrap
from .tensor import Tensor

__all__ = ["Methods", "Size"]

Axis = Union[int, Tuple[int, ...], None]  # an axis, several, or all of them
ArrayLike = Any  # a Tensor, an ndarray, a (nested) list or a Python number
_R = TypeVar("_R")


# -- the methods made from an op alone -------------------------------------------------------------


def _unary(op: Op, doc: str | None = None) -> Callable[[Tensor], Tensor]:
    def method(self: Tensor) -> Tensor:
        return _apply(op, (self,), {})
    method.__doc__ = doc
    return method


def _binary(op: Op, doc: str | None = None) -> Callable[[Tensor, ArrayLike], Tensor]:
    def method(self: Tensor, other: ArrayLike) -> Tensor:
        return _apply(op, (self, other), {})
    method.__doc__ = doc
    return method


def _reflected(op: Op) -> Callable[[Tensor, ArrayLike], Tensor]:
    def method(self: Tensor, other: ArrayLike) -> Tensor:  # other + self: other came first
        return _apply(op, (other, self), {})
    return method


def _compare(ufunc: np.ufunc) -> Callable[[Tensor, ArrayLike], Tensor]:
    def method(self: Tensor, other: ArrayLike) -> Tensor:
        return Tensor._make(ufunc(unwrap(self), unwrap(other)))
    return method


def _property(fget: Callable[[Tensor], _R]) -> _R:
    """A read-only attribute computed by ``fget`` (documented by its docstring). Typed as its
    value: type checkers read ``Methods`` as the attributes of a Tensor instance."""
    return property(fget)  # type: ignore[return-value]


# -- adapters: the method's arguments are not the op's -------------------------------------------


def _axis(dim, axis):
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"got dim={dim!r} and axis={axis!r}; pass one of them")
    return axis if dim is None else dim


def _reduction(op: Op, doc: str, ddof: bool = False) -> Callable[..., Tensor]:
    """A reduction taking the book's positional ``dim`` or NumPy's ``axis``, and ``keepdims``
    or PyTorch's ``keepdim`` (and ``ddof`` for the variances)."""
    if ddof:
        def method(self: Tensor, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
                   ddof: int = 0, keepdim: bool | None = None) -> Tensor:
            return op(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim),
                      ddof=ddof)
    else:
        def method(self: Tensor, dim: Axis = None, keepdims: bool = False,  # type: ignore[misc]
                   *, axis: Axis = None, keepdim: bool | None = None) -> Tensor:
            return op(self, axis=_axis(dim, axis), keepdims=_keepdims(keepdims, keepdim))
    method.__doc__ = doc
    return hints(method)


def _cumsum(self: Tensor, axis: int | None = None, dtype: Any = None, *,
            reverse: bool = False) -> Tensor:
    """Cumulative sums along ``axis`` (of the flattened data when None), as
    ``ndarray.cumsum``; ``reverse=True`` sums from the end."""
    x = self if dtype is None else self.astype(dtype)
    return _ops.cumsum(x, axis=axis, reverse=reverse)


def _cumprod(self: Tensor, axis: int | None = None, dtype: Any = None, *,
             reverse: bool = False) -> Tensor:
    """Cumulative products along ``axis`` (of the flattened data when None), as
    ``ndarray.cumprod``; ``reverse=True`` multiplies from the end."""
    x = self if dtype is None else self.astype(dtype)
    return _ops.cumprod(x, axis=axis, reverse=reverse)


def _round(self: Tensor, decimals: int = 0) -> Tensor:
    """Round to ``decimals`` (half to even, as NumPy); the gradient is zero."""
    return _ops.round(self, decimals=decimals)


def _round_builtin(self: Tensor, ndigits: int | None = None) -> Tensor:
    return _ops.round(self, decimals=ndigits or 0)


def _softmax(self: Tensor, dim: int = -1) -> Tensor:
    """Softmax along ``dim``."""
    return _ops.softmax(self, axis=dim)


def _log_softmax(self: Tensor, dim: int = -1) -> Tensor:
    """Log-softmax along ``dim``."""
    return _ops.log_softmax(self, axis=dim)


def _index_array(x):
    """NumPy's index scalar as a 0-d array (a traced or batched array stays one)."""
    return x if is_traced(x) else np.asarray(x)


def _argmax(self: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Indices of the maxima (an integer Tensor outside the graph)."""
    return Tensor._make(_index_array(self._data.argmax(axis=_axis(dim, axis))))


def _argmin(self: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Indices of the minima (an integer Tensor outside the graph)."""
    return Tensor._make(_index_array(self._data.argmin(axis=_axis(dim, axis))))


def _expand(self: Tensor, dim: int, copies: int) -> Tensor:
    """The book's expand: a new axis at ``dim`` holding ``copies`` copies of the data."""
    return _ops.expand(self, dim=dim, copies=copies)


def _transpose(self: Tensor, *axes: int) -> Tensor:
    """Reverse the axes (the book's ``transpose()``) or permute them as given."""
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    return _ops.transpose(self, axes=tuple(axes) if axes else None)


def _reshape(self: Tensor, *shape: int) -> Tensor:
    """The same data in a new shape (``t.reshape(2, 3)`` or ``t.reshape((2, 3))``)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return _ops.reshape(self, shape=_shape_arg("reshape", shape))


def _ravel(self: Tensor, order: str = "C") -> Tensor:
    """The data as one axis, read in C (row-major) or F (column-major) order."""
    if order not in ("C", "A", "K", "F"):
        raise ValueError(f"ravel: order must be 'C', 'F', 'A' or 'K', got {order!r}")
    return _ops.reshape(_ops.transpose(self) if order == "F" else self, shape=(-1,))


def _flatten(self: Tensor, order: str = "C") -> Tensor:
    """A copy of the data as one axis, read in C or F order."""
    return _ops.copy(self.ravel(order))


def _swapaxes(self: Tensor, axis1: int, axis2: int) -> Tensor:
    """The axes ``axis1`` and ``axis2`` exchanged, as ``ndarray.swapaxes``."""
    axes = list(range(self.ndim))
    try:
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    except (IndexError, TypeError):
        raise ShapeError(f"swapaxes: axes {axis1} and {axis2} are out of range for shape "
                         f"{self.shape}") from None
    return _ops.transpose(self, axes=tuple(axes))


def _take(self: Tensor, indices: ArrayLike, axis: int | None = None) -> Tensor:
    """Elements at ``indices`` along ``axis`` (of the flattened data when None), as
    ``ndarray.take``; repeated indices accumulate their gradients."""
    idx = np.asarray(_values(indices))
    if axis is None:
        return _ops.getitem(_ops.reshape(self, shape=(-1,)), index=idx)
    ax = _normalize_axes("take", axis, self.ndim)[0]
    return _ops.getitem(self, index=(slice(None),) * ax + (idx,))


def _repeat(self: Tensor, repeats: ArrayLike, axis: int | None = None) -> Tensor:
    """Each element repeated ``repeats`` times along ``axis`` (flattened when None), as
    ``ndarray.repeat``."""
    x = _ops.reshape(self, shape=(-1,)) if axis is None else self
    ax = 0 if axis is None else _normalize_axes("repeat", axis, self.ndim)[0]
    picks = np.repeat(np.arange(x.shape[ax]), _values(repeats))
    return _ops.getitem(x, index=(slice(None),) * ax + (picks,))


def _diagonal(self: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal of the plane ``(axis1, axis2)``, as ``ndarray.diagonal``."""
    return _ops.diagonal(self, offset=offset, axis1=axis1, axis2=axis2)


def _trace(self: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of the diagonal, as ``ndarray.trace``."""
    return _ops.sum(self.diagonal(offset, axis1, axis2), axis=-1)


def _argsort(self: Tensor, axis: int = -1) -> Tensor:
    """The indices that sort the data along ``axis`` (an integer Tensor outside the graph)."""
    return Tensor._make(np.argsort(self._data, axis=axis))


def _squeeze(self: Tensor, dim: Axis = None) -> Tensor:
    """Drop axes of length one (all of them, or ``dim``)."""
    return _ops.squeeze(self, axis=dim)


def _unsqueeze(self: Tensor, dim: int | Tuple[int, ...]) -> Tensor:
    """A new axis of length one at ``dim``."""
    return _ops.expand_dims(self, axis=dim)


def _broadcast_to(self: Tensor, shape: Tuple[int, ...]) -> Tensor:
    """Broadcast to ``shape``, as ``numpy.broadcast_to``."""
    return _ops.broadcast_to(self, shape=_shape_arg("broadcast_to", shape))


def _astype(self: Tensor, dtype: Any) -> Tensor:
    """Cast to ``dtype``; casting to an integer or boolean dtype cuts the gradient."""
    return _ops.astype(self, dtype=np.dtype(dtype).name)


def _dot(self: Tensor, other: ArrayLike) -> Tensor:
    """The dot product as ``ndarray.dot``: ``self @ other`` up to two dimensions; beyond,
    a sum over the last axis of ``self`` and the second-to-last of ``other``."""
    a_nd, b_nd = self.ndim, np.ndim(other)
    if a_nd == 0 or b_nd == 0:
        return _ops.multiply(self, other)
    if a_nd <= 2 and b_nd <= 2:
        return _ops.matmul(self, other)
    a = "abcdefgh"[:a_nd - 1] + "z"
    b = "ijklmnop"[:max(b_nd - 2, 0)] + "z" + ("q" if b_nd >= 2 else "")
    return _ops.einsum([self, other], subscripts=f"{a},{b}->{a[:-1]}{b.replace('z', '')}")


def _clip(self: Tensor, min: ArrayLike = None, max: ArrayLike = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; the gradient is zero where clipped."""  # (NumPy's names)
    return _ops.clip(self, a_min=min, a_max=max)


def _index_select(self: Tensor, indices: ArrayLike) -> Tensor:
    """Rows of this tensor at ``indices`` (the book's embedding lookup)."""
    return _apply(_ops.index_select, (self, indices), {})


def _cross_entropy(self: Tensor, target_indices: ArrayLike) -> Tensor:
    """Softmax cross-entropy against integer targets, averaged over the batch."""
    return _apply(_ops.cross_entropy, (self, target_indices), {})


def _getitem(self: Tensor, index: Any) -> Tensor:
    return _apply(_ops.getitem, (self,), {"index": _plain_index(index)})


def _pos(self: Tensor) -> Tensor:
    return self


def _mT(self: Tensor) -> Tensor:
    """The matrix transpose of a stack of matrices (last two axes swapped)."""
    nd = self.ndim
    if nd < 2:
        raise ShapeError(f"mT: needs at least 2 dimensions, got shape {self.shape}")
    return _ops.transpose(self, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _size(self: Tensor) -> Size:
    """The number of elements (NumPy's ``t.size``); called, the shape or one of its
    lengths (PyTorch's ``t.size()``, ``t.size(0)``).

    >>> from fungrad import Tensor
    >>> t = Tensor([[1.0, 2.0, 3.0]])
    >>> t.size, t.size(), t.size(1), t.size(-1)
    (3, (1, 3), 3, 3)
    """
    return Size(self._data.size, self._data.shape)


def _shape(self: Tensor) -> tuple:
    """The shape of the data."""
    return self._data.shape


def _dtype(self: Tensor) -> np.dtype:
    """The dtype of the data."""
    return self._data.dtype


def _ndim(self: Tensor) -> int:
    """The number of axes."""
    return self._data.ndim


def _len(self: Tensor) -> int:
    return len(self._data)


def _iter(self: Tensor) -> Iterator[Tensor]:
    for i in range(len(self._data)):
        yield self[i]


def _repr(self: Tensor) -> str:
    return repr(self._data)  # as the book prints it


def _str(self: Tensor) -> str:
    return str(self._data)


# -- PyTorch's names for the same things, so that ported code runs -------------------------------


def _pow(self: Tensor, exponent: ArrayLike) -> Tensor:
    """``self ** exponent`` (PyTorch's name).

    >>> from fungrad import Tensor
    >>> Tensor([2.0, 3.0]).pow(2)
    array([4., 9.])
    """
    return _apply(_ops.power, (self, exponent), {})


def _float(self: Tensor) -> Tensor:
    """Cast to float32, as PyTorch's ``.float()`` (fungrad's default is NumPy's float64).

    >>> from fungrad import Tensor
    >>> Tensor([1, 2]).float().dtype
    dtype('float32')
    """
    return _ops.astype(self, dtype="float32")


def _double(self: Tensor) -> Tensor:
    """Cast to float64, as PyTorch's ``.double()``.

    >>> from fungrad import Tensor
    >>> Tensor([1, 2]).double().dtype
    dtype('float64')
    """
    return _ops.astype(self, dtype="float64")


def _view(self: Tensor, *shape: int) -> Tensor:
    """The data in a new shape, as PyTorch's ``.view`` (here the same as ``reshape``; a
    view of the data wherever NumPy can make one).

    >>> from fungrad import Tensor
    >>> Tensor([[1.0, 2.0], [3.0, 4.0]]).view(-1).shape
    (4,)
    """
    return self.reshape(*shape)


def _dim(self: Tensor) -> int:
    """The number of axes (PyTorch's name for ``ndim``).

    >>> from fungrad import Tensor
    >>> Tensor([[1.0, 2.0]]).dim()
    2
    """
    return self._data.ndim


def _numel(self: Tensor) -> int:
    """The number of elements (PyTorch's name for ``size``).

    >>> from fungrad import Tensor
    >>> Tensor([[1.0, 2.0]]).numel()
    2
    """
    return int(self._data.size)


def _clamp(self: Tensor, min: ArrayLike = None, max: ArrayLike = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max], as PyTorch's ``.clamp`` (``clip``'s other name).

    >>> from fungrad import Tensor
    >>> Tensor([-2.0, 0.5, 3.0]).clamp(min=0.0, max=1.0)
    array([0. , 0.5, 1. ])
    """
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both")
    return _ops.clip(self, a_min=min, a_max=max)


def _t(self: Tensor) -> Tensor:
    """The transpose of a matrix (a tensor of at most two axes), as PyTorch's ``.t()``.

    >>> from fungrad import Tensor
    >>> Tensor([[1.0, 2.0, 3.0]]).t().shape
    (3, 1)
    """
    if self._data.ndim > 2:
        raise ShapeError(f"t: expects a tensor of at most 2 axes, got shape {self.shape}; "
                         "use transpose(axes) or mT for stacks of matrices")
    return _ops.transpose(self)


def _zero_(self: Tensor) -> Tensor:
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


def _requires_grad_(self: Tensor, requires_grad: bool = True) -> Tensor:
    """Turn recording on (or off) for this tensor in place and return it (PyTorch's).

    >>> from fungrad import Tensor
    >>> Tensor([1.0]).requires_grad_().requires_grad
    True
    """
    self.requires_grad = bool(requires_grad)
    return self


def _logical(ufunc_reduce: Callable, name: str) -> Callable[..., Tensor]:
    def method(self: Tensor, dim: Axis = None, keepdims: bool = False, *, axis: Axis = None,
               keepdim: bool | None = None) -> Tensor:
        return Tensor._make(np.asarray(ufunc_reduce(
            unwrap(self) != 0, axis=_axis(dim, axis),
            keepdims=_keepdims(keepdims, keepdim, name))))
    return hints(method)


_all = _logical(np.logical_and.reduce, "all")
_all.__doc__ = """Whether every element (over ``dim``, or all) is nonzero: a boolean Tensor outside
    the graph, as a comparison's (PyTorch's ``all``, NumPy's ``ndarray.all``).

    >>> from fungrad import Tensor
    >>> t = Tensor([[1.0, 0.0], [2.0, 3.0]])
    >>> t.all(), t.all(dim=1, keepdim=True).shape, (t >= 0).all()
    (array(False), (2, 1), array(True))
    """
_any = _logical(np.logical_or.reduce, "any")
_any.__doc__ = """Whether some element (over ``dim``, or all) is nonzero: a boolean Tensor outside
    the graph, as a comparison's (PyTorch's ``any``, NumPy's ``ndarray.any``).

    >>> from fungrad import Tensor
    >>> Tensor([[0.0, 0.0], [2.0, 0.0]]).any(1)
    array([False,  True])
    """


def _clone(self: Tensor) -> Tensor:
    """A copy with its own data, still connected to the graph (PyTorch's ``clone``; the same
    as :meth:`copy`): the gradient flows back through it.

    >>> import fungrad as fg
    >>> fg.grad(lambda x: (x.clone() * x).sum())(fg.Tensor([1.0, 2.0]))
    array([2., 4.])
    """
    return _ops.copy(self)


def _tolist(self: Tensor) -> Any:
    """The data as nested Python lists of Python numbers (``ndarray.tolist``), for printing
    and logging; refused, as ``item()`` is, on a value being differentiated.

    >>> from fungrad import Tensor
    >>> Tensor([[1.0, 2.0]]).tolist()
    [[1.0, 2.0]]
    """
    self._refuse_traced_scalar("t.tolist()")
    return self._values().tolist()


def _permute(self: Tensor, *dims: int) -> Tensor:
    """The axes in the order given, every one once (PyTorch's ``permute``:
    ``t.permute(2, 0, 1)`` or ``t.permute((2, 0, 1))``).

    >>> from fungrad import Tensor
    >>> Tensor([[[1.0, 2.0, 3.0]]]).permute(2, 0, 1).shape
    (3, 1, 1)
    """
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    n = self._data.ndim
    if sorted(d % n if isinstance(d, (int, np.integer)) and -n <= d < n else -1
              for d in dims) != list(range(n)):
        raise ShapeError(f"permute: expects each of the {n} axes of a tensor of "
                         f"shape {self.shape} once, got dims {dims}")
    return _ops.transpose(self, axes=tuple(int(d) for d in dims))


def _masked_fill(self: Tensor, mask: ArrayLike, value: ArrayLike) -> Tensor:
    """``value`` where ``mask`` is true, this tensor's elements elsewhere (PyTorch's
    ``masked_fill``, not in place); the gradient flows to the elements kept.

    >>> from fungrad import Tensor
    >>> t = Tensor([1.0, -2.0, 3.0])
    >>> t.masked_fill(t < 0, 0.0)
    array([1., 0., 3.])
    """
    return _ops.where(mask, value, self)


def _contiguous(self: Tensor) -> Tensor:
    """This tensor (PyTorch's ``contiguous``: fungrad's kernels take any layout).

    >>> from fungrad import Tensor
    >>> t = Tensor([1.0]); t.contiguous() is t
    True
    """
    return self


def _cpu(self: Tensor) -> Tensor:
    """This tensor (PyTorch's ``cpu``: fungrad's data is always NumPy's, in memory).

    >>> from fungrad import Tensor
    >>> t = Tensor([1.0]); t.cpu() is t
    True
    """
    return self


def _to(self: Tensor, *args: Any, dtype: Any = None, **kwargs: Any) -> Tensor:
    """PyTorch's ``to``: a dtype (``t.to(np.float32)``, ``t.to("float32")``) casts as
    :meth:`astype`; a device other than ``"cpu"`` is refused; ``t.to("cpu")`` is ``t``
    (a copy with ``copy=True``).

    >>> import numpy as np
    >>> from fungrad import Tensor
    >>> Tensor([1.0]).to(np.float32).dtype, Tensor([1.0]).to("cpu").dtype
    (dtype('float32'), dtype('float64'))
    """
    unknown = set(kwargs) - {"device", "non_blocking", "copy"}
    if unknown:
        raise TypeError(f"to: unexpected keyword argument(s) {sorted(unknown)}; it takes a dtype, "
                        "a device ('cpu') or dtype=")
    for a in (*args, kwargs.get("device")):
        if a is None:
            continue
        if isinstance(a, str) and a.split(":")[0] == "cpu":
            continue
        if isinstance(a, Tensor):
            dtype = dtype if dtype is not None else a.dtype
            continue
        try:
            d = np.dtype(a)
        except TypeError:
            raise TypeError(f"to: expects a dtype or the device 'cpu', got {a!r}; fungrad runs "
                            "on the CPU only") from None
        if dtype is not None and np.dtype(dtype) != d:
            raise TypeError(f"to: two dtypes given, {np.dtype(dtype)} and {d}")
        dtype = d
    if dtype is None or np.dtype(dtype) == self.dtype:
        return _ops.copy(self) if kwargs.get("copy") else self
    return _ops.astype(self, dtype=np.dtype(dtype).name)


# -- the table ---------------------------------------------------------------------------------


class Methods:
    """Every Tensor operator and method that runs an op: ``name = what it runs``. Copied onto
    :class:`~fungrad.tensor.Tensor` when fungrad is imported (see the module's docstring)."""

    # arithmetic: a + b runs fg.add(a, b); 2 - t runs fg.subtract(2, t)
    __add__, __radd__ = _binary(_ops.add), _reflected(_ops.add)
    __sub__, __rsub__ = _binary(_ops.subtract), _reflected(_ops.subtract)
    __mul__, __rmul__ = _binary(_ops.multiply), _reflected(_ops.multiply)
    __truediv__, __rtruediv__ = _binary(_ops.divide), _reflected(_ops.divide)
    __pow__, __rpow__ = _binary(_ops.power), _reflected(_ops.power)
    __matmul__, __rmatmul__ = _binary(_ops.matmul), _reflected(_ops.matmul)
    __mod__, __rmod__ = _binary(_ops.mod), _reflected(_ops.mod)
    __neg__ = _unary(_ops.negative)
    __pos__ = _pos
    __abs__ = _unary(_ops.abs)
    __round__ = _round_builtin
    __getitem__ = _getitem

    # comparisons are not differentiable: they give boolean Tensors outside the graph
    __lt__, __le__ = _compare(np.less), _compare(np.less_equal)
    __gt__, __ge__ = _compare(np.greater), _compare(np.greater_equal)
    __eq__ = _compare(np.equal)  # type: ignore[assignment]
    __ne__ = _compare(np.not_equal)  # type: ignore[assignment]

    # the data's own attributes, as an ndarray's
    shape, dtype, ndim = _property(_shape), _property(_dtype), _property(_ndim)
    __len__, __iter__, __repr__, __str__ = _len, _iter, _repr, _str

    # attributes computed by an op
    T = _property(_unary(_ops.transpose, "The transpose (axes reversed), as ``ndarray.T``."))
    mT = _property(_mT)
    real = _property(_unary(_ops.real, "The real part (for real data, the data itself), as "
                                       "``fg.real``."))
    imag = _property(_unary(_ops.imag, "The imaginary part (for real data, zeros), as "
                                       "``fg.imag``."))
    size = _property(_size)

    # reductions (the book's positional ``dim`` and NumPy's ``axis`` both work)
    sum = _reduction(_ops.sum, "Sum over ``dim`` (all axes when None), as ``fg.sum``.")
    mean = _reduction(_ops.mean, "Mean over ``dim`` (all axes when None), as ``fg.mean``.")
    var = _reduction(_ops.var, "Variance over ``dim`` with ``ddof``, as ``fg.var``.", ddof=True)
    prod = _reduction(_ops.prod, "Product over ``dim`` (all axes when None), as ``fg.prod``; "
                                 "exact where zeros are.")
    std = _reduction(_ops.std, "Standard deviation over ``dim`` with ``ddof``, as ``fg.std``.",
                     ddof=True)
    cumsum = _cumsum
    cumprod = _cumprod
    round = _round
    conj = _unary(_ops.conj, "The complex conjugate (for real data, the data itself), as "
                             "``fg.conj``.")
    conjugate = conj
    max = _reduction(_ops.max, "Maximum over ``dim``; tied maxima share the gradient.")
    min = _reduction(_ops.min, "Minimum over ``dim``; tied minima share the gradient.")
    logsumexp = _reduction(_ops.logsumexp,
                           "log(sum(exp(self))) over ``dim``, stable for large values.")
    softmax = _softmax
    log_softmax = _log_softmax
    argmax = _argmax
    argmin = _argmin

    # shapes
    expand = _expand
    transpose = _transpose
    reshape = _reshape
    ravel = _ravel
    flatten = _flatten
    swapaxes = _swapaxes
    take = _take
    repeat = _repeat
    diagonal = _diagonal
    trace = _trace
    argsort = _argsort
    squeeze = _squeeze
    unsqueeze = _unsqueeze
    broadcast_to = _broadcast_to
    astype = _astype
    copy = _unary(_ops.copy, "A copy with its own data, still connected to the graph.")

    # products
    mm = _binary(_ops.mm, "The book's 2-D matrix product.")
    matmul = _binary(_ops.matmul, "Matrix product with NumPy's rules (``self @ other``).")
    dot = _dot

    # elementwise
    exp = _unary(_ops.exp, "e ** self, elementwise.")
    log = _unary(_ops.log, "The natural logarithm, elementwise.")
    sqrt = _unary(_ops.sqrt, "The square root, elementwise.")
    abs = _unary(_ops.abs, "The absolute value, elementwise.")
    sin = _unary(_ops.sin, "The sine, elementwise.")
    cos = _unary(_ops.cos, "The cosine, elementwise.")
    tanh = _unary(_ops.tanh, "The hyperbolic tangent, elementwise.")
    sigmoid = _unary(_ops.sigmoid, "1 / (1 + exp(-self)), elementwise and stable.")
    relu = _unary(_ops.relu, "max(self, 0), elementwise.")
    floor = _unary(_ops.floor, "The largest integer not above each element; the gradient is "
                               "zero.")
    ceil = _unary(_ops.ceil, "The smallest integer not below each element; the gradient is "
                             "zero.")
    trunc = _unary(_ops.trunc, "Each element rounded toward zero; the gradient is zero.")
    square = _unary(_ops.square, "self * self, elementwise.")
    tan = _unary(_ops.tan, "The tangent, elementwise.")
    sinh = _unary(_ops.sinh, "The hyperbolic sine, elementwise.")
    cosh = _unary(_ops.cosh, "The hyperbolic cosine, elementwise.")
    log1p = _unary(_ops.log1p, "log(1 + self), accurate for small values.")
    expm1 = _unary(_ops.expm1, "exp(self) - 1, accurate for small values.")
    log2 = _unary(_ops.log2, "The base-2 logarithm, elementwise.")
    log10 = _unary(_ops.log10, "The base-10 logarithm, elementwise.")
    reciprocal = _unary(_ops.reciprocal, "1 / self, elementwise.")
    softplus = _unary(_ops.softplus, "log(1 + exp(self)), elementwise and stable.")
    clip = _clip

    # the book's network ops
    index_select = _index_select
    cross_entropy = _cross_entropy

    # PyTorch's names
    pow = _pow
    float = _float
    double = _double
    view = _view
    dim = _dim
    numel = _numel
    clamp = _clamp
    t = _t
    zero_ = _zero_
    requires_grad_ = _requires_grad_
    clone = _clone
    tolist = _tolist
    permute = _permute
    all = _all
    any = _any
    masked_fill = _masked_fill
    contiguous = _contiguous
    cpu = _cpu
    to = _to


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


def _shape_arg(op: str, shape) -> tuple:
    try:
        return tuple(int(s) if isinstance(s, (int, np.integer)) else _bad_dim(op, s)
                     for s in shape)
    except TypeError:
        raise DTypeError(f"{op}: the shape must be ints or a tuple of ints, got "
                         f"{shape!r}") from None


def _bad_dim(op: str, s):
    raise DTypeError(f"{op}: the shape must be made of ints, got {s!r} ({type(s).__name__})")


def _values(x):
    """A Tensor's values, for indices or counts that decide the program (while fg.jit traces,
    a closed-over Tensor's are guarded constants: a change retraces); anything else as it is."""
    return x._values() if isinstance(x, Tensor) else x


def _install(cls: type) -> None:
    """Copy the table onto ``cls``, each function named as a method of ``cls`` (in ``help``,
    in tracebacks, and in Python's own argument errors: ``Tensor.exp() takes 1 positional
    argument but 2 were given``)."""
    for name, value in vars(Methods).items():
        if not (isinstance(value, (types.FunctionType, property))):
            continue  # the class's own records (__module__, __dict__...; __hash__ is None in
            # Methods, which defines __eq__: Tensor keeps its own)
        fn = value.fget if isinstance(value, property) else value
        while fn is not None:  # a function, and the one hints() wraps
            if fn.__qualname__.startswith(cls.__name__ + "."):
                break  # an alias (conjugate = conj): named already
            fn.__name__, fn.__qualname__ = name, f"{cls.__name__}.{name}"
            fn.__module__ = cls.__module__
            fn.__annotations__.pop("self", None)  # (for type checkers: self is the Tensor)
            names: dict[str, Any] = {"co_name": name}
            if hasattr(fn.__code__, "co_qualname"):  # Python 3.11+
                names["co_qualname"] = fn.__qualname__
            fn.__code__ = fn.__code__.replace(**names)
            fn = getattr(fn, "__wrapped__", None)
        setattr(cls, name, value)


_install(Tensor)
