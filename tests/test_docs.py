"""What help() shows: the package overview, and docstrings, examples and type hints.

Covers the user-facing modules outside the engine (nn, testing, random, domains, the kernel
cache): every public function, class and method there has a docstring and type hints
(module-level functions and classes also an example). tests/test_doctests.py runs the
examples.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pydoc

import pytest

import fungrad

MODULES = [
    "fungrad", "fungrad.nn", "fungrad.nn.layers", "fungrad.nn.losses", "fungrad.nn.recurrent",
    "fungrad.nn.module", "fungrad.nn._dtype_guard", "fungrad.random", "fungrad.domains",
    "fungrad.testing", "fungrad.testing._check", "fungrad.testing._opcall",
    "fungrad.testing.strategies", "fungrad.testing.properties", "fungrad.kernels._cache",
    "fungrad.control.loops", "fungrad.control.checkpoint", "fungrad.control.primitives",
]
# whose API the state-dict work of another change owns; documented there
_ELSEWHERE = {"fungrad.nn.module.LoadResult"}


def test_help_fungrad_gives_an_overview_and_where_to_look_next():
    text = pydoc.render_doc(fungrad, renderer=pydoc.plaintext)
    for name in ("fg.Tensor", "backward()", "fg.grad", "fg.vjp", "fg.jvp", "fg.hessian",
                 "fungrad.nn", "fungrad.optim", "fungrad.testing", "fungrad.numpy", "fg.jit",
                 "fungrad.distributed", "fg.defop", "fg.ops()", "README"):
        assert name in text, name


def test_the_kernel_cache_examples_run():
    # tests/test_doctests.py runs every other module's examples; it leaves fungrad.kernels out
    module = importlib.import_module("fungrad.kernels._cache")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def _public(module):
    names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
    for name in names:
        obj = getattr(module, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == module.__name__:
            yield f"{module.__name__}.{name}", obj


def _methods(cls):
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__call__"):
            continue
        value = value.fget if isinstance(value, property) else value
        if inspect.isfunction(value):
            yield f"{cls.__name__}.{name}", value


def _problems(label: str, fn, *, needs_example: bool) -> list[str]:
    out = []
    doc = fn.__doc__ if not label.endswith("__init__") else "(the class documents it)"
    if not doc:
        out.append(f"{label}: no docstring")
    elif needs_example and ">>>" not in doc:
        out.append(f"{label}: no example")
    sig = inspect.signature(fn)
    untyped = [p for p, v in sig.parameters.items()
               if p not in ("self", "cls") and v.annotation is inspect.Parameter.empty]
    if untyped:
        out.append(f"{label}: no type hints for {untyped}")
    if sig.return_annotation is inspect.Signature.empty:
        out.append(f"{label}: no return type")
    return out


@pytest.mark.parametrize("name", MODULES[1:])
def test_public_functions_classes_and_methods_have_docs_and_type_hints(name):
    pytest.importorskip("hypothesis")
    module = importlib.import_module(name)
    problems = []
    for label, obj in _public(module):
        if label in _ELSEWHERE:
            continue
        if inspect.isclass(obj):
            if ">>>" not in (obj.__doc__ or ""):
                problems.append(f"{label}: no docstring example")
            for method_label, method in _methods(obj):
                problems += _problems(method_label, method, needs_example=False)
        else:
            problems += _problems(label, obj, needs_example=True)
    assert problems == []
