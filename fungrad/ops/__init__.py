"""The built-in ops, one module per family. Importing this package registers them all.

The package is also callable: ``fungrad.ops()`` is the registry (every registered op by name),
so ``fg.ops()`` and ``import fungrad.ops.linalg`` both work.
"""

import sys as _sys
import types as _types

from .elementwise import (
    abs, add, astype, clip, copy, cos, divide, exp, identity, log, maximum, minimum, multiply,
    negative, power, relu, sigmoid, sign, sin, softplus, sqrt, subtract, tanh, where,
)
from .indexing import getitem, index_select, scatter_add, scatter_index
from .linalg import matmul, mm
from .nn import cross_entropy, cross_entropy_grad, mse
from .recurrent import lstm_cell, lstm_cell_grad
from .reduce import log_softmax, logsumexp, max, mean, min, softmax, sum, var
from .shape import (
    broadcast_to, concatenate, expand, expand_dims, reshape, squeeze, stack, sum_to, transpose,
)

__all__ = [
    "abs", "add", "astype", "broadcast_to", "clip", "concatenate", "copy", "cos", "cross_entropy",
    "cross_entropy_grad", "divide", "exp", "expand", "expand_dims", "getitem", "identity",
    "index_select",
    "log", "log_softmax", "lstm_cell", "lstm_cell_grad", "logsumexp", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mm",
    "mse", "multiply", "negative", "power", "relu", "reshape", "scatter_add", "scatter_index",
    "sigmoid", "sign", "sin", "softmax", "softplus", "sqrt", "squeeze", "stack", "subtract", "sum",
    "sum_to", "tanh", "transpose", "var", "where",
]


class _CallableModule(_types.ModuleType):
    """``fungrad.ops()`` returns the registry; attribute access is the package's as usual."""

    def __call__(self):
        from ..registry import ops as registry_ops

        return registry_ops()


_sys.modules[__name__].__class__ = _CallableModule
