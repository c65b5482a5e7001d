"""Elementwise ops with NumPy broadcasting. The engine sums cotangents back to input shapes.

Each stanza is one op: forward on ndarrays, VJP written with operators and registered ops (so it
is itself differentiable), and the domain its tests draw from. The trigonometric and
exponential families live in :mod:`fungrad.primitives.trig` and :mod:`fungrad.primitives.explog`, rounding
and remainders in :mod:`fungrad.primitives.rounding`.

Complex inputs: the domain helpers here accept them by default (the arithmetic, exp, log, sqrt
and the trigonometric functions are holomorphic, so their VJPs ``g * f'(z)`` need no change);
an op without a complex meaning (an ordering, a rounding, relu) says ``complex=None``. The
non-holomorphic ones (abs, real, imag, conj, angle) write their VJPs for fungrad's convention:
a cotangent ``g`` pairs with a change ``dz`` as ``Re(g * dz)``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .batch_rules import BatchedParam, align, elementwise
from ..domains import BINARY_CASES, UNARY_CASES, Complex, Domain, Mask, Real, positive
from ..registry import Op, defop, is_complex, unwrap
from ..recording import is_traced
from .dtypes import as_float

__all__ = [
    "add", "subtract", "multiply", "divide", "negative", "power", "integer_pow", "exp", "log",
    "sqrt", "abs", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "maximum", "minimum",
    "fmax", "fmin", "where", "clip", "sign", "astype", "identity", "copy", "nan_to_num", "real",
    "imag", "conj", "angle", "real_if_close",
]


def _unary(*specs, avoid=(), complex=True):
    spec = specs[0] if specs else Real(avoid=avoid)
    return Domain((spec,), UNARY_CASES, kind="elementwise", complex=complex)


_REAL = Real()


def _binary(x=_REAL, y=_REAL, complex=True):
    return Domain((x, y), BINARY_CASES, kind="elementwise", complex=complex)


# -- arithmetic --------------------------------------------------------------------------------

add = defop("add", lambda x, y: np.add(x, y), (
    lambda g, out, x, y: g,
    lambda g, out, x, y: g,
), _binary(), doc="""x + y with broadcasting.

>>> import numpy as np, fungrad as fg
>>> fg.add(np.array([1.0, 2.0]), 1.0)
array([2., 3.])
""",
    batch=elementwise)

subtract = defop("subtract", lambda x, y: np.subtract(x, y), (
    lambda g, out, x, y: g,
    lambda g, out, x, y: -g,
), _binary(), doc="""x - y with broadcasting.

>>> import numpy as np, fungrad as fg
>>> fg.subtract(np.array([1.0, 2.0]), 1.0)
array([0., 1.])
""",
    batch=elementwise)

multiply = defop("multiply", lambda x, y: np.multiply(x, y), (
    lambda g, out, x, y: g * y,
    lambda g, out, x, y: g * x,
), _binary(), doc="""x * y with broadcasting.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.multiply(x, x))(3.0)
array(6.)
""",
    batch=elementwise)

divide = defop("divide", lambda x, y: np.true_divide(x, y), (
    lambda g, out, x, y: g / y,
    lambda g, out, x, y: -g * out / y,
), _binary(y=Real(avoid=(0.0,), margin=0.4)), doc="""x / y with broadcasting (true division).

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda y: fg.divide(1.0, y))(2.0)
array(-0.25)
""",
    batch=elementwise)

negative = defop("negative", lambda x: np.negative(x), lambda g, out, x: (-g,), _unary(),
                 doc="""-x.

