"""The body a loop primitive carries, and the one-step VJP that every loop's VJP is made of.

A :class:`Body` is the loop's step as a function of pytrees, ``fn(consts, carry, x) ->
(carry, y)``, with the structure of each tree (:class:`Tree`). ``consts`` are the values the body
reads from outside besides its carry and its slice of ``xs``: for a user's body they are the
Tensors requiring grad that its closure reads (found by :func:`trace_step`, kept in
``Body.captured``); for the bodies fungrad builds itself (the transposed bodies of VJPs, the
registry's test cases) they are passed in explicitly.

:func:`step_vjp` runs the body once more, recorded, and backpropagates through that one step:
the cotangents of its inputs from the cotangents of its outputs. It is written with the engine
(:func:`fungrad.backprop.backward`), so when its inputs are themselves being differentiated it
records its own backward pass (``create_graph``), which is what lets a loop's VJP — a loop of
``step_vjp`` — be differentiated again.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .. import backprop, recording
from ..backprop import _node_of
from ..batching.interpreter import lift
from ..errors import CarryError, DTypeError, FungradError, GraphError, ShapeError
from ..functional import _needs_grad, _primal, _recording
from ..registry import unwrap
from ..tensor import Tensor
from ..tree import flatten, leaf_paths, unflatten

__all__ = ["Tree", "Body", "Reraise", "pure", "at_step", "value", "wrap", "aval", "is_float",
           "check_carry", "trace_step", "inner_edges", "step_vjp", "zeros_like"]

_NUMBERS = (bool, int, float)
_SEQ = operator.attrgetter("_seq")


class Tree:
    """A pytree's structure as a loop sees it: ``None`` is an empty subtree (as in JAX), and
    each leaf has a path for error messages (``carry[1]['h']``).

    >>> leaves, tree = Tree.of({"h": 1.0, "skip": None, "c": (2.0, 3.0)}, "carry")
    >>> leaves, tree.paths
    ([2.0, 3.0, 1.0], ["carry['c'][0]", "carry['c'][1]", "carry['h']"])
    >>> tree.build([20.0, 30.0, 10.0])
    {'c': (20.0, 30.0), 'h': 10.0, 'skip': None}
    """

    __slots__ = ("spec", "nones", "root", "n", "flat", "_paths")
    spec: Any  # the flatten() spec, or None for one leaf
    nones: tuple[int, ...]  # positions of the None leaves (empty subtrees)
    root: str  # the name paths start with ("carry")
    n: int  # leaves, the Nones left out
    flat: bool  # a plain list of n leaves (built and matched without a walk)
    _paths: list[str] | None  # made when first asked for

    @classmethod
    def of(cls, value: Any, root: str) -> tuple[list, "Tree"]:
        raw: list
        if value is None:  # the common cases, without a walk: no y, or one array
            raw, spec = [None], None
        elif isinstance(value, (np.ndarray, Tensor)):
            raw, spec = [value], None
        else:
            raw, spec = flatten(value)
        tree = cls()
        tree.spec, tree.root, tree._paths, tree.flat = spec, root, None, False
        tree.nones = tuple([i for i, v in enumerate(raw) if v is None])
        if tree.nones:
            raw = [v for v in raw if v is not None]
        tree.n = len(raw)
        return raw, tree

    @classmethod
    def flat_list(cls, n: int, root: str) -> "Tree":
        """The structure of a list of ``n`` leaves: what the bodies VJPs build take and
        return (built and matched without a walk)."""
        tree = cls.of([0] * n, root)[1]
        tree.flat = True
        return tree

    def match(self, value: Any) -> list | None:
        """``value``'s leaves if it has this structure, else None."""
        if self.flat:
            return value if type(value) is list and len(value) == self.n else None
        leaves, tree = Tree.of(value, self.root)
        return leaves if tree == self else None

    @property
    def paths(self) -> list[str]:
        """Each leaf's path, for messages (computed when first asked for)."""
        if self._paths is None:
            skip = set(self.nones)
            self._paths = [p for i, p in enumerate(leaf_paths(self.spec, self.root))
                           if i not in skip]
        return self._paths

    def build(self, leaves: Sequence) -> Any:
        """The pytree with these leaves (``None`` back in its empty subtrees)."""
        if self.flat:
            return list(leaves)
        if self.nones:
            leaves = list(leaves)
            for i in self.nones:
                leaves.insert(i, None)
        elif self.spec is None:
            return leaves[0]
        return unflatten(self.spec, list(leaves))

    def shape_text(self) -> str:
        """The structure with ``*`` for each leaf, for messages: ``(*, {'h': *})``."""
        return repr(self.build([_Star()] * self.n))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tree) and self.spec == other.spec and self.nones == other.nones

    __hash__ = object.__hash__


