"""Import the scripts in ``examples/`` as modules for the tests, and capture what they print."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from types import ModuleType
from typing import Any, Callable

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` once, undoing the BLAS settings it makes for script runs."""
    if name in sys.modules:
        return sys.modules[name]
    saved = {k: os.environ.get(k) for k in _ENV}
    try:
        spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return module


def quiet(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, str]:
    """``fn(*args, **kwargs)`` with its printing captured: ``(result, text)``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = fn(*args, **kwargs)
    return result, out.getvalue()
