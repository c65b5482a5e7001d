"""The compiled backend: lower, schedule, emit, then run with the Numba runner.

:func:`compile_program` turns a :class:`~fungrad.jit.program.Program` into an
:class:`Executable`: ``exe(leaves) -> (outputs, effect values)``, like the interpreter's. A
call reads the inputs (the arrays of arguments and of captured Tensors are used where they
are, unless not C-contiguous), allocates the arrays it hands out, runs the instruction
segments with :func:`fungrad.jit.backend.runner.run` and the Python steps between them, and returns.
Effect values already stored in place by the commit phase come back as :data:`IN_PLACE`.

Each thread gets its own *instance* (work buffers, registers, address table), so one jitted
function can run on several threads at once.

>>> import numpy as np, fungrad as fg
>>> from fungrad.jit.tracer import trace
>>> prog, _ = trace(lambda x, w: fg.sum(fg.tanh(x * w)), (np.ones(4), np.ones(4)), {})
>>> exe = compile_program(prog)
>>> float(exe([np.zeros(4), np.ones(4)])[0][0])
0.0
"""

from __future__ import annotations

import bisect
import operator
import os
import threading
import time
import warnings
import weakref
from typing import Callable

import numpy as np

from ..errors import FungradError, IndexRangeError, JitFallbackWarning, JitInternalError
from .interpret import IN_PLACE, call_step
from .optimizers import DeferredStep
from .backend.native import (
    C_ADDRS, C_BITS, C_ERR, C_ERR_VALUE, C_K, C_R32, C_R64, C_S, C_STRIDE, C_T, C_TMP32,
    C_TMP64, C_WORK, C_WORK_N, CTX_LEN, C_CSR_FN, C_DGEMM, C_MEM32, C_MEM64, C_SGEMM,
    gemm_addresses,
)
from .backend.table import (csr_address, csr_key, kernel_address, kernel_on_disk, kernel_spec,
                            mem_addresses)
from .backend.runner import RUNNER_SPEC, compile_runner, run, runner_on_disk
from .ir import Ext, Own, PassFailure, PyObj, Scalar, View
from ..kernels import _background as background
from .passes.emit import PAD, T_TILE, Plan, emit
from .passes.lower import fallback_warning, lower
from .passes.lowering import program_roots
from .passes.rewrite import accumulate, embedding_bags
from .passes.schedule import schedule
from .passes.verify import verify
from .program import Program, Stale, Var, map_vars, var_refs

__all__ = ["compile_program", "Executable", "Warming", "IN_PLACE"]


def compile_program(program: Program, donated: frozenset = frozenset(),
                    fallback: Callable | None = None,
                    status: list | None = None) -> "Executable | Warming":
    """Lower, rewrite, schedule, emit and verify ``program``; compile the kernels it needs.
    ``donated``: positions of argument leaves whose arrays the program may overwrite with
    outputs.

    ``fallback``: a callable like the executable (``fallback(leaves) -> (outputs, effect
    values)``, running the program step by step). Given, and with the background build on
    (:mod:`fungrad.kernels._background`), a program whose Numba kernels are neither compiled
    nor in the disk cache does not wait for them: a :class:`Warming` runs ``fallback`` while
    a background process builds them, then the executable. ``status``: a one-item list this
    function keeps saying what it does (for the "still at it" notice).

    A pass that fails on some nodes (a compiler bug) sends their steps back to Python — they
    are lowered again as Python steps, with a :class:`~fungrad.errors.JitFallbackWarning` —
    so the answer stays right; a failure that names no step, and a program the verifier
    rejects, raise :class:`~fungrad.errors.JitInternalError`: nothing else escapes."""
    python_steps: set[int] = set()
    status = status if status is not None else [""]
    status[0] = "lowering, scheduling and checking the program"
    while True:
        try:
            low, plan = _passes(program, donated, frozenset(python_steps))
            break
        except PassFailure as failure:
            new = [s for s in failure.steps if id(s) not in python_steps]
            if not new:
                raise _internal(failure.pass_name, failure.cause) from failure.cause
            for s in {id(s): s for s in new}.values():
                fallback_warning(s, failure.pass_name,
                                 f"{type(failure.cause).__name__}: {failure.cause}")
                python_steps.add(id(s))
    words = verify(low, plan, program)  # (the executable runs the words checked)
    missing = _missing(plan) if fallback is not None and background.enabled() else []
    if missing:
        background.request(missing)
        return Warming(fallback, lambda: Executable(program, low, plan, status, words),
                       missing)
    return Executable(program, low, plan, status, words)


