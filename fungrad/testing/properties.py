"""The properties every registered op must have, each a function of one :class:`OpCall`.

The registry-driven test suite runs each of them over every op with inputs drawn by
:func:`fungrad.testing.strategies.op_inputs`; :func:`check_op` does the same for one op of
yours. Each property returns None when it holds and raises AssertionError naming the op and
what differs when it does not.

=======================================  ======================================================
``vjp_matches_finite_differences``       reverse mode against central differences (float64)
``second_order_matches_finite_...``      the VJP's own derivative (if twice differentiable)
``jvp_matches_vjp``                      ``<J u, v>`` from ``fg.jvp`` equals ``<u, J^T v>``
``float32_preserved``                    float32 in: float32 out and gradients, close to float64
``broadcasting_agrees``                  elementwise: broadcast inputs = explicitly expanded ones
``inputs_not_mutated``                   forward and VJP leave inputs, output, cotangent untouched
``gradients_not_aliased``                no memory shared with inputs, cotangent or each other
``method_function_grad_agree``           ``t.tanh()``, ``fg.tanh(t)`` and ``fg.grad`` agree
``kernels_match_numpy_twins``            a Numba kernel the op reaches = its NumPy twin
``vmap_matches_loop``                    ``fg.vmap`` of the op = the op on each example, stacked
``vmap_of_vjp_matches_loop``             ``fg.vmap`` of the op's VJP = the VJP of each example
``complex_*``                            the same with complex inputs, for ops whose domain
                                         accepts them (finite differences along real and
                                         imaginary parts; second order in both modes)
=======================================  ======================================================

>>> import numpy as np, fungrad as fg
>>> from fungrad.testing import properties, temporary_ops
>>> with temporary_ops():
...     cube = fg.defop("cube_props", lambda x: x ** 3, lambda g, out, x: (3 * g * x * x,))
...     properties.check_op(cube, max_examples=5)
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import pkgutil
import re
import warnings
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from ..registry import Op, lookup
from ..tree import tree_map
from ..tensor import Tensor
from ._check import check_grads
from ._opcall import OpCall, param_defaults

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "Property", "PROPERTIES", "check_op", "vjp_matches_finite_differences",
    "second_order_matches_finite_differences", "jvp_matches_vjp", "float32_preserved",
    "complex_second_order",
    "broadcasting_agrees", "inputs_not_mutated", "gradients_not_aliased",
    "method_function_grad_agree", "kernels_match_numpy_twins", "tensor_methods",
    "kernel_twins", "kernels_used", "vmap_matches_loop", "vmap_of_vjp_matches_loop",
    "batch_of",
]


def _fg():
    import fungrad  # noqa: PLC0415 (fungrad imports this package lazily)

    return fungrad


def _rng(call: OpCall) -> np.random.Generator:
    # directions and cotangents: random but reproducible for a given example
    return np.random.default_rng(abs(hash(call.op.name)) % (2 ** 32))


def _cotangent(rng, out, dtype=None) -> np.ndarray:
    """A random cotangent for ``out``: real, or complex (both parts random) for complex
    values."""
    out = np.asarray(getattr(out, "data", out))
    dt = np.dtype(dtype or (out.dtype if out.dtype.kind in "fc" else np.float64))
    v = rng.standard_normal(out.shape)
    if dt.kind == "c":
        v = v + 1j * rng.standard_normal(out.shape)
    return v.astype(dt)


def _direction(rng, x) -> np.ndarray:
    """A random direction for argument ``x`` (complex for a complex one)."""
    d = rng.standard_normal(np.shape(x))
    return d + 1j * rng.standard_normal(np.shape(x)) if np.iscomplexobj(x) else d


def _pair(a, b) -> float:
    """``Re(sum(a * b))``: the pairing of a cotangent with a change (a dot product for reals)."""
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _name(call: OpCall) -> str:
    return f"op '{call.op.name}' at shapes {call.shapes()}" + (
        f" with {call.params}" if call.params else "")


# -- (a), (b): finite differences --------------------------------------------------------------


def vjp_matches_finite_differences(call: OpCall) -> None:
    """Reverse mode against central differences, per argument and (small inputs) element.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import vjp_matches_finite_differences
    >>> vjp_matches_finite_differences(OpCall("tanh", [np.array([0.5, -1.0])]))
    """
    if call.float_positions:
        check_grads(call.function(), *call.float_args, order=1, modes=("rev",))


def second_order_matches_finite_differences(call: OpCall) -> None:
    """The derivative of the VJP against central differences, if the op declares it exists.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import second_order_matches_finite_differences
    >>> second_order_matches_finite_differences(OpCall("tanh", [np.array([0.5, -1.0])]))
    """
    if call.op.twice_differentiable and call.float_positions:
        check_grads(call.function(), *call.float_args, order=2, modes=("rev",))


def complex_second_order(call: OpCall) -> None:
    """For complex inputs: both modes to second order (forward mode is the transpose of the
    VJP, whose complex conjugations are what this checks).

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import complex_second_order
    >>> complex_second_order(OpCall("exp", [np.array([0.5 + 1.0j, -1.0])]))
    """
    if call.float_positions:
        order = 2 if call.op.twice_differentiable else 1
        check_grads(call.function(), *call.float_args, order=order, modes=("rev", "fwd"))


# -- (c): forward mode is the transpose of reverse mode ----------------------------------------


def jvp_matches_vjp(call: OpCall) -> None:
    """``<J u, v>`` from ``fg.jvp`` equals ``<u, J^T v>`` from ``fg.vjp`` to rounding.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import jvp_matches_vjp
    >>> jvp_matches_vjp(OpCall("multiply", [np.ones((2, 3)), np.arange(3.0)]))
    """
    if not call.float_positions:
        return
    fg = _fg()
    f, xs, rng = call.function(), call.float_args, _rng(call)
    out, vjp_fn = fg.vjp(f, *xs)
    v = _cotangent(rng, out)
    cts = [np.asarray(c) for c in vjp_fn(v)]
    u = [_direction(rng, x) for x in xs]
    out2, t = fg.jvp(f, xs, u)
    t = np.asarray(t)
    assert t.shape == np.shape(out), (
        f"jvp_matches_vjp: {_name(call)}: the JVP has shape {t.shape}, the output "
        f"{np.shape(out)}")
    np.testing.assert_array_equal(out2, out, err_msg=f"{_name(call)}: fg.jvp and fg.vjp "
                                                     "give different outputs")
    lhs = _pair(t, v)
    rhs = float(sum(_pair(a, b) for a, b in zip(u, cts)))
    scale = float(np.linalg.norm(t) * np.linalg.norm(v)
                  + sum(np.linalg.norm(a) * np.linalg.norm(b) for a, b in zip(u, cts)))
    assert abs(lhs - rhs) <= 1e-9 * max(scale, 1e-30), (
        f"jvp_matches_vjp: {_name(call)}: <J u, v> from fg.jvp = {lhs!r} but "
        f"<u, J^T v> from fg.vjp = {rhs!r}")


# -- (d): dtypes ---------------------------------------------------------------------------------


def float32_preserved(call: OpCall) -> None:
    """float32 inputs give a float32 output and float32 gradients (in ``fg.vjp``, in
    ``.backward()`` and from the op's own VJP), close to the float64 results.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import float32_preserved
    >>> float32_preserved(OpCall("softmax", [np.array([[1.0, 2.0, 0.5]])]))
    """
    fg = _fg()
    c32 = call.astype(np.float32)
    c64 = c32.astype(np.float64)  # the same values, in float64
    out32 = np.asarray(c32.run())
    out64 = np.asarray(c64.run())
    if out64.dtype.kind not in "fc":
        return
    expected = np.dtype(call.params["dtype"]) if "dtype" in call.params else \
        np.dtype(np.complex64 if out64.dtype.kind == "c" else np.float32)
    assert out32.dtype == expected, (
        f"float32_preserved: {_name(call)}: float32 inputs gave a {out32.dtype} output "
        f"(expected {expected})")
    big = max(1.0, float(np.max(np.abs(out64), initial=0.0)))
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5 * big,
                               err_msg=f"{_name(call)}: float32 forward far from float64")
    if not c32.float_positions:
        return
    rng = _rng(call)
    v32 = _cotangent(rng, out32, np.dtype(out32.dtype))
    _, vjp32 = fg.vjp(c32.function(), *c32.float_args)
    _, vjp64 = fg.vjp(c64.function(), *c64.float_args)
    g32 = vjp32(v32)
    g64 = vjp64(v32.astype(np.result_type(v32.dtype, np.float64)))
    for i, a, b in zip(c32.float_positions, g32, g64):
        want = np.asarray(c32.args[i]).dtype
        assert np.asarray(a).dtype == want, (
            f"float32_preserved: {_name(call)}: fg.vjp gave a {np.asarray(a).dtype} "
            f"gradient for {want} argument {i}")
        big = max(1.0, float(np.max(np.abs(b), initial=0.0)))
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4 * big, err_msg=(
            f"{_name(call)}: float32 gradient of argument {i} far from float64"))
    ts = _tensors(c32)
    y = c32.run(ts)
    y.backward(v32)
    for i in c32.float_positions:
        gd = ts[i].grad
        want = np.asarray(c32.args[i]).dtype
        assert gd is not None and gd.dtype == want, (
            f"float32_preserved: {_name(call)}: .backward() gave "
            f"{None if gd is None else gd.dtype} gradient for {want} argument {i}")
    raw = _raw_vjp(c32, v32, out32)
    for i, c in zip(c32.float_positions, raw):
        if c is not None:
            dt = np.asarray(_data(c)).dtype
            precision = np.finfo(dt).dtype if dt.kind in "fc" else dt
            assert precision == np.float32, (
                f"float32_preserved: {_name(call)}: the op's VJP returns a {dt} cotangent "
                f"for {np.asarray(c32.args[i]).dtype} argument {i} (the engine casts it "
                "back, but that is a silent upcast)")


def _tensors(call: OpCall) -> list:
    floats = set(call.float_positions)
    return [Tensor(a, autograd=True) if i in floats else a for i, a in enumerate(call.args)]


def _raw_vjp(call: OpCall, g, out) -> list:
    """The op's own VJP on ndarrays, for the float arguments (no engine in between)."""
    floats = call.float_positions
    needs = tuple(i in floats for i in range(len(call.args)))
    cts = list(call.raw_vjp(g, needs))
    return [cts[i] if i < len(cts) else None for i in floats]


# -- (e): broadcasting ---------------------------------------------------------------------------


def _sum_to(x: np.ndarray, shape: tuple) -> np.ndarray:
    x = np.asarray(x)
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and x.shape[lead + i] != 1)
    return x.sum(axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)


