"""Elementwise functions under NumPy's names: each one a registered op behind NumPy's ufunc
signature, and the function ``np.<name>(t)`` dispatches to when ``t`` is a Tensor.

NumPy's aliases (``true_divide``, ``remainder``/``mod``, ``degrees``/``rad2deg``, the NumPy 2
names ``asin``, ``atan2``, ``pow``...) share one op. ``fabs`` and ``float_power`` are NumPy's
dtype rules around ``abs`` and ``power``; the rounding functions that are not ufuncs (``round``,
``around``, ``fix``) and ``nan_to_num``, ``real``, ``imag``, ``angle``, ``real_if_close``,
``sinc`` keep NumPy's signatures.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy

from .. import primitives as ops
from ..primitives.dtypes import float_result_dtype
from ..typing import array_function, binary, unary
from ._wrap import cast, implements, no_out, plain, ufunc

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "negative", "positive", "power",
    "pow", "float_power", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp",
    "logaddexp2", "sqrt", "cbrt", "square", "reciprocal", "absolute", "abs", "fabs", "sign",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "asin", "acos", "atan",
    "atan2", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "asinh", "acosh", "atanh",
    "hypot", "sinc", "deg2rad", "rad2deg", "degrees", "radians", "maximum", "minimum", "fmax",
    "fmin", "floor", "ceil", "trunc", "rint", "fix", "round", "around", "mod", "remainder",
    "fmod", "nan_to_num", "real", "imag", "conj", "conjugate", "matmul", "angle",
    "real_if_close",
]


def _doc(op: Any, name: str) -> str:
    """The op's own description and example, without the registry's note on argument types,
    the example calling this function (``fnp.<name>``) rather than the op."""
    text = op.doc.split("\nTakes ndarrays, Tensors or Python numbers.")[0].rstrip()
    text = text.replace("import numpy as np, fungrad as fg\n",
                        "import numpy as np, fungrad as fg, fungrad.numpy as fnp\n")
    return re.sub(rf"\bfg\.{op.name}\(", f"fnp.{name}(", text)


def _ufunc(op: Any, np_ufunc: numpy.ufunc) -> Callable:
    return ufunc(op, np_ufunc, doc=_doc(op, np_ufunc.__name__))


# -- arithmetic and powers -------------------------------------------------------------------

add = binary(_ufunc(ops.add, numpy.add))
subtract = binary(_ufunc(ops.subtract, numpy.subtract))
multiply = binary(_ufunc(ops.multiply, numpy.multiply))
divide = true_divide = binary(_ufunc(ops.divide, numpy.divide))
negative = unary(_ufunc(ops.negative, numpy.negative))
positive = unary(ufunc(ops.copy, numpy.positive, doc="+x: a copy of x."))
power = pow = binary(_ufunc(ops.power, numpy.power))  # noqa: A001 (NumPy 2's name)
sqrt = unary(_ufunc(ops.sqrt, numpy.sqrt))
cbrt = unary(_ufunc(ops.cbrt, numpy.cbrt))
square = unary(_ufunc(ops.square, numpy.square))
reciprocal = unary(_ufunc(ops.reciprocal, numpy.reciprocal))
absolute = abs = unary(_ufunc(ops.abs, numpy.absolute))  # noqa: A001 (NumPy's name)
sign = unary(ufunc(ops.sign, numpy.sign,
                   doc="The sign of x (-1, 0 or 1); its gradient is zero."))
maximum = binary(_ufunc(ops.maximum, numpy.maximum))
minimum = binary(_ufunc(ops.minimum, numpy.minimum))
fmax = binary(_ufunc(ops.fmax, numpy.fmax))
fmin = binary(_ufunc(ops.fmin, numpy.fmin))
mod = remainder = binary(_ufunc(ops.mod, numpy.remainder))
fmod = binary(_ufunc(ops.fmod, numpy.fmod))
matmul = binary(ufunc(ops.matmul, numpy.matmul))

# -- exponentials and logarithms ---------------------------------------------------------------

exp = unary(_ufunc(ops.exp, numpy.exp))
exp2 = unary(_ufunc(ops.exp2, numpy.exp2))
expm1 = unary(_ufunc(ops.expm1, numpy.expm1))
log = unary(_ufunc(ops.log, numpy.log))
log2 = unary(_ufunc(ops.log2, numpy.log2))
log10 = unary(_ufunc(ops.log10, numpy.log10))
log1p = unary(_ufunc(ops.log1p, numpy.log1p))
logaddexp = binary(_ufunc(ops.logaddexp, numpy.logaddexp))
logaddexp2 = binary(_ufunc(ops.logaddexp2, numpy.logaddexp2))

# -- trigonometric and hyperbolic ----------------------------------------------------------------

sin = unary(_ufunc(ops.sin, numpy.sin))
cos = unary(_ufunc(ops.cos, numpy.cos))
tan = unary(_ufunc(ops.tan, numpy.tan))
arcsin = asin = unary(_ufunc(ops.arcsin, numpy.arcsin))
arccos = acos = unary(_ufunc(ops.arccos, numpy.arccos))
arctan = atan = unary(_ufunc(ops.arctan, numpy.arctan))
arctan2 = atan2 = binary(_ufunc(ops.arctan2, numpy.arctan2))
sinh = unary(_ufunc(ops.sinh, numpy.sinh))
cosh = unary(_ufunc(ops.cosh, numpy.cosh))
tanh = unary(_ufunc(ops.tanh, numpy.tanh))
arcsinh = asinh = unary(_ufunc(ops.arcsinh, numpy.arcsinh))
arccosh = acosh = unary(_ufunc(ops.arccosh, numpy.arccosh))
arctanh = atanh = unary(_ufunc(ops.arctanh, numpy.arctanh))
hypot = binary(_ufunc(ops.hypot, numpy.hypot))
deg2rad = unary(_ufunc(ops.deg2rad, numpy.deg2rad))
radians = unary(_ufunc(ops.deg2rad, numpy.radians))
rad2deg = unary(_ufunc(ops.rad2deg, numpy.rad2deg))
degrees = unary(_ufunc(ops.rad2deg, numpy.degrees))

# -- rounding (zero gradient, still recorded) ------------------------------------------------

floor = unary(_ufunc(ops.floor, numpy.floor))
ceil = unary(_ufunc(ops.ceil, numpy.ceil))
trunc = unary(_ufunc(ops.trunc, numpy.trunc))
rint = unary(_ufunc(ops.rint, numpy.rint))
conjugate = conj = unary(_ufunc(ops.conj, numpy.conjugate))


# -- NumPy's dtype rules around an op: fabs and float_power -----------------------------------

class _Composite:
    """A function of registered ops presented to :func:`ufunc` as if it were one op."""

    def __init__(self, name: str, fn: Callable, doc: str) -> None:
        self.name, self.fn, self.doc = name, fn, doc

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


def _fabs(x: Any) -> Any:
    dt = numpy.result_type(plain(x))
    return ops.abs(x if dt.kind == "f" else cast(x, float_result_dtype(dt)))


def _float_power(x: Any, y: Any) -> Any:
    dt = numpy.result_type(plain(x), plain(y), numpy.float64)  # complex128 for complex
    return ops.power(cast(x, dt), cast(y, dt))


fabs = _ufunc(_Composite("abs", _fabs, """|x| as a float (NumPy's dtype rule for fabs).

>>> import numpy as np, fungrad.numpy as fnp
>>> fnp.fabs(np.array([-1, 2]))
array([1., 2.])"""), numpy.fabs)
float_power = _ufunc(_Composite("power", _float_power, """x ** y computed in float64 at least,
as numpy.float_power (differentiable: float32 inputs get float32 gradients).

>>> import numpy as np, fungrad.numpy as fnp
>>> fnp.float_power(np.float32([2.0]), 3).dtype
dtype('float64')"""), numpy.float_power)


# -- NumPy functions (not ufuncs) on elementwise ops ----------------------------------------


@array_function
@implements(numpy.round, numpy.around)
def round(a: Any, decimals: int = 0, out: Any = None) -> Any:  # noqa: A001 (NumPy's name)
    """``a`` rounded to ``decimals`` decimals (halves to even), as ``numpy.round``; its
    gradient is zero.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.round(np.array([1.25, 2.5]), 1)
    array([1.2, 2.5])
    """
    no_out("round", out)
    return ops.round(a, decimals=decimals)


around = round


@array_function
@implements(numpy.fix)
def fix(x: Any, out: Any = None) -> Any:
    """``x`` rounded towards zero, as ``numpy.fix``; its gradient is zero.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.fix(np.array([-2.5, 2.5]))
    array([-2.,  2.])
    """
    no_out("fix", out)
    return ops.trunc(x)


@array_function
@implements(numpy.nan_to_num)
def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Any:
    """NaN and infinities replaced by ``nan``, ``posinf`` and ``neginf``, as
    ``numpy.nan_to_num``; replaced elements get zero gradient. ``copy=False`` on an ndarray
    replaces in place, as NumPy does; a Tensor always gives a new Tensor.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.nan_to_num(np.array([np.nan, -np.inf, 1.0]), neginf=-9.0)
    array([ 0., -9.,  1.])
    """
    if not copy and isinstance(x, numpy.ndarray):
        return numpy.nan_to_num(x, copy=False, nan=nan, posinf=posinf, neginf=neginf)
    return ops.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


@array_function
@implements(numpy.real)
def real(val: Any) -> Any:
    """The real part, as ``numpy.real`` (``val`` itself for real arrays).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.real(np.array([1.0 + 2.0j, 2.0]))
    array([1., 2.])
    """
    return ops.real(val)


@array_function
@implements(numpy.imag)
def imag(val: Any) -> Any:
    """The imaginary part, as ``numpy.imag`` (zeros, with zero gradient, for real arrays).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.imag(np.array([1.0 + 2.0j, 2.0]))
    array([2., 0.])
    """
    return ops.imag(val)


@array_function
@implements(numpy.angle)
def angle(z: Any, deg: bool = False) -> Any:
    """The argument of complex ``z`` in (-pi, pi] (degrees with ``deg=True``), as
    ``numpy.angle``; its gradient is ``-i g / z`` (none across the negative real axis, where it
    jumps).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.angle(np.array([1.0j, 1.0 + 1.0j]), deg=True)
    array([90., 45.])
    """
    return ops.angle(z, deg=bool(deg))


@array_function
@implements(numpy.real_if_close)
def real_if_close(a: Any, tol: float = 100) -> Any:
    """``a``'s real part if every imaginary part is within ``tol`` machine epsilons of zero,
    else ``a``, as ``numpy.real_if_close``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.real_if_close(np.array([2.0 + 1e-18j]))
    array([2.])
    """
    return ops.real_if_close(a, tol=tol)


@array_function
@implements(numpy.sinc)
def sinc(x: Any) -> Any:
    """sin(pi x) / (pi x) with sinc(0) = 1, as ``numpy.sinc`` (derivatives exact at 0).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.sinc(np.array([0.0, 1.0])).round(6)
    array([1., 0.])
    """
    return ops.sinc(x)
