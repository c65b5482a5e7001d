"""Rewrites of lowered nodes: accumulate gradient sums in place; sum embedding bags in the gather.

Backward sums the contributions to one gradient: an RNN's weight gets ``T`` matmul products,
a stacked parameter indexed per layer gets one row scatter per layer, an embedding one
scatter per lookup. Traced, that is a chain ``acc = c1 + c2; acc = acc + c3; ...`` of
full-size temporaries and adds. :func:`accumulate` turns each link whose new term is made by
an *accumulable* producer — a matmul (BLAS's ``beta = 1``), a scatter of rows, or the zero
fill plus copy into a slice that ``scatter_index`` lowers to — into that producer adding
straight into the running sum's buffer. The chain then costs its producers and nothing else:
a 3000-layer stacked gradient is 3000 row writes into one buffer, not 3000 dense adds.
(The commonest link, a ``scatter_index`` term, is summed already while lowering, under the
same conditions: :meth:`~fungrad.jit.passes.lowering.Lowering.add_scatter`.)
"""

from __future__ import annotations

from ..ir import Node, Own, View, c_strides
from ..program import Var, var_refs
from .lower import Lowering

__all__ = ["accumulate", "embedding_bags"]


def _consumers(low: Lowering, roots: set[int]) -> dict[int, int]:
    count: dict[int, int] = {}
    for node in low.nodes:
        for v in node.in_vars():
            count[v.id] = count.get(v.id, 0) + 1
        if node.kind == "py":
            for v in var_refs(node.step.params):
                count[v.id] = count.get(v.id, 0) + 1
    for r in roots:
        count[r] = count.get(r, 0) + 1_000_000  # leaves the program: never overwritten
    return count


def _root(low: Lowering, v: Var) -> tuple[int, bool]:
    """(root id, whether ``v`` is the whole root, C-contiguous at offset 0)."""
    st = low.storage.get(v.id)
    if isinstance(st, Own):
        return v.id, True
    if isinstance(st, View):
        whole = st.offset == 0 and st.strides == c_strides(v.shape)
        return st.base, whole
    return -1, False


def accumulate(low: Lowering, roots: set[int]) -> int:
    """Rewrite accumulation chains in ``low.nodes`` (see the module docstring); returns how
    many adds were removed."""
    # a link's new term is made by a block node: without such an add, nothing to do (a
    # cheap walk first — the tables below cost a pass over the program)
    made_by_block = {v.id for n in low.nodes if n.kind == "block" for v in n.out}
    if not made_by_block or not any(
            n.op == "add" and n.kind == "ew" and len(n.args) == 2 and not n.params
            and any(type(a) is Var and a.id in made_by_block for a in n.args)
            for n in low.nodes):
        return 0
    # one walk for every table (consumer counts, positions, producers, writers, the adds)
    consumers: dict[int, int] = {}
    position: dict[int, int] = {}
    producer: dict[int, Node] = {}
    writers: dict[int, list[Node]] = {}  # root id -> nodes writing into it ("into" copies)
    written: dict[int, int] = {}  # root id -> position of the last node writing it
    adds: list[Node] = []
    cget = consumers.get
    folded = low.folded  # links lowering summed already (Lowering.add_scatter): as if
    # done here — their copies wrote the scatter's buffer, and the Vars they read are new
    for i, node in enumerate(low.nodes):
        position[id(node)] = i
        for v in node.in_vars():
            consumers[v.id] = cget(v.id, 0) + 1
        if node.kind == "py":
            for v in var_refs(node.step.params):
                consumers[v.id] = cget(v.id, 0) + 1
        for v in node.out:
            producer[v.id] = node
            written[v.id] = i
        into = node.params.get("into")
        if into is not None and (not folded or id(node) not in folded):
            writers.setdefault(into.id, []).append(node)
            written[into.id] = i
        if node.op == "add" and _is_plain_add(node):
            adds.append(node)
    for r in roots:
        consumers[r] = cget(r, 0) + 1_000_000  # leaves the program: never overwritten
    view_users: dict[int, set[int]] = {}  # root id -> var ids viewing it (that may be read)
    skip = low.folded_reads
    for vid, st in low.storage.items():
        if type(st) is View and vid not in skip:
            got = view_users.get(st.base)
            if got is None:
                view_users[st.base] = {vid}
            else:
                got.add(vid)
    var_of: dict[int, Var] = {}  # (filled on the first need: the fill rewrite's)
    removed: set[int] = set()
    n_adds = 0
    for node in adds:
        if not _is_plain_add(node):  # (a rewrite may have made it an add into a slice)
            continue
        a, b = node.args
        for acc, term in ((a, b), (b, a)):
            gone = _rewrite(low, node, acc, term, consumers, position, producer, writers,
                            written, view_users, roots, var_of)
            if gone is not None:
                removed.add(id(node))
                removed.update(id(n) for n in gone)
                n_adds += 1
                break
    if removed:
        low.nodes = [n for n in low.nodes if id(n) not in removed]
    return n_adds



def _is_plain_add(node: Node) -> bool:
    if node.kind != "ew" or node.op != "add" or node.params:
        return False
    a, b = node.args if len(node.args) == 2 else (None, None)
    out = node.out[0]
    return (type(a) is Var and type(b) is Var and a.shape == b.shape == out.shape
            and a.dtype == b.dtype == out.dtype == node.dtype)