def broadcasting_agrees(call: OpCall) -> None:
    """For elementwise ops: the output has the broadcast shape, gradients the inputs' shapes,
    and both equal those of the same op on inputs expanded explicitly (gradients summed back),
    which also agree with finite differences.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import broadcasting_agrees
    >>> broadcasting_agrees(OpCall("add", [np.ones((2, 3)), np.arange(3.0)]))
    """
    if call.op.n_outputs != 1 and call.output is None:  # each output has the broadcast shape
        for view in call.views()[1:]:
            broadcasting_agrees(view)
        return
    fg = _fg()
    shapes = call.shapes()
    full = tuple(np.broadcast_shapes(*shapes))
    out = np.asarray(call.run())
    assert out.shape == full, (
        f"broadcasting_agrees: {_name(call)}: output shape {out.shape}, expected the "
        f"broadcast shape {full}")
    expanded = call.with_args([np.broadcast_to(a, full).copy() for a in call.args])
    np.testing.assert_allclose(np.asarray(expanded.run()), out, rtol=1e-12, atol=1e-300,
                               err_msg=f"{_name(call)}: forward differs from expanded inputs")
    if not call.float_positions:
        return
    v = _cotangent(_rng(call), out)
    grads = fg.vjp(call.function(), *call.float_args)[1](v)
    grads_full = fg.vjp(expanded.function(), *expanded.float_args)[1](v)
    for i, g, gf in zip(call.float_positions, grads, grads_full):
        g = np.asarray(g)
        assert g.shape == shapes[i], (
            f"broadcasting_agrees: {_name(call)}: gradient of argument {i} has shape "
            f"{g.shape}, the argument {shapes[i]}")
        summed = _sum_to(gf, shapes[i])
        big = max(1.0, float(np.max(np.abs(summed), initial=0.0)))
        np.testing.assert_allclose(g, summed, rtol=1e-9, atol=1e-12 * big, err_msg=(
            f"broadcasting_agrees: {_name(call)}: gradient of broadcast argument {i} differs "
            "from the gradient of the explicitly expanded argument summed back"))
    check_grads(call.function(), *call.float_args, order=1, modes=("rev",))


