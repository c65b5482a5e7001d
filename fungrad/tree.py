"""Nested dicts, lists and tuples of arrays ("pytrees"): flatten to leaves and rebuild.

>>> from fungrad.tree import flatten, unflatten
>>> leaves, spec = flatten({"w": 1.0, "layers": [2.0, (3.0, 4.0)]})
>>> leaves
[2.0, 3.0, 4.0, 1.0]
>>> unflatten(spec, [x * 10 for x in leaves])
{'layers': [20.0, (30.0, 40.0)], 'w': 10.0}
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["flatten", "unflatten", "tree_map", "ravel", "leaf_paths"]

_LEAF = None


def flatten(tree: Any) -> tuple[list, Any]:
    """Leaves of ``tree`` in a fixed order (dict keys sorted) and a spec to rebuild it.

    >>> flatten([1.0, {"b": 2.0, "a": 3.0}])[0]
    [1.0, 3.0, 2.0]
    """
    leaves: list = []
    spec = _flatten(tree, leaves)
    return leaves, spec


def _flatten(tree, leaves):
    if isinstance(tree, dict):
        keys = sorted(tree, key=_sort_key)
        return ("dict", keys, [_flatten(tree[k], leaves) for k in keys])
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # namedtuple
        return ("namedtuple", type(tree), [_flatten(v, leaves) for v in tree])
    if isinstance(tree, (list, tuple)):
        return (type(tree).__name__, None, [_flatten(v, leaves) for v in tree])
    leaves.append(tree)
    return _LEAF


def _sort_key(k):
    return (type(k).__name__, k) if not isinstance(k, str) else ("str", k)


def unflatten(spec: Any, leaves: list) -> Any:
    """Rebuild the structure described by ``spec`` with new ``leaves``.

    >>> leaves, spec = flatten((1.0, [2.0]))
    >>> unflatten(spec, [5.0, 6.0])
    (5.0, [6.0])
    """
    it = iter(leaves)
    return _unflatten(spec, it)


def _unflatten(spec, it):
    if spec is _LEAF:
        return next(it)
    kind, meta, children = spec
    values = [_unflatten(c, it) for c in children]
    if kind == "dict":
        return dict(zip(meta, values))
    if kind == "namedtuple":
        return meta(*values)
    return tuple(values) if kind == "tuple" else list(values)


def leaf_paths(spec: Any, root: str = "") -> list[str]:
    """Where each leaf of a flattened tree sits, in :func:`flatten`'s order, written as JAX's
    ``keystr`` writes it (``[1]['w']``, ``.field`` for a namedtuple), after ``root``.

    >>> leaf_paths(flatten({"w": 1.0, "layers": [2.0, (3.0, 4.0)]})[1], "params")
    ["params['layers'][0]", "params['layers'][1][0]", "params['layers'][1][1]", "params['w']"]
    """
    out: list[str] = []
    _paths(spec, root, out)
    return out


def _paths(spec, path: str, out: list) -> None:
    if spec is _LEAF:
        out.append(path)
        return
    kind, meta, children = spec
    for i, child in enumerate(children):
        key = (f"[{meta[i]!r}]" if kind == "dict" else
               f".{meta._fields[i]}" if kind == "namedtuple" else f"[{i}]")
        _paths(child, path + key, out)


def tree_map(fn: Callable, tree: Any) -> Any:
    """Apply ``fn`` to every leaf, keeping the structure.

    >>> tree_map(lambda x: x * 2, {"a": 1.0, "b": (2.0,)})
    {'a': 2.0, 'b': (4.0,)}
    """
    leaves, spec = flatten(tree)
    return unflatten(spec, [fn(x) for x in leaves])


def ravel(tree: Any) -> tuple[Any, Callable]:
    """All leaves of ``tree`` joined into one 1-D array, and the function that undoes it.

    ``unravel(flat)`` rebuilds the structure with each leaf's shape (and, for arrays, dtype).
    Both directions are differentiable: with Tensor leaves ``flat`` is a Tensor, and
    ``fg.grad(lambda v: loss(unravel(v)))(flat)`` works — the form HIPS autograd's
    ``flatten`` and JAX's ``ravel_pytree`` users know.

    >>> import numpy as np
    >>> from fungrad.tree import ravel
    >>> flat, unravel = ravel({"w": np.ones((2, 2)), "b": np.zeros(2)})
    >>> flat
    array([0., 0., 1., 1., 1., 1.])
    >>> unravel(flat * 2)["w"]
    array([[2., 2.],
           [2., 2.]])
    """
    import numpy as np  # noqa: PLC0415 (this module stays free of heavy imports)

    from .ops import concatenate, reshape  # noqa: PLC0415
    from .registry import unwrap  # noqa: PLC0415

    leaves, spec = flatten(tree)
    shapes = [tuple(np.shape(unwrap(x))) for x in leaves]
    dtypes = [np.result_type(unwrap(x)) for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    if leaves:
        flat = concatenate([reshape(x, shape=(-1,)) for x in leaves], axis=0)
    else:
        flat = np.zeros(0)
    if not any(hasattr(x, "requires_grad") for x in leaves):
        flat = np.asarray(flat, dtype=np.result_type(*dtypes) if dtypes else np.float64)

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
        return unflatten(spec, parts)

    return flat, unravel
