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

__all__ = ["flatten", "unflatten", "tree_map"]

_LEAF = None


def flatten(tree: Any) -> tuple[list, Any]:
    """Leaves of ``tree`` in a fixed order (dict keys sorted) and a spec to rebuild it."""
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
    """Rebuild the structure described by ``spec`` with new ``leaves``."""
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


def tree_map(fn: Callable, tree: Any) -> Any:
    """Apply ``fn`` to every leaf, keeping the structure."""
    leaves, spec = flatten(tree)
    return unflatten(spec, [fn(x) for x in leaves])
