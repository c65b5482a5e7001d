"""The tape: ordering, fan-out, freeing, retain/create graph, no_grad, anomalies, threads."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import AnomalyError, GraphError


def test_fan_out_accumulates():
    x = Tensor([1.0, 2.0, 3.0], autograd=True)
    y = x * x + x  # x used three times
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * x.data + 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_dimensional_leaf_gets_a_tensor_grad(dtype):
    # a 0-d VJP returns a NumPy scalar: the leaf's .grad is still a 0-d Tensor of its dtype
    t = Tensor(np.array(2.0, dtype=dtype), autograd=True)
    (t * t + t * 3.0).backward()
    assert isinstance(t.grad, Tensor) and t.grad.shape == () and t.grad.dtype == dtype
    assert float(t.grad.data) == 7.0
    (t * t).backward()  # accumulates into the existing 0-d grad
    assert isinstance(t.grad, Tensor) and float(t.grad.data) == 11.0


def test_book_diamond_graph():
    a = Tensor([1, 2, 3, 4, 5], autograd=True)
    b = Tensor([2, 2, 2, 2, 2], autograd=True)
    c = Tensor([5, 4, 3, 2, 1], autograd=True)
    f = (a + b) + (b + c)
    assert f.creation_op == "add" and len(f.creators) == 2
    f.backward(Tensor(np.array([1, 1, 1, 1, 1])))
    np.testing.assert_array_equal(b.grad.data, [2, 2, 2, 2, 2])
    assert b.grad.dtype.kind == "f"  # integer tensors get floating-point gradients


def test_creators_survive_backward_while_they_live():
    x = Tensor([1, 2, 3], autograd=True)
    y = Tensor([2, 2, 2], autograd=True)
    z = x + y
    z.backward(Tensor(np.array([1, 1, 1])))
    assert z.creators[0] is x and z.creators[1] is y and z.creation_op == "add"


def test_gradients_accumulate_across_backward_calls():
    w = Tensor([1.0, 2.0], autograd=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [6.0, 6.0])


def test_leaf_gradients_are_not_aliased():
    a = Tensor([1.0, 2.0], autograd=True)
    b = Tensor([3.0, 4.0], autograd=True)
    (a + b).sum().backward()  # add's VJP hands the same cotangent to both inputs
    a.grad.data *= 0
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])


def test_million_op_chain_backpropagates_without_recursion():
    x = Tensor(np.array(0.5), autograd=True)
    y = x
    for _ in range(1_000_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0
    del y


def test_second_backward_without_retain_graph_says_what_to_do():
    x = Tensor([1.0, 2.0], autograd=True)
    y = (x.tanh() * 2).sum()
    y.backward()
    with pytest.raises(GraphError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = Tensor([1.0, 2.0], autograd=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, 4 * x.data)


def test_create_graph_gives_differentiable_gradients():
    x = Tensor([0.3, -0.7], autograd=True)
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    g = x.grad  # 3 x^2, recorded
    assert g.creation_op is not None
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_no_grad_records_nothing_and_is_per_thread():
    w = Tensor([1.0], autograd=True)
    seen = {}

    def other_thread():
        seen["recorded"] = (w * 2).creation_op

    with fg.no_grad():
        assert (w * 2).creation_op is None
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert seen["recorded"] == "multiply"
    assert (w * 2).creation_op == "multiply"


def test_detach_cuts_the_graph():
    x = Tensor([2.0], autograd=True)
    y = x * x.detach()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0])


# log(0) and the sqrt VJP's g / (2 * sqrt(0)) make NumPy's RuntimeWarning as well: expected here
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
def test_detect_anomaly_names_the_forward_op():
    x = Tensor([0.0, 1.0], autograd=True)
    with fg.detect_anomaly(), pytest.raises(AnomalyError, match="^log: forward"):
        fg.log(x)
    fg.log(x)  # outside the block: IEEE results, no error


@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
def test_detect_anomaly_names_the_backward_op():
    x = Tensor([0.0, 4.0], autograd=True)
    y = fg.sqrt(x).sum()  # finite forward, infinite derivative at 0
    with fg.detect_anomaly(), pytest.raises(AnomalyError, match="^sqrt: backward"):
        y.backward()


def test_graph_is_freed_by_reference_counting():
    gc.collect()
    gc.disable()
    try:
        w = Tensor(np.ones((3, 2)), autograd=True)
        x = Tensor(np.ones((4, 3)))
        probe = []
        for _ in range(5):  # a few training steps
            h = (x.mm(w)).tanh()
            loss = h.sum()
            probe.append(weakref.ref(h))
            loss.backward()
            w.data -= 0.1 * w.grad.data
            w.grad = None
        del h, loss
        assert all(r() is None for r in probe), "graph kept alive after training steps"
        assert gc.collect() == 0, "reference cycles left for the garbage collector"
    finally:
        gc.enable()


def test_backward_seed_must_match_shape():
    x = Tensor([1.0, 2.0], autograd=True)
    with pytest.raises(fg.errors.ShapeError, match=r"\(3,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_on_a_tensor_without_grad_explains():
    with pytest.raises(GraphError, match="autograd=True"):
        Tensor([1.0]).backward()


def test_threads_training_separate_models_do_not_interfere():
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((16, 4)) for _ in range(4)]

    def train(x, steps=50):
        w = Tensor(np.full((4, 1), 0.1), autograd=True)
        for _ in range(steps):
            loss = ((x.mm(w) - 1.0) ** 2).mean()
            loss.backward()
            w.data -= 0.05 * w.grad.data
            w.grad = None
        return w.data.copy()

    sequential = [train(Tensor(d)) for d in data]
    results = [None] * len(data)

    def worker(i):
        if i % 2:
            with fg.no_grad():  # another thread's no_grad must not stop the others recording
                pass
        results[i] = train(Tensor(data[i]))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(data))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(sequential, results):
        np.testing.assert_array_equal(a, b)


def test_float32_stays_float32():
    x = Tensor(np.ones((2, 3), dtype=np.float32), autograd=True)
    w = Tensor(np.ones((3, 2), dtype=np.float32), autograd=True)
    y = (x.mm(w) * 2.0 + 1.0).tanh().sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_constant_operand_gets_no_gradient():
    x = Tensor([1.0, 2.0], autograd=True)
    c = Tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


def test_ndarray_on_the_left_defers_to_tensor():
    x = Tensor([1.0, 2.0], autograd=True)
    y = np.array([2.0, 3.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 3.0])


def test_weight_changed_between_forward_and_backward_is_detected():
    w = Tensor([1.0, 2.0], autograd=True)
    y = (w * w).sum()
    w.data -= 1.0  # e.g. an optimizer step before this graph's backward
    with pytest.raises(GraphError, match=r"backward of 'multiply'.*modified in place"):
        y.backward()


def test_optimizer_update_after_backward_stays_legal():
    w = Tensor([1.0, 2.0], autograd=True)
    for _ in range(3):
        y = (w * w).sum()
        y.backward()
        w.data -= 0.1 * w.grad.data
        w.grad = None
    np.testing.assert_allclose(w.data, np.array([1.0, 2.0]) * 0.8 ** 3)
