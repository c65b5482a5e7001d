"""The fused ops of issue 13 (affine, embedding_bag, lstm_sequence), the engine's sum_to, and
the layers built on them (Linear, EmbeddingBag, LSTM).

The registry-driven suite (tests/test_properties.py) checks each op's derivatives to second
order from its domain; this file checks what the suite cannot: values against the unfused
definitions, the layers' shape conventions and error messages.
"""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fungrad as fg
from fungrad import Tensor, nn
from fungrad.errors import DTypeError, IndexRangeError, ShapeError
from fungrad.primitives import affine, embedding_bag, lstm_sequence, lstm_sequence_grad, sum_to
from fungrad.primitives.lstm_sequence import sequence_grad_reference
from fungrad.primitives.recurrent import lstm_cell_reference
from fungrad.primitives.shape import shape_of
from fungrad.testing import check_grads
from layouts import LAYOUTS, with_layout

SOME = settings(max_examples=max(5, settings().max_examples // 2), deadline=None)


def leaf(a, dtype=None) -> Tensor:
    return Tensor(np.asarray(a, dtype=dtype), autograd=True)


# -- affine ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_is_matmul_plus_bias_with_the_same_gradients(x_shape, dtype):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, (3, 4), (4,)))
    g = rng.standard_normal(x_shape[:-1] + (4,)).astype(dtype)
    fused = [leaf(a) for a in (x, w, b)]
    plain = [leaf(a) for a in (x, w, b)]
    out = affine(*fused)
    ref = fg.matmul(plain[0], plain[1]) + plain[2]
    out.backward(g)
    ref.backward(g)
    assert out.creation_op == "affine" and out.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, ref.data, rtol=tol, atol=tol)
    for a, r in zip(fused, plain):
        assert a.grad.dtype == dtype and a.grad.shape == a.shape
        np.testing.assert_allclose(a.grad.data, r.grad.data, rtol=tol, atol=tol)


def test_affine_promotes_like_numpy_and_leaves_inputs_alone():
    x = np.ones((2, 3), np.float32)
    w, b = np.ones((3, 2), np.float32), np.array([0.5, 1.5])  # float64 bias
    out = affine(x, w, b)
    assert out.dtype == np.float64 and out.tolist() == [[3.5, 4.5], [3.5, 4.5]]
    assert affine(np.ones((1, 2), int), np.ones((2, 1), int), np.ones(1, int)).dtype.kind == "i"
    assert x.tolist() == [[1.0] * 3] * 2 and b.tolist() == [0.5, 1.5]


@pytest.mark.parametrize("shapes,match", [
    (((2, 3), (3, 4), (3,)), r"affine: shapes x \(2, 3\), w \(3, 4\), b \(3,\) do not fit"),
    (((2, 3), (3, 4), (1, 4)), r"b \(1, 4\)"),
    (((2, 3), (3,), (3,)), r"w \(3,\)"),
    (((2, 5), (3, 4), (4,)), r"x \(2, 5\), w \(3, 4\)"),
    (((), (3, 4), (4,)), r"x \(\)"),
])
def test_affine_shape_errors_name_the_op_and_shapes(shapes, match):
    with pytest.raises(ShapeError, match=match):
        affine(*(leaf(np.ones(s)) for s in shapes))


def test_linear_and_rnn_cell_record_one_affine_per_layer():
    lin = nn.Linear(3, 2, rng=0)
    out = lin(np.ones((4, 3)))
    assert out.creation_op == "affine"
    assert nn.Linear(3, 2, bias=False, rng=0)(np.ones((4, 3))).creation_op == "matmul"
    cell = nn.RNNCell(3, 4, 2, activation="tanh", rng=0)
    output, hidden = cell(np.ones((5, 3)), cell.init_hidden(5))
    assert output.creation_op == "affine"
    assert [t.creation_op for t in hidden.creators[0].creators] == ["affine", "affine"]


# -- sum_to: the engine's one helper for undoing broadcasting ------------------------------------


@st.composite
def broadcast_pairs(draw):
    target = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4))
    full = lead + tuple(s if s != 1 else draw(st.integers(1, 4)) for s in target)
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.float16]))
    x = (np.random.default_rng(draw(st.integers(0, 99))).standard_normal(full) * 4).astype(dtype)
    return with_layout(x, draw(st.sampled_from(LAYOUTS))), target


def _naive_sum_to(x, target):
    if x.shape == target:
        return x
    lead = x.ndim - len(target)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(target)
                                      if n == 1 and x.shape[lead + i] != 1)
    return x.sum(axis=axes, keepdims=True).reshape(target)


