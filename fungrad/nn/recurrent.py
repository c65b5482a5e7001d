"""Recurrent cells: the book's RNNCell and the LSTMCell of its next chapter.

A cell processes one time step: ``output, hidden = cell(input, hidden)``. Loop over time
yourself (as the book does); call ``hidden = detach_hidden(hidden)`` between chunks for
truncated backpropagation through time.

>>> import numpy as np, fungrad as fg
>>> cell = fg.nn.RNNCell(4, 8, 3, rng=0)
>>> hidden = cell.init_hidden(batch_size=2)
>>> for t in range(5):
...     output, hidden = cell(np.ones((2, 4)), hidden)
>>> output.shape, hidden.shape
((2, 3), (2, 8))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from ..random import RNGLike, resolve_rng
from ..tensor import Tensor
from .layers import Linear, ReLU, Sigmoid, Tanh, _positive, _shape
from .module import Module

__all__ = ["RNNCell", "LSTMCell", "detach_hidden"]

_ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}


class RNNCell(Module):
    """The book's recurrent cell: ``hidden = act(w_ih(input) + w_hh(hidden))``,
    ``output = w_ho(hidden)``.

    ``forward(input, hidden)`` takes ``(batch, n_inputs)`` and ``(batch, n_hidden)`` and returns
    ``(output, hidden)``; the book's keywords ``forward(input=..., hidden=...)`` work.
    ``activation`` is ``'sigmoid'`` (the book's default), ``'tanh'`` or ``'relu'``.

    >>> import numpy as np, fungrad as fg
    >>> cell = fg.nn.RNNCell(n_inputs=2, n_hidden=3, n_output=4, activation="tanh", rng=0)
    >>> out, h = cell.forward(input=np.ones((1, 2)), hidden=cell.init_hidden(1))
    >>> out.shape, [n for n, _ in cell.named_parameters()][:2]
    ((1, 4), ['w_ih.weight', 'w_ih.bias'])
    """

    def __init__(self, n_inputs: int, n_hidden: int, n_output: int,
                 activation: str = "sigmoid", *, rng: RNGLike = None,
                 dtype: Any = np.float64) -> None:
        self.n_inputs, self.n_hidden, self.n_output = _positive(
            "RNNCell", n_inputs=n_inputs, n_hidden=n_hidden, n_output=n_output)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"RNNCell: activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.activation_name = activation
        self.activation = _ACTIVATIONS[activation]()
        gen = resolve_rng(rng, "RNNCell")
        self.w_ih = Linear(n_inputs, n_hidden, rng=gen, dtype=dtype)
        self.w_hh = Linear(n_hidden, n_hidden, rng=gen, dtype=dtype)
        self.w_ho = Linear(n_hidden, n_output, rng=gen, dtype=dtype)
        self.dtype = np.dtype(dtype)

    def forward(self, input: Any, hidden: Any) -> tuple[Tensor, Tensor]:
        """One time step: ``(output, new hidden)`` from ``input`` and the previous ``hidden``."""
        _check_step(self, input, hidden, self.n_inputs, self.n_hidden)
        combined = self.w_ih.forward(input) + self.w_hh.forward(hidden)
        new_hidden = self.activation.forward(combined)
        return self.w_ho.forward(new_hidden), new_hidden

    def init_hidden(self, batch_size: int = 1) -> Tensor:
        """Zeros of shape ``(batch_size, n_hidden)`` (the state before the first step)."""
        return Tensor(np.zeros((batch_size, self.n_hidden), dtype=self.dtype))

    def __repr__(self) -> str:
        return (f"RNNCell({self.n_inputs}, {self.n_hidden}, {self.n_output}, "
                f"activation={self.activation_name!r})")


class LSTMCell(Module):
    """A long short-term memory cell built as the book's next chapter builds it.

    Gates from linear layers on the input (``xf, xi, xo, xc``, with bias) and on the previous
    hidden state (``hf, hi, ho, hc``, no bias)::

        f, i, o = sigmoid(x* + h*)    g = tanh(xc + hc)
        c = f * c_prev + i * g        h = o * tanh(c)        output = w_ho(h)

    ``forward(input, hidden)`` takes ``hidden = (h, c)`` and returns ``(output, (h, c))``;
    ``init_hidden(batch_size)`` returns zeros for both (the book sets unit 0 to one; zeros are
    the usual convention). ``forget_bias`` is added to ``xf``'s initial bias (1.0 helps long
    memories; 0.0 is the book's).

    >>> import numpy as np, fungrad as fg
    >>> cell = fg.nn.LSTMCell(3, 5, 2, rng=0)
    >>> out, (h, c) = cell(np.ones((4, 3)), cell.init_hidden(4))
    >>> out.shape, h.shape, c.shape
    ((4, 2), (4, 5), (4, 5))
    """

    def __init__(self, n_inputs: int, n_hidden: int, n_output: int, *,
                 forget_bias: float = 0.0, rng: RNGLike = None,
                 dtype: Any = np.float64) -> None:
        self.n_inputs, self.n_hidden, self.n_output = _positive(
            "LSTMCell", n_inputs=n_inputs, n_hidden=n_hidden, n_output=n_output)
        gen = resolve_rng(rng, "LSTMCell")
        self.xf, self.xi, self.xo, self.xc = (Linear(n_inputs, n_hidden, rng=gen, dtype=dtype)
                                              for _ in range(4))
        self.hf, self.hi, self.ho, self.hc = (
            Linear(n_hidden, n_hidden, bias=False, rng=gen, dtype=dtype) for _ in range(4))
        self.w_ho = Linear(n_hidden, n_output, bias=False, rng=gen, dtype=dtype)
        self.xf.bias.data += forget_bias
        self.dtype = np.dtype(dtype)

    def forward(self, input: Any, hidden: tuple[Any, Any]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One time step: ``(output, (h, c))`` from ``input`` and the previous ``(h, c)``."""
        if not (isinstance(hidden, (tuple, list)) and len(hidden) == 2):
            raise TypeError(f"{self!r}: hidden must be the pair (h, c) from init_hidden(), "
                            f"got {type(hidden).__name__}")
        prev_h, prev_c = hidden
        _check_step(self, input, prev_h, self.n_inputs, self.n_hidden)
        if _shape(prev_c) != _shape(prev_h):
            raise ShapeError(f"{self!r}: the cell state c has shape {_shape(prev_c)}, "
                             f"expected {_shape(prev_h)} like h")
        f = (self.xf.forward(input) + self.hf.forward(prev_h)).sigmoid()
        i = (self.xi.forward(input) + self.hi.forward(prev_h)).sigmoid()
        o = (self.xo.forward(input) + self.ho.forward(prev_h)).sigmoid()
        g = (self.xc.forward(input) + self.hc.forward(prev_h)).tanh()
        c = f * prev_c + i * g
        h = o * c.tanh()
        return self.w_ho.forward(h), (h, c)

    def init_hidden(self, batch_size: int = 1) -> tuple[Tensor, Tensor]:
        """``(h, c)``: zeros of shape ``(batch_size, n_hidden)`` each."""
        shape = (batch_size, self.n_hidden)
        return Tensor(np.zeros(shape, self.dtype)), Tensor(np.zeros(shape, self.dtype))

    def __repr__(self) -> str:
        return f"LSTMCell({self.n_inputs}, {self.n_hidden}, {self.n_output})"


def detach_hidden(hidden: Any) -> Any:
    """Cut a hidden state (a Tensor or a tuple of them) from the graph: truncated BPTT.

    >>> import fungrad as fg
    >>> h = fg.Tensor([1.0], autograd=True) * 2
    >>> detach_hidden((h, h))[0].creators is None
    True
    """
    if isinstance(hidden, (tuple, list)):
        return type(hidden)(detach_hidden(h) for h in hidden)
    return hidden.detach() if isinstance(hidden, Tensor) else hidden


def _check_step(cell: Module, input: Any, hidden: Any, n_inputs: int, n_hidden: int) -> None:
    xs, hs = _shape(input), _shape(hidden)
    if len(xs) != 2 or xs[1] != n_inputs:
        raise ShapeError(f"{cell!r}: expected input of shape (batch, {n_inputs}), got {xs}")
    if hs != (xs[0], n_hidden):
        raise ShapeError(f"{cell!r}: expected hidden of shape ({xs[0]}, {n_hidden}) for a batch "
                         f"of {xs[0]}, got {hs}")