class _Star:
    def __repr__(self) -> str:
        return "*"


class Body:
    """A loop's step, ``fn(consts, carry, x) -> (carry, y)`` on pytrees, as a loop primitive
    carries it (one of its static parameters).

    ``carry`` and ``x`` are the input trees' structures, ``y`` the output's (learned on the
    first call when not given); ``n_consts`` how many leading inputs of the primitive are
    consts; ``captured`` the Tensors a user's body reads through its closure (``fn`` ignores
    its ``consts`` argument then, and :func:`step_vjp` differentiates with respect to these
    very objects); ``additive`` marks carry leaves the step only adds to (a VJP's gradient
    accumulators: their values are never needed to differentiate, so they are not saved);
    ``y_avals`` the shapes and dtypes of one step's ``y`` leaves, when known without running
    the body (a zero-length loop needs them).
    """

    __slots__ = ("name", "fn", "carry", "x", "y", "n_consts", "captured", "additive", "y_avals")

    def __init__(self, name: str, fn: Callable, carry: Tree, x: Tree, *, n_consts: int = 0,
                 captured: tuple | None = None, y: Tree | None = None,
                 additive: Sequence[bool] | None = None, y_avals: list | None = None) -> None:
        self.name = name
        self.fn = fn
        self.carry = carry
        self.x = x
        self.y = y
        self.n_consts = n_consts
        self.captured = captured
        self.additive = tuple(additive) if additive is not None else (False,) * carry.n
        self.y_avals = y_avals


    @property
    def ys(self) -> Tree:
        """The structure of the body's ``y`` (known once the body has run)."""
        assert self.y is not None, f"{self.name}: the body's y is known after its first call"
        return self.y
    def capture(self, consts: Sequence[Tensor]) -> None:
        """Make ``consts`` (the Tensors the closure reads) this body's consts."""
        self.captured = tuple(consts)
        self.n_consts = len(self.captured)

    def call(self, consts: Sequence, carry: Sequence, x: Sequence) -> tuple[list, list]:
        """One step on leaves: ``(carry leaves, y leaves)``, the structures checked."""
        out = self.fn(tuple(consts), self.carry.build(carry), self.x.build(x))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"{self.name}: the body must return a pair (carry, y), got "
                            f"{_kind(out)}")
        c_leaves = self.carry.match(out[0])
        if c_leaves is None:
            raise CarryError(
                f"{self.name}: the body returned a carry of structure "
                f"{Tree.of(out[0], 'carry')[1].shape_text()}, but it was given "
                f"{self.carry.shape_text()}; a loop's carry keeps its structure at every step")
        if self.y is None:
            y_leaves, self.y = Tree.of(out[1], "y")
            return c_leaves, y_leaves
        y_match = self.y.match(out[1])
        if y_match is None:
            raise ShapeError(f"{self.name}: the body's y has structure "
                             f"{Tree.of(out[1], 'y')[1].shape_text()} now and "
                             f"{self.y.shape_text()} before; it must be the same at every step")
        return c_leaves, y_match

    def __repr__(self) -> str:
        fn = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        return (f"<{self.name} body {fn}: carry {self.carry.shape_text()}, x "
                f"{self.x.shape_text()}, {self.n_consts} consts>")


