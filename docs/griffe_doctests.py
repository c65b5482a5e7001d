"""A Griffe extension (mkdocs.yml: mkdocstrings' ``extensions``): docstrings as Markdown.

fungrad's docstrings are written for ``help()`` and doctest: ``>>>`` sessions and Sphinx roles.
Before mkdocstrings renders one, each ``>>>`` session becomes a fenced ``pycon`` block and each
role plain code (``docs/hooks.py``: ``fence_doctests``), so examples read as code and their
brackets are not taken for Markdown links.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import griffe

_spec = importlib.util.spec_from_file_location(
    "fungrad_docs_hooks", os.path.join(os.path.dirname(os.path.abspath(__file__)), "hooks.py"))
assert _spec is not None and _spec.loader is not None
_hooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hooks)


class DoctestFences(griffe.Extension):
    """Fence the ``>>>`` examples of every docstring Griffe loads."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _hooks.fence_doctests(obj.docstring.value)
