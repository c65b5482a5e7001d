"""The op registry: one :class:`Op` record per primitive, and :func:`apply`, which runs it.

An op is a pure forward on ndarrays (plus static keyword parameters such as ``axis``), a pure
VJP ``vjp(g, out, *inputs, **params) -> tuple`` (one cotangent per input, ``None`` where not
differentiable), and the metadata its tests need (a :class:`~fungrad.domains.Domain`). Tensor
methods, the ``fg.*`` functions, NumPy's protocols and the generated tests all read from this
one registry.

An op may have several outputs (``n_outputs=k``): its forward returns a tuple of ``k`` arrays,
calling it returns a tuple, and its VJP receives the tuple of output cotangents (``None`` for an
output that received none) and the tuple of outputs.

>>> import numpy as np, fungrad as fg
>>> cube = fg.defop("cube_doc", lambda x: x ** 3, lambda g, out, x: (g * 3 * x * x,))
>>> fg.grad(lambda x: cube(x).sum())(np.array([1.0, 2.0]))
array([ 3., 12.])
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np

from . import recording
from .domains import Domain, default_domain
from ._keywords import keepdims_of, unknown_keyword
from .errors import AnomalyError, DTypeError, FungradError, IndexRangeError, ShapeError
from .tree import tree_map

__all__ = ["Op", "defop", "ops", "apply", "lookup", "unwrap", "unwrap_tree", "implements",
           "numpy_impl", "is_complex"]

_F = TypeVar("_F", bound=Callable[..., Any])
_REGISTRY: dict[str, "Op"] = {}
_Tensor: Any = None  # bound by fungrad.tensor at import (the registry sits below Tensor)
_state = recording.thread
_NEEDS: dict = {}  # interned needs patterns: (True,), (True, False)...
_VERSIONS: dict = {}  # interned all-unmodified version patterns: (0,), (0, None)...
_SEQUENCES = (list, tuple)

_CALL_NOTE = """
Takes ndarrays, Tensors or Python numbers. Any Tensor argument gives a Tensor result (recorded
for differentiation when an argument requires grad); ndarrays and numbers give an ndarray."""


class _OpDoc:
    """``Op.__doc__``: the class's docstring on the class, each op's own on an op."""

    def __init__(self, class_doc: str) -> None:
        self.class_doc = class_doc

    def __get__(self, op: "Op | None", owner: type | None = None) -> str:
        return self.class_doc if op is None else op._doc


class Op:
    __doc__ = _OpDoc("""A registered primitive. Call it like the NumPy function it mirrors.

    ``help(op)`` and ``inspect.signature(op)`` show the op's own signature and docstring.
    Attributes: ``name``, ``forward``, ``vjp`` (or ``vjp_parts``, one function per input),
    ``n_inputs`` (``None`` for ops taking a sequence, like ``concatenate``), ``n_outputs``
    (``None`` when the forward decides how many, like ``split``),
    ``param_names``, ``differentiable`` (per input), ``domain`` (test metadata),
    ``twice_differentiable``, ``batch`` (the batching rule ``fg.vmap`` applies, or None),
    ``reference`` (the op composed from ops, whose derivative is the VJP, or None).

    >>> import fungrad as fg
    >>> op = fg.ops()["sum"]
    >>> op.name, op.n_inputs, op.param_names
    ('sum', 1, ('axis', 'keepdims'))
    """)

    __slots__ = (
        "name", "forward", "vjp", "vjp_parts", "n_inputs", "n_outputs", "param_names",
        "differentiable", "domain", "twice_differentiable", "check", "builtin", "_doc",
        "_signature", "pass_needs", "_accepts", "batch", "reference", "__weakref__",
    )

    def __init__(self, name, forward, vjp, *, domain, n_inputs, param_names, differentiable,
                 twice_differentiable, check, builtin, doc, n_outputs=1, pass_needs=False,
                 batch=None, reference=None):
        self.name = name
        self.forward = forward
        self.reference = reference
        if vjp is None:  # the engine differentiates the reference
            self.vjp, self.vjp_parts = _reference_vjp(self), None
        elif isinstance(vjp, (tuple, list)):
            self.vjp, self.vjp_parts = None, tuple(vjp)
        else:
            self.vjp, self.vjp_parts = vjp, None
        self.domain = domain
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.param_names = param_names
        self.differentiable = differentiable
        self.twice_differentiable = twice_differentiable
        self.check = check
        self.builtin = builtin
        self.pass_needs = pass_needs
        self.batch = batch
        self._signature = _present_signature(forward)
        # the keywords a call may pass (None: the forward takes **params, so any)
        self._accepts = None if any(p.kind is p.VAR_KEYWORD for p in
                                    self._signature.parameters.values()) \
            else frozenset(param_names)
        self._doc = _present_doc(name, self._signature, doc, builtin)

    # -- what help(), inspect and IDEs see: the op's own name, signature and docstring --------

    @property
    def __name__(self) -> str:
        return self.name

    @property
    def __signature__(self) -> inspect.Signature:
        return self._signature

    def __get__(self, obj: Any, owner: type | None = None) -> "Op":
        # an op stored on a class stays a plain function (no binding); defining __get__ also
        # makes inspect.isroutine(op) true, so help(op) documents it as a function
        return self

    @property
    def doc(self) -> str:
        """The op's docstring (as ``op.__doc__``)."""
        return self._doc

    # -- calling ---------------------------------------------------------------------------------

    def __call__(self, *args, **params):
        n = self.n_inputs
        if params and self._accepts is not None and not params.keys() <= self._accepts:
            params = self._aliased(params)
        if len(args) == n:  # the common case: arrays positionally, params by keyword
            return apply(self, args, params)
        if n is None:  # takes a sequence of arrays first: concatenate([a, b], axis=0)
            first = args[0] if args else None
            if not isinstance(first, _SEQUENCES):
                raise TypeError(f"{self.name}: expected a list or tuple of arrays as the first "
                                f"argument, got {type(first).__name__}")
            arrays, rest = tuple(first), args[1:]
        else:
            if len(args) < n:
                raise TypeError(
                    f"{self.name}: expected {n} array argument{'s' if n > 1 else ''} "
                    f"{self._signature}, got {len(args)}"
                )
            arrays, rest = args[:n], args[n:]
        if rest:
            if len(rest) > len(self.param_names):
                raise TypeError(f"{self.name}: too many positional arguments ({len(args)}) "
                                f"for {self.name}{self._signature}")
            for pname, value in zip(self.param_names, rest):
                if pname in params:
                    raise TypeError(f"{self.name}: got multiple values for '{pname}'")
                params[pname] = value
        return apply(self, arrays, params)

    def _aliased(self, params: dict) -> dict:
        """``params`` with PyTorch's ``keepdim`` read as ``keepdims``; any other unknown
        keyword raises, suggesting the one probably meant."""
        if "keepdim" in params and "keepdims" in self.param_names:
            params = dict(params)
            params["keepdims"] = keepdims_of(params.get("keepdims", False),
                                             params.pop("keepdim"), self.name)
            if params.keys() <= self._accepts:
                return params
        raise self._unknown_params(params)

    def _unknown_params(self, params: Mapping) -> TypeError:
        unknown = set(params) - set(self.param_names)
        return unknown_keyword(self.name, unknown, self.param_names, str(self._signature))

    def run_vjp(self, g: Any, out: Any, args: tuple, params: Mapping, needs: tuple) -> Sequence:
        """Cotangents for the inputs flagged in ``needs`` (others may be ``None``).

        >>> import numpy as np, fungrad as fg
        >>> fg.ops()["multiply"].run_vjp(np.ones(2), None, (np.array([2.0, 3.0]), 4.0), {},
        ...                               (True, False))
        [array([4., 4.]), None]
        """
        parts = self.vjp_parts
        if parts is not None:
            if len(parts) == 2:  # most binary ops: no comprehension for two calls
                return [parts[0](g, out, *args, **params) if needs[0] else None,
                        parts[1](g, out, *args, **params) if needs[1] else None]
            return [part(g, out, *args, **params) if need else None
                    for part, need in zip(parts, needs)]
        if self.pass_needs:
            return self.vjp(g, out, *args, needs=needs, **params)
        return self.vjp(g, out, *args, **params)

    def __repr__(self) -> str:
        return f"<fungrad op '{self.name}'>"


