"""Communication checks run inside ``mpiexec``: buckets, flat buffers, broadcasts, mismatches,
metrics, shards and checkpoints. Imported by ``check_training.py`` (one launch for all)."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from _harness import allgather, assert_same_on_all_ranks, check, dist, fg

from fungrad.errors import CheckpointError, DistributedError


def rank_size():
    return dist.rank(), dist.size()


def expect_error_everywhere(fn, *needles: str, error=DistributedError) -> str:
    """``fn()`` raises ``error`` on every rank, with every needle in the message; afterwards
    the ranks still communicate (no rank was left inside a collective)."""
    try:
        fn()
    except error as e:
        message = str(e)
    else:
        raise AssertionError(f"no {error.__name__} was raised")
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert dist.allreduce(1) == dist.size()  # still in step with the others
    return message


def params_with_grads(specs, rank):
    """Tensors with gradients ``(rank + 1) * (1 + arange)``, from (shape, dtype) specs."""
    params = []
    for shape, dtype in specs:
        p = fg.Tensor(np.zeros(shape, dtype), autograd=True)
        p.grad = fg.Tensor((rank + 1) * (1.0 + np.arange(int(np.prod(shape)))).reshape(shape),
                           dtype=dtype)
        params.append(p)
    return params


@check
def buckets_are_few_large_and_keep_dtypes():
    rank, size = rank_size()
    specs = [((100, 30), np.float64), ((7,), np.float32), ((0,), np.float64),
             ((50, 50), np.float32), ((3,), np.float64)]
    params = params_with_grads(specs, rank)
    stats = dist.allreduce_gradients(params, bucket_bytes=8192)
    mean_factor = (size + 1) / 2  # the average of rank + 1
    for p, (shape, dtype) in zip(params, specs):
        want = mean_factor * (1.0 + np.arange(int(np.prod(shape)))).reshape(shape)
        assert p.grad.dtype == dtype, (p.grad.dtype, dtype)
        np.testing.assert_allclose(p.grad.data, want.astype(dtype), rtol=1e-6)
    n64, n32 = 100 * 30 + 3, 7 + 2500
    want_buckets = [min(1024, n64 - a) * 8 for a in range(0, n64, 1024)]
    want_buckets += [min(2048, n32 - a) * 4 for a in range(0, n32, 2048)]
    assert list(stats.bucket_bytes) == want_buckets, stats
    assert stats.bucket_dtypes == ("float64",) * 3 + ("float32",) * 2, stats
    assert stats.calls == 6 and not stats.in_place, stats
    assert stats.nbytes == sum(want_buckets) + 8 * 6, stats


@check
def gradients_in_one_flat_buffer_are_reduced_in_place():
    rank, size = rank_size()
    specs = [((40, 3), np.float64), ((3,), np.float64), ((5, 5), np.float64)]
    packed = params_with_grads(specs, rank)
    viewed = params_with_grads(specs, rank)
    flat = np.concatenate([p.grad.data.ravel() for p in viewed])
    start = 0
    for p in viewed:
        p.grad.data = flat[start:start + p.size].reshape(p.shape)  # a view, not a copy
        start += p.size
    s1 = dist.allreduce_gradients(packed, bucket_bytes=512)
    s2 = dist.allreduce_gradients(viewed, bucket_bytes=512)
    assert s2.in_place and not s1.in_place, (s1, s2)
    assert s1.bucket_bytes == s2.bucket_bytes, (s1, s2)
    for a, b in zip(packed, viewed):
        assert np.shares_memory(b.grad.data, flat)
        assert np.array_equal(a.grad.data, b.grad.data)


@check
def a_gradient_missing_on_some_ranks_counts_as_zero():
    rank, size = rank_size()
    a, b, c = (fg.Tensor(np.zeros(4), autograd=True) for _ in range(3))
    a.grad = fg.Tensor(np.full(4, rank + 1.0))
    if rank == 0:
        b.grad = fg.Tensor(np.full(4, 6.0))
    stats = dist.allreduce_gradients([a, b, c])
    assert stats.header_calls == 2 and stats.calls == 3, stats
    np.testing.assert_array_equal(a.grad.data, np.full(4, (size + 1) / 2))
    np.testing.assert_array_equal(b.grad.data, np.full(4, 6.0 / size))
    assert c.grad is None


@check
def broadcast_parameters_module_and_pytree():
    rank, size = rank_size()
    model = fg.nn.Linear(4, 3, rng=rank)
    version = model.weight._version
    assert dist.broadcast_parameters(model) is model
    want = fg.nn.Linear(4, 3, rng=0).state_dict()
    for k, v in model.state_dict().items():
        assert np.array_equal(v, want[k]), k
    if rank != 0:
        assert model.weight._version > version  # a graph recorded before would refuse backward
    t = fg.Tensor(np.full(2, float(rank)), autograd=True)
    tree = {"w": np.full((2, 2), rank, np.float32), "n": 1.5 * rank, "t": t,
            "more": [np.arange(3) * rank]}
    out = dist.broadcast_parameters(tree)
    assert out["w"].dtype == np.float32 and np.array_equal(out["w"], np.zeros((2, 2)))
    assert out["n"] == 0.0 and isinstance(out["n"], float)
    assert out["t"] is t and np.array_equal(t.data, [0.0, 0.0])
    assert np.array_equal(out["more"][0], [0, 0, 0])
    if rank == 0:
        assert out is tree
    other = dist.broadcast_parameters({"w": np.full(3, float(rank))}, root=size - 1)
    assert np.array_equal(other["w"], np.full(3, float(size - 1)))


@check
def different_shapes_raise_on_every_rank_naming_the_parameter():
    rank, size = rank_size()
    last = rank == size - 1
    model = fg.nn.Sequential([fg.nn.Linear(4, 5 if last else 3, rng=0)])
    before = model.state_dict()
    message = expect_error_everywhere(lambda: dist.broadcast_parameters(model),
                                      "layers.0.weight", "(4, 3)", "(4, 5)", f"rank {size - 1}")
    assert "broadcast_parameters" in message
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k])  # nothing was changed
    x = np.ones((2, 4))
    fg.sum(model(x)).backward()
    expect_error_everywhere(lambda: dist.allreduce_gradients(model), "layers.0.weight")


@check
def different_dtypes_and_names_raise_on_every_rank():
    rank, size = rank_size()
    last = rank == size - 1
    dtype = np.float32 if last else np.float64
    params = params_with_grads([((3, 2), np.float64), ((4,), dtype)], rank)
    expect_error_everywhere(lambda: dist.allreduce_gradients(params), "parameters[1]",
                            "float32", "float64")
    tree = {"a": np.ones(2), ("c" if last else "b"): np.ones(2)}
    expect_error_everywhere(lambda: dist.pmean(tree), "'b'", "'c'")
    expect_error_everywhere(lambda: dist.allreduce(np.ones(3 if last else 2)), "allreduce")
    expect_error_everywhere(lambda: dist.allreduce(1.0, op="max" if last else "sum"),
                            "different settings")


@check
def a_different_model_fails_the_distributed_optimizer_step():
    rank, size = rank_size()
    layers = [fg.nn.Linear(3, 3, rng=0)]
    if rank == size - 1:
        layers.append(fg.nn.Linear(3, 3, rng=1))
    model = fg.nn.Sequential(layers)
    opt = dist.DistributedOptimizer(fg.optim.SGD(model.parameters(), alpha=0.1))
    fg.sum(model(np.ones((2, 3)))).backward()
    before = model.state_dict()
    expect_error_everywhere(opt.step, "parameters[2]", "nothing")
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k])


@check
def a_bad_gradient_on_one_rank_is_reported_on_all():
    rank, size = rank_size()
    p = fg.Tensor(np.zeros(3), autograd=True)
    p.grad = fg.Tensor(np.zeros(4 if rank == size - 1 else 3))
    expect_error_everywhere(lambda: dist.allreduce_gradients([p]), f"rank {size - 1}",
                            "shape (4,)")


@check
def pmean_and_allreduce_for_metrics():
    rank, size = rank_size()
    tree = {"a": np.full(3, rank, np.float32), "b": [np.float64(rank) * np.ones((2, 2))]}
    out = dist.pmean(tree)
    mean = (size - 1) / 2
    assert out["a"].dtype == np.float32 and np.allclose(out["a"], mean)
    assert out["b"][0].dtype == np.float64 and np.allclose(out["b"][0], mean)
    assert tree["a"][0] == rank  # the input is not changed
    assert dist.allreduce(rank + 1) == size * (size + 1) // 2
    assert isinstance(dist.allreduce(rank + 1), int)
    assert dist.allreduce(rank + 1, op="max") == size
    assert dist.allreduce(rank + 1.0, op="min") == 1.0
    assert dist.allreduce(rank, op="mean") == mean
    got = dist.allreduce(fg.Tensor(np.array([rank, 1.0])), op="sum")
    assert np.array_equal(got, [size * (size - 1) / 2, size])
    expect_error_everywhere(lambda: dist.pmean({"i": np.arange(3)}), "'i'", "int",
                            error=DistributedError)


@check
def shards_are_disjoint_cover_the_epoch_and_form_the_global_batches():
    rank, size = rank_size()
    for n in (40, 41):
        shares = allgather(dist.shard(n, seed=3, epoch=5))
        assert sorted(np.concatenate(shares).tolist()) == list(range(n))
        assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1
        whole = dist.shard(n, seed=3, epoch=5, rank=0, size=1)
        local = 4
        for k in range(n // (local * size)):
            union = np.concatenate([s[k * local:(k + 1) * local] for s in shares])
            assert sorted(union) == sorted(whole[k * local * size:(k + 1) * local * size])
    equal = allgather(len(dist.shard(41, seed=3, epoch=5, drop_last=True)))
    assert len(set(equal)) == 1 and equal[0] == 41 // size
    assert not np.array_equal(dist.shard(40, 3, 5), dist.shard(40, 3, 6))


def shared_tmpdir() -> str:
    folder = tempfile.mkdtemp() if dist.rank() == 0 else None
    return allgather(folder)[0]


@check
def checkpoints_are_written_by_rank_0_and_read_by_all():
    rank, size = rank_size()
    folder = shared_tmpdir()
    path = os.path.join(folder, "model.npz")
    model = fg.nn.Linear(3, 2, rng=rank)
    dist.broadcast_parameters(model)
    dist.save(path, {"step": np.array(7), **model.state_dict()})
    assert os.path.exists(path)  # every rank sees it once save returns
    state = dist.load(path)
    assert int(state["step"]) == 7
    assert_same_on_all_ranks(state, "load")
    from_root = dist.load(path, root=0)
    assert_same_on_all_ranks(from_root, "load(root=0)")
    assert sorted(from_root) == sorted(state)
    missing = os.path.join(folder, "missing.npz")
    mine = path if rank != size - 1 else missing
    expect_error_everywhere(lambda: dist.load(mine), f"rank {size - 1}", "missing.npz",
                            error=CheckpointError)
    bad = os.path.join(folder, "no-such-folder", "x.npz")
    expect_error_everywhere(lambda: dist.save(bad, model), "rank 0", error=CheckpointError)


@check
def optimizer_state_is_broadcast_from_rank_0():
    rank, size = rank_size()
    model = fg.nn.Linear(3, 2, rng=0)
    opt = fg.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(rank + 1):  # a different number of steps (and moments) on every rank
        fg.sum(model(np.ones((2, 3))) ** 2).backward()
        opt.step()
    dist.broadcast_parameters(model)
    dist.broadcast_optimizer_state(dist.DistributedOptimizer(opt))
    assert_same_on_all_ranks(opt.state_dict(), "optimizer state")
    other = fg.optim.Adam(fg.nn.Linear(3, 2 + (rank == size - 1), rng=0).parameters())
    expect_error_everywhere(lambda: dist.broadcast_optimizer_state(other), "parameters[0]")


@check
def the_first_step_refuses_ranks_that_start_from_different_weights():
    rank, size = rank_size()
    model = fg.nn.Linear(3, 2, rng=rank)  # no broadcast_parameters
    opt = dist.DistributedOptimizer(fg.optim.SGD(model.parameters(), alpha=0.1))
    fg.sum(model(np.ones((2, 3)))).backward()
    expect_error_everywhere(opt.step, "broadcast_parameters", "rank 1", "'parameters[0]'")
    dist.broadcast_parameters(model)
    opt.step()  # now it trains
    assert_same_on_all_ranks(model.state_dict(), "after broadcast")


@check
def init_with_a_given_communicator():
    from mpi4py import MPI

    try:
        dist.init(MPI.COMM_SELF)
        assert (dist.rank(), dist.size(), dist.backend()) == (0, 1, "mpi")
        assert dist.allreduce(5) == 5
    finally:
        dist.init()
    assert dist.size() == MPI.COMM_WORLD.Get_size()