class Reraise(FungradError):
    """An exception the body raised, carried through ``apply`` (which would otherwise rename
    it as the loop op's own error); the loop's caller raises ``error`` itself."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@contextlib.contextmanager
def pure() -> Iterator[None]:
    """A primitive's forward: values in, values out — nothing recorded on any graph, and
    transformations called inside start afresh (depth 0), as at the top level. (fg.jit's
    tracer never runs these forwards: it records a loop as one step, see
    :mod:`fungrad.jit.loops`; a loop's call site probing its body under the tracer drops the
    program steps the probe records, :func:`~fungrad.control.loops._probing`.)"""
    st = recording.thread
    enabled, depth = st.enabled, st.depth
    st.enabled, st.depth = False, 0
    try:
        yield
    finally:
        st.enabled, st.depth = enabled, depth


@contextlib.contextmanager
def at_step(name: str, where: str) -> Iterator[None]:
    """Say where in which loop a body's error came from (``where``: "at step 3"); pass the
    body's own error through ``apply`` unchanged (see :class:`Reraise`)."""
    try:
        yield
    except Reraise:
        raise
    except Exception as e:
        if hasattr(e, "add_note"):  # Python 3.11+
            e.add_note(f"(raised in the body of {name}, {where})")
        if isinstance(e, FungradError):
            raise
        raise Reraise(e) from e


def value(v: Any, dtype: Any = None) -> Any:
    """A leaf's array: a Tensor's data, a Python number as a 0-d array (of ``dtype`` if
    given: numbers are weakly typed, as in JAX)."""
    if isinstance(v, Tensor):
        return v._data
    if isinstance(v, np.ndarray) or recording.is_traced(v):
        return v
    if isinstance(v, _NUMBERS) and dtype is not None:
        return np.asarray(v, dtype=dtype)
    return np.asarray(v)


def wrap(v: Any) -> Tensor:
    """A leaf as the body sees it in a primitive's forward: a Tensor that records nothing."""
    return Tensor._make(value(v))


def aval(v: Any) -> tuple[tuple, np.dtype]:
    """``(shape, dtype)`` of a leaf."""
    d = value(v)
    return tuple(d.shape), np.dtype(d.dtype)


def is_float(v: Any) -> bool:
    """Whether a leaf (array, Tensor, number) holds floating-point numbers."""
    d = unwrap(v)
    dtype = getattr(d, "dtype", None)
    return np.dtype(dtype if dtype is not None else np.asarray(d).dtype).kind == "f"


def zeros_like(v: Any) -> np.ndarray:
    """Zeros of a leaf's shape, in its dtype if floating (else float64): a cotangent."""
    shape, dtype = aval(v)
    return np.zeros(shape, dtype if dtype.kind == "f" else np.float64)


def check_leaves(name: str, tree: Tree, leaves: Sequence, what: str) -> None:
    """Each leaf an array, a Tensor or a number; else a TypeError naming its path."""
    for path, v in zip(tree.paths, leaves):
        d = unwrap(v)
        if not (isinstance(d, (np.ndarray, np.generic) + _NUMBERS) or recording.is_traced(d)):
            raise TypeError(f"{name}: {path} is a {type(d).__name__}; {what} holds arrays, "
                            "Tensors and numbers (None for an empty part)")
        kind = np.asarray(d).dtype.kind if not recording.is_traced(d) else d.dtype.kind
        if kind not in "biuf":
            raise DTypeError(f"{name}: {path} has dtype {np.asarray(d).dtype}; loops carry real "
                             "numbers (bool, integer or floating point)")


def check_carry(name: str, tree: Tree, reference: Sequence[tuple], leaves: Sequence,
                step: int) -> list:
    """The carry leaves a step returned, as arrays, checked against ``reference``
    (``(shape, dtype)`` per leaf): a :class:`CarryError` naming the leaf if one changed."""
    out = []
    for path, v, (shape, dtype) in zip(tree.paths, leaves, reference):
        if isinstance(v, _NUMBERS) and not _weak_fits(v, dtype):
            raise CarryError(f"{name}: the body returned the Python {type(v).__name__} {v!r} "
                             f"for {path}, which is {dtype} of shape {shape}")
        d = value(v, dtype)
        if not hasattr(d, "dtype") or d.dtype.kind not in "biuf":
            raise TypeError(f"{name}: the body returned a {type(d).__name__} for {path}; a "
                            "carry holds arrays, Tensors and numbers")
        if tuple(d.shape) != shape or d.dtype != dtype:
            hint = (f" (cast it in the body with .astype('{dtype}'), or start from an init of "
                    f"dtype {d.dtype})") if d.dtype != dtype else ""
            raise CarryError(
                f"{name}: the body changed {path} from {dtype} of shape {shape} to {d.dtype} "
                f"of shape {tuple(d.shape)} at step {step}; a loop's carry keeps its shape and "
                f"dtype at every step{hint}")
        out.append(d)
    return out


