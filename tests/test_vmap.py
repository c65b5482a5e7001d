"""fg.vmap: against Python loops, in_axes / out_axes over pytrees, nesting, composition with
grad / vjp / jvp / hessian / jit, jacrev / jacfwd, the fallback for ops without a rule, and
the errors that name vmap. (Every op's own rule is checked from the registry in
tests/test_properties.py.)"""

from __future__ import annotations

import warnings
from collections import namedtuple

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
import fungrad.testing
from fungrad.errors import BatchedConversionError, BatchingFallbackWarning, VmapError

rng = np.random.default_rng(0)


def _r(*shape):
    return rng.standard_normal(shape)


def _loop(f, in_axes, args):
    """``stack([f(*example) for example in batch])``, the reference vmap must match."""
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    size = next(np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None)
    outs = []
    for b in range(size):
        ex = [a if ax is None else np.take(a, b, axis=ax) for a, ax in zip(args, axes)]
        outs.append(np.asarray(f(*ex)))
    return np.stack(outs)


A34 = _r(3, 4)
SPD = np.stack([m @ m.T + 3 * np.eye(3) for m in _r(5, 3, 3)])

# (name, f, args, in_axes): every f is mapped with vmap and with a loop
CASES = [
    ("tanh", fg.tanh, (_r(5, 3),), 0),
    ("sin_exp", lambda x: fg.sin(x) * fg.exp(-x), (_r(5, 2, 3),), 0),
    ("vec_mat", lambda x, w: x @ w, (_r(5, 4), _r(4, 3)), (0, None)),
    ("mat_vec", lambda w, x: w @ x, (_r(3, 4), _r(5, 4)), (None, 0)),
    ("mat_mat_axis1", lambda a, b: a @ b, (_r(2, 5, 3), _r(3, 4)), (1, None)),
    ("batched_both", lambda a, b: fg.matmul(a, b), (_r(5, 2, 3), _r(5, 3, 2)), (0, 0)),
    ("dot", lambda a, b: fg.matmul(a, b), (_r(5, 3), _r(3, 5)), (0, 1)),
    ("mat_batch_of_mats", lambda a, b: a @ b, (_r(2, 3), _r(3, 5, 4)), (None, 1)),
    ("stack_times_mat", lambda a, b: a @ b, (_r(5, 2, 2, 3), _r(3, 4)), (0, None)),
    ("einsum", lambda a, b: fg.einsum([a, b], subscripts="ij,jk->ik"), (_r(5, 2, 3), _r(3, 4)),
     (0, None)),
    ("einsum_trace", lambda a: fg.einsum([a], subscripts="ii"), (_r(3, 3, 5),), 2),
    ("sum_axis", lambda x: fg.sum(x, axis=0), (_r(3, 5, 4),), 1),
    ("mean_keepdims", lambda x: fg.mean(x, axis=-1, keepdims=True), (_r(5, 3, 4),), 0),
    ("max", lambda x: fg.max(x, axis=1), (_r(4, 3, 5),), 2),
    ("softmax", lambda x: fg.softmax(x), (_r(5, 3, 4),), 0),
    ("log_softmax_axis0", lambda x: fg.log_softmax(x, axis=0), (_r(3, 5, 4),), 1),
    ("logsumexp", lambda x: fg.logsumexp(x), (_r(5, 3, 4),), 0),
    ("var_std", lambda x: fg.var(x, axis=0) + fg.std(x), (_r(5, 4, 3),), 0),
    ("cumsum", lambda x: fnp.cumsum(x), (_r(5, 2, 3),), 0),
    ("reshape", lambda x: x.reshape(3, 2), (_r(5, 6),), 0),
    ("transpose", lambda x: x.T, (_r(2, 5, 3),), 1),
    ("squeeze", lambda x: fnp.squeeze(x), (_r(5, 1, 3, 1),), 0),
    ("expand_dims", lambda x: fnp.expand_dims(x, -1) * x, (_r(5, 3),), 0),
    ("concatenate", lambda x, y: fnp.concatenate([x, y], axis=0), (_r(5, 2), _r(3,)), (0, None)),
    ("stack", lambda x, y: fnp.stack([x, y], axis=-1), (_r(2, 5), _r(2,)), (1, None)),
    ("split", lambda x: fnp.split(x, 2)[1], (_r(4, 5),), 1),
    ("slice", lambda x: x[1:, ::-1], (_r(5, 3, 4),), 0),
    ("int_index", lambda x: x[..., 2], (_r(5, 3, 4),), 0),
    ("array_index", lambda x: x[np.array([0, 2, 2])], (_r(5, 3, 4),), 0),
    ("two_array_index", lambda x: x[np.array([0, 1]), :, np.array([1, 3])], (_r(5, 2, 3, 4),),
     0),
    ("batched_label", lambda x, i: x[i], (_r(5, 4), np.array([0, 3, 1, 1, 2])), (0, 0)),
    ("batched_label_shared_table", lambda t, i: t[i], (_r(4, 3), np.array([0, 3, 1, 1, 2])),
     (None, 0)),
    ("take", lambda t: fnp.take(t, np.array([3, 0, 3]), axis=1), (_r(2, 5, 4),), 1),
    ("batched_column", lambda x, i: x[:, i], (_r(5, 2, 4), np.array([0, 3, 1, 1, 2])), (0, 0)),
    ("index_select", lambda t, i: fg.index_select(t, i), (_r(5, 4, 2), np.array([3, 0, 0])),
     (0, None)),
    ("where", lambda x: fnp.where(x > 0, x, 0.1 * x), (_r(5, 3),), 0),
    ("clip_maximum", lambda x, y: fg.maximum(fnp.clip(x, -0.5, 0.5), y), (_r(5, 3), _r(3,)),
     (0, None)),
    ("norm", lambda x: fnp.linalg.norm(x), (_r(5, 3),), 0),
    ("solve", lambda a, b: fnp.linalg.solve(a, b), (SPD, _r(5, 3)), (0, 0)),
    ("solve_shared_matrix", lambda a, b: fnp.linalg.solve(a, b), (SPD[0], _r(5, 3)), (None, 0)),
    ("inv_det", lambda a: fnp.linalg.inv(a) * fnp.linalg.det(a), (SPD,), 0),
    ("cholesky", lambda a: fnp.linalg.cholesky(a), (SPD,), 0),
    ("eigh", lambda a: fnp.linalg.eigh(a)[0], (SPD,), 0),
    ("cross_entropy", lambda z, y: fg.cross_entropy(z, y), (_r(5, 4), np.array([0, 3, 1, 1, 2])),
     (0, 0)),
    ("cross_entropy_rows", lambda z, y: fg.cross_entropy(z, y), (_r(5, 2, 4),
                                                              np.array([[0, 3]] * 5)), (0, 0)),
    ("mse", lambda p, t: fg.mse(p, t), (_r(5, 3), _r(3,)), (0, None)),
    ("pad_roll", lambda x: fnp.roll(fnp.pad(x, 1), 2), (_r(5, 3),), 0),
    ("diagonal_trace", lambda x: fnp.trace(x) + fnp.diagonal(x)[0], (_r(5, 3, 3),), 0),
    ("outer_kron", lambda x, y: fnp.outer(x, y), (_r(5, 3), _r(2,)), (0, None)),
    ("affine", lambda x, w, b: fg.affine(x, w, b), (_r(5, 4), _r(4, 3), _r(3,)), (0, None, None)),
    ("lstm_cell", lambda g, c: fg.lstm_cell(g, c), (_r(5, 8), _r(2,)), (0, None)),
    ("composite", lambda x, w: fg.sum(fg.sigmoid(x @ w) ** 2) / fnp.linalg.norm(w),
     (_r(5, 3), _r(3, 2)), (0, None)),
]


