"""The chapter's RNN on bAbI task 1 ("single supporting fact"), with no download.

The real data set (Weston et al., 2015) cannot be fetched here, so this file also *writes* task-1
stories in the real file format::

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? \tbathroom\t1

(line ids restart at 1 for each story; a question line holds, after tabs, the answer and the id
of the supporting fact). :func:`load_babi` reads that format, so with the real files run
``python examples/babi_rnn.py --train qa1_single-supporting-fact_train.txt --test
qa1_single-supporting-fact_test.txt``.

Two experiments, both on the book's ``Embedding`` + ``RNNCell`` + ``CrossEntropyLoss``:

1. ``book_listing``: the chapter's listing as printed: each of the first 1000 lines padded to
   6 tokens, the RNN reads 5 tokens and predicts the 6th (the last word of a statement, or the
   answer token of a question line). The book reaches about 37% on this next-word task.
2. ``train_qa``: question answering proper. The RNN reads the story's statements, one
   sentence per step (a sentence is the sum of its word vectors), each alongside the
   question, and predicts the answer; accuracy is measured on held-out stories. The book's
   ``RNNCell`` (tanh) is the default, ``--cell lstm`` uses the ``LSTMCell``.

Run ``python examples/babi_rnn.py`` (under a minute); ``main(...)`` takes short settings.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import NamedTuple, Sequence

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
from _jit_steps import JitSteps
import _cli  # noqa: E402
from _plots import save_plot
from fungrad import Tensor
from fungrad.nn import CrossEntropyLoss, Embedding, LSTMCell, RNNCell
from fungrad.random import resolve_rng

PEOPLE = ("Mary", "John", "Daniel", "Sandra")
PLACES = ("bathroom", "hallway", "garden", "office", "bedroom", "kitchen")
MOVES = ("moved to", "went to", "went back to", "journeyed to", "travelled to")


# --------------------------------------------------------------------------- data


def generate_task1(n_stories: int, rng: np.random.Generator) -> list[str]:
    """Lines of ``n_stories`` task-1 stories in the bAbI file format (with newlines).

    Each story has five blocks of two moves and one question about someone already seen,
    as in the real task: 15 numbered lines.
    """
    lines = []
    for _ in range(n_stories):
        where: dict[str, tuple[str, int]] = {}
        line_id = 0
        for _block in range(5):
            for _move in range(2):
                line_id += 1
                who = PEOPLE[rng.integers(len(PEOPLE))]
                place = PLACES[rng.integers(len(PLACES))]
                move = MOVES[rng.integers(len(MOVES))]
                where[who] = (place, line_id)
                lines.append(f"{line_id} {who} {move} the {place}.\n")
            line_id += 1
            known = sorted(where)
            who = known[rng.integers(len(known))]
            place, support = where[who]
            lines.append(f"{line_id} Where is {who}? \t{place}\t{support}\n")
    return lines


def write_task1(path: str, n_stories: int, seed: int = 0) -> str:
    """Write generated stories to ``path`` (a stand-in for the real ``qa1_*.txt``)."""
    with open(path, "w") as f:
        f.writelines(generate_task1(n_stories, np.random.default_rng(seed)))
    return path


class Sample(NamedTuple):
    """One question: the story's statements before it, the question, answer, supporting ids."""

    story: list[list[str]]
    question: list[str]
    answer: str
    support: list[int]


def _words(sentence: str) -> list[str]:
    return sentence.lower().replace(".", " ").replace("?", " ").split()


def parse_babi(lines: Sequence[str]) -> list[Sample]:
    """Parse bAbI lines (any task) into one :class:`Sample` per question."""
    samples: list[Sample] = []
    story: list[tuple[int, list[str]]] = []
    for n, raw in enumerate(lines, 1):
        raw = raw.rstrip("\n")
        if not raw.strip():
            continue
        head, _, rest = raw.partition(" ")
        if not head.isdigit():
            raise ValueError(f"bAbI line {n}: expected a line id, got {raw[:40]!r}")
        line_id = int(head)
        if line_id == 1:
            story = []
        if "\t" in rest:
            question, answer, support = (rest.split("\t") + ["", ""])[:3]
            ids = [int(s) for s in support.split()]
            samples.append(Sample([w for _, w in story], _words(question), answer.strip(), ids))
        else:
            story.append((line_id, _words(rest)))
    return samples


