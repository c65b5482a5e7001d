"""Flat buckets: many arrays packed into a few large buffers, one non-blocking collective each.

Arrays are grouped by dtype (float32 stays float32), each group laid out end to end in one flat
vector, and the vector is cut into buckets of at most ``bucket_bytes``. A bucket's collective
starts as soon as the arrays it covers are packed, so the copying of later arrays overlaps with
the communication of earlier buckets; results are unpacked bucket by bucket as they complete.

Before the data moves, ranks sum a small fixed-size int64 header: two hashes of the
description (and their squares, so that *all ranks* can tell whether every rank sent the same
hashes), the number of ranks that found a local problem, and the number of ranks with a missing
gradient. A mismatch therefore raises on every rank instead of hanging in a collective whose
sizes differ.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ._comm import World
from ._layout import Entry, check_same, fingerprint, fingerprints_agree, raise_mismatch

__all__ = ["DEFAULT_BUCKET_BYTES", "Layout", "run", "preflight", "wait", "ReduceStats"]

#: Default upper bound on one bucket. Large enough that a bucket's latency is negligible next to
#: its transfer time on shared memory or a network, small enough to overlap packing with sending.
DEFAULT_BUCKET_BYTES = 4 << 20

_HEADER = 6  # h1, h1**2, h2, h2**2, ranks with a local problem, ranks with a zero flag


class ReduceStats(NamedTuple):
    """What one reduction sent: each bucket's bytes and dtype, the header, in place or packed.

    ``nbytes`` is the payload each rank contributes (buckets plus header); an allreduce moves
    about ``2 * (size - 1) / size`` times that over each rank's link. ``header_calls`` is 1,
    or 2 when some rank lacked a gradient (their flags go in a second small call).
    ``in_place`` is True when the gradients already lay in one flat buffer per dtype (as
    views) and were reduced there, without packing copies.
    """

    bucket_bytes: tuple[int, ...]
    bucket_dtypes: tuple[str, ...]
    header_bytes: int
    header_calls: int
    in_place: bool

    @property
    def nbytes(self) -> int:
        """Bytes each rank contributed: every bucket plus the header."""
        return sum(self.bucket_bytes) + self.header_bytes

    @property
    def calls(self) -> int:
        """Collective calls made: one per bucket plus the header's (0 in a single process)."""
        return len(self.bucket_bytes) + self.header_calls


class _Group:
    __slots__ = ("dtype", "members", "offsets", "total", "buckets")

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.members: list[int] = []
        self.offsets: list[int] = []
        self.total = 0
        self.buckets: list[tuple[int, int]] = []


