"""Concurrency: backward and training in several threads at once give the results of
sequential runs, recording flags are per thread, and the Numba kernels release the GIL.

The guarantees tested here are the ones the README states: each thread may build and
backpropagate its own graphs (ops with Numba kernels included: ``index_select``'s backward,
``cross_entropy``) and train its own model; ``no_grad`` and ``detect_anomaly`` apply to the
calling thread only; ``fg.grad`` and friends may share read-only parameter arrays between
threads. Accumulating into the ``.grad`` of the same leaf from several threads is not
synchronised (give each thread its own parameters, or use ``fg.grad``).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest

import fungrad as fg
import fungrad.kernels
from fungrad import Tensor
from fungrad.errors import AnomalyError

from test_memory import _rnn_setup, rnn_step  # the chapter's RNN, written inline

N_THREADS = 4


def _in_threads(fn, args_list):
    """Run ``fn(*args)`` for each args in threads started together; results in order."""
    barrier = threading.Barrier(len(args_list))

    def run(args):
        barrier.wait()  # maximise overlap
        return fn(*args)

    with ThreadPoolExecutor(len(args_list)) as pool:
        return list(pool.map(run, args_list))


def _train(seed: int, steps: int = 20):
    data, params = _rnn_setup(seed)
    losses = [rnn_step(data, params) for _ in range(steps)]
    return losses, {k: v.data.copy() for k, v in params.items()}


def test_training_in_threads_matches_sequential_training():
    seeds = [(s,) for s in range(N_THREADS)]
    sequential = [_train(*s) for s in seeds]
    threaded = _in_threads(_train, seeds)
    for (l_seq, p_seq), (l_thr, p_thr) in zip(sequential, threaded):
        assert l_seq == l_thr
        for name in p_seq:
            np.testing.assert_array_equal(p_thr[name], p_seq[name], err_msg=name)


def _kernel_grads(seed: int):
    """Gradients through index_select (scatter-add kernel) and cross_entropy (softmax kernel)."""
    rng = np.random.default_rng(seed)
    table = Tensor(rng.standard_normal((50, 8)).astype(np.float32), autograd=True)
    w = Tensor(rng.standard_normal((8, 50)).astype(np.float32), autograd=True)
    ids = rng.integers(0, 50, size=(64, 5))
    targets = rng.integers(0, 50, size=64)
    for _ in range(5):
        h = table.index_select(ids).sum(1)
        loss = fg.cross_entropy(h.mm(w), targets)
        loss.backward()
    return loss.data.copy(), table.grad.data.copy(), w.grad.data.copy()


def test_backward_through_numba_kernels_in_threads_matches_sequential():
    seeds = [(s,) for s in range(2 * N_THREADS)]
    sequential = [_kernel_grads(*s) for s in seeds]
    threaded = _in_threads(_kernel_grads, seeds)
    for seq, thr in zip(sequential, threaded):
        for a, b in zip(seq, thr):
            np.testing.assert_array_equal(a, b)


def test_functional_grad_with_shared_parameters_in_threads():
    rng = np.random.default_rng(0)
    shared = {"w": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
    shared["w"].setflags(write=False)  # read-only: nobody may write into them
    batches = [(rng.standard_normal((10, 6)), rng.integers(0, 3, 10)) for _ in range(8)]

    def loss(p, x, y):
        return fg.cross_entropy(fg.tanh(x @ p["w"] + p["b"]), y)

    def gradient(x, y):
        g = fg.grad(loss)(shared, x, y)
        return g["w"], g["b"]

    sequential = [gradient(*b) for b in batches]
    threaded = _in_threads(gradient, batches)
    for seq, thr in zip(sequential, threaded):
        for a, b in zip(seq, thr):
            np.testing.assert_array_equal(a, b)


def test_no_grad_applies_to_its_own_thread_only():
    inside = threading.Event()
    done = threading.Event()

    def quiet():
        with fg.no_grad():
            inside.set()
            done.wait(5)
            return (Tensor([1.0], autograd=True) * 2).creation_op

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(quiet)
        assert inside.wait(5)
        recorded = (Tensor([1.0], autograd=True) * 2).creation_op  # meanwhile, here
        done.set()
        assert future.result() is None
    assert recorded == "multiply" and fg.is_grad_enabled()


def test_detect_anomaly_applies_to_its_own_thread_only():
    inside = threading.Event()
    done = threading.Event()

    def strict():
        with fg.detect_anomaly():
            inside.set()
            done.wait(5)
            with pytest.raises(AnomalyError, match="^log"), np.errstate(divide="ignore"):
                fg.log(Tensor([0.0], autograd=True))

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(strict)
        assert inside.wait(5)
        with np.errstate(divide="ignore"):
            out = fg.log(Tensor([0.0], autograd=True))  # no anomaly mode on this thread
        done.set()
        future.result()
    assert np.isneginf(out.data).all()


def test_a_new_thread_starts_with_default_recording_flags():
    with fg.no_grad(), fg.detect_anomaly():
        with ThreadPoolExecutor(1) as pool:
            flags = pool.submit(lambda: (fg.is_grad_enabled(), fg.recording.thread.anomaly)).result()
    assert flags == (True, False)


def test_sequence_numbers_stay_unique_across_threads():
    def make(_):
        x = Tensor(np.ones(2), autograd=True)
        return [(x * float(i))._seq for i in range(500)]

    seqs = [s for part in _in_threads(make, [(i,) for i in range(N_THREADS)]) for s in part]
    assert len(set(seqs)) == len(seqs)


def _dispatchers():
    for info in pkgutil.iter_modules(fungrad.kernels.__path__):
        module = importlib.import_module(f"fungrad.kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                yield f"{info.name}.{name}", obj


def test_every_numba_kernel_releases_the_gil():
    kernels = dict(_dispatchers())
    assert kernels, "no Numba kernel found"
    holding = [name for name, k in kernels.items() if not k.targetoptions.get("nogil")]
    assert not holding, f"compiled without nogil=True: {holding}"
