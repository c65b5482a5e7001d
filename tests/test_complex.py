"""Complex numbers: the convention (HIPS autograd's and JAX's), the engine around it, every
transformation, the refusals, the checker and strategies, and fg.jit against eager.

The registry-driven suite (tests/test_properties.py) checks every op that accepts complex
inputs against finite differences; this file checks what is not one op's VJP.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings

import fungrad as fg
import fungrad.numpy as fnp
from fungrad import Tensor
from fungrad.domains import Complex, Domain, Real
from fungrad.errors import DTypeError
from fungrad.testing import check_grads, temporary_ops
from fungrad.testing import strategies as fst

Z = np.array([1.0 + 2.0j, -0.5 + 0.3j, 0.7 - 1.1j])
X = np.array([0.3, -1.2, 2.0])


def _fd(f, z, eps=1e-6):
    """df/dx - i df/dy of a real function, by central differences (the convention's answer)."""
    z = np.asarray(z, dtype=complex)
    out = np.zeros(z.shape, dtype=complex)
    for k in range(z.size):
        e = np.zeros(z.shape, dtype=complex)
        e.flat[k] = 1.0
        dx = (f(z + eps * e) - f(z - eps * e)) / (2 * eps)
        dy = (f(z + 1j * eps * e) - f(z - 1j * eps * e)) / (2 * eps)
        out.flat[k] = dx - 1j * dy
    return out


# -- the convention ------------------------------------------------------------------------------


def test_grad_of_a_real_function_is_df_dx_minus_i_df_dy():
    f = lambda z: fg.sum(fg.abs(z) ** 2 + fg.real(z) ** 3 - fg.imag(z * z))
    g = fg.grad(f)(Z)
    assert g.dtype == np.complex128
    np.testing.assert_allclose(g, _fd(lambda z: float(f(z)), Z), rtol=1e-7)
    np.testing.assert_allclose(fg.grad(lambda z: fg.abs(z) ** 2)(3.0 + 4.0j), 6.0 - 8.0j)


def test_holomorphic_functions_get_their_complex_derivative():
    for f, df in [(lambda z: z ** 3, lambda z: 3 * z ** 2), (fg.exp, np.exp),
                  (fg.sin, np.cos), (lambda z: fg.log(z) * z, lambda z: np.log(z) + 1)]:
        for z in (1.0 + 1.0j, -0.4 + 2.0j):
            np.testing.assert_allclose(fg.grad(f, holomorphic=True)(z), df(z), rtol=1e-12)
            np.testing.assert_allclose(fg.holomorphic_grad(f)(z), df(z), rtol=1e-12)
    # a holomorphic VJP is g * f'(z), unconjugated: vjp(exp)(g) = g * exp(z)
    _, vjp_fn = fg.vjp(fg.exp, Z)
    np.testing.assert_allclose(vjp_fn(np.ones(3) * 1j)[0], 1j * np.exp(Z))


def test_non_holomorphic_vjps():
    g = np.array([0.5 - 2.0j, 1.0 + 1.0j, -1.0j])
    cases = {
        fg.conj: np.conj(g), fg.real: g.real + 0j, fg.imag: -1j * g.real,
        fg.abs: g.real * np.conj(Z) / np.abs(Z), fg.angle: -1j * g.real / Z,
    }
    for op, expected in cases.items():
        out, vjp_fn = fg.vjp(op, Z)
        cot = g if np.iscomplexobj(out) else g.real
        np.testing.assert_allclose(vjp_fn(cot)[0], expected, err_msg=op.name)


def test_a_real_input_takes_the_real_part_of_a_complex_cotangent():
    # x -> Re(exp(ix)) = cos x: the gradient of a real implementation
    g = fg.grad(lambda x: fg.sum(fg.real(fg.exp(1j * x))))(X)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, -np.sin(X))
    # the same through a Tensor and backward: x.grad is real
    x = Tensor(X, autograd=True)
    fg.sum(fg.abs(x * (1 + 2j)) ** 2).backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.data, 10 * X)


def test_a_complex_input_gets_a_complex_gradient_even_through_real_parts():
    assert np.iscomplexobj(fg.grad(lambda z: fg.sum(fg.real(z)))(1.0j))
    assert not np.iscomplexobj(fg.grad(lambda z: fg.sum(fg.real(z)))(2.0))
    np.testing.assert_allclose(fg.grad(lambda z: fg.sum(fg.real(z)))(Z), np.ones(3) + 0j)


