"""The backward pass: walk the recorded graph in reverse creation order, running VJPs.

A recorded op's output Tensor is its graph node (``_op``, ``_inputs``, ``_params``, ``_needs``,
``_versions``, ``_seq``; see :mod:`fungrad.tensor`). Creation order is a topological order, so
backward collects the nodes that reach the roots with an explicit stack and runs their VJPs by
descending sequence number: no recursion, so a chain of a million ops backpropagates. Nodes
point to their inputs, never to their outputs, so the graph is freed by reference counting.

The pass is transactional: leaf gradients are summed aside and written to ``.grad`` only when
every VJP has run, and nodes are released only then, so an exception in the middle (an
:class:`~fungrad.errors.AnomalyError`, a user's VJP raising) leaves gradients and graph as
they were.

This module sits above the ops it needs (``sum_to``, ``copy``) and below :mod:`fungrad.tensor`,
which calls it; it never names the Tensor class.
"""

from __future__ import annotations

import gc
import operator
import warnings
from typing import Any, overload

import numpy as np

from . import recording, registry
from .errors import AnomalyError, DTypeError, GraphError, NonScalarBackwardWarning, ShapeError
from .primitives.elementwise import copy as copy_op
from .primitives.elementwise import real as real_op
from .primitives.shape import sum_to

__all__ = ["backward"]


@overload
def backward(roots: list, seeds: list, *, retain_graph: bool = ..., create_graph: bool = ...,
             targets: None = ..., since: int = ...) -> None: ...
@overload
def backward(roots: list, seeds: list, *, retain_graph: bool = ..., create_graph: bool = ...,
             targets: list, since: int = ...) -> list: ...


