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
from .decompositions import cholesky, eigh, qr, svd  # linear algebra: one block
from .norms import l2norm
from .solvers import det, inv, pinv, slogdet, solve
from .nn import cross_entropy, cross_entropy_grad, mse
from .recurrent import lstm_cell, lstm_cell_grad
from .reduce import log_softmax, logsumexp, max, mean, min, softmax, sum, var
from .shape import (
    broadcast_to, concatenate, expand, expand_dims, reshape, squeeze, stack, sum_to, transpose,
)
# -- fungrad.numpy math: elementwise, reductions, scans --
from .elementwise import conj, fmax, fmin, imag, integer_pow, nan_to_num, real
from .explog import (
    cbrt, exp2, expm1, log1p, log2, log10, logaddexp, logaddexp2, reciprocal, square,
)
from .reduce import prod, std
from .rounding import ceil, floor, fmod, mod, rint, round, trunc
from .scan import cumprod, cumsum
from .trig import (
    arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, cosh, deg2rad, hypot, rad2deg,
    sinc, sinh, tan,
)
# shape ops and products for fungrad.numpy (issue 9)
from .manipulation import diag_embed, diagonal, pad, roll
from .products import einsum
from .shape import split, split_into

__all__ = [
    "abs", "add", "astype", "broadcast_to", "clip", "concatenate", "copy", "cos", "cross_entropy",
    "cross_entropy_grad", "divide", "exp", "expand", "expand_dims", "getitem", "identity",
    "index_select",
    "log", "log_softmax", "lstm_cell", "lstm_cell_grad", "logsumexp", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mm",
    "mse", "multiply", "negative", "power", "relu", "reshape", "scatter_add", "scatter_index",
    "sigmoid", "sign", "sin", "softmax", "softplus", "sqrt", "squeeze", "stack", "subtract", "sum",
    "sum_to", "tanh", "transpose", "var", "where",
    # shape ops and products for fungrad.numpy (issue 9)
    "diag_embed", "diagonal", "einsum", "pad", "roll", "split", "split_into",
]
__all__ += [  # fungrad.numpy math
    "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "cbrt", "ceil",
    "conj", "cosh", "cumprod", "cumsum", "deg2rad", "exp2", "expm1", "floor", "fmax", "fmin",
    "fmod", "hypot", "imag", "integer_pow", "log10", "log1p", "log2", "logaddexp", "logaddexp2",
    "mod", "nan_to_num", "prod", "rad2deg", "real", "reciprocal", "rint", "round", "sinc",
    "sinh", "square", "std", "tan", "trunc",
]
__all__ += ["cholesky", "det", "eigh", "inv", "l2norm", "pinv", "qr", "slogdet", "solve", "svd"]


class _CallableModule(_types.ModuleType):
    """``fungrad.ops()`` returns the registry; attribute access is the package's as usual."""

    def __call__(self):
        from ..registry import ops as registry_ops

        return registry_ops()


_sys.modules[__name__].__class__ = _CallableModule
