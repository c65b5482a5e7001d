"""``scipy.special`` with gradients: SciPy's names and signatures, each function an op (or a
composite of ops) differentiable to any order in every differentiable argument.

Forwards call SciPy (imported on first use); VJPs are written with registered ops, so they
differentiate again. The few partial derivatives without a closed form (betainc in ``a`` and
``b``, gammainc/gammaincc in ``a``, the Bessel functions in their order ``v``) come from
:func:`fungrad.scipy._common.numerical_partial` (extrapolated central differences, about 1e-10
relative). Integer orders (``polygamma``'s n, ``multigammaln``'s d) are static.

>>> import numpy as np, fungrad as fg
>>> from fungrad.scipy import special
>>> fg.grad(lambda x: fg.sum(special.gammaln(x)))(np.array([1.0, 2.0])).round(6)  # digamma
array([-0.577216,  0.422784])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import numpy as fnp
from ..batching.rules import elementwise
from ..domains import BINARY_CASES, UNARY_CASES, Domain, Real, positive
from ..primitives import exp, log, log1p, reshape, sigmoid, sign, sinc, squeeze
from ..primitives import sum as _sum
from ..primitives import log_softmax as _log_softmax_op
from ..primitives import logsumexp as _logsumexp_op
from ..registry import defop, unwrap
from ._common import cast_like, numerical_partial, scipy_module, stdtr_values

__all__ = [
    "logsumexp", "expit", "logit", "erf", "erfc", "erfinv", "erfcinv", "gamma", "gammaln",
    "digamma", "psi", "polygamma", "multigammaln", "gammainc", "gammaincc", "beta", "betaln",
    "betainc", "rgamma", "gammasgn", "i0", "i1", "iv", "ive", "j0", "j1", "jv", "jn", "y0",
    "y1", "yv", "yn", "xlogy", "xlog1py", "entr", "softmax", "log_softmax", "log_ndtr", "ndtr",
    "ndtri", "sinc", "stdtr",
]

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_TERNARY_CASES: list = [
    (((3, 4), (3, 4), (3, 4)), {}), (((4,), (3, 4), ()), {}), (((), (), (5,)), {}),
]


def _sp() -> Any:
    return scipy_module("special")


def _op(name: str, forward, vjp, specs, doc: str, *, complex=None, cases=None, params=None):
    """Register ``scipy.special.<name>``, an elementwise op whose forward calls SciPy."""
    if cases is None:
        cases = UNARY_CASES if len(specs) == 1 else (
            BINARY_CASES if len(specs) == 2 else _TERNARY_CASES)
    return defop(f"scipy.special.{name}", forward, vjp,
                 Domain(specs, cases, kind="elementwise", complex=complex, params=params),
                 batch=elementwise, doc=doc)


# -- error functions and the normal distribution ---------------------------------------------------

erf = _op("erf", lambda x: cast_like(_sp().erf(x), x),
          lambda g, out, x: (g * (2.0 / _SQRT_PI) * exp(-(x * x)),), (Real(-2.5, 2.5),), """The
error function (complex arguments too: it is holomorphic).

>>> import numpy as np
>>> from fungrad.scipy.special import erf
>>> erf(np.array([0.0, 1.0])).round(6)
array([0.      , 0.842701])
""", complex=True)

erfc = _op("erfc", lambda x: cast_like(_sp().erfc(x), x),
           lambda g, out, x: (g * (-2.0 / _SQRT_PI) * exp(-(x * x)),), (Real(-2.5, 2.5),),
           """1 - erf(x), accurate where erf(x) is close to 1.

>>> import numpy as np
>>> from fungrad.scipy.special import erfc
>>> float(erfc(np.array(5.0)))
1.5374597944280347e-12
""", complex=True)

erfinv = _op("erfinv", lambda x: cast_like(_sp().erfinv(x), x),
             lambda g, out, x: (g * (_SQRT_PI / 2.0) * exp(out * out),), (Real(-0.9, 0.9),),
             """The inverse of erf on (-1, 1).

>>> import numpy as np
>>> from fungrad.scipy.special import erfinv
>>> erfinv(np.array([0.0, 0.5])).round(6)
array([0.      , 0.476936])
""")

erfcinv = _op("erfcinv", lambda x: cast_like(_sp().erfcinv(x), x),
              lambda g, out, x: (g * (-_SQRT_PI / 2.0) * exp(out * out),), (Real(0.1, 1.9),),
              """The inverse of erfc on (0, 2).

