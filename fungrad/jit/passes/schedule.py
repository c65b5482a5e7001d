"""Scheduling: drop dead nodes, move in-place updates to a commit phase, fuse elementwise nodes.

*Commit phase.* An effect that writes a parameter (or optimizer state) the program also
reads — ``w -= lr * g`` — is computed in place into that array, but only after everything
that can fail has run: the elementwise nodes computing its new value (and nothing else) are
moved to the end of the program. So the runner updates parameters in place, in one fused
pass, and a step that fails leaves them untouched.

*Fusion.* Elementwise nodes with the same output shape and compute dtype join one open
group; a group runs (is closed) where something outside it first needs one of its values,
and stores only the values needed outside (outputs, effects, other nodes, views) — the rest
stay in registers. ``tanh(x * w + b)`` is one group with one store; a 3000-layer chain of
them is one group too.
"""

from __future__ import annotations

from ..backend.isa import ELEMENTWISE_BLOCKS
from ..backend.kernels_block import SCATTER_CHECK, SCATTER_SCALED
from ..ir import Ext, Node, Own, Scalar, View, c_strides
from ..program import Binding, Program, Var, var_refs
from .lower import Lowering

__all__ = ["Fusion", "schedule", "Schedule", "SPILL_DISTANCE"]

#: a value used again more than this many ops later in its group is stored and reloaded
SPILL_DISTANCE = 48


class Fusion:
    """Fused elementwise nodes of one shape and compute dtype."""

    __slots__ = ("key", "shape", "dtype", "members", "stores", "spills", "inplace_loads",
                 "commit", "readers", "movable")

    def __init__(self, key: tuple, shape: tuple, dtype, commit: bool,
                 readers: dict | None = None) -> None:
        self.key = key
        self.shape = shape
        self.dtype = dtype
        self.members: list[Node] = []
        self.stores: set[int] = set()  # Var ids stored to memory when the group runs
        self.spills: set[int] = set()  # stored and reloaded: used again only much later
        self.inplace_loads: set[int] = set()  # roots stored in place: load them first
        self.commit = commit
        #: values of members :func:`_early_terminals` may move while the group is filled: a
        #: member's that reads another member and no member has read yet (none: no move)
        self.movable: set[int] = set()
        #: Var id -> the nodes reading it, over the whole program being fused (shared by
        #: its groups; a value read once, by a member, is read nowhere else)
        self.readers: dict[int, list[Node]] = readers if readers is not None else {}

    def __repr__(self) -> str:
        return f"<group {self.shape} {self.dtype} x{len(self.members)}>"


class Schedule:
    """The ordered items (Fusions, block and Python Nodes), and the in-place effects."""

    def __init__(self, items: list, inplace: dict[int, int], roots: set[int],
                 sparse: dict[int, int], facts: "Facts | None" = None) -> None:
        self.items = items
        self.inplace = inplace  # effect value Var id -> Ext input Var id it is stored into
        self.roots = roots  # Var ids that leave the program (outputs, effect values)
        self.sparse = sparse  # the same, for updates made by a scatter into the table
        #: the views' roots and nodes' inputs as the schedule left them (emission reads them
        #: again: nothing after the schedule moves a root or changes a node's inputs)
        self.facts = facts


def _root(low: Lowering, vid: int) -> int:
    st = low.storage.get(vid)
    return st.base if isinstance(st, View) else vid


class Facts:
    """Per-node and per-value facts a pass asks for again and again, computed once: the root
    of every view (``base``: view Var id -> root Var id; a value not in it is its own root)
    and each node's input Vars. Valid while storages and nodes do not change: a pass that
    moves a root (:meth:`Lowering.move_root`) calls :meth:`refresh`."""

    __slots__ = ("low", "base", "_ins")

    def __init__(self, low: Lowering) -> None:
        self.low = low
        self._ins: dict[Node, list[Var]] = {}
        self.base: dict[int, int] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the views' roots again (after a storage changed)."""
        self.base = {vid: st.base for vid, st in self.low.storage.items() if type(st) is View}

    def in_vars(self, node: Node) -> list[Var]:
        """``node.in_vars()``, made once per node."""
        got = self._ins.get(node)
        if got is None:
            got = self._ins[node] = node.in_vars()
        return got

    def reads(self, node: Node) -> list[Var]:
        """The Vars ``node`` reads: its inputs, and a Python step's Vars inside its params."""
        ins = self.in_vars(node)
        if node.kind == "py":
            return ins + list(var_refs(node.step.params))
        return ins


