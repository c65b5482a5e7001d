"""``fg.vmap``: run a function once on a whole batch, each op applying its batching rule.

The pieces, in the order a call meets them:

* :mod:`fungrad.batching.api` — ``vmap`` itself: ``in_axes`` / ``out_axes`` matched against
  the arguments' and results' pytrees, batch sizes checked, arguments wrapped as Tensors whose
  data is a batched array, results unwrapped with the batch axis where ``out_axes`` says.
* :mod:`fungrad.batching.value` — :class:`~fungrad.batching.value.BatchedArray`, the values of
  every example with one axis marked as the batch; it looks like one example.
* :mod:`fungrad.batching.interpreter` — what :func:`fungrad.registry.apply` calls for an op
  on batched arrays: the op's rule (``op.batch``, declared in its ``defop`` stanza), or a loop
  over the examples with one warning for an op without one.
* :mod:`fungrad.batching.rules` — rules shared by families of ops (``elementwise``,
  ``reduction``, ``matrix_stack``, ``leading``) and the helpers rules are written with; an op's
  own rule sits next to its stanza in ``fungrad/primitives/``.

Transformations compose by levels, as in JAX: a vmap inside a vmap batches its own axis; a
``fg.grad`` called inside a vmap differentiates one example at a time (its leaves belong to the
vmap), and a vmap inside ``fg.grad`` is recorded like any other computation.

>>> import numpy as np, fungrad as fg
>>> from fungrad.batching import elementwise, reduction
>>> sorted(r.__name__ for r in (elementwise, reduction))
['elementwise', 'reduction']
"""

from .rules import (
    BatchedParam, align, batch_size, batched_position, elementwise, leading, materialize,
    matrix_stack, move_axis, ndim_of, reduction, shifted_axes, to_front, with_rank,
)

__all__ = ["BatchedParam", "elementwise", "reduction", "matrix_stack", "leading", "align",
           "move_axis", "to_front", "materialize", "batch_size", "ndim_of", "with_rank",
           "batched_position", "shifted_axes"]