def _missing(plan: Plan) -> list:
    """Specs of the Numba code ``plan`` needs that is neither compiled nor on disk (nor
    building already): for the background builder."""
    keys = list(plan.kernels)
    if plan.kernels and csr_key() is not None:
        keys.append(csr_key())
    out = [kernel_spec(*key) for key in keys if kernel_on_disk(*key) is False]
    if _runs(plan) and runner_on_disk() is False:
        out.append(RUNNER_SPEC)
    return out


class Warming:
    """A program's executable while Numba builds its kernels in a background process: calls
    run ``fallback`` (the program step by step, with NumPy) until the build has finished and
    a thread has loaded the kernels from the disk cache into an :class:`Executable`; then
    that executable. (Loading a few dozen kernels takes a second or more on a busy machine:
    the calls go on meanwhile.)"""

    #: effects always written in place: none for the fallback (see :class:`Executable`)
    static_in_place: frozenset = frozenset()
    warming = True

    def __init__(self, fallback: Callable, build: Callable[[], "Executable"],
                 missing: list) -> None:
        self.fallback = fallback
        self._build = build
        self.missing = missing
        self.exe: Executable | None = None
        self._loader: threading.Thread | None = None
        self._lock = threading.Lock()

    def ready(self) -> "Executable | None":
        """The executable once the background build has finished and it is loaded (None
        before; the first call after the build starts the loading thread)."""
        if self.exe is None and self._loader is None and background.finished(self.missing):
            with self._lock:
                if self._loader is None:
                    self._loader = threading.Thread(target=self._load, daemon=True,
                                                    name="fungrad-jit-load")
                    self._loader.start()
        return self.exe

    def wait(self) -> "Executable":
        """The executable, waiting for the background build (and the loading) to finish."""
        while self.ready() is None:
            if self._loader is not None:
                self._loader.join()
                if self.exe is None:  # loading failed (warned): build it here, raising
                    self.exe = self._build()
            else:
                time.sleep(0.05)
        assert self.exe is not None
        return self.exe

    def _load(self) -> None:
        try:
            self.exe = self._build()
        except Exception as e:  # noqa: BLE001 (the fallback keeps giving the right answers)
            warnings.warn(f"fg.jit: loading the compiled program failed ({type(e).__name__}: "
                          f"{e}); it keeps running step by step with NumPy. Please report "
                          "this defect.", JitFallbackWarning, stacklevel=1)

    def __call__(self, leaves: list):
        exe = self.exe or self.ready()
        return exe(leaves) if exe is not None else self.fallback(leaves)


def _passes(program: Program, donated: frozenset, python_steps: frozenset) -> tuple:
    low = lower(program, python_steps)
    stage = "rewrite"
    try:
        roots = program_roots(program)
        accumulate(low, roots)
        embedding_bags(low, roots)
        stage = "schedule"
        sched = schedule(low, program, donated)
    except (FungradError, PassFailure):
        raise
    except Exception as e:  # noqa: BLE001 (a bug, attributed to no step: said as such)
        raise _internal(stage, e) from e
    return low, emit(low, sched)


def _internal(pass_name: str, cause: BaseException) -> JitInternalError:
    return JitInternalError(
        f"fg.jit: compiler pass {pass_name} failed ({type(cause).__name__}: {cause}). This is "
        "a bug in fungrad's compiler, not in your code: please report it; meanwhile call the "
        "function without fg.jit.")


#: ``FUNGRAD_JIT_CHECKS=1``: the checked mode (the test suite's): every buffer the runner
#: touches — inputs (read through copies), outputs, internal buffers, registers and scratch —
#: lies between guard bytes, checked after each run of instructions
CHECKS = os.environ.get("FUNGRAD_JIT_CHECKS", "") not in ("", "0")
GUARD_BYTES = 256
_PATTERN = 0xA5


