"""The tape: recorded nodes, per-thread recording state, and the iterative backward pass.

Every recorded op call becomes a :class:`Node` holding the op, its arguments (Tensors or raw
values), its static parameters and its output array, stamped with a sequence number from one
global counter. Creation order is a topological order, so backward collects the nodes that
reach the output with an explicit stack and runs their VJPs by descending sequence number:
no recursion, so a chain of a million ops backpropagates.

Nodes point to their inputs, never to their outputs, so the graph is freed by reference
counting alone (no cycles for the garbage collector).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import threading
from typing import Any, Iterator

import numpy as np

from .errors import AnomalyError, GraphError

__all__ = ["Node", "no_grad", "enable_grad", "detect_anomaly", "is_grad_enabled", "backward"]

_next_seq = itertools.count().__next__  # atomic under the GIL: safe across threads


class _State(threading.local):
    """Recording flags, one set per thread (threads training separate models do not mix)."""

    def __init__(self) -> None:
        self.enabled = True  # record ops that touch a Tensor requiring grad
        self.anomaly = False  # raise at the first NaN/inf in forward or backward
        self.depth = 0  # how many functional transformations are tracing on this thread
        self.hook = None  # fg.jit's tracer while it traces on this thread (fungrad/jit)


state = _State()


class Node:
    """One recorded op call. ``inputs`` is ``None`` once backward has released it.

    ``inputs`` are the arguments as given (Tensors or plain values) and ``arrays`` the same
    arguments unwrapped, as the forward saw them and as a plain backward hands them to the VJP.
    """

    __slots__ = ("op", "inputs", "arrays", "params", "out", "needs", "versions", "seq",
                 "released")

    def __init__(self, op, inputs: tuple, arrays: tuple, params: dict, out: np.ndarray,
                 needs: tuple, versions: tuple) -> None:
        self.op = op
        self.inputs = inputs
        self.arrays = arrays
        self.params = params
        self.out = out
        self.needs = needs  # per input: does a gradient have to flow into it?
        self.versions = versions  # per Tensor input: its data version when recorded
        self.seq = _next_seq()
        self.released = ()

    def release(self) -> None:
        """Drop the saved arrays and the links into the graph behind this node.

        If every Tensor input is a leaf, the inputs are kept (they hold no graph, and the user
        holds them anyway), so ``creators`` still answers after backward, as the book prints.
        """
        for t, v in zip(self.inputs, self.versions):
            if v is not None and t._node is not None:
                break
        else:
            self.released = self.inputs
        self.inputs = None
        self.arrays = None
        self.out = None

    def __repr__(self) -> str:
        return f"<Node {self.op.name} #{self.seq}>"


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Do not record ops on this thread inside the block (inference, optimizer updates).

    >>> import fungrad as fg
    >>> w = fg.Tensor([1.0, 2.0], autograd=True)
    >>> with fg.no_grad():
    ...     y = w * 2
    >>> y.creation_op is None
    True
    """
    previous = state.enabled
    state.enabled = False
    try:
        yield
    finally:
        state.enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Record ops inside the block even within ``no_grad()``."""
    previous = state.enabled
    state.enabled = True
    try:
        yield
    finally:
        state.enabled = previous


def is_grad_enabled() -> bool:
    """Whether ops are being recorded on this thread."""
    return state.enabled


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise :class:`~fungrad.errors.AnomalyError` at the first NaN or inf an op produces.

    Checks every forward output and every cotangent a VJP returns, and names the op.

    >>> import numpy as np, fungrad as fg
    >>> x = fg.Tensor([0.0], autograd=True)
    >>> with fg.detect_anomaly():
    ...     try:
    ...         fg.log(x)
    ...     except fg.errors.AnomalyError as e:
    ...         print(str(e).split(":")[0])
    log
    """
    previous = state.anomaly
    state.anomaly = True
    try:
        yield
    finally:
        state.anomaly = previous


def check_finite(op_name: str, value: Any, where: str) -> None:
    """Raise AnomalyError if a floating array holds a NaN or inf (used under detect_anomaly)."""
    arr = np.asarray(value.data if hasattr(value, "_node") else value)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise AnomalyError(
            f"{op_name}: {where} produced {bad} (shape {tuple(arr.shape)}, dtype {arr.dtype})"
        )