# -- (f): no mutation, no aliasing ----------------------------------------------------------------


def _snapshot(x):
    return tree_map(lambda a: a.copy() if isinstance(a, np.ndarray) else a, x)


def _assert_same(before, after, what: str) -> None:
    if isinstance(before, np.ndarray):
        assert np.array_equal(before, np.asarray(after), equal_nan=before.dtype.kind in "fc"), (
            f"inputs_not_mutated: {what} was modified in place")
    elif isinstance(before, (tuple, list)):
        for k, (b, a) in enumerate(zip(before, after)):
            _assert_same(b, a, f"{what}[{k}]")
    elif isinstance(before, dict):
        for k in before:
            _assert_same(before[k], after[k], f"{what}[{k!r}]")


def inputs_not_mutated(call: OpCall) -> None:
    """Forward, ``backward()``, ``fg.vjp`` and the op's own VJP leave the inputs, the static
    parameters, the output and the cotangent as they were.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import inputs_not_mutated
    >>> inputs_not_mutated(OpCall("exp", [np.array([0.5, -1.0])]))
    """
    fg = _fg()
    name = _name(call)
    args0, params0 = _snapshot(list(call.args)), _snapshot(call.params)
    out = np.asarray(call.run())
    _assert_same(args0, call.args, f"{name}: forward: an input")
    _assert_same(params0, call.params, f"{name}: forward: a static parameter")
    if not call.float_positions or out.dtype.kind not in "fc":
        return
    g = _cotangent(_rng(call), out)
    g0 = g.copy()
    ts = _tensors(call)
    y = call.run(ts)
    y_out = y.data.copy()
    y.backward(g)
    _assert_same(args0, [_data(t) for t in ts], f"{name}: backward(): an input")
    _assert_same(g0, g, f"{name}: backward(): the cotangent")
    _assert_same(y_out, y.data, f"{name}: backward(): the output")
    fg.vjp(call.function(), *call.float_args)[1](g)
    _assert_same(args0, call.args, f"{name}: fg.vjp: an input")
    _assert_same(g0, g, f"{name}: fg.vjp: the cotangent")
    out_copy = out.copy()
    _raw_vjp(call, g, out)
    _assert_same(args0, call.args, f"{name}: the op's VJP: an input")
    _assert_same(g0, g, f"{name}: the op's VJP: the cotangent")
    _assert_same(out_copy, out, f"{name}: the op's VJP: the output")
    _assert_same(params0, call.params, f"{name}: the op's VJP: a static parameter")


