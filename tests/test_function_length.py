"""No function of fungrad is longer than about 80 lines of code unless it says why.

Lines are counted from ``def`` to the last line, without the docstring (documentation is not
length). The jit's Numba kernels (``fungrad/jit/backend/kernels_*``) are left out: a kernel is
one loop nest on purpose. A longer function is either split or listed in ``LONG`` with the
reason it is one function; an entry that no longer names a long function fails too, so the
list stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fungrad"
LIMIT = 80

LONG = {
    "fungrad/backprop.py::backward":
        "the transactional backward: one loop without recursion over the graph, whose cotangent "
        "sums, ownership set and leaf journal are shared by every phase (and it is the engine's "
        "hot path, a frame per helper call per node)",
    "fungrad/registry.py::apply":
        "every op call runs it; the binary case is unrolled inline on purpose (a helper is a "
        "Python frame per op call: benchmarks/overhead.py)",
}


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        n -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
    return n


def long_functions() -> dict[str, int]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if rel.startswith("fungrad/jit/backend/kernels_"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node)
                if n > LIMIT:
                    found[f"{rel}::{node.name}"] = n
    return found


def test_no_function_is_long_without_a_reason():
    found = long_functions()
    unexplained = {k: n for k, n in found.items() if k not in LONG}
    assert not unexplained, (
        f"functions over {LIMIT} lines of code: {unexplained}; split them, or add each to LONG "
        "in tests/test_function_length.py with the reason it is one function")
    stale = sorted(set(LONG) - set(found))
    assert not stale, f"no longer long (remove from LONG): {stale}"


def test_the_count_leaves_out_the_docstring():
    body = "\n".join(f"    x = {i}" for i in range(LIMIT))
    tree = ast.parse(f'def f():\n    """doc\n    more"""\n{body}\n')
    assert _code_lines(tree.body[0]) == LIMIT + 1  # type: ignore[arg-type]