def _rewrite(low, node, acc, term, consumers, position, producer, writers, written,
             view_users, roots, var_of) -> list | None:
    """Make ``term``'s producer add into ``acc``'s buffer; the nodes that became useless
    (None: the link does not qualify)."""
    out = node.out[0]
    acc_root, acc_whole = _root(low, acc)
    term_root, term_whole = _root(low, term)
    if acc_root < 0 or not acc_whole or acc_root in roots or acc.id in roots:
        return None
    if consumers.get(acc.id, 0) != 1 or consumers.get(term.id, 0) != 1 or term.id in roots:
        return None
    if _other_live_view(view_users.get(acc_root), acc.id, consumers):
        return None  # another live view of the running sum's buffer
    if consumers.get(acc_root, 0) > (1 if acc_root == acc.id else 0):
        return None
    made = producer.get(term.id)
    if made is None or made.kind != "block" or not term_whole or term_root != term.id:
        return None
    # the running sum must be complete before the first node that will add into it: its
    # producer and the copies filling it in parts (a concatenation has no producer node)
    adders = writers.get(term.id, []) if made.op == "fill" else [made]
    if written.get(acc_root, -1) > min(position[id(n)] for n in adders or [made]):
        return None
    gone: list = []
    if made.op == "matmul" or (made.op == "scatter" and made.params.get("zero", True)):
        made.params["acc"] = True
        made.params["zero"] = False
        made.params["after"] = acc
    elif made.op == "fill" and made.params.get("value") == 0.0:
        copies = writers.get(term.id, [])
        if not copies or any(c.op != "copy" for c in copies):
            return None
        for c in copies:  # zeros[index] = g becomes acc[index] += g
            target = c.out[0]
            st = low.storage[target.id]
            old = low.new_var(target.shape, target.dtype)
            low.storage[old.id] = View(acc_root, st.offset, st.shape, st.strides)
            low.storage[target.id] = View(acc_root, st.offset, st.shape, st.strides)
            c.op = "add"
            c.args = (old,) + c.args
            c.params = {"into": _var(low, acc_root, acc, producer, var_of)}
        gone.append(made)
    else:
        return None
    users = view_users.setdefault(acc_root, set())
    for v in (term, out):
        moved = view_users.pop(v.id, set())
        low.move_root(v, acc_root, moved)
        users.update(moved)  # (a reshape of the sum, read before the next link: still read)
    consumers[acc.id] = consumers[term.id] = 0  # the add that read them is gone
    users.difference_update((acc.id, term.id))  # unread now: the set stays the chain's head
    users.add(out.id)
    return gone


def _var(low: Lowering, vid: int, acc: Var, producer: dict[int, Node],
         var_of: dict[int, Var]) -> Var:
    """The Var of id ``vid`` (the running sum's root): ``acc`` itself, an output of its
    producer, or (filled once) any Var of the program."""
    if acc.id == vid:
        return acc
    made = producer.get(vid)
    for v in made.out if made is not None else ():
        if v.id == vid:
            return v
    if not var_of:
        var_of.update(low.vars_by_id())
    return var_of[vid]


def _other_live_view(users: set[int] | None, acc_id: int, consumers: dict[int, int]) -> bool:
    """Whether a var other than ``acc_id`` in ``users`` (views of one buffer) is still read.
    Views nobody reads are dropped from the set as they are met: a consumer count only ever
    falls to 0 here, so a dead view stays dead — and a chain of 3000 links, each leaving its
    row views behind, scans each of them once instead of once per later link."""
    if not users:
        return False
    dead = [v for v in users if not consumers.get(v, 0)]
    users.difference_update(dead)
    return any(v != acc_id for v in users)


def embedding_bags(low: Lowering, roots: set[int]) -> int:
    """``index_select(table, ids)`` summed over the index axes right after (an embedding
    bag): one gather that sums as it reads, without the ``(..., bag, D)`` intermediate."""
    gathered = {n.out[0].id for n in low.nodes if n.op == "gather" and n.kind == "block" and n.out}
    if not gathered or not any(n.op == "reduce" and n.kind == "block"
                               and n.args[0].id in gathered for n in low.nodes):
        return 0  # (the tables below cost a pass over the program: only when one may match)
    consumers = _consumers(low, roots)
    producer = {v.id: n for n in low.nodes for v in n.out}
    viewed = {st.base for st in low.storage.values() if isinstance(st, View)}
    removed: set[int] = set()
    for node in low.nodes:
        p = node.params
        if node.kind != "block" or node.op != "reduce" or p.get("kind") != "sum" or \
                p.get("scale") is not None:
            continue
        x = node.args[0]
        g = producer.get(x.id)
        if g is None or g.op != "gather" or g.params.get("sum_r") or x.id in roots:
            continue
        if consumers.get(x.id, 0) != 1 or not isinstance(low.storage.get(x.id), Own):
            continue
        if x.id in viewed:  # read through a view too (rows[:, -1:]): the gather must store it
            continue
        count, row = g.params["count"], g.params["row"]
        if p["C"] != row or p["A"] * p["R"] != count:
            continue
        g.params["sum_r"] = p["R"]
        g.out = node.out
        del low.storage[x.id]
        removed.add(id(node))
    if removed:
        low.nodes = [n for n in low.nodes if id(n) not in removed]
    return len(removed)
