"""fg.jit, object style: Modules, loss.backward(), optimizers, .grad and state committed only
when a step succeeds, hyperparameters read at run time, train/eval, randomness, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fungrad as fg
from fungrad import Tensor
from fungrad.errors import IndexRangeError, TracingError
from fungrad.jit import jit
from fungrad.nn import CrossEntropyLoss, Dropout, Embedding, Linear, MSELoss, Sequential, Tanh
from fungrad.optim import SGD, Adam

XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
XOR_Y = np.array([[0], [1], [0], [1]], float)


def _mlp(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)  # not fg.manual_seed: one generator per model (threads)
    return Sequential([Linear(2, 3, dtype=dtype, rng=rng), Tanh(),
                       Linear(3, 1, dtype=dtype, rng=rng)])


def _state(model, opt=None):
    params = [p.data.copy() for p in model.parameters()]
    grads = [None if p.grad is None else p.grad.data.copy() for p in model.parameters()]
    return params, grads, ({} if opt is None else
                           {k: v.copy() for k, v in opt.state_dict().items()})


def _same(a, b, rtol=1e-12):
    for x, y in zip(a[0], b[0]):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-15)
    for x, y in zip(a[1], b[1]):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-15)
    assert sorted(a[2]) == sorted(b[2])
    for k in a[2]:
        np.testing.assert_allclose(a[2][k], b[2][k], rtol=rtol, atol=1e-15, err_msg=k)


def _eager_and_jit_agree(body, eager_model: tuple, jit_model: tuple, calls: int = 3) -> None:
    """``body(model, opt)``'s step, called on XOR eagerly on one (model, optimizer) and under
    fg.jit on a copy: the parameters and gradients agree after ``calls`` calls."""
    eager, jitted = body(*eager_model), jit(body(*jit_model))
    for _ in range(calls):
        eager(XOR, XOR_Y)
        jitted(XOR, XOR_Y)
    _same(_state(eager_model[0]), _state(jit_model[0]))


def _book_step(model, opt, criterion=None):
    criterion = criterion or MSELoss()

    def step(data, target):
        loss = criterion.forward(model.forward(data), target)
        loss.backward(Tensor(np.ones_like(loss.data)))
        opt.step()
        return loss

    return step


@pytest.mark.parametrize("make_opt", [
    lambda ps: SGD(ps, alpha=0.1),
    lambda ps: SGD(ps, alpha=0.05, momentum=0.9),
    lambda ps: Adam(ps, lr=0.01),
])
@pytest.mark.parametrize("backend", ["python", "compiled"])
def test_training_loop_equals_eager(make_opt, backend):
    m1, m2 = _mlp(), _mlp()
    o1, o2 = make_opt(m1.parameters()), make_opt(m2.parameters())
    eager, jitted = _book_step(m1, o1), jit(_book_step(m2, o2), backend=backend)
    data, target = Tensor(XOR), Tensor(XOR_Y)
    for _ in range(5):
        l1, l2 = eager(data, target), jitted(data, target)
        np.testing.assert_allclose(l2.data, l1.data, rtol=1e-12)
    _same(_state(m1, o1), _state(m2, o2))
    assert jitted.cache_info().misses <= 3  # grads and optimizer state appear in the first calls


def test_book_manual_update_with_data_and_grad_data():
    np.random.seed(0)
    w0 = [np.random.rand(2, 3), np.random.rand(3, 1)]

    def make():
        return [Tensor(w.copy(), autograd=True) for w in w0]

    def body(w, data, target):
        pred = data.mm(w[0]).mm(w[1])
        loss = ((pred - target) * (pred - target)).sum(0)
        loss.backward(Tensor(np.ones_like(loss.data)))
        for w_ in w:
            w_.data -= w_.grad.data * 0.1
            w_.grad.data *= 0
        return loss

    we, wj = make(), make()
    data, target = Tensor(XOR, autograd=True), Tensor(XOR_Y, autograd=True)
    step = jit(lambda: body(wj, data, target))
    for _ in range(6):
        le, lj = body(we, data, target), step()
        np.testing.assert_allclose(lj.data, le.data, rtol=1e-12)
    for a, b in zip(we, wj):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-12)
        np.testing.assert_allclose(b.grad.data, a.grad.data, rtol=1e-12)


def test_learning_rate_changes_take_effect_without_retracing():
    m1, m2 = _mlp(), _mlp()
    o1, o2 = SGD(m1.parameters(), alpha=0.1), SGD(m2.parameters(), alpha=0.1)
    eager, jitted = _book_step(m1, o1), jit(_book_step(m2, o2))
    data, target = Tensor(XOR), Tensor(XOR_Y)
    for i in range(6):
        o1.alpha = o2.alpha = 0.2 / (i + 1)  # a schedule
        eager(data, target)
        jitted(data, target)
    _same(_state(m1), _state(m2))
    assert jitted.cache_info().misses == 2  # the first call had no .grad yet


def test_adam_step_count_and_lr_are_read_at_run_time():
    m1, m2 = _mlp(), _mlp()
    o1, o2 = Adam(m1.parameters(), lr=0.05), Adam(m2.parameters(), lr=0.05)
    eager, jitted = _book_step(m1, o1), jit(_book_step(m2, o2))
    data, target = Tensor(XOR), Tensor(XOR_Y)
    for i in range(8):
        o1.lr = o2.lr = 0.05 * 0.9 ** i
        eager(data, target)
        jitted(data, target)
    _same(_state(m1, o1), _state(m2, o2))
    assert [o2.state[p]["step"] for p in m2.parameters()] == [8] * 4


def test_zero_grad_inside_the_step_and_grads_kept_between_calls():
    m1, m2 = _mlp(), _mlp()
    o1, o2 = SGD(m1.parameters(), alpha=0.1), SGD(m2.parameters(), alpha=0.1)

    def body(model, opt):
        def step(x, y):
            opt.zero_grad()
            loss = MSELoss(reduction="mean")(model(x), y)
            loss.backward()
            opt.step(zero=False)
            return loss
        return step

    _eager_and_jit_agree(body, (m1, o1), (m2, o2))
    assert all(p.grad is not None for p in m2.parameters())


def test_tensor_argument_with_autograd_gets_its_grad():
    w = Tensor(np.array([1.0, 2.0]), autograd=True)
    step = jit(lambda w, x: (w * x).sum().backward())
    step(w, np.array([3.0, 4.0]))
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])
    step(w, np.array([1.0, 1.0]))  # accumulates, as eager does
    np.testing.assert_array_equal(w.grad.data, [4.0, 5.0])


def test_error_mid_program_leaves_model_untouched_and_is_eagers():
    fg.manual_seed(0)
    emb, lin = Embedding(5, 3), Linear(3, 2)
    opt = SGD(emb.parameters() + lin.parameters(), alpha=0.1)

    def step(ids, y):
        loss = CrossEntropyLoss()(lin(emb(ids)), y)
        loss.backward()
        opt.step()
        return loss

    jitted = jit(step)
    jitted(np.array([0, 1, 2]), np.array([0, 1, 0]))
    jitted(np.array([0, 1, 2]), np.array([0, 1, 0]))
    before = _state(Sequential([emb, lin]))
    with pytest.raises(IndexRangeError) as got:
        jitted(np.array([0, 9, 2]), np.array([0, 1, 0]))
    _same(before, _state(Sequential([emb, lin])))
    with pytest.raises(IndexRangeError) as ref:
        step(np.array([0, 9, 2]), np.array([0, 1, 0]))
    assert str(got.value) == str(ref.value) and "Embedding(5, 3): id 9" in str(got.value)
    with pytest.raises(IndexRangeError):  # a bad class target: the loss kernel's check
        jitted(np.array([0, 1, 2]), np.array([0, 5, 0]))
    _same(before, _state(Sequential([emb, lin])))


def test_embedding_ids_sliced_from_columns_compile_with_their_range_check():
    # ids = batch[:, t] are strided: copied to a contiguous buffer, checked in the compiled
    # program (no Python step), and a negative id is refused as eager refuses it
    from fungrad.jit.passes.lower import lower

    def model():
        emb, lin = Embedding(5, 3, rng=0), Linear(3, 2, rng=1)
        opt = SGD(emb.parameters() + lin.parameters(), alpha=0.1)

        def step(batch, y):
            loss = CrossEntropyLoss()(lin(emb(batch[:, 0]) + emb(batch[:, 1])), y)
            loss.backward()
            opt.step()
            return loss
        return emb, lin, step

    emb, lin, step = model()
    batch, y = np.array([[0, 4], [1, 3], [2, 2]]), np.array([0, 1, 0])
    step(batch, y)  # eager: the optimizer lays out its state
    jitted = jit(step)
    fallbacks = lower(jitted.lower(batch, y)).fallbacks
    assert fallbacks == [], fallbacks
    ref_emb, ref_lin, ref_step = model()  # the same model, eager
    ref_step(batch, y)
    for _ in range(3):
        np.testing.assert_allclose(jitted(batch, y).data, ref_step(batch, y).data, rtol=1e-12)
    _same(_state(Sequential([emb, lin])), _state(Sequential([ref_emb, ref_lin])))
    before = _state(Sequential([emb, lin]))
    bad = np.array([[0, 4], [-1, 3], [2, 2]])
    with pytest.raises(IndexRangeError) as got:
        jitted(bad, y)
    with pytest.raises(IndexRangeError) as ref:
        ref_step(bad, y)
    assert str(got.value) == str(ref.value)
    _same(before, _state(Sequential([emb, lin])))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bags", [False, True])
def test_an_embeddings_sgd_step_touches_its_rows_and_equals_the_dense_update(bags, dtype):
    # table.grad accumulates a scatter of rows, SGD subtracts lr * grad, step() zeroes it:
    # compiled, only the looked-up rows are visited while .grad holds zeros; a .grad changed
    # between steps (here by hand) takes the dense update; both give eager's numbers. In
    # float32 the rule casts the learning rate to the table's dtype first (astype), which the
    # kernel's own cast stands for
    def build():
        emb, lin = Embedding(50, 4, rng=2, dtype=dtype), Linear(4, 3, rng=3, dtype=dtype)
        return emb, lin, SGD(emb.parameters() + lin.parameters(), alpha=0.5)

    def make_step(emb, lin, opt):
        def step(ids, y):
            x = fg.embedding_bag(emb.weight, ids) if bags else emb(ids)
            loss = CrossEntropyLoss()(lin(x), y)
            loss.backward()
            opt.step()
            return loss
        return step

    ids = np.array([[1, 7], [7, 30], [2, 2]]) if bags else np.array([1, 7, 7])
    y = np.array([0, 2, 1])
    got, ref = build(), build()
    jitted, eager = jit(make_step(*got)), make_step(*ref)
    tight = 1e-15 if dtype == np.float64 else 1e-5  # (float32: the compiled exp's last bits)
    for k in range(5):
        if k == 3:  # a gradient left in .grad: the dense path
            got[0].weight.grad.data[5] += 0.25
            ref[0].weight.grad.data[5] += 0.25
        np.testing.assert_allclose(jitted(ids, y).data, eager(ids, y).data, rtol=tight)
        _same(_state(Sequential([got[0], got[1]])), _state(Sequential([ref[0], ref[1]])),
              rtol=tight)
    program = jit(make_step(*got)).lower(ids, y)
    from fungrad.jit.compiled import compile_program
    assert "sgd_rows" in [k[0] for k in compile_program(program).plan.kernels]


def test_tracing_error_leaves_model_untouched():
    model = _mlp()
    opt = SGD(model.parameters(), alpha=0.1, momentum=0.9)
    _book_step(model, opt)(Tensor(XOR), Tensor(XOR_Y))  # eager: grads and velocity exist
    before = _state(model, opt)

    def step(x, y):
        loss = MSELoss(reduction="mean")(model(x), y)
        loss.backward()
        opt.step()
        if float(loss) > 10:  # a value decides Python control flow: refused
            print("diverging")
        return loss

    with pytest.raises(TracingError, match="fg.jit"):
        jit(step)(XOR, XOR_Y)
    _same(before, _state(model, opt))


def test_train_eval_and_dropout_randomness():
    fg.manual_seed(0)
    model = Sequential([Linear(4, 16), Dropout(0.5), Linear(16, 2)])
    x = np.ones((3, 4))
    f = jit(lambda x: model(x))
    fg.manual_seed(7)
    a, b = f(x), f(x)
    fg.manual_seed(7)
    ea, eb = model(x), model(x)
    np.testing.assert_allclose(a.data, ea.data, rtol=1e-12)
    np.testing.assert_allclose(b.data, eb.data, rtol=1e-12)
    assert not np.allclose(a.data, b.data)  # fresh masks on every call
    model.eval()
    np.testing.assert_allclose(f(x).data, model(x).data, rtol=1e-12)
    model.train()
    f(x)
    assert f.cache_info().misses == 2


def test_random_draws_from_default_generator_follow_manual_seed():
    f = jit(lambda x: x + fg.random.default_generator().standard_normal(x.shape))
    fg.manual_seed(3)
    a = f(np.zeros(4))
    fg.manual_seed(3)
    np.testing.assert_array_equal(a, np.random.default_rng(3).standard_normal(4))


def test_clip_grad_norm_inside_the_step():
    m1, m2 = _mlp(), _mlp()
    o1, o2 = SGD(m1.parameters(), alpha=0.1), SGD(m2.parameters(), alpha=0.1)

    def body(model, opt):
        def step(x, y):
            loss = MSELoss(reduction="sum")(model(x), y) * 10.0
            loss.backward()
            fg.optim.clip_grad_norm(model.parameters(), 0.5)
            opt.step()
        return step

    _eager_and_jit_agree(body, (m1, o1), (m2, o2))


def test_separate_models_on_threads():
    def train(model, opt, x, y):
        loss = MSELoss(reduction="mean")(model(x), y)
        loss.backward()
        opt.step()
        return loss

    step = jit(train)
    results, errors = {}, []

    def worker(k):
        try:
            model = _mlp(seed=k)
            opt = SGD(model.parameters(), alpha=0.1)
            ref, ref_opt = _mlp(seed=k), None
            ref_opt = SGD(ref.parameters(), alpha=0.1)
            for _ in range(20):
                step(model, opt, XOR, XOR_Y)
                train(ref, ref_opt, XOR, XOR_Y)
            results[k] = (_state(model), _state(ref))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for got, ref in results.values():
        _same(got, ref)
