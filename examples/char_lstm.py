"""A character-level LSTM language model on text every Python install has offline.

The text is the standard library's ``pydoc_data.topics`` (the help pages of the language
reference, about 460k characters). The model is the book's ``Embedding`` feeding the
``LSTMCell`` of its next chapter, trained with truncated backpropagation through time
(``seq_len`` characters per backward pass, the state carried across chunks), gradient-norm
clipping and Adam. A model that knew only how often each character occurs would score the
text's unigram entropy; the LSTM must get well below it. Samples are printed as it learns.

Run ``python examples/char_lstm.py`` (800 steps, about a minute on two cores; ``--steps``
and ``--time-budget SECONDS`` change that); ``main(...)`` takes short settings.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import Counter

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
from fungrad.nn import CrossEntropyLoss, Embedding, LSTMCell, Module, detach_hidden


def load_text(max_chars: int | None = None) -> str:
    """The help topics of ``pydoc_data`` joined in a fixed order."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics))
    return text[:max_chars] if max_chars else text


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy in nats of the character frequencies: the loss of the best context-free model."""
    p = np.bincount(ids, minlength=vocab_size) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


class CharLSTM(Module):
    """Embedding -> LSTMCell, one character per step; the cell's output layer gives logits."""

    def __init__(self, vocab_size: int, dim: int = 32, hidden: int = 128, *, rng=None):
        gen = fg.random.resolve_rng(rng)
        self.embed = Embedding(vocab_size, dim, rng=gen)
        self.cell = LSTMCell(dim, hidden, vocab_size, forget_bias=1.0, rng=gen)

    def forward(self, ids: np.ndarray, hidden):
        """``ids`` (batch, time) -> list of logits per step, and the last state."""
        outputs = []
        for t in range(ids.shape[1]):
            output, hidden = self.cell.forward(self.embed.forward(ids[:, t]), hidden)
            outputs.append(output)
        return outputs, hidden


def _streams(ids: np.ndarray, batch: int) -> np.ndarray:
    """Cut the text into ``batch`` contiguous streams read side by side: (batch, length)."""
    length = len(ids) // batch
    return ids[: batch * length].reshape(batch, length)


def evaluate(model: CharLSTM, ids: np.ndarray, batch: int = 16, seq_len: int = 50) -> float:
    """Mean cross-entropy (nats per character) on ``ids``, the state carried through."""
    streams = _streams(ids, batch)
    criterion = CrossEntropyLoss(reduction="sum")
    total, count = 0.0, 0
    hidden = model.cell.init_hidden(batch)
    with fg.no_grad():
        for s in range(0, streams.shape[1] - 1, seq_len):
            x = streams[:, s: s + seq_len]
            y = streams[:, s + 1: s + seq_len + 1]
            x = x[:, : y.shape[1]]
            outputs, hidden = model(x, hidden)
            for t, out in enumerate(outputs):
                total += float(criterion(out, y[:, t]).data)
                count += y.shape[0]
    return total / max(count, 1)


def sample(model: CharLSTM, chars: list[str], prime: str, length: int = 200,
           temperature: float = 0.7, rng: np.random.Generator | None = None) -> str:
    """Continue ``prime`` by drawing characters from the model's softmax."""
    rng = rng or np.random.default_rng(0)
    index = {c: i for i, c in enumerate(chars)}
    hidden = model.cell.init_hidden(1)
    out_text = list(prime)
    with fg.no_grad():
        output = None
        for c in prime:
            output, hidden = model.cell(model.embed(np.array([index.get(c, 0)])), hidden)
        for _ in range(length):
            logits = output.data[0] / temperature
            p = np.exp(logits - logits.max())
            p /= p.sum()
            i = int(rng.choice(len(p), p=p))
            out_text.append(chars[i])
            output, hidden = model.cell(model.embed(np.array([i])), hidden)
    return "".join(out_text)