>>> import numpy as np, fungrad as fg
>>> fg.negative(np.array([1.0, -2.0]))
array([-1.,  2.])
""",
    batch=elementwise)

# -- powers: an integer exponent is exact at 0 in every order, as JAX's integer_pow -------------


def _integer_pow(x, *, k=2):
    x = np.asarray(x)
    if k < 0 and x.dtype.kind in "biu":  # NumPy refuses integers to negative integer powers
        x = x.astype(np.float64)
    return np.power(x, k)


def _integer_pow_slope(g, x, k: int):
    """``g * d(x**k)/dx`` written with integer_pow itself: never ``0 ** -1`` (0 * inf)."""
    if k == 0:
        return g * 0
    return g * k * integer_pow(x, k=k - 1)


integer_pow = defop(
    "integer_pow", _integer_pow, lambda g, out, x, k=2: (_integer_pow_slope(g, x, k),),
    Domain((Real(avoid=(0.0,), margin=0.3),), [
        (((3, 4),), {"k": 2}), (((5,),), {"k": 3}), (((5,),), {"k": 0}), (((),), {"k": 1}),
        (((2, 3),), {"k": -2}),
    ], kind="elementwise", params={"k": (0, 1, 2, 3, 4, -1, -2)}, complex=True),
    doc="""x ** k for a static integer k (default 2). Its derivatives are exact at x = 0 in
every order (``k * x ** (k - 1)`` is again an integer power, and k = 0 gives exactly zero),
which is what ``x ** 2`` uses when the exponent is an integer-valued number.

>>> import numpy as np, fungrad as fg
>>> fg.integer_pow(np.array([2.0, -1.0]), k=3)
array([ 8., -1.])
>>> fg.grad(fg.grad(fg.grad(lambda t: fg.integer_pow(t, k=2))))(0.0)
array(0.)
""",
    batch=elementwise)


def _static_int(y):
    """The exponent as a Python int if it is a constant integer-valued number, else None."""
    if unwrap(y) is not y or is_traced(y) or np.ndim(y) != 0:  # traced, or an array of them
        return None
    value = np.asarray(y)
    if value.dtype.kind not in "biuf":
        return None
    v = float(value)
    return int(v) if v.is_integer() and abs(v) < 2 ** 31 else None


def _power_dx(g, out, x, y):
    k = _static_int(y)
    if k is not None:
        return _integer_pow_slope(g, x, k)
    return g * y * x ** (y - 1.0)  # 1.0: integer x ** integer (y - 1) refuses y - 1 < 0


def _power_dy(g, out, x, y):
    if is_complex(out):  # x**y = exp(y log x) on the principal branch of log, as NumPy's
        nonzero = unwrap(x) != 0
        return where(nonzero, g * out * log(where(nonzero, x, 1.0) * (1 + 0j)), 0.0)
    # d/dy x**y = x**y log x, defined for x > 0; zero elsewhere rather than NaN
    positive_x = x > 0
    return where(positive_x, g * out * log(where(positive_x, x, 1.0)), 0.0)


power = defop("power", lambda x, y: np.power(x, y), (_power_dx, _power_dy),
              _binary(x=positive(0.3, 2.0), y=Real(-2.0, 2.0)),
              doc="""x ** y; the exponent may be a Tensor too (its gradient is zero where
x <= 0; for complex powers, the principal branch of log is used, as NumPy's). A constant
integer-valued exponent (``x ** 2``, ``x ** 3.0``) differentiates through
:func:`integer_pow`, so every derivative is exact at x = 0.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.power(x, 3))(2.0)
array(12.)
>>> fg.grad(fg.grad(fg.grad(lambda t: t ** 2)))(0.0)
array(0.)
""",
    batch=elementwise)

# -- transcendental ----------------------------------------------------------------------------

exp = defop("exp", lambda x: np.exp(x), lambda g, out, x: (g * out,), _unary(), doc="""e ** x.

>>> import numpy as np, fungrad as fg
>>> fg.exp(np.array([0.0, 1.0])).round(4)
array([1.    , 2.7183])
""",
    batch=elementwise)
log = defop("log", lambda x: np.log(x), lambda g, out, x: (g / x,), _unary(positive()),
            doc="""The natural logarithm; its derivative is 1 / x.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.log(x))(4.0)
array(0.25)
""",
    batch=elementwise)
sqrt = defop("sqrt", lambda x: np.sqrt(x), lambda g, out, x: (g / (2 * out),),
             _unary(positive()), doc="""The non-negative square root.

