"""Fuzzing the public API: every call gives NumPy's answer and correct gradients, or raises a
:class:`fungrad.errors.FungradError` whose message names the op — never a bare NumPy, Numba or
Python error, a silently wrong shape, or a silent float32 -> float64 upcast.

* ``test_op_chains_match_numpy``: random programs of up to six calls over the public surface
  (operators, ``fg.*`` functions, Tensor methods, Python scalars mixed in) on random
  broadcast-compatible shapes, float32 or float64, each input in a random memory layout
  (Fortran, strided, reversed, transposed, read-only) and some passed as raw ndarrays. Every
  intermediate value must match a NumPy reference written here (value, shape and dtype), and
  backward must give each input a gradient of its shape and dtype equal to that of the same
  program on float64 C-contiguous inputs; inputs are not mutated.
* ``test_smooth_op_chains_match_finite_differences``: the same programs restricted to smooth
  ops, checked in float64 by ``fungrad.testing.check_grads`` (reverse and forward mode, and
  to second order for programs of up to three calls).
* ``test_single_op_contract``: one op on arbitrary, often invalid, arguments (zero-size axes,
  mismatched shapes, bad or float axes, out-of-range and float indices, integer and bool
  inputs): NumPy's result, or — exactly when the NumPy reference rejects the call — a
  FungradError naming the op. Backward after a successful forward never raises.
* ``test_registry_ops_any_layout_and_dtype``: every op in ``fg.ops()`` (ops added later with
  ``fg.defop`` too) on its declared cases, with random layouts and float32/float64.

Each test runs a multiple of the profile's ``max_examples`` (``_N``): 300 chains, 1200 single
calls under ``ci`` (about 9 s); ``HYPOTHESIS_PROFILE=thorough`` runs 50 times as many.

What the fuzzer found, and the fixes (kept as a record; each has a regression test in
tests/test_edge_cases.py or tests/test_numerics.py):

1. ``var`` backward raised a bare ``ZeroDivisionError`` for a zero-size input or ``ddof >= N``
   (forward gave NumPy's nan/inf). Fixed in ``ops/reduce.py``: the scale is ``inf`` as NumPy's.
2. ``logsumexp`` / ``softmax`` / ``log_softmax`` over an empty axis raised ``ShapeError``
   ("zero-size array to reduction operation maximum") where the answer is defined: -inf for
   logsumexp (as scipy), an empty array for the softmaxes. Fixed in ``ops/reduce.py``.
3. A float ``axis`` (``t.sum(1.5)``) silently reduced over axis 1 (``int(1.5)``); NumPy raises.
   Fixed in ``ops/shape.normalize_axes``: DTypeError naming the op.
4. ``power`` backward with integer base and exponent raised NumPy's bare ``ValueError``
   ("Integers to negative integer powers are not allowed") from ``x ** (y - 1)`` at ``y = 0``.
   Fixed in ``ops/elementwise._power_dx``: ``x ** (y - 1.0)``.
5. ``softmax`` refused boolean input (NumPy cannot subtract booleans) while ``logsumexp`` and
   ``log_softmax`` took it as integers. Fixed: booleans count as integers in all three.
6. ``log_softmax`` errors named ``logsumexp`` (the helper it called); ``concatenate`` and
   ``stack`` errors said "concatenate/stack". Fixed in ``ops/reduce.py`` / ``ops/shape.py``.
7. ``clip`` with Tensor bounds raised a confusing DTypeError from NumPy's ufunc protocol. Fixed:
   bounds are unwrapped (they are constants).
8. ``Tensor.backward(grad)`` with a non-numeric grad raised a bare ``ValueError`` from
   ``astype``; ``Tensor.item()`` on several elements raised NumPy's bare ``ValueError``. Fixed in
   ``tensor.py`` (DTypeError / ShapeError).
9. Errors re-raised by the registry repeated the op name ("scatter_add: scatter_add: ...") and
   a ``FloatingPointError`` under ``np.seterr(all="raise")`` became a ``ShapeError``. Fixed in
   ``registry._explain``: no doubled prefix; FloatingPointError -> AnomalyError (a
   FloatingPointError subclass).

10. ``transpose`` with negative ``axes`` had a wrong VJP: ``np.argsort((0, -1))`` is
    ``(1, 0)``, so the identity permutation (0, -1) transposed the gradient back — silently
    wrong values for square inputs, a ShapeError in backward otherwise (found by the thorough
    profile). Fixed in ``ops/shape._transpose_vjp``: axes are made non-negative first.

Found alongside, by tests/test_numerics.py: ``log_softmax`` computed ``x - logsumexp(x)``,
which loses digits at magnitude 1e4 in float32 (3e-4 relative error); it now subtracts the
maximum first.

Deliberately stricter than NumPy: every reduction refuses an ``axis`` for a 0-d array ("use
axis=None"), where ``np.sum``/``np.max`` accept 0 and -1 but ``np.mean`` does not.
"""

from __future__ import annotations

import dataclasses
import operator
import warnings
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import FungradError
from fungrad.testing import check_grads
from layouts import LAYOUTS, with_layout

_N = settings().max_examples * 15  # ci: 300 examples per fuzzer (each takes milliseconds)

def as_leaf(a: np.ndarray, kind: str) -> Tensor:
    """A leaf Tensor requiring grad whose ``.data`` keeps the layout (the constructor copies)."""
    t = Tensor(a, autograd=True)
    t.data = with_layout(a, kind)
    return t


def _is_t(x) -> bool:
    return isinstance(x, Tensor)


def _raw(x):
    return x.data if _is_t(x) else x


