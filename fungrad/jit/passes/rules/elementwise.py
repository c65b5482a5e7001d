"""Lowering rules of elementwise ops: arithmetic and math (fused later into groups),
comparisons and logic (through the NumPy or ``operator`` function a step calls), ``where``,
``clip``, casts, copies and whole-array assignment."""

from __future__ import annotations

import operator

import numpy as np

from ... import traced as _traced
from ... import tracer as _tracer
from ...ir import BUFFER_DTYPES, FLOATS, Const, Node, Scalar, Unsupported
from ...program import Step, Var
from ..lowering import Lowering, compute_dtype, registered, rule

__all__: list[str] = []

ELEMENTWISE = ("add", "subtract", "multiply", "divide", "negative", "power", "exp", "log",
               "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "abs", "sign",
               "maximum", "minimum", "square", "reciprocal", "floor", "tan", "sinh", "cosh",
               "arctan", "arcsin", "arccos", "arcsinh", "arccosh", "arctanh", "log1p", "expm1",
               "log2", "log10", "exp2", "cbrt", "ceil", "trunc", "rint", "copy", "arctan2",
               "hypot", "fmod", "mod")


def _elementwise(name: str):
    def handle(low: Lowering, step: Step) -> None:
        out = step.outputs[0]
        if step.params or out.weak is not None:
            raise Unsupported("parameters")
        args = step.inputs  # (a tuple; a constant among them: a Var of its own, or a float)
        for a in args:
            if type(a) is not Var:
                args = tuple([a if type(a) is Var else low.const_var(a) for a in args])
                break
        dt = out.dtype
        low.ew(name, args, out, dt if dt in FLOATS else compute_dtype(low, out, args))
    return handle


for _name in ELEMENTWISE:
    rule(registered(_name))(_elementwise(_name))


def _add(low: Lowering, step: Step) -> None:
    """``a + b``; a term that is a ``scatter_index`` added into a running sum is lowered as
    an accumulating copy (:meth:`Lowering.add_scatter`)."""
    if low.scatters and len(step.inputs) == 2 and not step.params:
        a, b, out = step.inputs[0], step.inputs[1], step.outputs[0]
        if (type(a) is Var and type(b) is Var and out.weak is None and out.dtype in FLOATS
                and (a.id in low.scatters or b.id in low.scatters)
                and low.add_scatter(a, b, out)):
            return
    _plain_add(low, step)


_plain_add = _elementwise("add")
rule(registered("add"))(_add)


def _integer_pow(low: Lowering, step: Step) -> None:
    """``x ** k`` for a static integer ``k``: NumPy's ``np.power(x, k)`` on floats is the C
    library's ``pow(x, float(k))``, which the kernel calls too, but for ``k = -1``: a
    division (``1 / x``), rounded once."""
    out = step.outputs[0]
    if out.weak is not None or set(step.params) - {"k"}:
        raise Unsupported("parameters")
    x = low.arg(step.inputs[0])
    k = int(step.params.get("k", 2))
    dtype = compute_dtype(low, out, (x,))
    if k == -1:
        low.ew("reciprocal", (x,), out, dtype)
    else:
        low.ew("power", (x, float(k)), out, dtype)


def _where(low: Lowering, step: Step) -> None:
    """``where(c, x, y)``: fg.where and NumPy's three-argument ``np.where`` (a VJP's mask)."""
    out = step.outputs[0]
    if len(step.inputs) != 3 or step.params:
        raise Unsupported("where with other than (condition, x, y)")
    args = tuple(low.arg(a) for a in step.inputs)
    low.ew("where", args, out, compute_dtype(low, out, args[1:]))


def _clip(low: Lowering, step: Step) -> None:
    out = step.outputs[0]
    x = low.arg(step.inputs[0])
    lo, hi = step.params.get("a_min"), step.params.get("a_max")
    cur = x  # NumPy's clip is minimum(maximum(x, lo), hi): bounds broadcast, NaN propagates
    if lo is not None:
        nxt = out if hi is None else low.new_var(out.shape, out.dtype)
        low.ew("maximum", (cur, _bound(low, lo)), nxt, out.dtype)
        cur = nxt
    if hi is not None:
        low.ew("minimum", (cur, _bound(low, hi)), out, out.dtype)
    if lo is None and hi is None:
        low.ew("copy", (cur,), out, out.dtype)


def _bound(low: Lowering, b) -> Var | float:
    """A clip bound: a number, or an array (a traced one, or a constant)."""
    return low.arg(b) if type(b) is Var or isinstance(b, np.ndarray) else float(b)


