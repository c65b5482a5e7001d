"""Loss layers: the book's MSELoss and CrossEntropyLoss.

>>> import numpy as np, fungrad as fg
>>> pred = fg.Tensor(np.array([[0.5], [1.0]]), autograd=True)
>>> fg.nn.MSELoss()(pred, np.array([[0.0], [1.0]]))
array([0.25])
>>> fg.nn.MSELoss(reduction="mean")(pred, np.array([[0.0], [1.0]]))
array(0.125)
"""

from __future__ import annotations

from typing import Any

from ..primitives import cross_entropy, mse, subtract
from ..errors import ShapeError
from .._keywords import hints
from ..tensor import Tensor
from .layers import _shape
from .module import Module

__all__ = ["MSELoss", "CrossEntropyLoss"]


class MSELoss(Module):
    """Squared error between ``pred`` and ``target``.

    ``reduction``: ``"sum0"`` (the book's default: ``((pred - target) ** 2).sum(0)``, summed over
    the batch axis, one value per output), ``"sum"`` (one scalar), ``"mean"`` (the mean over
    every element, as PyTorch's default), or ``"none"`` (elementwise).

    >>> import numpy as np, fungrad as fg
    >>> fg.nn.MSELoss(reduction="sum")(fg.Tensor([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    array(5.)
    """

    _REDUCTIONS = ("sum0", "sum", "mean", "none")

    @hints
    def __init__(self, reduction: str = "sum0") -> None:
        if reduction not in self._REDUCTIONS:
            raise ValueError(f"MSELoss: reduction must be one of {self._REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def forward(self, pred: Any, target: Any) -> Tensor:
        """The squared error of ``pred`` against ``target`` (same shape), reduced."""
        if _shape(pred) != _shape(target):
            raise ShapeError(f"MSELoss: pred has shape {_shape(pred)} but target has shape "
                             f"{_shape(target)}; they must match")
        if self.reduction == "mean":
            return mse(pred, target)
        diff = subtract(pred, target)
        sq = diff * diff
        if self.reduction == "sum0":
            return sq.sum(0)
        return sq.sum() if self.reduction == "sum" else sq

    def __repr__(self) -> str:
        return f"MSELoss(reduction={self.reduction!r})"


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of ``input`` logits ``(..., classes)`` against integer targets.

    ``reduction="mean"`` (default) averages over the rows; its gradient is
    ``(softmax - onehot) / N`` — the book's listing leaves out the ``1 / N``, so to take the
    book's steps multiply its learning rate by the batch size. ``"sum"`` sums over the rows.

    >>> import numpy as np, fungrad as fg
    >>> logits = fg.Tensor(np.zeros((2, 4)), autograd=True)
    >>> round(float(fg.nn.CrossEntropyLoss()(logits, np.array([0, 3])).data), 4)
    1.3863
    """

    @hints
    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"CrossEntropyLoss: reduction must be 'mean' or 'sum', "
                             f"got {reduction!r}")
        self.reduction = reduction

    def forward(self, input: Any, target: Any) -> Tensor:
        """Cross-entropy of logits ``input`` ``(..., C)`` against class ids ``target`` ``(...)``."""
        loss = cross_entropy(input, target)
        if self.reduction == "sum":
            n_rows = 1
            for d in _shape(input)[:-1]:
                n_rows *= d
            loss = loss * float(n_rows)
        return loss

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(reduction={self.reduction!r})"