@pytest.mark.parametrize("name, f, args, in_axes", CASES, ids=[c[0] for c in CASES])
def test_vmap_matches_a_python_loop(name, f, args, in_axes):
    got = fg.vmap(f, in_axes=in_axes)(*args)
    np.testing.assert_allclose(got, _loop(f, in_axes, args), rtol=1e-10, atol=1e-12)


def test_in_axes_out_axes_negative_and_none():
    x = _r(3, 4, 5)
    f = lambda x: fg.sum(x, axis=0)  # noqa: E731
    np.testing.assert_allclose(fg.vmap(f, in_axes=-1, out_axes=-1)(x),
                               np.stack([f(x[..., k]) for k in range(5)], axis=-1))
    out = fg.vmap(lambda x, w: (x * w, fg.sum(w)), in_axes=(0, None), out_axes=(1, None))(
        x, np.arange(5.0))
    np.testing.assert_allclose(out[0], np.moveaxis(x * np.arange(5.0), 0, 1))
    assert out[1] == 10.0


def test_pytrees_in_and_out_with_a_prefix_in_axes():
    Pair = namedtuple("Pair", "a b")
    params = {"w": _r(4, 3), "b": _r(3)}
    batch = Pair(a=_r(6, 4), b=[_r(3, 6)])

    def f(p, pair):
        y = pair.a @ p["w"] + p["b"]
        return {"y": y, "z": [pair.b[0] * 2.0]}

    out = fg.vmap(f, in_axes=(None, Pair(a=0, b=[1])))(params, batch)
    assert set(out) == {"y", "z"}
    np.testing.assert_allclose(out["y"], batch.a @ params["w"] + params["b"])
    np.testing.assert_allclose(out["z"][0], 2 * batch.b[0].T)


