"""The part every array stand-in shares: values known only later, refused as Python values.

Two objects stand in for arrays while a transformation runs user code: fg.jit's traced array
(shape and dtype known, values computed when the compiled step runs) and fg.vmap's batched
array (one value per example). Neither can become *one* Python value (``bool``, ``float``,
``int``, an index, ``.item()``, ``.tolist()``): a traced function would bake in the first
call's value, a batched one has a value per example. :class:`StandIn` writes those refusals
and the sizes that follow from ``shape`` and ``dtype`` once; each subclass supplies its own
error (naming fg.jit or fg.vmap) through :meth:`StandIn._conversion_error`.

>>> import numpy as np
>>> class Fixed(StandIn):
...     shape, dtype = (2, 3), np.dtype(np.float32)
...     def _conversion_error(self, what):
...         return TypeError(f"{what} of a stand-in")
>>> x = Fixed()
>>> x.ndim, x.size, x.nbytes
(2, 6, 24)
>>> float(x)
Traceback (most recent call last):
TypeError: float() of a stand-in
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["StandIn"]


class StandIn:
    """Base of the array stand-ins: refuses conversion to one Python value; ``ndim``,
    ``size``, ``itemsize`` and ``nbytes`` from the subclass's ``shape`` and ``dtype``."""

    __slots__ = ()

    if TYPE_CHECKING:  # supplied by the subclass (a slot or a property)
        shape: tuple[int, ...]
        dtype: np.dtype

    def _conversion_error(self, what: str) -> Exception:
        """The error to raise when ``what`` (e.g. ``"float()"``) needs this value."""
        raise NotImplementedError(f"{type(self).__name__} must define _conversion_error")

    # -- sizes ----------------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    # -- one Python value: refused --------------------------------------------------------------

    def __bool__(self):
        raise self._conversion_error("bool() (an `if`, `while`, `and`/`or` or assert)")

    def __float__(self):
        raise self._conversion_error("float()")

    def __int__(self):
        raise self._conversion_error("int()")

    def __complex__(self):
        raise self._conversion_error("complex()")

    def __index__(self):
        raise self._conversion_error("use as an index or a size (range(), a shape)")

    def item(self, *args):
        raise self._conversion_error(".item()")

    def tolist(self):
        raise self._conversion_error(".tolist()")

    def __format__(self, spec: str) -> str:
        if spec:
            raise self._conversion_error(f"formatting with '{spec}'")
        return repr(self)