# =============================================================================================
# op chains: a table of ops, each with a generator, a NumPy reference and a fungrad call
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class ChainOp:
    """One op of the chain fuzzer.

    ``gen(draw, rng, vals)`` picks operands (indices into ``vals``, the float64 reference
    values so far), static params and constants, or returns None when it does not apply;
    ``ref(args, params, const)`` is the NumPy reference; ``call(args, params, const, style)``
    calls fungrad in one of ``styles`` ways (operator, function, method...).
    """

    name: str
    gen: Callable
    ref: Callable
    call: Callable
    styles: int = 1
    smooth: bool = True


def _bcast_ok(*shapes) -> bool:
    try:
        np.broadcast_shapes(*shapes)
        return True
    except ValueError:
        return False


def _pick(draw, n: int) -> int:
    return draw(st.integers(0, n - 1))


def _gen_unary(limit: float | None = None):
    def gen(draw, rng, vals):
        i = _pick(draw, len(vals))
        if limit is not None and vals[i].size and np.abs(vals[i]).max() > limit:
            return None
        return (i,), {}, None
    return gen


def _gen_binary(limit: float | None = None):
    def gen(draw, rng, vals):
        i = _pick(draw, len(vals))
        partners = [j for j in range(len(vals)) if _bcast_ok(vals[i].shape, vals[j].shape)]
        j = draw(st.sampled_from(partners))
        if limit is not None and any(v.size and np.abs(v).max() > limit
                                     for v in (vals[i], vals[j])):
            return None
        return (i, j), {}, None
    return gen


def _gen_axis_op(keepdims: bool, multi: bool, ddof: bool = False):
    def gen(draw, rng, vals):
        i = _pick(draw, len(vals))
        nd = vals[i].ndim
        choices = [st.none()]
        if nd:
            choices.append(st.integers(-nd, nd - 1))
            if multi and nd > 1:
                choices.append(st.permutations(range(nd)).map(lambda p: tuple(p[:2])))
        params = {"axis": draw(st.one_of(*choices))}
        if keepdims:
            params["keepdims"] = draw(st.booleans())
        if ddof:
            params["ddof"] = draw(st.integers(0, 1))
        return (i,), params, None
    return gen


def _gen_softmax(draw, rng, vals):
    i = _pick(draw, len(vals))
    nd = vals[i].ndim
    if nd == 0:
        return None
    return (i,), {"axis": draw(st.integers(-nd, nd - 1))}, None


def _gen_scalar(draw, rng, vals):
    i = _pick(draw, len(vals))
    c = draw(st.sampled_from([2.0, -0.5, 3, 1.5]))
    return (i,), {}, c


def _scalar_ref(a, c, style):
    return [lambda: a * c, lambda: c * a, lambda: a + c, lambda: c - a, lambda: a / c,
            lambda: c / (a * a + 1.0), lambda: a ** 2, lambda: a - c][style]()


def _gen_where(draw, rng, vals):
    i = _pick(draw, len(vals))
    partners = [j for j in range(len(vals)) if _bcast_ok(vals[i].shape, vals[j].shape)]
    j = draw(st.sampled_from(partners))
    shape = np.broadcast_shapes(vals[i].shape, vals[j].shape)
    mask_shape = shape[draw(st.integers(0, len(shape))):]
    return (i, j), {}, rng.random(mask_shape) < 0.5


def _gen_clip(draw, rng, vals):
    i = _pick(draw, len(vals))
    lo, hi = draw(st.sampled_from([(-0.5, 0.5), (None, 0.3), (-0.3, None)]))
    return (i,), {"a_min": lo, "a_max": hi}, None


def _gen_reshape(draw, rng, vals):
    i = _pick(draw, len(vals))
    s = vals[i].shape
    target = draw(st.sampled_from([(-1,), (vals[i].size,), (1,) + s, s + (1,), s[::-1]]))
    if target == s[::-1] and len(s) < 2:
        target = (-1,)
    return (i,), {"shape": tuple(target)}, None


def _gen_transpose(draw, rng, vals):
    i = _pick(draw, len(vals))
    nd = vals[i].ndim
    axes = draw(st.one_of(st.none(), st.permutations(range(nd)).map(tuple)))
    if axes is not None:  # negative axes too
        axes = tuple(a - nd if draw(st.booleans()) else a for a in axes)
    return (i,), {"axes": axes}, None


def _gen_expand_dims(draw, rng, vals):
    i = _pick(draw, len(vals))
    nd = vals[i].ndim
    return (i,), {"axis": draw(st.integers(-nd - 1, nd))}, None


def _gen_squeeze(draw, rng, vals):
    i = _pick(draw, len(vals))
    ones = [k for k, n in enumerate(vals[i].shape) if n == 1]
    axis = draw(st.sampled_from([None] + ones))
    return (i,), {"axis": axis}, None


def _gen_broadcast_to(draw, rng, vals):
    i = _pick(draw, len(vals))
    s = vals[i].shape
    new = tuple(3 if n == 1 and draw(st.booleans()) else n for n in s)
    return (i,), {"shape": (draw(st.integers(1, 2)),) + new}, None


def _gen_expand(draw, rng, vals):
    i = _pick(draw, len(vals))
    return (i,), {"dim": draw(st.integers(0, vals[i].ndim)),
                  "copies": draw(st.integers(1, 3))}, None


def _gen_basic_index(draw, rng, vals):
    i = _pick(draw, len(vals))
    s = vals[i].shape
    if not s:
        return (i,), {}, draw(st.sampled_from([(), Ellipsis, None]))
    items = []
    for n in s[:draw(st.integers(1, len(s)))]:
        if n and draw(st.booleans()):
            items.append(draw(st.integers(-n, n - 1)))
        else:
            items.append(slice(draw(st.one_of(st.none(), st.integers(-n - 1, n + 1))),
                               draw(st.one_of(st.none(), st.integers(-n - 1, n + 1))),
                               draw(st.sampled_from([None, 1, 2, -1, -2]))))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), draw(st.sampled_from([None, Ellipsis])))
    return (i,), {}, tuple(items) if len(items) > 1 or draw(st.booleans()) else items[0]


