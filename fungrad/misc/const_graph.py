"""HIPS autograd's ``const_graph``: record a function's computation once and replay it on new
values, here as :func:`fungrad.jit` of the function with some arguments fixed.

>>> import numpy as np
>>> from fungrad.misc.const_graph import const_graph
>>> calls = []
>>> def f(x, y):
...     calls.append(1)
...     return x * y + 1.0
>>> g = const_graph(f, 2.0)
>>> float(g(np.array(3.0))), float(g(np.array(4.0))), len(calls)  # traced once, replayed
(7.0, 9.0, 1)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["const_graph"]


def const_graph(fun: Callable, *args: Any, **kwargs: Any) -> Callable:
    """``fun`` with the leading positional ``args`` and the ``kwargs`` fixed, traced on its
    first call and replayed afterwards without running its Python code again (fg.jit), as
    ``autograd.misc.const_graph``: for functions whose operations do not depend on the values
    (no Python branching on them); a new shape or dtype traces again.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> from fungrad.misc.const_graph import const_graph
    >>> norm = const_graph(lambda v: fnp.sqrt(fnp.sum(v * v)))
    >>> float(norm(np.array([3.0, 4.0])))
    5.0
    """
    from ..jit import jit  # noqa: PLC0415 (the compiler loads on first use)

    partial = functools.partial(fun, *args, **kwargs)
    functools.update_wrapper(partial, fun)
    return jit(partial)
