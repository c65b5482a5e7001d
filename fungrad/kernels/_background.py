"""Numba builds in a background process, so that a first call never waits for the compiler.

A Numba function compiled with ``cache=True`` costs its compile once per user (then it loads
from the per-user cache, :mod:`fungrad.kernels._cache`), but that once is seconds per function
and a first training step needs dozens. So, with an empty cache, fungrad does not compile in
the calling process: what is missing is handed to one *builder* process (``python -c`` running
:func:`main`), which compiles it into the same cache directory; meanwhile the caller runs the
NumPy form of the same computation (an eager kernel's ``*_numpy`` twin, fg.jit's step-by-step
interpreter). Once the builder has exited, the next call loads the compiled code from the disk
cache and runs it. Results mean the same either way (the twins compute the same formulas; the
last bits of a float may round differently, as eager and fg.jit already may).

The builder writes only into the directory this process uses (``cache_dir()``, which was
checked to be private to the user); it is handed that exact path and checks it again before
compiling. A builder still running when its parent exits finishes its list, so the next run
starts warm; a failed build is reported once (a warning) and the functions are then compiled
in the calling process, as without this module.

``FUNGRAD_BACKGROUND_BUILD=0`` turns this off: every first call compiles (or loads) in the
calling process and waits for it. fg.jit's ``backend="compiled"`` always waits.

>>> spec = ("fungrad.kernels._background", "compile_njit", ["fungrad.kernels.reduce",
...         "_sum_middle_kernel", [["array", "<f8", 3, "C", False]]])
>>> isinstance(requested(spec), bool)
True
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import warnings
from typing import Any, Callable, Iterable

from ._cache import cache_dir

__all__ = ["ENV_VAR", "enabled", "request", "requested", "finished", "on_disk", "NotBuilt",
           "deferrable", "with_twin", "compile_njit", "main", "running", "busy"]

#: set to ``0`` to compile in the calling process (and wait), as without a builder
ENV_VAR = "FUNGRAD_BACKGROUND_BUILD"

#: a spec: (module, function, JSON arguments): the builder calls ``module.function(*args)``
Spec = tuple


def enabled() -> bool:
    """Whether missing compiled code is built in the background (see the module doc)."""
    flag = os.environ.get(ENV_VAR, "1").strip().lower()
    return flag not in ("0", "false", "no", "off") and cache_dir() is not None


class NotBuilt(Exception):
    """A Numba function is not compiled yet (its build runs in the background): the caller
    runs its NumPy form instead."""


# -- the builder ----------------------------------------------------------------------------


class _Builder:
    """One builder process at a time; specs requested meanwhile wait for the next one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.log: Any = None
        self.running: list = []     # specs the running builder compiles
        self.queued: list = []      # specs for the next builder
        self.done: set = set()      # specs whose builder has exited (built, or failed)
        self.known: set = set()     # every spec ever requested
        self.failed = False

    def request(self, specs: Iterable[Spec]) -> None:
        with self.lock:
            for spec in specs:
                if spec not in self.known:
                    self.known.add(spec)
                    self.queued.append(spec)
            self._step()

    def poll(self) -> None:
        with self.lock:
            self._step()

    def _step(self) -> None:
        if self.proc is not None:
            code = self.proc.poll()
            if code is None:
                return
            if code != 0:
                self._report(code)
            if self.log is not None:
                self.log.close()
                self.log = None
            self.done.update(self.running)
            self.proc, self.running = None, []
        if self.queued and not self.failed:
            self.running, self.queued = self.queued, []
            try:
                self.proc = self._start(self.running)
            except OSError as e:
                self.failed = True
                warnings.warn(f"fungrad: cannot start the background Numba build ({e}); "
                              "compiling in this process instead", RuntimeWarning, stacklevel=4)
        if self.failed:  # no more builders: everything left compiles in the caller
            self.done.update(self.running + self.queued)
            self.running, self.queued = [], []

    def _start(self, specs: list) -> subprocess.Popen:
        here = os.path.dirname(os.path.abspath(__file__))
        top = os.path.dirname(os.path.dirname(here))  # the directory holding fungrad/
        env = dict(os.environ)
        env[ENV_VAR] = "0"
        env.setdefault("NUMBA_NUM_THREADS", "1")
        self.log = tempfile.TemporaryFile(mode="w+")
        code = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from fungrad.kernels._background import main; main()")
        proc = subprocess.Popen(
            [sys.executable, "-c", code, top], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=self.log, env=env, cwd=top,
            start_new_session=True)  # a Ctrl-C of the caller does not stop it mid-build
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"cache_dir": cache_dir(), "specs": specs}).encode())
        proc.stdin.close()
        return proc

    def _report(self, code: int) -> None:
        text = ""
        if self.log is not None:
            self.log.seek(0)
            lines = self.log.read().strip().splitlines()
            text = lines[-1] if lines else ""
        self.failed = True
        warnings.warn(f"fungrad: the background Numba build failed (exit {code}: {text}); "
                      "compiling in this process instead", RuntimeWarning, stacklevel=5)