def _gen_advanced_index(draw, rng, vals):
    i = _pick(draw, len(vals))
    s = vals[i].shape
    if not s or not s[0]:
        return None
    kind = draw(st.sampled_from(["ints", "mask", "pair"]))
    if kind == "mask":
        return (i,), {}, rng.random(s) < 0.6
    rows = rng.integers(-s[0], s[0], size=draw(st.integers(1, 4)))
    if kind == "pair" and len(s) >= 2 and s[1]:
        return (i,), {}, (rows, rng.integers(-s[1], s[1], size=rows.shape))
    return (i,), {}, rows


def _gen_index_select(draw, rng, vals):
    i = _pick(draw, len(vals))
    s = vals[i].shape
    if not s or not s[0]:
        return None
    shape = draw(st.sampled_from([(3,), (2, 2), (1,)]))
    return (i,), {}, rng.integers(-s[0], s[0], size=shape)


def _gen_join(draw, rng, vals):
    i = _pick(draw, len(vals))
    same = [j for j in range(len(vals)) if vals[j].shape == vals[i].shape]
    j = draw(st.sampled_from(same))
    nd = vals[i].ndim
    return (i, j), {"axis": draw(st.integers(-nd - 1, nd))}, None


def _gen_matmul(draw, rng, vals):
    i = _pick(draw, len(vals))
    partners = []
    for j in range(len(vals)):
        if vals[i].ndim and vals[j].ndim:
            try:
                np.matmul(vals[i], vals[j])
                partners.append(j)
            except ValueError:
                pass
    if not partners:
        return None
    return (i, draw(st.sampled_from(partners))), {}, None


def _gen_cross_entropy(draw, rng, vals):
    i = _pick(draw, len(vals))
    s = vals[i].shape
    if not s or not s[-1] or not vals[i].size:
        return None
    return (i,), {}, rng.integers(0, s[-1], size=s[:-1])


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _np_softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_cross_entropy(x, t):
    x2 = x.reshape(-1, x.shape[-1])
    ls = x2 - _np_logsumexp(x2, axis=-1, keepdims=True)
    return -np.mean(ls[np.arange(x2.shape[0]), t.reshape(-1)])


def _method_or(style: int, a, method: Callable, function: Callable):
    """Call the Tensor method in style 1 when ``a`` is a Tensor, else the fg function."""
    return method() if style == 1 and _is_t(a) else function()


def _arith(name):
    """add/subtract/multiply/divide as an operator (style 0) or the fg function (style 1)."""
    fn = getattr(fg, name)
    if name == "divide":  # keep the denominator away from zero
        ref = lambda a, b: a / (b * b + 1.0)
        call = lambda a, p, c, s: ref(*a) if s == 0 else fn(a[0], a[1] * a[1] + 1.0)
    else:
        ref = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul}[name]
        call = lambda a, p, c, s: ref(*a) if s == 0 else fn(*a)
    return ChainOp(name, _gen_binary(), lambda a, p, c: ref(*a), call, styles=2)


def _unary_op(name, ref, limit=None, smooth=True, method=None):
    fn = getattr(fg, name)
    meth = method or name
    return ChainOp(
        name, _gen_unary(limit), lambda a, p, c: ref(a[0]),
        lambda a, p, c, s: _method_or(s, a[0], lambda: getattr(a[0], meth)(), lambda: fn(a[0])),
        styles=2 if hasattr(Tensor, meth) else 1, smooth=smooth)


def _reduction(name, ref, smooth=True, ddof=False):
    fn = getattr(fg, name)

    def call(a, p, c, s):
        if s == 1 and _is_t(a[0]):
            kw = {"ddof": p["ddof"]} if "ddof" in p else {}
            return getattr(a[0], name)(p["axis"], p["keepdims"], **kw)
        return fn(a[0], **p)

    return ChainOp(name, _gen_axis_op(True, True, ddof), lambda a, p, c: ref(a[0], **p), call,
                   styles=2, smooth=smooth)