def main(steps: int = 800, seq_len: int = 32, batch: int = 32, hidden: int = 128,
         lr: float = 5e-3, clip: float = 5.0, max_chars: int | None = None,
         time_budget: float | None = None, log_every: int = 100, seed: int = 0,
         plot: bool = True, jit: bool = False, out_dir: str = ".") -> dict:
    """Train for ``steps`` chunks; returns the numbers.

    The result depends only on the arguments. ``time_budget`` (seconds) stops training early
    when it runs out, which makes the result depend on the machine's speed and load.
    """
    text = load_text(max_chars)
    chars = sorted(Counter(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text], dtype=np.int64)
    split = int(len(ids) * 0.95)
    train_ids, valid_ids = ids[:split], ids[split:]
    entropy = unigram_entropy(train_ids, len(chars))
    print(f"{len(text)} characters, {len(chars)} distinct; unigram entropy "
          f"{entropy:.3f} nats ({entropy / math.log(2):.3f} bits) per character")

    rng = np.random.default_rng(seed)
    model = CharLSTM(len(chars), hidden=hidden, rng=rng)
    optim = fg.optim.Adam(model.parameters(), lr=lr)
    criterion = CrossEntropyLoss()
    streams = _streams(train_ids, batch)
    state = model.cell.init_hidden(batch)
    pos, losses, running = 0, [], None
    t0 = time.perf_counter()

    def train_step(x, y, state):  # ``jit``: compiled by fg.jit after 20 eager steps
        outputs, state = model(x, state)
        loss = criterion(outputs[0], y[:, 0])
        for t in range(1, seq_len):
            loss = loss + criterion(outputs[t], y[:, t])
        loss = loss / seq_len
        loss.backward()
        fg.optim.clip_grad_norm(model.parameters(), clip)
        optim.step()
        return loss, state

    run = JitSteps(train_step, jit)
    step = 0
    for step in range(1, steps + 1):
        if pos + seq_len + 1 > streams.shape[1]:
            pos, state = 0, model.cell.init_hidden(batch)
        x = streams[:, pos: pos + seq_len]
        y = streams[:, pos + 1: pos + seq_len + 1]
        pos += seq_len
        state = detach_hidden(state)  # truncated BPTT: no gradient into the previous chunk
        loss, state = run(x, y, state)
        value = float(loss.data)
        losses.append(value)
        running = value if running is None else 0.95 * running + 0.05 * value
        elapsed = time.perf_counter() - t0
        if log_every and (step == 1 or step % log_every == 0):
            print(f"step {step:5d}  loss {running:.3f} nats ({running / math.log(2):.2f} bits)"
                  f"  {elapsed:5.1f} s")
        if log_every and step % (log_every * 5) == 0:
            print("   sample:", repr(sample(model, chars, "The ", 80, rng=rng)))
        if time_budget is not None and elapsed > time_budget:
            print(f"time budget of {time_budget:.0f} s reached after {step} steps")
            break
    train_time = time.perf_counter() - t0
    run.report()
    valid = evaluate(model, valid_ids[:20000], seq_len=seq_len)
    print(f"\nvalidation loss {valid:.3f} nats/char ({valid / math.log(2):.2f} bits) vs unigram "
          f"entropy {entropy:.3f} nats ({entropy / math.log(2):.2f} bits); "
          f"{step} steps of {batch}x{seq_len} characters in {train_time:.1f} s")
    text_sample = sample(model, chars, "The ", 300, rng=rng)
    print("\nsample (temperature 0.7):\n" + text_sample)
    if plot:
        save_plot(os.path.join(out_dir, "char_lstm_loss.png"),
                  {"training loss (one chunk)": losses},
                  title="Character LSTM on Python's help topics",
                  xlabel=f"step (a chunk of {batch} x {seq_len} characters)",
                  ylabel="cross-entropy (nats per character)",
                  hlines={"unigram entropy": entropy})
    return {"losses": losses, "valid_loss": valid, "unigram_entropy": entropy,
            "steps": step, "seconds": train_time, "sample": text_sample}


if __name__ == "__main__":
    parser = _cli.parser(__doc__)
    parser.add_argument("--steps", type=int, default=800,
                        help="training steps (progress every 100)")
    parser.add_argument("--seq-len", type=int, default=32,
                        help="characters per chunk (truncated BPTT length)")
    parser.add_argument("--batch", type=int, default=32, help="chunks per step")
    parser.add_argument("--hidden", type=int, default=128, help="the LSTM's hidden size")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="stop early after this long (results then depend on the machine)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and sampling")
    parser.add_argument("--jit", action="store_true",
                        help="train with fg.jit after 20 eager steps; print the speed-up")
    _cli.add_out_dir(parser, "loss plot char_lstm_loss.png")
    args = parser.parse_args()
    main(steps=args.steps, seq_len=args.seq_len, batch=args.batch, hidden=args.hidden,
         time_budget=args.time_budget, seed=args.seed, jit=args.jit, out_dir=args.out_dir)