_BUILDER = _Builder()


def request(specs: Iterable[Spec]) -> None:
    """Have the builder compile ``specs`` (each once per process)."""
    _BUILDER.request(tuple(_freeze(s) for s in specs))


def requested(spec: Spec) -> bool:
    """Whether ``spec`` was handed to a builder in this process."""
    return _freeze(spec) in _BUILDER.known


def finished(specs: Iterable[Spec]) -> bool:
    """Whether the builders of ``specs`` have all exited (checks without waiting)."""
    _BUILDER.poll()
    done = _BUILDER.done
    return all(_freeze(s) in done for s in specs)


def running() -> int | None:
    """The process id of the running builder (None: none runs)."""
    _BUILDER.poll()
    proc = _BUILDER.proc
    return proc.pid if proc is not None else None


def busy() -> bool:
    """Whether a builder runs or a built kernel is still loading (calls then run NumPy)."""
    return running() is not None or any(t is not None for t in list(_LOADS.values()))


def _freeze(x: Any) -> Any:
    return tuple(_freeze(v) for v in x) if isinstance(x, (list, tuple)) else x


def on_disk(cache: Any, sig: Any, codegen: Any) -> bool | None:
    """Whether Numba's disk cache ``cache`` holds an entry for ``sig`` (None: cannot tell,
    as with a Numba whose cache is laid out differently; the caller then compiles as usual)."""
    try:
        key = cache._index_key(sig, codegen)
        return key in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 (Numba's private layout: unknown means "compile here")
        return None


# -- eager kernels: a Numba dispatcher and its NumPy twin ------------------------------------

_LOCAL = threading.local()


def deferrable(dispatcher: Any) -> Any:
    """Let ``dispatcher`` (a ``numba.njit(cache=True)`` function) defer its compiles: called
    inside a :func:`with_twin` entry point with argument types that are neither compiled nor
    in the disk cache, it requests a background build and raises :class:`NotBuilt` (the entry
    point then runs its twin). Anywhere else it compiles as usual. Returns ``dispatcher``."""
    compile_here = getattr(dispatcher, "_compile_for_args", None)
    if compile_here is None:  # not a Numba dispatcher (NUMBA_DISABLE_JIT=1): nothing to defer
        return dispatcher
    module = dispatcher.py_func.__module__
    name = dispatcher.py_func.__name__

    def compile_for_args(*args: Any, **kws: Any) -> Any:
        if getattr(_LOCAL, "twin", False) and not kws and enabled():
            sig = tuple(dispatcher.typeof_pyval(a) for a in args)
            described = [_describe(t) for t in sig]
            if sig not in dispatcher.overloads and None not in described:
                spec = _freeze(("fungrad.kernels._background", "compile_njit",
                                [module, name, described]))
                if not finished([spec]):
                    if requested(spec) or on_disk(dispatcher._cache, sig,
                                                  dispatcher.targetctx.codegen()) is False:
                        request([spec])
                        raise NotBuilt(f"{module}.{name}")
                elif not _loaded(spec, lambda: dispatcher.compile(sig)):
                    raise NotBuilt(f"{module}.{name}")  # loading from the disk cache
        return compile_here(*args, **kws)

    dispatcher._compile_for_args = compile_for_args  # the C dispatcher looks it up per miss
    return dispatcher


_LOADS: dict = {}  # spec -> the thread loading it from the disk cache (None: loaded)


def _loaded(spec: Spec, load: Callable[[], Any]) -> bool:
    """Whether the function ``spec`` built is loaded; the first ask starts ``load`` in a thread
    (loading a few kernels from disk takes a second on a busy machine: calls go on)."""
    with _BUILDER.lock:
        thread = _LOADS.get(spec, False)
        if thread is False:
            def run() -> None:
                try:
                    load()
                except Exception:  # noqa: BLE001 (compile_for_args then compiles it here)
                    pass
                finally:
                    _LOADS[spec] = None
            thread = _LOADS[spec] = threading.Thread(target=run, daemon=True,
                                                     name="fungrad-kernel-load")
            thread.start()
    return thread is None


def with_twin(twin: str) -> Callable[[Callable], Callable]:
    """Decorator of a kernel entry point: while the Numba kernels it calls are being built in
    the background (:func:`deferrable`), calls run ``twin`` instead (same arguments, same
    results): a name in the entry's module, dotted through its attributes. An entry point
    calls one deferrable kernel, last: nothing it did before must be done twice."""
    def deco(entry: Callable) -> Callable:
        def run(*args: Any, **kwargs: Any) -> Any:
            if getattr(_LOCAL, "twin", False):
                return entry(*args, **kwargs)
            _LOCAL.twin = True
            try:
                return entry(*args, **kwargs)
            except NotBuilt:
                obj: Any = sys.modules[entry.__module__]
                for part in twin.split("."):
                    obj = getattr(obj, part)
                return obj(*args, **kwargs)
            finally:
                _LOCAL.twin = False

        run.__name__, run.__qualname__ = entry.__name__, entry.__qualname__
        run.__doc__, run.__module__ = entry.__doc__, entry.__module__
        run.__wrapped__ = entry  # type: ignore[attr-defined]
        return run
    return deco


def _describe(t: Any) -> list | str | None:
    """A Numba argument type as JSON the builder can rebuild (None: not one of these)."""
    from numba.core import types  # noqa: PLC0415

    if isinstance(t, types.Array) and isinstance(t.dtype, (types.Number, types.Boolean)):
        import numpy as np  # noqa: PLC0415

        return ["array", np.dtype(str(t.dtype) if str(t.dtype) != "bool" else "bool").str,
                t.ndim, t.layout, not t.mutable]
    if isinstance(t, (types.Integer, types.Float, types.Boolean)):
        return str(t)
    return None


def _rebuild(d: Any) -> Any:
    import numpy as np  # noqa: PLC0415
    from numba.core import types  # noqa: PLC0415
    from numba.np.numpy_support import from_dtype  # noqa: PLC0415

    if isinstance(d, list):
        _, dtype, ndim, layout, readonly = d
        return types.Array(from_dtype(np.dtype(dtype)), ndim, layout, readonly=readonly)
    return from_dtype(np.dtype(d))


def compile_njit(module: str, name: str, described: list) -> None:
    """(In the builder) compile ``module.name`` for the described argument types."""
    dispatcher = getattr(importlib.import_module(module), name)
    dispatcher.compile(tuple(_rebuild(d) for d in described))


# -- the builder process ---------------------------------------------------------------------


def main() -> None:
    """The builder: read ``{"cache_dir", "specs"}`` from stdin and compile each spec into that
    directory (only if it is private to this user). Exit 1 if any spec failed."""
    from . import _cache  # noqa: PLC0415

    job = json.loads(sys.stdin.read())
    reason = _cache.use_directory(job["cache_dir"])
    if reason is not None:
        print(f"not building into {job['cache_dir']}: {reason}", file=sys.stderr)
        sys.exit(2)
    failed = 0
    for module, function, args in job["specs"]:
        try:
            getattr(importlib.import_module(module), function)(*args)
        except Exception as e:  # noqa: BLE001 (each spec on its own; the parent compiles it)
            failed += 1
            print(f"{module}.{function}{tuple(args)}: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1 if failed else 0)