# One long function on purpose: its loop runs once per node of every backward pass, so the work
# per node stays in locals, with two calls per node (Op.run_vjp, _key_of: each rule written
# once) and none off the common path; see benchmarks/OVERHEAD.md. The helpers below take what
# is off that path.
def backward(
    roots: list,
    seeds: list,
    *,
    retain_graph: bool = False,
    create_graph: bool = False,
    targets: list | None = None,
    since: int = 0,
) -> list | None:
    """Backpropagate ``seeds`` (cotangents of ``roots``) through the recorded graph.

    With ``targets=None`` cotangents are accumulated into the ``.grad`` of every leaf Tensor
    that requires grad (``Tensor.backward``). With a list of target Tensors, nothing is written
    to ``.grad``; the cotangent of each target is returned instead (``None`` where it does not
    depend on the roots), and the walk neither enters the targets nor any node recorded at or
    before sequence number ``since`` (a functional transformation touches only the graph
    between its inputs and outputs, never a caller's graph it closes over). A target may be
    any Tensor recorded before ``since``, an output of a multi-output op included (a loop
    body's closed-over Tensors are targets).

    With ``create_graph=True`` the VJPs run on Tensors and are themselves recorded, so the
    gradients can be differentiated again.
    """
    # One function on purpose (tests/test_function_length.py): one loop without recursion whose
    # cotangent sums, ownership set and leaf journal every phase shares; the engine's hot path.
    plain = not create_graph
    grads: dict = {}  # cotangent sums per node output (or per target)
    owned: set = set()  # keys whose sum this pass allocated: only those are added in place
    leaves: dict = {}  # id(leaf) -> [leaf, cotangent sum, owned]: written at the very end
    target_keys = {id(t) for t in targets} if targets is not None else None

    root_nodes = []
    for root, seed in zip(roots, seeds):
        key = _key_of(root)
        if target_keys is not None and id(root) in target_keys:
            _add(grads, owned, key or id(root), seed)
        elif key is not None:
            if root._version:
                raise _modified_error(_node_of(root), root, output=True)
            _add(grads, owned, key, seed)
            root_nodes.append(_node_of(root))
        elif target_keys is None and root.requires_grad:
            _add_leaf(leaves, root, seed, False)

    order = _collect(root_nodes, target_keys or (), since) if root_nodes else []
    st = recording.thread
    hook = st.hook  # fg.jit tracing: cotangents are traced arrays, leaves go to the tracer
    anomaly = st.anomaly and hook is None
    was_enabled = st.enabled
    st.enabled = create_graph  # plain backward records nothing; create_graph records the VJPs
    # The graph is freed by reference counting and backward makes no cycles, so a cyclic
    # collection during it only rescans the graph being consumed: defer it until the end.
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    done = []
    pop, discard = grads.pop, owned.discard
    try:
        for node in order:
            outs = node._outs
            if outs is None:
                key = id(node)
                g = pop(key, None)
                if g is None:
                    continue
                discard(key)
                out = node._data if plain else node
            else:
                g = _pop_outputs(grads, owned, node, len(outs))
                if g is None:
                    continue
                out = outs if plain else node._output_tensors()
            op = node._op
            inputs = node._inputs
            needs = node._needs
            if not plain:
                args = inputs
            elif len(inputs) == 2:  # the common binary case, without a comprehension
                a0, a1 = inputs
                v0, v1 = node._versions
                args = (a0._data if v0 is not None else a0, a1._data if v1 is not None else a1)
            elif len(inputs) == 1:  # and the unary one
                a0, = inputs
                args = (a0._data if node._versions[0] is not None else a0,)
            else:
                args = [a._data if v is not None else a for a, v in zip(inputs, node._versions)]
            params = node._params
            try:
                cots = op.run_vjp(g, out, args, params, needs)
            except FloatingPointError as e:  # np.errstate(all="raise"): name the op, as forward
                raise AnomalyError(f"{op.name}: backward: {e} (input shapes "
                                   f"{[tuple(np.shape(a)) for a in args]})") from e
            if not op.builtin:
                cots = _checked(op, cots, inputs)
            for need, t, c in zip(needs, inputs, cots):
                if not need or c is None:
                    continue
                data = t._data
                if plain and type(c) is not np.ndarray and hook is None:
                    c = getattr(c, "_data", c)  # (a VJP may return Tensors)
                    if not recording.is_traced(c):  # (fg.vmap: a batched cotangent stays one)
                        c = np.asarray(c)
                if c.shape != data.shape:
                    c = sum_to(c, data.shape)  # the one place broadcasting is undone
                dtype = data.dtype
                if c.dtype is not dtype and c.dtype != dtype:
                    c = _fit_dtype(c, dtype)
                if anomaly:
                    recording.check_finite(op.name, c, "backward")
                # where t's cotangent is summed: its node, a multi-output node's slot, a
                # target, or (Tensor.backward) the leaf's pending gradient
                key = _key_of(t)
                if key is None:  # a leaf
                    if target_keys is None:
                        entry = leaves.get(id(t))
                        if entry is None:
                            leaves[id(t)] = [t, c, plain and _is_fresh(c, g, out, args, cots)]
                        else:
                            _add_to_leaf(entry, c)
                        continue
                    key = id(t)
                    if key not in target_keys:
                        continue
                old = grads.get(key)
                if old is None:
                    grads[key] = c
                else:
                    _add(grads, owned, key, c, old)
            done.append(node)
        if leaves and hook is not None:  # fg.jit: accumulated as eager does, but recorded
            for t, c, _ in leaves.values():
                hook.accumulate_grad(t, c)
        elif leaves:
            _commit_leaves(leaves.values(), create_graph)
    finally:
        st.enabled = was_enabled
        if collecting:
            gc.enable()
    if not retain_graph:
        # drop each node's saved links; a root whose inputs are all leaves keeps them, so
        # ``creators`` still answers after backward, as the book prints
        kept = [(n, n._inputs) for n in root_nodes if _only_leaves(n)]
        for node in done:
            node._inputs = node._versions = None
        for node, inputs in kept:
            node._inputs = inputs
    if target_keys is None:
        return None
    return [grads.get(_key_of(t) or id(t)) for t in targets or ()]  # keyed where the loop sums


def _fit_dtype(c, dtype: np.dtype):
    """A cotangent in its input's dtype. A real input takes the real part of a complex
    cotangent (fungrad's convention pairs a cotangent ``g`` with a change ``dz`` as
    ``Re(g * dz)``, and ``dz`` is real there); a complex input gets a real cotangent as complex;
    a floating input gets its own precision; integer and boolean leaves (the book's) receive
    floating-point gradients as they come."""
    kind = c.dtype.kind
    if kind == "c" and dtype.kind != "c":
        c = real_op(c)
    if dtype.kind in "fc" and c.dtype != dtype:
        c = c.astype(dtype)
    return c


# -- the graph ---------------------------------------------------------------------------------


def _only_leaves(node) -> bool:
    """Whether every Tensor input of ``node`` is a leaf (so keeping them holds no graph)."""
    for t, v in zip(node._inputs, node._versions):
        if v is not None and (t._op is not None or t._parent is not None):
            return False
    return True