>>> import numpy as np
>>> from fungrad.scipy.special import erfcinv
>>> erfcinv(np.array([1.0]))
array([0.])
""")

ndtr = _op("ndtr", lambda x: cast_like(_sp().ndtr(x), x),
           lambda g, out, x: (g * exp(-0.5 * x * x) / _SQRT_2PI,), (Real(-3.0, 3.0),),
           """The standard normal cumulative distribution function.

>>> import numpy as np
>>> from fungrad.scipy.special import ndtr
>>> ndtr(np.array([0.0]))
array([0.5])
""")

log_ndtr = _op("log_ndtr", lambda x: cast_like(_sp().log_ndtr(x), x),
               lambda g, out, x: (g * exp(-0.5 * x * x - out) / _SQRT_2PI,),
               (Real(-6.0, 4.0),), """log(ndtr(x)), accurate far into both tails.

>>> import numpy as np
>>> from fungrad.scipy.special import log_ndtr
>>> float(log_ndtr(np.array(-20.0))).__round__(3)
-203.917
""")

ndtri = _op("ndtri", lambda x: cast_like(_sp().ndtri(x), x),
            lambda g, out, x: (g * _SQRT_2PI * exp(0.5 * out * out),), (Real(0.05, 0.95),),
            """The inverse of ndtr: the standard normal quantile function.

>>> import numpy as np
>>> from fungrad.scipy.special import ndtri
>>> ndtri(np.array([0.5]))
array([0.])
""")


def _stdtr_dt(df, t):
    """The Student t density at t (df degrees of freedom)."""
    half = 0.5 * (df + 1.0)
    return exp(gammaln(half) - gammaln(0.5 * df) - 0.5 * log(df * math.pi)
               - half * log1p(t * t / df))


stdtr = _op("stdtr", lambda df, t: cast_like(stdtr_values(df, t), df, t), (
    lambda g, out, df, t: g * numerical_partial(df, t, fn="stdtr", wrt=(0,)),
    lambda g, out, df, t: g * _stdtr_dt(df, t),
), (positive(1.0, 6.0), Real(-3.0, 3.0)), """The Student t cumulative distribution function
with df degrees of freedom; its derivative in t is the t density, in df numerical.

>>> import numpy as np
>>> from fungrad.scipy.special import stdtr
>>> stdtr(np.array([3.0]), np.array([0.0]))
array([0.5])
""")

# -- gamma and its kin -----------------------------------------------------------------------------


def _polygamma(x, n=0):
    return cast_like(_sp().polygamma(n, x), x)


_polygamma_op = _op("polygamma", _polygamma,
                    lambda g, out, x, n=0: (g * _polygamma_op(x, n=n + 1),),
                    (positive(0.4, 3.0),), """polygamma(n, x): the n-th derivative of digamma
(static integer ``n``); called by :func:`polygamma` and :func:`digamma`.""",
                    cases=[(((3, 4),), {"n": 0}), (((5,),), {"n": 1}), (((),), {"n": 2}),
                           (((2, 3),), {"n": 3})], params={"n": (0, 1, 2)})


def polygamma(n: Any, x: Any) -> Any:
    """The n-th derivative of the digamma function (``n`` a non-negative integer), as
    scipy.special.polygamma; differentiable in ``x``.

    >>> import numpy as np
    >>> from fungrad.scipy.special import polygamma
    >>> polygamma(1, np.array([1.0])).round(6)  # pi ** 2 / 6
    array([1.644934])
    """
    n_values = np.asarray(unwrap(n))
    if n_values.dtype.kind not in "biuf" or not np.all(n_values == np.round(n_values)) \
            or np.any(n_values < 0) or np.ndim(n_values) and np.unique(n_values).size > 1:
        raise ValueError(f"polygamma: n must be one non-negative integer, got {n!r}")
    return _polygamma_op(x, n=int(n_values.ravel()[0]) if n_values.size else 0)


def digamma(x: Any) -> Any:
    """The derivative of gammaln, as scipy.special.digamma (also :func:`psi`).

    >>> import numpy as np
    >>> from fungrad.scipy.special import digamma
    >>> digamma(np.array([1.0])).round(6)
    array([-0.577216])
    """
    return _polygamma_op(x, n=0)


psi = digamma

gammaln = _op("gammaln", lambda x: cast_like(_sp().gammaln(x), x),
              lambda g, out, x: (g * digamma(x),), (positive(0.3, 4.0),),
              """log|Gamma(x)|; its derivative is digamma(x).

