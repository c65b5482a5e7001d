"""Data-parallel training gives one process's results: run with ``mpiexec -n 2`` (or 3, 4).

Every check trains (or communicates) on every rank; the reference is the same training as one
process on the whole batch, computed on each rank without any communication.
"""

from __future__ import annotations

import numpy as np
from _harness import assert_close, assert_same_on_all_ranks, check, dist, fg, main

N_ITEMS, GLOBAL_BATCH, EPOCHS, SEED = 48, 12, 2, 7
DATA = np.random.default_rng(0)
X = DATA.standard_normal((N_ITEMS, 6))
Y = np.tanh(X @ DATA.standard_normal((6, 3)))


def make_model(seed: int, dtype=np.float64) -> fg.nn.Sequential:
    return fg.nn.Sequential([fg.nn.Linear(6, 16, rng=seed, dtype=dtype), fg.nn.Tanh(),
                             fg.nn.Linear(16, 3, rng=seed + 1, dtype=dtype)])


OPTIMIZERS = {
    "sgd": lambda ps: fg.optim.SGD(ps, alpha=0.1),
    "momentum": lambda ps: fg.optim.SGD(ps, alpha=0.05, momentum=0.9),
    "adam": lambda ps: fg.optim.Adam(ps, lr=0.01),
    # gradients in arrays of their own (no flat buffer): every step packs them into buckets
    "adam_unflat": lambda ps: fg.optim.Adam(ps, lr=0.01, flat=False),
}


def batches(rank: int, size: int):
    """This rank's batches: each is its share of one global batch of GLOBAL_BATCH items."""
    local = GLOBAL_BATCH // size
    for epoch in range(EPOCHS):
        mine = dist.shard(N_ITEMS, SEED, epoch, rank=rank, size=size)
        for k in range(len(mine) // local):
            yield mine[k * local:(k + 1) * local]


def train_eager(kind: str, distributed: bool, dtype=np.float64, explicit: bool = False):
    rank, size = (dist.rank(), dist.size()) if distributed else (0, 1)
    model = make_model(100 + rank if distributed else 100, dtype)
    if distributed:
        dist.broadcast_parameters(model)  # every rank starts from rank 0's (seed 100) weights
    opt = OPTIMIZERS[kind](model.parameters())
    if distributed and not explicit:
        opt = dist.DistributedOptimizer(opt)
    loss_fn = fg.nn.MSELoss(reduction="mean")  # a mean: averaged over ranks, the global mean
    x, y = X.astype(dtype), Y.astype(dtype)
    for step, idx in enumerate(batches(rank, size)):
        loss_fn(model(x[idx]), y[idx]).backward()
        stats = None
        if distributed and explicit:
            stats = dist.allreduce_gradients(model)
            assert stats.calls >= 2, stats
        for p in model.parameters():
            assert p.grad.dtype == dtype, (p.grad.dtype, dtype)
        opt.step()
        stats = stats or getattr(opt, "last_stats", None)
        if stats is not None:
            # from the second step on, the optimizer's flat gradient buffer is reduced in place
            assert stats.in_place == (step > 0 and not kind.endswith("unflat")), (step, stats)
    return model.state_dict()


def _check_eager(kind: str, explicit: bool = False) -> str:
    want = train_eager(kind, distributed=False)
    got = train_eager(kind, distributed=True, explicit=explicit)
    worst = assert_close(got, want, 1e-12, f"eager {kind}")
    assert_same_on_all_ranks(got, f"eager {kind}")
    return f"max relative difference {worst:.1e}"


@check
def eager_sgd_matches_one_process():
    return _check_eager("sgd")


@check
def eager_momentum_matches_one_process():
    return _check_eager("momentum")


@check
def eager_adam_matches_one_process():
    return _check_eager("adam")


@check
def eager_adam_with_packed_gradients_matches_one_process():
    return _check_eager("adam_unflat")


@check
def eager_explicit_allreduce_gradients_matches_one_process():
    return _check_eager("momentum", explicit=True)


@check
def eager_float32_stays_float32_and_matches():
    want = train_eager("adam", distributed=False, dtype=np.float32)
    got = train_eager("adam", distributed=True, dtype=np.float32)
    worst = assert_close(got, want, 1e-5, "float32 adam")  # dtypes checked equal there
    assert_same_on_all_ranks(got, "float32 adam")
    return f"max relative difference {worst:.1e}"


def mlp(params, x):
    return fg.tanh(x @ params["w0"] + params["b0"]) @ params["w1"] + params["b1"]


def mse(params, x, y):
    return fg.mean((mlp(params, x) - y) ** 2)


def update(kind: str, params: dict, grads: dict, state: dict, t: int) -> dict:
    """The optimizers' rules written out in NumPy (PyTorch's forms, as fungrad.optim's)."""
    new = {}
    for k, p in params.items():
        g = grads[k]
        if kind == "sgd":
            new[k] = p - 0.1 * g
        elif kind == "momentum":
            v = state[k] = 0.9 * state[k] + g if k in state else g.copy()
            new[k] = p - 0.05 * v
        else:
            m, v = state.get(k, (np.zeros_like(p), np.zeros_like(p)))
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            state[k] = (m, v)
            step = 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
            new[k] = p - step
    return new


def train_functional(kind: str, distributed: bool):
    rank, size = (dist.rank(), dist.size()) if distributed else (0, 1)
    model = make_model(100 + rank if distributed else 100)
    params = {"w0": model.layers[0].weight.data, "b0": model.layers[0].bias.data,
              "w1": model.layers[2].weight.data, "b1": model.layers[2].bias.data}
    if distributed:
        params = dist.broadcast_parameters(params)
    value_and_grad = fg.value_and_grad(mse)
    state: dict = {}
    for t, idx in enumerate(batches(rank, size), start=1):
        value, grads = value_and_grad(params, X[idx], Y[idx])
        if distributed:
            grads = dist.pmean(grads)
            value = dist.allreduce(float(value), op="mean")
        params = update(kind, params, grads, state, t)
    return params


def _check_functional(kind: str) -> str:
    want = train_functional(kind, distributed=False)
    got = train_functional(kind, distributed=True)
    worst = assert_close(got, want, 1e-12, f"functional {kind}")
    assert_same_on_all_ranks(got, f"functional {kind}")
    return f"max relative difference {worst:.1e}"


@check
def functional_sgd_matches_one_process():
    return _check_functional("sgd")


@check
def functional_momentum_matches_one_process():
    return _check_functional("momentum")


@check
def functional_adam_matches_one_process():
    return _check_functional("adam")


if __name__ == "__main__":
    import checks_comm  # noqa: F401 - registers the communication checks

    main()
