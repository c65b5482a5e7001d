"""Every registered op, checked from the registry: one generic module, test ids name the op.

The ops are read from ``fg.ops()`` when this module is collected, so an op registered with
``fg.defop`` before collection (in a conftest, a plugin, an imported package) is checked with no
new test code. Each property is a function of one drawn call in :mod:`fungrad.testing.properties`;
inputs come from the op's own domain through ``fungrad.testing.strategies.op_inputs``.

(a) VJP vs finite differences      (b) second order where declared   (c) JVP consistent with VJP
(d) float32 in -> float32 out/grads (e) broadcasting variants          (f) no mutation, no aliasing
(g) method, function, fg.grad agree (h) kernels vs NumPy twins and vs NumPy references
(i) fg.vmap of the op, and of its VJP, against a loop over the examples (in_axes 0, 1 and None)
plus every declared case deterministically (to second order, both modes; batched three ways)
and meta-tests that each built-in op declares its domain and its batching rule.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import fungrad as fg
from fungrad.domains import Real
from fungrad.testing import OpCall, check_grads
from fungrad.testing import properties as P
from fungrad.testing.strategies import op_inputs

ALL_OPS = sorted(fg.ops().items())

# Known bugs in the engine (not in the ops' metadata), as {(property, op name): reason}, each
# run as xfail(strict=True) so that the fix shows up as an XPASS to remove from here.
KNOWN_BUGS: dict = {}


def _params(prop: str):
    applies = P.PROPERTIES[prop].applies
    out = []
    for name, op in ALL_OPS:
        if not applies(op):
            continue
        reason = KNOWN_BUGS.get((prop, name))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(op, id=name, marks=marks))
    return out


def _run(prop: str, op, **overrides) -> None:
    """Run property ``prop`` on ``op`` as a Hypothesis test under the active profile."""
    p = P.PROPERTIES[prop]
    if (prop, op.name) in KNOWN_BUGS:  # expected to fail: do not spend time shrinking
        overrides["phases"] = (Phase.explicit, Phase.reuse, Phase.generate)

    def run(call: OpCall) -> None:
        p.check(call)

    # a name of its own: Hypothesis keys its example database by it
    run.__name__ = run.__qualname__ = re.sub(r"\W", "_", f"{prop}__{op.name}")
    settings(deadline=None, **overrides)(given(p.strategy(op))(run))()


@pytest.mark.parametrize("op", _params("vjp_matches_finite_differences"))
def test_vjp_matches_finite_differences(op):
    """(a) reverse mode against float64 central differences (per argument, full Jacobian)."""
    _run("vjp_matches_finite_differences", op)


@pytest.mark.parametrize("op", _params("second_order_matches_finite_differences"))
def test_second_order_matches_finite_differences(op):
    """(b) the VJP's own derivative, for ops declared twice differentiable."""
    _run("second_order_matches_finite_differences", op)


@pytest.mark.parametrize("op", _params("jvp_matches_vjp"))
def test_jvp_matches_vjp(op):
    """(c) <J u, v> from fg.jvp equals <u, J^T v> from fg.vjp."""
    _run("jvp_matches_vjp", op)


@pytest.mark.parametrize("op", _params("float32_preserved"))
def test_float32_preserved(op):
    """(d) float32 in gives float32 out and float32 gradients, close to float64."""
    _run("float32_preserved", op)


@pytest.mark.parametrize("op", _params("broadcasting_agrees"))
def test_broadcasting_agrees(op):
    """(e) elementwise ops of several inputs on invented broadcast-compatible shapes."""
    _run("broadcasting_agrees", op)


@pytest.mark.parametrize("op", _params("inputs_not_mutated"))
def test_inputs_not_mutated(op):
    """(f) forward, backward, fg.vjp and the op's VJP modify nothing they are given."""
    _run("inputs_not_mutated", op)