def _live_nodes(low: Lowering, roots: set[int], facts: Facts) -> tuple[list[Node], dict]:
    """The nodes whose values the program needs, in order, and the readers of each value
    among them (Var id -> nodes reading it: :class:`_Fuser`'s table, made in this walk)."""
    bget = facts.base.get
    readers: dict[int, list[Node]] = {}
    rget = readers.get
    memo = facts._ins  # (Facts.in_vars inline: this is the first walk asking, once per node)
    need = set(roots)
    need.update(bget(vid, vid) for vid in roots)
    live = []
    for node in reversed(low.nodes):
        params = node.params
        kind = node.kind
        if not (kind == "py" and not node.step.pure) and not (params and params.get("keep")):
            for o in node.out:  # (a compiled check, "keep", stays)
                oid = o.id
                if oid in need or bget(oid, oid) in need:
                    break
            else:
                into = params.get("into") if params else None
                if into is None or into.id not in need:
                    continue
        live.append(node)
        if kind == "ew" and "after" not in params:  # (its inputs: its Var args)
            ins = node.args
        else:
            ins = memo.get(node)
            if ins is None:
                ins = memo[node] = node.in_vars()
            if kind == "py":
                ins = ins + list(var_refs(node.step.params))
        for v in ins:
            if type(v) is not Var:
                continue
            vid = v.id
            got = rget(vid)
            if got is None:  # (read for the first time: needed, and so is its root)
                readers[vid] = [node]
                need.add(vid)
                root = bget(vid, vid)
                if root != vid:
                    need.add(root)
            else:
                got.append(node)
    live.reverse()
    return live, readers


def _binding_key(b: Binding) -> tuple:
    return (b.kind, id(b.obj), b.key if b.kind in ("arg", "arg_grad", "attr") else None)


def _inplace_candidates(low: Lowering, program: Program) -> dict[int, int]:
    """effect value Var id -> Ext input Var id holding the array it overwrites."""
    storage = low.storage
    if not program.effects:
        return {}
    by_binding = {_binding_key(b): var for var, b in program.inputs
                  if type(storage.get(var.id)) is Ext}
    out = {}
    for eff in program.effects:
        if type(eff.ref) is not Var or not isinstance(low.storage.get(eff.ref.id), Own):
            continue
        if eff.kind == "data":
            var = by_binding.get(_binding_key(eff.target))
        elif eff.kind == "call" and hasattr(eff.target, "reads"):
            var = by_binding.get(("call", id(eff.target.reads), None))
        else:
            continue
        if var is not None and var.shape == eff.ref.shape and var.dtype == eff.ref.dtype:
            out[eff.ref.id] = var.id
    return out


def _sink(nodes: list[Node], inplace: dict[int, int], roots: set[int], facts: Facts,
          readers: dict[int, list[Node]] | None = None) -> tuple[list[Node], set[int]]:
    """The elementwise nodes that only feed in-place effects, moved to the end.
    ``readers``: Var id -> the nodes of ``nodes`` reading it (once per operand), if known."""
    if not inplace:  # nothing to sink towards: only in-place effects' producers move
        return nodes, set()
    in_vars = facts.in_vars
    # a value's readings (once per operand), and those by nodes already sunk: all its readers
    # are sunk when the two counts agree. (A value some view is taken of never sinks, so
    # readings through views need no count.)
    if readers is None:
        readers = {}
        for node in nodes:
            for v in (node.args if node.kind == "ew" and "after" not in node.params
                      else in_vars(node)):
                if type(v) is Var:
                    got = readers.get(v.id)
                    if got is None:
                        readers[v.id] = [node]
                    else:
                        got.append(node)
    rget = readers.get
    by_sunk: dict[int, int] = {}
    sget = by_sunk.get
    view_bases = set(facts.base.values())
    sunk: set[int] = set()
    for node in reversed(nodes):
        if node.kind != "ew":
            continue
        params = node.params
        if params and params.get("into") is not None:
            continue
        out = node.out[0].id
        if out in view_bases:
            continue
        n = len(rget(out, ()))
        if out in inplace:
            if sget(out, 0) != n:
                continue
        elif not n or out in roots or sget(out, 0) != n:
            continue
        sunk.add(id(node))
        for v in node.args if "after" not in params else in_vars(node):
            if type(v) is Var:
                by_sunk[v.id] = sget(v.id, 0) + 1
    if not sunk:
        return nodes, set()
    if len(sunk) == len(nodes):  # (everything is the commit part: the book's object style)
        return nodes, sunk
    main = [n for n in nodes if id(n) not in sunk]
    commit = [n for n in nodes if id(n) in sunk]
    return main + commit, {id(n) for n in commit}


