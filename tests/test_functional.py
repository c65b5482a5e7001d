"""grad, value_and_grad, vjp, jvp, jacobian, hessian: structure, composition, errors."""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import DTypeError, ShapeError


def test_grad_returns_ndarrays_in_the_input_structure():
    def loss(params, x):
        h = fg.tanh(x @ params["layers"][0]["w"] + params["layers"][0]["b"])
        return fg.sum(h * params["scale"][1])

    rng = np.random.default_rng(0)
    params = {"layers": [{"w": rng.standard_normal((3, 2)), "b": np.zeros(2)}],
              "scale": (1.0, np.array([2.0, -1.0]))}
    x = rng.standard_normal((4, 3))
    g = fg.grad(loss)(params, x)
    assert set(g) == {"layers", "scale"} and isinstance(g["scale"], tuple)
    assert all(isinstance(leaf, np.ndarray) for leaf in
               (g["layers"][0]["w"], g["layers"][0]["b"], g["scale"][0], g["scale"][1]))
    assert g["scale"][0] == 0.0  # unused leaf: zero gradient
    h = np.tanh(x @ params["layers"][0]["w"])
    np.testing.assert_allclose(g["scale"][1], h.sum(0))
    np.testing.assert_allclose(g["layers"][0]["b"], ((1 - h ** 2) * [2.0, -1.0]).sum(0))


def test_grad_composes_to_third_order():
    f = lambda x: fg.sin(x) * x  # noqa: E731
    d3 = fg.grad(fg.grad(fg.grad(f)))
    x = 0.7
    expected = -3 * np.sin(x) - x * np.cos(x)
    np.testing.assert_allclose(d3(x), expected, rtol=1e-12)


def test_grad_of_closure_over_outer_variable():
    # d/dx [ d/dy (x * y) at y=1 ] = d/dx x = 1
    outer = fg.grad(lambda x: fg.grad(lambda y: x * y)(1.0))
    np.testing.assert_allclose(outer(3.0), 1.0)


def test_argnums_tuple_and_has_aux():
    f = lambda x, y: (fg.sum(x * y), {"norm": fg.sum(x * x)})  # noqa: E731
    (gx, gy), aux = fg.grad(f, argnums=(0, 1), has_aux=True)(np.array([1.0, 2.0]),
                                                            np.array([3.0, 4.0]))
    np.testing.assert_array_equal(gx, [3.0, 4.0])
    np.testing.assert_array_equal(gy, [1.0, 2.0])
    assert isinstance(aux["norm"], np.ndarray) and aux["norm"] == 5.0


def test_same_array_as_two_arguments_gets_separate_gradients():
    x = np.array([2.0])
    gx, gy = fg.grad(lambda a, b: fg.sum(a * b * b), argnums=(0, 1))(x, x)
    np.testing.assert_array_equal(gx, [4.0])
    np.testing.assert_array_equal(gy, [8.0])


def test_value_and_grad():
    value, g = fg.value_and_grad(lambda x: fg.sum(x ** 2))(np.array([1.0, 2.0]))
    assert value == 5.0
    np.testing.assert_array_equal(g, [2.0, 4.0])


def test_grad_of_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match="floating"):
        fg.grad(lambda x: fg.sum(x * 2.0))(np.array([1, 2]))
    with pytest.raises(DTypeError):
        fg.grad(lambda x: x * 2.0)(3)


def test_grad_of_non_scalar_output_suggests_jacobian():
    with pytest.raises(ShapeError, match="scalar.*jacobian"):
        fg.grad(lambda x: x * 2.0)(np.array([1.0, 2.0]))