def load_babi(path: str) -> tuple[list[str], list[Sample]]:
    """Read a bAbI file: ``(raw lines, samples)``."""
    with open(path) as f:
        lines = f.readlines()
    return lines, parse_babi(lines)


# --------------------------------------------------------------------------- the listing


def book_listing(raw: list[str], iterations: int = 1000, batch_size: int = 100,
                 alpha: float | None = None, log_every: int = 200, jit: bool = False) -> dict:
    """The chapter's bAbI listing (Part 17) on fungrad; returns its numbers.

    Differences, all deliberate: the vocabulary is sorted (the book's ``list(set)`` order
    changes from run to run); weights come from ``fg.manual_seed``'s generator; and the
    default step is ``0.05 * batch_size`` because the book's cross-entropy gradient lacks the
    ``1 / batch_size`` that fungrad's has (``0.05 * 100`` is the step the book really took).
    """
    alpha = 0.05 * batch_size if alpha is None else alpha
    tokens = [line.lower().replace("\n", "").split(" ")[1:] for line in raw[0:1000]]
    tokens = [["-"] * (6 - len(line)) + line for line in tokens]
    vocab = sorted({w for sent in tokens for w in sent})
    word2index = {w: i for i, w in enumerate(vocab)}
    data = np.array([[word2index[w] for w in line] for line in tokens])

    embed = Embedding(vocab_size=len(vocab), dim=16)
    model = RNNCell(n_inputs=16, n_hidden=16, n_output=len(vocab))
    criterion = CrossEntropyLoss()
    optim = fg.optim.SGD(parameters=model.get_parameters() + embed.get_parameters(),
                         alpha=alpha)
    history, p_correct = [], float("nan")

    def step():  # the book's loop body (``jit``: compiled by fg.jit after 20 eager steps)
        hidden = model.init_hidden(batch_size=batch_size)
        for t in range(5):
            input = Tensor(data[0:batch_size, t], autograd=True)
            rnn_input = embed.forward(input=input)
            output, hidden = model.forward(input=rnn_input, hidden=hidden)
        target = Tensor(data[0:batch_size, t + 1], autograd=True)
        loss = criterion.forward(output, target)
        loss.backward()
        optim.step()
        return loss, output, target

    run = JitSteps(step, jit)
    for it in range(iterations):
        total_loss = 0
        loss, output, target = run()
        total_loss += loss.data
        p_correct = (target.data == np.argmax(output.data, axis=1)).mean()
        history.append(float(loss.data))
        if log_every and it % log_every == 0:
            print("Loss:", total_loss / (len(data) / batch_size), "% Correct:", p_correct)
    run.report()

    hidden = model.init_hidden(batch_size=1)
    for t in range(5):
        output, hidden = model.forward(input=embed.forward(input=Tensor(data[0:1, t])),
                                       hidden=hidden)
    ctx = "".join(vocab[idx] + " " for idx in data[0:1][0][0:-1])
    print("Context:", ctx)
    print("True:", vocab[data[0, 5]])
    print("Pred:", vocab[output.data.argmax()])
    return {"losses": history, "p_correct": float(p_correct), "batch_size": batch_size}


# --------------------------------------------------------------------------- question answering


class QAData(NamedTuple):
    questions: np.ndarray  # (N, words) word ids, 0 = <pad>
    stories: np.ndarray  # (N, sentences, words): the statements before the question
    answers: np.ndarray  # (N,) index into the vocabulary


def build_vocab(*sample_sets: list[Sample]) -> list[str]:
    words = {"<pad>"}
    for samples in sample_sets:
        for s in samples:
            words.update(s.question)
            words.add(s.answer)
            for sent in s.story:
                words.update(sent)
    return ["<pad>"] + sorted(words - {"<pad>"})


