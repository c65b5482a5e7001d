"""The batching rules shared by families of ops (``fungrad.batching.rules``): they are defined
with the ops, in :mod:`fungrad.primitives.batch_rules`, since every ops module uses them.

>>> from fungrad.batching.rules import elementwise
>>> elementwise.__module__
'fungrad.primitives.batch_rules'
"""

from ..primitives.batch_rules import (
    BatchedParam, align, batch_size, batched_position, elementwise, leading, materialize,
    matrix_stack, move_axis, ndim_of, reduction, shifted_axes, to_front, with_rank,
)

__all__ = ["BatchedParam", "elementwise", "reduction", "matrix_stack", "leading", "align",
           "move_axis", "to_front", "materialize", "batch_size", "ndim_of", "with_rank",
           "batched_position", "shifted_axes"]