def gradients_not_aliased(call: OpCall) -> None:
    """Gradients from ``fg.vjp`` and ``.backward()`` share memory with no input, no
    cotangent and no other gradient (a user may update any of them in place).

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import gradients_not_aliased
    >>> gradients_not_aliased(OpCall("reshape", [np.arange(6.0)], {"shape": (2, 3)}))
    """
    fg = _fg()
    if not call.float_positions:
        return
    name = _name(call)
    out = np.asarray(call.run())
    g = _cotangent(_rng(call), out)
    xs = call.float_args
    cts = [np.asarray(c) for c in fg.vjp(call.function(), *xs)[1](g)]
    _assert_fresh(name, "fg.vjp", cts, list(call.args) + [g])
    ts = _tensors(call)
    y = call.run(ts)
    y.backward(g)
    grads = [ts[i].grad.data for i in call.float_positions]
    _assert_fresh(name, ".backward()", grads, [_data(t) for t in ts] + [g, y.data])


def _assert_fresh(name: str, where: str, grads: list, others: list) -> None:
    for i, a in enumerate(grads):
        for j, b in enumerate(grads[:i]):
            assert not np.shares_memory(a, b), (
                f"gradients_not_aliased: {name}: {where} returns gradients {j} and {i} "
                "sharing memory")
        for b in others:
            if isinstance(b, np.ndarray):
                assert not np.shares_memory(a, b), (
                    f"gradients_not_aliased: {name}: {where} gradient {i} shares memory with "
                    "an input, the output or the cotangent")


# -- (g): method, function and functional grad --------------------------------------------------