def encode(samples: list[Sample], word2index: dict[str, int], max_sents: int = 10,
           max_words: int = 6) -> QAData:
    """Word-id arrays; the last ``max_sents`` statements of each story are kept, left-padded
    with empty sentences so that the last step is always the latest statement."""
    n = len(samples)
    questions = np.zeros((n, max_words), dtype=np.int64)
    stories = np.zeros((n, max_sents, max_words), dtype=np.int64)

    def ids(sentence):
        return [word2index.get(w, 0) for w in sentence][:max_words]

    for k, s in enumerate(samples):
        q = ids(s.question)
        questions[k, : len(q)] = q
        story = s.story[-max_sents:]
        for j, sent in enumerate(story):
            w = ids(sent)
            stories[k, max_sents - len(story) + j, : len(w)] = w
    answers = np.array([word2index[s.answer] for s in samples], dtype=np.int64)
    return QAData(questions, stories, answers)


class QAModel(fg.nn.Module):
    """The book's Embedding and RNNCell (or the LSTMCell) reading a story one sentence a step.

    A sentence is the sum of its word vectors, read together with the question's
    (``[sentence, question]``), so the cell can keep the place of the person asked about. A
    plain RNN needs two steps per sentence: one to work out whether the sentence is about that
    person, one to store the place if it is (``ticks=2``); an LSTM's gates do it in one.
    """

    def __init__(self, vocab_size: int, dim: int = 32, hidden: int = 64, cell: str = "rnn",
                 ticks: int | None = None, *, rng=None):
        gen = resolve_rng(rng)
        self.embed = Embedding(vocab_size, dim, rng=gen)
        if cell == "rnn":
            self.cell = RNNCell(2 * dim, hidden, vocab_size, activation="tanh", rng=gen)
        elif cell == "lstm":
            self.cell = LSTMCell(2 * dim, hidden, vocab_size, forget_bias=1.0, rng=gen)
        else:
            raise ValueError(f"QAModel: cell must be 'rnn' or 'lstm', got {cell!r}")
        self.ticks = ticks if ticks is not None else (2 if cell == "rnn" else 1)

    def forward(self, questions: np.ndarray, stories: np.ndarray) -> Tensor:
        # a sentence (or the question) is the sum of its word vectors: the table's rows
        # gathered and summed in one op, the Embedding's ``forward(ids).sum(1)`` fused
        q = fg.embedding_bag(self.embed.weight, questions)
        hidden = self.cell.init_hidden(batch_size=len(questions))
        output = None
        for t in range(stories.shape[1]):
            x = fg.concatenate([fg.embedding_bag(self.embed.weight, stories[:, t, :]), q], axis=1)
            for _ in range(self.ticks):
                output, hidden = self.cell.forward(input=x, hidden=hidden)
        return output


def accuracy(model: QAModel, data: QAData, batch_size: int = 500) -> float:
    correct = 0
    with fg.no_grad():
        for i in range(0, len(data.answers), batch_size):
            logits = model(data.questions[i:i + batch_size], data.stories[i:i + batch_size]).data
            correct += int((logits.argmax(1) == data.answers[i:i + batch_size]).sum())
    return correct / max(len(data.answers), 1)


def train_qa(train: list[Sample], test: list[Sample], epochs: int = 12, batch_size: int = 32,
             lr: float = 0.005, cell: str = "rnn", seed: int = 0, log: bool = True,
             jit: bool = False) -> dict:
    """Train :class:`QAModel` with Adam and gradient clipping; returns losses and accuracies."""
    vocab = build_vocab(train, test)
    w2i = {w: i for i, w in enumerate(vocab)}
    tr, te = encode(train, w2i), encode(test, w2i)
    rng = np.random.default_rng(seed)
    model = QAModel(len(vocab), cell=cell, rng=rng)
    criterion = CrossEntropyLoss()
    optim = fg.optim.Adam(model.parameters(), lr=lr)
    losses = []

    def step(questions, stories, answers):  # ``jit``: fg.jit after 20 eager steps
        loss = criterion(model(questions, stories), answers)
        loss.backward()
        fg.optim.clip_grad_norm(model.parameters(), 5.0)
        optim.step()
        return loss

    run = JitSteps(step, jit)
    for epoch in range(epochs):
        order = rng.permutation(len(tr.answers))
        epoch_loss = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = run(tr.questions[idx], tr.stories[idx], tr.answers[idx])
            epoch_loss += float(loss.data) * len(idx)
        losses.append(epoch_loss / len(order))
        if log:
            print(f"epoch {epoch + 1:2d}  loss {losses[-1]:.4f}  "
                  f"test accuracy {accuracy(model, te):.3f}")
    if log:
        run.report()
    result = {"losses": losses, "train_accuracy": accuracy(model, tr),
              "test_accuracy": accuracy(model, te), "vocab": vocab, "model": model}
    return result


