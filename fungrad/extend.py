"""HIPS autograd's extension API (``autograd.extend``) as a thin layer over :func:`fg.defop`:
``primitive``, ``defvjp`` (curried rules ``lambda ans, *args, **kwargs: lambda g: ...``, one
per argument), ``defvjp_argnum``, ``defvjp_argnums``, ``defjvp``, ``defjvp_argnum``,
``def_linear`` and ``notrace_primitive``, so that an autograd user's custom operation moves
with its import line changed.

A primitive called on plain values runs the wrapped function. Called with Tensors (under
``fg.grad``, ``fg.vmap``, ``fg.jit``...) it runs as an op registered for the positions that
hold Tensors (one op per pattern, made on first use, named ``extend.<function>``): its forward
is the wrapped function and its VJP the rules given here, so it works under grad, vjp, jvp and
higher order (if the rules are written with fungrad functions), under fg.vmap (a loop over the
examples, with one warning, as any op without a batching rule) and under fg.jit (a Python step
in the compiled program). A rule given only as a JVP is transposed into a VJP (it is linear in
its tangent), as ``def_linear`` needs.

>>> import numpy as np, fungrad as fg
>>> from fungrad.extend import primitive, defvjp
>>> @primitive
... def cube(x):
...     return x ** 3
>>> defvjp(cube, lambda ans, x: lambda g: 3 * g * x ** 2)
>>> float(fg.grad(cube)(2.0)), float(fg.grad(fg.grad(cube))(2.0))
(12.0, 12.0)
"""

from __future__ import annotations

import functools
import inspect
import itertools
from typing import Any, Callable, Iterable

import numpy as np

from .functional import vjp as fg_vjp
from .recording import enable_grad, next_seq
from .registry import Op, apply, defop, unwrap
from .scipy._common import untraced
from .recording import is_traced
from .tensor import Tensor

__all__ = ["primitive", "defvjp", "defvjp_argnum", "defvjp_argnums", "defjvp",
           "defjvp_argnum", "defjvp_argnums", "def_linear", "notrace_primitive", "Primitive",
           "Node", "trace"]

_P = inspect.Parameter


def _recorded(x: Any) -> bool:
    return isinstance(x, Tensor) or is_traced(x)


class Primitive:
    """A function wrapped by :func:`primitive`: callable as the function, with the VJP and
    JVP rules attached by :func:`defvjp` and :func:`defjvp` (by argument position)."""

    def __init__(self, fun: Callable) -> None:
        self.fun = fun
        self.vjp_makers: dict[int, Callable | None] = {}
        self.jvp_makers: dict[int, Callable | None] = {}
        self.vjp_argnums: Callable | None = None  # defvjp_argnums's all-at-once rule
        self._ops: dict[tuple, Op] = {}
        functools.update_wrapper(self, fun)

    def __repr__(self) -> str:
        return f"<fungrad.extend primitive {getattr(self.fun, '__qualname__', self.fun)!r}>"

    def __get__(self, obj: Any, owner: Any = None) -> Any:  # methods stay bindable
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        positions = tuple(i for i, a in enumerate(args) if _recorded(a))
        if not positions:
            return self.fun(*args, **kwargs)
        op = self._op_for(positions)
        consts = tuple(None if i in positions else a for i, a in enumerate(args))
        return op(*[args[i] for i in positions], consts=consts,
                  kwargs=tuple(sorted(kwargs.items())))

    def _invalidate(self) -> None:
        self._ops.clear()  # new rules: the ops made before them are stale

    def _op_for(self, positions: tuple) -> Op:
        op = self._ops.get(positions)
        if op is None:
            op = self._ops[positions] = self._make_op(positions)
        return op

    def _make_op(self, positions: tuple) -> Op:
        fun = self.fun

        def merged(arrays, consts):
            it = iter(arrays)
            return [next(it) if i in positions else c for i, c in enumerate(consts)]

        def forward(*arrays, consts=(), kwargs=()):
            with untraced():  # the wrapped function may call fungrad: one Python step
                return np.asarray(unwrap(fun(*merged(arrays, consts), **dict(kwargs))))

        forward.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [_P(f"x{i}", _P.POSITIONAL_ONLY) for i in positions]
            + [_P("consts", _P.KEYWORD_ONLY, default=()),
               _P("kwargs", _P.KEYWORD_ONLY, default=())])

        def part(k: int, argnum: int) -> Callable:
            def vjp(g, out, *arrays, consts=(), kwargs=()):
                args = merged(arrays, consts)
                return self._cotangent(argnum, g, out, args, dict(kwargs))
            return vjp

        name = getattr(fun, "__qualname__", None) or getattr(fun, "__name__", "primitive")
        return defop(f"extend.{name}@{id(self):x}:{','.join(map(str, positions))}", forward,
                     tuple(part(k, p) for k, p in enumerate(positions)), replace=True,
                     doc=getattr(fun, "__doc__", None))

    def _cotangent(self, argnum: int, g: Any, ans: Any, args: list, kwargs: dict) -> Any:
        if self.vjp_argnums is not None:
            return next(iter(self.vjp_argnums((argnum,), ans, tuple(args), kwargs)(g)))
        if argnum in self.vjp_makers:
            maker = self.vjp_makers[argnum]
            if maker is None:  # declared to have a zero gradient
                return args[argnum] * 0.0
            return maker(ans, *args, **kwargs)(g)
        if argnum in self.jvp_makers:
            return self._transposed_jvp(argnum, g, ans, args, kwargs)
        name = getattr(self.fun, "__name__", "primitive")
        raise NotImplementedError(
            f"VJP of {name} with respect to argument {argnum} not defined: give it with "
            f"fungrad.extend.defvjp({name}, ...) (or defjvp)")

    def _transposed_jvp(self, argnum: int, g: Any, ans: Any, args: list, kwargs: dict) -> Any:
        """The VJP from a JVP rule (linear in its tangent): the pullback of t -> jvp(t)."""
        maker = self.jvp_makers[argnum]
        if maker is None:
            return args[argnum] * 0.0
        zero = np.zeros(np.shape(unwrap(args[argnum])), dtype=_float_of(args[argnum]))
        _, pull = fg_vjp(lambda t: maker(t, ans, *args, **kwargs), zero)
        return pull(g)[0]


