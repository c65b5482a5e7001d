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
import gc
import inspect
import logging
import sys
import sysconfig
import threading
import time
import warnings
from collections import OrderedDict, namedtuple
from typing import TYPE_CHECKING, Any, Callable, ParamSpec, Sequence, TypeVar, overload

import numpy as np

from .. import recording
from ..errors import FungradError, JitFallbackWarning, JitInternalError, TracingError
from ..tensor import Tensor
from ..tree import _sort_key, unflatten
from .interpret import Committer, Interpreter
from .program import Program, Stale, Var, var_refs
from .optimizers import EagerCall, no_deferral, settle_deferred
from ._on_tape import call_on_tape, split, tape_op
from .tracer import is_dynamic_leaf, trace

#: every trace is reported here at INFO (``logging.getLogger("fungrad.jit")``)
logger = logging.getLogger("fungrad.jit")

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
            raise TracingError(f"fg.jit: {name} must be ints (argument positions), got {n!r}")
    return nums


class _Variant:
    """One traced program of a signature, with what runs it (``run``: donating the donated
    arguments' arrays; ``plain``: donating nothing, for calls where donation is unsafe)."""

    __slots__ = ("program", "run", "plain", "guards", "commit", "timing", "donated", "eager",
                 "tape", "warming")

    def __init__(self, program: Program | None, run: Callable | None, timing: Timing,
                 donated: frozenset = frozenset(), eager: str = "") -> None:
        self.program = program
        self.run = run
        self.plain = run if not donated else None
        self.guards = program.guards if program is not None else []
        self.commit = Committer(program.effects if program is not None else [],
                                getattr(run, "static_in_place", frozenset()))
        self.timing = timing
        self.donated = donated
        self.eager = eager  # why this signature runs ``fn`` eagerly ("" when it does not)
        self.tape: _Tape | None = None  # outputs that join the eager tape (see _on_tape)
        #: ``run`` is a ``compiled.Warming``: NumPy steps until Numba's background build is done
        self.warming = getattr(run, "warming", False)

    def settle(self, name: str) -> None:
        """Switch to the compiled executable once the background build has finished."""
        ready = getattr(self.run, "ready", None)
        if ready is None:  # replaced meanwhile (a failed compiled run falls back to Python)
            self.warming = False
            return
        exe = ready()
        if exe is None:
            return
        if self.plain is self.run:
            self.plain = exe
        self.run = exe
        self.commit = Committer(self.program.effects if self.program is not None else [],
                                exe.static_in_place)
        self.warming = False
        logger.info("fg.jit: %s runs its compiled program (Numba's background build is done)",
                    name)

    def failed_guard(self) -> str | None:
        """What no longer holds of the state the program was traced under (None: all holds)."""
        for g in self.guards:
            if not g.holds():
                return g.what
        return None


_cold_notice = [False]  # the "still compiling" notice is printed once per process
#: after this many seconds of one trace and compile, say on stderr what is being compiled
COLD_NOTICE_S = 2.0