def _donations(low: Lowering, program: Program, donated: set[int]) -> dict[int, int]:
    """output Var id -> donated argument's Ext input Var id it may be computed into."""
    free = [var for var, b in program.inputs if b.kind == "arg" and b.key in donated
            and isinstance(low.storage.get(var.id), Ext)]
    out = {}
    for v in program.outputs:
        if type(v) is not Var or not isinstance(low.storage.get(v.id), Own) or v.id in out:
            continue
        for x in free:
            if x.shape == v.shape and x.dtype == v.dtype:
                out[v.id] = x.id
                free.remove(x)
                break
    return out


def schedule(low: Lowering, program: Program, donated: set[int] = frozenset()) -> Schedule:
    """Order, group and mark stores (see the module docstring). ``donated``: positions of
    argument leaves whose arrays outputs may be computed into (``donate_argnums``)."""
    roots = {v.id for v in program.outputs if type(v) is Var}
    for e in program.effects:
        roots.update(v.id for v in var_refs(e.ref))
    facts = Facts(low)
    nodes, readers = _live_nodes(low, roots, facts)
    live = nodes
    inplace = _inplace_candidates(low, program)
    inplace.update(_donations(low, program, set(donated)))
    nodes, checks, writes, sparse = _sparse_updates(low, nodes, inplace, roots, facts)
    if sparse:  # (roots moved)
        facts.refresh()
    for v in sparse:
        del inplace[v]
    # the reader table stays valid while the nodes are the live ones, in any order
    same = nodes is live and not writes
    nodes, commit_ids = _sink(nodes, inplace, roots, facts, readers if same else None)
    if writes:  # checks end the main part; the table writes open the commit part
        first = next((i for i, n in enumerate(nodes) if id(n) in commit_ids), len(nodes))
        nodes = nodes[:first] + checks + writes + nodes[first:]
        commit_ids.update(id(n) for n in writes)
    sunk_outs = {o.id for n in nodes if id(n) in commit_ids for o in n.out}
    inplace = {v: x for v, x in inplace.items() if v in sunk_outs}
    fuser = _Fuser(low, facts, nodes, roots, readers if same else None)
    items = fuser.run(nodes, commit_ids)
    _check_inplace(low, items, inplace, roots, facts, fuser.consumers)
    return Schedule(items, inplace, roots, sparse, facts)


