"""Chapter 13 of *Grokking Deep Learning* ("Introducing automatic optimization") on fungrad.

Every listing of the chapter runs here with fungrad's imports in place of the classes the book
builds (``Tensor``, ``SGD``, ``Layer``, ``Linear``, ``Sequential``, ``MSELoss``, ``Tanh``,
``Sigmoid``, ``Embedding``, ``CrossEntropyLoss``, ``RNNCell``), printing what the book prints.
The listings that *define* those classes are replaced by the imports below.

Where the output differs from the book's, and why:

* Randomness. The book seeds NumPy's global generator with ``np.random.seed(0)``, and its
  Tensor draws a random id from that same generator every time a tensor is created, so its
  numbers depend on how many tensors each listing made first. fungrad's layers draw from a
  ``numpy.random.Generator`` (``fg.manual_seed(0)`` below, where the book seeds), and creating
  tensors draws nothing; so the losses differ from the book's printed ones while falling in
  the same way. :func:`replay_book` shows that the arithmetic is the same: fed the book's own
  draws (a legacy ``RandomState`` advanced past the book's tensor ids), the listings print
  the book's numbers to the last digit.
* The first listings build graphs from tensors without an autograd flag; fungrad records
  only tensors created with ``autograd=True``, so those listings pass it.
* Gradients of integer tensors are floating point (``[1. 1. 1. 1. 1.]``, not ``[1 1 1 1 1]``).
* Part 3's listing prints ``False`` in the book (its first Tensor overwrote gradients instead
  of adding them); fungrad accumulates, so it prints ``True``.
* Cross-entropy: the book's gradient is ``softmax - onehot`` without the ``1 / batch`` of the
  mean it prints, so its SGD steps are ``batch`` times larger than its ``alpha``. fungrad's
  gradient is right; the listing as written therefore learns more slowly, and with
  ``alpha * batch`` it follows the book's curve exactly.
* The bAbI listing needs the bAbI file, which cannot be downloaded here: it runs on stories
  generated in the same format by ``examples/babi_rnn.py`` (pass ``babi_path=`` for the real
  file), with a sorted vocabulary and ``alpha = 0.05 * batch_size`` for the reason above.

Run ``python examples/chapter13.py`` (a few seconds).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

# Small matrices: BLAS worker threads cost more than they save, and stall badly on a busy
# machine (40x slower steps measured on 2 loaded cores). Set before NumPy loads BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

try:
    import fungrad as fg
except ImportError:  # running from a source checkout without installing fungrad
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import fungrad as fg
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the examples' _plots helper
import _cli  # noqa: E402
from _plots import save_plot
from fungrad import Tensor
from fungrad.nn import (
    CrossEntropyLoss, Embedding, Linear, MSELoss, Sequential, Sigmoid, Tanh,
)
from fungrad.optim import SGD

# The book's printed losses, for comparison.
BOOK = {
    "13": [5.066439994622396, 0.4959907791902341, 0.4180671892167177, 0.35298133007809646,
           0.2972549636567376, 0.24923260381633278, 0.20785392075862477, 0.17231260916265181,
           0.14193744536652994, 0.11613979792168387],
    "14": [0.58128304, 0.48988149, 0.41375111, 0.34489412, 0.28210124, 0.2254484, 0.17538853,
           0.1324231, 0.09682769, 0.06849361],
    "18": [2.33428272, 0.06743796, 0.0521849, 0.04079507, 0.03184365, 0.02479336, 0.01925443,
           0.01491699, 0.01153118, 0.00889602],
    "21": [1.06372865, 0.75148144, 0.57384259, 0.39574294, 0.2482279, 0.15515294, 0.10423398,
           0.07571169, 0.05837623, 0.04700013],
    "26": [0.98874126, 0.6658868, 0.45639889, 0.31608168, 0.2260925, 0.16877423, 0.13120515,
           0.10555487, 0.08731868, 0.07387834],
    "29": [1.3885032434928422, 0.9558181509266036, 0.6823083585795604, 0.509525996749312,
           0.39574491472895856, 0.3175252728534828, 0.26172228619642157, 0.22061283923954234,
           0.18946427334830074, 0.16527389263866676],
}

XOR_DATA = [[0, 0], [0, 1], [1, 0], [1, 1]]
XOR_TARGET = [[0], [1], [0], [1]]


def _header(title: str) -> None:
    print(f"\n--- {title} ---")


def _float(loss) -> float:
    return float(np.asarray(loss.data).reshape(-1)[0])


# --------------------------------------------------------------------------- Parts 1-6


def tensors_and_autograd() -> None:
    """Parts 1-6: tensors, addition, backward, reuse, negation, sum and expand."""
    _header("In [1] Part 1: introduction to tensors")
    x = Tensor([1, 2, 3, 4, 5])
    print(x)
    y = x + x
    print(y)

    _header("In [2]-[3] Part 2: introduction to autograd")
    # the book's first Tensor records every op; fungrad records tensors with autograd=True
    x = Tensor([1, 2, 3, 4, 5], autograd=True)
    y = Tensor([2, 2, 2, 2, 2], autograd=True)
    z = x + y
    z.backward(Tensor(np.array([1, 1, 1, 1, 1])))
    print(x.grad)  # float gradients: [1. 1. 1. 1. 1.] where the book shows [1 1 1 1 1]
    print(y.grad)
    print(z.creators)
    print(z.creation_op)

    _header("In [4]")
    # (autograd=True here and in In [5] too: the book's Part 2 tensors record without a flag)
    a = Tensor([1, 2, 3, 4, 5], autograd=True)
    b = Tensor([2, 2, 2, 2, 2], autograd=True)
    c = Tensor([5, 4, 3, 2, 1], autograd=True)
    d = Tensor([-1, -2, -3, -4, -5], autograd=True)
    e = a + b
    f = c + d
    g = e + f
    g.backward(Tensor(np.array([1, 1, 1, 1, 1])))
    print(a.grad)

    _header("In [5] Part 3: tensors used multiple times (the book prints False: no accumulation)")
    a = Tensor([1, 2, 3, 4, 5], autograd=True)
    b = Tensor([2, 2, 2, 2, 2], autograd=True)
    c = Tensor([5, 4, 3, 2, 1], autograd=True)
    d = a + b
    e = b + c
    f = d + e
    f.backward(Tensor(np.array([1, 1, 1, 1, 1])))
    print(repr(b.grad.data == np.array([2, 2, 2, 2, 2])))

    _header("In [6] Part 4 / In [8] Part 6: the same with multi-use support")
    a = Tensor([1, 2, 3, 4, 5], autograd=True)
    b = Tensor([2, 2, 2, 2, 2], autograd=True)
    c = Tensor([5, 4, 3, 2, 1], autograd=True)
    d = a + b
    e = b + c
    f = d + e
    f.backward(Tensor(np.array([1, 1, 1, 1, 1])))
    print(b.grad.data == np.array([2, 2, 2, 2, 2]))

    _header("In [7] Part 5: negation")
    a = Tensor([1, 2, 3, 4, 5], autograd=True)
    b = Tensor([2, 2, 2, 2, 2], autograd=True)
    c = Tensor([5, 4, 3, 2, 1], autograd=True)
    d = a + (-b)
    e = (-b) + c
    f = d + e
    f.backward(Tensor(np.array([1, 1, 1, 1, 1])))
    print(b.grad.data == np.array([-2, -2, -2, -2, -2]))

    _header("In [9]-[12]: sum and expand")
    x = Tensor(np.array([[1, 2, 3], [4, 5, 6]]))
    print(repr(x.sum(0)))
    print(repr(x.sum(1)))
    print(repr(x.expand(dim=2, copies=4)))

    _header("In [24] Part 14: indexing (index_select) in autograd")
    x = Tensor(np.eye(5), autograd=True)
    x.index_select(Tensor([[1, 2, 3], [2, 3, 4]])).backward()
    print(x.grad)


# --------------------------------------------------------------------------- Parts 7-8


def numpy_training() -> list[float]:
    """In [13]: the previous chapter's way, NumPy only, for comparison."""
    _header("In [13] Part 7: training with NumPy and hand-written backprop")
    np.random.seed(0)  # the listing's own NumPy draws
    data = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    target = np.array([[0], [1], [0], [1]])
    weights_0_1 = np.random.rand(2, 3)
    weights_1_2 = np.random.rand(3, 1)
    losses = []
    for _ in range(10):
        layer_1 = data.dot(weights_0_1)
        layer_2 = layer_1.dot(weights_1_2)
        diff = layer_2 - target
        loss = (diff * diff).sum(0)
        layer_1_grad = diff.dot(weights_1_2.transpose())
        weight_1_2_update = layer_1.transpose().dot(diff)
        weight_0_1_update = data.transpose().dot(layer_1_grad)
        weights_1_2 -= weight_1_2_update * 0.1
        weights_0_1 -= weight_0_1_update * 0.1
        print(loss[0])
        losses.append(float(loss[0]))
    return losses


