"""fungrad: automatic differentiation on NumPy arrays, accelerated with Numba.

>>> import numpy as np, fungrad as fg
>>> x = fg.Tensor(np.array([1.0, 2.0]), autograd=True)
>>> fg.sum(fg.tanh(x)).backward()
>>> x.grad.data.round(4)
array([0.42  , 0.0707])
>>> fg.grad(lambda w: fg.sum(w ** 3))(np.array([1.0, 2.0]))
array([ 3., 12.])
"""

from __future__ import annotations

from . import errors
from .functional import (
    elementwise_grad, grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp,
)
from .ops import (
    abs, add, astype, broadcast_to, clip, concatenate, copy, cos, cross_entropy, divide, exp,
    expand, expand_dims, getitem, index_select, log, log_softmax, logsumexp, lstm_cell, matmul, max,
    maximum, mean, min, minimum, mm, mse, multiply, negative, power, relu, reshape, sigmoid, sign,
    sin, softmax, softplus, sqrt, squeeze, stack, subtract, sum, sum_to, tanh, transpose, var,
    where,
)
from . import ops
from .registry import Op, defop
from .tape import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .tensor import Tensor
from . import nn, optim
from .io import load, save
from .random import manual_seed
from . import numpy  # noqa: E402 (registers the NumPy-protocol implementations)
from . import misc, tree

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Op", "defop", "ops", "errors", "numpy", "misc", "tree",
    "nn", "optim", "save", "load", "manual_seed",
    "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "elementwise_grad",
    "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
    "abs", "add", "astype", "broadcast_to", "clip", "concatenate", "copy", "cos", "cross_entropy",
    "divide", "exp", "expand", "expand_dims", "getitem", "index_select", "log", "log_softmax",
    "lstm_cell",
    "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum", "mm", "mse", "multiply",
    "negative", "power", "relu", "reshape", "sigmoid", "sign", "sin", "softmax", "softplus",
    "sqrt", "squeeze", "stack", "subtract", "sum", "sum_to", "tanh", "transpose", "var", "where",
]