CHAIN_OPS = [
    _arith("add"), _arith("subtract"), _arith("multiply"), _arith("divide"),
    ChainOp("scalar", _gen_scalar, lambda a, p, c: None, lambda a, p, c, s: None, styles=8),
    ChainOp("power", _gen_binary(limit=3.0), lambda a, p, c: (a[0] * a[0] + 0.5) ** a[1],
            lambda a, p, c, s: (a[0] * a[0] + 0.5) ** a[1] if s == 0
            else fg.power(a[0] * a[0] + 0.5, a[1]), styles=2),
    ChainOp("mse", _gen_binary(), lambda a, p, c: np.mean((a[0] - a[1]) ** 2),
            lambda a, p, c, s: fg.mse(*a)),
    ChainOp("where", _gen_where, lambda a, p, c: np.where(c, a[0], a[1]),
            lambda a, p, c, s: fg.where(c if s == 0 else Tensor(c), a[0], a[1]), styles=2),
    ChainOp("maximum", _gen_binary(), lambda a, p, c: np.maximum(*a),
            lambda a, p, c, s: fg.maximum(*a), smooth=False),
    ChainOp("minimum", _gen_binary(), lambda a, p, c: np.minimum(*a),
            lambda a, p, c, s: fg.minimum(*a), smooth=False),
    ChainOp("negative", _gen_unary(), lambda a, p, c: -a[0],
            lambda a, p, c, s: -a[0] if s == 0 else fg.negative(a[0]), styles=2),
    _unary_op("tanh", np.tanh), _unary_op("sigmoid", _np_sigmoid),
    _unary_op("sin", np.sin), _unary_op("cos", np.cos),
    _unary_op("softplus", lambda x: np.logaddexp(0, x)),
    _unary_op("exp", np.exp, limit=5.0),
    ChainOp("log", _gen_unary(), lambda a, p, c: np.log(a[0] * a[0] + 1),
            lambda a, p, c, s: fg.log(a[0] * a[0] + 1)),
    ChainOp("sqrt", _gen_unary(), lambda a, p, c: np.sqrt(a[0] * a[0] + 1),
            lambda a, p, c, s: fg.sqrt(a[0] * a[0] + 1)),
    _unary_op("relu", lambda x: np.maximum(x, 0), smooth=False),
    _unary_op("abs", np.abs, smooth=False),
    ChainOp("clip", _gen_clip, lambda a, p, c: np.clip(a[0], p["a_min"], p["a_max"]),
            lambda a, p, c, s: _method_or(s, a[0], lambda: a[0].clip(p["a_min"], p["a_max"]),
                                          lambda: fg.clip(a[0], **p)), styles=2, smooth=False),
    _reduction("sum", np.sum), _reduction("mean", np.mean),
    _reduction("var", np.var, ddof=True), _reduction("logsumexp", _np_logsumexp),
    _reduction("max", np.max, smooth=False), _reduction("min", np.min, smooth=False),
    ChainOp("softmax", _gen_softmax, lambda a, p, c: _np_softmax(a[0], p["axis"]),
            lambda a, p, c, s: _method_or(s, a[0], lambda: a[0].softmax(p["axis"]),
                                          lambda: fg.softmax(a[0], **p)), styles=2),
    ChainOp("log_softmax", _gen_softmax,
            lambda a, p, c: a[0] - _np_logsumexp(a[0], axis=p["axis"], keepdims=True),
            lambda a, p, c, s: fg.log_softmax(a[0], **p)),
    ChainOp("reshape", _gen_reshape, lambda a, p, c: np.reshape(a[0], p["shape"]),
            lambda a, p, c, s: [lambda: fg.reshape(a[0], **p),
                                lambda: a[0].reshape(p["shape"]),
                                lambda: a[0].reshape(*p["shape"])][s if _is_t(a[0]) else 0](),
            styles=3),
    ChainOp("transpose", _gen_transpose, lambda a, p, c: np.transpose(a[0], p["axes"]),
            lambda a, p, c, s: (a[0].T if p["axes"] is None else a[0].transpose(*p["axes"]))
            if s == 1 and _is_t(a[0]) else fg.transpose(a[0], **p), styles=2),
    ChainOp("expand_dims", _gen_expand_dims, lambda a, p, c: np.expand_dims(a[0], p["axis"]),
            lambda a, p, c, s: _method_or(s, a[0], lambda: a[0].unsqueeze(p["axis"]),
                                          lambda: fg.expand_dims(a[0], **p)), styles=2),
    ChainOp("squeeze", _gen_squeeze, lambda a, p, c: np.squeeze(a[0], p["axis"]),
            lambda a, p, c, s: _method_or(s, a[0], lambda: a[0].squeeze(p["axis"]),
                                          lambda: fg.squeeze(a[0], **p)), styles=2),
    ChainOp("broadcast_to", _gen_broadcast_to,
            lambda a, p, c: np.broadcast_to(a[0], p["shape"]),
            lambda a, p, c, s: fg.broadcast_to(a[0], **p)),
    ChainOp("expand", _gen_expand,
            lambda a, p, c: np.repeat(np.expand_dims(a[0], p["dim"]), p["copies"], p["dim"]),
            lambda a, p, c, s: _method_or(s, a[0], lambda: a[0].expand(p["dim"], p["copies"]),
                                          lambda: fg.expand(a[0], **p)), styles=2),
    ChainOp("getitem", _gen_basic_index, lambda a, p, c: a[0][c],
            lambda a, p, c, s: a[0][c] if _is_t(a[0]) else fg.getitem(a[0], index=c)),
    ChainOp("getitem_advanced", _gen_advanced_index, lambda a, p, c: a[0][c],
            lambda a, p, c, s: a[0][c] if _is_t(a[0]) else fg.getitem(a[0], index=c)),
    ChainOp("index_select", _gen_index_select, lambda a, p, c: np.take(a[0], c, axis=0),
            lambda a, p, c, s: _method_or(s, a[0], lambda: a[0].index_select(c),
                                          lambda: fg.index_select(a[0], c)), styles=2),
    ChainOp("concatenate", _gen_join, lambda a, p, c: np.concatenate(a, axis=p["axis"]),
            lambda a, p, c, s: fg.concatenate(list(a), **p)),
    ChainOp("stack", _gen_join, lambda a, p, c: np.stack(a, axis=p["axis"]),
            lambda a, p, c, s: fg.stack(list(a), **p)),
    ChainOp("matmul", _gen_matmul, lambda a, p, c: np.matmul(*a),
            lambda a, p, c, s: [lambda: a[0] @ a[1], lambda: fg.matmul(*a),
                                lambda: a[0].mm(a[1])][
                s if s < 2 or (_is_t(a[0]) and a[0].ndim == 2 and np.ndim(_raw(a[1])) == 2)
                else 1](), styles=3),
    ChainOp("cross_entropy", _gen_cross_entropy, lambda a, p, c: _np_cross_entropy(a[0], c),
            lambda a, p, c, s: _method_or(s, a[0], lambda: a[0].cross_entropy(c),
                                          lambda: fg.cross_entropy(a[0], c)), styles=2),
]
_CHAIN = {op.name: op for op in CHAIN_OPS}
SMOOTH_OPS = [op.name for op in CHAIN_OPS if op.smooth]


@dataclasses.dataclass
class Step:
    op: str
    args: tuple
    params: dict
    const: Any
    style: int


def _ref_step(step: Step, vals: list):
    a = [vals[i] for i in step.args]
    if step.op == "scalar":
        return _scalar_ref(a[0], step.const, step.style)
    return _CHAIN[step.op].ref(a, step.params, step.const)