def autograd_training(use_sgd: bool = False, w=None) -> list[float]:
    """In [14] (updates by hand) and In [16] (the SGD optimizer): the same numbers.

    The weights are the listing's own ``np.random.rand`` draws, so ``np.random.seed(0)`` stays.
    The book's first loss is 0.581 rather than In [13]'s 5.066 only because its Tensor drew a
    random id for ``data`` and ``target`` first; fungrad's tensors draw nothing, so this prints
    In [13]'s first loss, then a curve twice as steep (autograd's gradient of the squared
    error has the factor 2 that In [13] leaves out).
    """
    data = Tensor(np.array(XOR_DATA), autograd=True)
    target = Tensor(np.array(XOR_TARGET), autograd=True)
    if w is None:
        np.random.seed(0)
        w = [Tensor(np.random.rand(2, 3), autograd=True),
             Tensor(np.random.rand(3, 1), autograd=True)]
    optim = SGD(parameters=w, alpha=0.1) if use_sgd else None
    losses = []
    for _ in range(10):
        pred = data.mm(w[0]).mm(w[1])
        loss = ((pred - target) * (pred - target)).sum(0)
        loss.backward(Tensor(np.ones_like(loss.data)))
        if optim is not None:
            optim.step()
        else:
            for w_ in w:
                w_.data -= w_.grad.data * 0.1
                w_.grad.data *= 0
        print(loss)
        losses.append(_float(loss))
    return losses


