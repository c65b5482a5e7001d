"""DP-SGD with ``fg.vmap``: per-example gradients, per-example clipping, Gaussian noise.

Differentially private SGD (Abadi et al., 2016) bounds what one training example can do to the
model: each example's gradient is clipped to norm at most ``C`` before the batch is summed,
and Gaussian noise of standard deviation ``sigma * C`` is added to the sum. That needs one
gradient per example, which is what ``fg.vmap(fg.grad(loss), in_axes=(None, 0, 0))`` computes
in one pass (matrix products over the whole batch), instead of a Python loop of ``fg.grad``
calls.

The data is a synthetic 4-class problem (Gaussian clusters in 20 dimensions, some labels
flipped), the model a small MLP. Each epoch prints the loss and accuracy and what clipping
did: how many examples had a gradient longer than ``C`` (and were scaled down), the median
and largest norm before clipping, and the largest after (never above ``C``). The privacy
parameters (noise multiplier ``sigma``, clipping norm ``C``, sampling rate and number of
steps) are what an accountant (for instance the RDP accountant of Opacus or TensorFlow
Privacy) turns into an (epsilon, delta) guarantee; this example does not compute one.

Run ``python examples/per_example_dp_sgd.py`` (a few seconds); ``--sigma 0 --clip inf`` is
plain SGD for comparison; ``main(...)`` takes short settings and returns the statistics.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# small matrices: BLAS worker threads cost more than they save (see examples/blas_threads.py)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

try:
    import fungrad as fg
except ImportError:  # running from a source checkout without installing fungrad
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import fungrad as fg


def make_data(n: int, dim: int, classes: int, flip: float, rng: np.random.Generator):
    """``n`` points around one Gaussian center per class; a fraction ``flip`` of the labels
    replaced by random ones (outliers whose gradients clipping must bound)."""
    centers = rng.standard_normal((classes, dim)) * 0.5
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.standard_normal((n, dim))
    flipped = rng.random(n) < flip
    y = np.where(flipped, rng.integers(0, classes, n), y)
    return x.astype(np.float32), y


def init_params(sizes: list[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"w{i}"] = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(
            np.float32)
        params[f"b{i}"] = np.zeros(n_out, np.float32)
    return params


def logits(params: dict, x):
    n_layers = len(params) // 2
    h = x
    for i in range(n_layers):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n_layers - 1:
            h = fg.relu(h)
    return h


def loss(params: dict, x, y):
    """Cross-entropy of one example (or the mean over a batch)."""
    return fg.cross_entropy(logits(params, x), y)


# one gradient per example: params shared (None), examples and labels mapped over axis 0
per_example_grads = fg.vmap(fg.grad(loss), in_axes=(None, 0, 0))


def clip_and_noise(grads: dict, clip: float, sigma: float, rng: np.random.Generator):
    """DP-SGD's gradient: each example's gradient scaled to norm at most ``clip``, summed,
    plus N(0, (sigma * clip)^2) noise per coordinate, divided by the batch size. Returns the
    gradient and the per-example norms before and after clipping."""
    batch = next(iter(grads.values())).shape[0]
    norms = np.sqrt(sum(np.sum(g.reshape(batch, -1).astype(np.float64) ** 2, axis=1)
                        for g in grads.values()))
    scale = np.minimum(1.0, clip / np.maximum(norms, 1e-12)) if np.isfinite(clip) else \
        np.ones(batch)
    noisy = {}
    for k, g in grads.items():
        summed = np.tensordot(scale.astype(g.dtype), g, axes=1)
        noise = rng.standard_normal(summed.shape) * sigma * clip if sigma > 0 else 0.0
        noisy[k] = ((summed + noise) / batch).astype(g.dtype)
    return noisy, norms, norms * scale


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def accuracy(params: dict, x, y) -> float:
    return float(np.mean(np.argmax(np.asarray(logits(params, x)), axis=1) == y))


def main(epochs: int = 8, batch_size: int = 64, lr: float = 0.5, clip: float = 1.0,
         sigma: float = 1.0, n_train: int = 4096, hidden: int = 64, seed: int = 0,
         compare_loop: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    dim, classes = 20, 4
    x, y = make_data(n_train + 1024, dim, classes, flip=0.05, rng=rng)
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    params = init_params([dim, hidden, classes], rng)
    steps_per_epoch = n_train // batch_size
    noise = f"noise std {sigma * clip:g} on the summed gradient" if sigma > 0 else "no noise"
    print(f"DP-SGD: {n_train} examples, batches of {batch_size} (sampling rate "
          f"{batch_size / n_train:.4f}), clipping norm C = {clip}, noise multiplier sigma = "
          f"{sigma} ({noise}), {epochs} epochs = {epochs * steps_per_epoch} steps")

    if compare_loop:  # the same per-example gradients, batched and one by one
        xb, yb = x_train[:batch_size], y_train[:batch_size]
        one = fg.grad(loss)
        batched = per_example_grads(params, xb, yb)
        looped = [one(params, xb[i], yb[i]) for i in range(batch_size)]
        assert all(np.allclose(batched[k][i], looped[i][k], rtol=1e-4, atol=1e-6)
                   for k in params for i in range(batch_size))
        t_vmap = _best(lambda: per_example_grads(params, xb, yb))
        t_loop = _best(lambda: [one(params, xb[i], yb[i]) for i in range(batch_size)])
        print(f"per-example gradients of one batch (best of 3): fg.vmap {t_vmap * 1e3:.1f} ms, "
              f"a loop of {batch_size} fg.grad calls {t_loop * 1e3:.1f} ms (the same numbers)")

    history = []
    print(f"{'epoch':>5} {'loss':>7} {'train acc':>9} {'test acc':>8} {'clipped':>8} "
          f"{'median |g|':>10} {'max |g|':>8} {'max clipped':>11}")
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n_train)
        n_clipped, norms_seen, max_after = 0, [], 0.0
        for s in range(steps_per_epoch):
            idx = order[s * batch_size:(s + 1) * batch_size]
            grads = per_example_grads(params, x_train[idx], y_train[idx])
            noisy, before, after = clip_and_noise(grads, clip, sigma, rng)
            for k in params:
                params[k] = params[k] - lr * noisy[k]
            n_clipped += int(np.sum(before > clip))
            norms_seen.append(before)
            max_after = max(max_after, float(after.max()))
        norms = np.concatenate(norms_seen)
        stats = {
            "epoch": epoch,
            "loss": float(loss(params, x_train, y_train)),
            "train_accuracy": accuracy(params, x_train, y_train),
            "test_accuracy": accuracy(params, x_test, y_test),
            "clipped_fraction": n_clipped / norms.size,
            "median_norm": float(np.median(norms)),
            "max_norm": float(norms.max()),
            "max_clipped_norm": max_after,
        }
        history.append(stats)
        print(f"{epoch:>5} {stats['loss']:>7.4f} {stats['train_accuracy']:>9.3f} "
              f"{stats['test_accuracy']:>8.3f} {stats['clipped_fraction']:>7.1%} "
              f"{stats['median_norm']:>10.3f} {stats['max_norm']:>8.3f} "
              f"{stats['max_clipped_norm']:>11.3f}")
    return {"history": history, "steps": epochs * steps_per_epoch,
            "sampling_rate": batch_size / n_train, "params": params}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="DP-SGD on a small MLP with fg.vmap: per-example gradients, per-example "
                    "clipping to norm C, Gaussian noise of std sigma * C; prints what clipping "
                    "did each epoch.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # each option's default shown
    p.add_argument("--epochs", type=int, default=8, help="passes over the data")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step")
    p.add_argument("--lr", type=float, default=0.5, help="SGD learning rate")
    p.add_argument("--clip", type=float, default=1.0,
                   help="per-example gradient norm bound C; 'inf' turns clipping off")
    p.add_argument("--sigma", type=float, default=1.0,
                   help="noise multiplier: noise std is sigma * C on the summed gradient; 0 "
                        "turns noise off")
    p.add_argument("--n-train", type=int, default=4096,
                   help="training examples (1024 more are held out)")
    p.add_argument("--hidden", type=int, default=64, help="hidden units")
    p.add_argument("--seed", type=int, default=0, help="seed of data, weights, noise")
    p.add_argument("--no-compare-loop", action="store_true",
                   help="skip timing fg.vmap against a loop of fg.grad calls on one batch")
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse_args()
    main(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, clip=a.clip, sigma=a.sigma,
         n_train=a.n_train, hidden=a.hidden, seed=a.seed, compare_loop=not a.no_compare_loop)
