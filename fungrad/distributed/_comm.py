"""The communicator behind :mod:`fungrad.distributed`: MPI when launched by ``mpiexec``, else one
process of its own.

mpi4py is imported only here, and only when the process was started by an MPI launcher (its
``PMI_*``, ``PMIX_RANK`` or ``OMPI_COMM_WORLD_*`` variables), or ``FUNGRAD_MPI=1`` asks for it
(for other launchers), or the program imported ``mpi4py.MPI`` itself. ``FUNGRAD_MPI=0`` turns
MPI off. A plain ``python script.py`` never loads MPI: it is rank 0 of 1 and every collective
is the identity.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ..errors import DistributedError

__all__ = ["init", "is_initialized", "rank", "size", "barrier", "backend", "World", "world"]

# set in the environment of each rank by MPICH/Intel MPI (PMI), Open MPI and MVAPICH launchers
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
# set by launchers that give the rank but not the size here (PMIx: Open MPI 5, srun --mpi=pmix)
_LAUNCHER_RANK_VARS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")


class World:
    """This process's place in the job: ``comm`` (an mpi4py communicator, or None), rank, size."""

    __slots__ = ("comm", "rank", "size", "mpi")

    def __init__(self, comm: Any, mpi: Any) -> None:
        self.comm = comm
        self.mpi = mpi  # the mpi4py.MPI module, or None in a single process
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()


_world: World | None = None


def _launcher_size() -> int | None:
    """The job size an MPI launcher announced; 0 when it gave only a rank; None: no launcher."""
    for var in _LAUNCHER_SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    if any(os.environ.get(var) for var in _LAUNCHER_RANK_VARS):
        return 0  # a launcher whose size we cannot read: assume a real job, so MPI is needed
    return None


def _import_mpi(reason: str):
    try:
        from mpi4py import MPI  # noqa: PLC0415 (mpi4py is optional and loaded on demand)
    except ImportError as e:
        raise DistributedError(
            f"fungrad.distributed: {reason}, but mpi4py cannot be imported ({e}); install it "
            "with pip install 'fungrad[mpi]' (mpi4py and the mpich wheel), or run the script "
            "without mpiexec"
        ) from e
    return MPI


def _default_world() -> World:
    forced = os.environ.get("FUNGRAD_MPI", "").strip()
    if forced == "0":
        return World(None, None)
    launched = _launcher_size()
    if forced == "1":
        mpi = _import_mpi("FUNGRAD_MPI=1 asks for MPI")
    elif "mpi4py.MPI" in sys.modules:
        mpi = sys.modules["mpi4py.MPI"]
    elif launched == 1:
        try:
            mpi = _import_mpi("launched by mpiexec")
        except DistributedError:
            return World(None, None)  # mpiexec -n 1 without mpi4py: one process is right
    elif launched is not None:
        of = f" as one of {launched}" if launched else ""
        mpi = _import_mpi(f"this process was started by an MPI launcher{of}")
    else:
        return World(None, None)
    return World(mpi.COMM_WORLD, mpi)


def init(comm: Any = None, *, abort_on_error: bool = True) -> None:
    """Choose the communicator and install the abort-on-error hook; called implicitly.

    Every function of :mod:`fungrad.distributed` calls ``init()`` on first use, so calling it
    yourself is only needed to pass a communicator (``comm``, an mpi4py communicator such as a
    ``COMM_WORLD.Split`` result) or to keep the default hook out (``abort_on_error=False``).
    Call it early: the hook only helps once it is installed.

    With more than one rank, an uncaught exception on any rank prints the rank, the error and
    its traceback, then calls ``MPI_Abort`` so that every rank stops at once instead of the
    others waiting forever in their next collective.

    >>> import fungrad.distributed as dist
    >>> dist.init()
    >>> dist.is_initialized(), dist.rank(), dist.size()
    (True, 0, 1)
    """
    global _world
    if comm is None:
        new = _default_world()
    else:
        mpi = sys.modules.get("mpi4py.MPI") or _import_mpi("init() was given a communicator")
        new = World(comm, mpi)
    _world = new
    if abort_on_error and new.size > 1:
        _install_excepthook(new)


def world() -> World:
    """The current :class:`World`, initialising on first use."""
    if _world is None:
        init()
    return _world  # type: ignore[return-value]


def is_initialized() -> bool:
    """Whether the communicator has been chosen (by :func:`init` or a first collective).

    >>> import fungrad.distributed as dist
    >>> dist.rank()
    0
    >>> dist.is_initialized()
    True
    """
    return _world is not None


def rank() -> int:
    """This process's rank, 0 .. size() - 1 (0 without MPI).

    >>> import fungrad.distributed as dist
    >>> dist.rank()
    0
    """
    return world().rank


def size() -> int:
    """The number of ranks in the job (1 without MPI).

    >>> import fungrad.distributed as dist
    >>> dist.size()
    1
    """
    return world().size


def backend() -> str:
    """``"mpi"`` when running on an MPI communicator, ``"single"`` for one process without MPI.

    >>> import fungrad.distributed as dist
    >>> dist.backend()
    'single'
    """
    return "single" if world().comm is None else "mpi"


def barrier(poll: float | None = None) -> None:
    """Wait until every rank has reached this call (nothing to wait for without MPI).

    MPI's barrier spins on a core while it waits. Ranks that may wait long (while rank 0
    evaluates or writes) can pass ``poll``, a sleep in seconds between checks, to leave the
    core to others at the cost of up to ``poll`` seconds of extra delay.

    >>> import fungrad.distributed as dist
    >>> dist.barrier(poll=0.01)
    """
    w = world()
    if w.size == 1:
        return
    if poll is None:
        w.comm.Barrier()
        return
    request = w.comm.Ibarrier()
    while not request.Test():
        time.sleep(poll)


def _install_excepthook(w: World) -> None:
    previous = sys.excepthook
    if getattr(previous, "_fungrad_abort", False):
        previous = previous._fungrad_previous  # type: ignore[attr-defined]

    def abort_all(etype, value, tb) -> None:
        try:
            sys.stderr.write(
                f"fungrad.distributed: rank {w.rank} of {w.size} raised {etype.__name__}: "
                f"{value}\n(traceback below; aborting all ranks with MPI_Abort)\n"
            )
            previous(etype, value, tb)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            w.comm.Abort(1)

    abort_all._fungrad_abort = True  # type: ignore[attr-defined]
    abort_all._fungrad_previous = previous  # type: ignore[attr-defined]
    sys.excepthook = abort_all
