"""How fungrad.numpy presents registered ops under NumPy's names, signatures and keywords.

``ufunc(op, np.tanh)`` makes ``fungrad.numpy.tanh``: NumPy's call signature (``out=`` refused
with a clear error, ``dtype=`` casting the inputs, ``where=True`` only), registered with
:func:`fungrad.registry.implements` so that ``np.tanh(t)`` on a Tensor dispatches to it too.
``nondiff(np.argmax, ...)`` registers NumPy functions whose result carries no gradient
(indices, comparisons, shapes, creation): they run on the Tensors' data.

``data_of(x)`` is what a function computes indices, masks and permutations on (the values
without their gradient), and ``known_values(x)`` the values when they are known now (for checks
such as an index's range): under ``fg.vmap`` a Tensor's data holds every example at once, and
under ``fg.jit`` it is traced, so neither may become one ndarray.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import numpy

from ..batching.value import BatchedArray
from ..errors import DTypeError, ShapeError
from ..primitives import astype, reshape
from ..registry import Op, implements, unwrap
from ..registry import unwrap_tree as plain  # Tensors anywhere in a value -> their data
from ..tensor import Tensor

__all__ = ["ufunc", "nondiff", "no_out", "plain", "cast", "implements", "numpy_signature",
           "NoValue", "data_of", "known_values", "is_array_value", "as_numpy_result"]

NoValue = numpy._NoValue  # NumPy's "argument not given" marker (initial=, where=, keepdims=)


def no_out(name: str, out: Any) -> None:
    """Refuse NumPy's ``out=``: a differentiable result is a new Tensor, never written in place."""
    if out is not None:
        raise DTypeError(f"{name}: out= is not supported (fungrad returns a new array or Tensor "
                         f"and never writes into an existing one); write y = {name}(...) "
                         "instead")


def data_of(x: Any) -> Any:
    """The values of ``x`` without their gradient, to compute indices, masks or permutations
    on: a Tensor's data, an ndarray for a list or a number.

    A Tensor's data is not always one ndarray: under ``fg.vmap`` it holds every example at
    once (a :class:`~fungrad.batching.value.BatchedArray`), under ``fg.jit`` it is traced. Both
    look like one example (``shape``, ``ndim``, ``dtype``), and NumPy's functions and ufuncs on
    them batch or are recorded, so what is computed from ``data_of(x)`` with NumPy (``argsort``,
    ``isnan``, comparisons) stays right for every example and every call; ``numpy.asarray``
    of it would not.

    >>> import numpy as np, fungrad as fg
    >>> data_of(fg.Tensor([3.0, 1.0])), data_of([1, 2])
    (array([3., 1.]), array([1, 2]))
    """
    x = plain(x)
    return x if is_array_value(x) else numpy.asarray(x)


def is_array_value(x: Any) -> bool:
    """Whether ``x`` is an array's values as they are: an ndarray, or what stands for one
    under fg.vmap (a batched array) or fg.jit (a traced array), which must not be converted."""
    return isinstance(x, numpy.ndarray) or (
        hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__array_function__")
        and not isinstance(x, (numpy.generic, Tensor)))


def known_values(x: Any) -> numpy.ndarray | None:
    """The values of ``x`` if they are known now, else None: every example's under
    ``fg.vmap`` when they are concrete, None for a value ``fg.jit`` traces. For checks that
    read values (an index's range), which a traced value has to skip.

    >>> import numpy as np, fungrad as fg
    >>> known_values(fg.Tensor([1, 2]))
    array([1, 2])
    """
    x = data_of(x)
    while type(x) is BatchedArray:
        x = plain(x.value)
    return x if isinstance(x, numpy.ndarray) else None


def as_numpy_result(out: Any) -> Any:
    """``out`` as NumPy returns it: a 0-d ndarray as a NumPy scalar (``np.float64(2.0)``);
    Tensors and arrays of other ranks unchanged."""
    return out[()] if isinstance(out, numpy.ndarray) and not out.ndim else out


def cast(x: Any, dtype: Any) -> Any:
    """``x`` cast to ``dtype`` (differentiably for floating dtypes); ``None`` leaves it."""
    if dtype is None:
        return x
    dt = numpy.dtype(dtype)
    if isinstance(x, Tensor):
        return x if x.dtype == dt else astype(x, dtype=dt.name)
    if is_array_value(x) and not isinstance(x, numpy.ndarray):  # batched or traced values
        return x if x.dtype == dt else x.astype(dt)
    return numpy.asarray(x, dtype=dt)


def numpy_signature(np_func: Callable) -> inspect.Signature | None:
    """The signature NumPy documents for ``np_func`` (``None`` if it cannot be read)."""
    try:
        return inspect.signature(np_func)
    except (TypeError, ValueError):
        return None


def ufunc(op: Op, np_ufunc: numpy.ufunc, doc: str | None = None) -> Callable:
    """The NumPy-named function for elementwise ``op``, registered for ``np_ufunc`` on Tensors.

    Also registers the ufunc's ``outer`` method (``np.multiply.outer(a, b)``) for binary ops.
    """
    name = np_ufunc.__name__
    nin = np_ufunc.nin

    def f(*args, out=None, where=True, dtype=None, casting="same_kind", order="K",
          subok=True, signature=None):
        if len(args) != nin:
            raise TypeError(f"{name}: expected {nin} array argument{'s' * (nin > 1)}, got "
                            f"{len(args)}")
        no_out(name, out)
        if where is not True:
            raise ShapeError(f"{name}: where= other than True needs out= (the unselected "
                             "elements would be undefined); use fungrad.numpy.where(cond, "
                             f"{name}(x), other) instead")
        if dtype is not None:
            args = tuple(cast(a, dtype) for a in args)
        return op(*args)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = (doc or _first_line(op.doc)) + (
        f"\n\nNumPy's ``{name}``, differentiable (the fungrad op '{op.name}'). ``out=`` is not "
        "supported; ``dtype=`` casts the inputs first.")
    f.__module__ = "fungrad.numpy"
    implements(np_ufunc)(f)
    if nin == 2:
        implements(np_ufunc, method="outer")(functools.partial(_outer, op))
    return f


def _outer(op: Op, a: Any, b: Any, **kwargs: Any) -> Any:
    if kwargs.get("out") is not None:
        no_out(f"numpy.{op.name}.outer", kwargs["out"])
    a_shape = numpy.shape(unwrap(a))
    b_shape = numpy.shape(unwrap(b))
    return op(reshape(a, shape=a_shape + (1,) * len(b_shape)), b)


def _first_line(doc: str) -> str:
    return doc.strip().split("\n\n")[0] if doc else ""


def nondiff(*np_funcs: Callable) -> None:
    """Register NumPy functions whose results carry no gradient: they run on the data.

    Indices (argmax), comparisons, tests (allclose), shapes and array creation from a
    Tensor's shape (zeros_like) do not depend differentiably on the values, so running NumPy
    on ``t.data`` is exact, not a detached gradient.
    """
    for fn in np_funcs:
        implements(fn)(_on_data(fn))


def _on_data(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def run(*args, **kwargs):
        return fn(*plain(args), **plain(kwargs))
    return run
