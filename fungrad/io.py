"""Checkpoints without pickle: ``fg.save(path, obj)`` and ``fg.load(path)``.

``obj`` is anything with a ``state_dict()`` (a Module, an optimizer) or a mapping of names to
arrays. The file is a NumPy ``.npz`` archive (one ``name.npy`` member per array, written with
``allow_pickle=False``), so ``numpy.load`` reads it too. Saving is atomic: the archive is
written to a temporary file in the same folder, flushed and fsynced, then renamed over
``path`` (over the file a symlink at ``path`` points to: the link stays a link); if anything
fails, the temporary file is removed and an existing file is left as it was. A new file gets
the permissions ``open()`` would give it; a replaced file keeps its own.

Loading trusts nothing in the file: object arrays (pickle) are refused; each member's header
must declare exactly the bytes the member holds, so a crafted header cannot make fungrad
allocate memory the file does not back; decompression stops at the declared size; every
member's CRC is checked. A missing, truncated, corrupt or crafted file raises
:class:`~fungrad.errors.CheckpointError` naming the file.

>>> import os, tempfile, numpy as np, fungrad as fg
>>> model = fg.nn.Linear(2, 1, rng=0)
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> fg.save(path, model)
>>> state = fg.load(path)
>>> sorted(state), bool((state["weight"] == model.weight.data).all())
(['bias', 'weight'], True)
>>> model.load_state_dict(state)
LoadResult(missing_keys=[], unexpected_keys=[])
"""

from __future__ import annotations

import math
import os
import secrets
import zipfile
import zlib
from typing import Any, Mapping

import numpy as np

from .errors import CheckpointError
from .tensor import Tensor

__all__ = ["save", "load"]

PathLike = str | os.PathLike

# Deflate expands at most ~1032:1; a member claiming more than this is crafted.
_MAX_DEFLATE_RATIO = 1100
_CHUNK = 1 << 24  # bytes read per call while loading an array


def _path(fn: str, path: Any, obj: Any = None) -> str:
    """``path`` as a str, or a TypeError naming ``fn`` and what it expected."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(os.fspath(path))
    if fn == "save" and isinstance(obj, (str, bytes, os.PathLike)):
        raise TypeError(f"save: the arguments are save(path, obj), the path first; got a "
                        f"{type(path).__name__} as the path and {os.fspath(obj)!r} as the "
                        "object (torch.save takes them the other way round): "
                        f"fg.save({os.fspath(obj)!r}, obj)")
    raise TypeError(f"{fn}: expected a file path (a str or os.PathLike such as "
                    f"'checkpoint.npz'), got {type(path).__name__}")


def _arrays(obj: Any) -> dict[str, np.ndarray]:
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not isinstance(state, Mapping):
        raise TypeError(f"save: expected a Module or a mapping of names to arrays (or anything "
                        f"with a state_dict(), such as an optimizer), got {type(obj).__name__}")
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"save: names must be non-empty strings, got {key!r}")
        arr = np.asarray(value.data if isinstance(value, Tensor) else value)
        if arr.dtype.hasobject or arr.dtype.kind not in "biufc":
            raise TypeError(f"save: '{key}' has dtype {arr.dtype}; checkpoints hold numeric "
                            "arrays only (no pickled objects)")
        arrays[key] = arr
    return arrays


def save(path: PathLike, obj: Any) -> None:
    """Write ``obj``'s ``state_dict()`` (a Module, an optimizer) or a mapping of names to
    arrays to ``path``, atomically.

    The file is written exactly at ``path`` (no extension is added; ``.npz`` is customary).
    If ``path`` is a symlink, the file it points to is replaced and the link kept.

    >>> import os, tempfile, numpy as np, fungrad as fg
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> fg.save(path, {"w": np.arange(3.0), "step": np.array(7)})
    >>> fg.load(path)["step"]
    array(7)
    """
    path = _path("save", path, obj)
    arrays = _arrays(obj)
    target = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = _create_temp(folder, os.path.basename(target), target)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                for key, arr in arrays.items():
                    with zf.open(key + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _create_temp(folder: str, base: str, target: str) -> tuple[int, str]:
    """A new temporary file beside ``target``, with the mode the checkpoint should have.

    A replaced file keeps its permission bits (set with chmod, exactly); a new file is
    created with mode 0o666, which the OS reduces by the process umask just as ``open()``
    would. The umask itself is never read or changed (that would be process-wide).
    """
    try:
        keep = os.stat(target).st_mode & 0o7777
    except OSError:
        keep = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o600 if keep is not None else 0o666)
        except FileExistsError:
            continue
        if keep is not None:
            try:
                os.chmod(tmp, keep)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
        return fd, tmp
    raise FileExistsError(f"save: could not create a temporary file in '{folder}'")


def _fsync_folder(folder: str) -> None:
    """Make the rename durable where the platform allows it (POSIX); harmless elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: PathLike) -> dict[str, np.ndarray]:
    """Read a checkpoint written by :func:`save` (or ``numpy.savez``): ``{name: ndarray}``.

    Pass the result to ``model.load_state_dict`` or ``opt.load_state_dict``, which check it.

    >>> import os, tempfile, numpy as np, fungrad as fg
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> fg.save(path, {"w": np.eye(2, dtype=np.float32)})
    >>> fg.load(path)["w"].dtype
    dtype('float32')
    """
    path = _path("load", path)
    if not os.path.exists(path):
        raise CheckpointError(f"load: no checkpoint file at '{path}'")
    try:
        with zipfile.ZipFile(path, "r") as zf:
            size = os.path.getsize(path)
            state: dict[str, np.ndarray] = {}
            for info in zf.infolist():
                key = _member_key(path, info, state)
                state[key] = _read_member(path, zf, info, size)
            return state
    except CheckpointError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "bject arrays" in str(e):
            raise CheckpointError(f"load: '{path}' holds an object array, which would need "
                                  "pickle; fungrad refuses to load it") from e
        raise CheckpointError(f"load: '{path}' is corrupt or truncated ({e})") from e
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, RuntimeError,
            NotImplementedError) as e:
        raise CheckpointError(f"load: '{path}' is not a readable checkpoint (truncated or "
                              f"corrupt: {e})") from e


