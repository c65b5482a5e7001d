"""Exponentials and logarithms in other bases and near 0 (exp2, expm1, log1p, log2, log10),
log-sum-exp of two arguments (logaddexp, logaddexp2), and the small powers square, reciprocal
and cbrt.

Each is one NumPy ufunc forward and a VJP written in registered ops, reusing the output where
the derivative is a function of it (exp2, expm1, reciprocal, cbrt).
"""

from __future__ import annotations

import math

import numpy as np

from .batch_rules import elementwise
from ..domains import BINARY_CASES, UNARY_CASES, Domain, Real, positive
from ..registry import defop
from .elementwise import exp

__all__ = [
    "log1p", "expm1", "log2", "log10", "exp2", "logaddexp", "logaddexp2", "square",
    "reciprocal", "cbrt",
]

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def _unary(spec=None, complex=True):  # holomorphic: complex inputs need no VJP change
    return Domain((spec or Real(),), UNARY_CASES, kind="elementwise", complex=complex)


log1p = defop("log1p", lambda x: np.log1p(x), lambda g, out, x: (g / (1 + x),),
              _unary(Real(-0.8, 2.0)), doc="""log(1 + x), accurate for small x.

>>> import numpy as np, fungrad as fg
>>> fg.log1p(np.array([1e-10]))
array([1.e-10])
""",
    batch=elementwise)

expm1 = defop("expm1", lambda x: np.expm1(x), lambda g, out, x: (g * (out + 1),), _unary(),
              doc="""exp(x) - 1, accurate for small x.

>>> import numpy as np, fungrad as fg
>>> fg.expm1(np.array([1e-10]))
array([1.e-10])
""",
    batch=elementwise)

log2 = defop("log2", lambda x: np.log2(x), lambda g, out, x: (g / (x * _LN2),),
             _unary(positive()), doc="""The base-2 logarithm.

>>> import numpy as np, fungrad as fg
>>> fg.log2(np.array([8.0]))
array([3.])
""",
    batch=elementwise)

log10 = defop("log10", lambda x: np.log10(x), lambda g, out, x: (g / (x * _LN10),),
              _unary(positive()), doc="""The base-10 logarithm.

>>> import numpy as np, fungrad as fg
>>> fg.log10(np.array([1000.0]))
array([3.])
""",
    batch=elementwise)

exp2 = defop("exp2", lambda x: np.exp2(x), lambda g, out, x: (g * out * _LN2,), _unary(),
             doc="""2 ** x.

>>> import numpy as np, fungrad as fg
>>> fg.exp2(np.array([3.0]))
array([8.])
""",
    batch=elementwise)

logaddexp = defop("logaddexp", lambda x, y: np.logaddexp(x, y), (
    lambda g, out, x, y: g * exp(x - out),
    lambda g, out, x, y: g * exp(y - out),
), Domain((Real(-3.0, 3.0), Real(-3.0, 3.0)), BINARY_CASES, kind="elementwise"),
    doc="""log(exp(x) + exp(y)) without overflow; its gradient is the softmax of (x, y).

>>> import numpy as np, fungrad as fg
>>> fg.logaddexp(np.array([1000.0]), 1000.0).round(4)
array([1000.6931])
""",
    batch=elementwise)

logaddexp2 = defop("logaddexp2", lambda x, y: np.logaddexp2(x, y), (
    lambda g, out, x, y: g * exp2(x - out),
    lambda g, out, x, y: g * exp2(y - out),
), Domain((Real(-3.0, 3.0), Real(-3.0, 3.0)), BINARY_CASES, kind="elementwise"),
    doc="""log2(2**x + 2**y) without overflow.

>>> import numpy as np, fungrad as fg
>>> fg.logaddexp2(np.array([3.0]), 3.0)
array([4.])
""",
    batch=elementwise)

square = defop("square", lambda x: np.square(x), lambda g, out, x: (g * (2 * x),), _unary(),
               doc="""x * x.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.square(x))(3.0)
array(6.)
""",
    batch=elementwise)

reciprocal = defop("reciprocal", lambda x: np.reciprocal(x),
                   lambda g, out, x: (-g * out * out,),
                   _unary(Real(avoid=(0.0,), margin=0.4)), doc="""1 / x (for integers, NumPy's
integer reciprocal).

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.reciprocal(x))(2.0)
array(-0.25)
""",
    batch=elementwise)

cbrt = defop("cbrt", lambda x: np.cbrt(x), lambda g, out, x: (g / (3 * out * out),),
             _unary(Real(avoid=(0.0,), margin=0.3), complex=None),
             doc="""The real cube root (negative for negative x); its derivative is infinite
at 0.

>>> import numpy as np, fungrad as fg
>>> fg.cbrt(np.array([-8.0, 27.0]))
array([-2.,  3.])
""",
    batch=elementwise)
