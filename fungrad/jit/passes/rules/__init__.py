"""Lowering rules by op family, registered against op objects
(:func:`~fungrad.jit.passes.lowering.rule`).

- :mod:`~fungrad.jit.passes.rules.elementwise` — arithmetic, math, comparisons, casts;
- :mod:`~fungrad.jit.passes.rules.shape` — views, joins, gathers and scatters;
- :mod:`~fungrad.jit.passes.rules.linalg` — reductions, matmul, affine;
- :mod:`~fungrad.jit.passes.rules.nn` — embedding bags, LSTM, cross-entropy, softmax rows.

To give an op a compiled form, write ``fn(low, step)`` in its family's module and register it
with ``rule(registered("name"))(fn)``; it emits nodes through the
:class:`~fungrad.jit.passes.lowering.Lowering` methods or raises
:class:`~fungrad.jit.ir.Unsupported` for a pattern it does not handle.
"""

from . import elementwise, linalg, nn, shape  # noqa: F401 (they register their rules)
