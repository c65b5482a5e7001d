"""The book's layers: Linear, Sequential, Embedding, the activations, and Dropout.

Each forward composes registered ops (``fg.matmul``, ``+``, ``index_select``, ``tanh`` ...),
so gradients, higher-order derivatives and ``fg.grad`` through a layer come from the engine.

>>> import numpy as np, fungrad as fg
>>> from fungrad.nn import Linear, Sequential, Tanh
>>> model = Sequential([Linear(2, 3, rng=0), Tanh(), Linear(3, 1, rng=1)])
>>> model(np.ones((4, 2))).shape
(4, 1)
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np

from ..primitives import affine, embedding_bag, matmul, multiply, relu, reshape, sigmoid, tanh
from ..errors import DTypeError, IndexRangeError, ShapeError
from .. import recording
from ..random import RNGLike, resolve_rng
from .._keywords import hints
from ..tensor import Tensor
from .module import Module

__all__ = ["Linear", "Sequential", "Embedding", "EmbeddingBag", "Tanh", "Sigmoid", "ReLU",
           "Dropout", "Flatten", "Parameter"]


def _shape(x) -> tuple:
    return tuple(np.shape(x.data if isinstance(x, Tensor) else x))


class Linear(Module):
    """``y = x @ weight + bias`` with ``weight`` of shape ``(n_inputs, n_outputs)``.

    Initialised as in the book: ``weight = randn(n_inputs, n_outputs) * sqrt(2 / n_inputs)``
    (drawn from ``rng``, or fungrad's default generator) and ``bias = 0``. Inputs are
    ``(batch, n_inputs)`` or any ``(..., n_inputs)``.

    >>> import numpy as np, fungrad as fg
    >>> lin = fg.nn.Linear(3, 2, rng=np.random.default_rng(0))
    >>> lin.weight.shape, lin.bias.shape, lin(np.ones((5, 3))).shape
    ((3, 2), (2,), (5, 2))
    """

    @hints
    def __init__(self, n_inputs: int, n_outputs: int, bias: bool = True, *,
                 rng: RNGLike = None, dtype: Any = np.float64) -> None:
        self.n_inputs, self.n_outputs = _positive("Linear", n_inputs=n_inputs,
                                                  n_outputs=n_outputs)
        gen = resolve_rng(rng, "Linear")
        w = gen.standard_normal((self.n_inputs, self.n_outputs)) * np.sqrt(2.0 / self.n_inputs)
        self.weight = Tensor(w, autograd=True, dtype=dtype)
        self.bias = Tensor(np.zeros(self.n_outputs), autograd=True, dtype=dtype) if bias else None

    def forward(self, input: Any) -> Tensor:
        """``input @ weight + bias`` for ``input`` of shape ``(..., n_inputs)``."""
        shape = _shape(input)
        if len(shape) < 1 or shape[-1] != self.n_inputs:
            raise ShapeError(f"{self!r}: expected input of shape (batch, {self.n_inputs}), "
                             f"got shape {shape}")
        if self.bias is None:
            return matmul(input, self.weight)
        # the book adds bias.expand(0, len(input)); one fused op gives the same numbers
        return affine(input, self.weight, self.bias)

    def __repr__(self) -> str:
        extra = "" if self.bias is not None else ", bias=False"
        return f"Linear({self.n_inputs}, {self.n_outputs}{extra})"


class Sequential(Module):
    """Layers applied in turn: the book's ``Sequential([...])``, with ``.layers`` and ``add()``.

    The layers may be given as one list (the book's ``Sequential([a, b, c])``) or as separate
    arguments (PyTorch's ``Sequential(a, b, c)``); either way they are kept in ``.layers``, and
    parameters are named ``layers.<i>.<name>``.

    >>> import numpy as np, fungrad as fg
    >>> model = fg.nn.Sequential([fg.nn.Linear(2, 4, rng=0)])
    >>> model.add(fg.nn.ReLU())
    >>> len(model.layers), model(np.ones((1, 2))).shape
    (2, (1, 4))
    >>> fg.nn.Sequential(fg.nn.Linear(2, 4, rng=0), fg.nn.ReLU())
    Sequential([Linear(2, 4), ReLU()])
    """

    @hints
    def __init__(self, *layers: Module | Iterable[Module] | None) -> None:
        self.layers = _layer_list(layers)
        for i, layer in enumerate(self.layers):
            _check_layer(layer, i)

    def add(self, layer: Module) -> None:
        """Append a layer (the book's method).

        >>> import fungrad as fg
        >>> model = fg.nn.Sequential()
        >>> model.add(fg.nn.Tanh())
        >>> model
        Sequential([Tanh()])
        """
        _check_layer(layer, len(self.layers))
        self.layers.append(layer)

    def forward(self, input: Any) -> Any:
        """Each layer's ``forward`` applied in turn to ``input``."""
        for layer in self.layers:
            input = layer.forward(input)
        return input

    def __len__(self) -> int:
        """The number of layers."""
        return len(self.layers)

    def __getitem__(self, i: int) -> Module:
        """The ``i``-th layer."""
        return self.layers[i]

    def __iter__(self) -> Iterator[Module]:
        """The layers, in order."""
        return iter(self.layers)

    def __repr__(self) -> str:
        return "Sequential([" + ", ".join(repr(layer) for layer in self.layers) + "])"


def _layer_list(args: tuple) -> list:
    """``(a, b, c)`` or ``([a, b, c],)`` (or ``()``/``(None,)``) as a list of layers."""
    if len(args) == 1 and args[0] is None:
        return []
    if len(args) == 1 and not callable(getattr(args[0], "forward", None)):
        try:
            return list(args[0])  # the book's Sequential([a, b, c])
        except TypeError:
            pass  # not iterable either: _check_layer names it
    elif any(isinstance(a, (list, tuple)) for a in args):
        raise TypeError("Sequential: pass the layers as one list, Sequential([a, b]) (the "
                        "book's form), or as separate arguments, Sequential(a, b) (PyTorch's), "
                        f"not a mix; got {len(args)} arguments: "
                        + ", ".join(type(a).__name__ for a in args))
    return list(args)


def _check_layer(layer, i: int) -> None:
    if not callable(getattr(layer, "forward", None)):
        raise TypeError(f"Sequential: layer {i} is a {type(layer).__name__}, expected a Module "
                        "with a forward() method")


class Embedding(Module):
    """Rows of ``weight`` (``(vocab_size, dim)``) picked by integer ids: the book's lookup.

    Initialised as in the book (word2vec's convention): ``(rand(vocab_size, dim) - 0.5) / dim``.
    The ids may have any shape; the output has shape ``ids.shape + (dim,)``.

    >>> import numpy as np, fungrad as fg
    >>> emb = fg.nn.Embedding(5, 3, rng=0)
    >>> emb(np.array([1, 2, 1])).shape
    (3, 3)
    """

    @hints
    def __init__(self, vocab_size: int, dim: int, *, rng: RNGLike = None,
                 dtype: Any = np.float64) -> None:
        self.vocab_size, self.dim = _positive("Embedding", vocab_size=vocab_size, dim=dim)
        gen = resolve_rng(rng, "Embedding")
        w = (gen.random((self.vocab_size, self.dim)) - 0.5) / self.dim
        self.weight = Tensor(w, autograd=True, dtype=dtype)

    def forward(self, input: Any) -> Tensor:
        """The rows of ``weight`` at the integer ids ``input``: shape ``ids.shape + (dim,)``."""
        ids = input.data if isinstance(input, Tensor) else input
        hook = recording.thread.hook
        if hook is not None and type(ids) is hook.traced_type:
            hook.check(self._check_ids, ids, bounds=(0, self.vocab_size))  # fg.jit: at every call
        else:
            ids = self._check_ids(np.asarray(ids))
        return self.weight.index_select(ids)

    def _check_ids(self, ids: np.ndarray) -> np.ndarray:
        if ids.dtype.kind not in "iu":
            raise DTypeError(f"{self!r}: expected integer ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise IndexRangeError(f"{self!r}: id {bad} is out of range "
                                  f"(valid: 0..{self.vocab_size - 1})")
        return ids

    def __repr__(self) -> str:
        return f"Embedding({self.vocab_size}, {self.dim})"


class EmbeddingBag(Module):
    """Sums (``mode="sum"``) or means (``mode="mean"``, PyTorch's default) of embedding rows:
    ids ``(..., L)`` give ``(..., dim)``, one row per bag of ``L`` ids, in one fused op.

    The same numbers as ``Embedding(...)(ids).sum(-2)`` (or ``.mean(-2)``), without the
    ``(..., L, dim)`` intermediate; the table's gradient is scattered straight from each bag.
    Ids are checked once, by the op: valid ids are ``-vocab_size..vocab_size - 1`` (negative
    ids count from the end, as in ``index_select``). Initialised like :class:`Embedding`.

    >>> import numpy as np, fungrad as fg
    >>> bag = fg.nn.EmbeddingBag(5, 3, mode="sum", rng=0)
    >>> ids = np.array([[1, 2, 2], [0, 4, 1]])
    >>> out = bag(ids)
    >>> out.shape, bool(np.allclose(out.data, bag.weight.data[ids].sum(1)))
    ((2, 3), True)
    """

    @hints
    def __init__(self, vocab_size: int, dim: int, mode: str = "mean", *, rng: RNGLike = None,
                 dtype: Any = np.float64) -> None:
        self.vocab_size, self.dim = _positive("EmbeddingBag", vocab_size=vocab_size, dim=dim)
        if mode not in ("sum", "mean"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum' or 'mean', got {mode!r}")
        self.mode = mode
        gen = resolve_rng(rng, "EmbeddingBag")
        w = (gen.random((self.vocab_size, self.dim)) - 0.5) / self.dim
        self.weight = Tensor(w, autograd=True, dtype=dtype)

    def forward(self, input: Any) -> Tensor:
        """One row per bag: integer ids ``(..., L)`` give ``(..., dim)``."""
        ids = np.asarray(input.data if isinstance(input, Tensor) else input)
        if ids.dtype.kind not in "iu":
            raise DTypeError(f"{self!r}: expected integer ids, got dtype {ids.dtype}")
        if ids.ndim < 1:
            raise ShapeError(f"{self!r}: expected ids of shape (..., bag length), got a 0-d "
                             "array")
        return embedding_bag(self.weight, ids, mode=self.mode)

    def __repr__(self) -> str:
        return f"EmbeddingBag({self.vocab_size}, {self.dim}, mode={self.mode!r})"


class Tanh(Module):
    """``tanh(input)``, as a layer.

    >>> import fungrad as fg
    >>> fg.nn.Tanh()(fg.Tensor([0.0, 100.0]))
    array([0., 1.])
    """

    def forward(self, input: Any) -> Tensor:
        """Elementwise ``tanh(input)``."""
        return tanh(input)


class Sigmoid(Module):
    """``1 / (1 + exp(-input))``, as a layer.

    >>> import fungrad as fg
    >>> fg.nn.Sigmoid()(fg.Tensor([0.0]))
    array([0.5])
    """

    def forward(self, input: Any) -> Tensor:
        """Elementwise ``1 / (1 + exp(-input))``."""
        return sigmoid(input)


class ReLU(Module):
    """``max(input, 0)``, as a layer.

    >>> import fungrad as fg
    >>> fg.nn.ReLU()(fg.Tensor([-1.0, 2.0]))
    array([0., 2.])
    """

    def forward(self, input: Any) -> Tensor:
        """Elementwise ``max(input, 0)``."""
        return relu(input)


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scaling the rest by ``1/(1-p)``.

    In evaluation mode (``model.eval()``) it is the identity. Masks are drawn from ``rng``, or
    from fungrad's default generator at call time.

    >>> import numpy as np, fungrad as fg
    >>> drop = fg.nn.Dropout(0.5, rng=0)
    >>> sorted(set(drop(np.ones(8)).data.tolist()))
    [0.0, 2.0]
    >>> drop.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    @hints
    def __init__(self, p: float = 0.5, *, rng: RNGLike = None) -> None:
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)
        self._rng = None if rng is None else resolve_rng(rng, "Dropout")

    def forward(self, input: Any) -> Any:
        """``input`` with a fresh random mask in training mode; ``input`` itself in eval mode."""
        if not self.training or self.p == 0.0:
            return input
        data = input.data if isinstance(input, Tensor) else input
        if not hasattr(data, "dtype"):
            data = np.asarray(data)
        dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float64)
        gen = resolve_rng(self._rng)  # (under fg.jit, a stand-in whose draws are program steps)
        keep = gen.random(_shape(input)) >= self.p
        return multiply(input, (keep / (1.0 - self.p)).astype(dtype))

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class Flatten(Module):
    """Merge the axes ``start_dim`` to ``end_dim`` into one (PyTorch's ``nn.Flatten``: by
    default every axis but the batch axis).

    >>> import numpy as np, fungrad as fg
    >>> fg.nn.Flatten()(np.zeros((8, 3, 4, 4))).shape
    (8, 48)
    >>> fg.nn.Flatten(0, 1)(np.zeros((8, 3, 4))).shape
    (24, 4)
    """

    @hints
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, input: Any) -> Any:
        """``input`` reshaped, with axes ``start_dim..end_dim`` merged."""
        shape = _shape(input)
        nd = max(len(shape), 1)
        lo, hi = self.start_dim % nd, self.end_dim % nd
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd) or lo > hi:
            raise ShapeError(f"{self!r}: cannot merge axes {self.start_dim}..{self.end_dim} of "
                             f"an input of shape {shape}")
        merged = int(np.prod(shape[lo:hi + 1], dtype=np.int64))
        return reshape(input, shape=shape[:lo] + (merged,) + shape[hi + 1:])

    def __repr__(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"


class Parameter(Tensor):
    """A Tensor that requires grad, as PyTorch's ``nn.Parameter``: a module that holds one
    as an attribute lists it in ``parameters()``. (Any leaf Tensor with ``autograd=True``
    held by a module is a parameter; this class only spells it PyTorch's way.)

    >>> import numpy as np, fungrad as fg
    >>> class Scale(fg.nn.Module):
    ...     def __init__(self):
    ...         self.s = fg.nn.Parameter(np.ones(2))
    ...     def forward(self, x):
    ...         return x * self.s
    >>> [n for n, _ in Scale().named_parameters()]
    ['s']
    """

    __slots__ = ()

    @hints
    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, autograd=requires_grad)


def _positive(layer: str, **sizes) -> tuple[int, ...]:
    out = []
    for name, n in sizes.items():
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {n!r}")
        out.append(int(n))
    return tuple(out)