>>> import numpy as np
>>> from fungrad.scipy.special import gammaln
>>> gammaln(np.array([1.0, 4.0])).round(6)
array([0.      , 1.791759])
""")

gamma = _op("gamma", lambda x: cast_like(_sp().gamma(x), x),
            lambda g, out, x: (g * out * digamma(x),), (positive(0.3, 4.0),),
            """The gamma function; its derivative is gamma(x) digamma(x).

>>> import numpy as np
>>> from fungrad.scipy.special import gamma
>>> gamma(np.array([5.0]))
array([24.])
""")

rgamma = _op("rgamma", lambda x: cast_like(_sp().rgamma(x), x),
             lambda g, out, x: (-g * out * digamma(x),), (positive(0.3, 4.0),),
             """1 / gamma(x), an entire function (zero at the poles of gamma).

>>> import numpy as np
>>> from fungrad.scipy.special import rgamma
>>> rgamma(np.array([5.0]))
array([0.04166667])
""")

gammasgn = _op("gammasgn", lambda x: cast_like(_sp().gammasgn(x), x),
               lambda g, out, x: (g * 0.0,), (Real(0.3, 4.0),),
               """The sign of gamma(x): piecewise constant, so its gradient is zero.

>>> import numpy as np
>>> from fungrad.scipy.special import gammasgn
>>> gammasgn(np.array([-0.5, 0.5]))
array([-1.,  1.])
""")


def multigammaln(a: Any, d: int) -> Any:
    """The log of the multivariate gamma function of dimension ``d`` (a static integer), as
    scipy.special.multigammaln; differentiable in ``a`` (which must exceed (d - 1) / 2).

    >>> import numpy as np
    >>> from fungrad.scipy.special import multigammaln, gammaln
    >>> bool(np.isclose(multigammaln(np.array(3.0), 1), gammaln(np.array(3.0))))
    True
    """
    d = int(d)
    if d < 1:
        raise ValueError(f"multigammaln: d must be a positive integer, got {d}")
    a_data = np.asarray(unwrap(a))
    if np.any(a_data <= 0.5 * (d - 1)):
        raise ValueError(f"multigammaln: a must be greater than (d - 1) / 2 = {0.5 * (d - 1)} "
                         f"for d = {d}")
    total = d * (d - 1) / 4.0 * math.log(math.pi)
    for j in range(d):
        total = total + gammaln(a - 0.5 * j)
    return total


def _gammainc_dx(a, x):
    return exp((a - 1.0) * log(x) - x - gammaln(a))


gammainc = _op("gammainc", lambda a, x: cast_like(_sp().gammainc(a, x), a, x), (
    lambda g, out, a, x: g * numerical_partial(a, x, fn="gammainc", wrt=(0,)),
    lambda g, out, a, x: g * _gammainc_dx(a, x),
), (positive(0.6, 3.0), positive(0.3, 4.0)), """The regularized lower incomplete gamma
function P(a, x). Its derivative in x is the gamma density; in a it is computed numerically
(extrapolated central differences, about 1e-10 relative).

>>> import numpy as np
>>> from fungrad.scipy.special import gammainc
>>> gammainc(np.array([1.0]), np.array([1.0])).round(6)  # 1 - exp(-1)
array([0.632121])
""")

gammaincc = _op("gammaincc", lambda a, x: cast_like(_sp().gammaincc(a, x), a, x), (
    lambda g, out, a, x: -g * numerical_partial(a, x, fn="gammainc", wrt=(0,)),
    lambda g, out, a, x: -g * _gammainc_dx(a, x),
), (positive(0.6, 3.0), positive(0.3, 4.0)), """The regularized upper incomplete gamma
function Q(a, x) = 1 - P(a, x), differentiable in a and x as :func:`gammainc`.