# --------------------------------------------------------------------------- Parts 9-16


def _train(model, criterion, data, target, alpha: float, iterations: int = 10) -> list[float]:
    """The book's training loop (Parts 10-16), printing each loss."""
    optim = SGD(parameters=model.get_parameters(), alpha=alpha)
    losses = []
    for _ in range(iterations):
        pred = model.forward(data)
        loss = criterion.forward(pred, target)
        loss.backward(Tensor(np.ones_like(loss.data)))
        optim.step()
        print(loss)
        losses.append(_float(loss))
    return losses


def _xor():
    return (Tensor(np.array(XOR_DATA), autograd=True),
            Tensor(np.array(XOR_TARGET), autograd=True))


def layer_listings(rng=None) -> dict[str, list[float]]:
    """In [18], [19], [21], [26], [29]: layers, losses, activations, embeddings, cross-entropy.

    ``rng=None`` runs them as written (with ``fg.manual_seed(0)`` where the book seeds);
    :func:`replay_book` passes the book's own draws instead.
    """
    book_ids = _BookIds(rng)
    out = {}

    _header("In [18] Part 10: Sequential of Linear layers, SGD(alpha=0.05)")
    fg.manual_seed(0)  # the book: np.random.seed(0)
    data, target = book_ids.tensors(_xor(), 2)
    model = Sequential([book_ids.linear(2, 3), book_ids.linear(3, 1)])
    out["18"] = _train(model, MSELoss(), data, target, alpha=0.05, iterations=10)

    _header("In [19] Part 11: the same with the MSELoss layer")
    fg.manual_seed(0)
    book_ids.reset()
    data, target = book_ids.tensors(_xor(), 2)
    model = Sequential([book_ids.linear(2, 3), book_ids.linear(3, 1)])
    criterion = MSELoss()
    out["19"] = _train(model, criterion, data, target, alpha=0.05)

    _header("In [21] Part 12: Tanh and Sigmoid layers, SGD(alpha=1)")
    fg.manual_seed(0)
    book_ids.reset()
    data, target = book_ids.tensors(_xor(), 2)
    model = Sequential([book_ids.linear(2, 3), Tanh(), book_ids.linear(3, 1), Sigmoid()])
    out["21"] = _train(model, MSELoss(), data, target, alpha=1)

    _header("In [26] Part 15: the Embedding layer, SGD(alpha=0.5)")
    fg.manual_seed(0)
    book_ids.reset()
    data, target = book_ids.tensors((Tensor(np.array([1, 2, 1, 2]), autograd=True),
                                     Tensor(np.array(XOR_TARGET), autograd=True)), 2)
    embed = book_ids.embedding(5, 3)
    model = Sequential([embed, Tanh(), book_ids.linear(3, 1), Sigmoid()])
    out["26"] = _train(model, MSELoss(), data, target, alpha=0.5)

    for alpha, note in ((0.1, "as written: fungrad's mean gradient makes these 4x smaller "
                              "steps than the book's"),
                        (0.4, "alpha * batch (0.1 * 4): the step the book took")):
        _header(f"In [29] Part 16: CrossEntropyLoss, SGD(alpha={alpha}) -- {note}")
        fg.manual_seed(0)
        book_ids.reset()
        data, target = book_ids.tensors((Tensor(np.array([1, 2, 1, 2]), autograd=True),
                                         Tensor(np.array([0, 1, 0, 1]), autograd=True)), 2)
        model = Sequential([book_ids.embedding(3, 3), Tanh(), book_ids.linear(3, 4)])
        criterion = CrossEntropyLoss()
        out["29" if alpha == 0.4 else "29_as_written"] = _train(model, criterion, data, target,
                                                                alpha=alpha)
    return out