def _present_signature(forward: Callable) -> inspect.Signature:
    """The call signature users see: array inputs positional-only, then the static params.

    An op taking ``*arrays`` (concatenate) is called with one sequence, shown as ``arrays``.
    """
    P = inspect.Parameter
    try:
        sig = inspect.signature(forward)
    except (TypeError, ValueError):
        return inspect.Signature([P("args", P.VAR_POSITIONAL), P("params", P.VAR_KEYWORD)])
    shown = []
    for p in sig.parameters.values():
        if p.kind is P.VAR_POSITIONAL:
            shown.append(P("arrays", P.POSITIONAL_ONLY))
        elif p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD) and p.default is P.empty:
            shown.append(p.replace(kind=P.POSITIONAL_ONLY))
        else:
            shown.append(p)
    return sig.replace(parameters=shown, return_annotation=inspect.Signature.empty)


def _present_doc(name: str, sig: inspect.Signature, doc: str | None, builtin: bool) -> str:
    text = inspect.cleandoc(doc) if doc else (
        f"The op '{name}'" + ("." if builtin else " (registered with fungrad.defop)."))
    return text + "\n" + _CALL_NOTE


# One long function on purpose: it runs for every op call, with the one- and two-argument cases
# unrolled (what each op costs the engine is most of a small model's step; benchmarks/OVERHEAD.md).
def apply(op: Op, args: tuple, params: Mapping) -> Any:
    """Run ``op`` on ``args`` and record it on the output if a Tensor argument requires grad.

    Any Tensor argument gives a Tensor result; only ndarrays and numbers give an ndarray and
    record nothing (that is what lets VJPs run fast in plain backward). Lists and tuples among
    the arguments are normalised once, before anything is recorded: Tensors inside them are
    stacked (differentiably), other values become ndarrays.
    """
    # One function on purpose (tests/test_function_length.py): every op call runs it, and a
    # helper would be a Python frame per call (the unary and binary cases are unrolled for the
    # same reason).
    st = _state
    vm = st.vmap
    if vm is not None:  # fg.vmap runs on this thread: batched arguments take the op's rule
        out = vm.apply(op, args, params)
        if out is not NotImplemented:
            return out
    hook = st.hook
    if hook is not None:  # fg.jit traces this thread: untraced Tensors become program inputs
        hook.prepare(args)
    Tensor = _Tensor
    datas: Any  # per argument, a tuple (one or two arguments) or a list (other counts)
    versions: Any
    needs: Any
    if len(args) == 2:  # the common binary case, unrolled: this runs for every op call
        x, y = args
        if isinstance(x, Tensor):
            dx, vx, nx = x._data, x._version, x.requires_grad
        elif type(x) in _SEQUENCES:
            return apply(op, _normalized(op, args), params)
        else:
            dx, vx, nx = x, None, False
        if isinstance(y, Tensor):
            dy, vy, ny = y._data, y._version, y.requires_grad
        elif type(y) in _SEQUENCES:
            return apply(op, _normalized(op, args), params)
        else:
            dy, vy, ny = y, None, False
        datas = (dx, dy)
        versions = (vx, vy)  # per argument: the Tensor's data version, None for plain values
        needs = (nx, ny)  # per argument: does a gradient have to flow into it?
        any_tensor = vx is not None or vy is not None
        record = nx or ny
    elif len(args) == 1:  # and the unary one (tanh, x[i], sum...)
        x, = args
        if isinstance(x, Tensor):
            dx, vx, record = x._data, x._version, x.requires_grad
        elif type(x) in _SEQUENCES:
            return apply(op, _normalized(op, args), params)
        else:
            dx, vx, record = x, None, False
        datas, versions, needs = (dx,), (vx,), (record,)
        any_tensor = vx is not None
    else:
        datas, versions, needs = [], [], []
        any_tensor = record = False
        for a in args:
            if isinstance(a, Tensor):
                any_tensor = True
                datas.append(a._data)
                versions.append(a._version)
                r = a.requires_grad
                needs.append(r)
                record = record or r
            elif type(a) in _SEQUENCES:
                return apply(op, _normalized(op, args), params)
            else:
                datas.append(a)
                versions.append(None)
                needs.append(False)
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
    if op.n_outputs != 1:  # several outputs (None: as many as the forward returns)
        return _apply_multi(op, args, params, out, versions, needs, record)
    if type(out) is not np.ndarray and hook is None:
        out = np.asarray(out)
    kind = out.dtype.kind
    if kind not in "biuf" and (kind != "c" or op.domain.complex is None):
        raise _unsupported_output(op, out, datas)
    if st.anomaly and hook is None:
        recording.check_finite(op.name, out, "forward")
    if record and kind in "biu" and _only_floats_need(datas, needs):
        record = False  # floats to integers (a cast, a floor then a cast): piecewise constant,
        # so nothing to record and, as in PyTorch, an integer result that needs no gradient
        # (it converts to an ndarray freely, e.g. to index another array)
    if record:
        if not st.enabled:
            return Tensor._made_without_grad(out)
        needs = _interned_needs(op, needs)
        if needs is not None:
            return Tensor._record(out, op, args, params, needs, _interned(versions))
    elif _made_without_grad(args, Tensor):
        return Tensor._made_without_grad(out)  # so backward() can name no_grad() as the cause
    return Tensor._make(out, None)


