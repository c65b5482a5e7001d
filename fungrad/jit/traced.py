"""TracedArray: what an ndarray is while ``fg.jit`` traces a function.

A traced array knows its shape and dtype (so ``x.shape``, ``np.ones_like(x)`` and
``Tensor(np.ones_like(loss.data))`` work) and records everything done to its values as steps
of the program: operators and registered ops, NumPy functions and ufuncs (through NumPy's
``__array_ufunc__`` / ``__array_function__`` protocols), and ndarray methods. While tracing it
also carries the concrete value of the first call, which the recorded functions are run on so
that every op — built-in, user-defined or added later — gives its exact output shape and dtype.
What it refuses is turning its values into Python values (``float(x)``, ``bool(x)``,
``x.item()``, ``np.asarray(x)``, ``if x > 0:``): those would bake the first call's numbers into
every later call, so they raise :class:`~fungrad.errors.TracingError` naming the fixes.

In-place updates (``x += 1``, ``x[0] = 2``, ``np.add(a, b, out=x)``) rebind the traced array to
a new program value, so everything holding it (a Tensor's data, say) sees the update; a view
made by basic indexing writes its update back into the array it was taken from.

>>> import numpy as np, fungrad as fg
>>> from fungrad.jit import jit
>>> @jit
... def f(x):
...     return np.tanh(x * 2).sum(axis=0), x.shape
>>> f(np.zeros((2, 3)))
(array([0., 0., 0.]), (2, 3))
"""

from __future__ import annotations

import operator
from threading import get_ident
from typing import Any, Callable

import numpy as np

from .. import primitives as _ops
from .._stand_in import StandIn
from ..primitives.indexing import _plain_index, is_advanced
from ..errors import FungradError, TracingError
from ..recording import thread as _thread
from ..registry import _explain
from ..tensor import Tensor

__all__ = ["TracedArray", "is_traced", "conversion_error"]

_FIXES = (
    "Mark the argument static (fg.jit(fn, static_argnums=...)) if the value decides Python "
    "control flow, move the conversion out of the jitted function (convert its returned "
    "value), or express it with ops (fg.where instead of if/else)."
)


