"""Elementwise ops with NumPy broadcasting. The engine sums cotangents back to input shapes.

Each stanza is one op: forward on ndarrays, VJP written with operators and registered ops (so it
is itself differentiable), and the domain its tests draw from.
"""

from __future__ import annotations

import numpy as np

from ..domains import BINARY_CASES, UNARY_CASES, Domain, Mask, Real, positive
from ..registry import defop, unwrap

__all__ = [
    "add", "subtract", "multiply", "divide", "negative", "power", "exp", "log", "sqrt", "abs",
    "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "maximum", "minimum", "where", "clip",
    "sign", "astype", "identity", "copy",
]


def _unary(*specs, avoid=()):
    spec = specs[0] if specs else Real(avoid=avoid)
    return Domain((spec,), UNARY_CASES, kind="elementwise")


_REAL = Real()


def _binary(x=_REAL, y=_REAL):
    return Domain((x, y), BINARY_CASES, kind="elementwise")


# -- arithmetic --------------------------------------------------------------------------------

add = defop("add", lambda x, y: np.add(x, y), (
    lambda g, out, x, y: g,
    lambda g, out, x, y: g,
), _binary(), doc="x + y with broadcasting.")

subtract = defop("subtract", lambda x, y: np.subtract(x, y), (
    lambda g, out, x, y: g,
    lambda g, out, x, y: -g,
), _binary(), doc="x - y with broadcasting.")

multiply = defop("multiply", lambda x, y: np.multiply(x, y), (
    lambda g, out, x, y: g * y,
    lambda g, out, x, y: g * x,
), _binary(), doc="x * y with broadcasting.")

divide = defop("divide", lambda x, y: np.true_divide(x, y), (
    lambda g, out, x, y: g / y,
    lambda g, out, x, y: -g * out / y,
), _binary(y=Real(avoid=(0.0,), margin=0.4)), doc="x / y with broadcasting.")

negative = defop("negative", lambda x: np.negative(x), lambda g, out, x: (-g,), _unary(),
                 doc="-x.")


def _power_dx(g, out, x, y):
    return g * y * x ** (y - 1.0)  # 1.0: integer x ** integer (y - 1) refuses y - 1 < 0


def _power_dy(g, out, x, y):
    # d/dy x**y = x**y log x, defined for x > 0; zero elsewhere rather than NaN
    positive_x = x > 0
    return where(positive_x, g * out * log(where(positive_x, x, 1.0)), 0.0)


power = defop("power", lambda x, y: np.power(x, y), (_power_dx, _power_dy),
              _binary(x=positive(0.3, 2.0), y=Real(-2.0, 2.0)),
              doc="x ** y; the exponent may be a Tensor too (its gradient is zero where x <= 0).")

# -- transcendental ----------------------------------------------------------------------------

exp = defop("exp", lambda x: np.exp(x), lambda g, out, x: (g * out,), _unary())
log = defop("log", lambda x: np.log(x), lambda g, out, x: (g / x,), _unary(positive()))
sqrt = defop("sqrt", lambda x: np.sqrt(x), lambda g, out, x: (g / (2 * out),),
             _unary(positive()))
sin = defop("sin", lambda x: np.sin(x), lambda g, out, x: (g * cos(x),), _unary())
cos = defop("cos", lambda x: np.cos(x), lambda g, out, x: (-g * sin(x),), _unary())

# sign is piecewise constant: its derivative is zero (needed by abs's VJP at higher order)
sign = defop("sign", lambda x: np.sign(x), lambda g, out, x: (g * 0,),
             _unary(avoid=(0.0,)))
abs = defop("abs", lambda x: np.abs(x), lambda g, out, x: (g * sign(x),),  # noqa: A001
            _unary(avoid=(0.0,)))

# -- activations -------------------------------------------------------------------------------

tanh = defop("tanh", lambda x: np.tanh(x), lambda g, out, x: (g * (1 - out * out),), _unary())


_FUSED_MIN_SIZE = 256  # below this, a kernel call costs more than the NumPy passes it saves