def _only_floats_need(datas, needs) -> bool:
    """Whether every input that needs a gradient is floating point (an integer leaf made with
    ``autograd=True``, as in the book, keeps recording through integer ops)."""
    return all(np.dtype(d.dtype).kind in "fc" for d, n in zip(datas, needs) if n)


def _made_without_grad(args: tuple, Tensor) -> bool:
    for a in args:
        if isinstance(a, Tensor) and a._seq == -1:
            return True
    return False


def _interned_needs(op: Op, needs) -> tuple | None:
    """``needs`` masked by the op's non-differentiable inputs, as one shared tuple; ``None``
    when no input needs a gradient."""
    key = (op.differentiable, needs if type(needs) is tuple else tuple(needs))
    shared = _NEEDS.get(key)
    if shared is None:
        diff, raw = key
        masked = raw if diff is None else tuple(n and d for n, d in zip(raw, diff))
        shared = _NEEDS.setdefault(key, masked if True in masked else ())
    return shared or None


def _interned(versions) -> tuple:
    """``versions`` as a tuple, shared with every node whose inputs are all unmodified."""
    versions = versions if type(versions) is tuple else tuple(versions)
    shared = _VERSIONS.get(versions)
    if shared is not None:
        return shared
    if not any(versions):
        _VERSIONS[versions] = versions
    return versions