>>> import numpy as np
>>> from fungrad.scipy.special import gammaincc
>>> gammaincc(np.array([1.0]), np.array([1.0])).round(6)  # exp(-1)
array([0.367879])
""")

# -- beta ------------------------------------------------------------------------------------------


def _beta_slope(g, out, a, b):
    return g * out * (digamma(a) - digamma(a + b))


beta = _op("beta", lambda a, b: cast_like(_sp().beta(a, b), a, b), (
    lambda g, out, a, b: _beta_slope(g, out, a, b),
    lambda g, out, a, b: _beta_slope(g, out, b, a),
), (positive(0.5, 3.0), positive(0.5, 3.0)), """The beta function
Gamma(a) Gamma(b) / Gamma(a + b).

>>> import numpy as np
>>> from fungrad.scipy.special import beta
>>> beta(np.array([2.0]), np.array([3.0])).round(6)
array([0.083333])
""")

betaln = _op("betaln", lambda a, b: cast_like(_sp().betaln(a, b), a, b), (
    lambda g, out, a, b: g * (digamma(a) - digamma(a + b)),
    lambda g, out, a, b: g * (digamma(b) - digamma(a + b)),
), (positive(0.5, 3.0), positive(0.5, 3.0)), """log|beta(a, b)|.

>>> import numpy as np
>>> from fungrad.scipy.special import betaln
>>> betaln(np.array([1.0]), np.array([1.0]))
array([0.])
""")


def _betainc_dx(a, b, x):
    return exp((a - 1.0) * log(x) + (b - 1.0) * log1p(-x) - betaln(a, b))


betainc = _op("betainc", lambda a, b, x: cast_like(_sp().betainc(a, b, x), a, b, x), (
    lambda g, out, a, b, x: g * numerical_partial(a, b, x, fn="betainc", wrt=(0,)),
    lambda g, out, a, b, x: g * numerical_partial(a, b, x, fn="betainc", wrt=(1,)),
    lambda g, out, a, b, x: g * _betainc_dx(a, b, x),
), (positive(0.6, 3.0), positive(0.6, 3.0), Real(0.1, 0.9)), """The regularized incomplete
beta function I_x(a, b). Its derivative in x is the beta density; in a and b it is computed
numerically (extrapolated central differences, about 1e-10 relative), so gradients reach all
three arguments.

>>> import numpy as np, fungrad as fg
>>> from fungrad.scipy.special import betainc
>>> betainc(np.array([2.0]), np.array([1.0]), np.array([0.5]))  # x ** a when b = 1
array([0.25])
>>> float(fg.grad(lambda a: betainc(a, 1.0, 0.5))(2.0).round(6))  # x ** a log(x)
-0.173287
""")

# -- Bessel functions ------------------------------------------------------------------------------

_BESSEL_X = positive(0.5, 8.0)
_ORDER = Real(0.6, 3.0)

j0 = _op("j0", lambda x: cast_like(_sp().j0(x), x), lambda g, out, x: (-g * j1(x),), (_BESSEL_X,),
         """The Bessel function of the first kind of order 0.

>>> import numpy as np
>>> from fungrad.scipy.special import j0
>>> j0(np.array([0.0]))
array([1.])
""")

j1 = _op("j1", lambda x: cast_like(_sp().j1(x), x),
         lambda g, out, x: (g * 0.5 * (j0(x) - jv(2.0, x)),),
         (_BESSEL_X,), """The Bessel function of the first kind of order 1.

>>> import numpy as np
>>> from fungrad.scipy.special import j1
>>> j1(np.array([0.0]))
array([0.])
""")

y0 = _op("y0", lambda x: cast_like(_sp().y0(x), x), lambda g, out, x: (-g * y1(x),), (_BESSEL_X,),
         """The Bessel function of the second kind of order 0 (x > 0).

>>> import numpy as np
>>> from fungrad.scipy.special import y0
>>> y0(np.array([1.0])).round(6)
array([0.088257])
""")

y1 = _op("y1", lambda x: cast_like(_sp().y1(x), x), lambda g, out, x: (g * (y0(x) - out / x),),
         (_BESSEL_X,), """The Bessel function of the second kind of order 1 (x > 0).

>>> import numpy as np
>>> from fungrad.scipy.special import y1
>>> y1(np.array([1.0])).round(6)
array([-0.781213])
""")

i0 = _op("i0", lambda x: cast_like(_sp().i0(x), x), lambda g, out, x: (g * i1(x),), (Real(-3, 3),),
         """The modified Bessel function of the first kind of order 0.

