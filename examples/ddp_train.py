"""Data-parallel training on MPI: the chapter's network, trained by several processes at once.

The model is the chapter's ``Sequential([Linear, Tanh, Linear, Sigmoid])`` with ``MSELoss`` and
``SGD``, widened until a step is dominated by its matrix products (a compute-bound setting),
on a synthetic task: inputs drawn at random, targets the one-hot class a fixed random "teacher"
network gives them. Every rank holds a copy of the model and takes its share of each global
batch (``dist.shard``); ``DistributedOptimizer`` averages the gradients over the ranks in a few
flat buckets before every update, so all copies stay identical and follow the same path as one
process training on the whole batch.

Run::

    mpiexec -n 2 python examples/ddp_train.py    # 2 processes: trains, then measures 1 vs 2
    python examples/ddp_train.py                  # the same script in one process

It first trains for a few epochs (rank 0 prints the progress once, for all ranks), then
measures throughput: in alternating rounds, rank 0 trains alone on the whole batch while the
other ranks sleep, then all ranks train together, from the same starting weights for the same
steps. It prints the median (and best) samples/s of each, their ratio, where each step's time
goes, the largest relative difference between the final parameters of the two, and the bytes
each rank sends per step.
On a machine shared with other work the best rounds show what the hardware allows and the
medians what the run got.

BLAS runs one thread per process (threadpoolctl when installed, else the environment
variables set below before NumPy loads), so that 2 processes on 2 cores do not fight over
them. ``--quick`` runs a tiny configuration (for the tests).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import NamedTuple

# One BLAS thread per process; must be set before NumPy loads its BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

try:
    import fungrad as fg
except ImportError:  # running from a source checkout without installing fungrad
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import fungrad as fg
import fungrad.distributed as dist  # noqa: E402
from fungrad.nn import Linear, MSELoss, Sequential, Sigmoid, Tanh  # noqa: E402
from fungrad.optim import SGD  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the _cli helper
import _cli  # noqa: E402


def limit_blas_threads() -> str:
    """Hold BLAS to one thread; say how."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        return "BLAS: 1 thread per process (OPENBLAS/MKL/OMP_NUM_THREADS=1)"
    threadpool_limits(1)
    return "BLAS: 1 thread per process (threadpoolctl)"