# --------------------------------------------------------------------------- main


def main(train_path: str | None = None, test_path: str | None = None, n_train: int = 1000,
         n_test: int = 200, book_iterations: int = 1000, epochs: int = 12, cell: str = "rnn",
         seed: int = 0, plot: bool = True, jit: bool = False, out_dir: str = ".") -> dict:
    """Both experiments; returns their numbers. With no paths, generated stories are used
    (``n_train`` and ``n_test`` stories of five questions each; the real "1k" file has 200)."""
    fg.manual_seed(seed)
    if train_path is None:
        with tempfile.TemporaryDirectory(prefix="babi_") as folder:
            train_path = write_task1(os.path.join(folder, "qa1_train.txt"), n_train, seed)
            test_path = write_task1(os.path.join(folder, "qa1_test.txt"), n_test, seed + 1)
            print(f"generated bAbI task 1 files: {n_train} + {n_test} stories "
                  f"(write_task1(path, n) keeps a copy)")
            raw, train = load_babi(train_path)
            test = load_babi(test_path)[1]
    else:
        raw, train = load_babi(train_path)
        test = load_babi(test_path)[1] if test_path else None
    if test is None:  # hold out the last fifth of the training questions
        cut = len(train) - len(train) // 5
        train, test = train[:cut], train[cut:]
    print(f"{len(train)} training and {len(test)} test questions\n")

    print("== the chapter's listing: predict the 6th token of each line ==")
    t0 = time.perf_counter()
    book = book_listing(raw, iterations=book_iterations, jit=jit)
    print(f"({time.perf_counter() - t0:.1f} s)\n")

    print(f"== question answering ({cell}): read the story with the question ==")
    t0 = time.perf_counter()
    qa = train_qa(train, test, epochs=epochs, cell=cell, seed=seed, jit=jit)
    baseline = sum(s.story[-1][-1] == s.answer for s in test if s.story) / max(len(test), 1)
    print(f"train accuracy {qa['train_accuracy']:.3f}, test accuracy {qa['test_accuracy']:.3f} "
          f"({time.perf_counter() - t0:.1f} s); answering with the last place mentioned "
          f"scores {baseline:.3f}, guessing {1 / len(PLACES):.3f}")
    if plot:
        save_plot(os.path.join(out_dir, "babi_rnn_listing_loss.png"), {"": book["losses"]},
                  title="bAbI, the chapter's listing: RNN predicting each line's 6th token",
                  xlabel=f"iteration (one SGD step on the first {book['batch_size']} lines)",
                  ylabel="cross-entropy (nats)")
        save_plot(os.path.join(out_dir, "babi_rnn_qa_loss.png"), {"": qa["losses"]},
                  title=f"bAbI task 1, question answering ({cell}): training loss",
                  xlabel="epoch", ylabel="mean cross-entropy over the epoch (nats)")
    qa["baseline"] = baseline
    return {"book": book, "qa": qa}


if __name__ == "__main__":
    parser = _cli.parser(__doc__)
    parser.add_argument("--train", metavar="FILE",
                        help="a bAbI qa1 training file; without one, stories are generated in "
                             "its format")
    parser.add_argument("--test", metavar="FILE",
                        help="the matching test file; without one (and with --train), the "
                             "last fifth of the training questions")
    parser.add_argument("--epochs", type=int, default=12,
                        help="epochs of question answering (one line of progress each)")
    parser.add_argument("--cell", choices=("rnn", "lstm"), default="rnn",
                        help="the recurrent cell that reads the story")
    parser.add_argument("--iterations", type=int, default=1000,
                        help="SGD steps of the book's listing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    parser.add_argument("--jit", action="store_true",
                        help="train with fg.jit after 20 eager steps; print the speed-up")
    _cli.add_out_dir(parser, "loss plots babi_rnn_listing_loss.png and babi_rnn_qa_loss.png")
    args = parser.parse_args()
    main(args.train, args.test, epochs=args.epochs, book_iterations=args.iterations,
         cell=args.cell, seed=args.seed, jit=args.jit, out_dir=args.out_dir)
