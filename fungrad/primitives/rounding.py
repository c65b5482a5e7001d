"""Rounding (floor, ceil, round, rint, trunc) and remainders (mod, fmod).

Rounding is piecewise constant, so its derivative is zero; these ops still record a node, as
``sign`` does, so that a graph through them stays connected and its gradient is an exact zero
rather than a missing one. The remainders are piecewise linear: ``mod(x, y) = x - q * y`` with
the integer quotient ``q`` NumPy used (floor for ``mod``, truncation for ``fmod``), so their
gradient is ``1`` for x and ``-q`` for y. Test inputs stay away from the jumps.
"""

from __future__ import annotations

import numpy as np

from .batch_rules import elementwise
from ..domains import BINARY_CASES, UNARY_CASES, Domain, Real
from ..registry import defop, unwrap

__all__ = ["floor", "ceil", "round", "rint", "trunc", "mod", "fmod"]

# every jump of floor, ceil, trunc, rint and round(decimals <= 1) in [-2, 2] is a multiple of
# 0.05: draw inputs at least 0.01 away from all of them
_OFF_JUMPS = Real(-2.0, 2.0, avoid=tuple(round(k * 0.05, 2) for k in range(-40, 41)),
                  margin=0.01)
_ROUNDING = Domain((_OFF_JUMPS,), UNARY_CASES, kind="elementwise")


def _zero(g, out, x, **params):
    return (g * 0,)


floor = defop("floor", lambda x: np.floor(x), _zero, _ROUNDING,
              doc="""The largest integer <= x; its gradient is zero.

>>> import numpy as np, fungrad as fg
>>> fg.floor(np.array([-1.5, 1.5]))
array([-2.,  1.])
""",
    batch=elementwise)

ceil = defop("ceil", lambda x: np.ceil(x), _zero, _ROUNDING,
             doc="""The smallest integer >= x; its gradient is zero.

>>> import numpy as np, fungrad as fg
>>> fg.ceil(np.array([-1.5, 1.5]))
array([-1.,  2.])
""",
    batch=elementwise)

trunc = defop("trunc", lambda x: np.trunc(x), _zero, _ROUNDING,
              doc="""x rounded towards zero (NumPy's ``fix`` too); its gradient is zero.

>>> import numpy as np, fungrad as fg
>>> fg.trunc(np.array([-1.5, 1.5]))
array([-1.,  1.])
""",
    batch=elementwise)

rint = defop("rint", lambda x: np.rint(x), _zero, _ROUNDING,
             doc="""x rounded to the nearest integer (halves to even); its gradient is zero.

>>> import numpy as np, fungrad as fg
>>> fg.rint(np.array([0.5, 1.5, 2.7]))
array([0., 2., 3.])
""",
    batch=elementwise)


def _round(x, decimals=0):
    return np.round(x, decimals)


round = defop("round", _round, _zero, Domain(  # noqa: A001 (NumPy's name)
    (_OFF_JUMPS,), UNARY_CASES + ((((3, 4),), {"decimals": 1}), (((5,),), {"decimals": -1})),
    kind="elementwise"),
    doc="""x rounded to ``decimals`` decimals (halves to even, as numpy.round; NumPy's
``around`` too); its gradient is zero.

>>> import numpy as np, fungrad as fg
>>> fg.round(np.array([1.234, 2.5]), decimals=1)
array([1.2, 2.5])
""",
    batch=elementwise)

# x and y with |x / y| in (1.1, 1.97): both quotients are +-1 or -2, away from the jumps
_NUMERATOR = Real(-5.7, 5.7, avoid=(0.0,), margin=3.3)
_DENOMINATOR = Real(-3.0, 3.0, avoid=(0.0,), margin=2.9)
_REMAINDER = Domain((_NUMERATOR, _DENOMINATOR), BINARY_CASES, kind="elementwise")


def _mod_dy(g, out, x, y):
    return -g * np.floor_divide(unwrap(x), unwrap(y))  # the quotient NumPy's mod used


def _fmod_dy(g, out, x, y):
    xd, yd = unwrap(x), unwrap(y)
    return -g * np.round((xd - np.fmod(xd, yd)) / yd)  # the truncated quotient, exactly


mod = defop("mod", lambda x, y: np.mod(x, y), (lambda g, out, x, y: g, _mod_dy), _REMAINDER,
            doc="""The remainder x - floor(x / y) * y, with the sign of y (Python's ``%``;
NumPy's ``mod`` and ``remainder``). Its gradient is 1 for x and -floor(x / y) for y.

>>> import numpy as np, fungrad as fg
>>> fg.mod(np.array([5.0, -5.0]), 3.0)
array([2., 1.])
>>> fg.grad(lambda y: fg.mod(7.0, y))(2.0)
array(-3.)
""",
    batch=elementwise)

fmod = defop("fmod", lambda x, y: np.fmod(x, y), (lambda g, out, x, y: g, _fmod_dy), _REMAINDER,
             doc="""The remainder x - trunc(x / y) * y, with the sign of x (C's ``fmod``). Its
gradient is 1 for x and -trunc(x / y) for y.

>>> import numpy as np, fungrad as fg
>>> fg.fmod(np.array([5.0, -5.0]), 3.0)
array([ 2., -2.])
""",
    batch=elementwise)