def conversion_error(what: str, arr: "TracedArray | None" = None) -> TracingError:
    """The error raised when a traced value would become a Python value."""
    desc = f" of a traced array {arr._describe()}" if arr is not None else " of a traced value"
    return TracingError(
        f"fg.jit: {what}{desc} needs its value, which is only known when the compiled step "
        f"runs; the traced function would bake in the first call's value. {_FIXES}"
    )


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a traced array (a value of a program being traced)."""
    return type(x) is TracedArray


#: argument types ``_op`` hands to the tracer as they are (``registry.apply`` passes them as
#: data; sequences it normalises and Tensors it records, so those take the op's own call)
_PLAIN = frozenset({float, int, bool, complex, np.ndarray})

# ufuncs that are registered ops: recorded as the op, so the compiler knows them
_UFUNC_OPS = {
    np.add: "add", np.subtract: "subtract", np.multiply: "multiply",
    np.true_divide: "divide", np.negative: "negative", np.power: "power", np.exp: "exp",
    np.log: "log", np.sqrt: "sqrt", np.sin: "sin", np.cos: "cos", np.tanh: "tanh",
    np.absolute: "abs", np.sign: "sign", np.maximum: "maximum", np.minimum: "minimum",
    np.matmul: "matmul",
}

# NumPy functions that read only shapes and dtypes: answered at trace time
_SHAPE_ONLY = {np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj}
_LIKE = {np.ones_like: 1, np.zeros_like: 0, np.empty_like: 0}


def _method(name: str):
    """A picklable stand-in for ``lambda a, *args, **kw: getattr(a, name)(*args, **kw)``."""
    fn = _METHODS.get(name)
    if fn is None:
        def fn(a, *args, **kwargs):
            return getattr(a, name)(*args, **kwargs)
        fn.__name__ = f"ndarray.{name}"
        _METHODS[name] = fn
    return fn


_METHODS: dict = {}


def _setitem(x, value, index=None):
    """A copy of ``x`` with ``x[index] = value`` (the functional form of an item assignment)."""
    out = np.array(x, copy=True)
    out[index] = value
    return out


def _copy(x):
    return np.array(x, copy=True)


def _operator(name: str | None, pyop: Callable, reflected: bool = False) -> Callable:
    """The traced array's binary operator ``pyop`` (``other <pyop> self`` when ``reflected``):
    the registered op ``name`` — handed straight to the tracer when the other side is a
    traced array, an ndarray or a Python number, as ``TracedArray._op`` would — or, for an
    operator without an op (``//``, ``%``, comparisons) and for two Python numbers (computed
    as Python does, keeping a Python number), ``pyop`` as one recorded call."""
    op = getattr(_ops, name) if name is not None else None

    def method(self, other):
        t = type(other)
        if t is not TracedArray and t not in _PLAIN and isinstance(other, Tensor):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        if op is None or (self._var.weak is not None and self._python_scalar(other)):
            return self._call(pyop, (a, b), name=pyop.__name__)
        tracer = self._tracer
        st = _thread
        if st.hook is tracer and st.vmap is None and (t is TracedArray or t in _PLAIN):
            # (this thread traces with this array's tracer, so it is open)
            out = tracer.lazy_binary(op, a, b)
            if out is not None:
                return out
            try:
                return tracer.forward(op, (a, b), {})
            except FungradError:
                raise
            except Exception as e:  # as registry.apply: the error names the op
                raise _explain(op, e, [a, b], {}) from e
        return self._op(name, a, b)

    return method


class TracedArray(StandIn):
    """An ndarray stand-in while tracing: shape and dtype known, values recorded, not read."""

    __slots__ = ("_tracer", "_var", "_val", "_base", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, tracer, var, value) -> None:
        self._tracer = tracer
        self._var = var
        self._val = value  # the first call's value, or a Lazy one (computed when asked for)
        self._base = None  # set on views from basic indexing: (base TracedArray, index)

    @property
    def _value(self):
        """The concrete value of the first call (computing a :class:`Lazy` one now)."""
        v = self._val
        if type(v) is Lazy:
            v = self._val = v.force()
        return v

    # -- what is known -----------------------------------------------------------------------

    # (read for every recorded op, by backward's shape and dtype checks too: a getter in C,
    # no Python frame; it follows ``_var``, which in-place updates rebind)
    shape = property(operator.attrgetter("_var.shape"), doc="The shape (known while tracing).")
    dtype = property(operator.attrgetter("_var.dtype"), doc="The dtype (known while tracing).")

    @property
    def base(self) -> None:
        return None

    def __len__(self) -> int:
        if not self._var.shape:
            raise TracingError("len() of unsized object (a 0-d traced array)")
        return self._var.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def _describe(self) -> str:
        v = self._var
        if v.weak is not None:
            return f"(a Python {v.weak.__name__} argument)"
        return f"(shape {v.shape}, dtype {v.dtype})"

    def __repr__(self) -> str:
        v = self._var
        if v.weak is not None:
            return f"Traced<{v.weak.__name__}>"
        return f"Traced<{v.dtype}[{','.join(map(str, v.shape))}]>"

    __str__ = __repr__

    def _conversion_error(self, what: str) -> TracingError:
        return conversion_error(what, self)

    def tobytes(self, *args, **kwargs):
        raise conversion_error(".tobytes()", self)

    def __array__(self, dtype=None, copy=None):
        raise conversion_error("np.asarray() / np.array()", self)

    def __hash__(self) -> int:
        return id(self)

    # -- recording ---------------------------------------------------------------------------

    def _op(self, name: str, *args, **params):
        """The registered op ``name`` on ``args``: what ``Op.__call__`` and ``registry.apply``
        do for arguments that hold no Tensor (hand the forward to the tracer), without their
        frames; anything else (a Tensor, a sequence, fg.vmap running, unusual keywords)
        takes the op's own call."""
        tracer = self._tracer
        if not tracer.open or get_ident() != tracer.thread:
            tracer.check_open()  # (raises)
        op = getattr(_ops, name)
        st = _thread
        hook = st.hook
        if hook is None or st.vmap is not None or len(args) != op.n_inputs or (
                params and op._accepts is not None and not params.keys() <= op._accepts):
            return op(*args, **params)
        for a in args:
            if type(a) is not TracedArray and type(a) not in _PLAIN:
                return op(*args, **params)
        try:
            return hook.forward(op, args, params)
        except FungradError:
            raise
        except Exception as e:  # as registry.apply: the error names the op
            raise _explain(op, e, list(args), params) from e

    def _call(self, fn, args: tuple, kwargs: dict | None = None, name: str | None = None):
        self._tracer.check_open()
        return self._tracer.call(fn, args, kwargs or {}, name)

    def _python_scalar(self, other) -> bool:
        """Both sides Python numbers (weak): compute as Python does, keeping a Python number."""
        if self._var.weak is None:
            return False
        if type(other) is TracedArray:
            return other._var.weak is not None
        return type(other) in (int, float, bool, complex)

    __add__ = _operator("add", operator.add)
    __radd__ = _operator("add", operator.add, True)
    __sub__ = _operator("subtract", operator.sub)
    __rsub__ = _operator("subtract", operator.sub, True)
    __mul__ = _operator("multiply", operator.mul)
    __rmul__ = _operator("multiply", operator.mul, True)
    __truediv__ = _operator("divide", operator.truediv)
    __rtruediv__ = _operator("divide", operator.truediv, True)
    __pow__ = _operator("power", operator.pow)
    __rpow__ = _operator("power", operator.pow, True)
    __matmul__ = _operator("matmul", operator.matmul)
    __rmatmul__ = _operator("matmul", operator.matmul, True)
    __floordiv__ = _operator(None, operator.floordiv)
    __rfloordiv__ = _operator(None, operator.floordiv, True)
    __mod__ = _operator(None, operator.mod)
    __rmod__ = _operator(None, operator.mod, True)
    __and__ = _operator(None, operator.and_)
    __rand__ = _operator(None, operator.and_, True)
    __or__ = _operator(None, operator.or_)
    __ror__ = _operator(None, operator.or_, True)
    __xor__ = _operator(None, operator.xor)
    __rxor__ = _operator(None, operator.xor, True)
    __lt__ = _operator(None, operator.lt)
    __le__ = _operator(None, operator.le)
    __gt__ = _operator(None, operator.gt)
    __ge__ = _operator(None, operator.ge)
    __eq__ = _operator(None, operator.eq)  # type: ignore[assignment]
    __ne__ = _operator(None, operator.ne)  # type: ignore[assignment]

    def __neg__(self):
        if self._var.weak is not None:
            return self._call(operator.neg, (self,), name="neg")
        return self._op("negative", self)

    def __pos__(self):
        return self

    def __abs__(self):
        if self._var.weak is not None:
            return self._call(operator.abs, (self,), name="abs")
        return self._op("abs", self)

    def __invert__(self):
        return self._call(operator.invert, (self,), name="invert")

    # in place: the result becomes this array's new value (and its base's, for a view)
    def _inplace(self, result):
        if result is NotImplemented:
            return NotImplemented
        self._assign(result)
        return self

    def __iadd__(self, o): return self._inplace(self.__add__(o))
    def __isub__(self, o): return self._inplace(self.__sub__(o))
    def __imul__(self, o): return self._inplace(self.__mul__(o))
    def __itruediv__(self, o): return self._inplace(self.__truediv__(o))
    def __ipow__(self, o): return self._inplace(self.__pow__(o))
    def __imatmul__(self, o): return self._inplace(self.__matmul__(o))
    def __ifloordiv__(self, o): return self._inplace(self.__floordiv__(o))
    def __imod__(self, o): return self._inplace(self.__mod__(o))
    def __iand__(self, o): return self._inplace(self.__and__(o))
    def __ior__(self, o): return self._inplace(self.__or__(o))
    def __ixor__(self, o): return self._inplace(self.__xor__(o))

    def _assign(self, value) -> None:
        """Make ``value`` (cast to this dtype and shape, as NumPy's in-place ops do) the new
        value of this array, and of the array it is a view of."""
        if not (type(value) is TracedArray and value._var.shape == self._var.shape
                and value._var.dtype == self._var.dtype and value._var.weak is None):
            value = self._call(_assign_like, (self, value), name="assign")
        self._var, self._val = value._var, value._val
        if self._base is not None:
            base, index = self._base
            base.__setitem__(index, self)

    # -- indexing ------------------------------------------------------------------------------

    def __getitem__(self, index):
        if type(index) is not int:  # (an int is plain and basic as it is)
            index = _plain_index(index)
        out = self._op("getitem", self, index=index)
        if type(index) is int or not is_advanced(index):
            out._base = (self, index)  # a NumPy view: writes to it reach this array
        return out

    def __setitem__(self, index, value) -> None:
        if isinstance(value, Tensor):
            value = value.data
        new = self._call(_setitem, (self, value), {"index": _plain_index(index)},
                         name="setitem")
        self._var, self._val = new._var, new._val
        if self._base is not None:
            base, bindex = self._base
            base.__setitem__(bindex, self)

    # -- ndarray methods -----------------------------------------------------------------------

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        if dtype is not None or out is not None or kw:
            return self._call(_method("sum"), (self,), dict(axis=axis, dtype=dtype,
                                                             keepdims=keepdims, **kw))
        return self._op("sum", self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        if dtype is not None or out is not None or kw:
            return self._call(_method("mean"), (self,), dict(axis=axis, dtype=dtype,
                                                              keepdims=keepdims, **kw))
        return self._op("mean", self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        if out is not None or kw:
            return self._call(_method("max"), (self,), dict(axis=axis, keepdims=keepdims, **kw))
        return self._op("max", self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        if out is not None or kw:
            return self._call(_method("min"), (self,), dict(axis=axis, keepdims=keepdims, **kw))
        return self._op("min", self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return self._op("var", self, axis=axis, keepdims=keepdims, ddof=ddof)

    def reshape(self, *shape, **kw):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if kw:
            return self._call(_method("reshape"), (self, shape), kw)
        shape = tuple(operator.index(s) for s in shape)
        return self._op("reshape", self, shape=_resolve_shape(shape, self.size))

    def ravel(self, order="C"):
        return self.reshape(-1) if order == "C" else self._call(_method("ravel"), (self,),
                                                                  {"order": order})

    flatten = ravel

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return self._op("transpose", self, axes=tuple(axes) if axes else None)

    @property
    def T(self):
        return self._op("transpose", self)

    def squeeze(self, axis=None):
        return self._op("squeeze", self, axis=axis)

    def astype(self, dtype, copy=True, **kw):
        dt = np.dtype(dtype)
        if dt == self._var.dtype and self._var.weak is None and not copy:
            return self
        if kw or dt.kind not in "fc":
            return self._call(_method("astype"), (self, dt), kw)
        return self._op("astype", self, dtype=dt.name)

    def copy(self, order="C"):
        return self._call(_copy, (self,), name="copy")

    def dot(self, other):
        return self.__matmul__(other)

    def clip(self, min=None, max=None, **kw):  # noqa: A002 (NumPy's names)
        if kw or type(min) is TracedArray or type(max) is TracedArray:
            return self._call(_method("clip"), (self, min, max), kw)
        return self._op("clip", self, a_min=min, a_max=max)

    def fill(self, value) -> None:
        self[...] = value

    def __getattr__(self, name: str):
        # any other ndarray method (argmax, cumsum, all, any, round, ...) as one recorded call
        if name.startswith("_") or not callable(getattr(np.ndarray, name, None)):
            raise AttributeError(f"'TracedArray' object has no attribute '{name}' (fg.jit "
                                 f"traces ndarray methods, not attributes that expose the "
                                 f"array's memory)")
        method = _method(name)

        def bound(*args, **kwargs):
            return self._call(method, (self, *args), kwargs, name=f"ndarray.{name}")

        return bound

    # -- NumPy's protocols ---------------------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        self._tracer.check_open()
        if any(isinstance(x, Tensor) for x in inputs):
            return NotImplemented
        out = kwargs.pop("out", None)
        if method == "__call__" and not kwargs and ufunc in _UFUNC_OPS and len(inputs) in (1, 2):
            result = getattr(_ops, _UFUNC_OPS[ufunc])(*inputs)
        else:
            fn = ufunc if method == "__call__" else getattr(ufunc, method)
            result = self._tracer.call(fn, inputs, kwargs, f"{ufunc.__name__}"
                                       + ("" if method == "__call__" else f".{method}"))
        if out is None:
            return result
        return _store_out(out, result)

    def __array_function__(self, func, types, args, kwargs):
        self._tracer.check_open()
        if func in _SHAPE_ONLY:
            return func(*_shape_stand_ins(args), **kwargs)
        if func in _LIKE and not _has_traced((args[1:], kwargs)):
            proto = args[0]
            dtype = kwargs.get("dtype", proto.dtype)
            shape = kwargs.get("shape", proto.shape)
            return np.full(shape, _LIKE[func], dtype=dtype)
        if func is np.full_like and not _has_traced((args[1:], kwargs)):
            proto, fill = args[0], args[1] if len(args) > 1 else kwargs["fill_value"]
            return np.full(kwargs.get("shape", proto.shape), fill,
                           dtype=kwargs.get("dtype", proto.dtype))
        return self._tracer.call(func, args, kwargs, f"np.{func.__name__}")


class Lazy:
    """A value of the first call not computed yet: ``fn(*args, **params)``, where args may
    be Lazy too. The tracer records some steps without running them when their output's
    shape and dtype follow from their inputs' (see ``tracer._LAZY``): a gradient
    accumulated row by row into a large array (``w[i]`` in a loop) is then never summed
    while tracing unless a later step needs its values — which would cost time quadratic
    in the program's length. Forcing is iterative (a chain of thousands never recurses)."""

    __slots__ = ("fn", "args", "params", "result")

    def __init__(self, fn, args: tuple, params: dict) -> None:
        self.fn = fn
        self.args = args
        self.params = params
        self.result = None

    def force(self):
        args = self.args
        if args is None:
            return self.result
        for a in args:
            if type(a) is Lazy and a.args is not None:
                break
        else:  # every input known (the usual case): no stack
            self.result = self.fn(*[a.result if type(a) is Lazy else a for a in args],
                                  **self.params)
            self.args = self.params = None
            return self.result
        stack = [self]
        while stack:
            x = stack[-1]
            if x.args is None:
                stack.pop()
                continue
            pending = [a for a in x.args if type(a) is Lazy and a.args is not None]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            vals = [a.result if type(a) is Lazy else a for a in x.args]
            x.result = x.fn(*vals, **x.params)
            x.args = x.params = None  # let the inputs go
        return self.result


def _assign_like(target, value):
    """``value`` cast to ``target``'s dtype and broadcast to its shape (NumPy's ``a[...] = v``)."""
    return np.broadcast_to(np.asarray(value, dtype=np.asarray(target).dtype),
                           np.shape(target)).copy()


def _store_out(out, result):
    """A ufunc's ``out=`` argument: traced outputs take the result as their new value."""
    outs = out if isinstance(out, tuple) else (out,)
    results = result if isinstance(result, tuple) else (result,)
    final = []
    for o, r in zip(outs, results):
        if type(o) is TracedArray:
            o._assign(r)
            final.append(o)
        elif isinstance(o, np.ndarray) and type(r) is TracedArray:
            # an array the function closed over, written with traced values: the program
            # writes it when the step has succeeded (it is not read back during the step)
            from .program import Binding, Effect  # noqa: PLC0415

            r._tracer.extra_effects.append(Effect("write", Binding("array", obj=o), r._var))
            final.append(r)
        else:
            final.append(r)
    return tuple(final) if isinstance(out, tuple) and len(final) > 1 else final[0]


def _shape_stand_ins(args):
    return tuple(np.empty(a.shape, a.dtype) if type(a) is TracedArray else a for a in args)


def _has_traced(tree) -> bool:
    stack = [tree]
    while stack:
        x = stack.pop()
        if type(x) is TracedArray:
            return True
        if isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return False


def _resolve_shape(shape: tuple, size: int) -> tuple:
    """``shape`` with one -1 resolved (so the recorded step states its exact output shape)."""
    if -1 not in shape:
        return shape
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    return tuple(size // known if known and s == -1 else s for s in shape)
