"""The Euclidean (Frobenius) norm, a primitive for one reason: its gradient at zero.

Composed as ``sqrt(sum(x * x))`` the gradient at ``x = 0`` is ``0 * inf = NaN``; here it is 0
(a subgradient), as in PyTorch. Every other norm of ``numpy.linalg.norm`` is composed from
registered ops in :mod:`fungrad.numpy.linalg`.
"""

from __future__ import annotations

import numpy as np

from .batch_rules import reduction
from ..domains import Domain, Real
from ..errors import DTypeError
from ..registry import defop, unwrap
from .elementwise import conj, is_complex, where
from .reduce import expand_reduced
from .shape import normalize_axes, shape_of

__all__ = ["l2norm"]


def _l2norm(x, axis=None, keepdims=False):
    x = np.asarray(x)
    if x.dtype.kind not in "biufc":
        raise DTypeError(f"l2norm: x must hold numbers, got dtype {x.dtype}")
    if x.dtype.kind not in "fc":
        x = x.astype(np.float64)
    axes = normalize_axes("l2norm", axis, x.ndim)
    if x.dtype.kind == "c":  # sqrt(sum |x|^2): a real norm
        return np.sqrt(np.sum(x.real * x.real + x.imag * x.imag, axis=axes, keepdims=keepdims))
    return np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims))


def _l2norm_vjp(g, out, x, axis=None, keepdims=False):
    shape = shape_of(x)
    norm = expand_reduced(out, shape, axis, keepdims)
    safe = where(unwrap(norm) == 0, 1.0, norm)  # x is 0 there: the gradient is 0, not NaN
    # d|x| = Re(conj(x) dx) / |x|: for complex x the cotangent is conj(x) / |x|
    return (expand_reduced(g, shape, axis, keepdims) * ((conj(x) if is_complex(x) else x) / safe),)


l2norm = defop("l2norm", _l2norm, _l2norm_vjp, Domain((Real(avoid=(0.0,), margin=0.2),), [
    (((3, 4),), {}), (((3, 4),), {"axis": 0}), (((3, 4),), {"axis": 1, "keepdims": True}),
    (((2, 3, 4),), {"axis": (1, 2)}), (((5,),), {}), (((),), {}),
    (((2, 3, 4),), {"axis": (0, 2), "keepdims": True}), (((2, 3, 4),), {"axis": -1}),
], complex=True),
    doc="""sqrt(sum(x ** 2)) over ``axis`` (all axes when None): the Euclidean norm of
    vectors, the Frobenius norm over two axes. Its gradient at x = 0 is 0, not NaN.

    >>> import numpy as np, fungrad as fg
    >>> fg.ops()["l2norm"](np.array([[3.0, 4.0], [0.0, 0.0]]), axis=1)
    array([5., 0.])
    >>> fg.grad(lambda x: fg.ops()["l2norm"](x))(np.zeros(2))
    array([0., 0.])
    """,
    batch=reduction)