def _float_of(x: Any) -> np.dtype:
    dt = np.result_type(unwrap(x))
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def primitive(f_raw: Callable) -> Primitive:
    """Mark ``f_raw`` as a primitive: fungrad does not look inside it (it may call anything,
    mutate its own arrays...) and differentiates it with the rules given by :func:`defvjp` or
    :func:`defjvp`.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.extend import primitive, defvjp
    >>> logsumexp = primitive(lambda x: np.log(np.sum(np.exp(x))))
    >>> defvjp(logsumexp, lambda ans, x: lambda g: g * fg.exp(x - ans))
    >>> fg.grad(logsumexp)(np.zeros(2))
    array([0.5, 0.5])
    """
    if isinstance(f_raw, Primitive):
        return f_raw
    return Primitive(f_raw)


def _as_primitive(fun: Any, what: str) -> Primitive:
    if not isinstance(fun, Primitive):
        raise TypeError(f"{what}: {getattr(fun, '__name__', fun)!r} is not a primitive; wrap "
                        "it with fungrad.extend.primitive first")
    return fun


def defvjp(fun: Primitive, *vjpmakers: Callable | None,
           argnums: Iterable[int] | None = None) -> None:
    """Give ``fun`` one VJP rule per argument, autograd's curried form
    ``lambda ans, *args, **kwargs: lambda g: cotangent`` (``None``: a zero gradient); with
    ``argnums``, the rules are for those positions.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.extend import primitive, defvjp
    >>> mul = primitive(lambda x, y: x * y)
    >>> defvjp(mul, lambda ans, x, y: lambda g: g * y, lambda ans, x, y: lambda g: g * x)
    >>> fg.grad(mul, argnums=(0, 1))(2.0, 3.0)
    (array(3.), array(2.))
    """
    fun = _as_primitive(fun, "defvjp")
    for argnum, maker in zip(itertools.count() if argnums is None else argnums, vjpmakers):
        fun.vjp_makers[int(argnum)] = maker
    fun._invalidate()


def defvjp_argnum(fun: Primitive, vjpmaker: Callable) -> None:
    """One rule for every argument: ``vjpmaker(argnum, ans, args, kwargs)`` returns the VJP
    ``lambda g: ...`` for argument ``argnum``.

    >>> import fungrad as fg
    >>> from fungrad.extend import primitive, defvjp_argnum
    >>> add = primitive(lambda x, y: x + y)
    >>> defvjp_argnum(add, lambda argnum, ans, args, kwargs: lambda g: g)
    >>> fg.grad(add, argnums=1)(1.0, 2.0)
    array(1.)
    """
    fun = _as_primitive(fun, "defvjp_argnum")
    fun.vjp_argnums = lambda argnums, ans, args, kwargs: (
        lambda g: (vjpmaker(argnum, ans, args, kwargs)(g) for argnum in argnums))
    fun._invalidate()


def defvjp_argnums(fun: Primitive, vjpmaker: Callable) -> None:
    """One rule for all arguments at once: ``vjpmaker(argnums, ans, args, kwargs)`` returns
    ``lambda g: cotangents`` (one per position in ``argnums``).

    >>> import fungrad as fg
    >>> from fungrad.extend import primitive, defvjp_argnums
    >>> sub = primitive(lambda x, y: x - y)
    >>> defvjp_argnums(sub, lambda argnums, ans, args, kwargs: lambda g: tuple(
    ...     g if i == 0 else -g for i in argnums))
    >>> fg.grad(sub, argnums=1)(1.0, 2.0)
    array(-1.)
    """
    fun = _as_primitive(fun, "defvjp_argnums")
    fun.vjp_argnums = vjpmaker
    fun._invalidate()