def make_data(n: int, n_in: int, n_out: int, seed: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs; targets: the one-hot argmax of a random teacher network."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in))
    teacher = np.tanh(x @ rng.standard_normal((n_in, 64))) @ rng.standard_normal((64, n_out))
    y = np.eye(n_out)[teacher.argmax(1)]
    return x.astype(dtype), y.astype(dtype)


def make_model(n_in: int, hidden: int, n_out: int, seed: int, dtype) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential([Linear(n_in, hidden, rng=rng, dtype=dtype), Tanh(),
                       Linear(hidden, n_out, rng=rng, dtype=dtype), Sigmoid()])


PHASES = ("forward+backward", "allreduce (with waiting)", "update")


def train(model, opt, x, y, steps: int, batch: int, rank: int, size: int, seed: int,
          log_every: int = 0, phases: dict | None = None) -> None:
    """``steps`` SGD steps on global batches of ``batch``; this rank takes ``batch // size``.

    ``phases``, if given, collects the seconds of each step's three parts (the gradient
    allreduce is ``opt.synchronize()``, which ``opt.step()`` would otherwise run itself).
    """
    loss_fn = MSELoss(reduction="mean")  # a mean: averaged over ranks, the global batch's mean
    local = batch // size
    per_epoch = len(x) // batch
    synchronize = getattr(opt, "synchronize", lambda: None)
    mine = None
    for step in range(steps):
        epoch, k = divmod(step, per_epoch)
        if k == 0:
            mine = dist.shard(len(x), seed, epoch, rank=rank, size=size)
        idx = mine[k * local:(k + 1) * local]
        t0 = time.perf_counter()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        t1 = time.perf_counter()
        synchronize()
        t2 = time.perf_counter()
        opt.step()
        if phases is not None:
            for name, seconds in zip(PHASES, (t1 - t0, t2 - t1, time.perf_counter() - t2)):
                phases.setdefault(name, []).append(seconds)
        if log_every and (step + 1) % log_every == 0:
            report(model, x, y, loss, epoch, rank, size)


def report(model, x, y, loss, epoch: int, rank: int, size: int) -> None:
    """Rank 0 prints the loss and accuracy averaged over all ranks (one line for the job)."""
    with fg.no_grad():
        share = dist.shard(len(x), 0, 0, rank=rank, size=size)[:512]
        hits = float((model(x[share]).data.argmax(1) == y[share].argmax(1)).mean())
    mean_loss = dist.allreduce(float(loss.data), op="mean")
    accuracy = dist.allreduce(hits, op="mean")
    if rank == 0:
        print(f"epoch {epoch + 1}: loss {mean_loss:.5f}  accuracy {accuracy:.3f}", flush=True)


class Run(NamedTuple):
    """One measured run: samples/s, per-step phase times (ms, busiest rank), results."""

    rate: float
    phase_ms: dict
    params: dict
    stats: object


def timed_run(cfg, x, y, together: bool) -> Run | None:
    """One measured run from the seed's weights: all ranks together, or rank 0 alone."""
    rank, size = dist.rank(), dist.size()
    dist.barrier()
    if not together and rank != 0:
        dist.barrier(poll=0.01)  # sleep (not spin) while rank 0 trains alone
        return None
    model = make_model(cfg.n_in, cfg.hidden, cfg.n_out, cfg.seed, cfg.dtype)
    opt = SGD(model.parameters(), alpha=cfg.alpha)
    if together:
        opt = dist.DistributedOptimizer(opt)
    phases: dict = {}
    t0 = time.perf_counter()
    train(model, opt, x, y, cfg.steps, cfg.batch, rank if together else 0,
          size if together else 1, cfg.seed, phases=phases)
    seconds = time.perf_counter() - t0
    phase_ms = {k: 1e3 * statistics.median(v) for k, v in phases.items()}
    if together:
        seconds = dist.allreduce(seconds, op="max")  # the slowest rank sets the pace
        phase_ms = {k: dist.allreduce(v, op="max") for k, v in phase_ms.items()}
    else:
        dist.barrier(poll=0.01)
    return Run(cfg.steps * cfg.batch / seconds, phase_ms, model.state_dict(),
               getattr(opt, "last_stats", None))


def measure(cfg, x, y) -> None:
    """Alternate rounds of rank 0 alone and all ranks together; rank 0 prints the medians."""
    alone, together = [], []
    for _ in range(cfg.rounds):
        one = timed_run(cfg, x, y, together=False)
        many = timed_run(cfg, x, y, together=True) if dist.size() > 1 else None
        if dist.rank() == 0:
            alone.append(one)
            if many is not None:
                together.append(many)
    if dist.rank() == 0:
        print_measurement(cfg, alone, together)


def print_measurement(cfg, alone: list, together: list) -> None:
    rate1 = [r.rate for r in alone]
    print(f"\nthroughput over {cfg.rounds} rounds of {cfg.steps} steps (global batch "
          f"{cfg.batch}), median (best):")
    print(f"  1 process    {statistics.median(rate1):10.1f} ({max(rate1):.1f}) samples/s")
    if together:
        rateN = [r.rate for r in together]
        print(f"  {dist.size()} processes  {statistics.median(rateN):10.1f} ({max(rateN):.1f}) "
              f"samples/s   speed-up {statistics.median(rateN) / statistics.median(rate1):.2f}x "
              f"({max(rateN) / max(rate1):.2f}x)")
    print("per step, median ms (busiest rank):")
    for label, runs in (("1 process", alone), (f"{dist.size()} processes", together)):
        if runs:
            parts = ", ".join(f"{k} {statistics.median(r.phase_ms[k] for r in runs):.2f}"
                              for k in PHASES)
            print(f"  {label:12s} {parts}")
    if not together:
        print("(run with mpiexec -n 2 to compare with 2 processes)")
        return
    worst = max(float(np.max(np.abs(many.params[k] - v)) / np.max(np.abs(v)))
                for one, many in zip(alone, together) for k, v in one.params.items())
    stats = together[-1].stats
    print(f"final parameters, {dist.size()} processes vs 1: max relative difference "
          f"{worst:.2e}")
    print(f"communication per step and rank: {stats.nbytes} bytes in "
          f"{len(stats.bucket_bytes)} bucket(s) of {list(stats.bucket_bytes)} bytes "
          f"({', '.join(stats.bucket_dtypes)}) + a {stats.header_bytes}-byte header; "
          f"{stats.calls} collective calls; gradients "
          + ("reduced in place in the optimizer's flat buffer" if stats.in_place
             else "packed into the buckets"))


def main(argv: list[str] | None = None) -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--n-in", type=int, default=256, help="input features")
    p.add_argument("--hidden", type=int, default=1024, help="hidden units")
    p.add_argument("--n-out", type=int, default=10, help="outputs")
    p.add_argument("--batch", type=int, default=1024, help="global batch (all ranks together)")
    p.add_argument("--samples", type=int, default=16384, help="training samples (synthetic)")
    p.add_argument("--epochs", type=int, default=3,
                   help="training epochs before measuring (progress once per epoch)")
    p.add_argument("--steps", type=int, default=20, help="steps per measured run")
    p.add_argument("--rounds", type=int, default=5, help="alternating measured rounds")
    p.add_argument("--alpha", type=float, default=4.0, help="SGD's learning rate")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="dtype of the data and the parameters")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    p.add_argument("--quick", action="store_true", help="a tiny configuration, for tests")
    cfg = p.parse_args(argv)
    if min(cfg.rounds, cfg.steps, cfg.batch) < 1:
        p.error("--rounds, --steps and --batch must be at least 1")
    if cfg.quick:
        cfg.n_in, cfg.hidden, cfg.batch, cfg.samples = 32, 64, 64, 512
        cfg.epochs, cfg.steps, cfg.rounds = 1, 10, 1
    dist.init()
    rank, size = dist.rank(), dist.size()
    if cfg.batch % size:
        raise SystemExit(f"--batch {cfg.batch} must be divisible by the {size} processes")
    cfg.dtype = np.dtype(cfg.dtype)
    blas = limit_blas_threads()
    x, y = make_data(cfg.samples, cfg.n_in, cfg.n_out, 1000 + cfg.seed, cfg.dtype)
    if rank == 0:
        print(f"{size} process(es) on {dist.backend()}; {blas}")
        print(f"model: Linear({cfg.n_in}, {cfg.hidden}) Tanh Linear({cfg.hidden}, {cfg.n_out}) "
              f"Sigmoid, MSELoss, SGD(alpha={cfg.alpha}), {cfg.dtype.name}; "
              f"global batch {cfg.batch} ({cfg.batch // size} per process)")
    model = make_model(cfg.n_in, cfg.hidden, cfg.n_out, cfg.seed + rank, cfg.dtype)
    dist.broadcast_parameters(model)  # every rank starts from rank 0's weights
    opt = dist.DistributedOptimizer(SGD(model.parameters(), alpha=cfg.alpha))
    per_epoch = cfg.samples // cfg.batch
    train(model, opt, x, y, cfg.epochs * per_epoch, cfg.batch, rank, size, cfg.seed,
          log_every=per_epoch)
    measure(cfg, x, y)


if __name__ == "__main__":
    main()