>>> import numpy as np, fungrad as fg
>>> fg.sqrt(np.array([4.0, 9.0]))
array([2., 3.])
""",
    batch=elementwise)
sin = defop("sin", lambda x: np.sin(x), lambda g, out, x: (g * cos(x),), _unary(),
            doc="""The sine (radians).

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.sin(x))(0.0)
array(1.)
""",
    batch=elementwise)
cos = defop("cos", lambda x: np.cos(x), lambda g, out, x: (-g * sin(x),), _unary(),
            doc="""The cosine (radians).

>>> import numpy as np, fungrad as fg
>>> fg.cos(np.array([0.0, np.pi])).round(4)
array([ 1., -1.])
""",
    batch=elementwise)

# sign is piecewise constant: its derivative is zero (needed by abs's VJP at higher order)
sign = defop("sign", lambda x: np.sign(x), lambda g, out, x: (g * 0,),
             _unary(avoid=(0.0,), complex=None),
             doc="""-1, 0 or 1 by the sign of x; its gradient is zero.

>>> import numpy as np, fungrad as fg
>>> fg.sign(np.array([-2.0, 0.0, 3.0]))
array([-1.,  0.,  1.])
""",
    batch=elementwise)


def _abs_vjp(g, out, x):
    if is_complex(x):  # d|z| = Re(conj(z) dz) / |z|; 0 at z = 0, as sign(0) for reals
        nonzero = unwrap(out) != 0
        return (where(nonzero, g * conj(x) / where(nonzero, out, 1.0), 0.0),)
    # bools have no sign in NumPy, and |x| is the identity on them
    return (g * (x if np.result_type(unwrap(x)).kind == "b" else sign(x)),)


abs = defop("abs", lambda x: np.abs(x), _abs_vjp, _unary(avoid=(0.0,)),  # noqa: A001
            doc="""|x|, for complex x the modulus (a real result); the gradient at 0 is 0
(sign(0)), and for complex z it is ``g * conj(z) / |z|`` (NumPy's ``absolute`` too).

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.sum(fg.abs(x)))(np.array([-2.0, 3.0]))
array([-1.,  1.])
>>> fg.grad(fg.abs)(3.0 + 4.0j)
array(0.6-0.8j)
""",
    batch=elementwise)

# -- activations -------------------------------------------------------------------------------

tanh = defop("tanh", lambda x: np.tanh(x), lambda g, out, x: (g * (1 - out * out),), _unary(),
             doc="""The hyperbolic tangent; its derivative is 1 - tanh(x) ** 2.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.tanh(x))(0.0)
array(1.)
""",
    batch=elementwise)


_FUSED_MIN_SIZE = 256  # below this, a kernel call costs more than the NumPy passes it saves


def _sigmoid(x):
    # one dtype rule at every size (fungrad.primitives.dtypes): the kernel only sees float32/float64
    x = as_float(x)
    if x.size >= _FUSED_MIN_SIZE and x.dtype.itemsize >= 4:
        from ..kernels.activations import sigmoid_forward  # noqa: PLC0415 (lazy Numba)

        return sigmoid_forward(x)  # one fused pass after NumPy's exp: 2-3x faster
    e = np.exp(-np.abs(x))  # stable for large |x|: exp of a non-positive number only
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


sigmoid = defop("sigmoid", _sigmoid, lambda g, out, x: (g * out * (1 - out),),
                _unary(complex=None),
                doc="""1 / (1 + exp(-x)), computed without overflow. Bools and integers give
the float dtype NumPy's ``exp`` gives them (int8 -> float16), at every array size.

>>> import numpy as np, fungrad as fg
>>> fg.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
array([0. , 0.5, 1. ])
""",
    batch=elementwise)
relu = defop("relu", lambda x: np.maximum(x, 0), lambda g, out, x: (g * (x > 0),),
             _unary(avoid=(0.0,), complex=None),
             doc="""max(x, 0); the gradient at 0 is 0, as in PyTorch.

>>> import numpy as np, fungrad as fg
>>> fg.relu(np.array([-1.0, 2.0]))
array([0., 2.])
""",
    batch=elementwise)


def _softplus(x):
    return np.logaddexp(0, as_float(x))


softplus = defop("softplus", _softplus, lambda g, out, x: (g * sigmoid(x),),
                 _unary(Real(-4.0, 4.0), complex=None),
                 doc="""log(1 + exp(x)), stable for large |x|; its
