"""Elementwise functions under NumPy's names: each one a registered op behind NumPy's ufunc
signature, and the function ``np.<name>(t)`` dispatches to when ``t`` is a Tensor."""

from __future__ import annotations

import numpy

from .. import ops
from ._wrap import ufunc

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "negative", "positive", "power",
    "exp", "log", "sqrt", "absolute", "abs", "sin", "cos", "tanh", "maximum", "minimum",
    "matmul", "sign",
]

add = ufunc(ops.add, numpy.add)
subtract = ufunc(ops.subtract, numpy.subtract)
multiply = ufunc(ops.multiply, numpy.multiply)
divide = true_divide = ufunc(ops.divide, numpy.divide)
negative = ufunc(ops.negative, numpy.negative)
positive = ufunc(ops.copy, numpy.positive, doc="+x: a copy of x.")
power = ufunc(ops.power, numpy.power)
exp = ufunc(ops.exp, numpy.exp)
log = ufunc(ops.log, numpy.log)
sqrt = ufunc(ops.sqrt, numpy.sqrt)
absolute = abs = ufunc(ops.abs, numpy.absolute)  # noqa: A001 (NumPy's name)
sin = ufunc(ops.sin, numpy.sin)
cos = ufunc(ops.cos, numpy.cos)
tanh = ufunc(ops.tanh, numpy.tanh)
maximum = ufunc(ops.maximum, numpy.maximum)
minimum = ufunc(ops.minimum, numpy.minimum)
matmul = ufunc(ops.matmul, numpy.matmul)
sign = ufunc(ops.sign, numpy.sign, doc="The sign of x (-1, 0 or 1); its gradient is zero.")