>>> import numpy as np
>>> from fungrad.scipy.special import i0
>>> i0(np.array([0.0]))
array([1.])
""")

i1 = _op("i1", lambda x: cast_like(_sp().i1(x), x),
         lambda g, out, x: (g * 0.5 * (i0(x) + iv(2.0, x)),),
         (Real(-3, 3),), """The modified Bessel function of the first
kind of order 1.

>>> import numpy as np
>>> from fungrad.scipy.special import i1
>>> i1(np.array([0.0]))
array([0.])
""")


def _order_part(name):
    return lambda g, out, v, x: g * numerical_partial(v, x, fn=name, wrt=(0,))


jv = _op("jv", lambda v, x: cast_like(_sp().jv(v, x), v, x), (
    _order_part("jv"), lambda g, out, v, x: g * 0.5 * (jv(v - 1.0, x) - jv(v + 1.0, x)),
), (_ORDER, _BESSEL_X), """The Bessel function of the first kind of real order v; its
derivative in x is (J_{v-1} - J_{v+1}) / 2, in v numerical.

>>> import numpy as np
>>> from fungrad.scipy.special import jv, j0
>>> bool(np.isclose(jv(0.0, np.array(2.0)), j0(np.array(2.0))))
True
""")

yv = _op("yv", lambda v, x: cast_like(_sp().yv(v, x), v, x), (
    _order_part("yv"), lambda g, out, v, x: g * 0.5 * (yv(v - 1.0, x) - yv(v + 1.0, x)),
), (_ORDER, _BESSEL_X), """The Bessel function of the second kind of real order v (x > 0);
its derivative in x is (Y_{v-1} - Y_{v+1}) / 2, in v numerical.

>>> import numpy as np
>>> from fungrad.scipy.special import yv, y1
>>> bool(np.isclose(yv(1.0, np.array(2.0)), y1(np.array(2.0))))
True
""")

iv = _op("iv", lambda v, x: cast_like(_sp().iv(v, x), v, x), (
    _order_part("iv"), lambda g, out, v, x: g * 0.5 * (iv(v - 1.0, x) + iv(v + 1.0, x)),
), (_ORDER, _BESSEL_X), """The modified Bessel function of the first kind of real order v;
its derivative in x is (I_{v-1} + I_{v+1}) / 2, in v numerical.

>>> import numpy as np
>>> from fungrad.scipy.special import iv, i0
>>> bool(np.isclose(iv(0.0, np.array(2.0)), i0(np.array(2.0))))
True
""")

ive = _op("ive", lambda v, x: cast_like(_sp().ive(v, x), v, x), (
    _order_part("ive"),
    lambda g, out, v, x: g * (0.5 * (ive(v - 1.0, x) + ive(v + 1.0, x)) - sign(x) * out),
), (_ORDER, _BESSEL_X), """iv(v, x) * exp(-|x|), which does not overflow for large x.

>>> import numpy as np
>>> from fungrad.scipy.special import ive
>>> ive(np.array(0.0), np.array([1000.0])).round(6)
array([0.012619])
""")


def jn(n: Any, x: Any) -> Any:
    """The Bessel function of the first kind of integer order n (scipy.special.jn, which is
    jv); differentiable in x.

    >>> import numpy as np
    >>> from fungrad.scipy.special import jn, j1
    >>> bool(np.isclose(jn(1, np.array(2.0)), j1(np.array(2.0))))
    True
    """
    return jv(n, x)


def yn(n: Any, x: Any) -> Any:
    """The Bessel function of the second kind of integer order n; differentiable in x.

    >>> import numpy as np
    >>> from fungrad.scipy.special import yn, y0
    >>> bool(np.isclose(yn(0, np.array(2.0)), y0(np.array(2.0))))
    True
    """
    return yv(n, x)


# -- logarithms, entropy and the logistic function -------------------------------------------------

xlogy = _op("xlogy", lambda x, y: cast_like(_sp().xlogy(x, y), x, y), (
    lambda g, out, x, y: g * log(y),
    lambda g, out, x, y: g * x / y,
), (Real(-2.0, 2.0), positive(0.2, 3.0)), """x * log(y), zero where x = 0 (whatever y).

