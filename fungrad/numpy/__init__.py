"""NumPy's namespace, differentiable: ``import fungrad.numpy as fnp``.

A program written against ``numpy`` runs with only its import line changed, and differentiates
everywhere it can: ``fnp.tanh``, ``fnp.sum``, ``fnp.dot``, ``fnp.linalg.norm`` ... are registered
fungrad ops behind NumPy's names, signatures and keywords. They take ndarrays (and then return
ndarrays, recording nothing) or Tensors (and return Tensors), and compose under ``fg.grad`` to
any order. What has no derivative (array creation, ``random``, comparisons and logic,
``argmax``, dtypes, ``shape``, ``allclose``, constants such as ``pi``) is NumPy's own, made to
accept Tensors. The same functions are what NumPy itself calls for Tensors (``np.tanh(t)``),
through ``Tensor.__array_ufunc__`` and ``Tensor.__array_function__``.

A NumPy function fungrad has no differentiable version of raises a TypeError when it is called
on a Tensor that requires grad, rather than silently dropping the gradient.

>>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
>>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
>>> f = lambda w: fnp.sum(fnp.tanh(fnp.matmul(X, w)) ** 2)
>>> fg.grad(f)(np.array([0.1, -0.2])).round(4)
array([-2.7138, -3.9738])
"""

from __future__ import annotations

import sys as _sys

import numpy as _np

from . import _passthrough  # noqa: F401 (registers NumPy's non-differentiable functions)
from . import linalg  # noqa: F401 (fnp.linalg, and np.linalg.X on Tensors)
from . import fft  # noqa: F401 (fnp.fft, and np.fft.X on Tensors)
from ._reductions import *  # noqa: F403
from ._reductions import __all__ as _reductions_all
from ._scans import *  # noqa: F403
from ._scans import __all__ as _scans_all
from ._shape import *  # noqa: F403
from ._shape import __all__ as _shape_all
from ._ufuncs import *  # noqa: F403
from ._ufuncs import __all__ as _ufuncs_all
from ._joining import *  # noqa: F403  (shape functions and products)
from ._joining import __all__ as _joining_all
from ._products import *  # noqa: F403
from ._products import __all__ as _products_all
from ._rearrange import *  # noqa: F403
from ._rearrange import __all__ as _rearrange_all
from ._selection import *  # noqa: F403
from ._selection import __all__ as _selection_all
from ._statistics import *  # noqa: F403
from ._nanreductions import *  # noqa: F403
from ._nanreductions import __all__ as _nanreductions_all
from ._statistics import __all__ as _statistics_all

random = _np.random  # draws have no derivative: NumPy's own module, under both spellings
_sys.modules.setdefault(__name__ + ".random", random)  # import fungrad.numpy.random as npr
__all__ = sorted(set(_ufuncs_all + _reductions_all + _scans_all + _shape_all + _joining_all
                     + _products_all + _rearrange_all + _selection_all
                     + _statistics_all + _nanreductions_all)) + ["random"]


def __getattr__(name: str):
    # everything fungrad does not define is NumPy's own (dtypes, constants, creation, ...)
    try:
        return getattr(_np, name)
    except AttributeError:
        raise AttributeError(f"module 'fungrad.numpy' (and numpy) has no attribute "
                             f"{name!r}") from None


def __dir__() -> list[str]:
    # what tab completion should offer: our functions and NumPy's, not our helpers
    return sorted(set(__all__) | {n for n in dir(_np) if not n.startswith("_")})
