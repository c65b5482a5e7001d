"""fungrad's exceptions: a small hierarchy on the built-in types.

Every error raised for bad input names the op, what it got and what it expected, so a user
can catch the built-in type (``ValueError``, ``TypeError``, ``IndexError``, ``RuntimeError``)
or everything fungrad raises (``FungradError``).

>>> import fungrad as fg
>>> try:
...     fg.matmul(fg.Tensor([[1.0, 2.0]]), fg.Tensor([[1.0, 2.0]]))
... except fg.errors.ShapeError as e:
...     print(e)
matmul: shapes (1, 2) and (1, 2) are not aligned (2 != 1)
"""

from __future__ import annotations

from numpy.linalg import LinAlgError as _NumpyLinAlgError

__all__ = [
    "FungradError",
    "ShapeError",
    "DTypeError",
    "IndexRangeError",
    "GraphError",
    "AnomalyError",
    "LinAlgError",
    "CheckpointError",
    "ConversionError",
    "TracingError",
    "DistributedError",
    "VmapError",
    "BatchedConversionError",
    "BatchingFallbackWarning",
    "CarryError",
    "NonScalarBackwardWarning",
    "JitInternalError",
    "JitFallbackWarning",
]


class FungradError(Exception):
    """Base class of every error fungrad raises on purpose."""


class ShapeError(FungradError, ValueError):
    """Inputs whose shapes do not fit the op (not aligned, not broadcastable, bad axis)."""


class DTypeError(FungradError, TypeError):
    """An input of a dtype the op cannot take (float indices, integer input to ``grad``...)."""


class IndexRangeError(FungradError, IndexError, ValueError):
    """An index or class target outside the valid range; the message names value and range."""


class GraphError(FungradError, RuntimeError):
    """Misuse of the recorded graph: a second backward through freed nodes, a non-scalar root."""


class AnomalyError(FungradError, FloatingPointError):
    """Raised under ``detect_anomaly()`` when an op makes a NaN or infinity."""


class LinAlgError(FungradError, _NumpyLinAlgError):
    """A matrix an op cannot factor or invert (singular, not positive definite, rank
    deficient where the gradient needs full rank). Also a ``numpy.linalg.LinAlgError`` (and so a
    ``ValueError``), so code catching NumPy's error keeps working."""


class CheckpointError(FungradError, ValueError):
    """A checkpoint file that is missing, corrupt, or does not match the model."""


class ConversionError(FungradError, TypeError):
    """A Tensor being differentiated was about to become a constant (``np.asarray(t)``, or
    ``float(t)`` inside ``fg.grad``): refused, because its gradient would silently be wrong."""


class TracingError(ConversionError):
    """``fg.jit`` met a use of a traced value's numbers in Python (``float(t)``, ``if t > 0``)
    that the compiled step could not repeat; the message names the fixes."""


class VmapError(FungradError, ValueError):
    """``fg.vmap`` called with arguments it cannot map over: batch sizes that differ, an
    ``in_axes`` or ``out_axes`` out of range or not matching the arguments' structure."""


class BatchedConversionError(ConversionError, RuntimeError):
    """A value batched by ``fg.vmap`` met Python code that needs one number (``if x > 0``,
    ``float(x)``): each example has its own; the message names what to use instead."""


class BatchingFallbackWarning(UserWarning):
    """Warned once per op: an op without a batching rule ran once per example under
    ``fg.vmap`` (correct, but a Python loop); give it one with ``fg.defop(..., batch=rule)``."""


class DistributedError(FungradError, RuntimeError):
    """Ranks of an MPI job that disagree (parameter names, shapes, dtypes) or a failed launch."""


class CarryError(FungradError, TypeError, ValueError):
    """A loop body (``fg.scan``, ``fori_loop``, ``while_loop``) returned a carry whose structure,
    shape or dtype differs from the carry it was given; the message names the loop and the
    leaf. A ``TypeError`` as in JAX, and a ``ValueError`` for a shape."""


class NonScalarBackwardWarning(UserWarning):
    """``loss.backward()`` on a loss of more than one element with no ``grad``: the book's
    meaning (a seed of ones, the gradient of the sum) is used, and this says so once, because
    PyTorch refuses it and a ported model would otherwise get silently larger gradients."""


class JitInternalError(FungradError, RuntimeError):
    """fg.jit's compiler produced a program its verifier rejects (an operand outside its
    buffer, a register read before it is written, a buffer read after it was overwritten...):
    a bug in fungrad, not in the user's code. The program never ran; the message names the
    op, the compiler pass and the user's source line. Please report it; meanwhile the function
    runs eagerly (without ``fg.jit``)."""


class JitFallbackWarning(UserWarning):
    """fg.jit could not compile one op of a program in the pattern it met, and runs that op as
    a Python step instead (its registered forward or VJP on NumPy arrays): the answer is right,
    only slower. The message names the op and the reason."""
