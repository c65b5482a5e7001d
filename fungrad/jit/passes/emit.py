"""Emission: buffers planned by liveness, groups and blocks encoded as runner instructions.

Every value that needs memory gets a *buffer* (an entry of the runner's address table):
program inputs (``ext``, their arrays are set at each call), constants, *fresh* buffers
allocated at each call for what the call hands out (outputs, new ``.grad`` arrays, effect
values), and *internal* buffers, reused by values whose lifetimes do not overlap (greedy
best fit by dtype and size, over the final order of instructions). A value updated in place
(a parameter) is stored straight into its input's buffer by its commit-phase group.

Inside a group, registers are allocated by liveness too; an op's output register is never
one of its input registers (a loop reading and writing one row would not vectorise), and the
group's iteration space is collapsed to at most four dimensions over all its loads and
stores (``(B, N) + (N,)`` is one row-broadcast pass, not ``B`` passes).
"""

from __future__ import annotations

import numpy as np

from ..backend import isa
from ..backend import kernels_ew as KE
from ..backend.isa import MEM, OP, SCALAR
from ..backend.kernels_block import (
    R_MAX, R_MIN, R_SUM, ROW_LOG_SOFTMAX, ROW_SOFTMAX, SCATTER_ADD, SCATTER_SCALED, SCATTER_ZERO,
)
from ..ir import Const, Ext, Node, Own, PassFailure, Scalar, Unsupported, View, c_strides
from ..program import Var, var_refs
from . import loops
from .lower import Lowering
from .schedule import Facts, Fusion, Schedule

__all__ = ["Plan", "emit"]

T_TILE = 2048  # the longest tile: a group with few registers walks big arrays in 8 KiB rows
T_MANY = 512  # the tile of a group holding many registers at once (they stay in L1/L2)
PAD = 16  # elements between registers (see native.C_STRIDE)
LOAD_KEEP = 16  # a loaded value used again more than this many ops later is loaded again

#: an op record is its fields' values, then these zeros (``isa.packer(OP, "slot sub dst a b
#: c")``'s words, made inline in :meth:`_GroupEmitter.run`: the fields lead the record)
_OP_PAD = (0,) * (isa.W - len(OP))
assert OP._fields == ("slot", "sub", "dst", "a", "b", "c") and tuple(OP) == tuple(range(6))
#: an operand's key in a group (an int: keys are hashed a dozen times per member):
#: ``x << 2 | kind`` — a member's value (x: its Var id), a load of an array (Var id), a
#: runtime scalar (index in S) or a constant (index in K)
_V, _L, _S, _K = 0, 1, 2, 3
_PACK_MEM = isa.packer(MEM, "slot sub reg buf off")  # (strides written once the group is done)
_PACK_SCALAR = isa.packer(SCALAR, "slot sub reg index")


class Buffer:
    """One entry of the address table."""

    __slots__ = ("kind", "dtype", "size", "ext", "value", "vars")

    def __init__(self, kind: str, dtype, size: int, ext: int = -1, value=None) -> None:
        self.kind = kind  # "ext", "const", "internal" or "fresh"
        self.dtype = np.dtype(dtype)
        self.size = size
        self.ext = ext
        self.value = value
        self.vars: list[int] = []

    def __repr__(self) -> str:
        return f"<buf {self.kind} {self.dtype}[{self.size}]>"


class Plan:
    """What the executable needs: code, segments, buffers, scalar tables and scratch sizes."""

    def __init__(self) -> None:
        self.code: list[int] = []
        self.segments: list = []  # ("run", start, stop) or ("py", Node)
        self.buffers: list[Buffer] = []
        self.buf_of: dict[int, int] = {}  # root Var id -> buffer index
        self.kernels: dict[tuple, int] = {}  # (group, dtypes...) -> table slot
        self._slots: dict[tuple, int] = {}
        self.K: list[float] = []
        self.k_index: dict[float, int] = {}
        self.reg_elems = {np.dtype(np.float32): 0, np.dtype(np.float64): 0}
        self.work_bytes = 0
        self.bits_len = T_TILE
        self.errors: list[tuple[int, Node]] = []  # (instruction position, node) of checks
        self.inplace: dict[int, int] = {}
        #: instruction position -> what emission meant, for the verifier: a block's
        #: ``(node, {operand role: root Var id})``; a group's ``(group, [(member node, root
        #: Var id or None) per record])``
        self.notes: dict[int, tuple] = {}

    def slot(self, name: str, *dtypes) -> int:
        known = self._slots.get((name, *dtypes))  # (np.dtype(...).name is slow: memoised)
        if known is not None:
            return known
        key = (name,) + tuple(np.dtype(d).name for d in dtypes)
        if key not in self.kernels:
            self.kernels[key] = len(self.kernels)
        self._slots[(name, *dtypes)] = self.kernels[key]
        return self.kernels[key]

    def const(self, value: float) -> int:
        value = float(value)
        key = value if value == value else "nan"
        i = self.k_index.get(key)
        if i is None:
            i = self.k_index[key] = len(self.K)
            self.K.append(value)
        return i