def _node_of(t):
    """The recorded node a Tensor's gradient flows into (itself, its multi-output primary)."""
    p = t._parent
    if p is not None:
        return p
    return t if t._op is not None else None


def _key_of(t):
    """Where a Tensor's cotangent is summed: its node, or (node, output index); None: a leaf."""
    p = t._parent
    if p is not None:
        return (id(p), t._index)
    if t._op is not None:
        return id(t) if t._outs is None else (id(t), 0)
    return None


def _pop_outputs(grads: dict, owned: set, node, n: int):
    gs = []
    for i in range(n):
        key = (id(node), i)
        gs.append(grads.pop(key, None))
        owned.discard(key)
    return tuple(gs) if any(x is not None for x in gs) else None


def _collect(root_nodes: list, stop, since: int) -> list:
    """Nodes reachable from ``root_nodes``, by descending sequence number (explicit stack).

    Every saved input and output is checked for in-place modification here, before any VJP
    runs, so a refused backward changes nothing.
    """
    seen = {id(n): n for n in root_nodes}
    stack = list(root_nodes)
    push, pop = stack.append, stack.pop
    while stack:
        node = pop()
        if node._versions is None:
            raise GraphError(
                f"backward through '{node._op.name}' a second time: its saved values were freed "
                "after the first backward. Pass retain_graph=True to the first backward() "
                "if you need to backpropagate through the graph again."
            )
        for need, t, v in zip(node._needs, node._inputs, node._versions):
            if v is None:
                continue
            if t._version != v:
                raise _modified_error(node, t)
            if t._op is not None:
                n = t
            else:
                n = t._parent
                if n is None:
                    continue
            if v:  # an op's output changed in place: its own VJP would misread it
                raise _modified_error(n, t, output=True)
            if need:
                key = id(n)
                if key not in seen and key not in stop and n._seq > since:
                    seen[key] = n
                    push(n)
    order = list(seen.values())
    order.sort(key=_SEQ, reverse=True)
    return order


_SEQ = operator.attrgetter("_seq")


# -- summing cotangents ------------------------------------------------------------------------


def _add(grads: dict, owned: set, key, c, old=None) -> None:
    """Add cotangent ``c`` into the sum held for ``key`` (in place only into arrays this pass
    allocated: VJPs may hand the same array to several inputs)."""
    if old is None:
        old = grads.get(key)
        if old is None:
            grads[key] = c
            return
    if key in owned and type(old) is np.ndarray and type(c) is np.ndarray:
        np.add(old, c, out=old, casting="unsafe")
    else:
        new = old + c
        grads[key] = new
        if type(new) is np.ndarray:
            owned.add(key)


def _add_leaf(leaves: dict, t, c, fresh: bool) -> None:
    entry = leaves.get(id(t))
    if entry is None:
        leaves[id(t)] = [t, c, fresh]
    else:
        _add_to_leaf(entry, c)


def _add_to_leaf(entry: list, c) -> None:
    old = entry[1]
    if entry[2] and type(old) is np.ndarray and type(c) is np.ndarray:
        np.add(old, c, out=old, casting="unsafe")
    else:
        entry[1] = old + c
        entry[2] = type(entry[1]) is np.ndarray


def _is_fresh(c, g, out, args, cots) -> bool:
    """Whether a VJP made ``c`` just now for this input alone, so a leaf may keep it uncopied."""
    if type(c) is not np.ndarray or c.base is not None or c is g or c is out:
        return False
    if type(g) is tuple and any(c is x for x in g):
        return False
    if type(out) is tuple and any(c is x for x in out):
        return False
    for a in args:
        if a is c:
            return False
    n = 0
    for x in cots:
        if x is c:
            n += 1
    return n == 1