def _call_step(step: Step, vals: list):
    a = [vals[i] for i in step.args]
    if step.op == "scalar":
        return _scalar_ref(a[0], step.const, step.style)  # operators on Tensors
    return _CHAIN[step.op].call(a, step.params, step.const, step.style)


def run_reference(steps: list, inputs: list) -> list:
    vals = list(inputs)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # e.g. var with ddof=1 of one value
        for step in steps:
            vals.append(np.asarray(_ref_step(step, vals)))
    return vals


def run_fungrad(steps: list, inputs: list) -> list:
    vals = list(inputs)
    for step in steps:
        vals.append(_call_step(step, vals))
    return vals


@st.composite
def programs(draw, ops=tuple(_CHAIN), max_steps: int = 6):
    """(input arrays in float64, steps): valid for NumPy, with finite moderate values."""
    n_in = draw(st.integers(1, 3))
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=n_in, min_dims=0, max_dims=3,
                                                    min_side=1, max_side=4)).input_shapes
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    inputs = [rng.uniform(-2.0, 2.0, size=s) for s in shapes]
    vals = list(inputs)
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, max_steps))):
        op = _CHAIN[draw(st.sampled_from(ops))]
        made = op.gen(draw, rng, vals)
        if made is None:
            continue
        args, params, const = made
        style = draw(st.integers(0, op.styles - 1))
        step = Step(op.name, args, params, const, style)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out = np.asarray(_ref_step(step, vals))
        except (ValueError, IndexError, TypeError):
            continue  # not a valid call for NumPy either: the contract fuzzer covers those
        if not np.all(np.isfinite(out)) or (out.size and np.abs(out).max() > 1e4):
            continue
        steps.append(step)
        vals.append(out)
    assume(steps)
    return inputs, steps


def _depends(steps: list, n_inputs: int) -> list[set]:
    deps = [{i} for i in range(n_inputs)]
    for step in steps:
        deps.append(set().union(*(deps[i] for i in step.args)))
    return deps


def _scale(vals) -> float:
    return max([1.0] + [float(np.abs(v).max()) for v in vals if np.size(v)])


@settings(max_examples=_N)
@given(prog=programs(), dtype=st.sampled_from([np.float64, np.float32]), data=st.data())
def test_op_chains_match_numpy(prog, dtype, data):
    inputs, steps = prog
    note(f"steps: {steps}")
    n = len(inputs)
    layouts = [data.draw(st.sampled_from(LAYOUTS), label=f"layout {i}") for i in range(n)]
    raw = [data.draw(st.booleans(), label=f"raw ndarray {i}") if n > 1 else False
           for i in range(n)]
    typed = [x.astype(dtype) for x in inputs]
    leaves = [with_layout(x, k) if r else as_leaf(x, k) for x, k, r in zip(typed, layouts, raw)]
    snapshot = [np.array(_raw(x), copy=True) for x in leaves]

    ref64 = run_reference(steps, inputs)
    ref_dt = run_reference(steps, typed)  # NumPy's own dtypes (NEP 50) for this input dtype
    deps = _depends(steps, n)
    got = run_fungrad(steps, leaves)
    scale = _scale(ref64)
    tol = dict(rtol=1e-3, atol=1e-3 * scale) if dtype == np.float32 else dict(
        rtol=1e-9, atol=1e-11 * scale)
    is_tensor = [not r for r in raw]
    for k in range(n, len(got)):
        step = steps[k - n]
        mask_tensor = step.op == "where" and step.style == 1  # the condition is a Tensor
        is_tensor.append(mask_tensor or any(is_tensor[i] for i in step.args))
        assert _is_t(got[k]) == is_tensor[k], f"{step.op}: Tensor in, Tensor out (only then)"
        value = _raw(got[k])
        want_shape, want_dtype = ref64[k].shape, ref_dt[k].dtype
        assert value.shape == want_shape, f"{step.op}: shape {value.shape}, NumPy {want_shape}"
        assert value.dtype == want_dtype, f"{step.op}: dtype {value.dtype}, NumPy {want_dtype}"
        np.testing.assert_allclose(value, ref64[k], err_msg=f"{step.op} forward", **tol)

    out = got[-1]
    if not (_is_t(out) and out.requires_grad):
        return
    rng = np.random.default_rng(len(steps))
    seed = rng.standard_normal(out.shape).astype(out.dtype)
    out.backward(seed)
    for x, before in zip(leaves, snapshot):
        np.testing.assert_array_equal(_raw(x), before, err_msg="an input was mutated")

    ref_leaves = [Tensor(x, autograd=True) for x in inputs]
    ref_out = run_fungrad(steps, ref_leaves)[-1]
    ref_out.backward(seed.astype(np.float64))
    for i, (x, r) in enumerate(zip(leaves, ref_leaves)):
        if raw[i]:
            continue
        if i not in deps[-1]:
            assert x.grad is None, f"input {i} does not reach the output but got a gradient"
            continue
        assert x.grad is not None, f"input {i} reaches the output but got no gradient"
        assert x.grad.shape == x.shape, f"input {i}: gradient shape {x.grad.shape} != {x.shape}"
        assert x.grad.dtype == dtype, f"input {i}: gradient dtype {x.grad.dtype}, input {dtype}"
        gscale = max(1.0, float(np.abs(r.grad.data).max()) if r.grad.size else 1.0)
        gtol = dict(rtol=2e-2, atol=2e-3 * gscale * scale) if dtype == np.float32 else dict(
            rtol=1e-8, atol=1e-10 * gscale)
        np.testing.assert_allclose(x.grad.data, r.grad.data, err_msg=f"gradient {i}", **gtol)


