"""PyTorch's spellings of fungrad functions: ``fg.tensor`` and ``fg.cat``.

They are the same operations under the names a PyTorch user types first; nothing here has
behaviour of its own.

>>> import fungrad as fg
>>> x = fg.tensor([[1.0, 2.0]], requires_grad=True)
>>> fg.cat([x, x], dim=0).shape
(2, 2)
"""

from __future__ import annotations

from typing import Any, Sequence

from ._keywords import hints
from .primitives import concatenate
from .tensor import Tensor

__all__ = ["tensor", "cat"]


@hints
def tensor(data: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new Tensor holding a copy of ``data`` (PyTorch's ``torch.tensor``).

    The dtype is NumPy's: Python floats give float64 (PyTorch's default is float32); pass
    ``dtype=np.float32`` for PyTorch's. ``requires_grad=True`` records the ops on it (the
    book's ``autograd=True``).

    >>> import numpy as np, fungrad as fg
    >>> fg.tensor([1.0, 2.0]).dtype, fg.tensor([1.0], dtype=np.float32).dtype
    (dtype('float64'), dtype('float32'))
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


@hints
def cat(tensors: Sequence[Any], dim: int = 0, *, axis: int | None = None) -> Any:
    """Join a sequence of arrays along an existing axis (PyTorch's ``torch.cat``; the same as
    ``fg.concatenate``). ``axis=`` is NumPy's name for ``dim``.

    >>> import numpy as np, fungrad as fg
    >>> fg.cat([np.ones((1, 2)), np.zeros((1, 2))], dim=1)
    array([[1., 1., 0., 0.]])
    """
    if axis is not None and axis != dim and dim != 0:
        raise TypeError(f"cat: got dim={dim!r} and axis={axis!r}; pass one of them")
    return concatenate(list(tensors), axis=dim if axis is None else axis)