def _sparse_updates(low: Lowering, nodes: list[Node], inplace: dict[int, int],
                    roots: set[int], facts: Facts) -> tuple:
    """``table - lr * scatter_add(rows, ids)`` updated in place (an embedding's SGD step):
    the scatter adds ``-lr * rows`` straight into the table, touching only the looked-up rows
    instead of writing a dense gradient and then the whole table. Its indices are checked at
    the end of the main part, so the write, in the commit part, cannot fail."""
    producer = {v.id: n for n in nodes for v in n.out} if inplace else {}
    if not any(sub is not None and sub.kind == "ew" and sub.op == "subtract"
               for sub in map(producer.get, inplace)):  # (both forms update by subtracting)
        return nodes, [], [], {}
    uses: dict[int, int] = {}
    for n in nodes:
        for v in facts.in_vars(n):
            uses[v.id] = uses.get(v.id, 0) + 1
    # a value read through a view is read where uses do not count; a value read at all
    # cannot be made by the commit part, and one read elsewhere cannot be folded away
    viewed = {st.base for st in low.storage.values() if isinstance(st, View)}
    read = set(uses) | viewed
    dropped: set[int] = set()
    checks, writes, sparse = [], [], {}
    for v_id, x_id in inplace.items():
        sub = producer.get(v_id)
        if sub is None or sub.kind != "ew" or sub.op != "subtract" or sub.params or v_id in read:
            continue
        x, m = sub.args
        if type(x) is not Var or x.id != x_id or type(m) is not Var or uses.get(m.id) != 1:
            continue
        mul = producer.get(m.id)
        if mul is None or mul.kind != "ew" or mul.op != "multiply" or mul.params:
            continue
        scaled = _scaled(low, producer, uses, mul)
        if scaled is None or uses.get(scaled[1].id) != 1 or scaled[1].id in viewed:
            continue
        scale, table, cast = scaled
        sc = producer.get(table.id)
        if (sc is None or sc.op != "scatter" or sc.params.get("acc")
                or not sc.params.get("zero", True) or table.id in roots):
            continue
        v = sub.out[0]
        low.move_root(v, x_id)
        write = Node("block", "scatter", sc.args, (v,), dtype=sc.dtype,
                     params=dict(sc.params, mode=SCATTER_SCALED, scale=scale,
                                 after=x, zero=False), step=sc.step)
        check = Node("block", "scatter", sc.args, (), dtype=sc.dtype,
                     params=dict(sc.params, mode=SCATTER_CHECK, table=x, keep=True),
                     step=sc.step)
        dropped.update((id(sub), id(mul), id(sc)) + cast)
        checks.append(check)
        writes.append(write)
        sparse[v_id] = x_id
    for v_id, x_id in list(inplace.items()):
        if v_id in sparse:
            continue
        found = _accumulated(low, producer, uses, viewed, inplace, roots, v_id, x_id)
        if found is None:
            continue
        term, scale, table, grad, zero_id, gone = found
        sc = producer.get(term.id)
        v, zeroed = producer[v_id].out[0], producer[zero_id].out[0]
        if (sc is not None and sc.op == "scatter" and not sc.params.get("acc")
                and sc.params.get("zero", True) and sc.params.get("mode") is None
                and uses.get(term.id) == 1 and term.id not in roots | viewed):
            for vid, base in ((v_id, x_id), (zero_id, grad.id)):
                low.move_root(producer[vid].out[0], base)
                sparse[vid] = base
            writes.append(Node("block", "sgd_rows", sc.args + (grad,), (v,), dtype=sc.dtype,
                               params=dict(sc.params, scale=scale, after=table),
                               step=sc.step))
            checks.append(Node("block", "scatter", sc.args, (), dtype=sc.dtype,
                               params=dict(sc.params, mode=SCATTER_CHECK, table=table,
                                           keep=True), step=sc.step))
            dropped.update(gone | {id(sc)})
        elif _contiguous(low, term) and v.size:
            # dense: one pass instead of a fused group of three loads and two stores. Its
            # two values stay the effect values (in place while _check_inplace allows it,
            # in fresh buffers otherwise), so the verifier tells them from the old arrays
            writes.append(Node("block", "sgd_dense", (term, grad), (v, zeroed),
                               dtype=v.dtype, params={"scale": scale, "after": table},
                               step=producer[v_id].step))
            dropped.update(gone)
    if dropped:
        nodes = [n for n in nodes if id(n) not in dropped]
    return nodes, checks, writes, sparse