@settings(max_examples=_N)
@given(prog=programs(ops=tuple(SMOOTH_OPS), max_steps=5))
def test_smooth_op_chains_match_finite_differences(prog):
    inputs, steps = prog
    note(f"steps: {steps}")
    final = run_reference(steps, inputs)[-1]
    assume(final.size)

    def f(*xs):
        return run_fungrad(steps, list(xs))[-1]

    order = 2 if len(steps) <= 3 else 1  # second order through create_graph too
    check_grads(f, *inputs, order=order, modes=("rev", "fwd"), rng=np.random.default_rng(0))


# =============================================================================================
# single-op contract: NumPy's answer, or a FungradError naming the op when NumPy refuses
# =============================================================================================

_DTYPES = st.sampled_from([np.float64, np.float64, np.float32, np.float32, np.int64, np.bool_])


def _values(rng, shape, dtype):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype == np.int64:
        return rng.integers(-3, 4, size=shape)
    return rng.uniform(-3.0, 3.0, size=shape).astype(dtype)


@st.composite
def _shape_like(draw, base):
    how = draw(st.sampled_from(["same", "same", "broadcast", "any"]))
    if how == "same":
        return base
    if how == "broadcast":
        ones = tuple(1 if draw(st.booleans()) else n for n in base)
        return ones[draw(st.integers(0, len(base))):]
    return draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))


_SMALL_SHAPES = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)
_AXIS = st.one_of(st.none(), st.integers(-4, 3), st.tuples(st.integers(-3, 2), st.integers(-3, 2)),
                  st.just(1.5))


def _targets_like(draw, rng, x):
    s = np.shape(x)
    shape = s[:-1] if s and draw(st.integers(0, 3)) else draw(_SMALL_SHAPES)
    hi = (s[-1] if s else 2) + draw(st.integers(0, 1))
    t = rng.integers(-draw(st.integers(0, 1)), max(hi, 1), size=shape)
    return t.astype(np.float64) if draw(st.integers(0, 5)) == 0 else t


def _index_like(draw, rng, shape):
    n = shape[0] if shape else 2
    return draw(st.one_of(
        st.integers(-n - 1, n),
        st.builds(slice, st.one_of(st.none(), st.integers(-4, 4)),
                  st.one_of(st.none(), st.integers(-4, 4)), st.sampled_from([None, 1, -1, 2])),
        st.just(Ellipsis),
        st.builds(lambda k: rng.integers(-n - 1, n + 1, size=k), st.integers(0, 4)),
        st.just(rng.random(shape) < 0.5),
        st.builds(lambda k: rng.random(k) < 0.5, st.integers(0, 4)),
        st.tuples(st.integers(-2, 2), st.integers(-2, 2)),
        st.just(1.5),
    ))


def _params(draw, rng, name, arrays):
    x = arrays[0]
    nd = np.ndim(x)
    if name in ("sum", "mean", "max", "min", "logsumexp"):
        return {"axis": draw(_AXIS), "keepdims": draw(st.booleans())}
    if name == "var":
        return {"axis": draw(_AXIS), "keepdims": draw(st.booleans()),
                "ddof": draw(st.integers(0, 2))}
    if name in ("softmax", "log_softmax"):
        return {"axis": draw(st.integers(-3, 2))}
    if name == "reshape":
        size = np.size(x)
        return {"shape": draw(st.sampled_from([(-1,), (size,), (1, -1), (size, 1), (2, -1), (3,),
                                               (-1, -1), ()]))}
    if name == "transpose":
        return {"axes": draw(st.one_of(st.none(), st.permutations(range(nd)).map(tuple),
                                       st.tuples(st.integers(-2, 2), st.integers(-2, 2))))}
    if name == "squeeze":
        return {"axis": draw(st.one_of(st.none(), st.integers(-3, 2)))}
    if name == "expand_dims":
        return {"axis": draw(st.integers(-4, 3))}
    if name == "broadcast_to":
        return {"shape": draw(st.one_of(st.just((2,) + np.shape(x)), _shape_like(np.shape(x)),
                                        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                         max_side=3)))}
    if name == "expand":
        return {"dim": draw(st.integers(-1, nd + 1)), "copies": draw(st.integers(-1, 3))}
    if name in ("concatenate", "stack"):
        return {"axis": draw(st.integers(-3, 3))}
    if name == "clip":
        return {"a_min": draw(st.sampled_from([None, -1.0, 0.5, 0])),
                "a_max": draw(st.sampled_from([None, 1.0, -0.5, 2]))}
    if name == "astype":
        return {"dtype": draw(st.sampled_from(["float32", "float64"]))}
    return {}


def _np_expand(x, dim, copies):
    if not 0 <= dim <= np.ndim(x):
        raise ValueError("dim out of range")
    return np.repeat(np.expand_dims(x, dim), copies, axis=dim)


def _np_index_select(x, idx):
    idx = np.asarray(idx)
    if np.ndim(x) == 0 or idx.dtype.kind not in "iu" and idx.size:
        raise IndexError("bad")
    return np.take(x, idx.astype(np.int64), axis=0)


def _np_ce(x, t):
    x = np.asarray(x)
    t = np.asarray(t)
    if x.ndim == 0 or t.size != x.size // max(x.shape[-1], 1) or (x.shape[-1] == 0 and t.size):
        raise ValueError("shape")
    if t.dtype.kind == "f":
        if not (t.size and np.all(t == np.round(t))):
            raise TypeError("float targets")
        t = t.astype(np.int64)
    elif t.dtype.kind not in "iu":
        raise TypeError("targets")
    if t.size and (t.min() < 0 or t.max() >= x.shape[-1]):
        raise IndexError("target")
    xf = x.astype(x.dtype if x.dtype.kind == "f" else np.float64)
    if t.size == 0:
        return np.asarray(np.nan, dtype=xf.dtype)
    return np.asarray(_np_cross_entropy(xf, t), dtype=xf.dtype)