derivative is sigmoid(x).

>>> import numpy as np, fungrad as fg
>>> fg.softplus(np.array([-1000.0, 0.0, 2.0])).round(4)
array([0.    , 0.6931, 2.1269])
""",
    batch=elementwise)

# -- selection: the unselected branch gets exactly zero ------------------------------------------

def _selection(name: str, fn: Callable, takes_x: Callable, doc: str) -> Op:
    """A binary op that returns x or y elementwise: the gradient goes to x where
    ``takes_x(x, y)`` and to y elsewhere (exactly zero to the unselected one)."""
    return defop(name, lambda x, y: fn(x, y), (
        lambda g, out, x, y: where(takes_x(x, y), g, 0.0),
        lambda g, out, x, y: where(takes_x(x, y), 0.0, g),
    ), Domain((Real(), Real()), BINARY_CASES, kind="elementwise", apart=[(0, 1)]),
        doc=doc, batch=elementwise)


maximum = _selection("maximum", np.maximum, lambda x, y: x >= y,
    doc="""Elementwise max (NaN propagates); on ties the gradient goes to the first argument.

>>> import numpy as np, fungrad as fg
>>> fg.maximum(np.array([1.0, 5.0]), 2.0)
array([2., 5.])
""")

minimum = _selection("minimum", np.minimum, lambda x, y: x <= y,
    doc="""Elementwise min (NaN propagates); on ties the gradient goes to the first argument.