def _accumulated(low, producer, uses, viewed, inplace, roots, v_id, x_id):
    """``table - lr * (grad + term)`` with ``grad`` (an input: a ``.grad``) then set to zero —
    the book's SGD step on a parameter whose ``.grad`` accumulates this step's gradient
    ``term``: ``(term, lr, table, grad, the zero's value id, the nodes it replaces)``, or
    None. One dtype throughout, no broadcasting. Two kernels take it: ``sgd_rows`` when
    ``term`` is a scatter of rows (an embedding: it touches only the scattered rows when
    ``grad`` holds zeros, checked at run time; the whole table otherwise) and ``sgd_dense``
    (one pass over the parameter) for anything else."""
    sub = producer.get(v_id)
    if sub is None or sub.kind != "ew" or sub.op != "subtract" or sub.params or v_id in uses \
            or v_id in viewed:
        return None
    x, m = sub.args
    if type(x) is not Var or x.id != x_id or type(m) is not Var or uses.get(m.id) != 1:
        return None
    mul = producer.get(m.id)
    if mul is None or mul.kind != "ew" or mul.op != "multiply" or mul.params:
        return None
    scaled = _scaled(low, producer, uses, mul)
    if scaled is None or uses.get(scaled[1].id) != 1 or scaled[1].id in roots | viewed:
        return None
    scale, acc, cast = scaled
    add = producer.get(acc.id)
    if add is None or add.kind != "ew" or add.op != "add" or add.params or len(add.args) != 2:
        return None
    dt = x.dtype
    if not sub.dtype == mul.dtype == add.dtype == acc.dtype == sub.out[0].dtype == dt:
        return None
    for grad, term in (add.args, add.args[::-1]):
        if type(grad) is not Var or type(term) is not Var:
            continue
        if (not isinstance(low.storage.get(grad.id), Ext) or uses.get(grad.id) != 1
                or grad.shape != x.shape or term.shape != x.shape or grad.dtype != dt
                or term.dtype != dt):
            continue
        zero_id = next((vid for vid, base in inplace.items() if base == grad.id), None)
        zero = producer.get(zero_id)
        if (zero is None or zero.kind != "ew" or zero.op != "copy" or zero.args != (0.0,)
                or zero.out[0].shape != x.shape or zero.out[0].dtype != dt or zero_id in uses
                or zero_id in viewed):
            continue
        return term, scale, x, grad, zero_id, {id(sub), id(mul), id(add), id(zero), *cast}
    return None


def _contiguous(low: Lowering, v: Var) -> bool:
    """Whether ``v``'s elements are one contiguous run of a buffer, in order."""
    st = low.storage.get(v.id)
    return isinstance(st, (Own, Ext)) or isinstance(st, View) and st.strides == c_strides(
        v.shape)


def _scaled(low: Lowering, producer: dict, uses: dict, mul: Node) -> tuple | None:
    """``(number, array, cast)`` when ``mul`` multiplies one array by one number, or None.
    The number may come through a cast to ``mul``'s dtype (an optimizer's rule casts its
    learning rate to the parameter's dtype: ``astype(lr, float32)``); the block kernels that
    take the number cast it themselves, to the same value (``dt(S[k])``), so they are handed
    the number and ``cast`` holds the cast node's id when nothing else reads it."""
    if len(mul.args) != 2:
        return None
    found = []
    for a, other in (mul.args, mul.args[::-1]):
        if _is_number(low, other):
            continue
        if _is_number(low, a):
            found.append((a, other, ()))
            continue
        node = producer.get(a.id)
        if (node is not None and node.kind == "ew" and node.op == "copy" and not node.params
                and len(node.args) == 1 and node.dtype == mul.dtype and a.shape == ()
                and a.dtype == mul.dtype and _is_number(low, node.args[0])):
            found.append((node.args[0], other, (id(node),) if uses.get(a.id) == 1 else ()))
    return found[0] if len(found) == 1 else None


def _is_number(low: Lowering, a) -> bool:
    return type(a) is not Var or isinstance(low.storage.get(a.id), Scalar)


def _fuse(low: Lowering, nodes: list[Node], commit_ids: set[int], roots: set[int]) -> list:
    """Fuse ``nodes`` into items (a loop body's too: :mod:`fungrad.jit.passes.loops`)."""
    return _Fuser(low, Facts(low), nodes, roots).run(nodes, commit_ids)