# operators and methods whose name is not the op's name
_OPERATORS = {
    "add": "__add__", "subtract": "__sub__", "multiply": "__mul__", "divide": "__truediv__",
    "power": "__pow__", "matmul": "__matmul__", "negative": "__neg__", "abs": "__abs__",
    "getitem": "__getitem__", "expand_dims": "unsqueeze", "mod": "__mod__",
}


def tensor_methods(op: Op | str) -> list[str]:
    """The Tensor methods (and operators) that run ``op``: ``["tanh"]``, ``["__add__"]``...

    >>> from fungrad.testing.properties import tensor_methods
    >>> tensor_methods("abs"), tensor_methods("softmax"), tensor_methods("stack")
    (['abs', '__abs__'], ['softmax'], [])
    """
    op = lookup(op)
    if op.n_inputs is None:
        return []
    names = []
    if op.name.isidentifier() and not op.name.startswith("_"):
        static = inspect.getattr_static(Tensor, op.name, None)
        if static is not None and inspect.isfunction(static):
            names.append(op.name)
    if op.name in _OPERATORS and hasattr(Tensor, _OPERATORS[op.name]):
        names.append(_OPERATORS[op.name])
    return names


def _call_method(call: OpCall, method: str, args: list):
    bound = getattr(args[0], method)
    try:
        return bound(*args[1:], **call.params)
    except TypeError:
        # the book's spellings: t.softmax(0), t.clip(lo, hi), t.reshape((3, 4))...
        defaults = param_defaults(call.op)
        given = [i for i, p in enumerate(call.op.param_names) if p in call.params]
        if not given:
            raise
        names = call.op.param_names[:given[-1] + 1]
        return bound(*args[1:], *[call.params.get(p, defaults.get(p)) for p in names])


def method_function_grad_agree(call: OpCall) -> None:
    """The op's Tensor method (if any), the op called as a function and ``fg.grad`` give the
    same output and the same gradients.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import method_function_grad_agree
    >>> method_function_grad_agree(OpCall("sigmoid", [np.array([0.5, -1.0])]))
    """
    fg = _fg()
    name = _name(call)
    floats = call.float_positions
    ts = _tensors(call)
    y = call.run(ts)
    if not floats or not isinstance(y, Tensor) or y.dtype.kind not in "fc":
        return
    g = _cotangent(_rng(call), y)
    y.backward(g)
    reference = [ts[i].grad.data for i in floats]
    f = call.function()

    def loss(*xs):  # Re(sum(g * f)): its gradient is the VJP of g
        out = f(*xs) * g
        return fg.sum(fg.real(out) if y.dtype.kind == "c" else out)

    functional = fg.grad(loss, argnums=tuple(range(len(floats))))(*call.float_args)
    for i, a, b in zip(floats, reference, functional):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-300, err_msg=(
            f"method_function_grad_agree: {name}: fg.grad and .backward() differ for "
            f"argument {i}"))
    if 0 not in floats:
        return
    for method in tensor_methods(call.op):
        tm = _tensors(call)
        ym = _call_method(call, method, tm)
        assert isinstance(ym, Tensor), f"{name}: Tensor.{method} did not return a Tensor"
        np.testing.assert_allclose(ym.data, y.data, rtol=1e-12, atol=1e-300, err_msg=(
            f"method_function_grad_agree: {name}: Tensor.{method} and the function differ"))
        assert ym.dtype == y.dtype and ym.shape == y.shape
        ym.backward(g)
        for i, a in zip(floats, reference):
            np.testing.assert_allclose(tm[i].grad.data, a, rtol=1e-10, atol=1e-300, err_msg=(
                f"method_function_grad_agree: {name}: gradients through Tensor.{method} and "
                f"through the function differ for argument {i}"))


# -- (h): Numba kernels against their NumPy twins ----------------------------------------------


def kernel_twins() -> list[tuple]:
    """``(module, name)`` for every kernel ``name`` in ``fungrad.kernels`` that has a
    ``name_numpy`` twin.

    >>> from fungrad.testing.properties import kernel_twins
    >>> ("scatter_add" in [name for _, name in kernel_twins()])
    True
    """
    from .. import kernels  # noqa: PLC0415

    pairs = []
    for info in pkgutil.iter_modules(kernels.__path__):
        mod = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for attr in sorted(vars(mod)):
            if attr.startswith("_") or attr.endswith("_numpy"):
                continue
            if callable(getattr(mod, attr)) and callable(getattr(mod, attr + "_numpy", None)):
                pairs.append((mod, attr))
    return pairs