def test_grad_of_function_ignoring_its_input_is_zero():
    g = fg.grad(lambda x: 3.0)(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_float32_gradients_stay_float32():
    g = fg.grad(lambda x: fg.sum(fg.tanh(x) * 2.0))(np.ones(3, dtype=np.float32))
    assert g.dtype == np.float32


def test_vjp_can_be_called_twice():
    out, vjp_fn = fg.vjp(lambda x: fg.exp(x), np.array([0.0, 1.0]))
    (a,) = vjp_fn(np.array([1.0, 0.0]))
    (b,) = vjp_fn(np.array([0.0, 1.0]))
    np.testing.assert_allclose(a, [1.0, 0.0])
    np.testing.assert_allclose(b, [0.0, np.e])
    with pytest.raises(ShapeError, match="cotangent of shape"):
        vjp_fn(np.ones(3))


def test_vjp_over_pytree_outputs():
    out, vjp_fn = fg.vjp(lambda x: {"a": x * 2.0, "b": fg.sum(x)}, np.array([1.0, 2.0]))
    (g,) = vjp_fn({"a": np.array([1.0, 1.0]), "b": np.array(10.0)})
    np.testing.assert_array_equal(g, [12.0, 12.0])


def test_jvp_matches_jacobian_product():
    f = lambda x: fg.tanh(fg.matmul(np.array([[1.0, 2.0], [3.0, -1.0]]), x))  # noqa: E731
    x, t = np.array([0.1, -0.3]), np.array([1.0, 2.0])
    out, tangent = fg.jvp(f, (x,), (t,))
    np.testing.assert_allclose(tangent, fg.jacobian(f)(x) @ t, rtol=1e-12)


def test_jacobian_shapes_and_values():
    J = fg.jacobian(lambda x: fg.reshape(x ** 2, (3, 1)))(np.array([1.0, 2.0, 3.0]))
    assert J.shape == (3, 1, 3)
    np.testing.assert_allclose(J[:, 0, :], np.diag([2.0, 4.0, 6.0]))


def test_hessian_of_quadratic_form():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    H = fg.hessian(lambda x: fg.sum(x * fg.matmul(A, x)))(np.array([0.5, -1.0]))
    np.testing.assert_allclose(H, A + A.T)


def test_hessian_of_nonlinear_function():
    H = fg.hessian(lambda x: fg.sum(fg.exp(x[0] * x[1])))(np.array([0.5, 2.0]))
    e = np.exp(1.0)
    np.testing.assert_allclose(H, [[4 * e, e + e], [2 * e, 0.25 * e]], rtol=1e-12)


def test_jacobian_of_jacobian():
    f = lambda x: x ** 3  # noqa: E731
    JJ = fg.jacobian(fg.jacobian(f))(np.array([1.0, 2.0]))
    assert JJ.shape == (2, 2, 2)
    np.testing.assert_allclose(JJ[1, 1, 1], 12.0)


def test_grad_of_traced_tensor_connects_to_outer_graph():
    x = Tensor([0.5, 1.5], autograd=True)
    g = fg.grad(lambda z: fg.sum(z ** 3))(x)  # 3 z^2, recorded
    assert isinstance(g, Tensor)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_user_defined_op_works_everywhere():
    cube = fg.defop("test_cube", lambda x: x ** 3, lambda g, out, x: (g * 3 * x * x,),
                    replace=True)
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(fg.grad(lambda v: fg.sum(cube(v)))(x), 3 * x ** 2)
    np.testing.assert_allclose(fg.grad(fg.grad(cube))(2.0), 12.0)
    t = Tensor(x, autograd=True)
    cube(t).sum().backward()
    np.testing.assert_allclose(t.grad.data, 3 * x ** 2)
    assert "test_cube" in fg.ops()
    _, tangent = fg.jvp(cube, (x,), (np.ones(2),))
    np.testing.assert_allclose(tangent, 3 * x ** 2)


# -- for HIPS autograd users: hvp, elementwise_grad, ravel, optimizer loops -------------------


def test_hvp_is_the_hessian_times_a_vector_without_forming_it():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    f = lambda x: fg.sum(fg.exp(x)) + fg.sum(x * fg.matmul(A, x))  # noqa: E731
    x, v = np.array([0.3, -0.2]), np.array([1.0, -2.0])
    np.testing.assert_allclose(fg.hvp(f)(x, v), fg.hessian(f)(x) @ v, rtol=1e-12)


def test_hvp_of_a_pytree_argument_and_other_arguments():
    f = lambda p, c: fg.sum(p["a"] ** 3) * c + fg.sum(p["a"] * p["b"])  # noqa: E731
    p = {"a": np.array([1.0, 2.0]), "b": np.array([0.5, 0.5])}
    v = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    hv = fg.hvp(f)(p, 2.0, v)
    np.testing.assert_allclose(hv["a"], [12.0, 1.0])
    np.testing.assert_allclose(hv["b"], [1.0, 0.0])


def test_hvp_at_zero_has_no_divide_by_zero():
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(
            fg.hvp(lambda x: fg.sum(x ** 2))(np.zeros(2), np.ones(2)), [2.0, 2.0])


def test_elementwise_grad():
    x = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(fg.elementwise_grad(fg.sin)(x), np.cos(x))
    np.testing.assert_allclose(fg.elementwise_grad(fg.elementwise_grad(fg.sin))(x), -np.sin(x))


def test_ravel_round_trips_and_differentiates():
    from fungrad.misc.flatten import ravel

    p = {"w": np.arange(6.0).reshape(2, 3), "b": np.array([1.0]), "n": [np.array(2.0)]}
    flat, unravel = ravel(p)
    assert flat.shape == (8,)
    back = unravel(flat)
    for k in ("w", "b"):
        np.testing.assert_array_equal(back[k], p[k])
    loss = lambda v: fg.sum(unravel(v)["w"] ** 2) + fg.sum(unravel(v)["b"])  # noqa: E731
    g = fg.grad(loss)(flat)
    np.testing.assert_array_equal(unravel(g)["w"], 2 * p["w"])
    np.testing.assert_array_equal(unravel(g)["b"], [1.0])
    with pytest.raises(ValueError, match="8 numbers"):
        unravel(np.zeros(3))


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_functional_optimizer_loops_minimise_a_pytree_quadratic(name):
    from fungrad.misc import optimizers

    target = {"w": np.array([1.0, -2.0]), "b": (np.array(0.5),)}
    loss = lambda p: fg.sum((p["w"] - target["w"]) ** 2) + fg.sum((p["b"][0] - 0.5) ** 2)  # noqa: E731,E501
    g = fg.grad(loss)
    seen = []
    step = {"sgd": 0.1, "momentum": 0.1, "rmsprop": 0.01, "adam": 0.05}[name]
    out = getattr(optimizers, name)(lambda p, i: g(p), {"w": np.zeros(2), "b": (np.array(0.0),)},
                                    callback=lambda p, i, gr: seen.append(i), num_iters=400,
                                    step_size=step)
    assert seen == list(range(400))
    np.testing.assert_allclose(out["w"], target["w"], atol=2e-2)
    np.testing.assert_allclose(out["b"][0], 0.5, atol=2e-2)


def test_hvp_of_real_pytrees_agrees_with_forward_over_reverse():
    # real arguments take reverse-over-reverse (grad of <grad f, v>); it must equal J_grad @ v,
    # for pytrees, float32 and a Python float alike
    def f(p):
        return fg.sum(fg.tanh(p["w"] @ p["x"]) ** 2) * p["s"] + p["s"] ** 3

    rng = np.random.default_rng(3)
    p = {"w": rng.standard_normal((3, 2)), "x": rng.standard_normal(2), "s": np.array(0.7)}
    v = {"w": rng.standard_normal((3, 2)), "x": rng.standard_normal(2), "s": np.array(-1.3)}
    got = fg.hvp(f)(p, v)
    want = fg.jvp(fg.grad(f), (p,), (v,))[1]
    for k in p:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12)
    p32 = {k: a.astype(np.float32) for k, a in p.items()}
    v32 = {k: a.astype(np.float32) for k, a in v.items()}
    assert all(a.dtype == np.float32 for a in fg.hvp(f)(p32, v32).values())
    assert fg.hvp(lambda x: x ** 3)(2.0, 1.0) == 12.0