# --------------------------------------------------------------------------------------------
# backward
# --------------------------------------------------------------------------------------------


def _collect(root_nodes: list, stop: set) -> list:
    """Nodes reachable from ``root_nodes``, by descending sequence number (explicit stack).

    Nodes in ``stop`` (the targets of a functional ``grad``) are not entered: the walk must not
    leave the function being differentiated. Every saved input and output is checked for
    in-place modification here, before any VJP runs, so a refused backward changes nothing.
    """
    seen = {id(n): n for n in root_nodes}
    stack = list(root_nodes)
    while stack:
        node = stack.pop()
        inputs = node.inputs
        if inputs is None:
            raise GraphError(
                f"backward through '{node.op.name}' a second time: its saved values were freed "
                "after the first backward. Pass retain_graph=True to the first backward() "
                "if you need to backpropagate through the graph again."
            )
        for need, t, v in zip(node.needs, inputs, node.versions):
            if v is None:
                continue
            if t._version != v:
                raise _modified_error(node, t)
            n = t._node
            if n is not None:
                if t._version:  # an op's output changed in place: its own VJP would misread it
                    raise _modified_error(n, t, output=True)
                key = id(n)
                if need and key not in seen and key not in stop:
                    seen[key] = n
                    stack.append(n)
    order = list(seen.values())
    order.sort(key=_seq, reverse=True)
    return order


def _seq(node: Node) -> int:
    return node.seq


def backward(
    roots: list,
    seeds: list,
    *,
    retain_graph: bool = False,
    create_graph: bool = False,
    targets: list | None = None,
) -> list | None:
    """Backpropagate ``seeds`` (cotangents of ``roots``) through the recorded graph.

    With ``targets=None`` cotangents are accumulated into the ``.grad`` of every leaf Tensor
    that requires grad (``Tensor.backward``). With a list of target Tensors, nothing is written
    to ``.grad``; the cotangent of each target is returned instead (``None`` where it does not
    depend on the roots), and the walk stops at the targets (functional ``grad``/``vjp``).

    With ``create_graph=True`` the VJPs run on Tensors and are themselves recorded, so the
    gradients can be differentiated again.
    """
    sum_to, Tensor = _late()

    # Cotangent sums per node (or per target leaf). VJPs may hand the same array to several
    # inputs (add returns (g, g)), so a sum is updated in place only if this pass allocated it.
    grads: dict = {}
    owned: set = set()
    target_keys = {_key(t) for t in targets} if targets is not None else set()
    stop = {id(t._node) for t in targets if t._node is not None} if targets else set()

    root_nodes = []
    for root, seed in zip(roots, seeds):
        key = _key(root)
        if key in target_keys or root._node is not None:
            _add(grads, owned, key, seed)
            if root._node is not None and key not in target_keys:
                root_nodes.append(root._node)
        elif targets is None and root.requires_grad:
            if state.hook is not None:  # fg.jit: record the accumulation
                state.hook.accumulate_grad(root, seed)
            else:
                _accumulate_leaf(root, seed, False, create_graph, Tensor)

    for root in roots:
        if root._node is not None and root._version:
            raise _modified_error(root._node, root, output=True)
    order = _collect(root_nodes, stop) if root_nodes else []
    hook = state.hook  # fg.jit tracing: cotangents are traced arrays, leaves go to the tracer
    anomaly = state.anomaly and hook is None
    plain = not create_graph
    recording = state.enabled
    state.enabled = not plain  # plain backward records nothing; create_graph records the VJPs
    # The graph is freed by reference counting and backward makes no cycles, so a cyclic
    # collection during it only rescans the graph being consumed: defer it until the end.
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        for node in order:
            key = id(node)
            g = grads.pop(key, None)
            if g is None:
                continue
            owned.discard(key)
            op = node.op
            inputs = node.inputs
            needs = node.needs
            args = node.arrays if plain else inputs
            out = node.out if plain else Tensor._make(node.out, node)
            parts = op.vjp_parts  # Op.run_vjp, inlined: this loop runs once per node
            if parts is None:
                cots = op.vjp(g, out, *args, **node.params)
            else:
                params = node.params
                cots = [part(g, out, *args, **params) if need else None
                        for part, need in zip(parts, needs)]
            for need, t, c in zip(needs, inputs, cots):
                if not need or c is None:
                    continue
                data = t._data
                if plain and type(c) is not np.ndarray and hook is None:
                    c = np.asarray(c)
                if c.shape != data.shape:
                    c = sum_to(c, data.shape)  # the one place broadcasting is undone
                dtype = data.dtype
                if c.dtype is not dtype and c.dtype != dtype and dtype.kind == "f":
                    c = c.astype(dtype)
                if anomaly:
                    check_finite(op.name, c, "backward")
                tnode = t._node
                tkey = id(tnode) if tnode is not None else id(t)
                if tnode is not None or tkey in target_keys:
                    _add(grads, owned, tkey, c)
                elif targets is None:
                    if hook is not None:
                        hook.accumulate_grad(t, c)
                        continue
                    if plain and t.grad is None and c.base is None and type(c) is np.ndarray:
                        if _is_fresh(c, g, out, args, cots) and c.dtype.kind == "f":
                            t.grad = Tensor._make(c, None)  # made just now for t alone: keep
                            continue
                    _accumulate_leaf(t, c, False, create_graph, Tensor)
            if not retain_graph:
                node.release()
    finally:
        state.enabled = recording
        if collecting:
            gc.enable()
    if targets is None:
        return None
    return [grads.get(_key(t)) for t in targets]