def _np_var(x, axis=None, keepdims=False, ddof=0):
    return np.var(x, axis=axis, keepdims=keepdims, ddof=ddof)


def _np_axis_softmax(fn):
    def ref(x, axis):
        x = np.asarray(x)
        x = x.astype(np.int64) if x.dtype == np.bool_ else x  # booleans count as integers
        if x.ndim == 0:
            raise ValueError("0-d")
        if not x.size:
            lse = np.log(np.sum(np.exp(x), axis=axis, keepdims=True))  # -inf; checks the axis
            return np.exp(x) if fn == "softmax" else x - lse
        if fn == "softmax":
            return _np_softmax(x, axis)
        return x - _np_logsumexp(x, axis=axis, keepdims=True)
    return ref


def _np_lse_contract(x, axis=None, keepdims=False):
    x = np.asarray(x)
    x = x.astype(np.int64) if x.dtype == np.bool_ else x  # booleans count as integers
    if not x.size:
        s = np.sum(np.exp(x), axis=axis, keepdims=keepdims)  # validates the axis, dtype
        return np.log(s)
    return _np_logsumexp(x, axis=axis, keepdims=keepdims)


def _np_matmul(a, b):
    return np.matmul(a, b)


def _np_mm(a, b):
    if np.ndim(a) != 2 or np.ndim(b) != 2:
        raise ValueError("mm is 2-D only")
    return np.matmul(a, b)


def _np_mse(a, b):
    d = np.subtract(a, b)
    return np.mean(d * d)


def _as_float(x):
    """Bools and integers as the float dtype NumPy's exp gives them (issue 11 item 11)."""
    x = np.asarray(x)
    return x.astype(np.result_type(x.dtype, np.float16)) if x.dtype.kind in "biu" else x


def _np_sigmoid_contract(x):
    return _np_sigmoid(_as_float(x))


def _np_relu(x):
    return np.maximum(x, 0)


_UNARY = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "sigmoid": _np_sigmoid_contract, "relu": _np_relu,
    "softplus": lambda x: np.logaddexp(0, _as_float(x)), "abs": np.abs, "sign": np.sign,
    "negative": np.negative,
}
_BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.true_divide,
    "power": np.power, "maximum": np.maximum, "minimum": np.minimum, "mse": _np_mse,
    "matmul": _np_matmul, "mm": _np_mm,
}
_OTHER = {
    "sum": lambda x, **p: np.sum(x, **p), "mean": lambda x, **p: np.mean(x, **p),
    "max": lambda x, **p: np.max(x, **p), "min": lambda x, **p: np.min(x, **p),
    "var": _np_var, "logsumexp": _np_lse_contract,
    "softmax": _np_axis_softmax("softmax"), "log_softmax": _np_axis_softmax("log_softmax"),
    "reshape": lambda x, shape: np.reshape(x, shape),
    "transpose": lambda x, axes: np.transpose(x, axes),
    "squeeze": lambda x, axis: np.squeeze(x, axis),
    "expand_dims": lambda x, axis: np.expand_dims(x, axis),
    "broadcast_to": lambda x, shape: np.broadcast_to(x, shape),
    "expand": _np_expand, "clip": lambda x, a_min, a_max: np.clip(x, a_min, a_max),
    "astype": lambda x, dtype: np.asarray(x).astype(dtype),
}
_REDUCTIONS = ("sum", "mean", "max", "min", "var", "logsumexp", "softmax", "log_softmax")
CONTRACT_OPS = sorted(list(_UNARY) + list(_BINARY) + list(_OTHER) + [
    "concatenate", "stack", "where", "getitem", "index_select", "cross_entropy"])


def _contract_reference(name, arrays, params, extra):
    if params.get("axis") is not None and np.ndim(arrays[0]) == 0 and name in _REDUCTIONS:
        # stricter than np.sum/np.max (which take axis 0 or -1 for a 0-d array, while
        # np.mean/np.var refuse): fungrad refuses every axis of a 0-d array, saying "use None"
        raise ValueError("axis given for a 0-d array")
    if name in _UNARY:
        return _UNARY[name](arrays[0])
    if name in _BINARY:
        return _BINARY[name](*arrays)
    if name in _OTHER:
        return _OTHER[name](arrays[0], **params)
    if name == "concatenate":
        return np.concatenate(arrays, axis=params["axis"])
    if name == "stack":
        return np.stack(arrays, axis=params["axis"])
    if name == "where":
        return np.where(extra, *arrays)
    if name == "getitem":
        return np.asarray(arrays[0])[extra]
    if name == "index_select":
        return _np_index_select(arrays[0], extra)
    if name == "cross_entropy":
        return _np_ce(arrays[0], extra)
    raise AssertionError(name)


def _contract_call(name, args, params, extra):
    fn = getattr(fg, name)
    if name in ("concatenate", "stack"):
        return fn(list(args), **params)
    if name == "where":
        return fn(extra, *args)
    if name == "getitem":
        return fn(args[0], index=extra)
    if name in ("index_select", "cross_entropy"):
        return fn(args[0], extra)
    return fn(*args, **params)