class _BookIds:
    """Layers drawing from fungrad's default generator, or (``rng`` given) replaying the book.

    The book's Tensor draws ``np.random.randint(0, 100000)`` as an id each time it is
    created; to replay the book's weights we draw those ids from ``rng`` at the same points.
    """

    def __init__(self, rng) -> None:
        self.seed = rng
        self.reset()

    def reset(self) -> None:
        self.rng = None if self.seed is None else np.random.RandomState(self.seed)

    def _ids(self, n: int) -> None:
        for _ in range(n if self.rng is not None else 0):
            self.rng.randint(0, 100000)

    def tensors(self, tensors, n: int):
        self._ids(n)
        return tensors

    def linear(self, n_in: int, n_out: int) -> Linear:
        layer = Linear(n_in, n_out, rng=self.rng)
        self._ids(2)  # the book's Tensor(W) and Tensor(zeros)
        return layer

    def embedding(self, vocab: int, dim: int) -> Embedding:
        layer = Embedding(vocab, dim, rng=self.rng)
        self._ids(1)
        return layer


def replay_book() -> dict[str, float]:
    """Run the listings on the book's own random draws; return max |fungrad - book| per listing.

    ``np.random.seed(0)`` plus one ``randint`` per tensor the book created before drawing each
    weight reproduces the book's weights; fungrad then prints the book's losses.
    """
    _header("Replaying the book's random draws (a seeded RandomState, skipping the book's "
            "tensor ids)")
    import contextlib
    import io

    rs = np.random.RandomState(0)
    for _ in range(2):
        rs.randint(0, 100000)  # ids of data and target
    w0 = rs.rand(2, 3)
    rs.randint(0, 100000)
    w1 = rs.rand(3, 1)
    with contextlib.redirect_stdout(io.StringIO()):
        got = {"14": autograd_training(w=[Tensor(w0, autograd=True), Tensor(w1, autograd=True)])}
        got.update(layer_listings(rng=0))
    diffs = {}
    for key, book in BOOK.items():
        if key in got:
            diffs[key] = float(np.max(np.abs(np.array(got[key]) - np.array(book))))
            print(f"In [{key}]: fungrad {got[key][0]:.8f} ... {got[key][-1]:.8f}   "
                  f"book {book[0]:.8f} ... {book[-1]:.8f}   max |diff| {diffs[key]:.1e}")
    return diffs


