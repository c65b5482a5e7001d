"""fungrad's imports run one way: no circle, and no module imports a layer above its own.

Every import statement of every module is read from the source (``ast``), function-level
imports included (they hide a circle from Python, not from the reader); imports under
``if TYPE_CHECKING:`` are annotations only and are left out. ``fungrad.jit`` counts as one
node: its internals are one layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fungrad"

# Bottom to top. A module belongs to the first entry that is its name or a package above it.
LAYERS: list[tuple[str, ...]] = [
    # no fungrad imports at all: errors, the small tables, pytrees, the array stand-ins' base,
    # the Numba kernels
    ("fungrad.errors", "fungrad._keywords", "fungrad.domains", "fungrad.tree", "fungrad._stand_in",
     "fungrad.kernels"),
    # per-thread state: recording flags, the sequence counter, the jit and vmap hooks
    ("fungrad.recording", "fungrad.random"),
    # the Op record, defop, apply
    ("fungrad.registry",),
    # the registered ops (with their VJPs and batching rules)
    ("fungrad.primitives",),
    # the backward pass
    ("fungrad.backprop",),
    # the Tensor
    ("fungrad.tensor",),
    # the transformations: grad/vjp/jvp..., vmap; the public type aliases; the table of Tensor's
    # operators and op methods (attached to Tensor when fungrad is imported)
    ("fungrad.functional", "fungrad.batching", "fungrad.typing", "fungrad._tensor_methods"),
    # what is built on them
    ("fungrad.nn", "fungrad.numpy", "fungrad.optim", "fungrad.misc", "fungrad.scipy",
     "fungrad.extend", "fungrad.control", "fungrad.io", "fungrad.distributed",
     "fungrad._pytorch_names"),
    # the compiler
    ("fungrad.jit",),
    # the public surface, the test helpers that import it, and autograd's const_graph (fg.jit
    # with arguments fixed: built on the compiler)
    ("fungrad", "fungrad.testing", "fungrad.misc.const_graph"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _node(name: str) -> str:
    """The graph node of a module: itself, or ``fungrad.jit`` for the jit's internals."""
    return "fungrad.jit" if name == "fungrad.jit" or name.startswith("fungrad.jit.") else name


def _layer(name: str) -> int:
    best, found = -1, -1
    for i, members in enumerate(LAYERS):
        for m in members:
            if (name == m or name.startswith(m + ".")) and len(m) > best:
                best, found = len(m), i
    assert found >= 0, f"{name} is in no layer: add it to LAYERS in tests/test_imports.py"
    return found


def _runtime_nodes(tree: ast.Module):
    """Every node of the module, without the bodies of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imports(name: str, path: Path) -> set[str]:
    """The fungrad modules ``name`` imports (resolved to modules, not the names in them)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t.startswith("fungrad") and t != name:
                found.add(t)
    return found


GRAPH: dict[str, set[str]] = {}
for _name, _path in MODULES.items():
    _edges = GRAPH.setdefault(_node(_name), set())
    _edges |= {_node(t) for t in _imports(_name, _path)} - {_node(_name)}


def test_every_module_is_in_a_layer():
    for name in MODULES:
        _layer(name)


def test_no_module_imports_a_higher_layer():
    upward = [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
              for a, targets in sorted(GRAPH.items()) for b in sorted(targets)
              if _layer(b) > _layer(a)]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_import_circle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(GRAPH):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(GRAPH[start]))]
        state[start] = 1
        while stack:  # depth-first, without recursion
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                circle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(circle))
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(GRAPH.get(nxt, ()))))


def test_the_checker_sees_function_level_imports_and_skips_type_checking(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from fungrad import jit\n"
                      "def f():\n    from fungrad import recording\n")
    assert _imports("fungrad.m", module) == {"fungrad.recording"}
