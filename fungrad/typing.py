"""Types for annotating code that uses fungrad, and that fungrad's own signatures use.

- :data:`Array`: what a differentiable function returns, a Tensor (any Tensor argument) or an
  ndarray (ndarrays and numbers only).
- :data:`ArrayLike`: what such a function takes: a Tensor, an ndarray, a (nested) list or a
  Python number.
- :class:`JittedFunction`: what ``fg.jit(f)`` returns: callable like ``f`` (same parameters,
  same result type), with ``cache_info()``, ``cache_clear()``, ``timings()`` and ``lower()``.
- :class:`UnaryFunction`, :class:`BinaryFunction`: ``fungrad.numpy``'s elementwise functions
  (``fnp.tanh``, ``fnp.add``...): a Tensor in gives a Tensor, ndarrays give an ndarray.
- :class:`ArrayFunction`: the same for a function of one array and NumPy's other arguments
  (``fnp.sum(a, axis=...)``); :func:`array_function` types a function so.

Nothing here exists at run time beyond these names; they are for type checkers and readers.

>>> import numpy as np, fungrad as fg
>>> from fungrad.typing import Array
>>> def loss(w: Array, x: np.ndarray) -> Array:
...     return fg.sum(fg.tanh(x @ w))
>>> float(loss(np.zeros(2), np.ones((3, 2))))
0.0
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING, Any, Callable, Concatenate, Generic, ParamSpec, Protocol, TypeVar, Union,
    overload,
)

import numpy as np

if TYPE_CHECKING:  # (annotations only: importing these here would import fg.jit)
    from .jit.api import CacheInfo, Timing
    from .jit.program import Program
    from .tensor import Tensor

__all__ = ["Array", "ArrayLike", "JittedFunction", "UnaryFunction", "BinaryFunction",
           "ArrayFunction", "array_function", "unary", "binary"]

P = ParamSpec("P")
R = TypeVar("R", covariant=True)

#: A Tensor (when any argument was a Tensor) or an ndarray.
Array = Union["Tensor", np.ndarray]
#: A Tensor, an ndarray, a (nested) list or tuple of numbers, or a Python number.
ArrayLike = Any


class JittedFunction(Protocol, Generic[P, R]):
    """What ``fg.jit(f)`` returns: call it as ``f``; inspect its program cache."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def cache_info(self) -> CacheInfo:
        """Hits, misses (traces), maxsize and currsize, as ``functools.lru_cache``'s."""
        ...

    def cache_clear(self) -> None:
        """Forget every traced program."""
        ...

    def timings(self) -> list[Timing]:
        """How long each program took to trace, compile and run the first time."""
        ...

    def lower(self, *args: Any, **kwargs: Any) -> Program:
        """The program ``f`` traces to for these arguments (for inspection)."""
        ...


class UnaryFunction(Protocol):
    """An elementwise function of one array with NumPy's keywords (``fnp.tanh``)."""

    @overload
    def __call__(self, x: Tensor, /, *, out: None = None, where: bool = True,
                 dtype: Any = None, casting: str = "same_kind", order: str = "K",
                 subok: bool = True, signature: Any = None) -> Tensor: ...

    @overload
    def __call__(self, x: ArrayLike, /, *, out: None = None, where: bool = True,
                 dtype: Any = None, casting: str = "same_kind", order: str = "K",
                 subok: bool = True, signature: Any = None) -> np.ndarray: ...


class BinaryFunction(Protocol):
    """An elementwise function of two arrays with NumPy's keywords (``fnp.add``)."""

    @overload
    def __call__(self, x1: Tensor, x2: ArrayLike, /, *, out: None = None, where: bool = True,
                 dtype: Any = None, casting: str = "same_kind", order: str = "K",
                 subok: bool = True, signature: Any = None) -> Tensor: ...

    @overload
    def __call__(self, x1: ArrayLike, x2: Tensor, /, *, out: None = None, where: bool = True,
                 dtype: Any = None, casting: str = "same_kind", order: str = "K",
                 subok: bool = True, signature: Any = None) -> Tensor: ...

    @overload
    def __call__(self, x1: ArrayLike, x2: ArrayLike, /, *, out: None = None,
                 where: bool = True, dtype: Any = None, casting: str = "same_kind",
                 order: str = "K", subok: bool = True,
                 signature: Any = None) -> np.ndarray: ...


class ArrayFunction(Protocol, Generic[P]):
    """A function of one array first (then NumPy's other arguments): a Tensor in gives a
    Tensor, an ndarray (or list, or number) gives an ndarray (``fnp.sum``, ``fnp.reshape``)."""

    @overload
    def __call__(self, a: Tensor, /, *args: P.args, **kwargs: P.kwargs) -> Tensor: ...

    @overload
    def __call__(self, a: ArrayLike, /, *args: P.args, **kwargs: P.kwargs) -> np.ndarray: ...


def array_function(fn: Callable[Concatenate[Any, P], Any]) -> ArrayFunction[P]:
    """Type ``fn``, a function of one array first, as an :class:`ArrayFunction`; at run time
    ``fn`` itself is returned unchanged.

    >>> from fungrad.typing import array_function
    >>> @array_function
    ... def double(a, scale=2.0):
    ...     return a * scale
    >>> double(3.0)
    6.0
    """
    return fn


def unary(fn: Callable[..., Any]) -> UnaryFunction:
    """Type ``fn`` as a :class:`UnaryFunction` (run time: ``fn`` unchanged)."""
    return fn


def binary(fn: Callable[..., Any]) -> BinaryFunction:
    """Type ``fn`` as a :class:`BinaryFunction` (run time: ``fn`` unchanged)."""
    return fn