def test_grad_refuses_complex_outputs_and_holomorphic_needs_complex_inputs():
    with pytest.raises(TypeError, match="holomorphic=True"):
        fg.grad(lambda x: x * (1.0 + 0.2j))(1.0)
    with pytest.raises(TypeError, match="complex inputs"):
        fg.grad(lambda x: x * (1.0 + 0.2j), holomorphic=True)(1.0)
    with pytest.raises(TypeError, match="elementwise_grad"):
        fg.elementwise_grad(fg.exp)(Z)


def test_complex64_stays_complex64():
    z = Z.astype(np.complex64)
    g = fg.grad(lambda z: fg.sum(fg.abs(fg.exp(z)) ** 2))(z)
    assert g.dtype == np.complex64
    t = Tensor(z, autograd=True)
    y = fg.sum(fg.abs(t * t))
    assert y.dtype == np.float32
    y.backward()
    assert t.grad.dtype == np.complex64


# -- the other transformations -------------------------------------------------------------------


def test_jvp_pushes_complex_tangents_forward():
    dz = np.array([1.0, 1.0j, 0.5 - 0.5j])
    out, t = fg.jvp(lambda z: z ** 2, (Z,), (dz,))
    np.testing.assert_allclose(t, 2 * Z * dz)
    _, t = fg.jvp(fg.conj, (Z,), (dz,))
    np.testing.assert_allclose(t, np.conj(dz))
    _, t = fg.jvp(fg.abs, (Z,), (dz,))  # d|z| = Re(conj(z) dz) / |z|
    np.testing.assert_allclose(t, np.real(np.conj(Z) * dz) / np.abs(Z))
    _, t = fg.jvp(lambda x: fg.exp(1j * x), (X,), (np.ones(3),))  # real in, complex out
    np.testing.assert_allclose(t, 1j * np.exp(1j * X))
    with pytest.raises(DTypeError, match="real"):
        fg.jvp(fg.exp, (X,), (dz,))


def test_jacobian_and_hessian_of_holomorphic_functions():
    f = lambda z: z ** 3 + fg.sin(z)
    np.testing.assert_allclose(fg.jacobian(f, holomorphic=True)(Z),
                               np.diag(3 * Z ** 2 + np.cos(Z)), atol=1e-14)
    np.testing.assert_allclose(fg.hessian(lambda z: fg.sum(f(z)), holomorphic=True)(Z),
                               np.diag(6 * Z - np.sin(Z)), atol=1e-14)
    with pytest.raises(TypeError, match="holomorphic=True"):
        fg.jacobian(f)(Z)
    with pytest.raises(TypeError, match="hvp"):
        fg.hessian(lambda z: fg.sum(fg.abs(z) ** 2))(Z)
    # a real output's rows are gradients
    np.testing.assert_allclose(fg.jacobian(fg.abs)(Z), np.diag(np.conj(Z) / np.abs(Z)))


def test_hvp_of_a_real_function_of_complex_inputs_along_complex_directions():
    f = lambda z: fg.sum(fg.abs(fg.exp(z)) ** 2 + fg.real(z ** 3))
    v = np.array([0.3 + 1.0j, -1.0, 0.5j])
    grad = fg.grad(f)
    eps = 1e-6
    numeric = (grad(Z + eps * v) - grad(Z - eps * v)) / (2 * eps)
    np.testing.assert_allclose(fg.hvp(f)(Z, v), numeric, rtol=1e-6)


def test_nested_grad_of_complex_programs():
    # d/dx of the gradient of |exp(i x w)|^2-like programs: second order through complex ops
    f = lambda x, w: fg.sum(fg.abs(fg.exp(1j * x * w) + w) ** 2)
    w = np.array([0.5 + 0.5j, 1.0 - 0.2j, -0.3j])
    check_grads(lambda x, w: fg.grad(f, argnums=(0, 1))(x, w), X, w, order=1)
    check_grads(f, X, w, order=2)


# -- Tensors and the engine ----------------------------------------------------------------------