def _kernel_dtype(dt: np.dtype) -> np.dtype:
    return np.dtype(np.uint8) if dt == np.dtype(np.bool_) else dt


# --------------------------------------------------------------------------------------------
# buffers
# --------------------------------------------------------------------------------------------


def _root(low: Lowering, vid: int) -> int:
    st = low.storage.get(vid)
    return st.base if isinstance(st, View) else vid


def _made(members: list[Node]) -> dict[int, int]:
    """Var id -> position of the member making it (each Var is made once)."""
    return {m.out[0].id: i for i, m in enumerate(members)}


def _item_rw(low: Lowering, item, sched: Schedule,
             made: dict | None = None) -> tuple[set[int], set[int]]:
    """The roots ``item`` reads and writes (``made``: a fused group's :func:`_made`)."""
    if not isinstance(item, Fusion) and item.kind == "loop":  # everything its body touches
        return loops.item_rw(low, item, sched, _item_rw)
    facts = sched.facts if sched.facts is not None else Facts(low)
    in_vars, root_of = facts.in_vars, facts.base.get
    if isinstance(item, Fusion):  # (elementwise members: their inputs are their Var args)
        members = item.members
        produced = _made(members) if made is None else made
        reads = {root_of(a.id, a.id) for n in members
                 for a in (n.args if not n.params else in_vars(n))
                 if type(a) is Var and a.id not in produced}
    else:
        reads = {root_of(v.id, v.id) for v in in_vars(item)}
        if item.kind == "py":
            reads.update(_root(low, v.id) for v in var_refs(item.step.params))
    writes: set[int] = set()
    if isinstance(item, Fusion):
        for vid in item.stores:
            writes.add(sched.inplace.get(vid, _root(low, vid)))
        reads.update(item.inplace_loads)
    else:
        for v in item.out:
            writes.add(_root(low, v.id))
        table = item.params.get("table") if item.kind != "py" else None
        if table is not None:
            reads.add(_root(low, table.id))
        into = item.params.get("into") if item.kind != "py" else None
        if into is not None:
            writes.add(into.id)
    return reads, writes


def _plan_buffers(low: Lowering, sched: Schedule, plan: Plan) -> dict[int, dict]:
    """Give every value a buffer (see the module docstring). Returns each fused group's
    :func:`_made` (by ``id``), for its emission."""
    var_of = low.vars_by_id()
    # inputs and constants
    for vid, st in low.storage.items():  # (type tests: no storage class has subclasses)
        if type(st) is Ext:
            shape, dt = var_of[vid].shape, var_of[vid].dtype
            b = len(plan.buffers)
            plan.buffers.append(Buffer("ext", dt, _size(shape), ext=st.index))
            plan.buf_of[vid] = b
        elif type(st) is Const:
            b = len(plan.buffers)
            plan.buffers.append(Buffer("const", st.value.dtype, st.value.size, value=st.value))
            plan.buf_of[vid] = b
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    made: dict[int, dict] = {}
    for i, item in enumerate(sched.items):
        if isinstance(item, Fusion):
            made[id(item)] = _made(item.members)
        reads, writes = _item_rw(low, item, sched, made.get(id(item)))
        for r in writes:
            first.setdefault(r, i)
            last[r] = max(last.get(r, i), i)
        for r in reads:
            last[r] = max(last.get(r, i), i)
    fresh_roots = {_root(low, r) for r in sched.roots} - set(sched.inplace)
    storage = low.storage
    owned = [r for r in first if type(storage.get(r)) is Own and r not in plan.buf_of]
    for r in owned:
        if r in fresh_roots:
            shape, dt = var_of[r].shape, var_of[r].dtype
            plan.buf_of[r] = len(plan.buffers)
            plan.buffers.append(Buffer("fresh", dt, _size(shape)))
    # in-place values live in their input's buffer
    for v, x in sched.inplace.items():
        plan.buf_of[v] = plan.buf_of[x]
    # internal buffers: greedy reuse over the item order
    starts: dict[int, list[int]] = {}
    for r in owned:
        if r not in plan.buf_of:
            starts.setdefault(first[r], []).append(r)
    ends: dict[int, list[int]] = {}
    for r in owned:
        if r not in fresh_roots and r not in sched.inplace:
            ends.setdefault(last[r], []).append(r)
    free: dict[np.dtype, list[int]] = {}
    for i in range(len(sched.items)):
        for r in starts.get(i, []):
            shape, dt = var_of[r].shape, var_of[r].dtype
            size = max(_size(shape), 1)
            pool = free.setdefault(dt, [])
            best = None
            for j, b in enumerate(pool):
                cap = plan.buffers[b].size
                if cap >= size and (best is None or cap < plan.buffers[pool[best]].size):
                    best = j
            if best is not None and plan.buffers[pool[best]].size <= 4 * size + 64:
                b = pool.pop(best)
            else:
                b = len(plan.buffers)
                plan.buffers.append(Buffer("internal", dt, size))
            plan.buf_of[r] = b
        for r in ends.get(i, []):
            b = plan.buf_of.get(r)
            if b is not None and plan.buffers[b].kind == "internal":
                free.setdefault(plan.buffers[b].dtype, []).append(b)
    return made


