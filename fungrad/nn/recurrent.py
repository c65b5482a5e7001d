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
from ..primitives import affine, lstm_sequence, matmul, reshape, stack, transpose, unstack
from ..random import RNGLike, resolve_rng
from .._keywords import hints
from ..tensor import Tensor
from .layers import Linear, ReLU, Sigmoid, Tanh, _positive, _shape
from .module import Module

__all__ = ["RNNCell", "LSTMCell", "LSTM", "detach_hidden"]

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

    @hints
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
        (batch_size,) = _positive(f"{self!r}.init_hidden", batch_size=batch_size)
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

    @hints
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
        self.xf.bias.data += forget_bias  # type: ignore[union-attr]
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
        (batch_size,) = _positive(f"{self!r}.init_hidden", batch_size=batch_size)
        shape = (batch_size, self.n_hidden)
        return Tensor(np.zeros(shape, self.dtype)), Tensor(np.zeros(shape, self.dtype))

    def __repr__(self) -> str:
        return f"LSTMCell({self.n_inputs}, {self.n_hidden}, {self.n_output})"


class LSTM(Module):
    """A multi-layer LSTM over whole sequences, with PyTorch's shape conventions.

    ``forward(input, hx=None)`` takes ``input`` of shape ``(T, B, input_size)`` (``(B, T,
    input_size)`` with ``batch_first=True``, or ``(T, input_size)`` unbatched) and ``hx = (h0,
    c0)``, each ``(num_layers, B, hidden_size)`` (zeros when omitted). It returns ``output``,
    the last layer's hidden state at every step (``(T, B, hidden_size)``, batch first if
    asked), and ``(h_n, c_n)``, each layer's final state ``(num_layers, B, hidden_size)``.

    Each layer is two ops: the input projection of all steps as one ``affine`` (one GEMM
    forward, one per weight gradient) and the recurrence as one ``lstm_sequence``. Layer ``k``
    holds ``weight_ih_lk`` ``(n_in, 4H)``, ``weight_hh_lk`` ``(H, 4H)`` and ``bias_lk``
    ``(4H,)``, gates in PyTorch's order ``[i, f, g, o]``. The weights are stored ``x @ W`` as
    in :class:`Linear`, the transpose of PyTorch's, and there is one bias (PyTorch's
    ``bias_ih + bias_hh``). Initialised as PyTorch does: uniform in ``±1/sqrt(hidden_size)``.
    Use :class:`LSTMCell` to step through time yourself.

    >>> import numpy as np, fungrad as fg
    >>> lstm = fg.nn.LSTM(3, 5, num_layers=2, rng=0)
    >>> output, (h_n, c_n) = lstm(np.ones((7, 4, 3)))
    >>> output.shape, h_n.shape, c_n.shape
    ((7, 4, 5), (2, 4, 5), (2, 4, 5))
    >>> bool(np.allclose(output.data[-1], h_n.data[-1]))
    True
    """

    @hints
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, *, rng: RNGLike = None,
                 dtype: Any = np.float64) -> None:
        self.input_size, self.hidden_size, self.num_layers = _positive(
            "LSTM", input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        gen = resolve_rng(rng, "LSTM")
        hid = self.hidden_size
        k = 1.0 / np.sqrt(hid)
        for layer in range(self.num_layers):
            n_in = self.input_size if layer == 0 else hid
            for name, shape in ((f"weight_ih_l{layer}", (n_in, 4 * hid)),
                                (f"weight_hh_l{layer}", (hid, 4 * hid)),
                                (f"bias_l{layer}", (4 * hid,) if bias else None)):
                if shape is not None:
                    setattr(self, name, Tensor(gen.uniform(-k, k, shape), autograd=True,
                                               dtype=dtype))
        self.dtype = np.dtype(dtype)

    def forward(self, input: Any, hx: tuple[Any, Any] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``output, (h_n, c_n)`` for ``input`` and the initial state ``hx = (h0, c0)``
        (zeros when None); shapes as in the class docstring."""
        x, batched = self._time_major(input)
        h0, c0 = (_layers(s) for s in self._initial_state(hx, _shape(x)[1], batched))
        finals_h, finals_c = [], []
        for layer in range(self.num_layers):
            w_ih = getattr(self, f"weight_ih_l{layer}")
            xp = affine(x, w_ih, getattr(self, f"bias_l{layer}")) if self.bias else \
                matmul(x, w_ih)
            x, cs, _ = lstm_sequence(xp, getattr(self, f"weight_hh_l{layer}"), h0[layer],
                                     c0[layer])
            finals_h.append(x[-1])
            finals_c.append(cs[-1])
        h_n, c_n = stack(finals_h), stack(finals_c)
        if not batched:
            hid = self.hidden_size
            return (reshape(x, (_shape(x)[0], hid)),
                    (reshape(h_n, (self.num_layers, hid)), reshape(c_n, (self.num_layers, hid))))
        return (transpose(x, axes=(1, 0, 2)) if self.batch_first else x), (h_n, c_n)

    def _time_major(self, input: Any) -> tuple[Any, bool]:
        shape = _shape(input)
        if len(shape) not in (2, 3) or shape[-1] != self.input_size:
            order = "(B, T, {0})" if self.batch_first else "(T, B, {0})"
            raise ShapeError(f"{self!r}: expected input of shape "
                             f"{order.format(self.input_size)} or (T, {self.input_size}), "
                             f"got {shape}")
        if shape[1 if self.batch_first and len(shape) == 3 else 0] == 0:
            raise ShapeError(f"{self!r}: input of shape {shape} has no time steps")
        if len(shape) == 2:
            return reshape(input, (shape[0], 1, shape[1])), False
        return (transpose(input, axes=(1, 0, 2)) if self.batch_first else input), True

    def _initial_state(self, hx: Any, batch: int, batched: bool) -> tuple[Any, Any]:
        full = (self.num_layers, batch, self.hidden_size)
        if hx is None:
            zeros = np.zeros(full, self.dtype)
            return zeros, zeros
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{self!r}: hx must be the pair (h0, c0), got {type(hx).__name__}")
        expected = full if batched else (self.num_layers, self.hidden_size)
        for name, state in zip(("h0", "c0"), hx):
            if _shape(state) != expected:
                raise ShapeError(f"{self!r}: {name} must have shape (num_layers, batch, "
                                 f"hidden_size) = {expected}, got {_shape(state)}")
        return tuple(reshape(state, full) for state in hx)

    def __repr__(self) -> str:
        extra = "".join([f", num_layers={self.num_layers}" if self.num_layers != 1 else "",
                         ", bias=False" if not self.bias else "",
                         ", batch_first=True" if self.batch_first else ""])
        return f"LSTM({self.input_size}, {self.hidden_size}{extra})"


def _layers(state: Any) -> list:
    """The per-layer (B, H) states of a (num_layers, B, H) state, with one backward node."""
    if _shape(state)[0] == 1:
        return [reshape(state, _shape(state)[1:])]
    return list(unstack(state)) if isinstance(state, Tensor) else list(state)


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