def test_tensors_hold_complex_values_and_backward_needs_an_explicit_seed():
    t = Tensor(Z, autograd=True)
    y = t * t
    assert y.dtype == np.complex128
    with pytest.raises(DTypeError, match="complex"):
        y.backward()
    y.backward(np.ones(3) + 0j)
    np.testing.assert_allclose(t.grad.data, 2 * Z)
    with pytest.raises(DTypeError, match="real numbers"):
        fg.vjp(fg.abs, Z)[1](np.ones(3) + 1j)  # a real output's cotangent is real


def test_gradients_accumulate_across_real_and_complex_uses():
    t = Tensor(X, autograd=True)
    loss = fg.sum(t * t) + fg.sum(fg.abs(t * (2 + 1j)) ** 2)
    loss.backward()
    np.testing.assert_allclose(t.grad.data, 2 * X + 10 * X)


def test_ops_without_a_complex_meaning_refuse_complex_tensors_naming_the_op():
    z = Tensor(Z, autograd=True)
    for f, name in [(lambda z: fg.maximum(z, 0.5), "maximum"), (fg.floor, "floor"),
                    (fg.relu, "relu"), (fg.sigmoid, "sigmoid"), (fg.sign, "sign"),
                    (lambda z: fg.clip(z, -1, 1), "clip"), (fg.logsumexp, "logsumexp"),
                    (lambda z: fg.mod(z, 2.0), "mod"), (fg.softmax, "softmax")]:
        with pytest.raises(DTypeError, match=f"^{name}: does not accept complex input"):
            f(z)


def test_a_users_op_refuses_complex_unless_its_domain_declares_it():
    with temporary_ops():
        cube = fg.defop("cube_c", lambda x: x ** 3, lambda g, out, x: (3 * g * x * x,))
        with pytest.raises(DTypeError, match="cube_c.*complex=True"):
            cube(Tensor(Z, autograd=True))
        cube = fg.defop("cube_c", lambda x: x ** 3, lambda g, out, x: (3 * g * x * x,),
                        Domain((Real(),), complex=True), replace=True)
        np.testing.assert_allclose(fg.grad(cube, holomorphic=True)(1.0 + 1.0j), 6j)
        check_grads(cube, Z, order=2)
        fg.testing.properties.check_op(cube, max_examples=3, properties=[
            "complex_vjp_matches_finite_differences", "complex_jvp_matches_vjp"])


def test_numpy_protocols_on_complex_tensors():
    t = Tensor(Z, autograd=True)
    y = np.sum(np.abs(np.exp(t)) ** 2) + np.real(np.angle(t)).sum() + np.sum(np.conj(t).imag)
    assert isinstance(y, Tensor)
    y.backward()
    expected = fg.grad(lambda z: fg.sum(fg.abs(fg.exp(z)) ** 2) + fg.sum(fg.angle(z))
                       + fg.sum(fg.imag(fg.conj(z))))(Z)
    np.testing.assert_allclose(t.grad.data, expected)
    assert np.iscomplex(t).all() and not fnp.isreal(t).any()
    np.testing.assert_allclose(fnp.real_if_close(np.array([1.0 + 1e-18j])), [1.0])


def test_slogdet_of_a_complex_matrix_differentiates_its_phase_too():
    a = np.array([[1.0 + 1.0j, 0.3], [0.2j, 2.0 - 0.5j]])
    check_grads(lambda a: fnp.real(fnp.linalg.slogdet(a).sign * (0.5 - 1.5j)), a, order=2)
    np.testing.assert_allclose(fnp.linalg.slogdet(a).sign * np.exp(fnp.linalg.slogdet(a)[1]),
                               np.linalg.det(a))


def test_gauge_invariant_functions_of_complex_eigen_and_singular_vectors():
    rng = np.random.default_rng(3)
    m = rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))
    h = m + m.conj().T

    def projector(a):  # v diag(w) v^H rebuilds the Hermitian matrix read from one triangle
        w, v = fnp.linalg.eigh(a)
        return (v * fnp.tanh(w)) @ fnp.conj(v.T)

    check_grads(projector, h, order=2)
    check_grads(lambda a: (lambda u, s, vh: u[:, :2] @ vh[:2])(*fnp.linalg.svd(
        a, full_matrices=False)), m[:, :3], order=2)
    check_grads(lambda a: fnp.abs(fnp.linalg.eig(a)[1]), m, order=1)


# -- the checker and the strategies ----------------------------------------------------------------


