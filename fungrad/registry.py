"""The op registry: one :class:`Op` record per primitive, and :func:`apply`, which runs it.

An op is a pure forward on ndarrays (plus static keyword parameters such as ``axis``), a pure
VJP ``vjp(g, out, *inputs, **params) -> tuple`` (one cotangent per input, ``None`` where not
differentiable), and the metadata its tests need (a :class:`~fungrad.domains.Domain`). Tensor
methods, the ``fg.*`` functions and the generated tests all read from this one registry.

>>> import numpy as np, fungrad as fg
>>> cube = fg.defop("cube_doc", lambda x: x ** 3, lambda g, out, x: (g * 3 * x * x,))
>>> fg.grad(lambda x: cube(x).sum())(np.array([1.0, 2.0]))
array([ 3., 12.])
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import tape
from .domains import Domain, default_domain
from .errors import AnomalyError, DTypeError, FungradError, IndexRangeError, ShapeError

__all__ = ["Op", "defop", "ops", "apply", "lookup", "unwrap"]

_REGISTRY: dict[str, "Op"] = {}
_EMPTY: dict = {}
_Tensor: Any = None  # bound by fungrad.tensor at import (the registry sits below Tensor)
_state = tape.state
Node = tape.Node
_NEEDS: dict = {}  # interned needs patterns: (True,), (True, False)...
_VERSIONS: dict = {}  # interned all-unmodified version patterns: (0,), (0, None)...


class Op:
    """A registered primitive. Call it like the NumPy function it mirrors.

    Attributes: ``name``, ``forward``, ``vjp`` (or ``vjp_parts``, one function per input),
    ``n_inputs`` (``None`` for ops taking a sequence, like ``concatenate``), ``param_names``,
    ``differentiable`` (per input), ``domain`` (test metadata), ``twice_differentiable``.
    """

    __slots__ = (
        "name", "forward", "vjp", "vjp_parts", "n_inputs", "param_names", "differentiable",
        "domain", "twice_differentiable", "check", "builtin", "doc", "__weakref__",
    )

    def __init__(self, name, forward, vjp, *, domain, n_inputs, param_names, differentiable,
                 twice_differentiable, check, builtin, doc):
        self.name = name
        self.forward = forward
        if isinstance(vjp, (tuple, list)):
            self.vjp, self.vjp_parts = None, tuple(vjp)
        else:
            self.vjp, self.vjp_parts = vjp, None
        self.domain = domain
        self.n_inputs = n_inputs
        self.param_names = param_names
        self.differentiable = differentiable
        self.twice_differentiable = twice_differentiable
        self.check = check
        self.builtin = builtin
        self.doc = doc

    def __call__(self, *args, **params):
        n = self.n_inputs
        if len(args) == n:  # the common case: arrays positionally, params by keyword
            return apply(self, args, params)
        if n is None:  # takes a sequence of arrays first: concatenate([a, b], axis=0)
            first = args[0] if args else None
            if isinstance(first, (np.ndarray, str)) or not hasattr(first, "__len__"):
                raise TypeError(f"{self.name}: expected a sequence of arrays as first argument")
            arrays, rest = tuple(args[0]), args[1:]
        else:
            if len(args) < n:
                raise TypeError(
                    f"{self.name}: expected {n} array argument{'s' if n > 1 else ''}, "
                    f"got {len(args)}"
                )
            arrays, rest = args[:n], args[n:]
        if rest:
            if len(rest) > len(self.param_names):
                raise TypeError(f"{self.name}: too many positional arguments ({len(args)})")
            for pname, value in zip(self.param_names, rest):
                if pname in params:
                    raise TypeError(f"{self.name}: got multiple values for '{pname}'")
                params[pname] = value
        return apply(self, arrays, params)

    def run_vjp(self, g, out, args: tuple, params: Mapping, needs: tuple) -> Sequence:
        """Cotangents for the inputs flagged in ``needs`` (others may be ``None``)."""
        if self.vjp_parts is not None:
            return [
                part(g, out, *args, **params) if need else None
                for part, need in zip(self.vjp_parts, needs)
            ]
        return self.vjp(g, out, *args, **params)

    def __repr__(self) -> str:
        return f"<fungrad op '{self.name}'>"


def apply(op: Op, args: tuple, params: Mapping) -> Any:
    """Run ``op`` on ``args`` and record a tape node if a Tensor argument requires grad.

    Any Tensor argument gives a Tensor result; only ndarrays and numbers give an ndarray and
    record nothing (that is what lets VJPs run fast in plain backward).
    """
    hook = _state.hook
    if hook is not None:  # fg.jit traces this thread: untraced Tensors become program inputs
        hook.prepare(args)
    Tensor = _Tensor
    datas = []
    versions = []  # per argument: the Tensor's data version, None for plain values
    any_tensor = record = False
    for a in args:
        if isinstance(a, Tensor):
            any_tensor = True
            datas.append(a._data)
            versions.append(a._version)
            if a.requires_grad:
                record = True
        else:
            datas.append(a)
            versions.append(None)
    try:
        if hook is None:
            out = op.forward(*datas, **params) if params else op.forward(*datas)
        else:  # fg.jit: run the forward on traced arrays and record it in the program
            out = hook.forward(op, datas, params)
    except FungradError:
        raise
    except Exception as e:  # NumPy/Numba failures become errors that name the op
        raise _explain(op, e, datas, params) from e
    if not any_tensor:
        return out
    if type(out) is not np.ndarray and hook is None:
        out = np.asarray(out)
    st = _state
    if st.anomaly and hook is None:
        tape.check_finite(op.name, out, "forward")
    if record and st.enabled:
        diff = op.differentiable
        needs = tuple([
            v is not None and a.requires_grad and (diff is None or diff[i])
            for i, (a, v) in enumerate(zip(args, versions))
        ])
        if True in needs:
            needs = _NEEDS.setdefault(needs, needs)  # a handful of patterns, shared by all nodes
            versions = tuple(versions)
            if not any(versions):  # all inputs unmodified so far: share one tuple per pattern
                versions = _VERSIONS.setdefault(versions, versions)
            # tuples of arrays and ints drop out of the cyclic GC after its first pass; lists do not
            return Tensor._make(out, Node(op, args, tuple(datas), params, out, needs, versions))
    return Tensor._make(out, None)


def _explain(op: Op, e: Exception, datas: list, params: Mapping) -> Exception:
    """Turn a NumPy/Numba error into a fungrad error naming the op, the shapes and dtypes."""
    if op.check is not None:
        try:
            specific = op.check(*datas, **params)
        except Exception:  # a checker must never hide the original error
            specific = None
        if specific is not None:
            return specific
    shapes = " and ".join(str(tuple(np.shape(d))) for d in datas)
    dtypes = " and ".join(str(np.asarray(d).dtype) for d in datas)
    extra = f", {', '.join(f'{k}={v!r}' for k, v in params.items())}" if params else ""
    text = str(e)
    if text.startswith(f"{op.name}: "):  # a kernel or helper already named the op
        text = text[len(op.name) + 2:]
    msg = f"{op.name}: {text} (got shapes {shapes}, dtypes {dtypes}{extra})"
    if isinstance(e, FloatingPointError):  # the user asked for np.seterr(all="raise")
        return AnomalyError(msg)
    if isinstance(e, IndexError):
        return IndexRangeError(msg)
    if isinstance(e, TypeError):
        return DTypeError(msg)
    return ShapeError(msg)


def defop(
    name: str,
    forward: Callable,
    vjp: Callable | Sequence[Callable],
    domain: Domain | None = None,
    *,
    nondiff: Sequence[int] = (),
    twice_differentiable: bool = True,
    check: Callable | None = None,
    replace: bool = False,
    doc: str | None = None,
) -> Op:
    """Register an op and return it; the op then works wherever a built-in op does.

    ``forward(*arrays, **params)`` runs on ndarrays: its parameters without defaults are the
    array inputs, those with defaults are static parameters (``axis=None``); a ``*arrays``
    parameter makes an op that takes a sequence (like ``concatenate``). ``vjp(g, out, *arrays,
    **params)`` returns one cotangent per array input (``None`` where not differentiable), or
    pass a tuple of per-input functions so that unneeded cotangents are never computed. Write
    VJPs with operators and ``fg.*`` functions: they then run on ndarrays in plain backward and
    on Tensors (recorded, so differentiable again) under ``create_graph`` and nested ``grad``.

    ``domain`` says where test inputs may be drawn from (default: moderate reals, see
    :mod:`fungrad.domains`); ``nondiff`` lists input positions never differentiated (indices,
    labels); ``check(*arrays, **params)`` may return an exception with a precise message when
    the forward fails.

    >>> import numpy as np, fungrad as fg
    >>> square = fg.defop("square_doc", lambda x: x * x, lambda g, out, x: (2 * g * x,))
    >>> fg.grad(fg.grad(lambda x: square(x)))(3.0)
    array(2.)
    """
    if not replace and name in _REGISTRY:
        raise ValueError(f"defop: an op named '{name}' is already registered (pass replace=True)")
    n_inputs, param_names = _signature(name, forward)
    if isinstance(vjp, (tuple, list)) and n_inputs is not None and len(vjp) != n_inputs:
        raise ValueError(f"defop '{name}': {len(vjp)} VJP functions for {n_inputs} inputs")
    if domain is None:
        domain = default_domain(n_inputs if n_inputs is not None else 2)
    differentiable = None
    if n_inputs is not None:
        differentiable = tuple(i not in set(nondiff) for i in range(n_inputs))
    op = Op(
        name, forward, vjp, domain=domain, n_inputs=n_inputs, param_names=param_names,
        differentiable=differentiable, twice_differentiable=twice_differentiable, check=check,
        builtin=forward.__module__.startswith("fungrad.") if hasattr(forward, "__module__")
        and forward.__module__ else False,
        doc=doc or getattr(forward, "__doc__", None),
    )
    _REGISTRY[name] = op
    return op


def _signature(name: str, forward: Callable) -> tuple[int | None, tuple[str, ...]]:
    try:
        sig = inspect.signature(forward)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"defop '{name}': cannot read the signature of {forward!r}; wrap it in a def or lambda"
        ) from e
    n_inputs: int | None = 0
    param_names = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            n_inputs = None
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            if n_inputs is None:
                raise TypeError(f"defop '{name}': array inputs must come before *arrays")
            n_inputs += 1
        elif p.kind is not p.VAR_KEYWORD:
            param_names.append(p.name)
    return n_inputs, tuple(param_names)


def ops() -> Mapping[str, Op]:
    """The registry, read-only: every registered op by name.

    >>> import fungrad as fg
    >>> "matmul" in fg.ops() and fg.ops()["matmul"].n_inputs
    2
    """
    return types.MappingProxyType(_REGISTRY)


def lookup(op: "Op | str") -> Op:
    """The op itself, given an Op or its registered name."""
    if isinstance(op, Op):
        return op
    try:
        return _REGISTRY[op]
    except KeyError:
        raise KeyError(f"no op named '{op}' is registered (see fungrad.ops())") from None


def unwrap(x: Any) -> Any:
    """The ndarray inside a Tensor; anything else unchanged."""
    return x.data if isinstance(x, _Tensor) else x


def _bind_tensor(cls) -> None:
    global _Tensor
    _Tensor = cls