def _size(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n



# --------------------------------------------------------------------------------------------
# operands
# --------------------------------------------------------------------------------------------


def _operand(low: Lowering, plan: Plan, v) -> tuple[int, int, tuple]:
    """(buffer, element offset, element strides) of an array value."""
    st = low.storage[v.id]
    if type(st) is View:
        return plan.buf_of[st.base], st.offset, st.strides
    return plan.buf_of[v.id], 0, c_strides(v.shape)


def _broadcast_strides(shape: tuple, vshape: tuple, vstrides: tuple) -> tuple:
    lead = len(shape) - len(vshape)
    out = []
    for k in range(len(shape)):
        j = k - lead
        out.append(0 if j < 0 or vshape[j] == 1 else vstrides[j])
    return tuple(out)


def _collapse(shape: tuple, operands: list[list[int]]) -> tuple[tuple, list[list[int]]]:
    """Merge adjacent dimensions that every operand walks contiguously; drop size-1 ones."""
    dims = [i for i, d in enumerate(shape) if d != 1]
    shp = [shape[i] for i in dims]
    strs = [[s[i] for i in dims] for s in operands]
    k = len(shp) - 1
    while k > 0:
        if all(st[k - 1] == st[k] * shp[k] for st in strs):
            shp[k - 1] *= shp[k]
            del shp[k]
            for st in strs:
                st[k - 1] = st[k]
                del st[k]
        k -= 1
    return tuple(shp), strs


# --------------------------------------------------------------------------------------------
# groups
# --------------------------------------------------------------------------------------------


def _adds_into_itself(low: Lowering, m: Node) -> bool:
    """``acc[index] = acc[index] + g`` written into its own slice (see rewrite.accumulate)."""
    if m.op != "add" or m.params.get("into") is None or type(m.args[0]) is not Var:
        return False
    a, o = low.storage.get(m.args[0].id), low.storage.get(m.out[0].id)
    return (type(a) is View and type(o) is View and a.base == o.base
            and a.offset == o.offset and a.strides == o.strides and a.shape == o.shape
            and m.args[0].dtype == m.out[0].dtype == m.dtype)


def _fused_members(g: Fusion, made: dict[int, int] | None = None
                   ) -> tuple[list[Node], dict[int, int]]:
    """The group's members with each single-use product folded into the add or subtract
    that consumes it: ``x * y + c`` is one op (``muladd``), ``c - x * y`` one
    (``rmulsub``) — fewer passes over the registers, same two roundings as NumPy. And the
    Var ids the members make (a folded product's too: nothing reads it): ``made``, the
    group's :func:`_made`, made if not given.

    A product is folded when the group makes it before the add, does not store it (so no
    node outside the group reads it) and it has one reader in the program (``g.readers``):
    then the add is its only use."""
    members, stores, readers = g.members, g.stores, g.readers
    pos = _made(members) if made is None else made
    fused: dict[int, Node] = {}
    dropped: set[int] = set()
    for i, m in enumerate(members):
        if m.op in ("add", "subtract") and len(m.args) == 2 and not m.params:
            for k, a in enumerate(m.args):
                if type(a) is not Var:
                    continue
                j = pos.get(a.id)  # (an earlier member's product: j < i)
                if j is None or j >= i or j in dropped or a.id in stores or \
                        len(readers.get(a.id, ())) != 1:
                    continue
                p = members[j]
                if p.op != "multiply" or len(p.args) != 2 or p.params:
                    continue
                other = m.args[1 - k]
                if m.op == "add":
                    op = "muladd"
                else:
                    op = "mulsub" if k == 0 else "rmulsub"
                fused[i] = Node("ew", op, (p.args[0], p.args[1], other), m.out, dtype=m.dtype)
                dropped.add(j)
                break
    if not fused:
        return members, pos
    return [fused.get(i, m) for i, m in enumerate(members) if i not in dropped], pos


class _GroupEmitter:
    """Encodes one fused group. Registers are allocated by liveness while the members are
    walked in order; each record's words are made at once from its fields' values
    (:func:`isa.packer`); at the end, the iteration space is collapsed over the distinct
    walks of the transfers (a chain's thousands of transfers walk one or two ways) and each
    transfer's strides are written in."""

    def __init__(self, low: Lowering, plan: Plan, sched: Schedule, g: Fusion,
                 base: dict[int, int], made: dict[int, int] | None = None) -> None:
        self.low, self.plan, self.sched, self.g, self.base = low, plan, sched, g, base
        self.dt = np.dtype(g.dtype)
        self.members, self.produced = _fused_members(g, made)
        self.notes: list = []  # per record: (member node, root Var id of a transfer or None)
        self.words: list[int] = []  # the records' words, W per record, in order
        self.mems: list[int] = []  # where each transfer's record starts in ``words``
        self.walks: list[tuple] = []  # per transfer: its strides over the group's space
        self.walk_of: dict[tuple, tuple] = {}  # (shape, strides) -> broadcast strides
        self.slot_of: dict = {}  # buffer (None: a scalar) or op name -> kernel slot (memoised)
        self.reg_of: dict = {}  # operand key -> register holding it
        self.free: list[int] = []
        self.n_regs = 0
        self.current: Node | None = None  # the member being emitted (for the notes)
        self._plan_uses()

    # -- operands and registers ---------------------------------------------------------------

    def _plan_uses(self) -> None:
        """Each member's operand keys, the member positions using each key (in order), and
        the loads pinned before an in-place store (see :meth:`load_pinned`)."""
        members, produced = self.members, self.produced
        spills, storage, const = self.g.spills, self.low.storage, self.plan.const
        arg_keys: list[list[int]] = []
        unique_keys: list[list[int]] = []
        uses: dict = {}
        for i, m in enumerate(members):
            keys = []  # (what _key says, inline: once per operand of a 40,000-member group)
            for a in m.args:
                if type(a) is not Var:
                    keys.append(const(a) << 2 | _K)
                    continue
                vid = a.id
                if vid in produced and vid not in spills:
                    keys.append(vid << 2)  # (_V)
                    continue
                st = storage[vid]
                if type(st) is Scalar:
                    keys.append(st.index << 2 | _S if st.runtime else const(st.value) << 2 | _K)
                else:
                    keys.append(vid << 2 | _L)
            arg_keys.append(keys)
            if len(keys) == 1 or len(keys) == 2 and keys[0] != keys[1]:
                unique = keys  # (the same list: neither is changed)
            else:
                unique = list(dict.fromkeys(keys))
            unique_keys.append(unique)
            for k in unique:
                got = uses.get(k)
                if got is None:
                    uses[k] = [i]
                else:
                    got.append(i)
        self.arg_keys, self.unique_keys, self.uses = arg_keys, unique_keys, uses
        self.next_use = dict.fromkeys(uses, 0)  # index into uses[k] of the next use
        # An array stored in place (a parameter's update) must not be loaded after that
        # store: a use of it after the store reads a copy loaded just before the store,
        # pinned in its register until that use.
        self.pin_at: dict[int, list] = {}  # member position -> [(key, var)] to load first
        self.pinned: set = set()
        inplace, stores = self.sched.inplace, self.g.stores
        if not inplace:
            return
        stores_into = {inplace[m.out[0].id]: i for i, m in enumerate(members)
                       if m.out[0].id in inplace and m.out[0].id in stores}
        for x, at in stores_into.items():
            if any(i > at for i in uses.get(x << 2 | _L, ())):
                var = next(a for m in members for a in m.args if type(a) is Var and a.id == x)
                self.pin_at.setdefault(at, []).append((x << 2 | _L, var))
                self.pinned.add(x << 2 | _L)

    def alloc(self) -> int:
        if self.free:
            return self.free.pop()
        self.n_regs += 1
        return self.n_regs - 1

    def release(self, i: int) -> None:
        """Free the registers of member ``i``'s operands not read again soon after it."""
        uses, next_use, reg_of = self.uses, self.next_use, self.reg_of
        for k in self.unique_keys[i]:
            j = next_use[k] = next_use[k] + 1
            later = uses[k]
            if j < len(later) and (not k & 3 or k in self.pinned or later[j] - i <= LOAD_KEEP):
                continue  # read again soon (or a member's value: held until its last use)
            r = reg_of.pop(k, None)
            if r is not None:
                self.free.append(r)

    def load(self, k: tuple, a) -> int:
        r = self.alloc()
        if k & 3 >= _S:
            self._record(_PACK_SCALAR((self._slot_mem(None), KE.SCALAR_S if k & 3 == _S
                                       else KE.SCALAR_K, r, k >> 2)), None)
        else:
            buf, off, strides = _operand(self.low, self.plan, a)
            self.transfer(KE.LOAD, r, buf, off, strides, a.shape, self.base.get(a.id, a.id))
        self.reg_of[k] = r
        return r

    def load_pinned(self, i: int) -> None:
        """Load the copies pinned before member ``i``'s in-place store (see above)."""
        for k, var in self.pin_at.get(i, ()):
            if k not in self.reg_of:
                self.load(k, var)

    # -- records ------------------------------------------------------------------------------

    def _record(self, words: list[int], root) -> None:
        self.words += words
        self.notes.append((self.current, root))

    def _slot_mem(self, buf) -> int:
        """The transfer kernel's slot for buffer ``buf`` (None: the group's own dtype)."""
        slot = self.slot_of.get(buf)
        if slot is None:
            bdt = self.dt if buf is None else self.plan.buffers[buf].dtype
            slot = self.plan.slot("mem", self.dt) if bdt == self.dt else \
                self.plan.slot("cast", _kernel_dtype(bdt), self.dt)
            self.slot_of[buf] = slot
        return slot

    def transfer(self, kind: int, reg: int, buf: int, off: int, strides: tuple, shape: tuple,
                 root: int) -> None:
        slot = self.slot_of.get(buf)
        self.mems.append(len(self.words))
        self.words += _PACK_MEM((self._slot_mem(buf) if slot is None else slot, kind, reg, buf,
                                 off))  # (self._record, inline)
        self.notes.append((self.current, root))
        walk = self.walk_of.get((shape, strides))
        if walk is None:
            walk = self.walk_of[(shape, strides)] = _broadcast_strides(self.g.shape, shape,
                                                                       strides)
        self.walks.append(walk)

    def store_target(self, out: Var) -> tuple:
        """Where member output ``out`` is stored: (buffer, offset, strides)."""
        if out.id in self.sched.inplace:  # a parameter's update, written where it lies
            return self.plan.buf_of[out.id], 0, c_strides(out.shape)
        return _operand(self.low, self.plan, out)

    # -- members ------------------------------------------------------------------------------

    def run(self) -> None:
        reg_of, stores, uses, free = self.reg_of, self.g.stores, self.uses, self.free
        arg_keys, unique_keys, next_use = self.arg_keys, self.unique_keys, self.next_use
        pinned, slot_of, words, notes = self.pinned, self.slot_of, self.words, self.notes
        low, pin_at = self.low, self.pin_at
        for i, m in enumerate(self.members):
            self.current = m
            out = m.out[0]
            if m.params and _adds_into_itself(low, m):
                self._accumulate(i, m)
                continue
            keys = arg_keys[i]
            if len(keys) == 2:  # (the commonest: unrolled, no list)
                k = keys[0]
                r0 = reg_of[k] if k in reg_of else self.load(k, m.args[0])
                k = keys[1]
                regs = [r0, reg_of[k] if k in reg_of else self.load(k, m.args[1]), 0]
            elif len(keys) == 1:
                k = keys[0]
                regs = [reg_of[k] if k in reg_of else self.load(k, m.args[0]), 0, 0]
            else:
                regs = [reg_of[k] if k in reg_of else self.load(k, a)
                        for k, a in zip(keys, m.args)]
                regs += (0, 0, 0)
            if m.op == "copy" and out.id << 2 not in uses and out.id in stores:
                # a copy only stored (into a slice, a concatenation's part, a zeroed .grad):
                # the store reads its input's register, no copy between registers
                self.load_pinned(i)
                self._store(KE.STORE, regs[0], out)
                self.release(i)
                continue
            # dst = op(regs), then the store of dst if the group stores it (inline: this
            # runs once per member of groups of tens of thousands)
            if free:  # (self.alloc)
                dst = free.pop()
            else:
                dst = self.n_regs
                self.n_regs += 1
            # (never one of the inputs: a loop reading and writing a row is scalar)
            slot = slot_of.get(m.op)
            if slot is None:
                group, sub, _ = KE.SUB[m.op]
                slot = slot_of[m.op] = (self.plan.slot(group, self.dt), sub)
            words += (slot[0], slot[1], dst, regs[0], regs[1], regs[2])  # (an OP record)
            words += _OP_PAD
            notes.append((m, None))
            for k in unique_keys[i]:  # (self.release(i))
                j = next_use[k] = next_use[k] + 1
                later = uses[k]
                if j < len(later) and (not k & 3 or k in pinned or later[j] - i <= LOAD_KEEP):
                    continue
                r = reg_of.pop(k, None)
                if r is not None:
                    free.append(r)
            if pin_at:
                self.load_pinned(i)
            if out.id in stores:
                self._store(KE.STORE, dst, out)
            made = out.id << 2  # (its key, _V)
            if made in uses:
                reg_of[made] = dst
            else:
                free.append(dst)
        self._write()

    def _accumulate(self, i: int, m: Node) -> None:
        """``acc[index] += g``: one accumulating store of ``g``'s register."""
        k = self.arg_keys[i][1]
        r = self.reg_of[k] if k in self.reg_of else self.load(k, m.args[1])
        out = m.out[0]
        buf, off, strides = _operand(self.low, self.plan, out)
        self.transfer(KE.STORE_ADD, r, buf, off, strides, out.shape,
                      self.base.get(out.id, out.id))
        uses, next_use, reg_of = self.uses, self.next_use, self.reg_of
        for k in self.unique_keys[i]:
            j = next_use[k] = next_use[k] + 1
            if j >= len(uses[k]) and k in reg_of:
                self.free.append(reg_of.pop(k))

    def _store(self, kind: int, reg: int, out: Var) -> None:
        buf, off, strides = self.store_target(out)
        self.transfer(kind, reg, buf, off, strides, out.shape, self.base.get(out.id, out.id))

    # -- the group's words --------------------------------------------------------------------

    def _write(self) -> None:
        """The header and records, once per index of the dimensions beyond the runner's four."""
        plan, dt = self.plan, self.dt
        walks = list(dict.fromkeys(self.walks))  # (collapsing is the same over distinct ones)
        shape, strides = _collapse(self.g.shape, [list(w) for w in walks])
        lead = shape[:-4]  # the runner walks four dimensions: more run as one instance each
        shape = shape[-4:]
        pad = [0] * (4 - len(shape))
        dims = (1,) * len(pad) + shape
        inner = {w: pad + st[len(lead):] for w, st in zip(walks, strides)}
        words = self.words
        for q, w in zip(self.mems, self.walks):
            words[q + MEM.s0:q + MEM.s3 + 1] = inner[w]
        size = _size(shape)
        tile = min(T_TILE if self.n_regs <= 12 else T_MANY, max(size, 1))
        stride = -(-tile // 16) * 16 + PAD
        plan.reg_elems[dt] = max(plan.reg_elems[dt], self.n_regs * stride)
        n = len(words) // isa.W
        head = isa.group_head(length=isa.HEAD + isa.W * n, f64=int(dt == np.float64),
                              d0=dims[0], d1=dims[1], d2=dims[2], d3=dims[3], n_ops=n,
                              T=tile, stride=stride)
        if not lead:  # one instance (further ones: their rows are offsets, below)
            plan.notes[len(plan.code)] = (self.g, self.notes)
            plan.code += head
            plan.code += words
            return
        outer = {w: st[:len(lead)] for w, st in zip(walks, strides)}
        for index in np.ndindex(*lead):
            plan.notes[len(plan.code)] = (self.g, self.notes)
            plan.code += head
            rows = list(words)
            for q, w in zip(self.mems, self.walks):  # the transfers: this instance's rows
                rows[q + MEM.off] += sum(int(a) * b for a, b in zip(index, outer[w]))
            plan.code += rows


def _emit_group(low: Lowering, plan: Plan, sched: Schedule, g: Fusion,
                base: dict[int, int] | None = None, made: dict[int, int] | None = None) -> None:
    """Encode fused group ``g`` (``base``: the views' roots, :class:`Facts`' if not given;
    ``made``: its :func:`_made`)."""
    _GroupEmitter(low, plan, sched, g, Facts(low).base if base is None else base, made).run()


# --------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------


def _emit_block(low: Lowering, plan: Plan, node: Node) -> None:
    """Encode block node ``node``: its instruction (:data:`_BLOCK_ENCODERS`), and the
    verifier's note naming the root value behind each operand role."""
    encode = _BLOCK_ENCODERS.get(node.op)
    if encode is None:
        raise Unsupported(f"no instruction for block {node.op!r}")
    slot = plan.slot(node.op, node.dtype)
    p = node.params
    out = node.out[0] if node.out else p.get("table")  # (a check writes nothing)
    ob, oo, _ = _operand(low, plan, out) if out is not None else (0, 0, ())
    args = [_operand(low, plan, a) if _is_buffer(low, a) else _scalar_operand(low, plan, a)
            for a in node.args]
    block = _Block(low, plan, node, p, args, ob, oo, out)
    words, names = encode(block)
    roles = block.roles  # operand role (isa.REGIONS) -> root Var id, for the verifier
    if out is not None:
        roles["out"] = _root(low, out.id)
    for name, a in zip(names, node.args):
        if _is_buffer(low, a):
            roles[name] = _root(low, a.id)
    words[isa.BLOCK_SLOT] = slot
    start = len(plan.code)
    plan.notes[start] = (node, roles)
    plan.code.extend(words)
    if node.op in ("gather", "scatter", "xent", "xent_grad", "bounds"):
        plan.errors.append((start, node))


class _Block:
    """What a block's encoder reads: the node, its params ``p``, its operands ``args`` (each
    ``(buffer, offset, strides)``, or a number's ``(-1 or -2, index, ())``) and its output's
    buffer ``ob`` and offset ``oo``. An encoder whose kernel writes more than ``out`` names
    those operands' roots in ``roles`` (for the verifier)."""

    __slots__ = ("low", "plan", "node", "p", "args", "ob", "oo", "out", "roles")

    def __init__(self, low, plan, node, p, args, ob, oo, out) -> None:
        self.low, self.plan, self.node, self.p = low, plan, node, p
        self.args, self.ob, self.oo, self.out = args, ob, oo, out
        self.roles: dict[str, int] = {}

    def need(self, n: int) -> None:
        """Scratch of ``n`` elements of the node's dtype."""
        _need(self.plan, n, self.node.dtype)

    def scalar(self, a) -> tuple[int, int]:
        """(kind, index) of a number operand (see :func:`_scalar_operand`)."""
        kind, index, _ = _scalar_operand(self.low, self.plan, a)
        return kind, index


def _enc_matmul(b: _Block) -> tuple[list[int], tuple]:
    (ab, ao, (ars, acs)), (bb, bo, (brs, bcs)) = b.args
    p = b.p
    return isa.encode(isa.MATMUL, sub=0, a=ab, a_off=ao, a_rs=ars, a_cs=acs, b=bb, b_off=bo,
                      b_rs=brs, b_cs=bcs, c=b.ob, c_off=b.oo, c_rs=p["N"], M=p["M"], K=p["K"],
                      N=p["N"], acc=1 if p.get("acc") else 0), ("a", "b")


def _enc_reduce(b: _Block) -> tuple[list[int], tuple]:
    p = b.p
    kind = {"sum": R_SUM, "mean": R_SUM, "max": R_MAX, "min": R_MIN}[p["kind"]]
    kscale = b.plan.const(p["scale"]) if p["scale"] is not None else -1
    (xb, xo, _), = b.args
    b.plan.work_bytes = max(b.plan.work_bytes, 8 * p["C"])
    return isa.encode(isa.REDUCE, kind=kind, x=xb, x_off=xo, y=b.ob, y_off=b.oo, A=p["A"],
                      R=p["R"], C=p["C"], kscale=kscale), ("x",)


def _enc_gather(b: _Block) -> tuple[list[int], tuple]:
    (xb, xo, _), (ib, io, _) = b.args
    p = b.p
    return isa.encode(isa.GATHER, sum_r=p.get("sum_r", 0), t=xb, t_off=xo, idx=ib,
                      idx_off=io, out=b.ob, out_off=b.oo, count=p["count"], rows=p["rows"],
                      row=p["row"]), ("x", "idx")


def _enc_scatter(b: _Block) -> tuple[list[int], tuple]:
    (xb, xo, _), (ib, io, _) = b.args[:2]
    p = b.p
    mode = p.get("mode", SCATTER_ZERO if p.get("zero", True) else SCATTER_ADD)
    kind, index = b.scalar(p["scale"]) if mode == SCATTER_SCALED else (-1, 0)
    return isa.encode(isa.SCATTER, mode=mode, v=xb, v_off=xo, idx=ib, idx_off=io, out=b.ob,
                      out_off=b.oo, count=p["count"], rows=p["rows"], row=p["row"],
                      inner=p.get("inner", 1), vs_out=p.get("vs_out", p["row"]),
                      vs_in=p.get("vs_in", 0), skind=kind, sindex=index), ("values", "idx")


def _enc_sgd_rows(b: _Block) -> tuple[list[int], tuple]:
    (vb, vo, _), (ib, io, _), (gb, go, _) = b.args
    p = b.p
    kind, index = b.scalar(p["scale"])
    return isa.encode(isa.SGD_ROWS, v=vb, v_off=vo, idx=ib, idx_off=io, w=b.ob, w_off=b.oo,
                      g=gb, g_off=go, count=p["count"], rows=p["rows"], row=p["row"],
                      inner=p.get("inner", 1), vs_out=p.get("vs_out", p["row"]),
                      vs_in=p.get("vs_in", 0), skind=kind, sindex=index), \
        ("values", "idx", "grad")


def _enc_sgd_dense(b: _Block) -> tuple[list[int], tuple]:
    (tb, to, _), (gb, go, _) = b.args
    p = b.p
    wb, wo, _ = _operand(b.low, b.plan, p["after"])
    zeroed = b.node.out[1]
    zb, zo, _ = _operand(b.low, b.plan, zeroed)
    kind, index = b.scalar(p["scale"])
    b.roles["w"] = _root(b.low, p["after"].id)
    b.roles["zeroed"] = _root(b.low, zeroed.id)
    return isa.encode(isa.SGD_DENSE, t=tb, t_off=to, g=gb, g_off=go, w=wb, w_off=wo,
                      out=b.ob, out_off=b.oo, zeroed=zb, zeroed_off=zo, n=b.out.size,
                      skind=kind, sindex=index), ("term", "grad")


def _enc_xent(b: _Block) -> tuple[list[int], tuple]:
    (xb, xo, _), (tb, to, _) = b.args
    p = b.p
    b.need(p["N"] * p["C"] + p["N"])
    return isa.encode(isa.XENT, sub=0, x=xb, x_off=xo, t=tb, t_off=to, out=b.ob,
                      out_off=b.oo, N=p["N"], C=p["C"]), ("x", "targets")


def _enc_xent_grad(b: _Block) -> tuple[list[int], tuple]:
    (gb, go, _), (xb, xo, _), (tb, to, _) = b.args
    p = b.p
    b.need(p["N"] * p["C"] + p["N"])
    return isa.encode(isa.XENT_GRAD, sub=0, g=gb, g_off=go, x=xb, x_off=xo, t=tb, t_off=to,
                      out=b.ob, out_off=b.oo, N=p["N"], C=p["C"]), ("g", "x", "targets")


def _enc_rows(b: _Block) -> tuple[list[int], tuple]:
    (xb, xo, _), = b.args
    p = b.p
    kind = ROW_SOFTMAX if p["kind"] == "softmax" else ROW_LOG_SOFTMAX
    b.need(p["C"])
    return isa.encode(isa.ROWS, kind=kind, x=xb, x_off=xo, out=b.ob, out_off=b.oo, N=p["N"],
                      C=p["C"]), ("x",)


def _enc_lstm(b: _Block) -> tuple[list[int], tuple]:
    (gb, go, _), (cb, co, _) = b.args
    p = b.p
    b.need(11 * p["H"])
    return isa.encode(isa.LSTM, sub=0, g=gb, g_off=go, cp=cb, cp_off=co, out=b.ob,
                      out_off=b.oo, B=p["B"], H=p["H"]), ("gates", "c_prev")


def _enc_lstm_grad(b: _Block) -> tuple[list[int], tuple]:
    (db, do, _), (gb, go, _), (cb, co, _) = b.args
    p = b.p
    b.need(11 * p["H"])
    return isa.encode(isa.LSTM_GRAD, sub=0, d=db, d_off=do, g=gb, g_off=go, cp=cb,
                      cp_off=co, out=b.ob, out_off=b.oo, B=p["B"], H=p["H"]), \
        ("d", "gates", "c_prev")


def _enc_fill(b: _Block) -> tuple[list[int], tuple]:
    return isa.encode(isa.FILL, sub=0, x=b.ob, x_off=b.oo, count=b.out.size,
                      k=b.plan.const(b.p["value"])), ()


def _enc_bounds(b: _Block) -> tuple[list[int], tuple]:
    (ib, io, _), = b.args
    p = b.p
    return isa.encode(isa.BOUNDS, idx=ib, idx_off=io, count=p["count"], lo=p["lo"],
                      hi=p["hi"]), ("idx",)


#: block kernel group -> its encoder: ``(words, operand role names in argument order)``
_BLOCK_ENCODERS = {
    "matmul": _enc_matmul, "reduce": _enc_reduce, "gather": _enc_gather,
    "scatter": _enc_scatter, "sgd_rows": _enc_sgd_rows, "sgd_dense": _enc_sgd_dense,
    "xent": _enc_xent,
    "xent_grad": _enc_xent_grad, "rows": _enc_rows, "lstm": _enc_lstm,
    "lstm_grad": _enc_lstm_grad, "fill": _enc_fill, "bounds": _enc_bounds,
}


def _is_buffer(low: Lowering, a) -> bool:
    return type(a) is Var and not isinstance(low.storage[a.id], Scalar)


def _scalar_operand(low: Lowering, plan: Plan, a) -> tuple[int, int, tuple]:
    """A number as a block operand: buffer -1 and a constant's index in K, or buffer -2 and a
    runtime scalar's index in S."""
    if type(a) is not Var:
        return -1, plan.const(a), ()
    st = low.storage[a.id]
    return (-2, st.index, ()) if st.runtime else (-1, plan.const(st.value), ())


def _need(plan: Plan, n: int, dt) -> None:
    plan.work_bytes = max(plan.work_bytes, n * np.dtype(dt).itemsize)
    plan.bits_len = max(plan.bits_len, n)


# --------------------------------------------------------------------------------------------


def _emit_item(low: Lowering, plan: Plan, sched: Schedule, item) -> None:
    """Encode one item of a loop's body (no Python steps there)."""
    if isinstance(item, Fusion):
        if not any(d == 0 for d in item.shape):
            _emit_group(low, plan, sched, item)
    elif item.kind == "block":
        _emit_block(low, plan, item)
    elif item.kind == "loop":
        loops.emit_loop(low, plan, sched, item, lambda it: _emit_item(low, plan, sched, it))
    else:
        raise Unsupported(f"a Python step ({item.op}) inside a compiled loop")


def emit(low: Lowering, sched: Schedule) -> Plan:
    """Plan buffers and encode ``sched`` (see the module docstring)."""
    plan = Plan()
    plan.inplace = dict(sched.inplace)
    plan.inplace.update(sched.sparse)
    if sched.facts is None:
        sched.facts = Facts(low)
    base = sched.facts.base
    made = _plan_buffers(low, sched, plan)
    seg_start = 0
    for item in sched.items:
        if isinstance(item, Fusion):
            if any(d == 0 for d in item.shape):
                continue
            try:
                _emit_group(low, plan, sched, item, base, made.get(id(item)))
            except Exception as e:  # noqa: BLE001 (a bug: its steps go back to Python)
                raise PassFailure("emit", [m.step for m in item.members], e) from e
        elif item.kind == "block":
            try:
                _emit_block(low, plan, item)
            except Exception as e:  # noqa: BLE001
                raise PassFailure("emit", [item.step], e) from e
        elif item.kind == "loop":
            try:
                loops.emit_loop(low, plan, sched, item,
                                lambda it: _emit_item(low, plan, sched, it))
            except Exception as e:  # noqa: BLE001 (the loop goes back to Python)
                raise PassFailure("emit", [item.step], e) from e
        else:
            if len(plan.code) > seg_start:
                plan.segments.append(("run", seg_start, len(plan.code)))
            plan.segments.append(("py", item))
            seg_start = len(plan.code)
    if len(plan.code) > seg_start:
        plan.segments.append(("run", seg_start, len(plan.code)))
    return plan