>>> import numpy as np, fungrad as fg
>>> fg.minimum(np.array([1.0, 5.0]), 2.0)
array([1., 2.])
""")


def _takes_x(x, y, larger: bool) -> np.ndarray:
    """Where fmax (``larger``) or fmin returns x: x wins, ties, or y is NaN (NumPy's rule)."""
    xd, yd = unwrap(x), unwrap(y)
    return ((xd >= yd) if larger else (xd <= yd)) | np.isnan(yd)


fmax = _selection("fmax", np.fmax, lambda x, y: _takes_x(x, y, True),
    doc="""Elementwise max ignoring NaN (the other value is taken, and gets the gradient); on
ties the gradient goes to the first argument.

>>> import numpy as np, fungrad as fg
>>> fg.fmax(np.array([1.0, np.nan]), np.array([2.0, 3.0]))
array([2., 3.])
""")

fmin = _selection("fmin", np.fmin, lambda x, y: _takes_x(x, y, False),
    doc="""Elementwise min ignoring NaN (the other value is taken, and gets the gradient); on
ties the gradient goes to the first argument.

>>> import numpy as np, fungrad as fg
>>> fg.fmin(np.array([1.0, np.nan]), np.array([2.0, 3.0]))
array([1., 3.])
""")


def _where(condition, x, y):
    return np.where(condition, x, y)


where = defop("where", _where, (
    None,
    lambda g, out, c, x, y: _select(c, g, True),
    lambda g, out, c, x, y: _select(c, g, False),
), Domain((Mask(), Real(), Real()), [
    ((3, 4), (3, 4), (3, 4)),
    ((3, 4), (4,), (3, 1)),
    ((2, 3), (), (2, 3)),
], kind="elementwise", complex=True),
    nondiff=(0,), doc="""where(condition, x, y): x where condition holds, else y. The
unselected branch gets exactly zero gradient.

>>> import numpy as np, fungrad as fg
>>> fg.where(np.array([True, False]), np.array([1.0, 2.0]), 0.0)
array([1., 0.])
""",
    batch=elementwise)


def _select(c, g, on_true):
    return where(c, g, 0.0) if on_true else where(c, 0.0, g)


def _clip(x, a_min=None, a_max=None):
    return np.clip(x, unwrap(a_min), unwrap(a_max))  # bounds are constants, even as Tensors


def _clip_vjp(g, out, x, a_min=None, a_max=None):
    # the mask has the output's shape: array bounds may broadcast x to a larger shape
    xd = unwrap(x)
    inside = np.ones(np.shape(unwrap(out)), dtype=bool)
    if a_min is not None:
        inside = inside & (xd >= unwrap(a_min))
    if a_max is not None:
        inside = inside & (xd <= unwrap(a_max))
    return (where(inside, g, 0.0),)


def _clip_batch(op, args, dims, *, a_min=None, a_max=None):
    # the bounds broadcast like arguments (they may differ per example too): aligned with x
    values = [args[0], a_min, a_max]
    bdims = [dims[0]] + [b.dim if isinstance(b, BatchedParam) else None for b in values[1:]]
    values = [b.value if isinstance(b, BatchedParam) else b for b in values]
    given = [k for k, v in enumerate(values) if v is not None]
    for k, v in zip(given, align([values[k] for k in given], [bdims[k] for k in given])):
        values[k] = v
    return clip(values[0], a_min=values[1], a_max=values[2]), 0


clip = defop("clip", _clip, _clip_vjp, Domain((Real(-2, 2, avoid=(-0.5, 0.5)),), [
    (((3, 4),), {"a_min": -0.5, "a_max": 0.5}),
    (((5,),), {"a_min": None, "a_max": 0.5}),
    (((5,),), {"a_min": -0.5, "a_max": None}),
    (((4,),), {"a_min": np.full((2, 1), -0.5, np.float32), "a_max": 0.5}),
]), doc="""Limit values to [a_min, a_max] (constants; arrays broadcast); the gradient is zero
where clipped.

>>> import numpy as np, fungrad as fg
>>> fg.grad(lambda x: fg.sum(fg.clip(x, -1.0, 1.0)))(np.array([-3.0, 0.5, 2.0]))
array([0., 1., 0.])
""",
    batch=_clip_batch)


def _nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    return np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


nan_to_num = defop(
    "nan_to_num", _nan_to_num,
    lambda g, out, x, nan=0.0, posinf=None, neginf=None: (
        where(np.isfinite(unwrap(x)), g, 0.0),),
    Domain((Real(),), UNARY_CASES + ((((3, 4),), {"nan": 1.0, "posinf": 9.0, "neginf": -9.0}),),
           kind="elementwise", complex=True),
    doc="""NaN and infinities replaced by finite numbers (``nan``, ``posinf``, ``neginf``, as
numpy.nan_to_num); the replaced elements get zero gradient, the others pass it through.

>>> import numpy as np, fungrad as fg
>>> fg.nan_to_num(np.array([np.nan, np.inf, 1.0]), posinf=5.0)
array([0., 5., 1.])
""",
    batch=elementwise)


def _astype(x, dtype="float64"):
    return np.asarray(x).astype(dtype, copy=False)


def _astype_vjp(g, out, x, dtype="float64"):
    if np.dtype(dtype).kind not in "fc":  # an integer or boolean result is piecewise constant
        return (None,)
    dt = np.result_type(unwrap(x))
    if dt.kind not in "fc":
        return (g,)
    if is_complex(g) and dt.kind != "c":  # a real input of a cast to complex: the real part
        g = real(g)
    return (g if g.dtype == dt else astype(g, dtype=dt.name),)


astype = defop("astype", _astype, _astype_vjp,
               Domain((Real(),), [(((3, 4),), {"dtype": "float64"}),
                                  (((2, 3),), {"dtype": "complex128"})], complex=True),
               doc="""Cast to ``dtype``. The gradient of a cast to a floating or complex dtype is
cast back (a real input of a cast to complex takes the real part of its cotangent; a complex
input cast to a real dtype keeps the real part, as NumPy, which warns); a cast to an integer or
boolean dtype passes no gradient (it is piecewise constant), as in JAX.

>>> import numpy as np, fungrad as fg
>>> fg.astype(np.array([1.5, 2.5]), dtype="float32")
array([1.5, 2.5], dtype=float32)
""",
    batch=elementwise)


copy = defop("copy", lambda x: np.array(x, copy=True), lambda g, out, x: (g,), _unary(),
             doc="""A copy of x with its own memory, still connected to the graph.

>>> import numpy as np, fungrad as fg
>>> a = np.array([1.0]); b = fg.copy(a); b is a
False
""",
    batch=elementwise)

identity = defop("identity", lambda x: np.asarray(x), lambda g, out, x: (g,), _unary(),
                 doc="""x itself, recorded as a new node (functional transforms use it to give
each traced argument its own identity).

>>> import numpy as np, fungrad as fg
>>> fg.identity(np.array([1.0, 2.0]))
array([1., 2.])
""",
    batch=elementwise)

# -- complex numbers: their parts, conjugate and angle -------------------------------------------


def _real_vjp(g, out, x):
    return (g,)  # Re(g * d Re z) = Re(g * dz) for real g: the engine makes it complex for z


real = defop("real", lambda x: np.real(x), _real_vjp, _unary(),
             doc="""The real part (for real arrays, x itself).

>>> import numpy as np, fungrad as fg
>>> fg.real(np.array([1.0 + 2.0j, -2.0]))
array([ 1., -2.])
""",
    batch=elementwise)


def _imag_vjp(g, out, x):
    # Im(dz) = Re(-i dz): the cotangent -i g; a real input's imaginary part is a constant 0
    return (-1j * g if is_complex(x) else g * 0,)


imag = defop("imag", lambda x: np.array(np.imag(x)), _imag_vjp, _unary(),
             doc="""The imaginary part (for real arrays, zeros with zero gradient).

>>> import numpy as np, fungrad as fg
>>> fg.imag(np.array([1.0 + 2.0j, -2.0]))
array([2., 0.])
>>> fg.grad(lambda z: fg.imag(z))(1.0 + 2.0j)
array(0.-1.j)
""",
    batch=elementwise)

conj = defop("conj", lambda x: np.conjugate(x), lambda g, out, x: (conj(g),), _unary(),
             doc="""The complex conjugate (for real arrays, a copy of x); its VJP conjugates the
cotangent (NumPy's ``conjugate`` too).

>>> import numpy as np, fungrad as fg
>>> fg.conj(np.array([1.0 + 2.0j, -2.0]))
array([ 1.-2.j, -2.-0.j])
""",
    batch=elementwise)


def _angle(x, deg=False):
    return np.angle(x, deg=deg)


def _angle_vjp(g, out, x, deg=False):
    if not is_complex(x):  # 0 or pi: piecewise constant on the real line
        return (g * 0,)
    # d angle(z) = Im(dz / z) = Re(-i dz / z): the cotangent -i g / z (0 at z = 0)
    scale = -1j * (180.0 / np.pi) if deg else -1j
    nonzero = unwrap(x) != 0
    return (where(nonzero, g * scale / where(nonzero, x, 1.0), 0.0),)


angle = defop("angle", _angle, _angle_vjp,
              Domain((Real(avoid=(0.0,)),), UNARY_CASES + ((((3,),), {"deg": True}),),
                     kind="elementwise", complex=[Complex(Real(-2.0, 2.0), Real(0.2, 2.0))]),
              doc="""The argument of complex z in (-pi, pi] (degrees with ``deg=True``), as
numpy.angle: ``arctan2(imag, real)``; 0 or pi for reals. It jumps across the negative real
axis, where it has no derivative.

>>> import numpy as np, fungrad as fg
>>> fg.angle(np.array([1.0j, -1.0]))
array([1.57079633, 3.14159265])
>>> fg.grad(fg.angle)(1.0 + 1.0j)  # -i / z
array(-0.5-0.5j)
""",
              batch=elementwise)


def _real_if_close(x, tol=100):
    return np.real_if_close(x, tol=tol)


# (under fg.vmap the whole batch is real only if every example is: one array, one dtype)
real_if_close = defop(
    "real_if_close", _real_if_close, lambda g, out, x, tol=100: (g,),
    Domain((Real(),), UNARY_CASES + ((((2, 3),), {"tol": 1e6}),), kind="elementwise",
           complex=True),
    doc="""x's real part if every imaginary part is within ``tol`` machine epsilons of zero,
else x itself, as numpy.real_if_close; either way the VJP passes the cotangent on (a real one
becomes complex for a complex x).

>>> import numpy as np, fungrad as fg
>>> fg.real_if_close(np.array([1.0 + 1e-20j, 2.0]))
array([1., 2.])
""",
    batch=elementwise)
