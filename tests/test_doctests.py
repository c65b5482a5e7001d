"""Every docstring example in the package runs and prints what it says (the kernels' own
examples run in tests/test_kernels.py)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest

import fungrad

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(fungrad.__path__, "fungrad.")
    if not info.name.startswith("fungrad.kernels")
)


@pytest.mark.parametrize("name", ["fungrad", *MODULES])
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Hypothesis's .example() warns in its own examples
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed"