def _astype(low: Lowering, step: Step) -> None:
    out = step.outputs[0]
    x = low.arg(step.inputs[0])
    if type(x) is Var and x.dtype == out.dtype:
        low.alias(out, x)
        return
    if out.dtype not in FLOATS:
        raise Unsupported("cast to a non-float dtype")
    low.ew("copy", (x,), out, out.dtype)


def _identity(low: Lowering, step: Step) -> None:
    x = step.inputs[0]
    out = step.outputs[0]
    if type(x) is not Var:  # a constant (the tracer's "const" step)
        arr = np.asarray(x)
        if out.weak is not None or arr.ndim == 0 and arr.dtype.kind in "biuf":
            low.storage[out.id] = Scalar(False, value=arr.item() if arr.dtype.kind in "biuf"
                                         else 0.0, weak=out.weak)  # (an int stays exact)
            if arr.dtype.kind not in "biuf":
                raise Unsupported("non-numeric constant")
        elif arr.dtype in BUFFER_DTYPES:
            low.storage[out.id] = Const(arr)
        else:
            raise Unsupported("constant of another dtype")
        return
    low.alias(out, x)


def _bounds_check(low: Lowering, step: Step) -> None:
    """A Python check of ``lo <= ids < hi`` (an Embedding's): a compiled range check; the
    Python check runs only when it fails, to raise eager's error."""
    ids = low.arg(step.inputs[0])
    if type(ids) is not Var or not low.is_array(ids) or ids.dtype != np.dtype(np.int64):
        raise Unsupported("bounds of a non-int64 array")
    ids = low.contiguous_copy(ids)
    lo, hi = step.fn.bounds
    low.nodes.append(Node("block", "bounds", (ids,), (), dtype=np.dtype(np.int64),
                          params={"count": ids.size, "lo": int(lo), "hi": int(hi),
                                  "keep": True}, step=step))


def _numpy_call(name: str):
    """A NumPy (or ``operator``) function a step calls on arrays — a comparison, logic, a
    VJP's ``np.floor_divide`` — as the elementwise op ``name``, in its inputs' dtype."""
    def handle(low: Lowering, step: Step) -> None:
        out = step.outputs[0]
        if out.weak is not None or step.params:
            raise Unsupported("Python values")
        args = tuple(low.arg(a) for a in step.inputs)
        if not all(type(a) is not Var or low.is_array(a) or low.kind_of(a) == "scalar"
                   for a in args):
            raise Unsupported("compare operands")
        low.ew(name, args, out, compute_dtype(low, out, args))
    return handle


def _boolean(name: str):
    """NumPy's bitwise ops on booleans (masks combined, as clip's gradient does) are the
    logical ones; on integers they are not compiled."""
    logical = _numpy_call(name)

    def handle(low: Lowering, step: Step) -> None:
        if not all(type(a) is bool or getattr(a, "dtype", None) == np.bool_
                   for a in step.inputs):  # (Vars, and NumPy constants in a loop body)
            raise Unsupported("bitwise op on other than booleans")
        logical(low, step)
    return handle


def _float_args(low: Lowering, step: Step) -> tuple:
    """``(args, out, dtype)`` of a float elementwise op with no parameters (composed below)."""
    out = step.outputs[0]
    if step.params or out.weak is not None or out.dtype not in FLOATS:
        raise Unsupported("parameters")
    return tuple(low.arg(a) for a in step.inputs), out, out.dtype


def _temp(low: Lowering, args: tuple, dtype) -> Var:
    """A new value of the broadcast shape of ``args``."""
    return low.new_var(np.broadcast_shapes(*(a.shape for a in args if type(a) is Var)), dtype)


def _isnan(low: Lowering, step: Step) -> None:
    """``np.isnan(x)`` is ``x != x`` (fmax's and fmin's gradient masks)."""
    x, out = low.arg(step.inputs[0]), step.outputs[0]
    if type(x) is not Var or step.params:
        raise Unsupported("isnan of a constant")
    low.ew("not_equal", (x, x), out, compute_dtype(low, out, (x,)))