def test_check_grads_catches_a_conjugation_bug():
    with temporary_ops():
        wrong = fg.defop("exp_conj_bug", lambda x: np.exp(x),
                         lambda g, out, x: (g * np.conj(out),),  # PyTorch's convention
                         Domain((Real(),), complex=True))
        check_grads(wrong, X)  # real inputs cannot tell
        with pytest.raises(AssertionError, match="reverse mode"):
            check_grads(wrong, Z)


def test_check_grads_takes_complex_functions_to_second_order_in_both_modes():
    check_grads(lambda z, x: fg.sum(fg.abs(z) * x) + fg.real(fg.sum(z * z * x)), Z, X,
                order=2, modes=("rev", "fwd"))
    with pytest.raises(AssertionError, match="reverse mode"):
        # a VJP written for PyTorch's conjugate convention
        with temporary_ops():
            sq = fg.defop("square_conj_bug", lambda x: x * x,
                          lambda g, out, x: (2 * g * fg.conj(x),),
                          Domain((Real(),), complex=True))
            check_grads(sq, Z, order=1)


@settings(max_examples=10, deadline=None)
@given(z=fst.arrays(fst.shapes(max_dims=2), Complex(Real(0.5, 2.0), Real(-1.0, 1.0))))
def test_strategies_draw_complex_arrays_from_a_complex_spec(z):
    assert np.iscomplexobj(z)
    assert ((0.5 <= z.real) & (z.real <= 2.0) & (np.abs(z.imag) <= 1.0)).all()
    check_grads(lambda z: fg.log(z) * z, z, order=1)


@settings(max_examples=5, deadline=None)
@given(call=fst.op_inputs("multiply", dtype=np.complex128))
def test_op_inputs_draw_complex_inputs_where_the_domain_allows(call):
    assert all(np.iscomplexobj(a) for a in call.args)


def test_op_inputs_refuse_complex_for_ops_without_it():
    with pytest.raises(ValueError, match="maximum"):
        fst.op_inputs("maximum", dtype=np.complex128)


# -- fg.jit against eager ------------------------------------------------------------------------


def _jit_matches_eager(f, *args):
    g = fg.grad(f, argnums=tuple(range(len(args))))
    eager = g(*args)
    jitted = fg.jit(g)
    for _ in range(2):  # the trace, then the compiled run
        out = jitted(*args)
        for a, b in zip(eager, out):
            assert b.dtype == a.dtype
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_jit_of_complex_programs_matches_eager():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(40) + 1j * rng.standard_normal(40)
    w = rng.standard_normal((6, 6)) + 1j * rng.standard_normal((6, 6))
    x = rng.standard_normal(64)
    _jit_matches_eager(lambda z: fg.sum(fg.abs(z * z + fg.exp(z) - 2.0 * fg.conj(z)) ** 2), z)
    _jit_matches_eager(lambda w, z: fg.sum(fg.abs(w @ z[:6]) ** 2) + fg.abs(fg.det(w)), w, z)
    _jit_matches_eager(lambda x: fnp.sum(fnp.abs(fnp.fft.rfft(x)) ** 2), x)
    _jit_matches_eager(lambda z: fg.var(z) + fg.abs(fg.prod(z[:4])), z)


def test_jit_of_complex_scalar_constants_matches_eager():
    z = np.array([1.0 + 2.0j, -0.5 + 0.3j])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _jit_matches_eager(lambda z: fg.sum(fg.abs(z * 1j + 2.0) ** 2 + fg.imag(z)), z)


def test_vmap_and_jacobians_of_complex_functions():
    batch = np.stack([Z, Z[::-1] * 2, np.conj(Z)])
    loss = lambda z: fg.sum(fg.abs(fg.exp(z) * z) ** 2)
    np.testing.assert_allclose(fg.vmap(fg.grad(loss))(batch),
                               np.stack([fg.grad(loss)(z) for z in batch]))
    f = lambda z: z ** 3 + fg.sin(z)
    np.testing.assert_allclose(fg.jacfwd(f, holomorphic=True)(Z),
                               fg.jacrev(f, holomorphic=True)(Z), atol=1e-14)
    with pytest.raises(TypeError, match="holomorphic=True"):
        fg.jacfwd(fg.abs)(Z)  # forward columns would move z along the real axis only
    np.testing.assert_allclose(fg.jacrev(fg.abs)(Z), np.diag(np.conj(Z) / np.abs(Z)))
