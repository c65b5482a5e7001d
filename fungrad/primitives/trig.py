"""Trigonometric and hyperbolic ops, their inverses, hypot, sinc and angle conversions.

Each is one NumPy ufunc forward and a VJP written in registered ops, so it differentiates again.
Domains keep test inputs inside each function's smooth region (|x| < 1 for arcsin, x > 1 for
arccosh, away from arctan2's branch cut and hypot's cone point).
"""

from __future__ import annotations

import math

import numpy as np

from .batch_rules import elementwise
from ..domains import BINARY_CASES, UNARY_CASES, Domain, Real
from ..registry import defop, unwrap
from .elementwise import cos, is_complex, sqrt, where

__all__ = [
    "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh",
    "arctanh", "hypot", "sinc", "deg2rad", "rad2deg",
]


def _unary(spec=None, complex=True):  # holomorphic: complex inputs need no VJP change
    return Domain((spec or Real(),), UNARY_CASES, kind="elementwise", complex=complex)


_INSIDE_UNIT = Real(-0.9, 0.9)

tan = defop("tan", lambda x: np.tan(x), lambda g, out, x: (g * (1 + out * out),),
            _unary(Real(-1.2, 1.2)), doc="""The tangent (radians); its derivative is
1 + tan(x) ** 2.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.tan(x))(0.0)
array(1.)
""",
    batch=elementwise)

arcsin = defop("arcsin", lambda x: np.arcsin(x), lambda g, out, x: (g / sqrt(1 - x * x),),
               _unary(_INSIDE_UNIT), doc="""The inverse sine, in [-pi/2, pi/2].

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.arcsin(x))(0.6).round(4)
np.float64(1.25)
""",
    batch=elementwise)

arccos = defop("arccos", lambda x: np.arccos(x), lambda g, out, x: (-g / sqrt(1 - x * x),),
               _unary(_INSIDE_UNIT), doc="""The inverse cosine, in [0, pi].

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.arccos(x))(0.6).round(4)
np.float64(-1.25)
""",
    batch=elementwise)

arctan = defop("arctan", lambda x: np.arctan(x), lambda g, out, x: (g / (1 + x * x),),
               _unary(), doc="""The inverse tangent, in (-pi/2, pi/2).

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.arctan(x))(1.0)
array(0.5)
""",
    batch=elementwise)


def _arctan2_dy(g, out, y, x):
    return g * x / (x * x + y * y)


def _arctan2_dx(g, out, y, x):
    return -g * y / (x * x + y * y)


arctan2 = defop("arctan2", lambda y, x: np.arctan2(y, x), (_arctan2_dy, _arctan2_dx),
                Domain((Real(avoid=(0.0,), margin=0.2), Real()), BINARY_CASES,
                       kind="elementwise"),
                doc="""The angle of the point (x, y), in [-pi, pi] (arguments in NumPy's order:
``arctan2(y, x)``). Its gradient is (x, -y) / (x**2 + y**2); the angle jumps across the negative
x axis.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda y, x: fg.arctan2(y, x), argnums=(0, 1))(1.0, 1.0)
(array(0.5), array(-0.5))
""",
    batch=elementwise)

sinh = defop("sinh", lambda x: np.sinh(x), lambda g, out, x: (g * cosh(x),), _unary(),
             doc="""The hyperbolic sine; its derivative is cosh(x).

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.sinh(x))(0.0)
array(1.)
""",
    batch=elementwise)

cosh = defop("cosh", lambda x: np.cosh(x), lambda g, out, x: (g * sinh(x),), _unary(),
             doc="""The hyperbolic cosine; its derivative is sinh(x).

>>> import numpy as np, fungrad as fg
>>> fg.cosh(np.array([0.0]))
array([1.])
""",
    batch=elementwise)

arcsinh = defop("arcsinh", lambda x: np.arcsinh(x),
                lambda g, out, x: (g / sqrt(x * x + 1),), _unary(),
                doc="""The inverse hyperbolic sine.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.arcsinh(x))(0.0)
array(1.)
""",
    batch=elementwise)