class _Fuser:
    """The fusion pass over one program's nodes (see the module docstring): open groups by
    key (output shape, compute dtype), closed where something outside first needs them."""

    def __init__(self, low: Lowering, facts: Facts, nodes: list[Node], roots: set[int],
                 consumers: dict[int, list[Node]] | None = None) -> None:
        """``consumers``: Var id -> the nodes of ``nodes`` reading it, if known (made here
        otherwise)."""
        self.low = low
        self.facts = facts
        self.base = facts.base
        self.roots = roots
        self.consumers: dict[int, list[Node]] = consumers if consumers is not None else {}
        consumers, in_vars = self.consumers, facts.in_vars
        for node in nodes if not consumers else ():  # (Facts.reads inline: once per node)
            ins = in_vars(node)
            if node.kind == "py":
                ins = ins + list(var_refs(node.step.params))
            for v in ins:
                got = consumers.get(v.id)
                if got is None:
                    consumers[v.id] = [node]
                else:
                    got.append(node)
        self.view_bases = set(self.base.values())
        self.items: list = []
        self.open_groups: dict[tuple, Fusion] = {}
        self.made_in: dict[int, Fusion] = {}  # Var id -> its open group
        self.parts_in: dict[int, dict] = {}  # root written "into" in parts -> {key: group}
        self.made: dict[int, Var] = {}  # Var id -> the Var a group member made

    def run(self, nodes: list[Node], commit_ids: set[int]) -> list:
        """The items in run order: groups where they close, block and Python nodes."""
        in_commit = False
        watch = bool(commit_ids)  # (looking for the commit part's first node)
        for node in nodes:
            if watch and id(node) in commit_ids:
                in_commit, watch = True, False
                for g in list(self.open_groups.values()):
                    self.close(g)
            if node.kind == "ew":
                self.join(node, in_commit)
            else:
                self.flush_inputs(node, None)
                self.items.append(node)
        for g in list(self.open_groups.values()):
            self.close(g)
        return self.items

    def join(self, node: Node, in_commit: bool) -> None:
        """Add elementwise ``node`` to the open group of its key (opened if none)."""
        out = node.out[0]
        key = (out.shape, node.dtype)
        params = node.params
        made_in = self.made_in
        if "after" in params:
            self.flush_inputs(node, key)
        else:  # (flush_inputs inline for an elementwise node's Var args: once per node)
            base, parts_in = self.base, self.parts_in
            for v in node.args:
                if type(v) is not Var:
                    continue
                vid = v.id
                g = made_in.get(vid)
                if g is not None and g.key != key:
                    self.close(g)
                root = base.get(vid, vid)
                if root != vid:
                    g = made_in.get(root)
                    if g is not None and (g.key != key or _moved(self.low, g.shape, v,
                                                                 self.made[root])):
                        self.close(g)
                if parts_in and (vid in parts_in or root in parts_in):
                    self._flush_parts(node, key, v, root)
        g = self.open_groups.get(key)
        if g is None:
            g = self.open_groups[key] = Fusion(key, out.shape, node.dtype, in_commit,
                                               self.consumers)
        base, movable, dep = self.base, g.movable, False
        for v in node.args:  # (what _early_terminals asks of it, as it joins)
            if type(v) is Var:
                r = base.get(v.id, v.id)
                if made_in.get(r) is g:  # (reads a member)
                    dep = True
                    movable.discard(r)
        g.members.append(node)
        made_in[out.id] = g
        self.made[out.id] = out
        into = params.get("into") if params else None  # a copy into part of another
        if into is not None:  # value's buffer (a concatenation's parts: each group runs first)
            self.parts_in.setdefault(into.id, {})[key] = g  # (one open group per key)
        elif dep:
            movable.add(out.id)

    def close(self, g: Fusion) -> None:
        """Run ``g`` here: it becomes the next item, storing what is needed outside it."""
        if self.open_groups.get(g.key) is not g:
            return
        del self.open_groups[g.key]
        if g.movable:  # (else no member would move)
            g.members = _early_terminals(g.members, self.base)
        self._mark_stores(g)
        self.items.append(g)

    def _mark_stores(self, g: Fusion) -> None:
        """The values ``g`` stores: read outside it, leaving the program, viewed, written into
        another value's buffer, or read again only much later (spilled)."""
        base, consumers, roots, view_bases = self.base, self.consumers, self.roots, \
            self.view_bases
        members = g.members
        position = {m: i for i, m in enumerate(members)}  # (a Node hashes by identity)
        pget, cget = position.get, consumers.get
        stores, spills, dtype = g.stores, g.spills, g.dtype
        i = -1
        for m in members:
            i += 1
            out = m.out[0]
            v = out.id
            store = v in roots or v in view_bases or base.get(v, v) != v or (
                m.params and m.params.get("into") is not None)
            last = -1  # the last member reading it
            for c in cget(v, ()):
                p = pget(c)
                if p is None:
                    store = True  # read outside the group
                elif p > last:
                    last = p
            if store:
                stores.add(v)
            if last - i > SPILL_DISTANCE and out.dtype == dtype:
                stores.add(v)  # a register held that long would only crowd the cache
                spills.add(v)

    def flush_inputs(self, node: Node, key) -> None:
        """Run (close) the open groups holding what ``node`` reads, unless ``node`` can join
        them: same key, and it reads each value element by element as the group writes it.
        A group runs tile by tile, so reading a member's value through another view (``h.T``,
        ``h[-1]``, ``h[::-1]``, a slice of a concatenation the group fills) would read, in an
        early tile, elements only a later tile writes: a hazard by region, not by buffer."""
        made_in, base, parts_in = self.made_in, self.base, self.parts_in
        ew = node.kind == "ew" and "after" not in node.params  # (its inputs: its Var args)
        for v in node.args if ew else self.facts.in_vars(node):
            if type(v) is not Var:
                continue
            vid = v.id
            g = made_in.get(vid)
            if g is not None and (key is None or g.key != key):
                self.close(g)
            root = base.get(vid, vid)
            if root != vid:
                g = made_in.get(root)
                if g is not None and (key is None or g.key != key
                                      or _moved(self.low, g.shape, v, self.made[root])):
                    self.close(g)
            if parts_in and (vid in parts_in or root in parts_in):
                self._flush_parts(node, key, v, root)

    def _flush_parts(self, node: Node, key, v: Var, root: int) -> None:
        """Close the groups writing parts of ``v``'s buffer, but for another link of the
        same accumulation (``acc[i] += g`` of one key)."""
        link = None  # whether node is such a link (asked once)
        for vid in (v.id, root) if root != v.id else (v.id,):
            parts = self.parts_in.get(vid)
            if not parts:
                continue
            for g in list(parts.values()):
                if key is not None and g.key == key:
                    if link is None:
                        link = v is node.args[0] and _adds_into_slice(self.low, node)
                    if link:
                        continue
                self.close(g)


