"""How fungrad.numpy presents registered ops under NumPy's names, signatures and keywords.

``ufunc(op, np.tanh)`` makes ``fungrad.numpy.tanh``: NumPy's call signature (``out=`` refused
with a clear error, ``dtype=`` casting the inputs, ``where=True`` only), registered with
:func:`fungrad.registry.implements` so that ``np.tanh(t)`` on a Tensor dispatches to it too.
``nondiff(np.argmax, ...)`` registers NumPy functions whose result carries no gradient
(indices, comparisons, shapes, creation): they run on the Tensors' data.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import numpy

from ..errors import DTypeError, ShapeError
from ..ops import astype, reshape
from ..registry import Op, implements, unwrap
from ..registry import unwrap_tree as plain  # Tensors anywhere in a value -> their data
from ..tensor import Tensor

__all__ = ["ufunc", "nondiff", "no_out", "plain", "cast", "implements", "numpy_signature",
           "NoValue"]

NoValue = numpy._NoValue  # NumPy's "argument not given" marker (initial=, where=, keepdims=)


def no_out(name: str, out: Any) -> None:
    """Refuse NumPy's ``out=``: a differentiable result is a new Tensor, never written in place."""
    if out is not None:
        raise DTypeError(f"{name}: out= is not supported (fungrad returns a new array or Tensor "
                         f"and never writes into an existing one); write y = {name}(...) "
                         "instead")


def cast(x: Any, dtype: Any) -> Any:
    """``x`` cast to ``dtype`` (differentiably for floating dtypes); ``None`` leaves it."""
    if dtype is None:
        return x
    dt = numpy.dtype(dtype)
    if isinstance(x, Tensor):
        return x if x.dtype == dt else astype(x, dtype=dt.name)
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