def _arccosh_vjp(g, out, x):
    if is_complex(x):  # sqrt(z - 1) sqrt(z + 1): NumPy's branch cut, (-inf, 1), everywhere
        return (g / (sqrt(x - 1) * sqrt(x + 1)),)
    return (g / sqrt(x * x - 1),)


arccosh = defop("arccosh", lambda x: np.arccosh(x), _arccosh_vjp, _unary(Real(1.2, 3.0)),
                doc="""The inverse hyperbolic cosine, for x >= 1.

>>> import numpy as np, fungrad as fg
>>> fg.arccosh(np.array([1.0]))
array([0.])
""",
    batch=elementwise)

arctanh = defop("arctanh", lambda x: np.arctanh(x), lambda g, out, x: (g / (1 - x * x),),
                _unary(_INSIDE_UNIT), doc="""The inverse hyperbolic tangent, for |x| < 1.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.arctanh(x))(0.5).round(4)
np.float64(1.3333)
""",
    batch=elementwise)

hypot = defop("hypot", lambda x, y: np.hypot(x, y), (
    lambda g, out, x, y: g * x / out,
    lambda g, out, x, y: g * y / out,
), Domain((Real(avoid=(0.0,), margin=0.2), Real()), BINARY_CASES, kind="elementwise"),
    doc="""sqrt(x**2 + y**2) without overflow; its gradient is (x, y) / hypot(x, y).

>>> import numpy as np, fungrad as fg
>>> fg.hypot(np.array([3.0]), 4.0)
array([5.])
""",
    batch=elementwise)

# sinc'(x) = (cos(pi x) - sinc(x)) / x cancels near 0: there its Maclaurin series is used
# (error below 1e-12 for |x| < 0.05), which also makes every derivative at 0 exact.
_SINC_NEAR = 0.05
_PI2 = math.pi ** 2
_SINC_SERIES = (-_PI2 / 3, _PI2 ** 2 / 30, -_PI2 ** 3 / 840, _PI2 ** 4 / 45360)


def _sinc_slope(x, out):
    near = np.abs(unwrap(x)) < _SINC_NEAR
    safe = where(near, 1.0, x)
    far = (cos(math.pi * safe) - out) / safe
    x2 = x * x
    c1, c2, c3, c4 = _SINC_SERIES
    series = x * (c1 + x2 * (c2 + x2 * (c3 + x2 * c4)))
    return where(near, series, far)


sinc = defop("sinc", lambda x: np.sinc(x), lambda g, out, x: (g * _sinc_slope(x, out),),
             _unary(), doc="""The normalised sinc, sin(pi x) / (pi x), with sinc(0) = 1 (as
numpy.sinc). Its derivatives are exact at 0 too.

>>> import numpy as np, fungrad as fg
>>> fg.sinc(np.array([0.0, 0.5])).round(4)
array([1.    , 0.6366])
>>> fg.grad(fg.grad(fg.sinc))(0.0).round(4)
np.float64(-3.2899)
""",
    batch=elementwise)

_RAD_PER_DEG = math.pi / 180.0
_DEG_PER_RAD = 180.0 / math.pi

deg2rad = defop("deg2rad", lambda x: np.deg2rad(x), lambda g, out, x: (g * _RAD_PER_DEG,),
                _unary(complex=None), doc="""Degrees to radians (NumPy's ``radians`` too).

>>> import numpy as np, fungrad as fg
>>> fg.deg2rad(np.array([180.0])).round(4)
array([3.1416])
""",
    batch=elementwise)

rad2deg = defop("rad2deg", lambda x: np.rad2deg(x), lambda g, out, x: (g * _DEG_PER_RAD,),
                _unary(complex=None), doc="""Radians to degrees (NumPy's ``degrees`` too).

>>> import numpy as np, fungrad as fg
>>> fg.rad2deg(np.array([np.pi]))
array([180.])
""",
    batch=elementwise)