def _commit_leaves(entries, create_graph: bool) -> None:
    """Write the summed gradients into ``.grad``: all checked first, then all written.

    (``_grad``, the slot behind the ``grad`` property: fg.jit routes leaves elsewhere.)"""
    entries = list(entries)
    for t, c, _ in entries:
        grad = t._grad
        if grad is not None and grad._data.shape != getattr(c, "_data", c).shape:
            raise ShapeError(
                f"backward: a leaf of shape {tuple(t.shape)} already has a .grad of shape "
                f"{tuple(grad.shape)} (its .data changed shape since); set .grad = None (or "
                "call the optimizer's zero_grad()) before backpropagating into it again")
    for t, c, fresh in entries:
        grad = t._grad
        if isinstance(c, np.generic):  # a 0-d VJP's NumPy scalar: a 0-d array, never a graph
            c, fresh = np.asarray(c), True
        if type(c) is np.ndarray:
            if grad is None:
                if c.dtype.kind not in "fc":
                    c = c.astype(np.float64)
                elif not fresh:
                    c = np.array(c, copy=True, order="C")  # another leaf's array, or a view
                t._grad = type(t)._make(c, None)
            elif grad.requires_grad or not grad._data.flags.writeable:
                t._grad = type(t)._make(grad._data + c, None)  # never write into a recorded grad
            else:
                np.add(grad._data, c, out=grad._data, casting="unsafe")
                grad._version += 1
        else:  # create_graph: a recorded Tensor; the leaf gets its own copy, still connected
            t._grad = copy_op(c) if grad is None else grad + c


def _checked(op, cots, inputs) -> tuple:
    """A user's VJP result, checked: one real cotangent per input, of a shape that fits."""
    n = len(inputs)
    where = (f"op '{op.name}': its VJP must return a tuple of {n} cotangent"
             f"{'s' if n != 1 else ''} (one per input, None where there is no gradient)")
    if not isinstance(cots, (tuple, list)):
        hint = " — for one input write `return (g * ...,)`" if n == 1 else ""
        raise TypeError(f"{where}, got {type(cots).__name__}{hint}")
    if len(cots) != n:
        raise TypeError(f"{where}, got {len(cots)}")
    for i, (c, t) in enumerate(zip(cots, inputs)):
        if c is None:
            continue
        data = getattr(c, "_data", c)
        if isinstance(data, (int, float, np.generic)) and not isinstance(data, bool):
            data = np.asarray(data)
        traced = recording.is_traced(data)  # fg.jit traces it, or fg.vmap batches it
        if not (isinstance(data, np.ndarray) or traced) or data.dtype.kind not in "biufc":
            kind = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
            raise DTypeError(f"{where}: cotangent {i} is {kind}; expected an array, a "
                             "Tensor or None")
        shape = tuple(np.shape(getattr(t, "_data", t)))
        if data.shape != shape and not _sums_to(data.shape, shape):
            raise ShapeError(f"{where}: cotangent {i} has shape {data.shape} but input {i} has "
                             f"shape {shape}; each cotangent must have its input's shape")
    return tuple(cots)


def _sums_to(big: tuple, small: tuple) -> bool:
    """Whether broadcasting ``small`` can give ``big`` (so sum_to can undo it)."""
    if len(big) < len(small):
        return False
    return all(s == b or s == 1 for s, b in zip(small, big[len(big) - len(small):]))


def _modified_error(node, t, output: bool = False) -> GraphError:
    if output:
        what = f"its output of shape {tuple(t.shape)}"
    else:
        made_by = f"made by '{t.creation_op}'" if t.creation_op else "a leaf"
        what = f"its input of shape {tuple(t.shape)} ({made_by})"
    return GraphError(
        f"backward of '{node._op.name}': {what} had its .data replaced or modified in place "
        "after the forward pass used it, so the gradient would be wrong. Run backward before "
        "changing it (optimizer steps after backward are fine), or recompute the forward pass."
    )


def seed_of(t: Any, grad: Any, create_graph: bool) -> Any:
    """The cotangent ``t.backward(grad)`` starts from: for ``grad=None``, ones in ``t``'s
    floating dtype (the book's seed; a complex ``t`` is refused, a non-scalar one warns once);
    else ``grad`` checked against ``t``'s shape, as an array of that dtype (a Tensor is kept
    as it is under ``create_graph``, so the seed is differentiated too)."""
    data = t._data
    dtype = data.dtype if data.dtype.kind in "fc" else np.dtype(np.float64)
    if grad is None:
        if dtype.kind == "c":
            raise DTypeError(
                f"backward: this tensor is complex (dtype {dtype}); pass grad= (its "
                "cotangent, see the README's complex convention), or backpropagate a real "
                "value such as fg.abs(t) ** 2 or fg.real(t)")
        if data.size != 1:
            _warn_non_scalar(t.shape)
        return np.ones(data.shape, dtype=dtype)
    if isinstance(grad, registry._Tensor) and create_graph:
        seed = grad
        if grad._data.dtype.kind not in "biufc":
            raise DTypeError(f"backward: grad must hold numbers, got dtype {grad.dtype}")
    elif isinstance(grad, (str, bytes)) or grad is Ellipsis:
        raise DTypeError(f"backward: grad must be an array or Tensor of numbers, "
                         f"got {type(grad).__name__}")
    else:
        seed = as_seed(grad, dtype, "backward")
    seed_shape = tuple(np.shape(getattr(seed, "_data", seed)))
    if seed_shape != t.shape:
        raise ShapeError(f"backward: grad of shape {seed_shape} does not match the "
                         f"tensor's shape {t.shape}")
    return seed