def _fselect(larger: bool):
    """fmax / fmin as NumPy computes them: ``x if (x >= y or isnan(y)) else y`` (``<=`` for
    fmin), so a NaN loses to a number and ties take x."""
    def handle(low: Lowering, step: Step) -> None:
        (x, y), out, dt = _float_args(low, step)
        if type(y) is not Var and y != y:  # a NaN constant: x everywhere
            low.ew("copy", (x,), out, dt)
            return
        take = _temp(low, (x, y), np.bool_)
        low.ew("greater_equal" if larger else "less_equal", (x, y), take, dt)
        if type(y) is Var:
            y_nan, either = low.new_var(y.shape, np.bool_), _temp(low, (x, y), np.bool_)
            low.ew("not_equal", (y, y), y_nan, dt)
            low.ew("logical_or", (take, y_nan), either, dt)
            take = either
        low.ew("where", (take, x, y), out, dt)
    return handle


def _logaddexp(base2: bool):
    """NumPy's logaddexp(2): ``x + ln 2`` (``x + 1``) where x == y (equal infinities too),
    else ``max + log1p(exp(-|x - y|))`` (``exp2``, times log2(e)); NaN propagates."""
    def handle(low: Lowering, step: Step) -> None:
        (x, y), out, dt = _float_args(low, step)

        def op(name: str, *args, dtype=dt) -> Var:
            value = _temp(low, (x, y), dtype)
            low.ew(name, args, value, dt)
            return value
        m = op("maximum", x, y)
        gap = op("negative", op("abs", op("subtract", x, y)))
        log = op("log1p", op("exp2" if base2 else "exp", gap))
        if base2:
            log = op("multiply", log, float(np.log2(np.e)))
        tie = op("add", x, 1.0 if base2 else float(np.log(2.0)))
        low.ew("where", (op("equal", x, y, dtype=np.bool_), tie, op("add", m, log)), out, dt)
    return handle


def _scaled(fn):
    """deg2rad / rad2deg: ``x`` times NumPy's constant in the result's dtype (bit for bit)."""
    def handle(low: Lowering, step: Step) -> None:
        (x,), out, dt = _float_args(low, step)
        low.ew("multiply", (x, float(fn(dt.type(1)))), out, dt)
    return handle


def _round(low: Lowering, step: Step) -> None:
    """round(x, decimals) as NumPy rounds a float array: ``rint(x * 10**d) / 10**d`` (for a
    negative ``d``: ``rint(x / 10**-d) * 10**-d``), the factor in the array's dtype."""
    out = step.outputs[0]
    if set(step.params) - {"decimals"} or out.weak is not None or out.dtype not in FLOATS:
        raise Unsupported("round of other than a float array")
    x, d = low.arg(step.inputs[0]), int(step.params.get("decimals", 0))
    if d == 0:
        low.ew("rint", (x,), out, out.dtype)
        return
    f = float(10.0 ** abs(d))
    scaled = _temp(low, (x,), out.dtype)
    low.ew("multiply" if d > 0 else "divide", (x, f), scaled, out.dtype)
    whole = _temp(low, (x,), out.dtype)
    low.ew("rint", (scaled,), whole, out.dtype)
    low.ew("divide" if d > 0 else "multiply", (whole, f), out, out.dtype)


def _sinc(low: Lowering, step: Step) -> None:
    """NumPy's sinc: ``y = pi x`` with its zeros replaced by the dtype's eps, ``sin(y) / y``."""
    (x,), out, dt = _float_args(low, step)
    y = _temp(low, (x,), dt)
    low.ew("multiply", (x, float(np.pi)), y, dt)
    nonzero = _temp(low, (x,), np.bool_)
    low.ew("not_equal", (y, 0.0), nonzero, dt)
    safe = _temp(low, (x,), dt)
    low.ew("where", (nonzero, y, float(np.finfo(dt).eps)), safe, dt)
    sin = _temp(low, (x,), dt)
    low.ew("sin", (safe,), sin, dt)
    low.ew("divide", (sin, safe), out, dt)


def _nan_to_num(low: Lowering, step: Step) -> None:
    """NumPy's nan_to_num of a float array: NaN, +inf and -inf replaced, in that order, by
    ``nan``, ``posinf`` and ``neginf`` (the dtype's largest and smallest finite numbers when
    None), each cast to the dtype."""
    out = step.outputs[0]
    x = low.arg(step.inputs[0])
    if set(step.params) - {"nan", "posinf", "neginf"} or out.weak is not None \
            or out.dtype not in FLOATS or type(x) is not Var:
        raise Unsupported("nan_to_num of other than a float array")
    dt = out.dtype
    values = [step.params.get("nan", 0.0), step.params.get("posinf"), step.params.get("neginf")]
    values[1] = np.finfo(dt).max if values[1] is None else values[1]
    values[2] = np.finfo(dt).min if values[2] is None else values[2]
    if not all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
        raise Unsupported("nan_to_num with array replacements")
    tests = (("not_equal", x), ("equal", float(np.inf)), ("equal", float(-np.inf)))
    cur = x
    for i, ((test, other), value) in enumerate(zip(tests, values)):
        mask = _temp(low, (x,), np.bool_)
        low.ew(test, (x, other), mask, dt)  # (x != x: NaN)
        nxt = out if i == len(tests) - 1 else _temp(low, (x,), dt)
        low.ew("where", (mask, float(value), cur), nxt, dt)
        cur = nxt


