"""Verification: the whole instruction array checked before it ever runs.

The runner's kernels read and write raw addresses, so a wrong offset, shape or order would
overwrite memory rather than raise. :func:`verify` reads the emitted program as the runner
will (fields by name, :mod:`fungrad.jit.backend.isa`) and checks, for every instruction:

- *structure*: each instruction has the word count its kernel expects, segments tile the
  code, every slot names a kernel of the right group;
- *bounds*: every operand region (offset, shape, strides) lies inside its buffer, every
  scalar index inside its table, every register inside the register file, scratch space is
  large enough;
- *types*: a buffer's dtype is the one the kernel reads (int64 indices, the group's float
  dtype or the cast's source dtype);
- *registers*: in a fused group every register is written before it is read;
- *hazards*: following the program in order (Python steps included), every read of a value
  finds that value where it reads — never another value written over it (a reused buffer,
  a donated or in-place updated argument, a fused store read back through a transposed,
  broadcast, sliced or reversed view in a later tile), and never an unwritten buffer.

A violation raises :class:`~fungrad.errors.JitInternalError` naming the op, the pass that made
the mistake and the step's source; the program does not run. Regions are compared by their
extents (lowest to highest element), which is conservative: two interleaved regions of
different values count as overlapping.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import JitInternalError
from ..backend import isa
from ..backend import kernels_ew as KE
from ..backend.isa import EW_HEAD, MEM, OP, SCALAR
from ..ir import Const, Ext, Own, PyObj, Scalar, View, c_strides
from ..program import Var, var_refs
from .loops import verify_control

__all__ = ["verify"]

_H = EW_HEAD
_MEM_SUBS = {KE.LOAD, KE.STORE, KE.STORE_ADD, KE.SCALAR_S, KE.SCALAR_K}
#: (kernel group, sub-op) -> number of register inputs, from the elementwise op table
_N_IN = {(group, sub): n for group, sub, n in KE.SUB.values()}
_FRESH = {KE.SUB[name][:2] for name in KE.FRESH}
_INT64 = np.dtype(np.int64)
#: sub-op -> whether a transfer record may have it
_MEM_SUB_OK = np.array([sub in _MEM_SUBS for sub in range(max(_MEM_SUBS) + 1)])
_SAFE = 1 << 40  # offsets, strides and dims up to this add up in int64 without wrapping
#: groups of fewer records are checked record by record (the screen's NumPy calls cost more)
SCREEN_MIN = 512


def _words(code: list) -> np.ndarray | None:
    """``code`` as the int64 array the runner runs (None if a word does not fit)."""
    try:
        return np.fromiter(code, np.int64, len(code))
    except (OverflowError, TypeError, ValueError):
        return None


_SLOT = isa.BLOCK_SLOT
_LENGTH, _KIND = EW_HEAD.length, EW_HEAD.kind
_HEAD, _W = isa.HEAD, isa.W
_OP_SUB, _OP_DST, _OP_A, _OP_B, _OP_C = OP.sub, OP.dst, OP.a, OP.b, OP.c
_MEM_SUB, _MEM_REG, _MEM_BUF, _MEM_OFF, _MEM_S0 = MEM.sub, MEM.reg, MEM.buf, MEM.off, MEM.s0
_SCALAR_INDEX = SCALAR.index
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
assert OP.slot == MEM.slot == SCALAR.slot == 0 and MEM.s3 == MEM.s0 + 3


class _Operand:
    """Names a block's operand in a message (formatted only if a check fails)."""

    __slots__ = ("name", "role")

    def __init__(self, name: str, role: str) -> None:
        self.name, self.role = name, role

    def __str__(self) -> str:
        return f"{self.name} operand {self.role!r}"


class _Fail(Exception):
    def __init__(self, what: str, made_by: str) -> None:
        super().__init__(what)
        self.what = what
        self.made_by = made_by


