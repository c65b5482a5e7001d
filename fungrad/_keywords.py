"""Keyword arguments users bring from other libraries: aliases, and suggestions for misspellings.

PyTorch spells NumPy's ``keepdims`` as ``keepdim`` and its ``axis`` as ``dim``; a hand slips
and types ``alhpa``. Where fungrad takes a keyword, ``keepdim`` is accepted as ``keepdims``,
and an unknown keyword raises a ``TypeError`` that names the function and the keyword meant
(Python 3.13 suggests keywords itself; 3.10-3.12 do not).

>>> from fungrad._keywords import suggest
>>> suggest("alhpa", ["alpha", "momentum", "lr"])
'alpha'
>>> suggest("dim", ["axis", "keepdims"])
'axis'
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
from typing import Any, Callable, Iterable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# the spellings of other libraries, mapped to ours (used when difflib finds nothing closer)
_OTHER_NAMES = {"dim": "axis", "keepdim": "keepdims", "axes": "axis", "learning_rate": "lr",
                "requires_grad": "autograd", "autograd": "requires_grad", "alpha": "lr"}


def suggest(name: str, allowed: Iterable[str]) -> str | None:
    """The keyword in ``allowed`` that ``name`` was probably meant to be, or None."""
    allowed = [a for a in allowed if not a.startswith("_")]
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return close[0]
    other = _OTHER_NAMES.get(name)
    return other if other in allowed else None


def unknown_keyword(where: str, names: Iterable[str], allowed: Iterable[str],
                    signature: str | None = None) -> TypeError:
    """The ``TypeError`` for unexpected keyword arguments, each with its likely meaning, and
    ``where``'s signature (or the keywords it takes)."""
    allowed = list(allowed)
    parts = []
    for name in sorted(names):
        hint = suggest(name, allowed)
        parts.append(f"{name!r}" + (f" (did you mean {hint}=?)" if hint else ""))
    plural = "s" if len(parts) > 1 else ""
    takes = (f"its signature is {where}{signature}" if signature is not None else
             f"it takes {', '.join(a for a in allowed if not a.startswith('_'))}")
    return TypeError(f"{where}: unexpected keyword argument{plural} {', '.join(parts)}; {takes}")


def keepdims_of(keepdims: bool, keepdim: bool | None, where: str = "keepdim") -> bool:
    """``keepdims``, or PyTorch's ``keepdim`` when that was given instead (both: must agree)."""
    if keepdim is None:
        return keepdims
    if keepdims and not keepdim:
        raise TypeError(f"{where}: got keepdims={keepdims!r} and keepdim={keepdim!r}; they are "
                        "the same setting, pass one")
    return bool(keepdim)


_UNEXPECTED = re.compile(r"got an unexpected keyword argument '(\w+)'")


def hints(fn: F) -> F:
    """Decorate ``fn`` so that a misspelled keyword raises a ``TypeError`` naming the right one.

    Only the error Python raises when binding the call is changed (a ``TypeError`` raised
    inside ``fn`` passes through untouched); the signature seen by ``help``, ``inspect`` and
    type checkers is ``fn``'s own.

    >>> @hints
    ... def f(x, *, keepdims=False):
    ...     return x
    >>> f(1, kepdims=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: f: unexpected keyword argument 'kepdims' (did you mean keepdims=?); it takes ...
    """
    names = list(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError as e:
            # raised while binding the call: no frame of fn in the traceback
            tb = e.__traceback__
            m = _UNEXPECTED.search(str(e))
            if m is None or tb is None or tb.tb_next is not None:
                raise
            shown = [n for n in names if n != "self"]
            where = fn.__qualname__.replace(".__init__", "")  # read late: a method of the
            raise unknown_keyword(where, [m.group(1)], shown) from None  # Tensor table is named
            # when it is attached (fungrad._tensor_methods)

    return call  # type: ignore[return-value]


def keepdim_alias(fn: F) -> F:
    """Decorate a function taking ``keepdims=`` so that PyTorch's ``keepdim=`` works too (and
    a misspelled keyword names the one meant, as :func:`hints`).

    >>> @keepdim_alias
    ... def total(x, keepdims=False):
    ...     return keepdims
    >>> total(1, keepdim=True)
    True
    """
    checked = hints(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if "keepdim" in kwargs:
            kwargs["keepdims"] = keepdims_of(kwargs.get("keepdims", False),
                                             kwargs.pop("keepdim"), fn.__name__)
        return checked(*args, **kwargs)

    return call  # type: ignore[return-value]