def _moved(low: Lowering, shape: tuple, v: Var, root: Var) -> bool:
    """Whether view ``v`` of ``root`` walks other elements than ``root`` itself over a
    group's iteration space ``shape``."""
    st = low.storage.get(v.id)
    if not isinstance(st, View):
        return False
    return (_walk(shape, st.offset, v.shape, st.strides)
            != _walk(shape, 0, root.shape, c_strides(root.shape)))


def _adds_into_slice(low: Lowering, node: Node) -> bool:
    """``acc[index] += g`` (rewrite.accumulate's link): an accumulating store, which may
    share a group with other links into the same running sum."""
    if node.kind != "ew" or node.op != "add" or node.params.get("into") is None:
        return False
    a = node.args[0]
    return type(a) is Var and isinstance(low.storage.get(a.id), View) and \
        _root(low, a.id) == _root(low, node.out[0].id)


def _early_terminals(members: list[Node], base: dict[int, int]) -> list[Node]:
    """Members no other member reads (parameter updates, stored results) moved up to just
    after the last member they read: an SGD step then follows its gradient at once instead of
    holding every gradient until the end of the backward pass. (An argument that is a view of
    a member's value — an ``astype`` to the same dtype — depends on that member too.)"""
    produced: dict[int, int] = {}  # (members' values so far: a member reads earlier ones)
    bget, pget = base.get, produced.get
    read: set[int] = set()  # members' values (roots) some member reads
    last: list = []  # per member: the position of the last member it reads, or None
    i = -1
    for m in members:
        i += 1
        dep = None
        for a in m.args:
            if type(a) is Var:
                r = a.id
                r = bget(r, r)
                p = pget(r)
                if p is not None:
                    read.add(r)
                    if dep is None or p > dep:
                        dep = p
        last.append(dep)
        produced[m.out[0].id] = i
    after: dict[int, list[Node]] = {}
    moved: set[Node] = set()  # (a Node hashes by identity)
    for m, dep in zip(members, last):
        if dep is None or m.out[0].id in read or m.params and m.params.get("into") is not None:
            continue
        after.setdefault(dep, []).append(m)
        moved.add(m)
    if not moved:
        return members
    out = []
    for i, m in enumerate(members):
        if m not in moved:
            out.append(m)
        out.extend(after.get(i, ()))
    return out