@contextlib.contextmanager
def _patched_kernels(twin: bool) -> Iterator[set]:
    """Wrap every kernel: record which ones run, and run the NumPy twin instead if ``twin``."""
    used: set = set()
    saved = []
    for mod, attr in kernel_twins():
        original = getattr(mod, attr)
        replacement = getattr(mod, attr + "_numpy") if twin else original
        key = f"{mod.__name__}.{attr}"

        def wrapper(*a, _run=replacement, _key=key, **k):
            used.add(_key)
            return _run(*a, **k)

        saved.append((mod, attr, original))
        setattr(mod, attr, wrapper)
    try:
        yield used
    finally:
        for mod, attr, original in saved:
            setattr(mod, attr, original)


def _forward_and_vjp(call: OpCall):
    fg = _fg()
    out = np.asarray(call.run())
    cts: list = []
    if call.float_positions and out.dtype.kind in "fc":
        v = _cotangent(np.random.default_rng(0), out)
        cts = [np.asarray(c) for c in fg.vjp(call.function(), *call.float_args)[1](v)]
    return out, cts


def kernels_used(call: OpCall) -> set[str]:
    """Names of the kernels the op's forward and VJP run for this call.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import kernels_used
    >>> sorted(kernels_used(OpCall("index_select", [np.ones((50, 4)), np.zeros(300, int)])))
    ['fungrad.kernels.scatter.scatter_add']
    """
    with _patched_kernels(twin=False) as used:
        _forward_and_vjp(call)
    return set(used)


def kernels_match_numpy_twins(call: OpCall) -> None:
    """If the op's forward or VJP runs a Numba kernel, running its NumPy twin instead gives
    the same output and gradients.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import kernels_match_numpy_twins
    >>> call = OpCall("cross_entropy", [np.zeros((4, 3)), np.array([0, 2, 1, 0])])
    >>> kernels_match_numpy_twins(call)
    """
    with _patched_kernels(twin=False) as used:
        out, cts = _forward_and_vjp(call)
    if not used:
        return
    with _patched_kernels(twin=True):
        out_np, cts_np = _forward_and_vjp(call)
    name = f"{_name(call)} (kernels {sorted(used)})"
    np.testing.assert_allclose(out, out_np, rtol=1e-9, atol=1e-12,
                               err_msg=f"kernels_match_numpy_twins: {name}: forward")
    for i, (a, b) in enumerate(zip(cts, cts_np)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=(
            f"kernels_match_numpy_twins: {name}: gradient {i}"))


# -- (i): fg.vmap against a loop over the examples ------------------------------------------------

_BATCH = 3  # examples per batch: enough to tell the batch axis from the others


def batch_of(call: OpCall, size: int = _BATCH, seed: int = 0) -> list[OpCall]:
    """``size`` calls of the op with the same shapes and parameters: ``call`` itself, then
    others drawn from the op's domain (float inputs keep ``call``'s dtypes).

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import batch_of
    >>> [c.shapes() for c in batch_of(OpCall("add", [np.ones(2), np.ones(())]))]
    [((2,), ()), ((2,), ()), ((2,), ())]
    """
    rng = np.random.default_rng(seed)
    dtypes = [np.asarray(a).dtype for a in call.args]
    calls = [call]
    for _ in range(size - 1):
        args, _ = call.op.domain.draw(rng, (call.shapes(), call.params))
        calls.append(call.with_args([np.asarray(a).astype(dt) if dt.kind == "f" else a
                                     for a, dt in zip(args, dtypes)]))
    return calls


def _in_axes(call: OpCall, pattern: int | None) -> tuple:
    """One of 0, 1 and None per argument, mixed (at least one mapped; 1 only where one
    example has an axis to stack along); ``pattern`` None: chosen from the call itself."""
    if pattern is None:
        pattern = zlib.crc32(repr((call.op.name, call.shapes(), sorted(call.params))).encode())
    choices = (0, 1, None)
    axes = [choices[(i + pattern) % 3] for i in range(len(call.args))]
    axes = [0 if a == 1 and np.ndim(x) == 0 else a for a, x in zip(axes, call.args)]
    if all(a is None for a in axes):
        axes[pattern % len(axes)] = 0
    return tuple(axes)