class Jitted:
    """A jitted function: call it like ``fn``; ``cache_info()``, ``cache_clear()``,
    ``lower(*args)`` (the traced program, for inspection)."""

    def __init__(self, fn: Callable, *, static_argnums=(), donate_argnums=(), maxsize: int = 64,
                 backend: str = "auto") -> None:
        if not callable(fn):
            raise TracingError(f"fg.jit: expected a function, got {type(fn).__name__}")
        if not isinstance(maxsize, int) or maxsize < 8:
            raise ValueError(f"fg.jit: maxsize must be an int of at least 8, got {maxsize!r}")
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
        self._last_key: Any = None  # the signature traced last (to say what changed)
        self._warned: set = set()
        self._name = getattr(fn, "__name__", None) or type(fn).__name__
        #: what the trace and compile of this function does now (said by the notice)
        self._status = [""]
        # the name, docstring and __wrapped__ of fn, but not its __dict__: a function wrapped
        # with functools.wraps around another jitted function carries that one's attributes
        # (its fn, its cache), which must not replace this one's
        functools.update_wrapper(self, fn, updated=())

    # -- the cache -----------------------------------------------------------------------------

    def cache_info(self) -> CacheInfo:
        """``(hits, misses, maxsize, currsize)``: one count per call — a hit ran a kept
        program, a miss traced (or ran eagerly); currsize is how many programs are kept."""
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
        return [v.timing for v in variants if v.program is not None]

    def cache_clear(self) -> None:
        """Forget every traced program (the next call traces again)."""
        with self._lock:
            self._cache.clear()
            self._hits = self._misses = 0
            self._last_key = None

    # -- calling -------------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        st = recording.thread
        if st.hook is not None or st.depth > 0 or st.vmap is not None:
            # inside another trace (fg.jit, a transformation, fg.vmap): run inline, the
            # enclosing trace records (or batches) every op of fn
            return self.fn(*args, **kwargs)
        key, leaves, inline = self._signature(args, kwargs)
        if inline:
            return self.fn(*args, **kwargs)
        try:
            return self._call(key, args, kwargs, leaves)
        finally:
            leaves.clear()  # keep no reference to this call's arguments

    def _call(self, key, args: tuple, kwargs: dict, leaves: list) -> Any:
        variants, reason = self._lookup(key)
        for variant in variants:
            if variant.eager:
                if variant.eager == "tape" and not recording.thread.enabled:
                    continue  # recording is off: the compiled program serves this call
                self._count(hit=True)
                return self.fn(*args, **kwargs)
            try:
                out = self._run(variant, leaves)
            except Stale as e:
                reason = reason or self._stale_reason(variant, leaves, e)
                continue
            self._count(hit=True)
            return out
        return self._trace_and_run(key, args, kwargs, leaves, reason or self._why(key))

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    def _lookup(self, key) -> tuple[list, str | None]:
        """The kept variants of ``key`` whose guards hold, most recent first, and what failed
        of the others' guards (for the retrace log)."""
        with self._lock:
            variants = self._cache.get(key)
            if variants is None:
                return [], None
            self._cache.move_to_end(key)
            variants = list(variants)
        ok, reason = [], None
        for v in variants:
            failed = v.failed_guard()
            if failed is None:
                ok.append(v)
            elif reason is None:
                reason = f"{failed} changed"
        return ok, reason

    def _variant_for(self, args: tuple, kwargs: dict) -> tuple[_Variant | None, list]:
        """The kept variant a call with these arguments would run first (None if none), and
        the call's dynamic leaves (for :func:`fungrad.jit.profile.profile`)."""
        key, leaves, _ = self._signature(args, kwargs)
        variants, _ = self._lookup(key)
        return (variants[0] if variants else None), leaves

    def _trace_and_run(self, key, args: tuple, kwargs: dict, leaves: list, reason: str) -> Any:
        self._count(hit=False)
        try:
            variant = self._trace(key, args, kwargs, leaves, reason)
        except EagerCall as e:  # an optimizer's first step creates its state: run fn as is
            logger.info("fg.jit: %s runs eagerly on this call (%s); the next call traces",
                        self._name, e)
            return self.fn(*args, **kwargs)
        except FungradError:
            raise
        except Exception as e:  # noqa: BLE001 (sorted out below: the user's error or ours)
            return self._trace_failed(key, args, kwargs, e)
        if variant.eager:
            return self.fn(*args, **kwargs)
        try:
            return self._run(variant, leaves)
        except Stale as e:
            raise JitInternalError(
                f"fg.jit({self._name}): a program traced for this call's arguments does not "
                f"accept them ({self._stale_reason(variant, leaves, e) or 'stale state'}); "
                "this is a defect of fg.jit, please report it") from None

    def _trace_failed(self, key, args: tuple, kwargs: dict, error: Exception) -> Any:
        """Tracing raised a built-in exception: if ``fn`` raises it eagerly too, it is the
        user's (eager's exception propagates); if eager succeeds, the tracer failed — this
        signature then runs eagerly, with one warning."""
        result = self.fn(*args, **kwargs)
        warnings.warn(
            f"fg.jit({self._name}): tracing failed inside fg.jit ({type(error).__name__}: "
            f"{error}) where eager execution succeeds; calls with this signature run eagerly "
            "(results are eager's). Please report this defect.", JitFallbackWarning,
            stacklevel=4)
        timing = Timing(0, 0.0, 0.0, None)
        self._store(key, _Variant(None, None, timing, eager="tracer failed"))
        return result

    def _why(self, key) -> str:
        """Why a call traces: its first, or what differs from the closest signature kept
        (the most recent of those with the fewest differences; the one traced last if none
        is kept)."""
        if self._last_key is None:
            return "first call"
        names = self._arg_names(key[0])
        kept = list(reversed(self._cache)) or [self._last_key]
        changes = min((_differences(k, key, names) for k in kept), key=len)
        if not changes:
            return "a new signature"
        more = f" (and {len(changes) - 3} more changes)" if len(changes) > 3 else ""
        return "; ".join(changes[:3]) + more

    def _arg_names(self, n: int) -> list[str]:
        try:
            params = list(inspect.signature(self.fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        names = []
        for i in range(n):
            if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY,
                                                      params[i].POSITIONAL_OR_KEYWORD):
                names.append(f"argument {i} ({params[i].name})")
            else:
                names.append(f"argument {i}")
        return names

    def _stale_reason(self, variant: _Variant, leaves: list, error: Exception) -> str | None:
        """What about the captured state made ``variant`` refuse this call."""
        if error.args:
            return str(error.args[0])
        program = variant.program
        if program is None:
            return None
        for var, b in program.inputs:
            if b.kind == "arg":
                continue
            try:
                arr = b.read(leaves)
            except Exception:  # noqa: BLE001 (the object is gone or changed beyond recognition)
                return f"closed-over state {b!r} is no longer there"
            shape, dtype = np.shape(arr), getattr(arr, "dtype", None)
            if tuple(shape) != tuple(var.shape):
                return f"closed-over {b!r}: shape {tuple(var.shape)} -> {tuple(shape)}"
            if dtype is not None and dtype != var.dtype and var.weak is None:
                return f"closed-over {b!r}: dtype {var.dtype} -> {dtype}"
        return "closed-over state changed"

    def _trace(self, key, args, kwargs, leaves, reason: str = "first call") -> _Variant:
        n = len(args)
        static = {i % n: args[i] for i in self.static_argnums if -n <= i < n}
        self._status[0] = "tracing it"
        notice = threading.Timer(COLD_NOTICE_S, self._cold_notice)
        notice.daemon = True
        notice.start()
        # Tracing and compiling allocate objects per op and free few until the end: the cyclic
        # collector would rescan the growing heap again and again (time growing faster than
        # the program). It is off until the program is compiled, then runs as usual.
        collecting = gc.isenabled()
        gc.disable()
        try:
            t0 = time.perf_counter()
            program, tracer = _trace_settled(self.fn, args, kwargs, static, self._name,
                                             with_vjp=recording.thread.enabled)
            t1 = time.perf_counter()
            tape_split = None
            if program.tape_outputs and not tracer.backward_ran and tracer.vjp is not None:
                tape_split = split(program, tracer.vjp)
            if program.tape_outputs and not tracer.backward_ran and tape_split is None:
                timing = Timing(len(program.steps), t1 - t0, 0.0, None)
                variant = _Variant(program, None, timing, eager="tape")
                self._warn_tape()
            elif tape_split is not None:
                forward, backward, bindings = tape_split
                run = self._executable(forward)
                back = self._executable(backward)
                timing = Timing(len(program.steps), t1 - t0, time.perf_counter() - t1, None)
                variant = _Variant(forward, run, timing)
                variant.tape = _Tape(back, bindings, tracer.vjp.positions, len(program.outputs),
                                     program.out_spec, program.out_kinds,
                                     tape_op(self._name, len(bindings),
                                             len(tracer.vjp.positions)))
            else:
                donated = self._donated(args, program)
                run = self._executable(program, donated)
                timing = Timing(len(program.steps), t1 - t0, time.perf_counter() - t1, None)
                variant = _Variant(program, run, timing, donated)
        finally:
            notice.cancel()
            if collecting:
                _enable_gc_aged()
        logger.info("fg.jit: traced %s (%s) in %.3f s, compiled in %.3f s, %d steps",
                    self._name, reason, timing.trace_s, timing.compile_s, timing.ops)
        if variant.warming:
            logger.info("fg.jit: %s runs step by step with NumPy while Numba builds its kernels "
                        "in a background process", self._name)
        self._store(key, variant)
        return variant

    def _cold_notice(self) -> None:
        if _cold_notice[0]:
            return
        _cold_notice[0] = True
        print(f"fg.jit: compiling {self._name}, still at it after {COLD_NOTICE_S:g} s "
              f"({self._status[0]})...", file=sys.stderr, flush=True)

    def _warn_tape(self) -> None:
        if "tape" in self._warned:
            return
        self._warned.add("tape")
        warnings.warn(
            f"fg.jit({self._name}): the function returns a Tensor recorded for backward and "
            "runs no backward itself; so that .backward() on the result reaches the "
            "parameters, such calls run eagerly while recording is on. Call backward (and "
            "the optimizer) inside the jitted function to compile the whole step, or call it "
            "under fg.no_grad() to compile a forward pass.", JitFallbackWarning, stacklevel=5)

    def _store(self, key, variant: _Variant) -> None:
        with self._lock:
            self._last_key = key
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

    def _donated(self, args: tuple, program: Program | None = None) -> frozenset:
        """Positions, among the dynamic leaves, of the leaves of donated arguments — except
        those the program returns (or returns a view of): their arrays are outputs."""
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
        if program is not None:
            out -= _returned_inputs(program)
        return frozenset(out)

    def _executable(self, program: Program, donated: frozenset = frozenset()) -> Callable:
        if self.backend != "python":
            try:
                from .compiled import compile_program  # noqa: PLC0415 (loads Numba)
            except ImportError:
                if self.backend == "compiled":
                    raise
            else:
                fallback = _PythonRun(program) if self.backend == "auto" else None
                try:
                    return compile_program(program, donated, fallback, self._status)
                except FungradError:
                    raise
                except Exception as e:  # noqa: BLE001 (a compiler defect: the answer stays right)
                    warnings.warn(
                        f"fg.jit({self._name}): compiling the traced program failed "
                        f"({type(e).__name__}: {e}); it runs step by step with NumPy instead "
                        "(same results, slower). Please report this defect.",
                        JitFallbackWarning, stacklevel=6)
        return _PythonRun(program)

    def _run(self, variant: _Variant, leaves: list):
        if variant.warming:
            variant.settle(self._name)
        program = variant.program
        run = variant.run
        if variant.donated and not _donation_safe(leaves, variant.donated):
            if variant.plain is None:
                variant.plain = self._executable(program)
            run = variant.plain
        if not isinstance(run, _PythonRun) and _ints_beyond_float64(leaves):
            run = _PythonRun(program)  # the compiled registers are float64: NumPy keeps them exact
        if variant.timing.first_run_s is None:
            t0 = time.perf_counter()
            outs, effs = self._execute(variant, run, leaves)
            variant.timing = variant.timing._replace(first_run_s=time.perf_counter() - t0)
        else:
            outs, effs = self._execute(variant, run, leaves)
        variant.commit(effs, leaves, fresh=True)
        if variant.tape is not None:
            return variant.tape.outputs(outs, leaves)
        return unflatten(program.out_spec, [_output(x, kind) for x, kind in
                                            zip(outs, program.out_kinds)])

    def _execute(self, variant: _Variant, run: Callable, leaves: list):
        try:
            return run(leaves)
        except (Stale, FungradError):
            raise
        except Exception as e:  # noqa: BLE001 (the program's or the runner's? see below)
            if isinstance(run, _PythonRun):
                raise  # NumPy's own error on these values, as eager raises it
            # the compiled program raised a built-in exception: the reference executor
            # decides whether it is the program's (it raises too) or the runner's defect
            plain = _PythonRun(variant.program)
            result = plain(leaves)
            warnings.warn(
                f"fg.jit({self._name}): the compiled program failed ({type(e).__name__}: "
                f"{e}) where the step-by-step run succeeds; it runs step by step from now on. "
                "Please report this defect.", JitFallbackWarning, stacklevel=6)
            variant.run = variant.plain = plain
            variant.donated = frozenset()
            return result

    def lower(self, *args, **kwargs) -> Program:
        """Trace ``fn`` for these arguments and return the program (nothing is run or cached).

        >>> import numpy as np, fungrad as fg
        >>> from fungrad.jit import jit
        >>> print(jit(lambda x: fg.exp(x) + 1).lower(np.zeros(2)).steps[0])
        %1:float64[2] = exp(%0:float64[2])
        """
        static = {i % len(args): args[i] for i in self.static_argnums}
        return _trace_settled(self.fn, args, kwargs, static)[0]

    # -- signatures ----------------------------------------------------------------------------

    def _signature(self, args: tuple, kwargs: dict):
        """``(key, leaves, inline)``: the cache key — per argument, the structure, shapes and
        dtypes of its leaves; static values — the dynamic leaves, and whether ``fn`` must run
        inline (an argument is part of an outer graph)."""
        leaves: list = []
        flags = [False]
        static = self.static_argnums
        n = len(args)
        statics = []
        per_arg = []
        for i, a in enumerate(args):
            if static and (i in static or i - n in static):
                statics.append((i, _static_key(a, i)))
                continue
            parts: list = []
            _sig(a, leaves, parts, flags)
            per_arg.append((i, tuple(parts)))
        if kwargs:
            for k in sorted(kwargs, key=_sort_key):
                parts = []
                _sig(kwargs[k], leaves, parts, flags)
                per_arg.append((k, tuple(parts)))
        # whether ops are recorded decides whether Tensor outputs join the tape
        return (n, tuple(per_arg), tuple(statics), recording.thread.enabled), leaves, flags[0]


def _trace_settled(fn: Callable, args: tuple, kwargs: dict, static: dict,
                   name: str | None = None, with_vjp: bool = False) -> tuple:
    """:func:`trace`, with an optimizer step left to the optimizer when nothing after it in
    the function needs its values (see :class:`fungrad.jit.optimizers.DeferredStep`); when
    something does, the function is traced again with the step as program steps."""
    program, tracer = trace(fn, args, kwargs, static, name, with_vjp=with_vjp)
    if settle_deferred(program, tracer):
        return program, tracer
    logger.info("fg.jit: %s reads what its optimizer step changes; tracing again with the "
                "step in the program", name or getattr(fn, "__name__", "fn"))
    with no_deferral():
        return trace(fn, args, kwargs, static, name, with_vjp=with_vjp)


def _enable_gc_aged() -> None:
    """Turn the cyclic collector back on after a trace and compile, with what they allocated
    counted as old (the oldest generation, as after two collections).

    With the collector off, every container a trace and compile allocate stays in the young
    generation, and nearly all of them live on (the program, its plan): the first young
    collection after ``gc.enable()`` would scan them all only to keep them — about 0.1 s of
    a 42,000-op program's first call, a tenth of it. ``gc.freeze()`` then ``gc.unfreeze()``
    moves every tracked object to the oldest generation without scanning (two list splices);
    the next full collection, which would have scanned them anyway, still finds any garbage
    among them. A process that keeps objects frozen itself (``gc.freeze()`` before forking
    workers) is left as it is: unfreezing would hand its objects back to the collector; so
    is a free-threaded build, which has no generations (its freeze walks the whole heap).
    """
    if _GENERATIONAL_GC and gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
    gc.enable()


_GENERATIONAL_GC = not sysconfig.get_config_var("Py_GIL_DISABLED")


class _Tape:
    """A program whose Tensor outputs join the eager tape: the forward program returns the
    outputs then the residuals; ``backward`` runs the traced backward (see ``_on_tape``)."""

    __slots__ = ("backward", "bindings", "positions", "n_out", "spec", "kinds", "op")

    def __init__(self, backward, bindings, positions, n_out, spec, kinds, op) -> None:
        self.backward = backward
        self.bindings = bindings
        self.positions = positions
        self.n_out = n_out
        self.spec = spec
        self.kinds = kinds
        self.op = op

    def outputs(self, outs: list, leaves: list) -> Any:
        main, residuals = outs[:self.n_out], outs[self.n_out:]
        tensors = [leaves[b.key] if b.kind == "arg" else b.obj for b in self.bindings]
        joined = call_on_tape(self.op, tensors, [main[i] for i in self.positions],
                              residuals, self.backward)
        values = [_output(x, kind) for x, kind in zip(main, self.kinds)]
        for i, t in zip(self.positions, joined):
            values[i] = t
        return unflatten(self.spec, values)


def _donation_safe(leaves: list, donated: frozenset) -> bool:
    """Whether this call's donated arrays may be overwritten: each is C-contiguous, writeable
    and all of the memory it lies in (not a window of a larger array), and no other argument
    lies in that memory (the same array passed twice, a view of it). Arrays are grouped by
    the object owning their memory: a few attribute reads per leaf."""
    owners: dict[int, int] = {}  # id(memory owner) -> how many leaves lie in it
    donated_owners = []
    for k, x in enumerate(leaves):
        a = x._data if isinstance(x, Tensor) else x
        if type(a) is not np.ndarray:
            continue
        root = a
        while isinstance(root.base, np.ndarray):
            root = root.base
        key = id(root.base) if root.base is not None else id(root)
        owners[key] = owners.get(key, 0) + 1
        if k in donated:
            if not (a.flags.c_contiguous and a.flags.writeable and root.base is None
                    and root.nbytes == a.nbytes):
                return False
            donated_owners.append(key)
    return all(owners[key] == 1 for key in donated_owners)


_VIEWS = frozenset({"transpose", "reshape", "getitem", "squeeze", "expand_dims", "swapaxes",
                    "moveaxis", "ravel", "broadcast_to", "flip", "astype", "assign", "copy",
                    "ndarray.view", "diagonal", "real", "imag"})


def _returned_inputs(program: Program) -> set:
    """Argument leaves whose input value is returned (or written back) as it is or through
    views: such a leaf's array must not be reused for another output."""
    arg_of = {var.id: b.key for var, b in program.inputs if b.kind == "arg"}
    alias = dict(arg_of)
    for s in program.steps:
        if s.name in _VIEWS or (s.op is not None and s.op.name in _VIEWS):
            for x in s.inputs[:1]:
                if type(x) is Var and x.id in alias:
                    for o in s.outputs:
                        alias[o.id] = alias[x.id]
    out = set()
    refs = [v for v in program.outputs if type(v) is Var]
    for e in program.effects:
        refs.extend(var_refs(e.ref))
    for v in refs:
        if v.id in alias:
            out.add(alias[v.id])
    return out


def _differences(old, new, names: list[str]) -> list[str]:
    """What differs between two signatures, in words, one item per argument (its first leaf
    that differs): ``argument 0 (x): shape (128, 784) -> (64, 784)``, a dtype, a structure, a
    static value, a keyword argument given or left out, whether gradients are recorded."""
    out = []
    if old[0] != new[0]:
        out.append(f"{new[0]} positional arguments instead of {old[0]}")
    old_args, new_args = dict(old[1]), dict(new[1])
    for pos in list(new_args) + [k for k in old_args if k not in new_args]:
        a, b = old_args.get(pos), new_args.get(pos)
        if a == b:
            continue
        name = names[pos] if isinstance(pos, int) and pos < len(names) else f"keyword {pos!r}"
        if a is None or b is None:
            out.append(f"{name} {'given' if a is None else 'left out'}")
        elif len(a) != len(b):
            out.append(f"{name}: structure changed")
        else:
            out.append(f"{name}: {next(_leaf_change(x, y) for x, y in zip(a, b) if x != y)}")
    old_s, new_s = dict(old[2]), dict(new[2])
    for pos in sorted(set(old_s) | set(new_s)):
        if old_s.get(pos) != new_s.get(pos):
            name = names[pos] if pos < len(names) else f"argument {pos}"
            out.append(f"static {name}: {old_s.get(pos, (None, None))[1]!r} -> "
                       f"{new_s.get(pos, (None, None))[1]!r}")
    if old[3] != new[3]:
        out.append("called outside fg.no_grad (its Tensor outputs join the tape)" if new[3]
                   else "called under fg.no_grad (nothing is recorded)")
    return out


def _leaf_change(x, y) -> str:
    sx, sy = _shape_dtype(x), _shape_dtype(y)
    if sx is not None and sy is not None:
        if sx[0] != sy[0]:
            return f"shape {sx[0]} -> {sy[0]}"
        if sx[1] != sy[1]:
            return f"dtype {sx[1]} -> {sy[1]}"
    return f"{_part_str(x)} -> {_part_str(y)}"


def _shape_dtype(part):
    if isinstance(part, tuple) and len(part) == 2 and isinstance(part[0], tuple) \
            and isinstance(part[1], np.dtype):
        return part
    if isinstance(part, tuple) and part and part[0] == "T":
        return part[1], part[2]
    return None


def _part_str(part) -> str:
    if _shape_dtype(part) is not None and part[0] != "T":
        return f"a {part[1]} array of shape {part[0]}"
    if isinstance(part, type):
        return f"a Python {part.__name__}"
    if isinstance(part, tuple) and part and part[0] == "v":
        return f"the value {part[2]!r}"
    if isinstance(part, tuple) and part and part[0] == "T":
        return f"Tensor(shape {part[1]}, {part[2]}, autograd={part[3]}, grad set={not part[4]})"
    return repr(part)



def _ints_beyond_float64(leaves: list) -> bool:
    """Whether an integer array argument holds a value a float64 cannot hold exactly (beyond
    2**53): the compiled step computes integer elementwise ops in float64 registers."""
    for x in leaves:
        if type(x) is np.ndarray and x.dtype.kind in "iu" and x.dtype.itemsize == 8 and x.size \
                and (int(x.max()) > 2 ** 53 or int(x.min()) < -2 ** 53):
            return True
    return False


class _PythonRun:
    """Run a program with :class:`Interpreter`, checking captured state first. The
    interpreter is made at the first call: a compiled program keeps this only as the
    fallback a cold cache runs (on a 42,000-op program, making it costs some 40 ms)."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.interp: Interpreter | None = None
        self.checks = [(i, var) for i, (var, b) in enumerate(program.inputs)
                       if b.kind in ("data", "grad", "arg_grad", "call")]

    def __call__(self, leaves: list):
        p = self.program
        if self.interp is None:
            self.interp = Interpreter(p)
        for i, var in self.checks:
            try:
                arr = p.inputs[i][1].read(leaves)
            except (AttributeError, KeyError, IndexError, TypeError):
                raise Stale() from None
            if type(arr) is not np.ndarray:
                if p.inputs[i][1].kind == "call":
                    continue  # a number an optimizer's state gives (a step count)
                if not isinstance(arr, np.generic):  # (a NumPy scalar: 0-d, as compiled)
                    raise Stale()
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
        raise TracingError(f"fg.jit: static argument {i} must be hashable (it keys the program "
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
        parts.append(s if is_dynamic_leaf(x) else ("v", t, x, hash(x)))
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
    if isinstance(x, np.generic):  # a NumPy scalar is traced as the 0-d array it acts as
        x = np.asarray(x)
        leaves.append(x)
        parts.append((x.shape, x.dtype))
        return
    leaves.append(x)
    try:
        parts.append(("v", t, x, hash(x)))
    except TypeError:
        raise TracingError(f"fg.jit: an argument leaf of type {t.__name__} is neither an array, "
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

