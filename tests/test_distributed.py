"""fungrad.distributed: single-process behaviour here, and MPI runs under ``mpiexec -n 2``.

The MPI tests launch the scripts in ``tests/mpi/`` as subprocesses (with a timeout, so that a
hang fails the test instead of stalling CI) and skip, saying why, when mpi4py or ``mpiexec``
is missing. ``check_training.py`` runs all of its checks in one launch; each check is reported
as its own test here.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fungrad as fg
import fungrad.distributed as dist
from fungrad.distributed._buckets import Layout, shared_flat
from fungrad.distributed._layout import fingerprint, fingerprints_agree, mismatch_message
from fungrad.errors import DistributedError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPI_DIR = os.path.join(ROOT, "tests", "mpi")
TIMEOUT = 240  # seconds for one launch; generous for a loaded 2-core machine


def _mpiexec() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.access(here, os.X_OK) else shutil.which("mpiexec")


def _mpi_missing() -> str | None:
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install -e '.[mpi]' installs it and mpiexec)"
    if _mpiexec() is None:
        return "no mpiexec next to the Python interpreter or on PATH (pip install mpich)"
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "FUNGRAD_MPI"):
        env.pop(var, None)
    # harmless for MPICH; lets an Open MPI mpiexec run as root (CI containers) and put two
    # ranks on one core
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    env.setdefault("PRTE_MCA_rmaps_default_mapping_policy", ":oversubscribe")
    return env


def launch(script: str, *args: str, n: int = 2, timeout: float = TIMEOUT,
           cwd: str | None = None) -> tuple[int, str, str, float]:
    """Run ``mpiexec -n n python script args``; kill the whole group if it outlives timeout."""
    cmd = [_mpiexec(), "-n", str(n), sys.executable, script, *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=cwd or MPI_DIR, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} hung for {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err, time.monotonic() - t0


# -- one launch of check_training.py, one test per check -------------------------------------

def _check_names() -> list[str]:
    names = []
    for file in ("check_training.py", "checks_comm.py"):
        with open(os.path.join(MPI_DIR, file)) as f:
            tree = ast.parse(f.read())
        names += [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                  and any(getattr(d, "id", None) == "check" for d in node.decorator_list)]
    return names


@pytest.fixture(scope="module")
def training_run() -> dict:
    code, out, err, _ = launch("check_training.py")
    verdicts = {m[1]: (m[0], m[2]) for m in re.findall(r"^(PASS|FAIL) (\w+):?(.*)$", out, re.M)}
    return {"code": code, "out": out, "err": err, "verdicts": verdicts}


@needs_mpi
@pytest.mark.parametrize("name", _check_names())
def test_under_mpiexec_n2(training_run, name):
    verdict = training_run["verdicts"].get(name)
    if verdict is None:
        pytest.fail(f"check {name} did not report (exit code {training_run['code']})\n"
                    f"stdout:\n{training_run['out']}\nstderr:\n{training_run['err'][-3000:]}")
    assert verdict[0] == "PASS", verdict[1]


# -- faults ---------------------------------------------------------------------------------

@needs_mpi
def test_an_exception_on_one_rank_aborts_all_ranks_promptly():
    code, out, err, seconds = launch("check_abort.py", timeout=60)
    assert code != 0
    assert "rank 1 of 2 raised ValueError: injected failure at step 3" in err, err
    assert "MPI_Abort" in err
    # rank 0 trains in an endless loop: it printed step 1 before it could reach rank 1's
    # failure (step 2 may be cut off by the abort), and only the abort could end it
    assert "step 1 done" in out
    assert seconds < 60


@needs_mpi
def test_a_killed_run_resumes_from_its_last_checkpoint_identically(tmp_path):
    code, out, err, _ = launch("check_resume.py", "kill", str(tmp_path))
    assert code != 0, out  # rank 1 was killed with SIGKILL at step 8
    assert "step 9 done" not in out, out  # (lines printed just before the kill may be lost)
    assert int(fg.load(tmp_path / "ckpt.npz")["step"]) == 6  # the last checkpoint before it
    code, out, err, _ = launch("check_resume.py", "resume", str(tmp_path))
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "resumed at step 6" in out and "PASS" in out, out


@needs_mpi
def test_ddp_example_matches_one_process_and_reports_throughput(tmp_path):
    script = os.path.join(ROOT, "examples", "ddp_train.py")
    code, out, err, _ = launch(script, "--quick", cwd=str(tmp_path))
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert re.search(r"1 process\s+[\d.]+ \([\d.]+\) samples/s", out), out
    assert re.search(r"2 processes\s+[\d.]+ \([\d.]+\) samples/s\s+speed-up", out), out
    diff = float(re.search(r"max relative difference ([\d.e+-]+)", out).group(1))
    assert diff <= 1e-12, out
    assert "communication per step and rank" in out and "bucket(s) of" in out
    assert "allreduce (with waiting)" in out


# -- the same script without MPI: rank 0 of 1 ------------------------------------------------

def test_import_fungrad_never_imports_mpi4py():
    code = ("import sys, fungrad, fungrad.distributed as d; d.rank(); d.allreduce(1.0); "
            "print('mpi4py' in sys.modules, d.backend())")
    env = _env()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.split() == ["False", "single"]


def test_launched_by_mpiexec_without_mpi4py_says_how_to_install_it():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import fungrad.distributed as d\n"
            "try:\n    d.rank()\nexcept d.DistributedError as e:\n    print(e)\n")
    code = code.replace("d.DistributedError", "__import__('fungrad').errors.DistributedError")
    env = dict(_env(), PMI_SIZE="2", PMI_RANK="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "one of 2" in out and "pip install 'fungrad[mpi]'" in out, out
    only_rank = {k: v for k, v in env.items() if not k.startswith("PMI")}
    out = subprocess.run([sys.executable, "-c", code], env=dict(only_rank, PMIX_RANK="1"),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "started by an MPI launcher" in out, out
    env["FUNGRAD_MPI"] = "0"
    code = "import fungrad.distributed as d; print(d.size())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "1"


def test_single_process_is_rank_0_of_1():
    assert (dist.rank(), dist.size(), dist.backend()) == (0, 1, "single")
    assert dist.is_initialized()
    dist.barrier()


def _model_and_grads(seed=0):
    model = fg.nn.Sequential([fg.nn.Linear(3, 4, rng=seed), fg.nn.Tanh(),
                              fg.nn.Linear(4, 2, rng=seed + 1)])
    fg.mean(model(np.ones((5, 3))) ** 2).backward()
    return model


def test_single_process_reductions_change_nothing():
    model = _model_and_grads()
    before = {k: p.grad.data.copy() for k, p in model.named_parameters()}
    stats = dist.allreduce_gradients(model)
    assert stats.nbytes == 0 and stats.calls == 0
    for k, p in model.named_parameters():
        assert np.array_equal(p.grad.data, before[k])
    tree = {"a": np.ones(2, np.float32), "b": [1.5]}
    out = dist.pmean(tree)
    assert out["a"].dtype == np.float32 and out["a"] is not tree["a"]
    assert np.array_equal(out["a"], tree["a"]) and out["b"][0] == 1.5
    assert dist.allreduce(3) == 3 and isinstance(dist.allreduce(3), int)
    assert dist.allreduce(3, op="mean") == 3.0
    assert dist.broadcast_parameters(model) is model
    assert dist.broadcast_parameters(tree) is tree


def test_distributed_optimizer_in_one_process_is_the_optimizer():
    a, b = _model_and_grads(), _model_and_grads()
    plain = fg.optim.Adam(a.parameters(), lr=0.1)
    wrapped = dist.DistributedOptimizer(fg.optim.Adam(b.parameters(), lr=0.1))
    plain.step()
    wrapped.step()
    for (k, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.data, q.data), k
    wrapped.synchronize()
    wrapped.zero_grad()  # forgets the pending synchronize: the next step reduces again
    assert not wrapped._synchronized and all(p.grad is None for p in b.parameters())
    wrapped.lr = 0.5  # reaches the wrapped optimizer
    assert wrapped.optimizer.lr == 0.5 and wrapped.lr == 0.5
    assert wrapped.last_stats is not None and repr(wrapped) == "DistributedOptimizer(Adam)"
    with pytest.raises(TypeError, match="already distributed"):
        dist.DistributedOptimizer(wrapped)
    with pytest.raises(TypeError, match="expected a fungrad.optim optimizer"):
        dist.DistributedOptimizer([1, 2])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.allreduce(1.0, op="prod")
    with pytest.raises(fg.errors.DTypeError, match="pmean: leaf 'x'"):
        dist.pmean({"x": np.arange(3)})
    with pytest.raises(ValueError, match="root must be a rank in 0..0"):
        dist.broadcast_parameters({"x": 1.0}, root=1)
    with pytest.raises(ValueError, match="shard: rank 2 is not below size 2"):
        dist.shard(10, 0, 0, rank=2, size=2)
    with pytest.raises(ValueError, match="shard: seed must be an integer"):
        dist.shard(10, -1, 0)
    with pytest.raises(ValueError, match="bucket_bytes must be a positive"):
        Layout([3], [np.float64], 0)
    with pytest.raises(TypeError, match="allreduce_gradients: item 0 is a str"):
        dist.allreduce_gradients(["w"])
    p = fg.Tensor(np.zeros(3), autograd=True)
    p.grad = fg.Tensor(np.zeros(4))
    with pytest.raises(ValueError, match="'parameters\\[0\\]' has shape \\(3,\\) but its grad"):
        dist.allreduce_gradients([p])


def test_checkpoint_in_one_process(tmp_path):
    model = fg.nn.Linear(2, 2, rng=0)
    dist.save(tmp_path / "m.npz", model)
    assert sorted(dist.load(tmp_path / "m.npz")) == ["bias", "weight"]
    with pytest.raises(fg.errors.CheckpointError):
        dist.load(tmp_path / "missing.npz")


@given(st.integers(0, 200), st.integers(1, 7), st.integers(0, 3), st.booleans())
def test_shards_are_disjoint_and_cover_the_epoch(n, size, epoch, drop_last):
    shares = [dist.shard(n, 11, epoch, rank=r, size=size, drop_last=drop_last)
              for r in range(size)]
    everything = np.concatenate(shares)
    assert len(set(everything.tolist())) == len(everything)
    assert len(everything) == (n - n % size if drop_last else n)
    lengths = {len(s) for s in shares}
    assert max(lengths) - min(lengths) <= (0 if drop_last else 1)
    whole = dist.shard(n, 11, epoch, rank=0, size=1)
    b = 3  # local batches of b on every rank make the global batches of the whole permutation
    for k in range(min(lengths) // b):
        union = np.concatenate([s[k * b:(k + 1) * b] for s in shares])
        assert sorted(union) == sorted(whole[k * b * size:(k + 1) * b * size])


@given(st.lists(st.tuples(st.integers(0, 300), st.sampled_from(["f4", "f8", "i8"])),
                max_size=8), st.integers(1, 600))
def test_buckets_cover_each_dtype_once_within_the_size_limit(arrays, bucket_bytes):
    layout = Layout([n for n, _ in arrays], [d for _, d in arrays], bucket_bytes)
    seen = []
    for g in layout.groups:
        assert all(np.dtype(arrays[i][1]) == g.dtype for i in g.members)
        assert g.total == sum(arrays[i][0] for i in g.members)
        step = max(1, bucket_bytes // g.dtype.itemsize)  # at most bucket_bytes (one number min)
        assert g.buckets == [(a, min(a + step, g.total)) for a in range(0, g.total, step)]
        seen += g.members
    assert sorted(seen) == list(range(len(arrays)))
    stats = layout.stats(48, 1, False)
    assert stats.nbytes == 48 + sum(n * np.dtype(d).itemsize for n, d in arrays)


def test_shared_flat_finds_gradients_tiling_one_buffer():
    buf = np.arange(10.0)
    views = [buf[0:4].reshape(2, 2), buf[4:4], buf[4:10]]
    assert np.shares_memory(shared_flat(views, np.dtype(np.float64)), buf)
    assert shared_flat(views, np.dtype(np.float64)).size == 10
    assert shared_flat([buf[2:5], buf[5:7]], np.dtype(np.float64)).tolist() == [2, 3, 4, 5, 6]
    f64 = np.dtype(np.float64)
    assert shared_flat([buf[0:4], buf[5:10]], f64) is None  # a gap
    assert shared_flat([buf[4:10], buf[0:4]], f64) is None  # out of order
    assert shared_flat([buf[0:4], np.zeros(6)], f64) is None  # another buffer
    assert shared_flat([buf[0:4], None], f64) is None  # a missing gradient
    assert shared_flat([np.zeros(3)], f64) is None  # owns its memory: packed like the rest
    assert shared_flat([buf[0:10:2]], f64) is None  # not contiguous


@given(st.lists(st.integers(0, 3), min_size=1, max_size=6))
def test_fingerprints_agree_only_when_all_ranks_match(models):
    descs = [[("w", (m,), "<f8")] for m in models]
    summed = np.sum([fingerprint(d, "s") for d in descs], axis=0)
    assert fingerprints_agree(summed, len(models)) == (len(set(models)) == 1)
    message = mismatch_message("where", descs)
    assert (message is None) == (len(set(models)) == 1)
    if message:
        r = next(i for i, m in enumerate(models) if m != models[0])
        assert f"rank {r} has 'w' of shape ({models[r]},)" in message


def test_errors_is_exported():
    assert issubclass(DistributedError, fg.errors.FungradError)
    assert issubclass(DistributedError, RuntimeError)
