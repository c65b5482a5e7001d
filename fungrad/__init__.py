"""fungrad: automatic differentiation on NumPy arrays, accelerated with Numba.

Three ways to use it, which mix freely:

* Tensors, the object style of *Grokking Deep Learning* chapter 13: ``fg.Tensor(data,
  autograd=True)``, operators and methods (``t.mm(u)``, ``t.tanh()``, ``t.sum(0)``...),
  ``loss.backward()``, then ``t.grad``. See ``help(fungrad.Tensor)``.
* Transformations in the style of JAX: ``fg.grad``, ``fg.value_and_grad``, ``fg.vjp``,
  ``fg.jvp``, ``fg.jacobian`` (``fg.jacrev``, ``fg.jacfwd``) and ``fg.hessian`` differentiate
  plain functions of ndarrays and of nested dicts, lists and tuples of them, to any order
  (``fg.grad(fg.grad(f))``); ``fg.vmap`` maps a function over a batch axis, running it once
  (``fg.vmap(fg.grad(loss), in_axes=(None, 0, 0))``: per-example gradients).
* Ops as functions: ``fg.tanh``, ``fg.matmul``, ``fg.sum(x, axis=0)``, ``fg.cross_entropy``...
  (NumPy's names and keywords) take Tensors, arrays or numbers; a Tensor in gives a recorded
  Tensor out, arrays give an array. ``fg.ops()`` lists every op with its metadata, and
  ``fg.defop(name, forward, vjp)`` adds one of yours that then works everywhere.

Where to look next:

=======================  ==========================================================================
``fungrad.nn``           layers and losses: ``Module`` (the book's ``Layer``), ``Linear``,
                         ``Sequential``, ``Embedding``, ``RNNCell``, ``LSTMCell``, ``Dropout``...
``fungrad.optim``        ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``clip_grad_norm``, and
                         ``lr_scheduler`` (``StepLR``, ``CosineAnnealingLR``, ``LambdaLR``)
``fg.save``, ``fg.load`` checkpoints as ``.npz`` without pickle
``fungrad.testing``      ``check_grads`` against finite differences, Hypothesis strategies, and
                         ``properties.check_op`` to verify an op of your own
``fungrad.numpy``        NumPy's namespace mapped onto fungrad's ops
``fg.jit``               a training step traced once and run as compiled Numba code
``fg.scan``              a loop as one differentiable op (also ``fori_loop``, ``while_loop``);
                         ``fg.checkpoint`` recomputes instead of keeping (``fungrad.control``)
``fungrad.distributed``  data-parallel training over MPI (mpi4py); one process without it
``fungrad.errors``       fungrad's exceptions: ``FungradError`` and its subclasses, each also a
                         built-in type (``ShapeError`` is a ``ValueError``...)
``fungrad.typing``       types for annotations: ``Array``, ``ArrayLike``, ``JittedFunction``
=======================  ==========================================================================

PyTorch's spellings work too: ``fg.tensor(data, requires_grad=True)``, ``fg.cat``, ``t.view``,
``t.float()``, ``sum(dim=1, keepdim=True)``, ``nn.Parameter``...

Also: ``fg.no_grad()``, ``fg.detect_anomaly()`` (a NaN or inf raises, naming the op),
``fg.manual_seed(seed)`` (layers' default random generator). Compiled kernels are cached in
``$FUNGRAD_CACHE_DIR`` or the user's cache directory (``~/.cache/fungrad`` on Linux). The README
has the set-up, a tour, the examples and the design notes; the documentation site (the
README's "Documentation") has the guides and the API reference.

>>> import numpy as np, fungrad as fg
>>> x = fg.Tensor(np.array([1.0, 2.0]), autograd=True)
>>> fg.sum(fg.tanh(x)).backward()
>>> x.grad.data.round(4)
array([0.42  , 0.0707])
>>> fg.grad(lambda w: fg.sum(w ** 3))(np.array([1.0, 2.0]))
array([ 3., 12.])
"""

from __future__ import annotations

from . import _tensor_methods  # noqa: F401 (first: attaches Tensor's operators and methods)
from . import errors
from .functional import (
    elementwise_grad, grad, hessian, holomorphic_grad, hvp, jacfwd, jacobian, jacrev, jvp,
    value_and_grad, vjp, vmap,
)
from . import primitives
from .primitives import *  # noqa: F403 (every public op: fg.tanh, fg.einsum, fg.svd, ...)
from .registry import Op, defop, ops
from .recording import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .tensor import Tensor
from ._pytorch_names import cat, tensor
from . import nn, optim
from .io import load, save
from .random import manual_seed
from . import numpy  # registers the implementations NumPy's protocols dispatch to
from .numpy import linalg
from . import misc, tree
from .control import checkpoint, fori_loop, scan, while_loop
from .jit import jit  # the function; the package stays reachable as fungrad.jit's modules

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Op", "defop", "ops", "errors", "numpy", "linalg", "misc", "tree", "jit",
    "nn", "optim", "save", "load", "manual_seed", "tensor", "cat",
    "grad", "value_and_grad", "vjp", "jvp", "jacobian", "jacrev", "jacfwd", "hessian", "hvp",
    "elementwise_grad", "vmap", "holomorphic_grad",
    "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
    "scan", "fori_loop", "while_loop", "checkpoint",
    *primitives.__all__,
]

_LAZY = {"distributed": "fungrad.distributed"}  # imported on first use: import fungrad stays fast


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module 'fungrad' has no attribute {name!r}")