def _describe(node: Any) -> tuple[str, str]:
    """(op name, where the user's code made it) of a node, group or Python step."""
    members = getattr(node, "members", None)
    if members is not None:  # a fused group: its members' ops
        names = sorted({m.op for m in members})
        where = next((w for w in (_where(m) for m in members) if w), "")
        return "fused group of " + ", ".join(names), where
    if node is None:
        return "fg.jit program", ""
    return str(getattr(node, "op", node)), _where(node)


def _where(node: Any) -> str:
    step = getattr(node, "step", None)
    if step is None:
        return ""
    source = getattr(step, "source", None) or getattr(step, "where", None)
    return str(source) if source else repr(step)


def _left(program: Any) -> list:
    """The Vars read after the run: outputs and effect values."""
    out = [o for o in program.outputs if type(o) is Var]
    for e in program.effects:
        out.extend(var_refs(e.ref))
    return out


class _Verifier:
    def __init__(self, low: Any, plan: Any) -> None:
        self.low = low
        self.plan = plan
        self.buffers = plan.buffers
        self.n_buffers = len(plan.buffers)
        self.dtypes = [buf.dtype for buf in plan.buffers]
        self.sizes = [max(buf.size, 1) for buf in plan.buffers]
        self.consts = {b for b, buf in enumerate(plan.buffers) if buf.kind == "const"}
        self.kernel_of = {slot: key for key, slot in plan.kernels.items()}
        #: block kernel slot -> (name, dtype, layout, words)
        self.blocks = {slot: (key[0], np.dtype(key[1]), isa.BLOCKS[key[0]],
                              isa.block_length(isa.BLOCKS[key[0]]))
                       for slot, key in self.kernel_of.items() if key[0] in isa.BLOCKS}
        #: group kernel slot -> (name, register dtype, buffer dtype of a transfer or None)
        self.records = {}
        for slot, key in self.kernel_of.items():
            if key[0] == "mem":
                self.records[slot] = ("mem", np.dtype(key[1]), np.dtype(key[1]))
            elif key[0] == "cast":
                buf_dt = np.dtype(key[1])
                self.records[slot] = ("cast", np.dtype(key[2]), np.dtype(np.bool_)
                                      if buf_dt == np.dtype(np.uint8) else buf_dt)
            elif key[0] not in isa.BLOCKS and len(key) == 2 and key[0] != "csr":
                self.records[slot] = (key[0], np.dtype(key[1]), None)
        self.n_k = max(len(plan.K), 1)
        self.n_s = max(low.n_runtime_scalars, 1)
        #: the code as the runner will read it (int64 words): the groups' screen reads it
        self.words = _words(plan.code)
        self.tabled = False  # (the screen's tables: made when first needed)
        # per buffer: the writes so far, as (low element, high element, root Var id)
        self.writes: dict[int, list[tuple[int, int, int]]] = {}
        #: per buffer: each value written there -> the hull of its writes (a fast path)
        self.hulls: dict[int, dict[int, tuple[int, int]]] = {}
        self.initial: dict[int, set[int]] = {}
        for vid, b in plan.buf_of.items():
            if isinstance(low.storage.get(vid), (Ext, Const)):
                self.initial.setdefault(b, set()).add(vid)

    def _screen_tables(self) -> None:
        """What :meth:`screen` looks up per record, as arrays indexed by kernel slot: the
        record's kind (0: no group kernel, 1: a transfer, 2: a casting transfer, 3: a
        register op), its register dtype (0 float32, 1 float64, 2 another), its buffer dtype
        (a code of :attr:`dtype_code`), and per (slot, sub-op) a register op's number of
        inputs (-1: not one of the kernel's) and whether its output must be a fresh register."""
        n = max(self.kernel_of, default=-1) + 1
        n_sub = max(sub for _, sub in _N_IN) + 1
        kind, reg, buf = [0] * n, [2] * n, [-1] * n
        n_in, fresh = [[-1] * n_sub for _ in range(n)], [[False] * n_sub for _ in range(n)]
        codes: dict = {}
        self.buf_code = np.array([codes.setdefault(dt, len(codes)) for dt in self.dtypes] or [0],
                                 np.int64)
        self.buf_size = np.array(self.sizes or [1], np.int64)
        for slot, (name, reg_dt, buf_dt) in self.records.items():
            reg[slot] = 0 if reg_dt == _F32 else 1 if reg_dt == _F64 else 2
            if buf_dt is not None:
                kind[slot] = 2 if name == "cast" else 1
                buf[slot] = codes.setdefault(buf_dt, len(codes))
                continue
            kind[slot] = 3
            for sub in range(n_sub):
                n_in[slot][sub] = _N_IN.get((name, sub), -1)
                fresh[slot][sub] = (name, sub) in _FRESH
        self.rec_kind, self.rec_dt, self.rec_buf = (np.array(kind, np.int64),
                                                    np.array(reg, np.int64),
                                                    np.array(buf, np.int64))
        self.rec_n_in = np.array(n_in, np.int64).reshape(n, n_sub)
        self.rec_fresh = np.array(fresh, np.bool_).reshape(n, n_sub)

    # -- the parts ---------------------------------------------------------------------

    def run(self) -> None:
        code = self.plan.code
        at = 0
        for seg in self.plan.segments:
            if seg[0] == "py":
                self.python(seg[1])
                continue
            _, start, stop = seg
            if start != at or stop > len(code):
                raise _Fail(f"segment [{start}, {stop}) does not follow {at}", "emit")
            pc = start
            while pc < stop:
                self.node = self.plan.notes.get(pc, (None,))[0]
                length = code[pc + _LENGTH]
                if length <= 0 or pc + length > stop:
                    raise _Fail(f"instruction at {pc} of length {length} overruns its "
                                f"segment ending at {stop}", "emit")
                kind = code[pc + _KIND]
                if kind == isa.EW:
                    self.group(pc, length)
                elif kind == isa.BLOCK:
                    self.block(pc, length)
                elif code[pc + _H.kind] in isa.CONTROL:  # a loop's (passes/loops.py)
                    verify_control(self, pc, length, start, stop)
                else:
                    raise _Fail(f"instruction at {pc} of unknown kind {code[pc]}", "emit")
                pc += length
            at = stop
        if at != len(code):
            raise _Fail(f"code words {at}..{len(code)} belong to no segment", "emit")

    def region(self, b: int, dtype: np.dtype, off: int, shape: tuple, strides: tuple,
               what: Any) -> tuple[int, int] | None:
        """(lowest, highest) element of a region of buffer ``b`` read or written as ``dtype``,
        checked to lie inside it; None if the region is empty."""
        if not 0 <= b < self.n_buffers:
            raise _Fail(f"{what}: buffer {b} of {self.n_buffers}", "emit")
        held = self.dtypes[b]
        if held is not dtype and held != dtype:
            raise _Fail(f"{what}: buffer {b} holds {held}, the kernel reads {dtype}", "lower")
        return self.extent(b, off, shape, strides, what)

    def extent(self, b: int, off: int, shape: tuple, strides: tuple,
               what: Any) -> tuple[int, int] | None:
        """(lowest, highest) element of a region, checked inside buffer ``b``; None if empty."""
        lo = hi = off
        for d, s in zip(shape, strides):
            if d <= 0:
                return None
            if s >= 0:
                hi += (d - 1) * s
            else:
                lo += (d - 1) * s
        size = self.sizes[b]
        if lo < 0 or hi >= size:
            raise _Fail(f"{what}: elements {lo}..{hi} of buffer {b} ({size} elements; region "
                        f"at offset {off}, shape {tuple(shape)}, strides {tuple(strides)})",
                        "lower (views) or emit")
        return lo, hi

    def read(self, b: int, span: tuple[int, int] | None, root: int, what: Any) -> None:
        if span is None or root < 0:
            return
        lo, hi = span
        hulls = self.hulls.get(b)
        if hulls is not None and len(hulls) == 1 and root in hulls:
            hlo, hhi = hulls[root]  # the one value ever written here: only coverage to check
            if hlo <= lo and hi <= hhi or root in self.initial.get(b, ()):
                return
        for wlo, whi, wroot in reversed(self.writes.get(b, ())):
            if wlo <= hi and lo <= whi:
                if wroot != root:
                    raise _Fail(f"{what}: reads value %{root} from buffer {b} (elements "
                                f"{lo}..{hi}) after value %{wroot} overwrote elements "
                                f"{wlo}..{whi}", "schedule/emit (buffer reuse, donation or "
                                "in-place update)")
                return
        if root not in self.initial.get(b, ()):
            raise _Fail(f"{what}: reads value %{root} from buffer {b} (elements {lo}..{hi}) "
                        "before anything wrote it", "schedule/emit")

    def write(self, b: int, span: tuple[int, int] | None, root: int, what: Any) -> None:
        if span is None:
            return
        if b in self.consts:
            raise _Fail(f"{what}: writes into constant buffer {b}", "emit")
        if root >= 0:  # (a write of no known value is bounds-checked only)
            self.writes.setdefault(b, []).append((span[0], span[1], root))
            hulls = self.hulls.setdefault(b, {})
            old = hulls.get(root)
            if old is None:
                hulls[root] = span
            elif old[0] > span[0] or old[1] < span[1]:
                hulls[root] = (min(old[0], span[0]), max(old[1], span[1]))

    # -- block instructions --------------------------------------------------------------

    def scalar(self, kind: int, index: int, what: str) -> None:
        n = self.n_k if kind == -1 else self.n_s if kind == -2 else 0
        if not 0 <= index < n:
            raise _Fail(f"{what}: scalar {index} of a table of {n} (kind {kind})", "emit")

    def block(self, pc: int, length: int) -> None:
        code = self.plan.code
        node, roles = self.plan.notes.get(pc, (None, {}))
        self.node = node
        slot = code[pc + _SLOT]
        info = self.blocks.get(slot)
        if info is None:
            raise _Fail(f"block instruction at {pc}: slot {slot} is not a block kernel "
                        f"({self.kernel_of.get(slot)})", "emit")
        name, dt, layout, words = info
        if length != words:
            raise _Fail(f"{name} at {pc}: {length} words, its kernel reads {words}", "emit")
        f = isa.decode(code, pc, layout)
        self.block_scalars(name, f, dt)
        regions = isa.REGIONS(name, f)
        spans = []
        for r in regions:
            what = _Operand(name, r.role)
            spans.append((r, self.region(r.buf, dt if r.dtype == "f" else _INT64, r.off,
                                         r.shape, r.strides, what), what))
        for r, span, what in spans:
            if "r" in r.access:
                self.read(r.buf, span, roles.get(r.role, -1), what)
        for r, span, what in spans:
            if "w" in r.access:
                self.write(r.buf, span, roles.get(r.role, -1), what)
        for r, span, _ in spans:  # a kernel must not write what it still reads (another value)
            if "w" not in r.access or span is None:
                continue
            for q, qspan, _ in spans:
                if q is r or "r" not in q.access or qspan is None or q.buf != r.buf:
                    continue
                if name in isa.ELEMENTWISE_BLOCKS and (q.buf, q.off, q.shape, q.strides) == \
                        (r.buf, r.off, r.shape, r.strides):
                    continue  # element i read, then written, at the same index: in place
                if qspan[0] <= span[1] and span[0] <= qspan[1] and \
                        roles.get(q.role, -1) != roles.get(r.role, -1):
                    raise _Fail(f"{name}: output {r.role!r} overlaps input {q.role!r} in "
                                f"buffer {r.buf}", "emit (buffer planning)")

    def block_scalars(self, name: str, f: dict, dt: np.dtype) -> None:
        plan = self.plan
        work = plan.work_bytes
        if name == "reduce":
            if f["kscale"] != -1:
                self.scalar(-1, f["kscale"], "reduce scale")
            need = 8 * f["C"]
        elif name == "scatter":
            if f["mode"] == 3:
                self.scalar(f["skind"], f["sindex"], "scatter scale")
            need = 0
        elif name in ("sgd_rows", "sgd_dense"):
            self.scalar(f["skind"], f["sindex"], f"{name} learning rate")
            need = 0
        elif name == "xent_grad" and f["g"] < 0:
            self.scalar(f["g"], f["g_off"], "cross_entropy_grad g")
            need = (f["N"] * f["C"] + f["N"]) * dt.itemsize
        elif name in ("xent", "xent_grad"):
            need = (f["N"] * f["C"] + f["N"]) * dt.itemsize
        elif name == "rows":
            need = f["C"] * dt.itemsize
        elif name in ("lstm", "lstm_grad"):
            need = 11 * f["H"] * dt.itemsize
        elif name == "fill":
            self.scalar(-1, f["k"], "fill value")
            need = 0
        elif name == "rowcopy":
            self.scalar(-2, f["sidx"], "rowcopy counter")
            need = 0
        else:
            need = 0
        if need > work + 8 * 16:  # (the work array has 16 words of slack)
            raise _Fail(f"{name}: needs {need} bytes of scratch, the program has {work}", "emit")

    # -- fused groups --------------------------------------------------------------------

    def group(self, pc: int, length: int) -> None:
        code = self.plan.code
        g, notes = self.plan.notes.get(pc, (None, []))
        self.node = g
        h = isa.decode(code, pc, _H)
        dt = _F64 if h["f64"] else _F32
        n_ops = h["n_ops"]
        if length != _HEAD + _W * n_ops:
            raise _Fail(f"group at {pc}: {length} words for {n_ops} records", "emit")
        dims = (h["d0"], h["d1"], h["d2"], h["d3"])
        if min(dims) < 1 or h["T"] < 1 or h["stride"] < h["T"]:
            raise _Fail(f"group at {pc}: dims {dims}, tile {h['T']}, stride {h['stride']}",
                        "emit")
        n_regs = self.plan.reg_elems[dt] // h["stride"]
        moves = self.screen(pc, n_ops, dt, dims, n_regs) if n_ops >= SCREEN_MIN else None
        if moves is None:  # something is wrong, or unusual: the record-by-record check
            self.records_in_order(pc, g, notes, n_ops, dt, dims, n_regs)
        else:
            self.follow(moves, g, notes, dims)

    def records_in_order(self, pc: int, g: Any, notes: list, n_ops: int, dt: np.dtype,
                         dims: tuple, n_regs: int) -> None:
        """The group's records checked one by one, in order: the definition of what a
        group must satisfy (:meth:`screen` proves the same of a whole group at once), and
        the first violation named."""
        code = self.plan.code
        written: set[int] = set()
        loads: list[tuple] = []  # (buffer, offset, strides, root, extent)
        stores: list[tuple] = []
        records = self.records
        for k in range(n_ops):
            q = pc + _HEAD + _W * k
            note = notes[k] if k < len(notes) else (None, None)
            self.node = note[0] or g
            slot = code[q]
            info = records.get(slot)
            if info is None:
                raise _Fail(f"group record {k}: slot {slot} names no group kernel "
                            f"({self.kernel_of.get(slot)})", "emit")
            name, reg_dt, buf_dt = info
            if reg_dt != dt:
                raise _Fail(f"group record {k}: kernel {self.kernel_of[slot]} in a {dt} group",
                            "emit")
            if buf_dt is not None:
                self.transfer(code, q, name, buf_dt, dims, n_regs, written, loads, stores,
                              -1 if note[1] is None else note[1])
                continue
            sub = code[q + _OP_SUB]
            n_in = _N_IN.get((name, sub))
            if n_in is None:
                raise _Fail(f"group record {k}: sub-op {sub} is not one of kernel {name}'s",
                            "emit")
            regs = (code[q + _OP_A], code[q + _OP_B], code[q + _OP_C])[:n_in]
            dst = code[q + _OP_DST]
            for r in regs:
                if r not in written:
                    raise _Fail(f"group record {k} ({name}): register {r} read before it is "
                                "written", "emit")
            if not 0 <= dst < n_regs:
                raise _Fail(f"group record {k} ({name}): register {dst} of {n_regs}", "emit")
            if (name, sub) in _FRESH and dst in regs:
                raise _Fail(f"group record {k} ({name}): output register {dst} is an input",
                            "emit")
            written.add(dst)
        self.node = g
        self.fused_hazards(loads, stores, dims)

    def screen(self, pc: int, n_ops: int, dt: np.dtype, dims: tuple,
               n_regs: int) -> tuple | None:
        """Every check :meth:`records_in_order` makes of a group's records but the
        hazards, over all records at once (NumPy over the words); None when one fails (or
        a number is too large to add up in int64 safely): the records are then checked in
        order, which names the violation. Else the memory transfers, in order, as lists
        ``(record, sub-op, buffer, offset, strides, lowest, highest)`` for
        :meth:`follow`."""
        words = self.words
        if words is None:
            return None
        if not self.tabled:
            self._screen_tables()
            self.tabled = True
        rec = words[pc + _HEAD:pc + _HEAD + _W * n_ops].reshape(n_ops, _W)
        slots = rec[:, 0]
        if n_ops == 0:
            return [], [], [], [], [], [], []
        if slots.min() < 0 or slots.max() >= len(self.rec_kind):
            return None
        kind = self.rec_kind[slots]
        if not kind.all() or (self.rec_dt[slots] != (dt == _F64)).any():
            return None
        sub = rec[:, 1]
        is_op = kind == 3
        ops = np.flatnonzero(is_op)
        pos = np.arange(n_ops)
        # registers: written (an op's output, a load, a number) before read (an op's
        # inputs, a store's register); an op's output in range and, for vmath's ops, not one
        # of its inputs
        w_pos, w_reg, r_pos, r_reg = [], [], [], []
        if ops.size:
            o_slot, o_sub = slots[ops], sub[ops]
            if o_sub.min() < 0 or o_sub.max() >= self.rec_n_in.shape[1]:
                return None
            n_in = self.rec_n_in[o_slot, o_sub]
            dst = rec[ops, _OP_DST]
            if (n_in < 0).any() or dst.min() < 0 or dst.max() >= n_regs:
                return None
            ins = rec[ops][:, [_OP_A, _OP_B, _OP_C]]
            used = np.arange(3) < n_in[:, None]
            if (self.rec_fresh[o_slot, o_sub][:, None] & used & (ins == dst[:, None])).any():
                return None
            w_pos.append(ops)
            w_reg.append(dst)
            r_pos.append(np.broadcast_to(ops[:, None], ins.shape)[used])
            r_reg.append(ins[used])
        moves = np.flatnonzero(~is_op)
        m_sub, m_reg = sub[moves], rec[moves, _MEM_REG]
        if moves.size:
            if m_sub.min() < 0 or m_sub.max() >= len(_MEM_SUB_OK) or \
                    not _MEM_SUB_OK[m_sub].all() or m_reg.min() < 0 or m_reg.max() >= n_regs:
                return None
            casts = kind[moves] == 2
            if (casts & (m_sub != KE.LOAD) & (m_sub != KE.STORE)).any():
                return None
            index = rec[moves, _SCALAR_INDEX]
            s_run, s_const = m_sub == KE.SCALAR_S, m_sub == KE.SCALAR_K
            if (s_run & ((index < 0) | (index >= self.n_s))).any() or \
                    (s_const & ((index < 0) | (index >= self.n_k))).any():
                return None
            loads = m_sub == KE.LOAD
            w_pos.append(moves[loads | s_run | s_const])
            w_reg.append(m_reg[loads | s_run | s_const])
            outs = (m_sub == KE.STORE) | (m_sub == KE.STORE_ADD)
            r_pos.append(moves[outs])
            r_reg.append(m_reg[outs])
            mem = ~(s_run | s_const)
            moves, m_sub = moves[mem], m_sub[mem]
        if w_pos:
            first = np.full(n_regs, n_ops, np.int64)
            np.minimum.at(first, np.concatenate(w_reg), np.concatenate(w_pos))
            reads = np.concatenate(r_reg)
            if reads.size and (reads.min() < 0 or reads.max() >= n_regs or
                               (first[reads] >= np.concatenate(r_pos)).any()):
                return None
        if not moves.size:
            return [], [], [], [], [], [], []
        spans = self.spans(rec[moves], slots[moves], dims)
        if spans is None:
            return None
        buf, off, strides, lo, hi = spans
        return (moves.tolist(), m_sub.tolist(), buf.tolist(), off.tolist(),
                list(map(tuple, strides.tolist())), lo.tolist(), hi.tolist())

    def spans(self, m: np.ndarray, slots: np.ndarray, dims: tuple) -> tuple | None:
        """For :meth:`screen`: transfer records ``m`` (of kernel ``slots``) each in a buffer
        of the table, of its kernel's dtype, walking ``dims`` inside it: their buffers,
        offsets, strides, lowest and highest elements; None if one is not."""
        buf, off = m[:, _MEM_BUF], m[:, _MEM_OFF]
        strides = m[:, _MEM_S0:_MEM_S0 + 4]
        if buf.min() < 0 or buf.max() >= self.n_buffers or \
                (self.buf_code[buf] != self.rec_buf[slots]).any():
            return None
        if off.min() < -_SAFE or off.max() > _SAFE or strides.min() < -_SAFE or \
                strides.max() > _SAFE or max(dims) > _SAFE:
            return None  # (int64 sums below could wrap)
        reach = (np.array(dims, np.int64) - 1) * strides
        lo = off + np.minimum(reach, 0).sum(axis=1)
        hi = off + np.maximum(reach, 0).sum(axis=1)
        if lo.min() < 0 or (hi >= self.buf_size[buf]).any():
            return None
        return buf, off, strides, lo, hi

    def follow(self, moves: tuple, g: Any, notes: list, dims: tuple) -> None:
        """The hazards of a group :meth:`screen` passed: its transfers' reads and writes
        in order, as :meth:`records_in_order` follows them."""
        loads: list[tuple] = []
        stores: list[tuple] = []
        read, write, hulls = self.read, self.write, self.hulls
        n_notes = len(notes)
        k = -1
        try:
            for k, sub, b, off, strides, lo, hi in zip(*moves):
                root = notes[k][1] if k < n_notes else None
                if root is None:
                    root = -1
                span = (lo, hi)
                if sub == KE.LOAD:
                    held = hulls.get(b)  # (read's first case, inline: the commonest)
                    hull = held.get(root) if held is not None and len(held) == 1 else None
                    if hull is None or not (hull[0] <= lo and hi <= hull[1]):
                        read(b, span, root, "load")
                    loads.append((b, off, strides, root, span))
                    continue
                if sub == KE.STORE_ADD:
                    read(b, span, root, "accumulating store")
                write(b, span, root, "store")
                stores.append((b, off, strides, root, span))
        except _Fail:
            self.node = (notes[k][0] if k < n_notes else None) or g
            raise
        self.node = g
        self.fused_hazards(loads, stores, dims)

    def transfer(self, code, q, name, buf_dt, dims, n_regs, written, loads, stores,
                 root) -> None:
        sub = code[q + _MEM_SUB]
        reg = code[q + _MEM_REG]
        if sub not in _MEM_SUBS or name == "cast" and sub not in (KE.LOAD, KE.STORE):
            raise _Fail(f"memory record: sub-op {sub} of kernel {name}", "emit")
        if not 0 <= reg < n_regs:
            raise _Fail(f"memory record: register {reg} of {n_regs}", "emit")
        if sub == KE.SCALAR_S or sub == KE.SCALAR_K:
            self.scalar(-2 if sub == KE.SCALAR_S else -1, code[q + _SCALAR_INDEX], "scalar load")
            written.add(reg)
            return
        b = code[q + _MEM_BUF]
        what = "load" if sub == KE.LOAD else "store"
        off = code[q + _MEM_OFF]
        strides = (code[q + _MEM_S0], code[q + _MEM_S0 + 1], code[q + _MEM_S0 + 2],
                   code[q + _MEM_S0 + 3])
        span = self.region(b, buf_dt, off, dims, strides, what)
        if sub == KE.LOAD:
            self.read(b, span, root, what)
            loads.append((b, off, strides, root, span))
            written.add(reg)
            return
        if reg not in written:
            raise _Fail(f"{what} of register {reg} before it is written", "emit")
        if sub == KE.STORE_ADD:
            self.read(b, span, root, "accumulating store")
        self.write(b, span, root, what)
        stores.append((b, off, strides, root, span))

    def fused_hazards(self, loads, stores, dims) -> None:
        """A group runs tile by tile: a store in one tile must not write what a load reads in a
        later tile, unless both walk the same elements in the same order (a load then store
        of one element in one tile, an in-place update)."""
        if not stores or not loads:
            return
        by_buffer: dict[int, list] = {}
        for load in loads:
            if load[4] is not None:
                by_buffer.setdefault(load[0], []).append(load)
        for sb, soff, sstr, sroot, sspan in stores:
            if sspan is None:
                continue
            for lb, loff, lstr, lroot, lspan in by_buffer.get(sb, ()):
                if lspan[0] > sspan[1] or sspan[0] > lspan[1]:
                    continue
                same = loff == soff and all(
                    ls == ss or d == 1 for ls, ss, d in zip(lstr, sstr, dims))
                if not same:
                    raise _Fail(f"a fused store of value %{sroot} into buffer {sb} (elements "
                                f"{sspan[0]}..{sspan[1]}) overlaps a load of value %{lroot} "
                                f"through another view (offset {loff}, strides {lstr} vs "
                                f"{soff}, {sstr}): a later tile would read overwritten "
                                "elements", "schedule (fusion hazard)")

    # -- Python steps ---------------------------------------------------------------------

    def python(self, node: Any) -> None:
        self.node = node
        step = node.step
        for v in step.input_vars():
            span = self.region_of(v)
            if span is not None:
                self.read(span[0], span[1], span[2], f"Python step {step.name}")
        for v in node.out:
            span = self.region_of(v)
            if span is not None:
                self.write(span[0], span[1], span[2], f"Python step {step.name}")

    def region_of(self, v: Any) -> tuple | None:
        st = self.low.storage.get(v.id)
        if st is None or isinstance(st, (Scalar, PyObj)):
            return None
        if isinstance(st, View):
            b = self.plan.buf_of.get(st.base)
            off, strides, root = st.offset, st.strides, st.base
        else:
            b = self.plan.buf_of.get(v.id)
            off, strides, root = 0, c_strides(v.shape), v.id
        if b is None:
            return None
        if isinstance(st, Own) and v.id in self.plan.inplace:
            root = v.id
        return b, self.extent(b, off, v.shape, strides, f"value %{v.id}"), root


def verify(low: Any, plan: Any, program: Any = None) -> np.ndarray | None:
    """Check the emitted ``plan`` of lowering ``low`` (see the module docstring); raise
    :class:`~fungrad.errors.JitInternalError` on the first violation. With ``program``, its
    outputs and effect values are read after the run too (a donated argument that is also
    returned must still hold it). Returns the int64 words it checked (what the executable
    runs; None when a word does not fit in int64)."""
    v = _Verifier(low, plan)
    v.node = None
    try:
        v.run()
        if program is not None:
            v.node = None
            for var in _left(program):
                span = v.region_of(var)
                if span is not None:
                    v.read(span[0], span[1], span[2], f"the result %{var.id}")
        return v.words
    except _Fail as fail:
        op, where = _describe(v.node)
        at = f" at {where}" if where else ""
        raise JitInternalError(
            f"fg.jit: the compiled program of {op}{at} failed verification ({fail.what}); "
            f"made by pass {fail.made_by}, found by pass verify. It was not run. This is a "
            "bug in fungrad's compiler: please report it; meanwhile call the function "
            "without fg.jit.") from None