def _weak_fits(v: Any, dtype: np.dtype) -> bool:
    if isinstance(v, bool):
        return True
    if isinstance(v, int):
        return dtype.kind in "iuf"
    return dtype.kind == "f"


def _kind(x: Any) -> str:
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} items"
    return f"a {type(x).__name__}"


# -- tracing a step -------------------------------------------------------------------------


def trace_step(body: Body, carry: Sequence, x: Sequence, *, record: bool
               ) -> tuple[list, list, list]:
    """Run the body once on real values: ``(consts, carry out, y avals)`` (the carry it
    returned as arrays, Python numbers left as they are: they are weakly typed).

    With ``record``, the step is recorded, with fresh differentiable Tensors for its float
    inputs, and the Tensors requiring grad that the recorded ops read from outside (the
    closure's parameters, a caller's traced values) are its consts, in the order backward
    meets them. The recording is dropped afterwards.
    """
    with (_recording() if record else pure()):
        start = recording.next_seq()
        c_in = [_fresh(v, record) for v in carry]
        x_in = [_fresh(v, record) for v in x]
        with at_step(body.name, "tracing its first step"):
            c_out, y_out = body.call((), c_in, x_in)
        consts: list = []
        if record:
            mine = {id(t) for t in c_in + x_in}
            seen: set = set()
            for _, _, t in inner_edges(c_out + y_out, start):
                if id(t) not in mine and id(t) not in seen:
                    seen.add(id(t))
                    consts.append(t)
            for t in c_out + y_out:  # returned as it is (``y = w``): read by no op, still read
                if _outside(t, start) and id(t) not in mine and id(t) not in seen:
                    seen.add(id(t))
                    consts.append(t)
    c_vals = [v if isinstance(v, _NUMBERS) else value(v) for v in c_out]
    return consts, c_vals, [aval(v) for v in y_out]


def _outside(t: Any, start: int) -> bool:
    """Whether ``t`` is a Tensor requiring grad that no op after sequence number ``start`` made
    (a leaf, or made before the step)."""
    if not (isinstance(t, Tensor) and t.requires_grad):
        return False
    return _before(t, start)


def _before(t: Tensor, start: int) -> bool:
    """Whether Tensor ``t`` existed before sequence number ``start``: made by an op recorded
    before it, or a leaf that was not made after it (fg.grad called inside a step makes its
    own leaves: those are the step's, not Tensors it reads)."""
    node = _node_of(t)
    return t._seq <= start if node is None else node._seq <= start


def _fresh(v: Any, grad: bool) -> Tensor:
    t = Tensor._make(value(v))
    t.requires_grad = grad and t._data.dtype.kind == "f"
    return t


def inner_edges(outputs: Sequence, start: int, stop: frozenset = frozenset()) -> list:
    """The edges ``(node, input position, tensor)`` from the ops recorded after sequence number
    ``start`` that ``outputs`` depend on, into Tensors from outside them (leaves, nodes
    recorded before ``start``, or Tensors whose id is in ``stop``), in the order backward
    meets them: nodes by descending sequence number, each node's inputs in order."""
    nodes: dict = {}
    stack: list = []

    def visit(t: Any) -> None:
        if isinstance(t, Tensor) and t.requires_grad and id(t) not in stop:
            n = _node_of(t)
            if n is not None and n._seq > start and id(n) not in nodes:
                nodes[id(n)] = n
                stack.append(n)

    for o in outputs:
        visit(o)
    while stack:
        n = stack.pop()
        for need, t in zip(n._needs, n._inputs):
            if need:
                visit(t)
    edges = []
    for n in sorted(nodes.values(), key=_SEQ, reverse=True):
        for pos, (need, t) in enumerate(zip(n._needs, n._inputs)):
            if not need:
                continue
            if id(t) in stop or _before(t, start):
                edges.append((n, pos, t))
    return edges


# -- the VJP of one step ----------------------------------------------------------------------