@pytest.mark.parametrize("op", _params("gradients_not_aliased"))
def test_gradients_not_aliased(op):
    """(f) gradients share memory with no input, cotangent or other gradient."""
    _run("gradients_not_aliased", op)


@pytest.mark.parametrize("op", _params("method_function_grad_agree"))
def test_method_function_grad_agree(op):
    """(g) Tensor method (where one exists), function and fg.grad agree."""
    _run("method_function_grad_agree", op)


@pytest.mark.parametrize("op", _params("kernels_match_numpy_twins"))
def test_kernels_match_numpy_twins(op):
    """(h) an op that reaches a Numba kernel gives the same results with the NumPy twin."""
    _run("kernels_match_numpy_twins", op, max_examples=max(3, settings().max_examples // 4))


@pytest.mark.parametrize("op", _params("vmap_matches_loop"))
def test_vmap_matches_loop(op):
    """(i) fg.vmap of the op (arguments mapped over axis 0, 1 or not, mixed) equals the op on
    each example, stacked; a built-in op never falls back to the per-example loop."""
    _run("vmap_matches_loop", op, max_examples=max(3, settings().max_examples // 2))


@pytest.mark.parametrize("op", _params("vmap_of_vjp_matches_loop"))
def test_vmap_of_vjp_matches_loop(op):
    """(i) fg.vmap of the op's VJP equals the VJP of each example (per-example gradients)."""
    _run("vmap_of_vjp_matches_loop", op, max_examples=max(3, settings().max_examples // 2))


# -- (h) the kernel-backed ops against plain NumPy formulas --------------------------------------


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _ref_cross_entropy(logits, targets):
    c = logits.shape[-1]
    x, t = logits.reshape(-1, c), np.asarray(targets).reshape(-1)
    m = x.max(axis=-1)
    lse = m + np.log(np.exp(x - m[:, None]).sum(axis=-1))
    return np.mean(lse - x[np.arange(t.size), t])


def _ref_cross_entropy_grad(g, logits, targets):
    c = logits.shape[-1]
    x, t = logits.reshape(-1, c), np.asarray(targets).reshape(-1)
    onehot = np.eye(c)[t]
    return ((_softmax_rows(x) - onehot) * g / t.size).reshape(logits.shape)


def _ref_scatter_add(values, indices, n_rows):
    idx = np.asarray(indices)
    out = np.zeros((n_rows,) + np.shape(values)[idx.ndim:])
    np.add.at(out, idx, values)
    return out


def _ref_scatter_index(x, shape, index):
    out = np.zeros(shape)
    np.add.at(out, index, x)
    return out


def _lstm_parts(gates, c_prev):
    h = c_prev.shape[-1]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f = sig(gates[..., :h]), sig(gates[..., h:2 * h])
    cand, o = np.tanh(gates[..., 2 * h:3 * h]), sig(gates[..., 3 * h:])
    c = f * c_prev + i * cand
    return i, f, cand, o, c, np.tanh(c)


def _ref_lstm_cell(gates, c_prev):
    i, f, cand, o, c, tc = _lstm_parts(gates, c_prev)
    return np.concatenate([o * tc, c], axis=-1)


def _ref_lstm_cell_grad(g, gates, c_prev):
    i, f, cand, o, c, tc = _lstm_parts(gates, c_prev)
    h = c_prev.shape[-1]
    dh, dc = g[..., :h], g[..., h:]
    dc = dc + dh * o * (1 - tc ** 2)
    return np.concatenate([dc * cand * i * (1 - i), dc * c_prev * f * (1 - f),
                           dc * i * (1 - cand ** 2), dh * tc * o * (1 - o), dc * f], axis=-1)


def _ref_sum_to(x, shape):
    lead = np.ndim(x) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and np.shape(x)[lead + i] != 1)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape)


def _ref_embedding_bag(table, indices, mode="sum"):
    rows = np.take(table, indices, axis=0)
    return rows.sum(-2) if mode == "sum" else rows.mean(-2)


def _ref_embedding_bag_grad(g, indices, n_rows, mode="sum"):
    idx = np.asarray(indices)
    scale = 1.0 if mode == "sum" else 1.0 / idx.shape[-1]
    out = np.zeros((n_rows, np.shape(g)[-1]))
    np.add.at(out, idx, np.broadcast_to(np.expand_dims(g, -2), idx.shape + out.shape[1:]))
    return out * scale


def _ref_lstm_sequence(xp, w_hh, h, c):
    hs, cs, acts = [], [], []
    hid = np.shape(c)[-1]
    for x in xp:
        gates = x + h @ w_hh
        a = 1 / (1 + np.exp(-gates))
        a[:, 2 * hid:3 * hid] = np.tanh(gates[:, 2 * hid:3 * hid])
        c = a[:, hid:2 * hid] * c + a[:, :hid] * a[:, 2 * hid:3 * hid]
        h = a[:, 3 * hid:] * np.tanh(c)
        hs.append(h)
        cs.append(c)
        acts.append(a)
    return np.stack(hs), np.stack(cs), np.stack(acts)


def _ref_lstm_sequence_grad(g_hs, g_cs, g_acts, cs, acts, c0, w_hh):
    hid = cs.shape[-1]
    g_hs, g_cs = (np.broadcast_to(g, cs.shape) for g in (g_hs, g_cs))
    g_acts = np.broadcast_to(g_acts, acts.shape)
    dh, dc, dgates = 0.0, 0.0, np.zeros(acts.shape)
    for t in range(cs.shape[0] - 1, -1, -1):
        i, f, cand, o = (acts[t][:, k * hid:(k + 1) * hid] for k in range(4))
        tc = np.tanh(cs[t])
        dh = dh + g_hs[t]
        dc = dc + g_cs[t] + dh * o * (1 - tc ** 2)
        c_prev = cs[t - 1] if t else c0
        d_act = np.concatenate([dc * cand, dc * c_prev, dc * i, dh * tc], axis=-1) + g_acts[t]
        dgates[t] = d_act * np.concatenate([i * (1 - i), f * (1 - f), 1 - cand ** 2,
                                            o * (1 - o)], axis=-1)
        dc = dc * f
        dh = dgates[t] @ w_hh.T
    return dgates, dh, dc


def _view_of(call, expected):
    """A multi-output reference's tuple as the call's view of the outputs."""
    if not isinstance(expected, tuple):
        return expected
    if call.output is not None:
        return expected[call.output]
    return np.concatenate([np.ravel(e) for e in expected])


REFERENCES = {
    "sum_to": _ref_sum_to,
    "embedding_bag": _ref_embedding_bag,
    "embedding_bag_grad": _ref_embedding_bag_grad,
    "lstm_sequence": _ref_lstm_sequence,
    "lstm_sequence_grad": _ref_lstm_sequence_grad,
    "lstm_cell": _ref_lstm_cell,
    "lstm_cell_grad": _ref_lstm_cell_grad,
    "cross_entropy": _ref_cross_entropy,
    "cross_entropy_grad": _ref_cross_entropy_grad,
    "index_select": lambda x, indices: np.take(x, indices, axis=0),
    "scatter_add": _ref_scatter_add,
    "scatter_index": _ref_scatter_index,
}


@pytest.mark.parametrize("name", sorted(n for n in REFERENCES if n in fg.ops()))
@given(data=st.data())
@settings(deadline=None)
def test_kernel_ops_match_numpy_reference(name, data):
    """(h) the ops whose forward runs a Numba kernel, against a direct NumPy formula."""
    call = data.draw(op_inputs(name), label="call")
    expected = _view_of(call, REFERENCES[name](*call.args, **call.params))
    np.testing.assert_allclose(call.run(), expected, rtol=1e-10, atol=1e-12)


def _declared_calls(op):
    for k, case in enumerate(op.domain.cases):
        args, params = op.domain.draw(np.random.default_rng(1234 + k), case)
        yield k, OpCall(op, args, params)


def test_every_op_whose_forward_runs_a_kernel_has_a_reference():
    missing = set()
    for name, op in ALL_OPS:
        if any(callable(v) for _, p in op.domain.cases for v in p.values()):
            continue  # (scipy's argmin, odeint, fixed_point: the kernels run in the user's f)
        for _, call in _declared_calls(op):
            with P._patched_kernels(twin=False) as used:
                call.run()
            if used and name not in REFERENCES:
                missing.add(f"{name} (runs {sorted(used)})")
    assert not missing, f"add a NumPy reference for: {sorted(missing)}"


# -- every declared case, deterministically (this was tests/test_ops.py) --------------------------

DECLARED = [
    pytest.param(op, k, id=f"{name}-case{k}")
    for name, op in ALL_OPS
    for k in range(len(op.domain.cases))
]


@pytest.mark.parametrize("op, case", DECLARED)
def test_declared_case(op, case):
    """Each declared case: to second order (where declared) in both modes, and the forward
    gives the same on Tensors as on ndarrays."""
    rng = np.random.default_rng(1234 + case)
    args, params = op.domain.draw(rng, op.domain.cases[case])
    for call in OpCall(op, args, params).views():
        _check_declared(call, rng)


@pytest.mark.parametrize("op", [pytest.param(op, id=name) for name, op in ALL_OPS])
def test_declared_cases_batch(op):
    """(i) each declared case under fg.vmap, and its VJP, against the loop over examples, with
    three mixes of in_axes (0, 1 and None rotated over the arguments)."""
    for case in range(len(op.domain.cases)):
        args, params = op.domain.draw(np.random.default_rng(1234 + case), op.domain.cases[case])
        for call in OpCall(op, args, params).views():
            for pattern in range(3):
                P.vmap_matches_loop(call, pattern)
                P.vmap_of_vjp_matches_loop(call, pattern)


def _check_declared(call, rng):
    op, args = call.op, call.args
    plain = call.run()
    traced = call.run([fg.Tensor(a, autograd=True) if i in call.float_positions else a
                       for i, a in enumerate(args)])
    if call.float_positions:
        assert isinstance(traced, fg.Tensor)
    np.testing.assert_allclose(getattr(traced, "data", traced), plain, rtol=1e-12, atol=1e-12)
    if call.float_positions:
        order = 2 if op.twice_differentiable else 1
        check_grads(call.function(), *call.float_args, order=order, modes=("rev", "fwd"),
                    rng=rng)


# -- the metadata itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("op", [pytest.param(op, id=name) for name, op in ALL_OPS if op.builtin])
def test_builtin_op_declares_its_domain(op):
    d = op.domain
    assert d.explicit, (f"built-in op '{op.name}' has no domain: pass Domain(...) to its defop "
                        "(input specs, cases, kind)")
    assert d.cases, f"'{op.name}' declares no test cases"
    if op.n_inputs is not None:
        assert len(d.args) == op.n_inputs, (
            f"'{op.name}': {len(d.args)} input specs for {op.n_inputs} inputs")
        for i, diff in enumerate(op.differentiable):
            assert diff == isinstance(d.spec(i), Real), (
                f"'{op.name}': input {i} is {'' if diff else 'not '}differentiable but its spec "
                f"is {d.spec(i)!r}")
    for k, (shapes, params) in enumerate(d.cases):
        if op.n_inputs is not None:
            assert len(shapes) == op.n_inputs, f"'{op.name}' case {k}: {len(shapes)} shapes"
        unknown = set(params) - set(op.param_names)
        assert not unknown, f"'{op.name}' case {k}: unknown static params {unknown}"


@pytest.mark.parametrize("op", [pytest.param(op, id=name) for name, op in ALL_OPS if op.builtin])
def test_builtin_op_declares_its_batching_rule(op):
    assert callable(op.batch), (
        f"built-in op '{op.name}' has no batching rule: pass batch=... to its defop (a family "
        "rule from fungrad.batching, e.g. batch=elementwise, or one of its own); without one "
        "fg.vmap runs it once per example in a loop")
# -- complex inputs, for every op whose domain accepts them --------------------------------------
# Each declared case runs deterministically with complex inputs to second order in both modes
# (test_declared_case_complex); Hypothesis adds invented shapes at first order, with fewer
# examples than the real properties (each is a full check in both parts of every input).


def _complex_examples() -> int:
    return max(3, settings().max_examples // 6)


# astype(z, "float64") keeps the real part with NumPy's own ComplexWarning, as NumPy does
_ASTYPE_WARNS = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")


@_ASTYPE_WARNS
@pytest.mark.parametrize("op", _params("complex_vjp_matches_finite_differences"))
def test_complex_vjp_matches_finite_differences(op):
    """(a) reverse mode along the real and imaginary parts of complex inputs."""
    _run("complex_vjp_matches_finite_differences", op, max_examples=_complex_examples())


@_ASTYPE_WARNS
@pytest.mark.parametrize("op", _params("complex_jvp_matches_vjp"))
def test_complex_jvp_matches_vjp(op):
    """(c) Re<J u, v> from fg.jvp equals Re<u, J^T v> from fg.vjp for complex u, v."""
    _run("complex_jvp_matches_vjp", op, max_examples=_complex_examples())


@_ASTYPE_WARNS
@pytest.mark.parametrize("op", _params("complex64_preserved"))
def test_complex64_preserved(op):
    """(d) complex64 in gives complex64 (or float32) out and complex64 gradients."""
    _run("complex64_preserved", op, max_examples=_complex_examples())


@_ASTYPE_WARNS
@pytest.mark.parametrize("op", _params("complex_broadcasting_agrees"))
def test_complex_broadcasting_agrees(op):
    """(e) elementwise ops of several complex inputs on broadcast shapes."""
    _run("complex_broadcasting_agrees", op, max_examples=_complex_examples())


@_ASTYPE_WARNS
@pytest.mark.parametrize("op", _params("complex_method_function_grad_agree"))
def test_complex_method_function_grad_agree(op):
    """(g) Tensor method, function and fg.grad agree on complex inputs."""
    _run("complex_method_function_grad_agree", op, max_examples=_complex_examples())


DECLARED_COMPLEX = [
    pytest.param(op, k, id=f"{name}-case{k}")
    for name, op in ALL_OPS if op.domain.accepts_complex
    for k in range(len(op.domain.cases))
]


@_ASTYPE_WARNS
@pytest.mark.parametrize("op, case", DECLARED_COMPLEX)
def test_declared_case_complex(op, case):
    """Each declared case with complex inputs (and with the first alone complex, the others
    real), to second order in both modes."""
    rng = np.random.default_rng(4321 + case)
    args, params = op.domain.draw(rng, op.domain.cases[case], dtype=np.complex128)
    call = OpCall(op, args, params)
    variants = [call]
    cplx = [i for i in call.float_positions if np.iscomplexobj(args[i])]
    if len(call.float_positions) > 1 and cplx:
        mixed = [np.real(a).copy() if i in call.float_positions and i != cplx[0] else a
                 for i, a in enumerate(args)]
        variants.append(call.with_args(mixed))
    for variant in variants:
        for view in variant.views():
            _check_declared(view, rng)


def test_ops_without_complex_meaning_refuse_it():
    """An op whose domain declares no complex inputs refuses them on Tensors, naming itself."""
    z = fg.Tensor(np.array([1.0 + 1.0j, -0.5j]), autograd=True)
    for name, op in ALL_OPS:
        if op.domain.complex is not None or op.n_inputs is None or name not in fg.primitives.__all__:
            continue
        args = [z] * op.n_inputs
        with pytest.raises((fg.errors.DTypeError, fg.errors.ShapeError, TypeError)) as info:
            op(*args)
        if isinstance(info.value, fg.errors.DTypeError):
            assert name in str(info.value)