def test_keyword_arguments_are_mapped_over_their_first_axis():
    out = fg.vmap(lambda x, *, scale: x * scale)(_r(4, 2), scale=np.arange(4.0)[:, None])
    assert out.shape == (4, 2)


def test_python_numbers_are_never_mapped():
    np.testing.assert_allclose(fg.vmap(lambda x, c: x * c)(np.arange(3.0), 2.0), [0, 2, 4])


def test_unbatched_outputs_are_repeated_and_inputs_are_never_aliased():
    xs = _r(4, 2)
    same, const = fg.vmap(lambda x: (x, np.ones(3)))(xs)
    np.testing.assert_array_equal(same, xs)
    assert not np.shares_memory(same, xs)
    assert const.shape == (4, 3) and const.flags.writeable


def test_axis_size_when_nothing_is_mapped():
    out = fg.vmap(lambda: np.arange(2.0), in_axes=(), axis_size=3)()
    np.testing.assert_array_equal(out, np.tile(np.arange(2.0), (3, 1)))


def test_nested_vmap_pairwise_distances():
    x, y = _r(4, 3), _r(5, 3)
    dist = fg.vmap(fg.vmap(lambda a, b: fg.sum((a - b) ** 2), in_axes=(None, 0)),
                   in_axes=(0, None))(x, y)
    np.testing.assert_allclose(dist, ((x[:, None] - y[None]) ** 2).sum(-1))


def test_nested_vmap_over_different_axes_of_one_array():
    a = _r(3, 4, 5)
    f = fg.vmap(fg.vmap(lambda v: fg.softmax(v), in_axes=1, out_axes=1), in_axes=2, out_axes=2)
    e = np.exp(a - a.max(0))
    np.testing.assert_allclose(f(a), e / e.sum(0))


# -- composition with differentiation ------------------------------------------------------------


