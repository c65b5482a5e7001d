"""A differential fuzzer for ``fg.jit``: random programs of registered ops, run under fg.jit
and eagerly, values, gradients and in-place updates compared, each batch in a child process.

``python -m jit_fuzz --programs 2000 --seed 1 --jobs 2`` (from ``tests/``, with the checkout on
PYTHONPATH) prints the failures grouped by class with the shrunk source of each. See
``tests/README.md``.
"""

from .program import Input, Program
from .generator import generate

__all__ = ["Input", "Program", "generate"]