@SOME
@given(broadcast_pairs())
def test_sum_to_is_the_adjoint_of_broadcasting_in_every_layout(pair):
    x, target = pair
    out = sum_to(x, target)
    expected = _naive_sum_to(x, target)
    assert out.shape == target and out.dtype == expected.dtype
    tol = {"rtol": 2e-3, "atol": 2e-2} if x.dtype == np.float16 else {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(out.astype(np.float64), expected.astype(np.float64), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,target", [((6, 4), (4,)), ((3, 5, 4), (3, 1, 4)),
                                          ((2, 3, 4), (1, 1, 4)), ((4, 3), (4, 1)),
                                          ((4, 3), ()), ((1, 4), (4,))])
def test_sum_to_merged_axes_paths_agree_with_numpy(dtype, shape, target):
    x = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    np.testing.assert_array_equal(sum_to(x, target), _naive_sum_to(x, target))
    assert sum_to(x, shape) is x  # nothing to sum: the array itself


def test_sum_to_refuses_shapes_that_do_not_broadcast():
    for target in [(3,), (2, 1, 4), (5, 4)]:
        with pytest.raises(ShapeError, match=r"sum_to: shape \(2, 4\) cannot be summed to"):
            sum_to(np.ones((2, 4)), target)


# -- embedding_bag --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ids_shape", [(6, 4), (2, 3, 5), (7,)])
def test_embedding_bag_matches_gather_and_reduce(mode, dtype, ids_shape):
    rng = np.random.default_rng(1)
    table = rng.standard_normal((9, 3)).astype(dtype)
    ids = rng.integers(-9, 9, ids_shape)  # negative ids count from the end
    g = rng.standard_normal(ids_shape[:-1] + (3,)).astype(dtype)
    fused, plain = leaf(table), leaf(table)
    out = embedding_bag(fused, ids, mode=mode)
    ref = getattr(plain.index_select(ids), mode)(-2)
    out.backward(g)
    ref.backward(g)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == fused.grad.dtype == dtype
    np.testing.assert_allclose(out.data, ref.data, rtol=tol, atol=tol)
    np.testing.assert_allclose(fused.grad.data, plain.grad.data, rtol=tol, atol=tol)


def test_embedding_bag_empty_bags_integer_tables_and_second_order():
    table = np.arange(12.0).reshape(4, 3)
    assert embedding_bag(table, np.zeros((2, 0), int), mode="mean").tolist() == [[0.0] * 3] * 2
    ints = embedding_bag(np.arange(12).reshape(4, 3), np.array([[0, 3]]))
    assert ints.dtype.kind == "i" and ints.tolist() == [[9, 11, 13]]
    ids = np.array([[0, 2, 2], [3, 1, 0]])
    check_grads(lambda t: fg.sum(embedding_bag(t, ids, mode="mean") ** 2), table, order=2)


@pytest.mark.parametrize("call,error,match", [
    (lambda: embedding_bag(np.ones((4, 3)), np.array([[0, 4]])), IndexRangeError,
     r"embedding_bag: index 4 is out of range for 4 rows"),
    (lambda: embedding_bag(np.ones((4, 3)), np.array([[0.5]])), DTypeError, "integers"),
    (lambda: embedding_bag(np.ones((4, 3)), np.array(1)), ShapeError, "bag axis"),
    (lambda: embedding_bag(np.ones(4), np.array([[1]])), ShapeError, "2-d"),
    (lambda: embedding_bag(np.ones((4, 3)), np.array([[1]]), mode="max"), ValueError, "mode"),
])
def test_embedding_bag_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_embedding_bag_layer():
    bag = nn.EmbeddingBag(6, 4, mode="sum", rng=0)
    ids = np.array([[1, 5, 5], [0, 2, 3]])
    out = bag(ids)
    np.testing.assert_allclose(out.data, bag.weight.data[ids].sum(1))
    out.sum().backward()
    assert bag.weight.grad.data[5].tolist() == [2.0] * 4 and bag.weight.grad.data[4].sum() == 0
    assert repr(nn.EmbeddingBag(6, 4)) == "EmbeddingBag(6, 4, mode='mean')"
    with pytest.raises(DTypeError, match=r"EmbeddingBag\(6, 4.*integer ids"):
        bag(np.array([[0.5]]))
    with pytest.raises(ValueError, match="mode"):
        nn.EmbeddingBag(6, 4, mode="max")


# -- lstm_sequence --------------------------------------------------------------------------------


def _sequence_inputs(t_len=4, batch=3, hid=2, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in
            ((t_len, batch, 4 * hid), (hid, 4 * hid), (batch, hid), (batch, hid))]


