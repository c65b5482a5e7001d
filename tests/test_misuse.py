"""Issue 11's reproducers for the engine: wrong answers under misuse, and errors that name the
wrong thing. Each test failed before its fix; the item number is in the test's name."""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import AnomalyError, DTypeError, FungradError, GraphError, ShapeError


# -- 2: a leaf's .grad is always its own array -------------------------------------------------


def test_item02_create_graph_gives_each_leaf_its_own_grad():
    a = Tensor(np.array([1.0, 2.0]), autograd=True)
    b = Tensor(np.array([3.0, 4.0]), autograd=True)
    (a + b).sum().backward(create_graph=True)
    assert a.grad is not b.grad and not np.shares_memory(a.grad.data, b.grad.data)
    (a + b).sum().backward()  # accumulates once into each
    np.testing.assert_array_equal(a.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad.data, [2.0, 2.0])


def test_item02_the_callers_seed_never_becomes_grad():
    x = Tensor(np.array([1.0, 2.0]), autograd=True)
    seed = Tensor(np.array([3.0, 3.0]))
    x.backward(seed, create_graph=True)
    assert x.grad is not seed and not np.shares_memory(x.grad.data, seed.data)
    x.backward(Tensor(np.array([3.0, 3.0])))
    np.testing.assert_array_equal(seed.data, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])


def test_item02_plain_backward_into_a_recorded_grad_does_not_write_into_its_graph():
    x = Tensor(np.array([2.0]), autograd=True)
    (x * x).sum().backward(create_graph=True)
    g1 = x.grad
    kept = g1.data.copy()
    (x * x).sum().backward()
    np.testing.assert_array_equal(g1.data, kept)  # the recorded gradient is untouched
    np.testing.assert_array_equal(x.grad.data, [8.0])


# -- 3: lists of traced Tensors are stacked, not detached --------------------------------------


def test_item03_an_op_given_a_list_of_traced_tensors_differentiates():
    g = fg.grad(lambda x: fg.sum([fg.sum(x), fg.sum(x * x)]))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [3.0, 5.0])
    g = fg.grad(lambda x: fg.mean(fg.stack([x, [1.0, 1.0]]) ** 2))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [0.5, 1.0])


def test_item03_a_ragged_list_of_tensors_is_refused_naming_the_op():
    x = Tensor(np.ones(2), autograd=True)
    with pytest.raises(ShapeError, match="^sum: .*list"):
        fg.sum([x, Tensor(np.ones(3))])


# -- 4: grad refuses outputs that are not floating-point scalars -------------------------------


@pytest.mark.parametrize("value, match", [
    (None, "forgotten return"), ([1.0, 2.0], "list"), ("loss", "str"),
    (np.int64(3), "int64"), (np.array(True), "bool"),
])
def test_item04_grad_of_a_non_float_scalar_output_is_a_type_error(value, match):
    with pytest.raises(TypeError, match=match):
        fg.grad(lambda x: value)(np.array([1.0]))


def test_item04_grad_of_np_allclose_is_a_type_error():
    with pytest.raises(TypeError, match="bool"):
        fg.grad(lambda x: np.allclose(x, 1.0))(np.array([1.0]))


# -- 5: casts to integer or bool pass no gradient ----------------------------------------------


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_item05_gradient_through_an_integer_cast_is_zero(dtype):
    g = fg.grad(lambda x: fg.sum(x.astype(dtype) * 1.0) + fg.sum(x * 0.0))(np.array([1.5, 2.5]))
    np.testing.assert_array_equal(g, [0.0, 0.0])


# -- 6: a user's VJP result is checked --------------------------------------------------------


def _user_op(vjp):
    return fg.defop("misuse_user_op", lambda x, y: x * y, vjp, replace=True)


@pytest.mark.parametrize("vjp, error, match", [
    (lambda g, out, x, y: (g * y,), TypeError, "tuple of 2 cotangents.*got 1"),
    (lambda g, out, x, y: (g * y, g * x, g), TypeError, "got 3"),
    (lambda g, out, x, y: g * y, TypeError, "got ndarray"),
    (lambda g, out, x, y: None, TypeError, "got NoneType"),
    (lambda g, out, x, y: ("a", g * x), DTypeError, "cotangent 0 is str"),
    (lambda g, out, x, y: (np.ones(5), g * x), ShapeError, "cotangent 0 has shape \\(5,\\)"),
])
def test_item06_bad_vjp_results_name_the_op_and_the_rule(vjp, error, match):
    op = _user_op(vjp)
    x = Tensor(np.ones(3), autograd=True)
    with pytest.raises(error, match=f"misuse_user_op.*{match}"):
        op(x, Tensor(np.ones(3), autograd=True)).sum().backward()
    assert x.grad is None


