"""Data-parallel training on MPI: every rank trains a copy of the model on its share of each batch.

Run a script with ``mpiexec -n 2 python train.py`` (``pip install 'fungrad[mpi]'`` brings
mpi4py and MPICH's ``mpiexec``); the same script runs unchanged as ``python train.py``, where
this is rank 0 of 1 and every collective is the identity. mpi4py is imported only when the
process was started by an MPI launcher (or ``FUNGRAD_MPI=1`` is set); ``import fungrad`` never
imports it.

The eager style::

    dist.broadcast_parameters(model)                  # all ranks start from rank 0's weights
    opt = dist.DistributedOptimizer(fg.optim.Adam(model.parameters(), lr=1e-3))
    for epoch in range(epochs):
        mine = dist.shard(len(x), seed=0, epoch=epoch)  # this rank's share of the shuffle
        for batch in np.split(mine, n_batches):
            loss = loss_fn(model(x[batch]), y[batch])   # the mean over this rank's batch
            loss.backward()
            opt.step()                                  # averages gradients, then updates

and the functional one: ``value, grads = fg.value_and_grad(loss)(params, xb, yb)``, then
``grads = dist.pmean(grads)``, then the update. Averaging per-rank means gives the mean over
the global batch when every rank has the same number of samples; N ranks then reach the same
parameters as one process on the whole batch (up to rounding).

Faults: with more than one rank, :func:`init` (run by the first call of any function here)
installs a ``sys.excepthook`` that prints the rank and the error and calls ``MPI_Abort``, so an
exception on one rank stops the whole job at once instead of leaving the others waiting in a
collective. Ranks that disagree about what they communicate (parameter names, shapes, dtypes)
raise :class:`~fungrad.errors.DistributedError` on every rank, naming the parameter.

Checkpoints: :func:`save` writes from rank 0 only and waits for it; :func:`load` reads on all
ranks (or on one and broadcasts).

>>> import fungrad.distributed as dist
>>> dist.rank(), dist.size(), dist.backend()
(0, 1, 'single')
"""

from __future__ import annotations

from ._broadcast import broadcast_optimizer_state, broadcast_parameters
from ._buckets import DEFAULT_BUCKET_BYTES, ReduceStats
from ._checkpoint import load, save
from ._comm import backend, barrier, init, is_initialized, rank, size
from ._data import shard
from ._optim import DistributedOptimizer
from ._reduce import allreduce, allreduce_gradients, pmean

__all__ = [
    "init", "is_initialized", "rank", "size", "backend", "barrier",
    "broadcast_parameters", "broadcast_optimizer_state",
    "allreduce_gradients", "DistributedOptimizer", "ReduceStats", "DEFAULT_BUCKET_BYTES",
    "pmean", "allreduce", "shard", "save", "load",
]