def _sequence_by_cells(xp, w_hh, h, c):
    """The recurrence from the composite cell definition, step by step."""
    hid = shape_of(c)[-1]
    hs, cs = [], []
    for t in range(shape_of(xp)[0]):
        hc = lstm_cell_reference(xp[t] + h @ w_hh, c)
        h, c = hc[:, :hid], hc[:, hid:]
        hs.append(h)
        cs.append(c)
    return fg.stack(hs), fg.stack(cs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_sequence_matches_the_cell_definition_and_its_gradients(dtype):
    args = _sequence_inputs(dtype=dtype)
    rng = np.random.default_rng(5)
    g_h, g_c = (rng.standard_normal(args[0].shape[:2] + (2,)).astype(dtype) for _ in range(2))
    fused, plain = [leaf(a) for a in args], [leaf(a) for a in args]
    hs, cs, acts = lstm_sequence(*fused)
    ref_h, ref_c = _sequence_by_cells(*plain)
    (fg.sum(hs * g_h) + fg.sum(cs * g_c)).backward()
    (fg.sum(ref_h * g_h) + fg.sum(ref_c * g_c)).backward()
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert hs.dtype == cs.dtype == acts.dtype == dtype and acts.shape == args[0].shape
    np.testing.assert_allclose(hs.data, ref_h.data, rtol=tol, atol=tol)
    np.testing.assert_allclose(cs.data, ref_c.data, rtol=tol, atol=tol)
    for a, r in zip(fused, plain):
        assert a.grad.dtype == dtype
        np.testing.assert_allclose(a.grad.data, r.grad.data, rtol=10 * tol, atol=10 * tol)


def test_lstm_sequence_second_order_and_gate_cotangents():
    args = _sequence_inputs(t_len=3, batch=2, hid=2)
    check_grads(lambda *a: fg.sum(lstm_sequence(*a)[0] ** 2) + fg.sum(lstm_sequence(*a)[2]),
                *args, order=2)


def test_lstm_sequence_grad_matches_its_reference_with_broadcast_cotangents():
    rng = np.random.default_rng(2)
    t_len, batch, hid = 3, 2, 2
    full = [rng.standard_normal(s) for s in ((t_len, batch, hid), (t_len, batch, hid),
                                             (t_len, batch, 4 * hid))]
    rest = [rng.standard_normal(s) for s in ((t_len, batch, hid), (t_len, batch, 4 * hid),
                                             (batch, hid), (hid, 4 * hid))]
    for gs in (full, [np.zeros(()), full[1], np.array(0.3)], [full[0], np.zeros(()),
                                                             np.zeros(())]):
        fused = lstm_sequence_grad(*gs, *rest)
        ref = sequence_grad_reference(*gs, *rest)
        for a, b in zip(fused, ref):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shapes,match", [
    (((0, 2, 8), (2, 8), (2, 2), (2, 2)), r"\(T, B, 4H\) with T >= 1, got \(0, 2, 8\)"),
    (((3, 2, 6), (2, 8), (2, 2), (2, 2)), r"\(T, B, 4H\) with T >= 1, got \(3, 2, 6\)"),
    (((3, 2, 8), (8, 2), (2, 2), (2, 2)), r"w_hh must have shape \(H, 4H\) = \(2, 8\)"),
    (((3, 2, 8), (2, 8), (3, 2), (2, 2)), r"h0 and c0 must have shape \(B, H\) = \(2, 2\)"),
])
def test_lstm_sequence_shape_errors(shapes, match):
    with pytest.raises(ShapeError, match="^lstm_sequence: .*" + match):
        lstm_sequence(*(leaf(np.ones(s)) for s in shapes))


# -- nn.LSTM --------------------------------------------------------------------------------------


def _reference_lstm(lstm, x, h0, c0):
    """The layer's numbers from lstm_cell_reference, one step and one layer at a time."""
    finals_h, finals_c = [], []
    for layer in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")
        b = getattr(lstm, f"bias_l{layer}") if lstm.bias else 0.0
        hs, cs = _sequence_by_cells(x @ w_ih + b, w_hh, h0[layer], c0[layer])
        finals_h.append(hs[-1])
        finals_c.append(cs[-1])
        x = hs
    return x, fg.stack(finals_h), fg.stack(finals_c)


