"""``fg.jit``: trace a function once per input signature, then run the compiled program.

>>> import numpy as np, fungrad as fg
>>> from fungrad.jit import jit
>>> step = jit(fg.value_and_grad(lambda w, x: fg.sum(fg.tanh(x @ w))))
>>> loss, g = step(np.ones((3, 2)), np.ones((4, 3)))
>>> g.shape, step.cache_info().misses
((3, 2), 1)
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict, namedtuple
from typing import TYPE_CHECKING, Any, Callable, ParamSpec, Sequence, TypeVar, overload

import numpy as np

from .. import tape
from ..tensor import Tensor
from ..tree import _sort_key, unflatten
from .interpret import Committer, Interpreter
from .program import Program, Stale
from .optimizers import EagerCall
from .tracer import trace

__all__ = ["jit", "Jitted", "CacheInfo", "Timing"]

if TYPE_CHECKING:  # jit's annotations: a jitted function is typed as the function it wraps
    from ..typing import JittedFunction
_P = ParamSpec("_P")
_R = TypeVar("_R")

CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "maxsize", "currsize"])
CacheInfo.__doc__ = "Statistics of a jitted function's program cache, as functools.lru_cache's."

Timing = namedtuple("Timing", ["ops", "trace_s", "compile_s", "first_run_s"])
Timing.__doc__ = """Where a program's first call went: ``ops`` steps traced; seconds tracing
``fn``, compiling the program (lowering, fusion, buffer plan, and compiling or loading its
Numba kernels), and running it the first time (None until it ran)."""

_SCALARS = {float: float, int: int, bool: bool, complex: complex}


@overload
def jit(fn: Callable[_P, _R], *, static_argnums: int | Sequence[int] = (),
        donate_argnums: int | Sequence[int] = (), maxsize: int = 64,
        backend: str = "auto") -> JittedFunction[_P, _R]: ...
@overload
def jit(fn: None = None, *, static_argnums: int | Sequence[int] = (),
        donate_argnums: int | Sequence[int] = (), maxsize: int = 64,
        backend: str = "auto") -> Callable[[Callable[_P, _R]], JittedFunction[_P, _R]]: ...


def jit(fn: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
        donate_argnums: int | Sequence[int] = (), maxsize: int = 64,
        backend: str = "auto") -> Any:
    """Compile ``fn``: trace it once per input signature into a program, then run that.

    ``fn`` takes pytrees (nested dicts, lists, tuples) of ndarrays, Tensors and Python numbers
    and returns a pytree; it may use every op and transformation (``fg.value_and_grad``...),
    Modules and optimizers it closes over, ``loss.backward()`` and ``optimizer.step()``. The
    first call with a signature (tree structure, shapes, dtypes, Python number types, static
    arguments) runs ``fn``'s Python once, on traced arrays, recording a program; later calls
    run the program. Python numbers are traced (a new value does not retrace) unless their
    position is in ``static_argnums``. Updates to parameters, ``.grad`` and optimizer state
    are committed only when the whole step succeeded.

    ``donate_argnums``: arguments whose arrays the program may overwrite (reuse for outputs).
    ``backend``: ``"compiled"`` (Numba), ``"python"`` (each step's NumPy function in turn) or
    ``"auto"`` (compiled, falling back to Python if Numba is unavailable).

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.jit import jit
    >>> @jit
    ... def update(w, x, lr):
    ...     loss, g = fg.value_and_grad(lambda w: fg.mean((x @ w) ** 2))(w)
    ...     return loss, w - lr * g
    >>> loss, w = update(np.ones(2), np.eye(2), 0.1)
    >>> float(loss), w
    (1.0, array([0.9, 0.9]))
    """
    if fn is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 donate_argnums=donate_argnums, maxsize=maxsize, backend=backend)
    return Jitted(fn, static_argnums=static_argnums, donate_argnums=donate_argnums,
                  maxsize=maxsize, backend=backend)


def _nums(nums, name: str) -> tuple[int, ...]:
    nums = (nums,) if isinstance(nums, int) else tuple(nums)
    for n in nums:
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"fg.jit: {name} must be ints (argument positions), got {n!r}")
    return nums


class _Variant:
    """One traced program of a signature, with what runs it."""

    __slots__ = ("program", "run", "guards", "commit", "timing")

    def __init__(self, program: Program, run: Callable, timing: Timing) -> None:
        self.program = program
        self.run = run
        self.guards = program.guards
        self.commit = Committer(program.effects, getattr(run, "static_in_place", frozenset()))
        self.timing = timing

    def valid(self) -> bool:
        for g in self.guards:
            if not g.holds():
                return False
        return True


class Jitted:
    """A jitted function: call it like ``fn``; ``cache_info()``, ``cache_clear()``,
    ``lower(*args)`` (the traced program, for inspection)."""

    def __init__(self, fn: Callable, *, static_argnums=(), donate_argnums=(), maxsize: int = 64,
                 backend: str = "auto") -> None:
        if not callable(fn):
            raise TypeError(f"fg.jit: expected a function, got {type(fn).__name__}")
        if maxsize < 8:
            raise ValueError(f"fg.jit: maxsize must be at least 8, got {maxsize}")
        if backend not in ("auto", "compiled", "python"):
            raise ValueError(f"fg.jit: backend must be 'auto', 'compiled' or 'python', "
                             f"got {backend!r}")
        self.fn = fn
        self.static_argnums = _nums(static_argnums, "static_argnums")
        self.donate_argnums = _nums(donate_argnums, "donate_argnums")
        overlap = set(self.static_argnums) & set(self.donate_argnums)
        if overlap:
            raise ValueError(f"fg.jit: argument {min(overlap)} is both static and donated")
        self.maxsize = maxsize
        self.backend = backend
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.RLock()
        self._hits = 0
        self._misses = 0
        functools.update_wrapper(self, fn)

    # -- the cache -----------------------------------------------------------------------------

    def cache_info(self) -> CacheInfo:
        """``(hits, misses, maxsize, currsize)``: misses count traces, currsize programs kept."""
        with self._lock:
            size = sum(len(v) for v in self._cache.values())
            return CacheInfo(self._hits, self._misses, self.maxsize, size)

    def timings(self) -> list[Timing]:
        """How long each kept program took to trace, compile and first run, newest first.

        >>> import numpy as np, fungrad as fg
        >>> from fungrad.jit import jit
        >>> f = jit(lambda x: fg.tanh(x) * 2.0)
        >>> _ = f(np.zeros(3))
        >>> [(t.ops, t.first_run_s is not None) for t in f.timings()]
        [(2, True)]
        """
        with self._lock:
            variants = [v for vs in reversed(self._cache.values()) for v in vs]
        return [v.timing for v in variants]

    def cache_clear(self) -> None:
        """Forget every traced program (the next call traces again)."""
        with self._lock:
            self._cache.clear()
            self._hits = self._misses = 0

    # -- calling -------------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        st = tape.state
        if st.hook is not None or st.depth > 0:
            # inside another trace (fg.jit or a transformation): run inline, it is recorded
            return self.fn(*args, **kwargs)
        key, leaves, inline = self._signature(args, kwargs)
        if inline:
            return self.fn(*args, **kwargs)
        variant = self._lookup(key)
        if variant is not None:
            try:
                return self._run(variant, leaves)
            except Stale:
                pass
        try:
            variant = self._trace(key, args, kwargs, leaves)
        except EagerCall:  # e.g. an optimizer's first step creates its state: run it as is
            with self._lock:
                self._misses += 1
            return self.fn(*args, **kwargs)
        return self._run(variant, leaves)

    def _lookup(self, key):
        with self._lock:
            variants = self._cache.get(key)
            if variants is None:
                return None
            for v in variants:
                if v.valid():
                    self._cache.move_to_end(key)
                    self._hits += 1
                    return v
        return None

    def _trace(self, key, args, kwargs, leaves) -> _Variant:
        n = len(args)
        static = {i % n: args[i] for i in self.static_argnums if -n <= i < n}
        t0 = time.perf_counter()
        program, _ = trace(self.fn, args, kwargs, static, getattr(self.fn, "__name__", None))
        t1 = time.perf_counter()
        run = self._executable(program, self._donated(args))
        timing = Timing(len(program.steps), t1 - t0, time.perf_counter() - t1, None)
        variant = _Variant(program, run, timing)
        with self._lock:
            self._misses += 1
            variants = self._cache.setdefault(key, [])
            variants.insert(0, variant)
            self._cache.move_to_end(key)
            while sum(len(v) for v in self._cache.values()) > self.maxsize:
                oldest = next(iter(self._cache))
                if oldest == key and len(self._cache[oldest]) == 1:
                    break
                if len(self._cache[oldest]) > 1 and oldest == key:
                    self._cache[oldest].pop()
                else:
                    del self._cache[oldest]
        return variant

    def _donated(self, args: tuple) -> frozenset:
        """Positions, among the dynamic leaves, of the leaves of donated arguments."""
        if not self.donate_argnums:
            return frozenset()
        n = len(args)
        donated = {i % n for i in self.donate_argnums if -n <= i < n}
        static = {i % n for i in self.static_argnums if -n <= i < n}
        out, k = set(), 0
        for i, a in enumerate(args):
            if i in static:
                continue
            leaves: list = []
            _sig(a, leaves, [], [False])
            if i in donated:
                out.update(range(k, k + len(leaves)))
            k += len(leaves)
        return frozenset(out)

    def _executable(self, program: Program, donated: frozenset = frozenset()) -> Callable:
        if self.backend != "python":
            try:
                from .compiled import compile_program  # noqa: PLC0415 (loads Numba)
            except ImportError:
                if self.backend == "compiled":
                    raise
            else:
                return compile_program(program, donated)
        return _PythonRun(program)

    def _run(self, variant: _Variant, leaves: list):
        program = variant.program
        if variant.timing.first_run_s is None:
            t0 = time.perf_counter()
            outs, effs = variant.run(leaves)
            variant.timing = variant.timing._replace(first_run_s=time.perf_counter() - t0)
        else:
            outs, effs = variant.run(leaves)
        variant.commit(effs, leaves, fresh=True)
        return unflatten(program.out_spec, [_output(x, kind) for x, kind in
                                            zip(outs, program.out_kinds)])

    def lower(self, *args, **kwargs) -> Program:
        """Trace ``fn`` for these arguments and return the program (nothing is run or cached).

        >>> import numpy as np, fungrad as fg
        >>> from fungrad.jit import jit
        >>> print(jit(lambda x: fg.exp(x) + 1).lower(np.zeros(2)).steps[0])
        %1:float64[2] = exp(%0:float64[2])
        """
        static = {i % len(args): args[i] for i in self.static_argnums}
        return trace(self.fn, args, kwargs, static)[0]

    # -- signatures ----------------------------------------------------------------------------

    def _signature(self, args: tuple, kwargs: dict):
        leaves: list = []
        parts: list = []
        flags = [False]
        static = self.static_argnums
        n = len(args)
        statics = []
        for i, a in enumerate(args):
            if static and (i in static or i - n in static):
                statics.append((i, _static_key(a, i)))
                continue
            _sig(a, leaves, parts, flags)
        if kwargs:
            for k in sorted(kwargs, key=_sort_key):
                parts.append(("kw", k))
                _sig(kwargs[k], leaves, parts, flags)
        return (n, tuple(parts), tuple(statics)), leaves, flags[0]


class _PythonRun:
    """Run a program with :class:`Interpreter`, checking captured state first."""

    def __init__(self, program: Program) -> None:
        self.interp = Interpreter(program)
        self.checks = [(i, var) for i, (var, b) in enumerate(program.inputs)
                       if b.kind in ("data", "grad", "arg_grad")]

    def __call__(self, leaves: list):
        p = self.interp.program
        for i, var in self.checks:
            try:
                arr = p.inputs[i][1].read(leaves)
            except AttributeError:
                raise Stale() from None
            if arr.shape != var.shape or arr.dtype != var.dtype:
                raise Stale()
        outs, effs = self.interp(leaves)
        return _own(outs, leaves), effs


def _own(outs: list, leaves: list) -> list:
    """Outputs the caller may keep and modify: copy any array that is a view, read-only, an
    argument, or returned twice."""
    seen: set = set()
    avoid = {id(x) for x in leaves}
    result = []
    for x in outs:
        if isinstance(x, np.ndarray) and (x.base is not None or not x.flags.writeable
                                          or id(x) in seen or id(x) in avoid):
            x = x.copy()
        seen.add(id(x))
        result.append(x)
    return result


def _static_key(value, i: int):
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"fg.jit: static argument {i} must be hashable (it keys the program "
                        f"cache), got {type(value).__name__}; pass a tuple instead of a list, "
                        "or make it a traced argument") from None
    return (type(value), value)


def _sig(x, leaves: list, parts: list, flags: list) -> None:
    """Append ``x``'s dynamic leaves (in :func:`fungrad.tree.flatten` order) and signature."""
    t = type(x)
    if t is np.ndarray:
        leaves.append(x)
        parts.append((x.shape, x.dtype))
        return
    s = _SCALARS.get(t)
    if s is not None:
        leaves.append(x)
        parts.append(s)
        return
    if isinstance(x, Tensor):
        d = x._data
        leaves.append(x)
        if x.requires_grad and (x._op is not None or x._parent is not None):
            flags[0] = True  # part of an outer graph: gradients must flow through fn eagerly
        parts.append(("T", d.shape, d.dtype, x.requires_grad, x._grad is None))
        return
    if isinstance(x, dict):
        keys = sorted(x, key=_sort_key)
        parts.append(("d", tuple(keys)))
        for k in keys:
            _sig(x[k], leaves, parts, flags)
        return
    if isinstance(x, (list, tuple)):
        parts.append((t, len(x)))
        for v in x:
            _sig(v, leaves, parts, flags)
        return
    if isinstance(x, np.generic):
        leaves.append(x)
        parts.append(("s", x.dtype))
        return
    leaves.append(x)
    try:
        parts.append(("v", t, x, hash(x)))
    except TypeError:
        raise TypeError(f"fg.jit: an argument leaf of type {t.__name__} is neither an array, "
                        "a Tensor nor a number, and is not hashable; pass it through "
                        "static_argnums as a hashable value, or close over it") from None


def _output(x, kind: str):
    if kind == "tensor":
        arr = np.asarray(x)
        return Tensor._make(arr if arr.base is None else arr.copy(), None)
    if kind == "array":
        if isinstance(x, np.ndarray):
            return x
        return x if type(x) in _SCALARS else np.asarray(x)
    return x