# -- 9: an exception mid-backward leaves gradients and graph as they were ----------------------


def test_item09_anomaly_in_backward_leaves_grads_and_graph_usable():
    w = Tensor(np.array([1.0, 0.0]), autograd=True)
    w.grad = Tensor(np.array([10.0, 10.0]))
    y = fg.sum(fg.sqrt(w) + w * 3.0)  # sqrt's gradient at 0 is inf
    with np.errstate(divide="ignore"):
        with fg.detect_anomaly(), pytest.raises(AnomalyError, match="sqrt"):
            y.backward()
        np.testing.assert_array_equal(w.grad.data, [10.0, 10.0])  # nothing half-accumulated
        y.backward()  # the graph is still usable
    np.testing.assert_array_equal(w.grad.data, [13.5, np.inf])


def test_item09_a_user_vjp_raising_leaves_the_graph_usable():
    calls = []

    def flaky(g, out, x):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("flaky")
        return (2 * g,)

    op = fg.defop("misuse_flaky", lambda x: 2 * x, flaky, replace=True)
    x = Tensor(np.array([1.0]), autograd=True)
    y = (op(x) + x).sum()
    with pytest.raises(RuntimeError, match="flaky"):
        y.backward()
    assert x.grad is None
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [3.0])


# -- 12: complex inputs are refused everywhere -------------------------------------------------


def test_item12_complex_follows_one_convention_or_is_refused_naming_the_op():
    # (issue 22 replaced the interim refusal: tests/test_complex.py checks the convention)
    z = Tensor(np.array([1 + 2j]), autograd=True)
    with pytest.raises(TypeError, match="holomorphic=True"):
        fg.grad(lambda z: fg.sum(z * z))(np.array([1 + 1j]))  # a complex output
    np.testing.assert_allclose(fg.grad(lambda z: fg.sum(z * z), holomorphic=True)(
        np.array([1 + 1j])), [2 + 2j])
    x = Tensor(np.array([1.0]), autograd=True)
    with pytest.raises(DTypeError, match="real"):
        (x * 2.0).backward(np.array([1 + 1j]))  # a real output's cotangent is real
    with pytest.raises(DTypeError, match="maximum: does not accept complex input"):
        fg.maximum(z, x)
    fg.sum(fg.abs(x * np.array([1j]) + z) ** 2).backward()
    assert x.grad.dtype == np.float64 and z.grad.dtype == np.complex128


# -- 14: a transformation touches only the graph between its inputs and outputs ----------------


def test_item14_grad_of_a_closure_over_the_callers_graph_leaves_that_graph_alone():
    w = Tensor(np.array([1.0, 2.0]), autograd=True)
    h = w * 3.0  # the caller's graph
    g = fg.grad(lambda p: fg.sum(p * h))(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(g, [3.0, 6.0])
    h.sum().backward()  # still backpropagates: fg.grad did not run or free it
    np.testing.assert_array_equal(w.grad.data, [3.0, 3.0])


# -- 15: jacobian and hessian of pytrees ------------------------------------------------------


def test_item15_hessian_of_a_dict_input():
    f = lambda p: fg.sum(p["a"] ** 2 * p["b"])  # noqa: E731
    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    H = fg.hessian(f)(p)
    np.testing.assert_array_equal(H["a"]["a"], np.diag([6.0, 8.0]))
    np.testing.assert_array_equal(H["a"]["b"], np.diag([2.0, 4.0]))
    np.testing.assert_array_equal(H["b"]["b"], np.zeros((2, 2)))


def test_item15_jacobian_of_tuple_and_dict_outputs():
    J = fg.jacobian(lambda x: (x * 2.0, {"s": fg.sum(x)}))(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(J[0], 2 * np.eye(2))
    np.testing.assert_array_equal(J[1]["s"], [1.0, 1.0])


def test_item15_hessian_with_two_argnums_is_nested():
    H = fg.hessian(lambda x, y: fg.sum(x * x * y), argnums=(0, 1))(np.array([2.0]),
                                                                  np.array([3.0]))
    np.testing.assert_array_equal(np.array([[H[0][0], H[0][1]], [H[1][0], H[1][1]]]).ravel(),
                                  [6.0, 4.0, 4.0, 0.0])


# -- 16: whatever forward accepts, backward handles ------------------------------------------


def test_item16_list_operands_are_normalised_before_recording():
    x = Tensor(np.array([[1.0, 2.0]]), autograd=True)
    (x @ [[1.0], [2.0]]).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1.0, 2.0]])
    y = Tensor(np.array([2.0, 3.0]), autograd=True)
    (y ** [2, 1]).sum().backward()
    np.testing.assert_array_equal(y.grad.data, [4.0, 1.0])
    z = Tensor(np.array([2.0, 3.0]), autograd=True)
    fg.power([2.0, 3.0], z).sum().backward()
    np.testing.assert_allclose(z.grad.data, [4 * np.log(2), 27 * np.log(3)])