@pytest.mark.parametrize("num_layers,bias", [(1, True), (2, True), (2, False)])
def test_lstm_layer_matches_its_definition_with_gradients_to_every_input(num_layers, bias):
    rng = np.random.default_rng(3)
    lstm = nn.LSTM(3, 4, num_layers=num_layers, bias=bias, rng=0)
    x = leaf(rng.standard_normal((5, 2, 3)))
    h0, c0 = (leaf(rng.standard_normal((num_layers, 2, 4))) for _ in range(2))
    out, (h_n, c_n) = lstm(x, (h0, c0))
    loss = fg.sum(out ** 2) + fg.sum(h_n * 0.5) + fg.sum(c_n ** 3)
    loss.backward()
    grads = {n: p.grad.data.copy() for n, p in lstm.named_parameters()}
    inputs = [t.grad.data.copy() for t in (x, h0, c0)]
    for p in lstm.parameters():
        p.grad = None
    x.grad = h0.grad = c0.grad = None
    ref_out, ref_h, ref_c = _reference_lstm(lstm, x, h0, c0)
    for a, b in ((out, ref_out), (h_n, ref_h), (c_n, ref_c)):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-12)
    (fg.sum(ref_out ** 2) + fg.sum(ref_h * 0.5) + fg.sum(ref_c ** 3)).backward()
    for name, p in lstm.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.data, rtol=1e-10, atol=1e-12)
    for got, t in zip(inputs, (x, h0, c0)):
        np.testing.assert_allclose(got, t.grad.data, rtol=1e-10, atol=1e-12)


def test_lstm_batch_first_unbatched_and_default_state():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 2, 3)).astype(np.float32)
    lstm = nn.LSTM(3, 4, rng=0, dtype=np.float32)
    out, (h_n, c_n) = lstm(x)
    assert out.dtype == np.float32 and h_n.shape == c_n.shape == (1, 2, 4)
    first = nn.LSTM(3, 4, batch_first=True, rng=0, dtype=np.float32)
    out_bf, (h_bf, _) = first(x.transpose(1, 0, 2))
    np.testing.assert_array_equal(out_bf.data, out.data.transpose(1, 0, 2))
    np.testing.assert_array_equal(h_bf.data, h_n.data)
    single, (h1, c1) = lstm(x[:, 0])
    assert single.shape == (6, 4) and h1.shape == c1.shape == (1, 4)
    np.testing.assert_allclose(single.data, out.data[:, 0], rtol=1e-6, atol=1e-6)
    assert [n for n, _ in lstm.named_parameters()] == ["weight_ih_l0", "weight_hh_l0", "bias_l0"]
    assert lstm.weight_ih_l0.shape == (3, 16) and lstm.weight_hh_l0.shape == (4, 16)
    assert np.abs(lstm.weight_hh_l0.data).max() <= 0.5  # uniform in +-1/sqrt(4)


def test_lstm_errors_name_the_layer():
    lstm = nn.LSTM(3, 4, num_layers=2, rng=0)
    assert repr(lstm) == "LSTM(3, 4, num_layers=2)"
    with pytest.raises(ShapeError, match=r"LSTM\(3, 4, num_layers=2\): expected input of shape "
                                         r"\(T, B, 3\) or \(T, 3\), got \(5, 2, 2\)"):
        lstm(np.ones((5, 2, 2)))
    with pytest.raises(ShapeError, match="no time steps"):
        lstm(np.ones((0, 2, 3)))
    with pytest.raises(ShapeError, match=r"h0 must have shape .* = \(2, 2, 4\), got \(1, 2, 4\)"):
        lstm(np.ones((5, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(TypeError, match=r"hx must be the pair \(h0, c0\)"):
        lstm(np.ones((5, 2, 3)), np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        nn.LSTM(3, 4, num_layers=0)


# -- unstack --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,axis", [((3, 4), 0), ((2, 3, 4), 1), ((2, 3), -1), ((1,), 0)])
def test_unstack_gives_every_slice_and_stacks_their_cotangents(shape, axis):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    pieces = fg.primitives.unstack(x, axis=axis)
    expected = np.moveaxis(x, axis, 0)
    assert len(pieces) == shape[axis]
    for p, e in zip(pieces, expected):
        np.testing.assert_array_equal(p, e)
    check_grads(lambda a: [q * (i + 1) for i, q in enumerate(fg.primitives.unstack(a, axis=axis))],
                x.astype(np.float64), order=2)


def test_unstack_pieces_without_cotangent_get_zeros_and_float32_is_kept():
    x = leaf(np.arange(12.0).reshape(4, 3), np.float32)
    rows = fg.primitives.unstack(x)
    assert all(r.creation_op == "unstack" for r in rows)
    (rows[1] * 3).sum().backward()
    assert x.grad.dtype == np.float32
    assert x.grad.data.tolist() == [[0] * 3, [3] * 3, [0] * 3, [0] * 3]


def test_unstack_errors():
    with pytest.raises(ShapeError, match="unstack: cannot unstack a 0-d array"):
        fg.primitives.unstack(leaf(1.0))
    with pytest.raises(ShapeError, match=r"unstack: axis 1 of shape \(2, 0\) has no slices"):
        fg.primitives.unstack(np.ones((2, 0)), axis=1)
    with pytest.raises(ShapeError, match="out of range"):
        fg.primitives.unstack(np.ones((2, 3)), axis=2)
