"""The matrix products of the benchmark tasks, NumPy's BLAS against PyTorch's, one thread.

    python benchmarks/gemm_peers.py [--rounds 15]

fungrad's eager ops call ``np.matmul`` (NumPy's bundled OpenBLAS); PyTorch calls its own
BLAS (MKL or oneDNN on x86 wheels). Where a task's step is mostly matrix products (lstm_char,
mlp), this sets a floor under fungrad's ratio to PyTorch that no engine work removes. Shapes
are those of one training step: ``(m, k) @ (k, n)``, float32, with ``out=`` as the ops use
it; the two libraries are timed in alternating batches and the medians reported.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

# (task, what, m, k, n, calls per step)
SHAPES = [
    ("lstm_char", "h @ W_hh per time step (forward)", 32, 128, 512, 25),
    ("lstm_char", "d gates @ W_hh.T per time step (backward)", 32, 512, 128, 25),
    ("lstm_char", "h_prev.T @ d gates over all steps (dW_hh)", 128, 800, 512, 1),
    ("lstm_char", "x @ W_ih over all steps (input projection)", 800, 32, 512, 1),
    ("lstm_char", "x.T @ d gates (dW_ih)", 32, 800, 512, 1),
    ("lstm_char", "d gates @ W_ih.T (d x)", 800, 512, 32, 1),
    ("lstm_char", "h @ W_o (output layer)", 800, 128, 65, 1),
    ("lstm_char", "d logits @ W_o.T", 800, 65, 128, 1),
    ("lstm_char", "h.T @ d logits (dW_o)", 128, 800, 65, 1),
    ("mlp", "x @ W1", 128, 784, 256, 1),
    ("mlp", "x.T @ d hidden (dW1)", 784, 128, 256, 1),
    ("mlp", "h @ W2, d logits @ W2.T, h.T @ d logits", 128, 256, 10, 3),
]


def _time(fn, batch: int) -> float:
    t0 = time.perf_counter()
    for _ in range(batch):
        fn()
    return (time.perf_counter() - t0) / batch * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"NumPy {np.__version__}, torch {torch.__version__}, 1 thread, float32; "
          f"median µs per call over {args.rounds} alternating batches\n")
    print("| task | product | m×k @ k×n | calls/step | NumPy µs | PyTorch µs | NumPy / PyTorch |")
    print("|---|---|---|---:|---:|---:|---:|")
    total = {}
    for task, what, m, k, n, calls in SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        out = np.empty((m, n), np.float32)
        ta, tb, to = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        batch = max(3, int(2e5 / (m * k * n / 1e3 + 50)))
        np_us, torch_us = [], []
        for _ in range(args.rounds):
            np_us.append(_time(functools.partial(np.matmul, a, b, out=out), batch))
            torch_us.append(_time(functools.partial(torch.mm, ta, tb, out=to), batch))
        t_np, t_torch = float(np.median(np_us)), float(np.median(torch_us))
        total.setdefault(task, [0.0, 0.0])
        total[task][0] += calls * t_np
        total[task][1] += calls * t_torch
        print(f"| {task} | {what} | {m}×{k} @ {k}×{n} | {calls} | {t_np:.1f} | {t_torch:.1f} "
              f"| {t_np / t_torch:.2f} |")
    print()
    for task, (t_np, t_torch) in total.items():
        print(f"{task}: products per step {t_np / 1e3:.2f} ms with NumPy, "
              f"{t_torch / 1e3:.2f} ms with PyTorch ({t_np / t_torch:.2f}x)")


if __name__ == "__main__":
    main()