# --------------------------------------------------------------------------- Part 17


def rnn_listing(babi_path: str | None = None, iterations: int = 1000, jit: bool = False) -> dict:
    """In [31] Part 17: the RNN on bAbI (generated stories unless ``babi_path`` is given)."""
    _header("In [31] Part 17: the RNN on bAbI task 1")
    babi = _sibling("babi_rnn")
    if babi_path is None:
        raw = babi.generate_task1(200, np.random.default_rng(0))  # 3000 lines, as the real file
        print("(stories generated in the bAbI format; the real file cannot be downloaded here)")
    else:
        raw = babi.load_babi(babi_path)[0]
    fg.manual_seed(0)  # the book: np.random.seed(0) before creating the layers
    return babi.book_listing(raw, iterations=iterations, log_every=200, jit=jit)


def _sibling(name: str):
    """Import ``examples/<name>.py`` (examples are scripts, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- main


def main(rnn_iterations: int = 1000, replay: bool = True, babi_path: str | None = None,
         plot: bool = True, jit: bool = False, out_dir: str = ".") -> dict:
    """Run every listing; returns the losses (and the replay's differences from the book)."""
    t0 = time.perf_counter()
    tensors_and_autograd()
    results: dict = {"13": numpy_training()}
    _header("In [14] Part 7: training with autograd (weights from the listing's np.random)")
    results["14"] = autograd_training()
    _header("In [15]-[16] Part 8: the SGD optimizer (same numbers as In [14])")
    results["16"] = autograd_training(use_sgd=True)
    results.update(layer_listings())
    results["31"] = rnn_listing(babi_path, iterations=rnn_iterations, jit=jit)
    if replay:
        results["replay"] = replay_book()
    print("\nhow each curve fell (first loss -> last), fungrad vs the book:")
    for key in ("13", "14", "18", "21", "26", "29"):
        ours, book = results[key], BOOK[key]
        print(f"  In [{key}]: {ours[0]:.4f} -> {ours[-1]:.4f}  "
              f"(x{ours[-1] / ours[0]:.3f})   book {book[0]:.4f} -> {book[-1]:.4f}  "
              f"(x{book[-1] / book[0]:.3f})")
    if plot:
        curves = {f"In [{k}]": results[k] for k in ("18", "21", "26", "29")}
        save_plot(os.path.join(out_dir, "chapter13_losses.png"), curves,
                  title="Chapter 13: the layer listings' training loss",
                  xlabel="iteration (one SGD step on all four examples)",
                  ylabel="loss (summed squared error; In [29]: cross-entropy)", log_y=True)
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return results


if __name__ == "__main__":
    parser = _cli.parser(__doc__)
    parser.add_argument("babi_path", nargs="?",
                        help="the real bAbI qa1 file for In [31]; without one, stories are "
                             "generated in its format")
    parser.add_argument("--rnn-iterations", type=int, default=1000,
                        help="steps of the bAbI RNN listing (In [31])")
    parser.add_argument("--no-replay", action="store_true",
                        help="skip replaying the book's own random draws to its numbers")
    parser.add_argument("--jit", action="store_true",
                        help="In [31] with fg.jit after 20 eager steps; print the speed-up")
    _cli.add_out_dir(parser, "loss plot chapter13_losses.png")
    args = parser.parse_args()
    main(rnn_iterations=args.rnn_iterations, babi_path=args.babi_path, jit=args.jit,
         replay=not args.no_replay, out_dir=args.out_dir)
