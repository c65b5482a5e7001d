"""The one check every layer's ``forward`` gets: float32 parameters fed float64 input, or back.

NumPy promotes ``float32 @ float64`` to float64, so a float32 model fed NumPy's default float64
arrays silently computes (more slowly) in float64; PyTorch refuses such a call. fungrad keeps
NumPy's promotion but says so: :class:`~fungrad.nn.Module` wraps the ``forward`` of every
subclass with :func:`checked`, which warns once per layer type and pair of dtypes. To stay
cheap (one dictionary lookup on a call like the previous one) it looks at a layer's
parameters again only when the dtypes of its inputs change.

>>> import warnings
>>> import numpy as np, fungrad as fg
>>> lin = fg.nn.Linear(2, 1, dtype=np.float32, rng=0)
>>> forget()                                          # (earlier examples may have warned)
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     _ = lin(np.ones((1, 2)))                      # float64 input
...     _ = lin(np.ones((1, 2)))                      # the same mismatch again: no second warning
>>> [str(w.message)[:53] for w in caught]
['Linear(2, 1): float32 parameters got a float64 input;']
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from typing import Any, Callable

import numpy as np

from ..tensor import Tensor

__all__ = ["checked", "forget"]

_warned: set[tuple[str, np.dtype, np.dtype]] = set()
_HERE = os.path.dirname(os.path.abspath(__file__))


def checked(forward: Callable[..., Any]) -> Callable[..., Any]:
    """``forward`` preceded by the mixed-float check (name, signature and doc are kept).

    >>> import fungrad as fg
    >>> fg.nn.Linear.forward.__wrapped__.__name__
    'forward'
    """
    if getattr(forward, "_fungrad_dtype_checked", False):
        return forward

    @functools.wraps(forward)
    def forward_checked(self, *args: Any, **kwargs: Any) -> Any:
        # the usual call, one array of the same dtype as last time, costs one dict lookup
        if (kwargs or len(args) != 1
                or getattr(args[0], "dtype", None) is not self.__dict__.get(_SEEN, _NEVER)):
            _check(self, args, kwargs)
        return forward(self, *args, **kwargs)

    forward_checked._fungrad_dtype_checked = True  # type: ignore[attr-defined]
    return forward_checked


def forget() -> None:
    """Forget which mismatches were reported, so that each warns once more (for tests).

    >>> forget()
    """
    _warned.clear()


# instance attribute: the dtype of the single input last checked, or the tuple of float dtypes
# of the inputs of a call with several (NumPy's own dtypes are singletons, compared with `is`)
_SEEN = "_float_inputs_checked"
_NEVER = object()


def _check(module: Any, args: tuple, kwargs: dict) -> None:
    attributes = module.__dict__
    dtype = getattr(args[0], "dtype", None) if len(args) == 1 and not kwargs else None
    if isinstance(dtype, np.dtype):
        attributes[_SEEN] = dtype  # float or not: the next call like this one skips the check
        key: tuple = (dtype,) if dtype.kind == "f" else ()
    else:
        key = tuple(d for d in map(_float_dtype, (*args, *kwargs.values())) if d is not None)
        seen = attributes.get(_SEEN)
        if type(seen) is tuple and seen == key:  # never `dtype == ...`: NumPy's == casts
            return
        attributes[_SEEN] = key
    if not key:
        return
    own = _parameter_dtype(module)
    if own is None:
        return
    for got in key:
        if got != own:
            _warn(module, own, got)
            return


def _parameter_dtype(module: Any) -> np.dtype | None:
    """The float dtype of the module's own parameters (not its sub-modules'); None if mixed."""
    found = None
    attributes = module.__dict__
    for value in (*attributes.values(), *(attributes.get("_book_params") or ())):
        if isinstance(value, Tensor) and value.requires_grad:
            dtype = value.dtype
            if dtype.kind == "f":
                if found is not None and dtype != found:
                    return None
                found = dtype
    return found


def _float_dtype(value: Any) -> np.dtype | None:
    if isinstance(value, (Tensor, np.ndarray)):
        dtype = value.dtype
        return dtype if dtype.kind == "f" else None
    if isinstance(value, tuple):  # a recurrent state (h, c)
        for item in value:
            dtype = _float_dtype(item)
            if dtype is not None:
                return dtype
    return None


def _warn(module: Any, own: np.dtype, got: np.dtype) -> None:
    key = (type(module).__qualname__, own, got)
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(
        f"{module!r}: {own} parameters got a {got} input; NumPy computes this in "
        f"{np.result_type(own, got)}, and so does every layer after it. Convert the input "
        f"with .astype(np.{own}) or build the layer with dtype=np.{got}. "
        f"(Shown once per layer type and pair of dtypes.)",
        UserWarning, stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside ``fungrad/nn`` (the user's call)."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _HERE:
        frame, level = frame.f_back, level + 1
    return level
