"""Nested dicts, lists and tuples of arrays ("pytrees"): flatten to leaves and rebuild.

Pure Python: this module imports nothing (it sits below the ops). Joining a tree's leaves
into one differentiable vector is :func:`fungrad.misc.flatten.ravel`.

>>> from fungrad.tree import flatten, unflatten
>>> leaves, spec = flatten({"w": 1.0, "layers": [2.0, (3.0, 4.0)]})
>>> leaves
[2.0, 3.0, 4.0, 1.0]
>>> unflatten(spec, [x * 10 for x in leaves])
{'layers': [20.0, (30.0, 40.0)], 'w': 10.0}
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["flatten", "unflatten", "tree_map", "tree_leaves", "tree_structure",
           "TreeDef", "leaf_paths"]

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


def tree_map(fn: Callable, tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` to every leaf, keeping the structure; with more trees, ``fn`` takes the
    leaves at the same place in each (JAX's ``tree_map``): ``rest`` must have ``tree``'s
    structure.

    >>> tree_map(lambda x: x * 2, {"a": 1.0, "b": (2.0,)})
    {'a': 2.0, 'b': (4.0,)}
    >>> tree_map(lambda x, y: x + y, [1.0, (2.0,)], [10.0, (20.0,)])
    [11.0, (22.0,)]
    """
    leaves, spec = flatten(tree)
    if not rest:
        return unflatten(spec, [fn(x) for x in leaves])
    others = []
    for i, other in enumerate(rest, start=1):
        other_leaves, other_spec = flatten(other)
        if other_spec != spec:
            raise ValueError(f"tree_map: tree {i} has another structure than the first "
                             f"({tree_structure(other)} vs {tree_structure(tree)})")
        others.append(other_leaves)
    return unflatten(spec, [fn(*xs) for xs in zip(leaves, *others)])


def tree_leaves(tree: Any) -> list:
    """The leaves of ``tree``, in :func:`flatten`'s order (dict keys sorted).

    >>> tree_leaves({"b": [1.0, 2.0], "a": 3.0})
    [3.0, 1.0, 2.0]
    """
    return flatten(tree)[0]


class TreeDef:
    """The structure of a pytree without its leaves (JAX's ``PyTreeDef``): compared with
    ``==``, counted with ``num_leaves``, filled again with :meth:`unflatten`.

    >>> td = tree_structure({"w": 1.0, "b": (2.0, 3.0)})
    >>> td, td.num_leaves
    (PyTreeDef({'b': (*, *), 'w': *}), 3)
    >>> td.unflatten([0, 1, 2])
    {'b': (0, 1), 'w': 2}
    """

    __slots__ = ("spec", "num_leaves")

    def __init__(self, spec: Any, num_leaves: int) -> None:
        self.spec, self.num_leaves = spec, num_leaves

    def unflatten(self, leaves: list) -> Any:
        """The tree of this structure holding ``leaves``."""
        leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            raise ValueError(f"TreeDef.unflatten: expected {self.num_leaves} leaves, got "
                             f"{len(leaves)}")
        return unflatten(self.spec, leaves)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TreeDef) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        return f"PyTreeDef({_show(self.spec)})"


def _show(spec: Any) -> str:
    if spec is _LEAF:
        return "*"
    kind, meta, children = spec
    parts = [_show(c) for c in children]
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(meta, parts)) + "}"
    if kind == "namedtuple":
        return f"{meta.__name__}(" + ", ".join(parts) + ")"
    if kind == "tuple":
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    return "[" + ", ".join(parts) + "]"


def tree_structure(tree: Any) -> TreeDef:
    """The structure of ``tree`` (JAX's ``tree_structure``): equal for trees that differ
    only in their leaves.

    >>> tree_structure([1.0, {"a": 2.0}]) == tree_structure([5.0, {"a": 6.0}])
    True
    """
    leaves, spec = flatten(tree)
    return TreeDef(spec, len(leaves))