>>> import numpy as np
>>> from fungrad.scipy.special import xlogy
>>> xlogy(np.array([0.0, 2.0]), np.array([0.0, np.e]))
array([0., 2.])
""")

xlog1py = _op("xlog1py", lambda x, y: cast_like(_sp().xlog1py(x, y), x, y), (
    lambda g, out, x, y: g * log1p(y),
    lambda g, out, x, y: g * x / (1.0 + y),
), (Real(-2.0, 2.0), Real(-0.7, 2.0)), """x * log1p(y), zero where x = 0.

>>> import numpy as np
>>> from fungrad.scipy.special import xlog1py
>>> xlog1py(np.array([0.0, 1.0]), np.array([-1.0, np.e - 1]))
array([0., 1.])
""")

entr = _op("entr", lambda x: cast_like(_sp().entr(x), x),
           lambda g, out, x: (-g * (log(x) + 1.0),), (positive(0.1, 3.0),),
           """-x log(x) for x > 0 (0 at 0, -inf below): the summand of the entropy.

>>> import numpy as np
>>> from fungrad.scipy.special import entr
>>> entr(np.array([0.0, 1.0]))
array([ 0., -0.])
""")

logit = _op("logit", lambda p: cast_like(_sp().logit(p), p),
            lambda g, out, p: (g / (p * (1.0 - p)),), (Real(0.05, 0.95),),
            """log(p / (1 - p)), the inverse of :func:`expit`.

>>> import numpy as np
>>> from fungrad.scipy.special import logit
>>> logit(np.array([0.5]))
array([0.])
""")


def expit(x: Any) -> Any:
    """The logistic sigmoid 1 / (1 + exp(-x)), as scipy.special.expit (fungrad's sigmoid op).

    >>> import numpy as np
    >>> from fungrad.scipy.special import expit
    >>> expit(np.array([0.0]))
    array([0.5])
    """
    return sigmoid(x)


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """log(sum(b * exp(a))) over ``axis`` without overflow, as scipy.special.logsumexp.

    ``b`` scales each term (it may be negative; ``return_sign=True`` then returns
    ``(log|s|, sign(s))``, otherwise a negative sum gives nan, as SciPy). Differentiable in
    ``a`` and ``b``.

    >>> import numpy as np
    >>> from fungrad.scipy.special import logsumexp
    >>> float(logsumexp(np.array([1000.0, 1000.0])).round(4))
    1000.6931
    >>> logsumexp(np.array([1.0, 1.0]), b=np.array([1.0, -2.0]), return_sign=True)
    (array(1.), array(-1.))
    """
    if b is None and not return_sign:
        return _logsumexp_op(a, axis=axis, keepdims=keepdims)
    if b is None:
        b = 1.0
    data = np.asarray(unwrap(a))
    if isinstance(axis, list):
        axis = tuple(axis)
    shift = np.max(data, axis=axis, keepdims=True) if data.size else np.zeros(())
    shift = np.where(np.isfinite(shift), shift, 0.0).astype(result_dtype_of(a), copy=False)
    total = _sum(b * exp(a - shift), axis=axis, keepdims=True)
    sign = np.sign(np.asarray(unwrap(total)))
    magnitude = total * sign if return_sign else total
    out = log(magnitude) + shift
    if not keepdims:
        out = squeeze(out, axis=axis) if axis is not None else reshape(out, shape=())
        sign = np.squeeze(sign, axis=axis) if axis is not None else sign.reshape(())
    return (out, sign) if return_sign else out


def result_dtype_of(a: Any) -> np.dtype:
    dt = np.asarray(unwrap(a)).dtype
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def softmax(x: Any, axis: Any = None) -> Any:
    """exp(x) / sum(exp(x)) over ``axis`` (default: all axes, as scipy.special.softmax).

    >>> import numpy as np
    >>> from fungrad.scipy.special import softmax
    >>> softmax(np.array([[0.0, 0.0], [0.0, 0.0]]))
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    return exp(log_softmax(x, axis=axis))


def log_softmax(x: Any, axis: Any = None) -> Any:
    """x - logsumexp(x) over ``axis`` (default: all axes, as scipy.special.log_softmax).

    >>> import numpy as np
    >>> from fungrad.scipy.special import log_softmax
    >>> log_softmax(np.array([0.0, 0.0])).round(6)
    array([-0.693147, -0.693147])
    """
    if isinstance(axis, int):
        return _log_softmax_op(x, axis=axis)
    return x - _logsumexp_op(x, axis=tuple(axis) if isinstance(axis, list) else axis,
                             keepdims=True)