def _apply_multi(op: Op, args: tuple, params: Mapping, out, versions: list, needs: list,
                 record: bool):
    Tensor = _Tensor
    n = op.n_outputs
    if not isinstance(out, tuple) or (len(out) != n if n is not None else not out):
        count = f"{n} arrays" if n is not None else "one or more arrays"
        raise TypeError(f"{op.name}: its forward must return a tuple of {count} "
                        f"(n_outputs={n}), got {type(out).__name__}"
                        + (f" of {len(out)}" if isinstance(out, tuple) else ""))
    traced = _state.hook is not None  # fg.jit: outputs are traced arrays
    outs = tuple(o if traced else np.asarray(o) for o in out)
    for o in outs:
        if o.dtype.kind not in "biuf" and (o.dtype.kind != "c" or op.domain.complex is None):
            raise _unsupported_output(op, o, args)
        if _state.anomaly and not traced:
            recording.check_finite(op.name, o, "forward")
    if record:
        if not _state.enabled:
            return tuple(Tensor._made_without_grad(o) for o in outs)
        interned = _interned_needs(op, needs)
        if interned is not None:
            return Tensor._record_multi(outs, op, args, params, interned, _interned(versions))
    return tuple(Tensor._make(o, None) for o in outs)


def _unsupported_output(op: Op, out: np.ndarray, args=()) -> Exception:
    if out.dtype.kind == "c":
        return _refuses_complex(op, _dtypes(args) or str(out.dtype))
    return DTypeError(f"{op.name}: produced an array of dtype {out.dtype}; Tensors hold "
                      "numbers (bool, integer, floating point or complex)")


