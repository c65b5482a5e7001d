"""Checkpoints without pickle: ``fg.save(path, model_or_state)`` and ``fg.load(path)``.

The file is a NumPy ``.npz`` archive (one ``name.npy`` member per array, written with
``allow_pickle=False``), so ``numpy.load`` reads it too. Saving is atomic: the archive is
written to a temporary file in the same folder, flushed and fsynced, then renamed over
``path``; if anything fails, the temporary file is removed and an existing ``path`` is left as
it was. Loading checks every member and refuses object arrays; a missing, truncated or corrupt
file raises :class:`~fungrad.errors.CheckpointError` naming the file.

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

import os
import tempfile
import zipfile
import zlib
from typing import Any, Mapping

import numpy as np

from .errors import CheckpointError
from .tensor import Tensor

__all__ = ["save", "load"]

PathLike = str | os.PathLike


def _arrays(obj: Any) -> dict[str, np.ndarray]:
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not isinstance(state, Mapping):
        raise TypeError(f"save: expected a Module or a mapping of names to arrays, got "
                        f"{type(obj).__name__}")
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
    """Write a module's ``state_dict()`` (or a mapping of names to arrays) to ``path``, atomically.

    The file is written exactly at ``path`` (no extension is added; ``.npz`` is customary).
    """
    arrays = _arrays(obj)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                for key, arr in arrays.items():
                    with zf.open(key + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _file_mode(path: str) -> int:
    """The mode of the file being replaced, or what a new file would get (mkstemp uses 0o600)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


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

    Pass the result to ``model.load_state_dict``, which checks it against the model.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"load: no checkpoint file at '{path}'")
    try:
        with zipfile.ZipFile(path, "r") as zf:
            bad = zf.testzip()  # reads every member and checks its CRC
            if bad is not None:
                raise CheckpointError(f"load: '{path}' is corrupt (member '{bad}' fails its "
                                      "checksum)")
            state = {}
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise CheckpointError(f"load: '{path}' holds '{info.filename}', which is "
                                          "not a .npy array; not a fungrad checkpoint")
                with zf.open(info) as member:
                    arr = np.lib.format.read_array(member, allow_pickle=False)
                state[info.filename[:-4]] = arr
            return state
    except CheckpointError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "bject arrays" in str(e):
            raise CheckpointError(f"load: '{path}' holds an object array, which would need "
                                  "pickle; fungrad refuses to load it") from e
        raise CheckpointError(f"load: '{path}' is corrupt or truncated ({e})") from e
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"load: '{path}' is not a readable checkpoint (truncated or "
                              f"corrupt: {e})") from e
