"""A pytree as one flat vector, and back (HIPS autograd's ``autograd.misc.flatten``, JAX's
``ravel_pytree``).

>>> import numpy as np
>>> from fungrad.misc.flatten import flatten
>>> flat, unflatten = flatten({"w": np.ones(2), "b": 0.5})
>>> flat, unflatten(flat)["w"]
(array([0.5, 1. , 1. ]), array([1., 1.]))
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..primitives import concatenate, reshape
from ..registry import unwrap
from ..tree import flatten as _leaves_and_spec
from ..tree import unflatten as _rebuild

__all__ = ["ravel", "flatten", "flatten_func"]


def ravel(tree: Any) -> tuple[Any, Callable]:
    """All leaves of ``tree`` joined into one 1-D array, and the function that undoes it.

    ``unravel(flat)`` rebuilds the structure with each leaf's shape (and, for arrays, dtype).
    Both directions are differentiable: with Tensor leaves ``flat`` is a Tensor, and
    ``fg.grad(lambda v: loss(unravel(v)))(flat)`` works — the form HIPS autograd's
    ``flatten`` and JAX's ``ravel_pytree`` users know.

    >>> import numpy as np
    >>> flat, unravel = ravel({"w": np.ones((2, 2)), "b": np.zeros(2)})
    >>> flat
    array([0., 0., 1., 1., 1., 1.])
    >>> unravel(flat * 2)["w"]
    array([[2., 2.],
           [2., 2.]])
    """
    leaves, spec = _leaves_and_spec(tree)
    shapes = [tuple(np.shape(unwrap(x))) for x in leaves]
    dtypes = [np.result_type(unwrap(x)) for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    if leaves:
        flat = concatenate([reshape(x, shape=(-1,)) for x in leaves], axis=0)
    else:
        flat = np.zeros(0)
    if isinstance(flat, np.ndarray):  # (not a Tensor, nor a jit's or vmap's array stand-in)
        flat = flat.astype(np.result_type(*dtypes) if dtypes else np.float64, copy=False)

    def unravel(vector: Any) -> Any:
        n = int(np.size(unwrap(vector)))
        if n != sum(sizes):
            raise ValueError(f"unravel: expected a vector of {sum(sizes)} numbers, got {n}")
        parts, start = [], 0
        for shape, size, dtype in zip(shapes, sizes, dtypes):
            part = reshape(vector[start:start + size], shape=shape)
            if isinstance(part, np.ndarray) and part.dtype != dtype:
                part = part.astype(dtype)
            parts.append(part)
            start += size
        return _rebuild(spec, parts)

    return flat, unravel


flatten = ravel  # autograd's name: ``flat, unflatten = flatten(value)``


def flatten_func(func: Callable, example: Any) -> tuple[Callable, Callable, Any]:
    """``func`` of a pytree as a function of one flat vector (autograd's ``flatten_func``):
    returns ``(flat_func, unflatten, flat_example)`` with
    ``flat_func(v, *args) == func(unflatten(v), *args)``.

    >>> import numpy as np, fungrad as fg
    >>> f = lambda p: fg.sum(p["w"] ** 2) + p["b"]
    >>> flat_f, unflatten, x = flatten_func(f, {"w": np.array([1.0, 2.0]), "b": 0.5})
    >>> x, float(flat_f(x)), fg.grad(flat_f)(x)
    (array([0.5, 1. , 2. ]), 5.5, array([1., 2., 4.]))
    """
    flat, unflatten = ravel(example)

    def flat_func(vector: Any, *args: Any, **kwargs: Any) -> Any:
        return func(unflatten(vector), *args, **kwargs)

    return flat_func, unflatten, flat
