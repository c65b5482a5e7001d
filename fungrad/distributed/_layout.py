"""What is being communicated: named arrays, their description, and the check that every rank
describes the same thing before any data moves.

A description is a list of ``(name, shape, dtype)``. Ranks exchange it (or two hashes of it)
before a collective on the data, so that different models on different ranks raise the same
clear error everywhere instead of hanging in an MPI call whose sizes do not match.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import DistributedError
from ..nn.module import Module
from ..tensor import Tensor
from ..tree import _sort_key

Entry = tuple[str, tuple, str]  # (name, shape, dtype.str)

_HASH_BITS = 20  # two hashes of this many bits: their squares summed over ranks fit in int64


def named_tensors(obj: Any, where: str) -> list[tuple[str, Tensor]]:
    """``(name, Tensor)`` for a Module, an optimizer, or an iterable of Tensors."""
    if isinstance(obj, Module):
        return list(obj.named_parameters())
    inner = getattr(obj, "optimizer", None)  # a DistributedOptimizer
    params = getattr(inner if inner is not None else obj, "parameters", obj)
    if callable(params) and not isinstance(params, (list, tuple)):
        params = params()
    try:
        items = list(params)
    except TypeError:
        raise TypeError(f"{where}: expected a Module, an optimizer or a list of Tensors, got "
                        f"{type(obj).__name__}") from None
    for i, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: item {i} is a {type(p).__name__}, expected a Tensor "
                            "(pass model.parameters() or the model itself)")
    return [(f"parameters[{i}]", p) for i, p in enumerate(items)]


def named_leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Leaves of a pytree with dotted paths, in :func:`fungrad.tree.flatten`'s order."""
    out: list[tuple[str, Any]] = []
    _walk(tree, prefix, out)
    return out


def _walk(tree: Any, path: str, out: list) -> None:
    if isinstance(tree, dict):
        for k in sorted(tree, key=_sort_key):
            _walk(tree[k], _join(path, k), out)
    elif isinstance(tree, (list, tuple)):
        fields = getattr(tree, "_fields", None)
        for i, v in enumerate(tree):
            _walk(v, _join(path, fields[i] if fields else i), out)
    else:
        out.append((path or "<root>", tree))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def grad_dtype(p: Tensor) -> np.dtype:
    """The dtype of ``p``'s gradient: its own if floating, else float64 (as backward gives)."""
    return p.dtype if p.dtype.kind == "f" else np.dtype(np.float64)


def describe(names: Iterable[str], arrays: Iterable[Any], dtypes: Iterable[Any] | None = None
             ) -> list[Entry]:
    """``[(name, shape, dtype.str)]`` for arrays (or Tensors), dtypes overridable."""
    arrays = list(arrays)
    if dtypes is None:
        dtypes = [np.asarray(_raw(a)).dtype for a in arrays]
    return [(n, tuple(np.shape(_raw(a))), np.dtype(d).str)
            for n, a, d in zip(names, arrays, dtypes)]


def _raw(a: Any) -> Any:
    return a.data if isinstance(a, Tensor) else a


def fingerprint(desc: Sequence[Entry], extra: Any = None) -> np.ndarray:
    """``[h1, h1**2, h2, h2**2]`` (int64): summed over ranks, all equal iff the variance is 0."""
    digest = hashlib.blake2b(repr((list(desc), extra)).encode(), digest_size=8).digest()
    mask = (1 << _HASH_BITS) - 1
    h1 = int.from_bytes(digest[:4], "little") & mask
    h2 = int.from_bytes(digest[4:], "little") & mask
    return np.array([h1, h1 * h1, h2, h2 * h2], dtype=np.int64)


def fingerprints_agree(summed: np.ndarray, n_ranks: int) -> bool:
    """From the rank-wise sums of :func:`fingerprint`: do all ranks hold the same one?"""
    for i in (0, 2):
        total, squares = int(summed[i]), int(summed[i + 1])
        if squares * n_ranks != total * total:
            return False
    return True


def mismatch_message(where: str, descs: Sequence[Sequence[Entry]], ref: int = 0,
                     what: str = "parameter") -> str | None:
    """A message naming the first entry where some rank differs from rank ``ref``, or None."""
    base = descs[ref]
    for r, desc in enumerate(descs):
        if r == ref or list(desc) == list(base):
            continue
        for i in range(max(len(desc), len(base))):
            mine = desc[i] if i < len(desc) else None
            theirs = base[i] if i < len(base) else None
            if mine != theirs:
                return (f"{where}: ranks hold different {what}s, so they cannot be combined "
                        f"(nothing was changed). {what} #{i}: rank {ref} has {_fmt(theirs)}, "
                        f"rank {r} has {_fmt(mine)} (rank {ref} has {len(base)} {what}s, rank "
                        f"{r} has {len(desc)}). Build the same model on every rank "
                        "(same layers, sizes and dtypes, created in the same order).")
    return None


def _fmt(entry: Entry | None) -> str:
    if entry is None:
        return "nothing"
    name, shape, dtype = entry
    return f"'{name}' of shape {shape} and dtype {np.dtype(dtype).name}"


def check_same(comm: Any, where: str, desc: Sequence[Entry], ref: int = 0,
               what: str = "parameter", problem: str | None = None) -> None:
    """Gather every rank's description (and local problem, if any); raise on all if they differ.

    Costs one small ``allgather``; use it for rare calls (broadcasts, checkpoints). Every rank
    raises the same :class:`~fungrad.errors.DistributedError`, so no rank is left waiting.
    """
    gathered = comm.allgather((list(desc), problem))
    problems = [(r, p) for r, (_, p) in enumerate(gathered) if p]
    if problems:
        r, p = problems[0]
        raise DistributedError(f"{where}: rank {r} cannot take part: {p} (nothing was changed)")
    message = mismatch_message(where, [d for d, _ in gathered], ref, what)
    if message:
        raise DistributedError(message)


def raise_mismatch(comm: Any, where: str, desc: Sequence[Entry], what: str = "parameter"
                   ) -> None:
    """After a failed fingerprint check: gather the descriptions and raise the full message."""
    descs = comm.allgather(list(desc))
    message = mismatch_message(where, descs, 0, what) or (
        f"{where}: ranks called it with different settings (op, average or bucket size) "
        "although their arrays match; call it the same way on every rank")
    raise DistributedError(message)