def _check_inplace(low: Lowering, items: list, inplace: dict[int, int], roots: set[int],
                   facts: Facts, readers: dict[int, list[Node]]) -> None:
    """Keep an in-place store only if nothing after its group reads the old array (nor the
    caller, as an output), and its group reads it only element by element; its group loads
    that array before storing. ``readers``: Var id -> the nodes of ``items`` reading it (the
    fuser's table)."""
    if not inplace:
        return
    item_of: dict[Node, int] = {}  # node -> the position of its item
    store_at: dict[int, int] = {}
    made: dict[int, Var] = {}  # in-place value -> its Var (made by a group's member)
    for i, item in enumerate(items):
        if isinstance(item, Fusion):
            item_of.update(dict.fromkeys(item.members, i))
            for vid in item.stores:
                if vid in inplace:
                    store_at[vid] = i
            continue
        item_of[item] = i
        if item.op in ELEMENTWISE_BLOCKS:  # (reads its inputs element by element)
            for o in item.out:
                if o.id in inplace:
                    store_at[o.id] = i
    arrays = set(inplace.values())
    views: dict[int, list[int]] = {}  # array stored in place -> its views' Var ids
    for vid, root in facts.base.items():
        if root in arrays:
            views.setdefault(root, []).append(vid)
    bget = facts.base.get
    left = {bget(r, r) for r in roots}  # read after the run (outputs, effect values)
    rget = readers.get
    whole: dict[tuple, tuple] = {}  # (group shape, value shape) -> a root's walk (memo)
    for v, x in list(inplace.items()):
        pos = store_at.get(v)
        if pos is None or x in left:
            del inplace[v]
            continue
        # the last item reading the array (the value itself, or through a view), and the
        # Vars the storing group's members read it through (their args)
        last, through = -1, []
        for vid in (x, *views.get(x, ())):
            for n in rget(vid, ()):
                at = item_of[n]
                if at > last:
                    last = at
                if at == pos and n.kind == "ew":
                    for a in n.args:
                        if type(a) is Var and a.id == vid:
                            through.append(a)
        if last > pos:
            del inplace[v]
        elif isinstance(items[pos], Fusion):
            if v not in made:
                made.update({m.out[0].id: m.out[0] for m in items[pos].members})
            if _reads_another_view(low, items[pos], made[v], through, whole):
                del inplace[v]
            else:
                items[pos].inplace_loads.add(x)


def _reads_another_view(low: Lowering, g: Fusion, v: Var, reading: list,
                        whole: dict[tuple, tuple]) -> bool:
    """Whether group ``g``, which stores value ``v`` into an array its members read through
    the Vars ``reading`` (that array or views of it), reads it through a view walking other
    elements (``w + w.T``, ``w * w[0]``, ``w[::-1]``): the group runs tile by tile, so a later
    tile would read elements an earlier one overwrote. ``whole``: a memo of roots' walks, by
    (group shape, value shape)."""
    if not reading:
        return False
    storage, shape = low.storage, g.shape
    target = whole.get((shape, v.shape))
    if target is None:
        target = whole[shape, v.shape] = _walk(shape, 0, v.shape, c_strides(v.shape))
    for a in reading:
        st = storage.get(a.id)
        if isinstance(st, View):
            walk = _walk(shape, st.offset, a.shape, st.strides)
        else:
            walk = whole.get((shape, a.shape))
            if walk is None:
                walk = whole[shape, a.shape] = _walk(shape, 0, a.shape, c_strides(a.shape))
        if walk != target:
            return True
    return False


def _walk(shape: tuple, offset: int, vshape: tuple, vstrides: tuple) -> tuple:
    """(offset, strides over ``shape``) of a value broadcast to a group's iteration space."""
    lead = len(shape) - len(vshape)
    strides = []
    for k, d in enumerate(shape):
        j = k - lead
        strides.append(0 if d == 1 else 0 if j < 0 or vshape[j] == 1 else vstrides[j])
    return offset, tuple(strides)