def defjvp(fun: Primitive, *jvpfuns: Callable | None,
           argnums: Iterable[int] | None = None) -> None:
    """Give ``fun`` one JVP rule per argument, autograd's form
    ``lambda g, ans, *args, **kwargs: tangent`` (``None``: zero). fungrad's forward mode
    differentiates VJPs, so a JVP rule is turned into the VJP it is the transpose of (the
    rule must be linear in ``g`` and written with fungrad functions); VJP rules given by
    :func:`defvjp` take precedence.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.extend import primitive, defjvp
    >>> sin = primitive(np.sin)
    >>> defjvp(sin, lambda g, ans, x: g * fg.cos(x))
    >>> float(fg.grad(sin)(0.0))
    1.0
    """
    fun = _as_primitive(fun, "defjvp")
    for argnum, maker in zip(itertools.count() if argnums is None else argnums, jvpfuns):
        fun.jvp_makers[int(argnum)] = maker
    fun._invalidate()


def defjvp_argnum(fun: Primitive, jvpmaker: Callable) -> None:
    """One JVP rule for every argument: ``jvpmaker(argnum, g, ans, args, kwargs)``.

    >>> import fungrad as fg
    >>> from fungrad.extend import primitive, defjvp_argnum
    >>> double = primitive(lambda x: 2 * x)
    >>> defjvp_argnum(double, lambda argnum, g, ans, args, kwargs: 2 * g)
    >>> float(fg.grad(double)(1.0))
    2.0
    """
    fun = _as_primitive(fun, "defjvp_argnum")
    for argnum in range(_arity(fun)):
        fun.jvp_makers[argnum] = functools.partial(_argnum_jvp, jvpmaker, argnum)
    fun._invalidate()


def defjvp_argnums(fun: Primitive, jvpmaker: Callable) -> None:
    """All JVPs at once: ``jvpmaker(argnums, gs, ans, args, kwargs)`` returns the tangent of
    the output for the tangents ``gs`` of the arguments ``argnums``.

    >>> import fungrad as fg
    >>> from fungrad.extend import primitive, defjvp_argnums
    >>> add = primitive(lambda x, y: x + y)
    >>> defjvp_argnums(add, lambda argnums, gs, ans, args, kwargs: sum(gs))
    >>> float(fg.grad(add, argnums=0)(1.0, 2.0))
    1.0
    """
    fun = _as_primitive(fun, "defjvp_argnums")
    for argnum in range(_arity(fun)):
        fun.jvp_makers[argnum] = functools.partial(_argnums_jvp, jvpmaker, argnum)
    fun._invalidate()


def _argnum_jvp(jvpmaker: Callable, argnum: int, g: Any, ans: Any, *args: Any,
                **kwargs: Any) -> Any:
    return jvpmaker(argnum, g, ans, args, kwargs)


def _argnums_jvp(jvpmaker: Callable, argnum: int, g: Any, ans: Any, *args: Any,
                 **kwargs: Any) -> Any:
    return jvpmaker((argnum,), (g,), ans, args, kwargs)


def _arity(fun: Primitive) -> int:
    """How many positional arguments the wrapped function takes (a generous bound if it
    takes ``*args``): the positions a rule for every argument covers."""
    try:
        params = inspect.signature(fun.fun).parameters.values()
    except (TypeError, ValueError):
        return 32
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 32
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def def_linear(fun: Primitive) -> None:
    """Declare ``fun`` linear in each argument (``fun(..., x + y, ...)`` is the sum): its
    JVP in an argument is ``fun`` with the tangent in that argument's place, and (unless a
    :func:`defvjp` rule is given) its VJP the transpose of that, traced through the wrapped
    function, which must then be written with fungrad functions.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.extend import primitive, def_linear
    >>> scale = primitive(lambda x, y: x * y)
    >>> def_linear(scale)
    >>> fg.grad(scale, argnums=(0, 1))(2.0, 3.0)
    (array(3.), array(2.))
    """
    fun = _as_primitive(fun, "def_linear")

    def linear(argnum, g, ans, args, kwargs):
        return fun.fun(*args[:argnum], g, *args[argnum + 1:], **kwargs)

    defjvp_argnum(fun, linear)


def notrace_primitive(f_raw: Callable) -> Callable:
    """Wrap ``f_raw`` to run on the values of its arguments (Tensors read as constants), its
    result never differentiated: for functions whose output carries no gradient (shapes,
    random draws, integer results), as autograd's ``notrace_primitive``.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.extend import notrace_primitive
    >>> argmax = notrace_primitive(np.argmax)
    >>> int(argmax(fg.Tensor(np.array([1.0, 3.0]), autograd=True)))
    1
    """
    @functools.wraps(f_raw)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return f_raw(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in kwargs.items()})
    return wrapped