def _part_of_real(imaginary: bool):
    """real / conj of a real array: the array itself; imag of a real array (``imaginary``):
    zeros."""
    def handle(low: Lowering, step: Step) -> None:
        x, out = low.arg(step.inputs[0]), step.outputs[0]
        if step.params or type(x) is not Var or x.dtype not in FLOATS or out.dtype != x.dtype:
            raise Unsupported("complex parts of other than a real array")
        if imaginary:
            low.block("fill", (), out, out.dtype, value=0.0)
        else:
            low.alias(out, x)
    return handle


def _assign_like(low: Lowering, step: Step) -> None:
    target, value = step.inputs
    out = step.outputs[0]
    low.ew("copy", (low.arg(value),), out, out.dtype)


def _setitem(low: Lowering, step: Step) -> None:
    x, value = step.inputs
    out = step.outputs[0]
    index = step.params["index"]
    whole = index is Ellipsis or index == slice(None) or (
        isinstance(index, tuple) and all(i is Ellipsis or i == slice(None) for i in index))
    if not whole or step.dynamic:
        raise Unsupported("partial item assignment")
    low.ew("copy", (low.arg(value),), out, out.dtype)


rule(registered("integer_pow"))(_integer_pow)
rule(np.isnan)(_isnan)
rule(registered("fmax"))(_fselect(True))
rule(registered("fmin"))(_fselect(False))
rule(registered("logaddexp"))(_logaddexp(False))
rule(registered("logaddexp2"))(_logaddexp(True))
rule(registered("deg2rad"))(_scaled(np.deg2rad))
rule(registered("rad2deg"))(_scaled(np.rad2deg))
rule(registered("round"), np.round, np.around)(_round)
rule(registered("sinc"))(_sinc)
rule(registered("nan_to_num"))(_nan_to_num)
rule(registered("real"), registered("conj"))(_part_of_real(imaginary=False))
rule(registered("imag"))(_part_of_real(imaginary=True))
rule(registered("where"), np.where)(_where)
rule(registered("clip"))(_clip)
rule(registered("astype"))(_astype)
rule(registered("identity"), _tracer._identity)(_identity)
rule(_traced._assign_like)(_assign_like)
rule(_traced._setitem)(_setitem)
rule(_traced._copy)(lambda low, s: low.alias(s.outputs[0], s.inputs[0]))
#: an Embedding's bounds check (a ``_tracer._Check`` with bounds): see ``lower._rule``
BOUNDS_CHECK = _bounds_check
for _fn, _name in ((operator.lt, "less"), (operator.le, "less_equal"), (operator.gt, "greater"),
                   (operator.ge, "greater_equal"), (operator.eq, "equal"),
                   (operator.ne, "not_equal"), (np.less, "less"),
                   (np.less_equal, "less_equal"), (np.greater, "greater"),
                   (np.greater_equal, "greater_equal"), (np.equal, "equal"),
                   (np.not_equal, "not_equal"), (np.logical_and, "logical_and"),
                   (np.logical_or, "logical_or"), (np.logical_xor, "logical_xor"),
                   (np.logical_not, "logical_not"), (np.isfinite, "isfinite"),
                   (np.floor, "floor"), (np.floor_divide, "floor_divide"),
                   (np.remainder, "mod"), (np.fmod, "fmod"), (np.arctan2, "arctan2"),
                   (np.hypot, "hypot"), (np.rint, "rint")):
    rule(_fn)(_numpy_call(_name))
for _fn, _name in ((np.bitwise_and, "logical_and"), (np.bitwise_or, "logical_or"),
                   (np.bitwise_xor, "logical_xor"), (np.invert, "logical_not"),
                   (operator.and_, "logical_and"), (operator.or_, "logical_or"),
                   (operator.xor, "logical_xor"), (operator.invert, "logical_not")):
    rule(_fn)(_boolean(_name))