_warned_non_scalar = False


def _warn_non_scalar(shape: tuple) -> None:
    """Say once per process that ``backward()`` without a seed summed a non-scalar loss."""
    global _warned_non_scalar
    if _warned_non_scalar:
        return
    _warned_non_scalar = True
    warnings.warn(
        f"backward: the loss has shape {shape}, not a single number, and no grad was given, "
        "so its gradient is that of its sum (the book's seed of ones; PyTorch refuses this). "
        "Pass grad= to weigh the elements, or reduce the loss first: loss.sum() or "
        "loss.mean() (nn.MSELoss(reduction='mean') is PyTorch's default). This warning is "
        "shown once.", NonScalarBackwardWarning, stacklevel=4)  # the caller of t.backward()


def as_seed(value: Any, dtype: np.dtype, where: str) -> np.ndarray:
    """A cotangent given by the user, as an array of ``dtype``: real for a real output (a
    complex one is refused), complex for a complex output."""
    data = getattr(value, "_data", value)
    if recording.is_traced(data):  # fg.jit or fg.vmap: stays traced, or batched
        return data if data.dtype == dtype else data.astype(dtype)
    arr = np.asarray(data)
    if arr.dtype.kind not in "biufc" or (arr.dtype.kind == "c" and dtype.kind != "c"):
        what = "real numbers, as the value it belongs to" if dtype.kind != "c" else "numbers"
        raise DTypeError(f"{where}: the cotangent must hold {what}, got dtype {arr.dtype}")
    return arr if arr.dtype == dtype else arr.astype(dtype)


def differentiate(fn, g, args, params, n_outputs) -> tuple:
    """The cotangents of ``args`` for the cotangent ``g`` of ``fn(*args, **params)``: the VJP
    of an op declared with ``reference=fn`` (see :func:`fungrad.defop`).

    ``fn`` runs on the inputs with recording on, and ``g`` is backpropagated through what it
    recorded, no further. In plain backward the inputs are arrays: they become fresh leaves,
    and the cotangents are arrays. Under ``create_graph`` they are the graph's Tensors, so the
    cotangents are recorded functions of them (derivatives of any order). One cotangent per
    argument (``None`` for constants); ``g`` has one entry per output when ``n_outputs != 1``.

    >>> import numpy as np
    >>> from fungrad.primitives import exp
    >>> differentiate(lambda x: exp(x) * x, np.ones(1), (np.zeros(1),), {}, 1)
    (array([1.]),)
    """
    Tensor = registry._Tensor
    st = recording.thread
    ins = [a if isinstance(a, Tensor) else
           Tensor(a, autograd=True) if _floating(a) else a for a in args]
    create = any(isinstance(a, Tensor) for a in args)
    was_enabled = st.enabled
    st.enabled = True
    start = recording.next_seq()
    try:
        out = fn(*ins, **params)
    finally:
        st.enabled = was_enabled
    outs, gs = (tuple(out), tuple(g)) if n_outputs != 1 else ((out,), (g,))
    roots, seeds = [], []
    for o, c in zip(outs, gs):
        if c is not None and isinstance(o, Tensor):
            roots.append(o)
            seeds.append(c if isinstance(c, Tensor) else as_seed(c, o._data.dtype, "reference"))
    targets = [t for t in ins if isinstance(t, Tensor)]
    cots = iter(backward(roots, seeds, retain_graph=create, create_graph=create,
                         targets=targets, since=start) if roots else [None] * len(targets))
    out_cots = []
    for t in ins:
        c = next(cots) if isinstance(t, Tensor) else None
        if c is None and isinstance(t, Tensor) and t._data.dtype.kind in "fc":
            c = np.zeros(t._data.shape, t._data.dtype)  # no path from it: a zero cotangent
        out_cots.append(c)
    return tuple(out_cots)


def _floating(a: Any) -> bool:
    dtype = getattr(a, "dtype", None)
    return (dtype if dtype is not None else np.result_type(a)).kind in "fc"


registry._bind_differentiate(differentiate)