# -- 19 and 21: bad data and bad arguments name the right thing --------------------------------


@pytest.mark.parametrize("data", ["hello", None, [[1.0, 2.0], [3.0]], {"a": 1}, object()])
def test_item19_tensor_refuses_non_numeric_or_ragged_data(data):
    with pytest.raises(FungradError, match="^Tensor: "):
        Tensor(data)


def test_item19_the_error_explainer_survives_ragged_lists():
    with pytest.raises(FungradError, match="^add: "):
        fg.add(Tensor(np.ones(2)), [[1.0, 2.0], [3.0]])


def test_item21_reshape_with_a_bad_shape_names_reshape():
    with pytest.raises(DTypeError, match="^reshape: "):
        Tensor(np.ones(4)).reshape("a")


def test_item21_vjp_fn_given_a_string_names_vjp():
    _, vjp_fn = fg.vjp(lambda x: x * 2.0, np.ones(2))
    with pytest.raises(DTypeError, match="^vjp: "):
        vjp_fn("a")


def test_item21_jvp_requires_tuples_of_primals_and_tangents():
    with pytest.raises(TypeError, match="tuple or list"):
        fg.jvp(lambda x: x * 2.0, np.ones(2), np.ones(2))


def test_new_shape_after_grad_is_a_clear_error():
    p = Tensor(np.ones(3), autograd=True)
    (p * 2.0).sum().backward()
    p.data = np.ones(4)
    with pytest.raises(ShapeError, match="already has a .grad of shape \\(3,\\)"):
        (p * 2.0).sum().backward()


# -- issue 12, item 3: messages that pointed the wrong way -------------------------------------


def test_tuple_output_without_has_aux_says_so():
    with pytest.raises(TypeError, match="has_aux=True"):
        fg.grad(lambda x: (fg.sum(x), 1.0))(np.ones(2))


def test_backward_of_a_loss_made_under_no_grad_names_no_grad():
    w = Tensor(np.ones(2), autograd=True)
    with fg.no_grad():
        loss = (w * 2.0).sum()
    with pytest.raises(GraphError, match="no_grad"):
        loss.backward()


def test_a_list_input_taken_as_a_pytree_says_so():
    with pytest.raises(TypeError, match="pytree.*np.array"):
        fg.grad(lambda x: fg.sum(x * 2.0))([1.0, 2.0])


def test_floating_point_errors_in_backward_name_the_op():
    x = Tensor(np.array([0.0]), autograd=True)
    y = fg.sqrt(x)
    with np.errstate(all="raise"), pytest.raises(AnomalyError, match="^sqrt: backward"):
        y.backward()


@pytest.mark.parametrize("cell", [fg.nn.RNNCell(3, 4, 2, rng=0), fg.nn.LSTMCell(3, 4, 2, rng=0)],
                         ids=["RNNCell", "LSTMCell"])
def test_item21_init_hidden_with_a_bad_batch_size_names_the_cell(cell):
    with pytest.raises(ValueError, match=r"Cell\(3, 4, 2.*init_hidden: batch_size must be a "
                                         r"positive int, got -1"):
        cell.init_hidden(-1)
