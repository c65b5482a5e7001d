"""Issue 9, item 1: a recorded Tensor is never silently turned into a constant.

Every path that would turn a Tensor being differentiated into a plain ndarray or Python number
either differentiates (NumPy's protocols) or raises an error naming the fix; control flow on
values and integer casts stay allowed, and so do conversions of untracked Tensors and, in plain
eager code, logging a loss.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import ConversionError
from fungrad.testing import check_grads

X = np.random.default_rng(0).standard_normal((5, 3))
W0 = np.array([0.1, -0.2, 0.3])


def test_the_issues_numpy_program_differentiates():
    f = lambda w: np.sum(np.log1p(np.exp(np.tanh(np.dot(X, w))))) + 0.1 * np.linalg.norm(w)  # noqa: E731,E501
    try:
        g = fg.grad(f)(W0)
    except TypeError as e:  # until every function in it has a differentiable version
        assert "no differentiable fungrad implementation" in str(e)
        return
    h = 1e-6
    numeric = [(f(W0 + h * e) - f(W0 - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(g, numeric, rtol=1e-6)


CONVERSIONS = {
    "np.asarray": lambda t: np.asarray(t),
    "np.array": lambda t: np.array(t),
    "np.array of a list": lambda t: np.array([t, t]),
    "np.asarray with dtype": lambda t: np.asarray(t, dtype=np.float32),
    "Tensor.numpy": lambda t: t.numpy(),
    "float": lambda t: float(t.sum()),
    "item": lambda t: t.sum().item(),
    "np.vander (no differentiable version)": lambda t: np.vander(t),
    "np.frexp ufunc (no differentiable version)": lambda t: np.frexp(t),
    "Tensor(t) inside grad": lambda t: Tensor(t),
    "ufunc out=": lambda t: np.add(t, 1.0, out=np.empty(3)),
}


@pytest.mark.parametrize("name", sorted(CONVERSIONS))
def test_every_conversion_path_raises_under_grad(name):
    convert = CONVERSIONS[name]
    with pytest.raises(TypeError) as info:
        fg.grad(lambda w: _use(convert(w), w))(W0)
    text = str(info.value)
    assert any(fix in text for fix in ("detach", "fg.", "fungrad", "assign the result")), text


def _use(converted, w):
    return fg.sum(w * 2.0)  # never reached: the conversion raised


@pytest.mark.parametrize("name", ["np.asarray", "np.array", "Tensor.numpy"])
def test_array_conversion_of_a_tensor_that_requires_grad_raises_in_eager_code(name):
    w = Tensor(W0, autograd=True)
    with pytest.raises(ConversionError, match="detach"):
        CONVERSIONS[name](w)


def test_conversions_inside_jvp_and_vjp_raise_too():
    with pytest.raises(ConversionError):
        fg.vjp(lambda w: float(fg.sum(w)), W0)
    with pytest.raises(ConversionError):
        fg.jvp(lambda w: np.asarray(w), (W0,), (W0,))


def test_conversions_at_second_order_raise():
    with pytest.raises(ConversionError):
        fg.grad(fg.grad(lambda x: float(x) * x))(1.0)


def test_control_flow_and_integer_casts_stay_allowed_under_grad():
    def f(x):
        if x.sum() > 0:  # bool(t)
            k = int(x[0])  # int(t): integer casts for indexing
            return fg.sum(x * x) * (k + 1)
        return fg.sum(x)
    np.testing.assert_allclose(fg.grad(f)(np.array([1.5, 2.0])), [6.0, 8.0])



def test_integer_results_of_floats_need_no_gradient_and_index_ndarrays():
    # a semi-Lagrangian step (HIPS autograd's fluid simulation): cell indices computed from
    # the traced positions index a constant ndarray; the weights carry the gradient
    table = np.array([0.0, 1.0, 4.0, 9.0, 16.0])
    x = Tensor([1.5, 2.7], autograd=True)
    assert not x.astype(int).requires_grad and not fg.floor(x).astype(np.int64).requires_grad
    assert Tensor([1, 2], autograd=True).astype(np.int32).requires_grad  # the book's int leaves

    def interp(v):
        i = fg.floor(v).astype(int)
        w = v - i
        return fg.sum((1 - w) * table[i] + w * table[i + 1])

    np.testing.assert_allclose(fg.grad(interp)(np.array([1.5, 2.7])), [3.0, 5.0])
    check_grads(interp, np.array([1.5, 2.7]), order=2)

def test_eager_code_may_log_its_loss():
    w = Tensor(W0, autograd=True)
    loss = fg.sum(w * w)
    assert isinstance(float(loss), float) and isinstance(loss.item(), float)
    loss.backward()


def test_untracked_tensors_and_no_grad_convert_freely():
    t = Tensor(W0)
    assert np.asarray(t) is t.data and t.numpy() is t.data
    np.testing.assert_allclose(np.fft.fft(t), np.fft.fft(W0))
    w = Tensor(W0, autograd=True)
    with fg.no_grad():
        np.testing.assert_array_equal(np.asarray(w), W0)
    np.testing.assert_array_equal(np.asarray(w.detach()), W0)


def test_numpy_functions_on_tensors_differentiate_and_return_tensors():
    w = Tensor(W0, autograd=True)
    y = np.sum(np.tanh(np.maximum(w, 0.0)) * 2.0)
    assert isinstance(y, Tensor)
    y.backward()
    np.testing.assert_allclose(w.grad.data, np.where(W0 > 0, 2 / np.cosh(W0) ** 2, 0.0))


def test_ndarray_operator_tensor_gives_a_tensor():
    w = Tensor(W0, autograd=True)
    y = np.ones(3) * w + np.float64(2.0) * w
    assert isinstance(y, Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 3.0, 3.0])


def test_non_differentiable_numpy_functions_accept_tracked_tensors():
    w = Tensor(W0, autograd=True)
    assert np.argmax(w) == 2 and np.shape(w) == (3,) and np.allclose(w, W0)
    assert np.zeros_like(w).shape == (3,)
    np.testing.assert_array_equal(np.greater(w, 0), W0 > 0)