class _Guards:
    """Arrays between guard bytes, and the check that no kernel wrote over them."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}  # what -> raw bytes (a new one replaces it)

    def new(self, what: str, n: int, dtype) -> np.ndarray:
        """``n`` zeros of ``dtype`` with ``GUARD_BYTES`` of a pattern before and after."""
        dtype = np.dtype(dtype)
        raw = np.zeros(2 * GUARD_BYTES + max(n, 1) * dtype.itemsize, np.uint8)
        raw[:GUARD_BYTES] = _PATTERN
        raw[-GUARD_BYTES:] = _PATTERN
        self.arrays[what] = raw
        return raw[GUARD_BYTES:GUARD_BYTES + max(n, 1) * dtype.itemsize].view(dtype)

    def check(self, where: str) -> None:
        for what, raw in self.arrays.items():
            if (raw[:GUARD_BYTES] != _PATTERN).any() or (raw[-GUARD_BYTES:] != _PATTERN).any():
                raise JitInternalError(
                    f"fg.jit (FUNGRAD_JIT_CHECKS): {where} wrote outside {what}: the compiled "
                    "program overran a buffer. This is a bug in fungrad's compiler; please "
                    "report it with the program.")


class _Instance:
    """One thread's buffers, registers and context."""

    def __init__(self, exe: "Executable") -> None:
        plan = exe.plan
        nb = len(plan.buffers)
        self.arrays: list = [None] * nb
        self.addrs = np.zeros(max(nb, 1), np.int64)
        self.copied: dict[int, np.ndarray] = {}  # ext buffer -> original (non-contiguous)
        #: argument buffer -> the last call's array (weakly: the cache must not keep a big
        #: batch alive), so that a call with the same array skips rebinding it
        self.last_arg: dict[int, weakref.ref] = {}
        self.guards = _Guards() if CHECKS else None
        if self.guards is not None:
            self._checked_buffers(exe)
            return
        arena_size: dict = {}  # internal buffers live in one arena per dtype (locality)
        place: dict[int, int] = {}
        for b, buf in enumerate(plan.buffers):
            if buf.kind == "const":
                self._set(b, buf.value.reshape(-1))
            elif buf.kind == "internal":
                # each buffer starts 17 cache lines further round a 4 KiB page than the last:
                # rows at one index of two arrays must not be a multiple of 4 KiB apart (a load
                # after a store to such an address stalls; measured 7x on a row-wise backward)
                isz = buf.dtype.itemsize
                at = arena_size.get(buf.dtype, 0)
                at += ((len(place) * 17 * 64 - at * isz) % 4096) // isz
                place[b] = at
                arena_size[buf.dtype] = at + -(-max(buf.size, 1) * isz // 64) * 64 // isz
        arenas = {dt: np.zeros(n + 64, dt) for dt, n in arena_size.items()}
        # each buffer a view of its arena from a 64-byte boundary on; its address computed
        # (not asked of each view: thousands of internal buffers in an unrolled program)
        at_line = {}  # dtype -> (arena, its address, elements to its first 64-byte boundary)
        for dt, arena in arenas.items():
            address = arena.ctypes.data
            at_line[dt] = (arena, address, (-address // dt.itemsize) % (64 // dt.itemsize))
        arrays, slots, addresses = self.arrays, [], []
        for b, at in place.items():
            buf = plan.buffers[b]
            arena, address, shift = at_line[buf.dtype]
            start = at + shift
            arrays[b] = arena[start:start + max(buf.size, 1)]
            slots.append(b)
            addresses.append(address + start * buf.dtype.itemsize)
        self.addrs[slots] = addresses
        self.arenas = arenas
        self._scratch(exe, np.zeros)

    def _checked_buffers(self, exe: "Executable") -> None:
        """The checked mode's buffers: each between guards (no shared arena)."""
        plan = exe.plan
        for b, buf in enumerate(plan.buffers):
            if buf.kind == "const":
                arr = self.guards.new(f"constant buffer {b}", buf.size, buf.dtype)
                arr[:buf.value.size] = buf.value.reshape(-1)
                self._set(b, arr)
            elif buf.kind == "internal":
                self._set(b, self.guards.new(f"internal buffer {b}", buf.size, buf.dtype))
        names = iter(["registers (float32)", "registers (float64)", "tmp row (float32)",
                      "tmp row (float64)", "bits scratch", "work scratch"])
        self._scratch(exe, lambda n, dt: self.guards.new(next(names), n, dt))

    def _scratch(self, exe: "Executable", alloc) -> None:
        plan = exe.plan
        self.r32 = alloc(plan.reg_elems[np.dtype(np.float32)] + 16, np.float32)
        self.r64 = alloc(plan.reg_elems[np.dtype(np.float64)] + 16, np.float64)
        self.tmp32 = alloc(T_TILE + PAD, np.float32)  # vmath's scratch row
        self.tmp64 = alloc(T_TILE + PAD, np.float64)
        self.bits = alloc(max(plan.bits_len, T_TILE), np.int64)
        self.work = alloc(plan.work_bytes // 8 + 16, np.float64)
        self.S = np.zeros(max(exe.low.n_runtime_scalars, 1), np.float64)
        #: runtime scalar slot -> its exact Python value (S holds it as kernels read it, a
        #: float64; an int above 2**53 would lose digits there)
        self.exact: dict[int, object] = {}
        self.py: dict[int, object] = {}
        self.last_data: list | None = None  # captured arrays of the last call (fast path)
        #: the optimizer layout whose arrays the captured inputs are bound to (a deferred
        #: step's claim checks them: see Executable._read_inputs), and the inputs it misses
        self.covered_by: object = None
        self.uncovered: list = []
        ctx = self.ctx = np.zeros(CTX_LEN, np.int64)
        ctx[C_ADDRS] = self.addrs.ctypes.data
        ctx[C_R32] = self.r32.ctypes.data
        ctx[C_R64] = self.r64.ctypes.data
        ctx[C_T] = T_TILE
        ctx[C_STRIDE] = T_TILE + PAD
        ctx[C_S] = self.S.ctypes.data
        ctx[C_K] = exe.K.ctypes.data
        ctx[C_BITS] = self.bits.ctypes.data
        ctx[C_WORK] = self.work.ctypes.data
        ctx[C_WORK_N] = self.work.nbytes
        ctx[C_TMP32] = self.tmp32.ctypes.data
        ctx[C_TMP64] = self.tmp64.ctypes.data
        ctx[C_SGEMM], ctx[C_DGEMM] = gemm_addresses()
        ctx[C_CSR_FN] = exe.csr  # subnormals flushed to zero in the runner (as XLA's CPU)
        ctx[C_MEM32], ctx[C_MEM64] = mem_addresses(exe.plan.kernels, exe.table)

    def _set(self, b: int, arr: np.ndarray) -> None:
        self.arrays[b] = arr
        self.addrs[b] = arr.ctypes.data


def _runs(plan: Plan) -> bool:
    """Whether ``plan`` runs instructions (not Python steps alone): it needs the runner."""
    return any(seg[0] == "run" for seg in plan.segments)


def _load(status: list, key: tuple) -> int:
    """Kernel ``key``'s address, ``status`` saying whether it loads or builds meanwhile."""
    what = f"{key[0]}[{', '.join(key[1:])}]"
    status[0] = (f"loading Numba kernel {what} from the disk cache" if kernel_on_disk(*key)
                 else f"building Numba kernel {what} (none in the disk cache)")
    return kernel_address(*key)


class Executable:
    """``exe(leaves) -> (outputs, effect values)``; see the module docstring."""

    def __init__(self, program: Program, low, plan: Plan, status: list | None = None,
                 words: np.ndarray | None = None) -> None:
        self.program = program
        self.low = low
        self.plan = plan
        #: the instructions (``words``: ``plan.code`` as an int64 array already, the verifier's)
        if words is None or not len(words):
            words = np.array(plan.code if plan.code else [0], np.int64)
        self.code = words
        self.K = np.array(plan.K if plan.K else [0.0], np.float64)
        status = status if status is not None else [""]
        self.table = np.array([_load(status, key) for key in plan.kernels] or [0], np.int64)
        self.csr = csr_address() if plan.kernels else 0
        if _runs(plan):
            status[0] = ("loading Numba's runner from the disk cache" if runner_on_disk()
                         else "building Numba's runner (none in the disk cache)")
            compile_runner()
        self.run = run
        self._pool: list[_Instance] = []
        self._scalar_steps: dict[int, object] = {}  # id(step) -> _scalar_plan(step)
        self._lock = threading.Lock()
        self._inputs = self._input_plan()
        self._split_inputs()
        self._fresh = [b for b, buf in enumerate(plan.buffers) if buf.kind == "fresh"]
        #: the fresh buffers' places in one block allocated per call (one allocation and one
        #: address lookup, not one of each per output): (buffer, byte offset, dtype, size)
        self._fresh_layout, at = [], 0
        for b in self._fresh:
            buf = plan.buffers[b]
            n = max(buf.size, 1)
            self._fresh_layout.append((b, at, buf.dtype, n))
            at += -(-n * buf.dtype.itemsize // 64) * 64  # each on its own cache lines
        self._fresh_bytes = at
        self._ext_slots = sorted({slot for kind, _, _, slot in self._inputs
                                  if kind == "ext" and slot is not None})
        #: input buffers bound to the call's arguments (released after each call)
        self._arg_slots = sorted({slot for kind, binding, _, slot in self._inputs
                                  if kind == "ext" and slot is not None
                                  and binding.kind not in ("data", "grad")})
        self._arg_slot_set = frozenset(self._arg_slots)
        #: input buffers the program writes into (donations, in-place updates)
        ext_slots = frozenset(self._ext_slots)  # (a set: 6,000 updates of 12,000 inputs)
        self._written = sorted({plan.buf_of[x] for x in plan.inplace.values()
                                if plan.buf_of.get(x) in ext_slots})
        #: those whose new contents are an effect (a parameter's update), not an output: when
        #: the input was read through a copy, the copy is written back to it
        effect_ids = {v.id for e in program.effects for v in var_refs(e.ref)}
        self._write_back = {plan.buf_of[x] for v, x in plan.inplace.items()
                            if v in effect_ids and x in plan.buf_of}
        self._errors = dict(plan.errors)
        #: an optimizer step the commit runs (jit/optimizers.py): it claims its layout first
        self._deferred = next((e.target for e in program.effects if e.kind == "call"
                               and isinstance(e.target, DeferredStep)), None)
        self._outputs = [self._fetcher(v) for v in program.outputs]
        fetchers = [self._effect_fetcher(e) for e in program.effects]
        self._effects_static = [IN_PLACE if f is _in_place else None for f in fetchers]
        #: effects the program always writes in place (their commit is a version bump)
        self.static_in_place = frozenset(i for i, f in enumerate(fetchers) if f is _in_place)
        self._effects = [(i, f) for i, f in enumerate(fetchers) if f is not _in_place]
        #: the deferred step may claim its layout before the run when the commit cannot
        #: change which arrays the parameters hold: every data effect written in place
        self._claims = self._deferred is not None and all(
            i in self.static_in_place for i, e in enumerate(program.effects) if e.kind == "data")
        if plan.segments and plan.segments[0][0] == "run":  # compile (or load) the runner now
            inst = self._acquire()
            self._release(inst)

    # -- inputs --------------------------------------------------------------------------

    def _input_plan(self) -> list:
        out = []
        for var, binding in self.program.inputs:
            st = self.low.storage[var.id]
            if isinstance(st, Ext):
                out.append(("ext", binding, var, self.plan.buf_of.get(var.id)))
            elif isinstance(st, Scalar):
                out.append(("scalar", binding, var, st.index))
            else:
                out.append(("py", binding, var, None))
        return out

    def _split_inputs(self) -> None:
        """Captured Tensors' data (most inputs of an object-style step) are read and checked
        in C loops: ``map(attrgetter)`` and an identity comparison with the last call's."""
        fast, grads, rest = [], [], []
        for item in self._inputs:
            kind, binding, var, slot = item
            if kind == "ext" and slot is not None and binding.kind == "data":
                fast.append(item)
            elif kind == "ext" and slot is not None and binding.kind == "grad":
                grads.append(item)  # the .grad arrays a backward accumulates into
            else:
                rest.append(item)
        self._fast = fast + grads
        self._fast_tensors = [b.obj for _, b, _, _ in fast]
        self._fast_grads = [b.obj for _, b, _, _ in grads]
        self._rest = rest

    def _read_inputs(self, inst: _Instance, leaves: list, claimed=None) -> None:
        if self._fast and claimed is not None and inst.covered_by is claimed:
            # the deferred step's claim has just checked every parameter's data and .grad
            # to be its layout's view, as bound here: only the other inputs are read
            self._read(inst, leaves, inst.uncovered)
            self._read(inst, leaves, self._rest)
            return
        inst.covered_by = None
        if self._fast:
            arrays = list(map(_DATA, self._fast_tensors))
            if self._fast_grads:
                try:
                    arrays += map(_GRAD_DATA, self._fast_grads)
                except AttributeError:  # a .grad is None: the reads below say Stale
                    arrays = None
            last = inst.last_data
            if arrays is None or last is None or inst.copied \
                    or not all(map(operator.is_, arrays, last)):
                inst.last_data = None
                self._read(inst, leaves, self._fast)
                inst.last_data = arrays
            if claimed is not None and not inst.copied:
                self._cover(inst, claimed)
        self._read(inst, leaves, self._rest)

    def _cover(self, inst: _Instance, layout) -> None:
        """Which captured inputs are bound to the arrays ``layout``'s claim checks (a
        parameter's data view, its ``.grad``'s view): the others are read at every call."""
        uncovered = []
        for item in self._fast:
            _, binding, _, slot = item
            want = layout.claimed_array(binding.obj, binding.kind == "grad")
            if want is None or inst.arrays[slot] is not want:
                uncovered.append(item)
        inst.uncovered = uncovered
        inst.covered_by = layout

    def _read(self, inst: _Instance, leaves: list, inputs: list) -> None:
        for kind, binding, var, slot in inputs:
            try:
                value = binding.read(leaves)
            except (AttributeError, IndexError, KeyError, TypeError):
                raise Stale() from None
            if kind == "ext":
                if slot is None:
                    continue  # read by nothing that survived scheduling
                if value is inst.arrays[slot]:
                    continue
                last = inst.last_arg.get(slot)
                if last is not None and last() is value:  # the last call's argument again
                    inst.arrays[slot] = value
                    continue
                if value is inst.copied.get(slot):  # copied again: it may have changed since
                    np.copyto(inst.arrays[slot], value.reshape(-1))
                    continue
                if isinstance(value, np.generic):  # a NumPy scalar (np.float64(2.0)): 0-d
                    value = np.asarray(value)
                if (type(value) is not np.ndarray or value.shape != var.shape
                        or value.dtype != var.dtype):
                    raise Stale()
                inst.rebound = True
                if inst.guards is not None:  # checked mode: through a guarded copy
                    inst.copied[slot] = value
                    copy = inst.guards.new(f"input buffer {slot}", value.size, value.dtype)
                    copy[:value.size] = value.reshape(-1)
                    inst._set(slot, copy[:value.size])
                elif value.flags.c_contiguous and value.flags.aligned:
                    inst.copied.pop(slot, None)
                    inst._set(slot, value.reshape(-1))
                    inst.arrays[slot] = value
                    if slot in self._arg_slot_set:
                        inst.last_arg[slot] = weakref.ref(value)
                else:
                    inst.copied[slot] = value
                    inst._set(slot, np.array(value, order="C").reshape(-1))
            elif kind == "scalar":
                if type(value) is not var.weak and not (var.weak is float
                                                          and type(value) is int):
                    if not isinstance(value, (int, float, np.number)):
                        raise Stale()
                inst.S[slot] = value
                inst.exact[slot] = value
            else:
                inst.py[var.id] = value

    def _separate(self, inst: _Instance) -> None:
        """An input array the program overwrites (a donated argument, a parameter updated in
        place) that shares memory with another input — the same array passed twice, a view of
        it — would be read after it is overwritten: the other input is read from a private
        copy instead (the compiler proved the program safe for distinct arrays only)."""
        spans = {}
        for slot in self._ext_slots:
            a = inst.arrays[slot]
            lo = a.ctypes.data
            spans[slot] = (lo, lo + a.nbytes)
        # inputs sorted by start address: those overlapping [wlo, whi) start in
        # (wlo - longest, whi) — a bisection, not a scan of every input per written one
        # (an optimizer's thousands of parameters are views of one flat buffer)
        order = sorted(spans, key=lambda slot: spans[slot][0])
        starts = [spans[slot][0] for slot in order]
        longest = max((hi - lo for lo, hi in spans.values()), default=0)
        for w in self._written:
            wlo, whi = spans[w]
            for k in range(bisect.bisect_right(starts, wlo - longest),
                           bisect.bisect_left(starts, whi)):
                slot = order[k]
                lo, hi = spans[slot]
                if slot != w and lo < whi and wlo < hi:
                    original = inst.copied.get(slot, inst.arrays[slot])
                    inst.copied[slot] = original
                    inst._set(slot, np.array(original, order="C").reshape(-1))
                    spans[slot] = (0, 0)

    # -- values ------------------------------------------------------------------------------

    def _view(self, inst: _Instance, v: Var) -> np.ndarray:
        st = self.low.storage[v.id]
        if isinstance(st, View):
            base, off, strides = self.plan.buf_of[st.base], st.offset, st.strides
        else:
            base, off, strides = self.plan.buf_of[v.id], 0, None
        arr = inst.arrays[base]
        flat = arr.reshape(-1) if arr.ndim != 1 else arr
        if strides is None:
            return flat[:v.size].reshape(v.shape)
        isz = flat.itemsize
        return np.ndarray(v.shape, flat.dtype, buffer=flat, offset=off * isz,
                          strides=tuple(s * isz for s in strides))

    def _value(self, inst: _Instance, v):
        if type(v) is not Var:
            return v
        st = self.low.storage[v.id]
        if isinstance(st, Scalar):
            value = inst.exact.get(st.index, inst.S[st.index]) if st.runtime else st.value
            weak = v.weak or st.weak
            if weak is not None:
                return weak(value)
            return np.asarray(value, dtype=v.dtype)
        if isinstance(st, PyObj):
            return inst.py[v.id]
        return self._view(inst, v)

    def _fetcher(self, v):
        """How to read output ``v`` after a run: hand a fresh array over, copy the rest."""
        if type(v) is not Var:
            return lambda inst: v
        st = self.low.storage[v.id]
        b = self.plan.buf_of.get(v.id)
        if isinstance(st, Own) and b is not None and self.plan.buffers[b].kind == "fresh":
            shape = v.shape
            if not v.size:  # (its buffer holds one element: an array may not be empty)
                return lambda inst: inst.arrays[b][:0].reshape(shape)
            return lambda inst: inst.arrays[b].reshape(shape)
        if v.id in self.plan.inplace:  # computed into a donated argument: hand that over
            shape = v.shape
            b = self.plan.buf_of[self.plan.inplace[v.id]]  # (a sparse update: the table's)
            # the argument itself when its shape is the output's: the next call, passed it
            # back, finds it bound already (a new view of it would be bound afresh)
            return lambda inst: (a if (a := inst.arrays[b]).shape == shape
                                 else a.reshape(shape))
        if isinstance(st, (Scalar, PyObj)):
            return lambda inst: self._value(inst, v)
        return lambda inst: np.array(self._view(inst, v))

    def _effect_fetcher(self, e):
        ref = e.ref
        if type(ref) is Var and ref.id in self.plan.inplace:
            return _in_place
        if isinstance(ref, tuple):
            parts = [self._fetcher(r) for r in ref]
            return lambda inst: tuple(f(inst) for f in parts)
        if ref is None:
            return lambda inst: None
        return self._fetcher(ref)

    # -- running -------------------------------------------------------------------------

    def _acquire(self) -> _Instance:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return _Instance(self)

    def _release(self, inst: _Instance) -> None:
        with self._lock:
            self._pool.append(inst)

    def _prepare(self, inst: _Instance, leaves: list, claimed=None) -> None:
        """Bind this call's inputs and give the fresh buffers (the outputs handed over) new
        arrays: what runs before the first instruction."""
        inst.rebound = False
        self._read_inputs(inst, leaves, claimed)
        if inst.rebound and self._written:
            self._separate(inst)
        if inst.guards is not None:
            for b in self._fresh:
                buf = self.plan.buffers[b]
                inst._set(b, inst.guards.new(f"output buffer {b}", buf.size, buf.dtype))
        elif self._fresh:
            block = np.empty(self._fresh_bytes + 64, np.uint8)
            base = block.ctypes.data
            start = -base % 64
            arrays, addrs = inst.arrays, inst.addrs
            for b, at, dtype, n in self._fresh_layout:
                lo = start + at
                arrays[b] = block[lo:lo + n * dtype.itemsize].view(dtype)
                addrs[b] = base + lo

    def __call__(self, leaves: list) -> tuple[list, list]:
        inst = self._acquire()
        deferred = self._deferred
        claimed = deferred.begin() if self._claims else None
        try:
            try:
                self._prepare(inst, leaves, claimed)
                self._execute(inst)
            except BaseException:
                if claimed is not None:
                    deferred.abort()
                raise
            outs = [f(inst) for f in self._outputs]
            effs = list(self._effects_static)
            for i, f in self._effects:
                effs[i] = f(inst)
            for slot, original in inst.copied.items():  # in-place updates of copied inputs
                if slot in self._write_back:
                    np.copyto(original, inst.arrays[slot].reshape(original.shape))
            return outs, effs
        finally:
            for b in self._fresh:
                inst.arrays[b] = None
            for b in self._arg_slots:  # not kept alive by the cache (a big batch would be)
                inst.arrays[b] = None
                inst.copied.pop(b, None)
            inst.py.clear()
            inst.exact.clear()
            self._release(inst)

    def _execute(self, inst: _Instance) -> None:
        code, table, ctx, run = self.code, self.table, inst.ctx, self.run
        for seg in self.plan.segments:
            if seg[0] == "run":
                pc = run(code, seg[1], seg[2], table, ctx)
                if inst.guards is not None:
                    inst.guards.check(f"instructions {seg[1]}..{seg[2]}")
                if pc != seg[2]:
                    self._fail(inst, pc)
            else:
                self._python(inst, seg[1].step)

    def _python(self, inst: _Instance, step) -> None:
        """Run Python step ``step``: the general path, or its prepared fast form — a step
        of runtime numbers only (an optimizer's step count and bias corrections), whose
        arguments and results go straight between ``S`` and the step's function."""
        fast = self._scalar_steps.get(id(step), _UNSET)
        if fast is _UNSET:
            fast = self._scalar_steps[id(step)] = self._scalar_plan(step)
        if fast is None:
            self._python_general(inst, step)
            return
        fn, reads, writes = fast
        S, exact = inst.S, inst.exact
        args = [c if w is None else w(exact[i]) if i in exact else w(S[i])
                for i, w, c in reads]
        try:
            r = fn(*args)
        except Exception:  # (eager's error, explained): the general path raises it
            self._python_general(inst, step)
            return
        S[writes] = r
        exact[writes] = r

    def _scalar_plan(self, step):
        """``(fn, [(slot, weak type, constant)], out slot)`` when ``step`` maps runtime weak
        numbers (Python ints and floats in ``S``) and Python constants to one: what
        :meth:`_python_general` does for it, without its per-argument dispatch; else None."""
        if step.dynamic or step.params or step.multi or len(step.outputs) != 1:
            return None
        reads = []
        for x in step.inputs:
            if type(x) is not Var:
                if type(x) not in (int, float):
                    return None
                reads.append((-1, None, x))
                continue
            st = self.low.storage.get(x.id)
            weak = (x.weak or st.weak) if isinstance(st, Scalar) else None
            if not isinstance(st, Scalar) or not st.runtime or weak not in (int, float):
                return None
            reads.append((st.index, weak, None))
        st = self.low.storage.get(step.outputs[0].id)
        if not isinstance(st, Scalar) or not st.runtime:
            return None
        return step.fn, reads, st.index

    def _python_general(self, inst: _Instance, step) -> None:
        args = [self._value(inst, x) for x in step.inputs]
        params = step.params
        if step.dynamic:
            params = map_vars(params, lambda v: self._value(inst, v))
        outs = step.outputs
        if step.op is not None and step.op.name in ("matmul", "mm") and len(outs) == 1 \
                and isinstance(self.low.storage[outs[0].id], Own) and not params:
            out = self._view(inst, outs[0])  # the product written into its buffer
            call_step(step, args, params, lambda a, b: np.matmul(a, b, out=out))
            return
        result = call_step(step, args, params)
        results = result if step.multi else (result,)
        for v, r in zip(outs, results):
            st = self.low.storage[v.id]
            if isinstance(st, Scalar):
                inst.S[st.index] = r
                inst.exact[st.index] = r
            elif isinstance(st, PyObj):
                inst.py[v.id] = r
            elif v.id in self.plan.buf_of:
                np.copyto(self._view(inst, v), r, casting="unsafe")

    def _fail(self, inst: _Instance, pc: int) -> None:
        """An instruction found bad input: run its step with NumPy to raise eager's error."""
        node = self._errors.get(pc)
        value = int(inst.ctx[C_ERR_VALUE])
        inst.ctx[C_ERR] = 0
        name = "fg.jit"
        if node is not None and node.step is not None:
            self._python(inst, node.step)  # raises the error eager raises
            name = node.step.name
        raise IndexRangeError(f"{name}: index {value} is out of range")


_DATA = operator.attrgetter("_data")
_UNSET = object()
_GRAD_DATA = operator.attrgetter("_grad._data")


def _in_place(inst):
    return IN_PLACE