class Layout:
    """Arrays ``sizes[i]`` of ``dtypes[i]``, grouped by dtype and cut into buckets.

    >>> import numpy as np
    >>> from fungrad.distributed._buckets import Layout
    >>> lay = Layout([3, 5, 2], [np.float32, np.float64, np.float32], bucket_bytes=16)
    >>> [(g.dtype.name, g.members, g.buckets) for g in lay.groups]
    [('float32', [0, 2], [(0, 4), (4, 5)]), ('float64', [1], [(0, 2), (2, 4), (4, 5)])]
    """

    def __init__(self, sizes: Sequence[int], dtypes: Sequence[Any], bucket_bytes: int) -> None:
        if int(bucket_bytes) < 1:
            raise ValueError(f"bucket_bytes must be a positive number of bytes, got "
                             f"{bucket_bytes}")
        self.sizes = [int(n) for n in sizes]
        by_dtype: dict[np.dtype, _Group] = {}
        for i, (n, dt) in enumerate(zip(self.sizes, dtypes)):
            dt = np.dtype(dt)
            group = by_dtype.get(dt)
            if group is None:
                group = by_dtype[dt] = _Group(dt)
            group.members.append(i)
            group.offsets.append(group.total)
            group.total += n
        self.groups = list(by_dtype.values())
        for group in self.groups:
            step = max(1, int(bucket_bytes) // group.dtype.itemsize)
            group.buckets = [(a, min(a + step, group.total)) for a in range(0, group.total, step)]

    def buffers(self) -> list[np.ndarray]:
        """One new flat vector per group."""
        return [np.empty(g.total, g.dtype) for g in self.groups]

    def stats(self, header_bytes: int, header_calls: int, in_place: bool) -> ReduceStats:
        sizes, dtypes = [], []
        for g in self.groups:
            for a, b in g.buckets:
                sizes.append((b - a) * g.dtype.itemsize)
                dtypes.append(g.dtype.name)
        return ReduceStats(tuple(sizes), tuple(dtypes), header_bytes, header_calls, in_place)


Pack = Callable[[int, np.ndarray], None]


def run(w: World, layout: Layout, vectors: Sequence[np.ndarray], start: Callable,
        pack: Pack | None, unpack: Pack) -> None:
    """Move every group's vector bucket by bucket with ``start(buffer) -> request``.

    ``pack(i, segment)`` writes array ``i`` into its segment (None: the data are already in
    place); ``unpack(i, segment)`` is called once the segment holds the result.
    """
    requests = []
    for g, group in enumerate(layout.groups):
        vec, b = vectors[g], 0
        for i, off in zip(group.members, group.offsets):
            end = off + layout.sizes[i]
            if pack is not None:
                pack(i, vec[off:end])
            while b < len(group.buckets) and group.buckets[b][1] <= end:
                lo, hi = group.buckets[b]
                requests.append(start(vec[lo:hi]))
                b += 1
            if requests and pack is not None:
                w.mpi.Request.Testall(requests)  # MPI progresses a collective only when called
    k = 0
    for g, group in enumerate(layout.groups):
        vec, j, members = vectors[g], 0, group.members
        for _, hi in group.buckets:
            wait(requests[k])
            k += 1
            while j < len(members) and group.offsets[j] + layout.sizes[members[j]] <= hi:
                off = group.offsets[j]
                unpack(members[j], vec[off:off + layout.sizes[members[j]]])
                j += 1
        for jj in range(j, len(members)):  # empty arrays past the last bucket
            off = group.offsets[jj]
            unpack(members[jj], vec[off:off])


def wait(request: Any) -> None:
    """Wait for a request, yielding the core between checks instead of spinning on it.

    The header is where the rank that finished its backward first waits for the others. MPI's
    own wait spins at full speed; on a machine with more runnable processes than cores that
    spinning takes the core from the rank being waited for. ``sched_yield`` hands it over and
    returns at once when nothing else wants it.
    """
    while not request.Test():
        _yield()


_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


def preflight(w: World, where: str, desc: Sequence[Entry], settings: Any,
              flags: np.ndarray | None = None, problem: str | None = None) -> np.ndarray | None:
    """Sum a fixed-size header over ranks; raise on every rank if descriptions or settings differ.

    ``flags`` (int64, one per array; e.g. "this rank has a gradient") are summed over ranks and
    returned, in a second small call only when some rank has a zero flag; None means that
    every rank set every flag.
    """
    header = np.zeros(_HEADER, np.int64)
    header[:4] = fingerprint(desc, settings)
    header[4] = 1 if problem else 0
    header[5] = 0 if flags is None or flags.all() else 1
    wait(w.comm.Iallreduce(w.mpi.IN_PLACE, header, op=w.mpi.SUM))  # where ranks meet
    if header[4] > 0:
        check_same(w.comm, where, desc, problem=problem)  # raises, naming the rank
    if not fingerprints_agree(header[:4], w.size):
        raise_mismatch(w.comm, where, desc)
    if header[5] == 0:
        return None
    summed = np.ascontiguousarray(flags, dtype=np.int64)  # sizes agree: checked just above
    w.comm.Allreduce(w.mpi.IN_PLACE, summed, op=w.mpi.SUM)
    return summed


def header_bytes() -> int:
    return _HEADER * 8


def shared_flat(arrays: Sequence[np.ndarray | None], dtype: np.dtype) -> np.ndarray | None:
    """The 1-D stretch of one buffer that ``arrays`` tile in order, end to end, if they do.

    This is how gradients kept as views into one flat buffer are reduced where they lie.
    """
    maybe = [a for a in arrays if a is None or a.size]
    if not maybe or any(a is None for a in maybe):
        return None
    live = [a for a in maybe if a is not None]
    base = live[0].base
    if not isinstance(base, np.ndarray) or base.dtype != dtype or not base.flags.c_contiguous \
            or not base.flags.writeable:
        return None
    origin = base.__array_interface__["data"][0]
    first = live[0].__array_interface__["data"][0]
    expected = first
    for a in live:
        if a.base is not base or a.dtype != dtype or not a.flags.c_contiguous \
                or a.__array_interface__["data"][0] != expected:
            return None
        expected += a.nbytes
    start = (first - origin) // dtype.itemsize
    return base.reshape(-1)[start:start + (expected - first) // dtype.itemsize]