def _mlp_loss(p, x, y):
    h = fg.relu(x @ p["W1"] + p["b1"])
    return fg.cross_entropy(h @ p["W2"] + p["b2"], y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_per_example_gradients_of_an_mlp(dtype):
    p = {k: v.astype(dtype) for k, v in
         {"W1": _r(8, 6), "b1": _r(6), "W2": _r(6, 3), "b2": _r(3)}.items()}
    xs, ys = _r(7, 8).astype(dtype), rng.integers(0, 3, 7)
    per = fg.vmap(fg.grad(_mlp_loss), in_axes=(None, 0, 0))(p, xs, ys)
    loop = [fg.grad(_mlp_loss)(p, x, y) for x, y in zip(xs, ys)]
    for k in p:
        assert per[k].shape == (7,) + p[k].shape and per[k].dtype == dtype
        np.testing.assert_allclose(per[k], np.stack([g[k] for g in loop]),
                                   rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_grad_of_a_function_that_uses_vmap():
    w, xs = _r(3), _r(5, 3)
    g = fg.grad(lambda w: fg.sum(fg.vmap(lambda x: fg.tanh(fg.sum(x * w)))(xs)))(w)
    np.testing.assert_allclose(g, sum((1 - np.tanh(x @ w) ** 2) * x for x in xs), rtol=1e-12)


def test_grad_of_per_example_gradient_norms():
    # a gradient penalty: d/dw of sum_i |d loss_i / d w|^2, against the loop
    w, xs = _r(3), _r(4, 3)
    loss = lambda w, x: fg.sum(fg.sin(x * w))  # noqa: E731
    penalty = lambda w: fg.sum(fg.vmap(fg.grad(loss), in_axes=(None, 0))(w, xs) ** 2)  # noqa: E731
    looped = lambda w: sum(fg.sum(fg.grad(loss)(w, x) ** 2) for x in xs)  # noqa: E731
    np.testing.assert_allclose(fg.grad(penalty)(w), fg.grad(looped)(w), rtol=1e-10)


def test_jvp_through_vmap_and_vmap_of_jvp():
    xs, t = _r(4, 3), _r(4, 3)
    f = lambda x: fg.sin(x) * fg.sum(x ** 2)  # noqa: E731
    _, tan = fg.jvp(fg.vmap(f), (xs,), (t,))
    ref = np.stack([fg.jvp(f, (x,), (v,))[1] for x, v in zip(xs, t)])
    np.testing.assert_allclose(tan, ref, rtol=1e-12)
    tan2 = fg.vmap(lambda x, v: fg.jvp(f, (x,), (v,))[1])(xs, t)
    np.testing.assert_allclose(tan2, ref, rtol=1e-12)


def test_hessian_per_point_through_vmap():
    f = lambda x: fg.sum(fg.sin(x) ** 2 * x[0])  # noqa: E731
    xs = _r(5, 3)
    np.testing.assert_allclose(fg.vmap(fg.hessian(f))(xs),
                               np.stack([fg.hessian(f)(x) for x in xs]), rtol=1e-10)


def test_closure_over_a_recorded_tensor_keeps_its_gradient():
    w = fg.Tensor(_r(3, 2), autograd=True)
    xs = _r(4, 3)
    out = fg.vmap(lambda x: fg.tanh(x @ w))(xs)
    assert isinstance(out, fg.Tensor)
    out.sum().backward()
    np.testing.assert_allclose(w.grad.data, xs.T @ (1 - np.tanh(xs @ w.data) ** 2), rtol=1e-12)


def test_a_module_mapped_over_examples():
    fg.manual_seed(0)
    model = fg.nn.Sequential([fg.nn.Linear(4, 3), fg.nn.Tanh(), fg.nn.Linear(3, 2)])
    xs = _r(6, 4)
    out = fg.vmap(lambda x: model(fg.Tensor(x)))(xs)
    np.testing.assert_allclose(np.asarray(out.data), model(fg.Tensor(xs)).data, rtol=1e-12)


# -- jacobians -----------------------------------------------------------------------------------


def test_jacrev_and_jacfwd_agree_with_finite_differences_on_pytrees():
    def f(p, x):
        return {"a": fg.tanh(p["w"] @ x), "b": fg.sum(p["v"] * x)}

    p, x = {"w": _r(2, 3), "v": _r(3)}, _r(3)
    jr = fg.jacrev(f, argnums=(0, 1))(p, x)
    jf = fg.jacfwd(f, argnums=(0, 1))(p, x)
    assert jr["a"][0]["w"].shape == (2, 2, 3) and jr["b"][1].shape == (3,)
    for out in ("a", "b"):
        np.testing.assert_allclose(jr[out][1], jf[out][1], rtol=1e-12)
        for k in ("w", "v"):
            np.testing.assert_allclose(jr[out][0][k], jf[out][0][k], rtol=1e-12, atol=1e-15)
    eps = 1e-6
    num = np.stack([(np.asarray(f(p, x + eps * e)["a"]) - np.asarray(f(p, x - eps * e)["a"]))
                    / (2 * eps) for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(jr["a"][1], num, rtol=1e-6)


def test_jacfwd_of_jacrev_is_the_hessian():
    f = lambda x: fg.sum(fg.exp(x[0] * x[1:]))  # noqa: E731
    x = _r(3)
    np.testing.assert_allclose(fg.jacfwd(fg.jacrev(f))(x), fg.hessian(f)(x), rtol=1e-12)
    np.testing.assert_allclose(fg.jacrev(fg.jacrev(f))(x), fg.hessian(f)(x), rtol=1e-12)


def test_jacobian_has_aux():
    jac, aux = fg.jacrev(lambda x: (x ** 2, fg.sum(x)), has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(jac, np.diag([2.0, 4.0]))
    assert aux == 3.0
    jac, aux = fg.jacfwd(lambda x: (x ** 2, {"s": 1}), has_aux=True)(np.array([3.0]))
    assert jac.tolist() == [[6.0]] and aux == {"s": 1}


def test_batched_jacobians_of_a_network():
    w = _r(3, 2)
    xs = _r(6, 3)
    f = lambda x: fg.tanh(x @ w)  # noqa: E731
    jac = fg.vmap(fg.jacrev(f))(xs)
    expected = np.stack([(1 - np.tanh(x @ w) ** 2)[:, None] * w.T for x in xs])
    np.testing.assert_allclose(jac, expected, rtol=1e-12)


# -- fg.jit of a vmap: one batched program ------------------------------------------------------


def test_jit_of_vmap_matches_eager():
    f = fg.vmap(lambda x, w: fg.sum(fg.tanh(x @ w) ** 2), in_axes=(0, None))
    x, w = _r(5, 4), _r(4, 3)
    np.testing.assert_allclose(fg.jit(f)(x, w), f(x, w), rtol=1e-12)


def test_jit_of_per_example_gradients_matches_eager():
    p = {"W1": _r(8, 6), "b1": _r(6), "W2": _r(6, 3), "b2": _r(3)}
    xs, ys = _r(7, 8), rng.integers(0, 3, 7)
    pe = fg.vmap(fg.grad(_mlp_loss), in_axes=(None, 0, 0))
    jitted = fg.jit(pe)
    for _ in range(2):  # traced once, then the compiled program
        got = jitted(p, xs, ys)
        ref = pe(p, xs, ys)
        for k in p:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-10, atol=1e-12)


# -- ops without a rule, and rules of one's own --------------------------------------------------


def test_an_op_without_a_rule_loops_with_one_warning_naming_it():
    from fungrad.batching import interpreter

    with fg.testing.temporary_ops():
        sq = fg.defop("vmap_test_square", lambda x: x * x, lambda g, out, x: (2 * g * x,))
        interpreter._WARNED.discard("vmap_test_square")
        xs = _r(4, 3)
        with pytest.warns(BatchingFallbackWarning, match="vmap_test_square"):
            out = fg.vmap(sq)(xs)
        np.testing.assert_allclose(out, xs * xs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fg.vmap(sq)(xs)  # warned once only
            g = fg.vmap(fg.grad(lambda x: fg.sum(sq(x))))(xs)
        np.testing.assert_allclose(g, 2 * xs)


def test_a_rule_of_ones_own_is_used():
    from fungrad.batching import elementwise

    calls = []

    def rule(op, args, dims):
        calls.append(dims)
        return elementwise(op, args, dims)

    with fg.testing.temporary_ops():
        cube = fg.defop("vmap_test_cube", lambda x: x ** 3,
                        lambda g, out, x: (3 * g * x * x,), batch=rule)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = fg.vmap(cube, in_axes=1)(_r(3, 4))
    assert calls == [(1,)] and out.shape == (4, 3)


def test_a_wrong_rule_is_named():
    with fg.testing.temporary_ops():
        bad = fg.defop("vmap_test_bad", lambda x: x + 1, lambda g, out, x: (g,),
                       batch=lambda op, args, dims: (args[0][:1], 0))
        with pytest.raises(VmapError, match="vmap_test_bad.*batching rule"):
            fg.vmap(bad)(_r(4, 3))


# -- errors that name vmap ------------------------------------------------------------------------


def test_mismatched_batch_sizes_name_the_arguments_and_sizes():
    with pytest.raises(VmapError, match=r"argument 0 \('x'\) has size 3.*argument 1 \('y'\) "
                                        r"has size 4") as e:
        fg.vmap(lambda x, y: x + y)(_r(3, 2), _r(4, 2))
    assert isinstance(e.value, ValueError)


def test_in_axes_out_of_range():
    with pytest.raises(VmapError, match=r"in_axes=2 for argument 0 \('x'\) of shape \(3, 2\): "
                                        r"out of range"):
        fg.vmap(lambda x: x, in_axes=2)(_r(3, 2))
    with pytest.raises(VmapError, match="0-d array"):
        fg.vmap(lambda x: x)(np.ones(()))


def test_in_axes_that_do_not_match_the_arguments():
    with pytest.raises(VmapError, match="in_axes has 2 entries.*3 positional arguments"):
        fg.vmap(lambda a, b, c: a, in_axes=(0, 0))(_r(2), _r(2), _r(2))
    with pytest.raises(VmapError, match="keys"):
        fg.vmap(lambda p: p["a"], in_axes=({"a": 0, "c": 0},))({"a": _r(2), "b": _r(2)})
    with pytest.raises(VmapError, match="prefix"):
        fg.vmap(lambda p: p, in_axes=((0, 0),))(_r(3, 2))
    with pytest.raises(VmapError, match="must be an int, None"):
        fg.vmap(lambda x: x, in_axes="0")
    with pytest.raises(VmapError, match="no argument is mapped"):
        fg.vmap(lambda x: x, in_axes=None)(_r(3))


def test_out_axes_none_for_a_batched_output():
    with pytest.raises(VmapError, match="out_axes is None.*differs"):
        fg.vmap(lambda x: x * 2, out_axes=None)(_r(3))


@pytest.mark.parametrize("body", [
    lambda x: x * 2 if x > 0 else x,
    lambda x: float(x),
    lambda x: int(fg.sum(x)),
    lambda x: np.asarray(x),
    lambda x: x.item(),
    lambda x: [x][0] if bool(fg.sum(x) > 0) else x,
])
def test_python_control_flow_on_a_batched_value_says_what_to_use(body):
    with pytest.raises(BatchedConversionError, match=r"fg\.vmap.*fungrad\.numpy\.where") as e:
        fg.vmap(body)(_r(3))
    assert isinstance(e.value, TypeError) and isinstance(e.value, RuntimeError)


def test_a_batched_value_that_escapes_its_vmap():
    kept = []
    fg.vmap(lambda x: kept.append(x) or x)(_r(3))
    with pytest.raises(VmapError, match="escaped"):
        fg.tanh(kept[0])


def test_jit_of_an_object_style_step_that_maps_a_module():
    def make():
        fg.manual_seed(0)
        model = fg.nn.Sequential([fg.nn.Linear(4, 3), fg.nn.Tanh(), fg.nn.Linear(3, 2)])
        opt = fg.optim.SGD(model.parameters(), alpha=0.1)

        def step(xs, ys):
            out = fg.vmap(lambda x: model(fg.Tensor(x)))(xs)
            loss = fg.mean((out - ys) ** 2)
            loss.backward()
            opt.step()
            return loss

        return step

    xs, ys = _r(6, 4), _r(6, 2)
    eager, jitted = make(), fg.jit(make())
    for _ in range(3):
        np.testing.assert_allclose(np.asarray(jitted(xs, ys).data), eager(xs, ys).data,
                                   rtol=1e-10)


# -- indices that differ per example (getitem's rule with a batched index, and its VJP) ------------

IDX = np.array([[0, 2], [3, 3], [1, 0], [2, 1], [-1, 0]])  # one pair of ids per example
INDEXINGS = [
    ("rows", lambda x, i: x[i]),
    ("rows_0d", lambda x, i: x[i[0]]),
    ("columns", lambda x, i: x[:, i]),
    ("after_none", lambda x, i: x[None, :, i[1]]),
    ("ellipsis", lambda x, i: x[..., i]),
    ("pair", lambda x, i: x[i[0], i]),
    ("with_shared_array", lambda x, i: x[np.array([1, 0]), i]),
    ("apart", lambda x, i: x[i[0], :, i[1]]),
    ("apart_arrays", lambda x, i: x[i, 1:, i[::-1]]),
]


@pytest.mark.parametrize("x_axis", [0, None])
@pytest.mark.parametrize("name, f", INDEXINGS, ids=[n for n, _ in INDEXINGS])
def test_indices_that_differ_per_example(name, f, x_axis):
    x = _r(5, 4, 4, 4) if x_axis == 0 else _r(4, 4, 4)
    got = fg.vmap(f, in_axes=(x_axis, 0))(x, IDX)
    np.testing.assert_allclose(got, _loop(f, (x_axis, 0), (x, IDX)))
    loss = lambda x, i: fg.sum(f(x, i) ** 2)  # noqa: E731
    grads = fg.vmap(fg.grad(loss), in_axes=(x_axis, 0))(x, IDX)
    np.testing.assert_allclose(grads, _loop(fg.grad(loss), (x_axis, 0), (x, IDX)))


def test_a_mask_that_differs_per_example_is_refused_with_a_fix():
    with pytest.raises(VmapError, match="boolean mask.*where"):
        fg.vmap(lambda x: x[x > 0])(_r(3, 4))


# -- random programs of the public API (tests/test_fuzz.py's generator) under vmap ---------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_fuzz import programs, run_fungrad  # noqa: E402


@given(prog=programs(), data=st.data())
@settings(max_examples=max(10, settings().max_examples * 2), deadline=None)
def test_random_programs_under_vmap_match_the_loop(prog, data):
    """Programs of up to six calls (operators, fg functions, Tensor methods, Python scalars),
    each input mapped over axis 0, the last axis or not at all: vmap of the program and of
    its gradient equal the loop over three examples."""
    inputs, steps = prog
    axes = tuple(data.draw(st.sampled_from([0, -1, None] if np.ndim(x) else [None]),
                           label=f"in_axes {i}") for i, x in enumerate(inputs))
    if all(a is None for a in axes):
        axes = (0,) + axes[1:] if np.ndim(inputs[0]) else axes
    if all(a is None for a in axes):
        return
    batched = [x if a is None else np.stack([x * (1 + 0.003 * k) for k in range(3)], axis=a)
               for x, a in zip(inputs, axes)]

    def f(*xs):
        return run_fungrad(steps, list(xs))[-1]

    with np.errstate(all="ignore"):
        expected = _loop(f, axes, batched)
        got = np.asarray(fg.vmap(f, in_axes=axes)(*batched))
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    if expected.dtype.kind != "f":
        return

    def total(*xs):
        return fg.sum(f(*xs))

    with np.errstate(all="ignore"):
        g = fg.vmap(fg.grad(total, argnums=tuple(range(len(inputs)))), in_axes=axes)(*batched)
        ref = [_loop(lambda *xs, k=k: fg.grad(total, argnums=k)(*xs), axes, batched)
               for k in range(len(inputs))]
    for a, b in zip(g, ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_vmap_of_a_jitted_function():
    f = fg.jit(lambda x: fg.sum(fg.tanh(x) * 2))
    xs = _r(4, 3)
    np.testing.assert_allclose(fg.vmap(f)(xs), [f(x) for x in xs], rtol=1e-12)


@pytest.mark.parametrize("f", [lambda x, i: fnp.take(x, i), lambda x, i: fnp.sort(x),
                               lambda x, i: fnp.take_along_axis(x, i, axis=0),
                               lambda x, i: fnp.median(fnp.take(x, i))],
                         ids=["take", "sort", "take_along_axis", "median"])
def test_numpy_selection_with_indices_that_differ_per_example(f):
    xs, ids = _r(4, 3), np.array([[0, 2], [1, 1], [2, 0], [0, 0]])
    np.testing.assert_allclose(fg.vmap(f)(xs, ids), _loop(f, 0, (xs, ids)))


def test_an_op_error_under_vmap_shows_one_examples_shapes():
    with pytest.raises(fg.errors.ShapeError, match=r"matmul: .*not aligned.*under fg\.vmap over "
                                                   r"5 examples: one example's arguments have "
                                                   r"shapes \(3,\), \(4, 2\)"):
        fg.vmap(lambda x, w: x @ w, in_axes=(0, None))(_r(5, 3), _r(4, 2))