def _stacked(calls: list[OpCall], axes: tuple) -> list:
    return [calls[0].args[i] if a is None else np.stack([c.args[i] for c in calls], axis=a)
            for i, a in enumerate(axes)]


def _shared(calls: list[OpCall], axes: tuple) -> list[OpCall]:
    """The calls as the vmapped function sees them: unmapped arguments are the first's."""
    return [c.with_args([calls[0].args[i] if a is None else x for i, (a, x) in
                         enumerate(zip(axes, c.args))]) for c in calls]


def _assert_batch_close(name: str, got, expected: list, what: str) -> None:
    got = np.asarray(got)
    want = np.stack([np.asarray(e) for e in expected])
    assert got.shape == want.shape, (
        f"{name}: {what}: fg.vmap gave shape {got.shape}, the loop {want.shape}")
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=f"{name}: {what}")
        return
    big = max(1.0, float(np.nanmax(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * big,
                               err_msg=f"{name}: {what}: fg.vmap differs from the loop")


@contextlib.contextmanager
def _no_fallback(op: Op) -> Iterator[None]:
    """An op with a batching rule batches by it alone: any per-example fallback inside (an op
    its rule calls that has none) fails the check. (An op without a rule is checked through
    the fallback; the registry's meta-test requires built-in ops to have one.)"""
    from ..errors import BatchingFallbackWarning  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("error" if op.batch is not None else "ignore",
                              BatchingFallbackWarning)
        yield


def vmap_matches_loop(call: OpCall, pattern: int | None = None) -> None:
    """``fg.vmap`` of the op over a batch of inputs drawn from its domain equals the op on
    each example, stacked; the arguments mapped over axis 0, axis 1 or not at all (mixed).

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import vmap_matches_loop
    >>> vmap_matches_loop(OpCall("matmul", [np.ones((2, 3)), np.ones(3)]))
    """
    fg = _fg()
    axes = _in_axes(call, pattern)
    calls = batch_of(call)
    name = f"vmap_matches_loop: {_name(call)}, in_axes={axes}"
    with _no_fallback(call.op):
        got = fg.vmap(lambda *args: call.with_args(args).run(), in_axes=axes)(
            *_stacked(calls, axes))
    _assert_batch_close(name, got, [c.run() for c in _shared(calls, axes)], "the output")


def vmap_of_vjp_matches_loop(call: OpCall, pattern: int | None = None) -> None:
    """``fg.vmap`` of the op's VJP (``fg.vjp``) over a batch of inputs and cotangents equals
    the VJP of each example: the op's batching rule applied to its own VJP.

    >>> import numpy as np
    >>> from fungrad.testing import OpCall
    >>> from fungrad.testing.properties import vmap_of_vjp_matches_loop
    >>> vmap_of_vjp_matches_loop(OpCall("tanh", [np.array([0.5, -1.0])]))
    """
    positions = call.float_positions
    out = np.asarray(call.run())
    if not positions or out.dtype.kind != "f":
        return
    fg = _fg()
    axes = _in_axes(call, pattern)
    calls = _shared(batch_of(call), axes)
    rng = _rng(call)
    cts = [_cotangent(rng, out) for _ in calls]

    def vjp_of(*args_and_ct):
        *args, ct = args_and_ct

        def f(*xs):
            full = list(args)
            for i, x in zip(positions, xs):
                full[i] = x
            return call.with_args(full).run()

        return fg.vjp(f, *[args[i] for i in positions])[1](ct)

    name = f"vmap_of_vjp_matches_loop: {_name(call)}, in_axes={axes}"
    with _no_fallback(call.op):
        got = fg.vmap(vjp_of, in_axes=axes + (0,))(*_stacked(calls, axes), np.stack(cts))
    loop = [fg.vjp(c.function(), *c.float_args)[1](v) for c, v in zip(calls, cts)]
    for k, i in enumerate(positions):
        _assert_batch_close(name, got[k], [g[k] for g in loop], f"the gradient of argument {i}")


# -- the table and the runner ---------------------------------------------------------------------


@dataclass(frozen=True)
class Property:
    """A property, the ops it applies to, and which inputs it is checked on.

    >>> import fungrad as fg
    >>> from fungrad.testing.properties import PROPERTIES
    >>> prop = PROPERTIES["broadcasting_agrees"]
    >>> prop.applies(fg.ops()["add"]), prop.applies(fg.ops()["tanh"]), prop.cases
    (True, False, 'invented')
    """

    name: str
    check: Callable[[OpCall], None]
    applies: Callable[[Op], bool]
    cases: str = "any"  # op_inputs(op, cases=...): "invented" for the broadcasting variants
    dtype: str = "float64"  # "complex128": the inputs that may be complex are

    def strategy(self, op: Op) -> SearchStrategy[OpCall]:
        """The Hypothesis strategy of inputs this property is checked on for ``op``."""
        from .strategies import op_inputs  # noqa: PLC0415 (hypothesis on first use)

        return op_inputs(op, cases=self.cases, dtype=np.dtype(self.dtype))


def _always(op: Op) -> bool:
    return True


def _twice(op: Op) -> bool:
    return bool(op.twice_differentiable)


def _complex(op: Op) -> bool:
    return op.domain.accepts_complex


def _complex_broadcasting(op: Op) -> bool:
    return _complex(op) and _broadcasting(op)


def _broadcasting(op: Op) -> bool:
    return op.domain.kind == "elementwise" and (op.n_inputs is None or op.n_inputs >= 2)


PROPERTIES: dict[str, Property] = {p.name: p for p in [
    Property("vjp_matches_finite_differences", vjp_matches_finite_differences, _always),
    Property("second_order_matches_finite_differences",
             second_order_matches_finite_differences, _twice),
    Property("jvp_matches_vjp", jvp_matches_vjp, _always),
    Property("float32_preserved", float32_preserved, _always),
    Property("broadcasting_agrees", broadcasting_agrees, _broadcasting, cases="invented"),
    Property("inputs_not_mutated", inputs_not_mutated, _always),
    Property("gradients_not_aliased", gradients_not_aliased, _always),
    Property("method_function_grad_agree", method_function_grad_agree, _always),
    Property("kernels_match_numpy_twins", kernels_match_numpy_twins, _always),
    Property("vmap_matches_loop", vmap_matches_loop, _always),
    Property("vmap_of_vjp_matches_loop", vmap_of_vjp_matches_loop, _always),
    # complex inputs, for every op whose domain accepts them
    Property("complex_vjp_matches_finite_differences", vjp_matches_finite_differences,
             _complex, dtype="complex128"),
    Property("complex_second_order", complex_second_order, _complex, dtype="complex128"),
    Property("complex_jvp_matches_vjp", jvp_matches_vjp, _complex, dtype="complex128"),
    Property("complex64_preserved", float32_preserved, _complex, dtype="complex128"),
    Property("complex_broadcasting_agrees", broadcasting_agrees, _complex_broadcasting,
             cases="invented", dtype="complex128"),
    Property("complex_method_function_grad_agree", method_function_grad_agree, _complex,
             dtype="complex128"),
]}


def _runner(check: Callable[[OpCall], None], op: Op) -> Callable[[OpCall], None]:
    def run(call: OpCall) -> None:
        check(call)

    # a name of its own: Hypothesis keys its example database by it
    run.__name__ = run.__qualname__ = re.sub(r"\W", "_", f"{check.__name__}__{op.name}")
    return run


def check_op(op: Op | str, *, properties: Sequence[str] | None = None,
             max_examples: int | None = None) -> None:
    """Run the properties (default: all that apply) on ``op`` with Hypothesis-drawn inputs.

    Uses the active Hypothesis settings profile; ``max_examples`` overrides its count. Raises
    the first failure, with Hypothesis's minimal falsifying example.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.testing import properties
    >>> properties.check_op("tanh", properties=["jvp_matches_vjp"], max_examples=5)
    """
    from hypothesis import given, settings  # noqa: PLC0415

    op = lookup(op)
    names = list(PROPERTIES) if properties is None else list(properties)
    unknown = [n for n in names if n not in PROPERTIES]
    if unknown:
        raise ValueError(f"check_op: unknown properties {unknown}; choose from "
                         f"{list(PROPERTIES)}")
    overrides: dict[str, Any] = {"deadline": None}
    if max_examples is not None:
        overrides["max_examples"] = max_examples
    for n in names:
        prop = PROPERTIES[n]
        if not prop.applies(op):
            continue

        run = settings(**overrides)(given(prop.strategy(op))(_runner(prop.check, op)))
        run()
