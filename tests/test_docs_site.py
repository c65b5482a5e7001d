"""The documentation site: its guides' code blocks run, its pages are in the nav, and the
checks of docs/hooks.py (which a strict build turns into failures) say what to add.

The build itself (``python -m mkdocs build --strict``, the README's "Documentation" command)
runs in ``.ci/run``; here it runs too when MkDocs is installed (the ``docs`` extra).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "pages"


def _hooks():
    spec = importlib.util.spec_from_file_location("fungrad_docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of each ```python block of a page."""
    text = path.read_text()
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        blocks.append((text[:m.start()].count("\n") + 2, m.group(1)))
    return blocks


GUIDES = sorted(p for p in PAGES.rglob("*.md") if python_blocks(p))


@pytest.mark.parametrize("page", GUIDES, ids=lambda p: str(p.relative_to(PAGES)))
def test_the_code_blocks_of_each_page_run(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # pages that write files write them here
    namespace: dict = {"__name__": f"docs_{page.stem}"}  # blocks of a page share one namespace
    from fungrad.testing import temporary_ops

    with warnings.catch_warnings(), temporary_ops():  # ops a page registers do not leak
        warnings.simplefilter("ignore", ResourceWarning)
        for line, code in python_blocks(page):
            try:
                exec(compile(code, f"{page}:{line}", "exec"), namespace)
            except Exception as e:
                raise AssertionError(f"{page.relative_to(ROOT)}, the block at line {line} "
                                     f"raised {type(e).__name__}: {e}") from e


def _nav_pages() -> list[str]:
    """The pages mkdocs.yml's nav lists (its uncommented ``Title: path.md`` lines)."""
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    return re.findall(r"^\s*- [^#\n]*?:\s*([\w/.-]+\.md)\s*$", nav, re.M)


def test_every_page_is_in_the_nav():
    listed = _nav_pages()
    assert "index.md" in listed and "guides/jit.md" in listed
    assert hooks.page_problems(str(PAGES), listed) == []
    missing = [p for p in listed if not (PAGES / p).exists()]
    assert missing == [], f"the nav lists pages that do not exist: {missing}"


def test_a_page_left_out_of_the_nav_is_reported_with_the_line_to_add(tmp_path):
    (tmp_path / "guides").mkdir()
    (tmp_path / "index.md").write_text("# home\n")
    (tmp_path / "guides" / "vmap.md").write_text("# vmap\n")
    problems = hooks.page_problems(str(tmp_path), [{"Home": "index.md"}])
    assert len(problems) == 1
    assert "guides/vmap.md is not in the nav" in problems[0]
    assert "'- Its title: guides/vmap.md' under Guides in mkdocs.yml" in problems[0]


def test_a_public_name_without_a_docstring_is_reported_with_what_to_add(monkeypatch):
    module = types.ModuleType("fungrad.fake_docs_module")
    module.__doc__ = "A module."
    exec("def documented():\n    'Has one.'\n\ndef bare():\n    pass\n\n"
         "class Thing:\n    'A class.'\n    def method(self):\n        pass\n", module.__dict__)
    for name in ("documented", "bare", "Thing"):
        getattr(module, name).__module__ = module.__name__
    module.__all__ = ["documented", "bare", "Thing"]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    problems = hooks.docstring_problems(module.__name__)
    assert any(p.startswith("fungrad.fake_docs_module.bare (in fungrad.fake_docs_module."
                            "__all__") and "has no docstring: add one" in p for p in problems)
    assert any(p.startswith("fungrad.fake_docs_module.Thing.method") for p in problems)
    assert len(problems) == 2, problems


def test_every_public_module_of_fungrad_gets_a_page_and_every_name_a_docstring():
    pages, problems = hooks.public_modules()
    assert problems == []
    for name in ("fungrad", "fungrad.nn", "fungrad.optim", "fungrad.optim.lr_scheduler",
                 "fungrad.numpy", "fungrad.numpy.linalg", "fungrad.testing",
                 "fungrad.distributed", "fungrad.jit", "fungrad.typing", "fungrad.errors"):
        assert name in pages, name
    assert not any(p.startswith(("fungrad.primitives.", "fungrad.kernels", "fungrad.registry"))
                   for p in pages)
    for name in pages:
        assert hooks.docstring_problems(name) == [], name


def test_the_numpy_table_lists_every_function_of_fungrad_numpy():
    import fungrad.numpy as fnp

    table = hooks.numpy_table()
    for name in fnp.__all__:
        if name != "random":
            assert f"| `{name}` |" in table, name
    row = next(line for line in table.splitlines() if line.startswith("| `einsum` |"))
    assert "adds `dtype=`" in row or "NumPy's arguments" in row


def test_doctests_become_fenced_code():
    text = "Sum.\n\n>>> x = [1]\n>>> x[0]\n1\n\nAfter, see :func:`fungrad.grad`."
    out = hooks.fence_doctests(text)
    assert "```pycon\n>>> x = [1]\n>>> x[0]\n1\n```" in out
    assert "see `grad`." in out


def test_the_strict_build_passes():
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = ROOT / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert (site / "api" / "fungrad.nn" / "index.html").exists()
    page = (site / "api" / "fungrad" / "index.html").read_text()
    assert "value_and_grad" in page
