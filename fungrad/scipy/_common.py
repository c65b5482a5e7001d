"""What the fungrad.scipy modules share: SciPy imported on first use, the dtype of a forward's
result, and derivatives by Richardson-extrapolated central differences for the few partial
derivatives no closed form gives (betainc in a and b, gammainc in a, the Bessel functions in
their order).

The numerical partial derivative is itself an op (``scipy.numerical_partial``): its VJP is the
same op one order higher, so that every function using it stays differentiable to any order.
Its accuracy is tested in ``tests/test_scipy_special.py`` against closed forms: about 1e-10
(relative) for first derivatives and 1e-8 for second ones on moderate arguments.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Callable, Iterator

import numpy as np

from ..batching.rules import elementwise
from ..domains import Domain, Real
from ..errors import FungradError
from ..primitives.dtypes import float_result_dtype
from .. import recording
from ..registry import defop, unwrap

__all__ = ["scipy_module", "result_dtype", "cast_like", "numerical_partial", "NUMERICAL",
           "dtype_of", "untraced"]


def scipy_module(name: str) -> Any:
    """``scipy.<name>``, imported on first use (SciPy is the optional extra ``fungrad[scipy]``)."""
    try:
        return importlib.import_module(f"scipy.{name}")
    except ImportError as e:  # pragma: no cover - exercised only without SciPy
        raise FungradError(f"fungrad.scipy needs SciPy for scipy.{name}: install it with "
                           "`pip install fungrad[scipy]` (or `pip install scipy`)") from e


_PYTHON_NUMBERS = (bool, int, float, complex)  # exactly these: NumPy's scalars are strong


def result_dtype(*args: Any) -> np.dtype:
    """The floating dtype a forward returns for ``args``: the promotion of their own float
    dtypes (float32 stays float32; integers count as float64; complex stays complex)."""
    # Python numbers are weak, as in NumPy's own promotion (NEP 50): float32 with 2.0 stays
    # float32, and with 1j becomes complex64
    weak = [a for a in args if type(a) in _PYTHON_NUMBERS]
    strong = [a for a in args if type(a) not in _PYTHON_NUMBERS] or weak
    dts = [float_result_dtype(np.asarray(a).dtype) for a in strong]
    dts = [np.dtype(np.float64) if d == np.float16 else d for d in dts]
    dt = np.result_type(*dts) if dts else np.dtype(np.float64)
    if dt.kind != "c" and any(type(a) is complex for a in weak):
        dt = np.result_type(dt, np.complex64)
    return dt


@contextlib.contextmanager
def untraced(jit: bool = True) -> Iterator[None]:
    """Run fungrad code inside an op's forward on plain values: a forward that calls user
    functions written with fungrad (argmin's objective, fixed_point's map, a primitive) runs as
    one Python step under fg.jit and once per example under fg.vmap, so neither fg.jit's tracer
    nor fg.vmap's interpreter may capture what it computes (``jit=False``: fg.vmap's alone)."""
    state = recording.thread
    saved = state.hook, state.vmap
    state.vmap = None  # fg.vmap's interpreter: the forward sees one example
    if jit:
        state.hook = None
    try:
        yield
    finally:
        state.hook, state.vmap = saved


def dtype_of(x: Any) -> np.dtype:
    """The dtype of an ndarray, Tensor, traced or batched array (without asking its values)."""
    dt = getattr(unwrap(x), "dtype", None)
    return np.dtype(dt) if dt is not None else np.result_type(x)


def cast_like(value: Any, *args: Any) -> np.ndarray:
    """``value`` as an ndarray of :func:`result_dtype` of ``args`` (SciPy computes some
    functions in float64 whatever the input)."""
    return np.asarray(value).astype(result_dtype(*args), copy=False)


# -- derivatives by extrapolated central differences ---------------------------------------------

#: The SciPy functions whose missing partial derivatives are computed numerically, by name.
NUMERICAL: dict[str, Callable[..., Any]] = {
    "betainc": lambda a, b, x: scipy_module("special").betainc(a, b, x),
    "gammainc": lambda a, x: scipy_module("special").gammainc(a, x),
    "jv": lambda v, x: scipy_module("special").jv(v, x),
    "yv": lambda v, x: scipy_module("special").yv(v, x),
    "iv": lambda v, x: scipy_module("special").iv(v, x),
    "ive": lambda v, x: scipy_module("special").ive(v, x),
    "stdtr": lambda df, t: stdtr_values(df, t),
}


def stdtr_values(df: Any, t: Any) -> np.ndarray:
    """The Student t cdf through the regularized incomplete beta function, in the form that
    keeps its precision on each side: ``1/2 +- I_x(1/2, df/2) / 2`` with ``x = t^2/(df+t^2)``
    near the centre, ``I_{df/(df+t^2)}(df/2, 1/2) / 2`` in the tails. SciPy's ``stdtr`` loses
    the digits of ``cdf - 1/2`` near t = 0 (``stdtr(1, 1e-6) - 0.5`` is 4e-5 off in relative
    terms), which its finite differences, and ours of it in df, would inherit.

    >>> round(float(stdtr_values(1.0, 1e-6) - 0.5) * 1e6 * np.pi, 8)  # 1/2 + arctan(t)/pi, df=1
    1.0
    """
    special = scipy_module("special")
    df, t = np.broadcast_arrays(np.asarray(df, dtype=np.float64), np.asarray(t, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        x = t * t / (df + t * t)
        centre = 0.5 + np.sign(t) * 0.5 * special.betainc(0.5, 0.5 * df, x)
        tail = 0.5 * special.betainc(0.5 * df, 0.5, df / (df + t * t))
    out = np.where(x < 0.5, centre, np.where(t > 0, 1.0 - tail, tail))
    # what the formulas leave undefined (infinite t or df, NaN) is SciPy's to say
    return np.where(np.isfinite(out), out, special.stdtr(df, t))

_STEP = 0.02


def _richardson(f: Callable, args: list, wrt: tuple) -> np.ndarray:
    """The mixed partial derivative of ``f`` in the arguments ``wrt`` (one entry per
    differentiation): central differences at steps h, h/2 and h/4 extrapolated twice (error
    O(h^6)). The step is large (h = 0.02) so that SciPy's rounding (1e-15 relative) reaches the
    derivative only as about 1e-13, which keeps it smooth enough to be differentiated again."""
    if not wrt:
        return np.asarray(f(*args), dtype=np.float64)
    i, rest = wrt[0], wrt[1:]
    x = args[i]
    h = _STEP * np.maximum(1.0, np.abs(x) / 10.0)

    def central(step):
        up, down = list(args), list(args)
        up[i], down[i] = x + step, x - step
        return (_richardson(f, up, rest) - _richardson(f, down, rest)) / (2.0 * step)

    d1, d2, d4 = central(h), central(h / 2.0), central(h / 4.0)
    r1, r2 = (4.0 * d2 - d1) / 3.0, (4.0 * d4 - d2) / 3.0
    return (16.0 * r2 - r1) / 15.0


def _forward(*args, fn, wrt):
    if fn not in NUMERICAL:
        raise ValueError(f"scipy.numerical_partial: no function named {fn!r}; expected one of "
                         f"{sorted(NUMERICAL)}")
    arrays = [np.asarray(a, dtype=np.float64) for a in args]
    return cast_like(_richardson(NUMERICAL[fn], arrays, tuple(wrt)), *args)


def _vjp(g, out, *args, fn, wrt):
    return tuple(g * numerical_partial(*args, fn=fn, wrt=tuple(wrt) + (k,))
                 for k in range(len(args)))


_DOC = """A partial derivative of one of SciPy's functions (``fn``, a name in
:data:`NUMERICAL`) in the arguments listed in ``wrt`` (positions, one per differentiation), by
central differences at steps h, h/2 and h/4 extrapolated to O(h^6) (Richardson), h = 0.02
(times |x|/10 where larger). fungrad.scipy uses it only for the derivatives that have no closed
form; its VJP is the same op one order higher.