# -- autograd.tracer: replaying a recorded computation into the user's node type ------------------


class Node:
    """A node of a trace made by :func:`trace`, as ``autograd.tracer.Node``: subclass it and
    override ``__init__(self, value, fun, args, kwargs, parent_argnums, parents)`` (one node per
    recorded op call whose arguments depend on the traced input) and ``initialize_root`` (the
    input's node, made by :meth:`new_root`)."""

    def __init__(self, value: Any, fun: Callable, args: tuple, kwargs: dict,
                 parent_argnums: tuple, parents: list) -> None:
        """Called for each op call: its output ``value``, the op as a function ``fun``, the
        argument values, the op's parameters, and which arguments come from traced nodes."""

    def initialize_root(self, *args: Any, **kwargs: Any) -> None:
        """Set up the root node (called by :meth:`new_root` with its arguments)."""

    @classmethod
    def new_root(cls, *args: Any, **kwargs: Any) -> "Node":
        """The root node of a trace: made without ``__init__``, then ``initialize_root``."""
        root = cls.__new__(cls)
        root.initialize_root(*args, **kwargs)
        return root


_OP_FUNCTIONS: dict[str, Callable] = {}


def _function_of(op: Op) -> Callable:
    """``op`` as a function named after it (what a trace node receives as ``fun``)."""
    fn = _OP_FUNCTIONS.get(op.name)
    if fn is None:
        def fn(*args: Any, **kwargs: Any) -> Any:
            return apply(op, args, kwargs)
        fn.__name__ = fn.__qualname__ = op.name.rsplit(".", 1)[-1]
        _OP_FUNCTIONS[op.name] = fn
    return fn


def trace(start_node: Node, fun: Callable, x: Any) -> tuple[Any, Node | None]:
    """Run ``fun(x)`` and build the graph of what it computed from ``x`` out of nodes of
    ``start_node``'s type, as ``autograd.tracer.trace``: returns ``(value, end_node)``, with
    ``end_node`` None when the result does not depend on ``x``.

    fungrad records the op calls on the tape as they run; the trace replays them afterwards,
    in the order they ran, constructing one node per call that depends on ``x`` (calls on
    values that do not, and calls whose results do not reach the output, make no node). The
    computation runs as under ``fg.grad``, so a trace of ``fg.grad(f)`` records the backward's
    ops too.

    >>> import fungrad.numpy as fnp
    >>> class Names(Node):
    ...     def __init__(self, value, fun, args, kwargs, parent_argnums, parents):
    ...         self.text = f"{fun.__name__}({', '.join(p.text for p in parents)})"
    ...     def initialize_root(self):
    ...         self.text = "x"
    >>> value, node = trace(Names.new_root(), lambda x: fnp.sin(x * x), 1.5)
    >>> node.text
    'sin(multiply(x, x))'
    """
    start = Tensor(x, requires_grad=True) if not isinstance(x, Tensor) else x
    first = next_seq()
    with enable_grad():
        out = fun(start)
    nodes: dict[int, Node] = {id(start): start_node}
    end = out._parent if isinstance(out, Tensor) and out._parent is not None else out
    if not isinstance(end, Tensor) or end is start:
        return out, (start_node if end is start else None)
    for t in _recorded_since(end, first):
        inputs = t._inputs or ()
        parents, argnums = [], []
        for i, a in enumerate(inputs):
            node = nodes.get(id(a._parent if a._parent is not None else a)) \
                if isinstance(a, Tensor) else None
            if node is not None:
                parents.append(node)
                argnums.append(i)
        if not parents:
            continue  # a call on values that do not depend on x
        value = t._outs if t._outs is not None else t._data
        nodes[id(t)] = type(start_node)(value, _function_of(t._op),
                                        tuple(unwrap(a) for a in inputs),
                                        dict(t._params or {}), tuple(argnums), parents)
    return (unwrap(out) if isinstance(out, Tensor) else out), nodes.get(id(end))


def _recorded_since(end: Tensor, first: int) -> list[Tensor]:
    """The op calls recorded since sequence number ``first`` that ``end`` depends on, in the
    order they ran (iteratively: a trace may be long)."""
    seen: dict[int, Tensor] = {}
    stack = [end]
    while stack:
        t = stack.pop()
        if t._parent is not None:
            t = t._parent
        if id(t) in seen or t._op is None or t._seq <= first:
            continue
        seen[id(t)] = t
        stack.extend(a for a in t._inputs or () if isinstance(a, Tensor))
    return sorted(seen.values(), key=lambda t: t._seq)
