"""The built-in ops (each a primitive: a forward and its own derivative rules), one module per
family. Importing this package registers them all; ``fg.ops()`` lists the registry.
"""

from ..registry import Op as _Op

from .elementwise import (
    abs, add, astype, clip, copy, cos, divide, exp, identity, log, maximum, minimum, multiply,
    negative, power, relu, sigmoid, sign, sin, softplus, sqrt, subtract, tanh, where,
)
from .indexing import getitem, index_select, scatter_add, scatter_index
from .linalg import matmul, mm
from .decompositions import cholesky, eig, eigh, qr, svd  # linear algebra: one block
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
# complex numbers
from .elementwise import angle, real_if_close
from . import spectral  # noqa: F401 (registers fungrad.numpy.fft's ops; not top-level names)
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
# shape ops and products for fungrad.numpy
from .manipulation import diag_embed, diagonal, pad, roll
from .products import einsum
from .shape import split, split_into
# fused ops for fewer ops per training step
from .fused import affine, embedding_bag, embedding_bag_grad
from .lstm_sequence import lstm_sequence, lstm_sequence_grad
from .unstack import unstack

# the public ops: fungrad re-exports these as fg.<name>; the rest (the transposes and kernel
# ops that VJPs use, and helpers) stay importable from here but are not the public surface
_INTERNAL = {"cross_entropy_grad", "identity", "lstm_cell_grad", "scatter_add", "scatter_index",
             "embedding_bag_grad", "lstm_sequence_grad"}
__all__ = sorted(
    name for name, value in list(globals().items())
    if not name.startswith("_") and name not in _INTERNAL and isinstance(value, _Op)
)