def step_vjp(body: Body, consts: Sequence, carry: Sequence, x: Sequence,
             ct_carry: Sequence, ct_y: Sequence, const_needs: Sequence[bool],
             x_needs: Sequence[bool]) -> tuple[list, list, list]:
    """The cotangents of one step's inputs from those of its outputs.

    ``ct_carry`` and ``ct_y`` hold one cotangent (or ``None``) per carry and y leaf. Returns
    ``(d consts, d carry, d x)``: lists with ``None`` where no gradient is wanted
    (``const_needs``, ``x_needs``), where it is not defined (integer leaves) or where nothing
    reached the input. Runs the body once, recorded, then the engine's backward pass through
    it; when any input is itself being differentiated the backward is recorded too
    (``create_graph``), so the result is differentiable again.
    """
    every = (*consts, *carry, *x, *ct_carry, *ct_y)
    nested = recording.thread.depth > 0 or any(_needs_grad(v) for v in every)
    want_c = [is_float(v) for v in carry]
    want_x = [bool(need) and is_float(v) for v, need in zip(x, x_needs)]
    with _recording():
        start = recording.next_seq()
        c_in = [_input(v, want, body.name) for v, want in zip(carry, want_c)]
        x_in = [_input(v, want, body.name) for v, want in zip(x, want_x)]
        if body.captured is not None:
            k_in = list(body.captured)
            want_k = [bool(need) for need in const_needs]
        else:
            want_k = [bool(need) and is_float(v) for v, need in zip(consts, const_needs)]
            k_in = [_input(v, want, body.name) for v, want in zip(consts, want_k)]
        with at_step(body.name, "recomputing a step for the backward pass"), \
                _in_this_vmap(body.captured):
            c_out, y_out = body.call(k_in, c_in, x_in)
        _check_reads(body, c_out + y_out, start, (*c_in, *x_in, *k_in))
        roots, seeds = [], []
        for o, ct in zip(c_out + y_out, list(ct_carry) + list(ct_y)):
            if ct is None or not _needs_grad(o):
                continue
            roots.append(o)
            dtype = o._data.dtype if o._data.dtype.kind == "f" else np.dtype(np.float64)
            seeds.append(ct if nested and isinstance(ct, Tensor) else
                         backprop.as_seed(ct, dtype, body.name))
        targets = ([t for t, w in zip(c_in, want_c) if w] + [t for t, w in zip(x_in, want_x) if w]
                   + [t for t, w in zip(k_in, want_k) if w])
        cots = backprop.backward(roots, seeds, retain_graph=nested, create_graph=nested,
                                 targets=targets, since=start) if roots else [None] * len(targets)
    it = iter(cots)
    d_carry = [next(it) if w else None for w in want_c]
    d_x = [next(it) if w else None for w in want_x]
    d_consts = [next(it) if w else None for w in want_k]
    return d_consts, d_carry, d_x


@contextlib.contextmanager
def _in_this_vmap(captured: tuple | None) -> Iterator[None]:
    """While a step is recomputed inside fg.vmap (a loop's batching rule runs the body
    vmapped), the Tensors its closure reads are made values of that vmap, as fg.grad makes its
    own inputs: their gradients are then one per example, as the other inputs' are. (Their
    data is swapped for the call and restored: the closure reads the Tensors themselves.)"""
    if not captured or recording.thread.vmap is None:
        yield
        return
    saved = [(t, t._data) for t in captured]
    for t, data in saved:
        t._data = lift(data)
    try:
        yield
    finally:
        for t, data in saved:
            t._data = data


def _check_reads(body: Body, outputs: list, start: int, inputs: tuple) -> None:
    """Refuse a step that reads a Tensor requiring grad that the traced first step did not
    read (a branch on values, a list indexed by a counter): the loop's node does not have it
    as an input, so its gradient would silently be lost."""
    known = frozenset(id(t) for t in inputs)
    for node, _, t in inner_edges(outputs, start, known):
        if id(t) not in known:
            made = f"made by '{t.creation_op}'" if t.creation_op else "a leaf"
            raise GraphError(
                f"{body.name}: a step reads a Tensor of shape {tuple(t.shape)} ({made}) through "
                f"'{node._op.name}' that requires grad but that the body did not read when it "
                "was traced on its first step, so its gradient would be lost. A loop body must "
                "read the same Tensors at every step: choose between values with fg.where, or "
                "pass the Tensor in the carry or in xs")


def _input(v: Any, target: bool, name: str) -> Any:
    """A step input for :func:`step_vjp`: a fresh differentiable Tensor if its cotangent is
    wanted, still connected if it is being differentiated outside, else a constant."""
    if target or (_needs_grad(v) and is_float(v)):
        return _primal(v, f"{name}: a carry or x leaf")
    return Tensor._make(value(v))