def _member_key(path: str, info: zipfile.ZipInfo, state: dict) -> str:
    if not info.filename.endswith(".npy"):
        raise CheckpointError(f"load: '{path}' holds '{info.filename}', which is not a .npy "
                              "array; not a fungrad checkpoint")
    key = info.filename[:-4]
    if key in state:
        raise CheckpointError(f"load: '{path}' holds '{info.filename}' twice; the file is "
                              "corrupt or crafted")
    return key


def _read_member(path: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo,
                 archive_size: int) -> np.ndarray:
    """One ``.npy`` member, reading no more than its header declares (and checking its CRC)."""
    where = f"load: '{path}' member '{info.filename}'"
    _check_sizes(where, info, archive_size)
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise CheckpointError(f"{where} uses .npy format version {version}; fungrad reads "
                                  "versions 1.0 and 2.0")
        if dtype.hasobject:
            raise CheckpointError(f"load: '{path}' holds an object array, which would need "
                                  "pickle; fungrad refuses to load it")
        count = math.prod(shape)
        declared = count * dtype.itemsize
        held = info.file_size - f.tell()
        if declared != held:
            raise CheckpointError(
                f"{where}: its header declares shape {shape} of {dtype} ({declared:,} bytes) "
                f"but the member holds {held:,} bytes of data; the file is corrupt or crafted"
            )
        arr = np.empty(count, dtype)  # bounded: the member's stored size backs it (above)
        _read_into(where, f, arr)
        if f.read(1):  # also reaches the end of the member, where zipfile checks the CRC
            raise CheckpointError(f"{where} holds more data than its header declares")
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _check_sizes(where: str, info: zipfile.ZipInfo, archive_size: int) -> None:
    """Refuse a member whose sizes no honest writer produces, before reading any of it."""
    if info.compress_size > archive_size:
        raise CheckpointError(f"{where} claims {info.compress_size:,} compressed bytes in a "
                              f"file of {archive_size:,}; the file is truncated or crafted")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise CheckpointError(f"{where} is stored uncompressed but claims {info.file_size:,} "
                                  f"bytes in {info.compress_size:,}; the file is crafted")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
            raise CheckpointError(f"{where} claims {info.compress_size:,} compressed bytes "
                                  f"expand to {info.file_size:,}, more than deflate can; the "
                                  "file is crafted")
    else:
        raise CheckpointError(f"{where} uses zip compression method {info.compress_type}; "
                              "fungrad reads stored or deflated members (np.savez, "
                              "np.savez_compressed)")


def _read_into(where: str, f, arr: np.ndarray) -> None:
    raw = arr.view(np.uint8)
    pos, total = 0, raw.size
    while pos < total:
        chunk = f.read(min(_CHUNK, total - pos))
        if not chunk:
            raise CheckpointError(f"{where} ends after {pos:,} of {total:,} data bytes; the "
                                  "file is truncated or corrupt")
        raw[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
        pos += len(chunk)