def _dtypes(args) -> str:
    return " and ".join(_describe(getattr(a, "_data", a), "dtype") for a in args)


def _refuses_complex(op: Op, dtypes: str) -> Exception:
    """The error of an op that has no complex meaning (maximum, floor...) given complex input."""
    if op.builtin:
        fix = ("it has no complex meaning (an ordering, a rounding, a real-only function); "
               "apply it to fg.real(z), fg.imag(z) or fg.abs(z) as meant")
    else:
        fix = ("its domain does not declare complex inputs; if its VJP follows fungrad's "
               "complex convention (see the README), register it with "
               "domain=Domain(..., complex=True)")
    return DTypeError(f"{op.name}: does not accept complex input (got dtypes {dtypes}): {fix}")


def _normalized(op: Op, args: tuple) -> tuple:
    """``args`` with each list or tuple turned into one array (Tensors in it stacked)."""
    return tuple(_from_sequence(op, a) if type(a) in _SEQUENCES else a for a in args)


def _from_sequence(op: Op, seq):
    Tensor = _Tensor
    if not _holds_tensor(seq, Tensor):
        try:
            arr = np.asarray(seq)
        except ValueError as e:  # ragged nesting
            raise ShapeError(f"{op.name}: a nested list argument is ragged ({e}); give "
                             "lists of equal lengths or an ndarray") from None
        if arr.dtype.kind not in "biufc":
            raise DTypeError(f"{op.name}: a list argument holds {arr.dtype} values; expected "
                             "numbers")
        return arr
    items = [_from_sequence(op, x) if type(x) in _SEQUENCES else x for x in seq]
    try:
        return _REGISTRY["stack"](items, axis=0)
    except FungradError as e:
        raise ShapeError(f"{op.name}: a list argument holds Tensors that cannot be stacked "
                         f"into one array: {e}") from e


def _holds_tensor(seq, Tensor) -> bool:
    for x in seq:
        if isinstance(x, Tensor) or (type(x) in _SEQUENCES and _holds_tensor(x, Tensor)):
            return True
    return False


def _explain(op: Op, e: Exception, datas: list, params: Mapping) -> Exception:
    """Turn a NumPy/Numba error into a fungrad error naming the op, the shapes and dtypes."""
    if op.domain.complex is None and any(is_complex(d) for d in datas):
        return _refuses_complex(op, _dtypes(datas))
    if op.check is not None:
        try:
            specific = op.check(*datas, **params)
        except Exception:  # a checker must never hide the original error
            specific = None
        if specific is not None:
            return specific
    shapes = " and ".join(_describe(d, "shape") for d in datas)
    dtypes = " and ".join(_describe(d, "dtype") for d in datas)
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