>>> import numpy as np
>>> from fungrad.scipy._common import numerical_partial
>>> x = np.array([0.5])
>>> d = numerical_partial(np.array([2.0]), np.array([1.0]), x, fn="betainc", wrt=(0,))
>>> bool(np.allclose(d, x ** 2 * np.log(x), rtol=1e-9))  # I_x(a, 1) = x ** a
True
"""

_ARG = Real(0.6, 3.0)
# its own VJP (a third derivative of the function, nested differences three deep) is computed,
# but too noisy (about 1e-7) for the suite's finite differences to check at their tolerance
_TWICE = False
_FRACTION = Real(0.2, 0.8)

_partial2 = defop(
    "scipy.numerical_partial2",
    lambda x, y, fn="gammainc", wrt=(0,): _forward(x, y, fn=fn, wrt=wrt),
    lambda g, out, x, y, fn="gammainc", wrt=(0,): _vjp(g, out, x, y, fn=fn, wrt=wrt),
    Domain((_ARG, _ARG), [
        (((3,), (3,)), {"fn": "gammainc", "wrt": (0,)}),
        (((2, 3), (3,)), {"fn": "iv", "wrt": (0,)}),
        (((4,), ()), {"fn": "stdtr", "wrt": (0,)}),
    ], kind="general"), batch=elementwise, doc=_DOC, twice_differentiable=_TWICE)

_partial3 = defop(
    "scipy.numerical_partial3",
    lambda x, y, z, fn="betainc", wrt=(0,): _forward(x, y, z, fn=fn, wrt=wrt),
    lambda g, out, x, y, z, fn="betainc", wrt=(0,): _vjp(g, out, x, y, z, fn=fn, wrt=wrt),
    Domain((_ARG, _ARG, _FRACTION), [
        (((3,), (3,), (3,)), {"fn": "betainc", "wrt": (0,)}),
        (((2, 3), (3,), ()), {"fn": "betainc", "wrt": (1,)}),
    ], kind="general"), batch=elementwise, doc=_DOC, twice_differentiable=_TWICE)


def numerical_partial(*args: Any, fn: str, wrt: tuple) -> Any:
    """The op computing a partial derivative numerically, for two or three arguments."""
    op = _partial2 if len(args) == 2 else _partial3
    return op(*args, fn=fn, wrt=tuple(wrt))


numerical_partial.__doc__ = _DOC