@settings(max_examples=4 * _N)
@given(name=st.sampled_from(CONTRACT_OPS), data=st.data())
def test_single_op_contract(name, data):
    draw = data.draw
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    base = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3), label="shape")
    n_arrays = 2 if name in _BINARY or name in ("concatenate", "stack", "where") else 1
    shapes = [base] + [draw(_shape_like(base), label="other shape") for _ in range(n_arrays - 1)]
    dtypes = [draw(_DTYPES, label="dtype") for _ in shapes]
    arrays = [_values(rng, s, d) for s, d in zip(shapes, dtypes)]
    arrays = [with_layout(a, draw(st.sampled_from(LAYOUTS), label="layout")) for a in arrays]
    params = _params(draw, rng, name, arrays)
    extra = None
    if name == "where":
        extra = rng.random(draw(_shape_like(base), label="mask shape")) < 0.5
    elif name == "getitem":
        extra = _index_like(draw, rng, base)
    elif name == "index_select":
        extra = (rng.integers(-4, 4, size=draw(_SMALL_SHAPES)) if draw(st.integers(0, 4))
                 else rng.uniform(0, 2, size=2))
    elif name == "cross_entropy":
        extra = _targets_like(draw, rng, arrays[0])
    note(f"{name}: shapes {[a.shape for a in arrays]} dtypes {[a.dtype for a in arrays]} "
         f"params {params} extra {extra!r}")

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            expected = np.asarray(_contract_reference(name, arrays, params, extra))
            refused = None
        except (ValueError, TypeError, IndexError, np.exceptions.AxisError) as e:
            expected, refused = None, e
        tensors = [as_leaf(a, "C") if a.dtype.kind in "fi" else Tensor(a) for a in arrays]
        for t, a in zip(tensors, arrays):
            t.data = a  # keep the layout
        try:
            got = _contract_call(name, tensors, params, extra)
        except FungradError as e:
            assert name in str(e), f"the error does not name '{name}': {e}"
            assert refused is not None, f"{name} refused a call NumPy accepts: {e!r}"
            return
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{name} raised a bare {type(e).__name__}: {e}")
        assert refused is None, f"{name} accepted a call NumPy refuses ({refused!r})"
        assert isinstance(got, Tensor)
        assert got.shape == expected.shape, f"{name}: shape {got.shape}, NumPy {expected.shape}"
        assert got.dtype == expected.dtype, f"{name}: dtype {got.dtype}, NumPy {expected.dtype}"
        loose = got.dtype in (np.float32, np.float16)
        np.testing.assert_allclose(got.data.astype(np.float64), expected.astype(np.float64),
                                   rtol=1e-3 if loose else 1e-9, atol=1e-3 if loose else 1e-12,
                                   equal_nan=True)
        plain = _contract_call(name, arrays, params, extra)
        assert not isinstance(plain, Tensor)
        np.testing.assert_array_equal(np.asarray(plain), got.data)
        if got.requires_grad:
            seed = rng.standard_normal(got.shape)
            got.backward(seed.astype(got.dtype) if got.dtype.kind == "f" else seed)
            for t in tensors:
                if t.requires_grad and t.grad is not None:
                    assert t.grad.shape == t.shape, f"{name}: gradient shape {t.grad.shape}"
                    if t.dtype.kind == "f":
                        assert t.grad.dtype == t.dtype, f"{name}: gradient dtype {t.grad.dtype}"
                    else:  # integer leaves get the floating dtype of their cotangent
                        assert t.grad.dtype.kind == "f", f"{name}: gradient dtype {t.grad.dtype}"


# =============================================================================================
# registry-driven: every registered op, its declared cases, any layout, float32 and float64
# =============================================================================================

REGISTRY_CASES = [(name, k) for name, op in sorted(fg.ops().items())
                  for k in range(len(op.domain.cases))]


def _call_op(op, args, params):
    out = op(list(args), **params) if op.n_inputs is None else op(*args, **params)
    if op.n_outputs != 1:  # a multi-output op (split): its floating outputs raveled and joined
        out = fg.concatenate([fg.reshape(o, shape=(-1,)) for o in out
                              if np.asarray(getattr(o, "data", o)).dtype.kind in "fc"], axis=0)
    return out


def _forward_backward(op, args, params, floats, seed_rng):
    leaves = list(args)
    for i in floats:
        leaves[i] = as_leaf(np.asarray(args[i]), "C")
        leaves[i].data = args[i]
    out = _call_op(op, leaves, params)
    seed = seed_rng.standard_normal(out.shape)
    if out.dtype.kind == "f":
        seed = seed.astype(out.dtype)
    out.backward(seed)
    return out, [leaves[i].grad for i in floats]


@settings(max_examples=2 * _N)
@given(case=st.sampled_from(REGISTRY_CASES), dtype=st.sampled_from([np.float64, np.float32]),
       data=st.data())
def test_registry_ops_any_layout_and_dtype(case, dtype, data):
    name, k = case
    op = fg.ops()[name]
    rng = np.random.default_rng(k)
    args, params = op.domain.draw(rng, op.domain.cases[k])
    floats = op.domain.float_args(len(args))
    ref_out, ref_grads = _forward_backward(op, args, params, floats, np.random.default_rng(0))
    layouts = [data.draw(st.sampled_from(LAYOUTS), label=f"layout {i}") for i in range(len(args))]
    moved = [with_layout(a.astype(dtype) if i in floats else a, kind)
             for i, (a, kind) in enumerate(zip(args, layouts))]
    out, grads = _forward_backward(op, moved, params, floats, np.random.default_rng(0))
    f32 = dtype == np.float32
    tol = dict(rtol=1e-4, atol=1e-5) if f32 else dict(rtol=1e-12, atol=1e-12)
    assert out.shape == ref_out.shape
    if f32 and ref_out.dtype == np.float64 and params.get("dtype") != "float64":
        assert out.dtype == np.float32, f"{name}: float32 in, {out.dtype} out"
    np.testing.assert_allclose(out.data, ref_out.data, **tol)
    for g, rg, i in zip(grads, ref_grads, floats):
        assert (g is None) == (rg is None)
        if g is None:
            continue
        assert g.shape == np.shape(args[i])
        assert g.dtype == (np.float32 if f32 else np.float64), f"{name}: gradient {g.dtype}"
        np.testing.assert_allclose(g.data, rg.data, **(dict(rtol=1e-3, atol=1e-4) if f32 else tol))