def is_complex(x: Any) -> bool:
    """Whether ``x`` (an ndarray, Tensor, number or traced array) holds complex values; VJPs
    branch on it, so that real programs run exactly the code they ran before.

    >>> import numpy as np
    >>> from fungrad.registry import is_complex
    >>> is_complex(np.ones(2)), is_complex(1j)
    (False, True)
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return isinstance(x, complex)
    return np.dtype(dtype).kind == "c"


def _describe(value, what: str) -> str:
    """A value's shape or dtype for a message; never raises (ragged lists, odd objects)."""
    if isinstance(value, np.ndarray):
        return str(value.shape if what == "shape" else value.dtype)
    if isinstance(value, (int, float, bool, np.generic)):
        return "()" if what == "shape" else str(np.asarray(value).dtype)
    return type(value).__name__


# Long for its docstring: defop is the extension API, and its rules are written where users read.
def defop(
    name: str,
    forward: Callable,
    vjp: Callable | Sequence[Callable | None] | None,
    domain: Domain | None = None,
    *,
    reference: Callable | None = None,
    nondiff: Sequence[int] = (),
    twice_differentiable: bool = True,
    check: Callable | None = None,
    replace: bool = False,
    doc: str | None = None,
    n_outputs: int | None = 1,
    pass_needs: bool = False,
    batch: Callable | None = None,
) -> Op:
    """Register an op and return it; the op then works wherever a built-in op does.

    ``forward(*arrays, **params)`` runs on ndarrays: its parameters without defaults are the
    array inputs, those with defaults are static parameters (``axis=None``); a ``*arrays``
    parameter makes an op that takes a sequence (like ``concatenate``). ``vjp(g, out, *arrays,
    **params)`` returns one cotangent per array input (``None`` where not differentiable), or
    pass a tuple of per-input functions so that unneeded cotangents are never computed. Write
    VJPs with operators and ``fg.*`` functions: they then run on ndarrays in plain backward and
    on Tensors (recorded, so differentiable again) under ``create_graph`` and nested ``grad``.
    fungrad checks what a user's VJP returns (how many cotangents, their types and shapes) and
    raises naming the op if it breaks these rules.

    ``reference(*arrays, **params)``, the same function composed from registered ops, may
    stand in for the VJP (pass ``vjp=None``): the engine then differentiates the reference at
    the op's inputs, so a fused op (a kernel, for speed) gets its derivatives, of any order,
    from its plain definition, and no op module needs the functional transformations.

    With ``n_outputs=k`` the forward returns a tuple of ``k`` arrays, the op returns a tuple,
    and the VJP's ``g`` and ``out`` are tuples (``g[i]`` is ``None`` if output ``i`` received no
    cotangent); ``n_outputs=None`` lets the forward return as many as it makes (``split``).
    With ``pass_needs=True`` the VJP also receives ``needs=`` (one bool per input: whether its
    cotangent is wanted), so that an op taking a sequence can skip the constant inputs.

    ``domain`` says where test inputs may be drawn from (default: moderate reals, see
    :mod:`fungrad.domains`) and whether the op accepts complex inputs (``complex=True``; by
    default it refuses them, naming the op); ``nondiff`` lists input positions never
    differentiated (indices, labels); ``check(*arrays, **params)`` may return an exception
    with a precise message when the forward fails; ``doc`` is the docstring ``help()`` shows
    (default: the forward's).

    ``batch(op, args, dims, **params) -> (out, out_dims)`` is the op's batching rule for
    :func:`fungrad.vmap`: ``dims[i]`` is the axis of ``args[i]`` that holds the batch (None if
    that argument is the same for every example), and the rule returns the batched result and
    the axis of it that holds the batch (one per output for several outputs), or
    ``NotImplemented`` to have ``fg.vmap`` run the op once per example for these axes. Write
    it with ops (``fungrad.batching`` has rules for whole families: ``elementwise``,
    ``reduction``...) so that what it computes stays differentiable. Without one, ``fg.vmap`` runs the op once
    per example in a loop, with one warning naming the op.

    >>> import numpy as np, fungrad as fg
    >>> square = fg.defop("square_doc", lambda x: x * x, lambda g, out, x: (2 * g * x,),
    ...                   doc="x * x, elementwise.")
    >>> fg.grad(fg.grad(lambda x: square(x)))(3.0)
    array(2.)
    >>> import inspect; inspect.signature(square)
    <Signature (x, /)>
    """
    if not replace and name in _REGISTRY:
        raise ValueError(f"defop: an op named '{name}' is already registered (pass replace=True)")
    if not callable(forward):
        raise TypeError(f"defop '{name}': forward must be callable, got {type(forward).__name__}")
    if vjp is None and not callable(reference):
        raise TypeError(f"defop '{name}': give a vjp, or a reference (the op composed from "
                        "registered ops) whose derivative the engine takes")
    if not (vjp is None or callable(vjp) or isinstance(vjp, (tuple, list))):
        raise TypeError(f"defop '{name}': vjp must be a function or a tuple of functions (one "
                        f"per input), got {type(vjp).__name__}")
    if n_outputs is not None and (not isinstance(n_outputs, int) or n_outputs < 1):
        raise ValueError(f"defop '{name}': n_outputs must be a positive int or None, got "
                         f"{n_outputs!r}")
    n_inputs, param_names = _signature(name, forward)
    if isinstance(vjp, (tuple, list)) and n_inputs is not None and len(vjp) != n_inputs:
        raise ValueError(f"defop '{name}': {len(vjp)} VJP functions for {n_inputs} inputs")
    if domain is None:
        domain = default_domain(n_inputs if n_inputs is not None else 2)
    differentiable = None
    if n_inputs is not None:
        differentiable = tuple(i not in set(nondiff) for i in range(n_inputs))
    module = getattr(forward, "__module__", None) or ""
    op = Op(
        name, forward, vjp, domain=domain, n_inputs=n_inputs, param_names=param_names,
        differentiable=differentiable, twice_differentiable=twice_differentiable, check=check,
        builtin=module.startswith("fungrad."), doc=doc or getattr(forward, "__doc__", None),
        n_outputs=n_outputs, pass_needs=pass_needs, batch=batch, reference=reference,
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
    """The op itself, given an Op or its registered name.

    >>> from fungrad.registry import lookup
    >>> lookup("tanh").name
    'tanh'
    """
    if isinstance(op, Op):
        return op
    try:
        return _REGISTRY[op]
    except KeyError:
        raise KeyError(f"no op named '{op}' is registered (see fungrad.primitives())") from None


def unwrap(x: Any) -> Any:
    """The ndarray inside a Tensor; anything else unchanged. While fg.jit traces, a Tensor's
    ``.data`` (a Tensor the function closes over becomes a program input, read at every call:
    its values now would be frozen into the program)."""
    if isinstance(x, _Tensor):
        return x._data if _state.hook is None else x.data
    return x


def unwrap_tree(value: Any) -> Any:
    """``value`` with every Tensor in it (also inside lists, tuples and dicts) replaced by its
    data: the constants a computation on ``t.data`` sees.

    >>> import fungrad as fg
    >>> from fungrad.registry import unwrap_tree
    >>> unwrap_tree({"a": [fg.Tensor([1.0]), 2.0]})
    {'a': [array([1.]), 2.0]}
    """
    return tree_map(unwrap, value)


def _bind_tensor(cls) -> None:
    global _Tensor
    _Tensor = cls


# Differentiating a function of Tensors is the engine's (fungrad.backprop, above the ops):
# it binds its implementation here at import, as fungrad.tensor binds the Tensor class.
_differentiate: Any = None


def _bind_differentiate(fn: Callable) -> None:
    global _differentiate
    _differentiate = fn


def _reference_vjp(op: "Op") -> Callable:
    """The VJP of ``op`` taken from its reference by the engine."""
    def vjp(g, out, *args, **params):
        return _differentiate(op.reference, g, args, params, op.n_outputs)
    vjp.__name__ = vjp.__qualname__ = f"{op.name}_reference_vjp"
    return vjp


# -- NumPy's protocols: which fungrad function implements a NumPy function or ufunc ------------

_NUMPY_IMPLS: dict = {}


def implements(*numpy_callables: Callable,
               method: str = "__call__") -> Callable[[_F], _F]:
    """Register the decorated function as fungrad's version of NumPy functions or ufuncs.

    ``Tensor.__array_function__`` and ``Tensor.__array_ufunc__`` look implementations up here,
    so that ``np.tanh(t)`` or ``np.linalg.norm(t)`` on a Tensor runs the differentiable version.
    For ufuncs, ``method`` names the ufunc method (``"reduce"``, ``"accumulate"``, ``"outer"``);
    the implementation then receives the method's arguments (``np.add.reduce(t, axis=0)`` calls
    it as ``impl(t, axis=0)``). :mod:`fungrad.numpy` fills this table.

    >>> import numpy as np
    >>> from fungrad.registry import implements, numpy_impl
    >>> numpy_impl(np.tanh).__name__
    'tanh'
    """
    def register(fn: _F) -> _F:
        for f in numpy_callables:
            _NUMPY_IMPLS[(f, method) if isinstance(f, np.ufunc) else f] = fn
        return fn
    return register


def numpy_impl(numpy_callable: Callable, method: str = "__call__") -> Callable | None:
    """fungrad's implementation of a NumPy function or ufunc method, or ``None``."""
    key = (numpy_callable, method) if isinstance(numpy_callable, np.ufunc) else numpy_callable
    return _NUMPY_IMPLS.get(key)


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_ufunc__``: ``np.tanh(t)`` runs fungrad's implementation of the ufunc
    (method); a ufunc without one runs on the data, refused if it would drop a gradient."""
    name = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    if kwargs.get("out") is not None:
        if _tracked(inputs) or _holds_tensor(kwargs["out"], _Tensor):
            raise DTypeError(
                f"{name}: out= is not supported with Tensors (NumPy cannot write a "
                f"Tensor's result in place); assign the result instead: y = {name}(...)")
        return getattr(ufunc, method)(*unwrap_tree(inputs), **kwargs)
    impl = numpy_impl(ufunc, method)
    if impl is not None:
        return impl(*inputs, **kwargs)
    if _tracked(inputs):
        raise TypeError(_no_impl_message(name))
    return getattr(ufunc, method)(*unwrap_tree(inputs), **unwrap_tree(kwargs))


def array_function(func: Callable, types: tuple, args: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_function__``: ``np.linalg.norm(t)`` runs fungrad's implementation; a
    function without one runs on the data, refused if it would drop a gradient."""
    if not all(issubclass(t, (_Tensor, np.ndarray)) for t in types):
        return NotImplemented
    impl = numpy_impl(func)
    if impl is not None:
        return impl(*args, **kwargs)
    name = f"{getattr(func, '__module__', 'numpy')}.{getattr(func, '__name__', func)}"
    if _tracked(args) or _tracked(tuple(kwargs.values())):
        raise TypeError(_no_impl_message(name))
    return func(*unwrap_tree(args), **unwrap_tree(kwargs))


def _tracked(values: tuple) -> bool:
    """Whether a Tensor that requires grad is among ``values`` (searched through lists)."""
    if not _state.enabled:
        return False
    for v in values:
        if isinstance(v, _Tensor):
            if v.requires_grad:
                return True
        elif isinstance(v, (list, tuple)) and _tracked(tuple(v)):
            return True
    return False


def _no_impl_message(name: str) -> str:
    return (f"{name} has no differentiable fungrad implementation, and it was called on a "
            "Tensor that requires grad, whose gradient it would silently drop. Use a fungrad "
            "function (fg.X or fungrad.numpy.X), register the function with fg.defop, or pass "
            "t.detach() / t.data if a constant is meant.")