def _add(grads: dict, owned: set, key: int, c) -> None:
    old = grads.get(key)
    if old is None:
        grads[key] = c
    elif key in owned and type(old) is np.ndarray and type(c) is np.ndarray:
        np.add(old, c, out=old, casting="unsafe")
    else:
        new = old + c
        grads[key] = new
        if type(new) is np.ndarray:
            owned.add(key)


def _is_fresh(c, g, out, args, cots) -> bool:
    """Whether a VJP made ``c`` just now for this input alone, so a leaf may keep it uncopied."""
    if c is g or c is out:
        return False
    for a in args:
        if a is c:
            return False
    n = 0
    for x in cots:
        if x is c:
            n += 1
    return n == 1


_LATE: tuple = ()


def _late() -> tuple:
    """``sum_to`` and ``Tensor``, which import this module, fetched once on first backward."""
    global _LATE
    if not _LATE:
        from .ops.shape import sum_to  # noqa: PLC0415
        from .tensor import Tensor  # noqa: PLC0415

        _LATE = (sum_to, Tensor)
    return _LATE


def _key(t) -> int:
    node = t._node
    return id(node) if node is not None else id(t)


def _accumulate_leaf(t, c, fresh: bool, create_graph: bool, Tensor) -> None:
    if t.grad is None:
        if isinstance(c, np.ndarray):
            if c.dtype.kind != "f":
                c = c.astype(np.float64)
            elif not fresh:
                # the same array may be another leaf's gradient or a view of user data
                c = np.array(c, copy=True, order="C")
            t.grad = Tensor._make(c, None)
        else:
            t.grad = c if create_graph else Tensor._make(np.array(c.data, copy=True), None)
    elif create_graph or not isinstance(c, np.ndarray):
        t.grad = t.grad + c
    else:
        np.add(t.grad.data, c, out=t.grad.data, casting="unsafe")


def _modified_error(node: Node, t, output: bool = False) -> GraphError:
    if output:
        what = f"its output of shape {tuple(t.shape)}"
    else:
        made_by = f"made by '{t.creation_op}'" if t.creation_op else "a leaf"
        what = f"its input of shape {tuple(t.shape)} ({made_by})"
    return GraphError(
        f"backward of '{node.op.name}': {what} had its .data replaced or modified in place "
        "after the forward pass used it, so the gradient would be wrong. Run backward before "
        "changing it (optimizer steps after backward are fine), or recompute the forward pass."
    )