def _sigmoid(x):
    # stable for large |x|: exp of a non-positive number only
    if np.size(x) >= _FUSED_MIN_SIZE:
        from ..kernels.activations import sigmoid_forward  # noqa: PLC0415 (lazy Numba)

        return sigmoid_forward(x)  # one fused pass after NumPy's exp: 2-3x faster
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


sigmoid = defop("sigmoid", _sigmoid, lambda g, out, x: (g * out * (1 - out),), _unary(),
                doc="1 / (1 + exp(-x)), computed without overflow.")
relu = defop("relu", lambda x: np.maximum(x, 0), lambda g, out, x: (g * (x > 0),),
             _unary(avoid=(0.0,)), doc="max(x, 0); the gradient at 0 is 0, as in PyTorch.")


def _softplus(x):
    return np.logaddexp(0, x)


softplus = defop("softplus", _softplus, lambda g, out, x: (g * sigmoid(x),),
                 _unary(Real(-4.0, 4.0)), doc="log(1 + exp(x)), stable for large |x|.")

# -- selection: the unselected branch gets exactly zero ------------------------------------------

maximum = defop("maximum", lambda x, y: np.maximum(x, y), (
    lambda g, out, x, y: where(x >= y, g, 0.0),
    lambda g, out, x, y: where(x >= y, 0.0, g),
), Domain((Real(), Real()), BINARY_CASES, kind="elementwise", apart=[(0, 1)]),
    doc="Elementwise max; on ties the gradient goes to the first argument.")

minimum = defop("minimum", lambda x, y: np.minimum(x, y), (
    lambda g, out, x, y: where(x <= y, g, 0.0),
    lambda g, out, x, y: where(x <= y, 0.0, g),
), Domain((Real(), Real()), BINARY_CASES, kind="elementwise", apart=[(0, 1)]),
    doc="Elementwise min; on ties the gradient goes to the first argument.")


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
], kind="elementwise"),
    nondiff=(0,), doc="where(condition, x, y): the unselected branch gets exactly zero gradient.")


def _select(c, g, on_true):
    return where(c, g, 0.0) if on_true else where(c, 0.0, g)


def _clip(x, a_min=None, a_max=None):
    return np.clip(x, unwrap(a_min), unwrap(a_max))  # bounds are constants, even as Tensors


def _clip_vjp(g, out, x, a_min=None, a_max=None):
    inside = np.ones(np.shape(unwrap(x)), dtype=bool)
    xd = unwrap(x)
    a_min, a_max = unwrap(a_min), unwrap(a_max)
    if a_min is not None:
        inside &= xd >= a_min
    if a_max is not None:
        inside &= xd <= a_max
    return (where(inside, g, 0.0),)


clip = defop("clip", _clip, _clip_vjp, Domain((Real(-2, 2, avoid=(-0.5, 0.5)),), [
    (((3, 4),), {"a_min": -0.5, "a_max": 0.5}),
    (((5,),), {"a_min": None, "a_max": 0.5}),
    (((5,),), {"a_min": -0.5, "a_max": None}),
]), doc="Limit values to [a_min, a_max]; the gradient is zero where clipped.")


def _astype(x, dtype="float64"):
    return np.asarray(x).astype(dtype, copy=False)


def _astype_vjp(g, out, x, dtype="float64"):
    if np.dtype(dtype).kind != "f":  # an integer or boolean result is piecewise constant
        return (None,)
    dt = np.result_type(unwrap(x))
    return (g if dt.kind != "f" else astype(g, dtype=dt.name),)


astype = defop("astype", _astype, _astype_vjp,
               Domain((Real(),), [(((3, 4),), {"dtype": "float64"})]),
               doc="Cast to ``dtype``. The gradient of a cast to a floating dtype is cast back; "
                   "a cast to an integer or boolean dtype passes no gradient (it is piecewise "
                   "constant), as in JAX.")


copy = defop("copy", lambda x: np.array(x, copy=True), lambda g, out, x: (g,), _unary(),
             doc="A copy of x with its own memory, still connected to the graph.")

identity = defop("identity", lambda x: np.asarray(x), lambda g, out, x: (g,), _unary(),
                 doc="x itself, recorded as a new node (functional transforms use it to give "
                     "each traced argument its own identity).")
