"""The tracer: runs the function once on traced arrays and records a :class:`Program`.

Tracing is concrete: every recorded function runs on the first call's values (so any op, even
one registered later, reports its real output shape and dtype, and raises the errors eager
raises) — except the few ops of ``_LAZY``, whose shape and dtype follow from their inputs':
they run only if a later step needs their values (see :class:`~fungrad.jit.traced.Lazy`),
so a long chain traced whole computes nothing while tracing. It is installed per thread as ``fungrad.recording.thread.hook``; the engine calls it at a
few points (:func:`fungrad.registry.apply`, ``Tensor.data``, ``Tensor.grad``, backward's leaf
accumulation) and otherwise runs unchanged — backward walks the tape recorded during the
trace, with VJPs computing on traced arrays, so the backward pass lands in the program too.

State the function reaches that outlives the call — the data and ``.grad`` of Tensors it
closed over, optimizer state — is *captured*: its first use becomes a program input read from
the object at run time, and any change is journaled, undone when the trace ends, and recorded
as an effect that the program commits only after a whole step has succeeded. So a trace that
fails, and a program that fails, leave the model untouched.

>>> import numpy as np, fungrad as fg
>>> from fungrad.jit.tracer import trace
>>> w = fg.Tensor(np.ones(3), autograd=True)
>>> prog = trace(lambda x: fg.sum(fg.tanh(x * w)), (np.zeros(3),), {})[0]
>>> [s.name for s in prog.steps]
['multiply', 'tanh', 'sum']
"""

from __future__ import annotations

import dis
import functools
import gc
import itertools
import operator
import threading
import types
import weakref
from typing import Any, Callable

import numpy as np

from .. import recording
from ..errors import FungradError, ShapeError, TracingError
from ..registry import _explain
from ..tensor import Tensor
from ..tree import flatten, unflatten
from .loops import LOOP_OPS, record_loop
from .program import Binding, Effect, Guard, Program, Stale, Step, Var
from .traced import Lazy, TracedArray, _has_traced

__all__ = ["Tracer", "trace", "current", "is_dynamic_leaf"]

_PY_SCALARS = (float, int, bool, complex)


class _NoParams(dict):
    """The params of a step recorded without any: one empty dict shared by them all (a
    long chain records tens of thousands), which refuses writes — a write into one step's
    params would reach every other's."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("fg.jit: a step's params are shared when empty and never written; "
                        "copy them to change them")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse
    __ior__ = _refuse  # type: ignore[assignment]


_NO_PARAMS: dict = _NoParams()


#: Python ints of larger magnitude are not exact in the program's float64 scalar registers:
#: they are part of the signature (a new value retraces), as static arguments are
_EXACT_INT = 2 ** 53


def is_dynamic_leaf(x: Any) -> bool:
    """Whether an argument leaf becomes a program input (an array, a NumPy scalar, a Python
    number; an int only while a float64 holds it exactly), rather than a signature value."""
    t = type(x)
    if t is int:
        return -_EXACT_INT <= x <= _EXACT_INT
    return t in _PY_SCALARS or isinstance(x, (np.ndarray, np.generic))


def current() -> "Tracer | None":
    """The tracer active on this thread, if any."""
    return recording.thread.hook


def _identity(x):
    return x


class _Track:
    """What a Tensor was before the trace touched it (restored when the trace ends)."""

    __slots__ = ("tensor", "binding", "var0", "data", "version", "grad", "is_grad")

    def __init__(self, tensor: Tensor, binding: Binding, is_grad: bool) -> None:
        self.tensor = tensor
        self.binding = binding
        self.var0 = None  # the input Var of its data, once captured
        self.data = tensor._data
        self.version = tensor._version
        self.grad = tensor._grad
        self.is_grad = is_grad


class Tracer:
    """Records one trace of a function into a program (see the module docstring)."""

    traced_type = TracedArray  # what the engine checks data against (it does not import jit)

    def __init__(self, name: str = "step") -> None:
        self.name = name
        self.vars: list[Var] = []
        self.steps: list[Step] = []
        self.inputs: list[tuple[Var, Binding]] = []
        self.guards: list[Guard] = []
        self.tracked: dict[int, _Track] = {}
        self.restores: list[Callable[[], None]] = []  # undo actions beyond Tensors (rng...)
        self.extra_effects: list[Effect] = []
        self.thread = threading.get_ident()
        self.open = True
        self.arg_index: dict[int, int] = {}  # id(arg Tensor) -> leaf position
        self.guarded: dict[tuple, Any] = {}  # (id, attribute) already guarded
        self.rng_saved: dict[int, Any] = {}  # generators whose state is restored at the end
        self.backward_ran = False  # a backward pass reached a leaf during the trace
        self.structure0 = recording.structure_version()  # Module attributes replaced so far
        self.vjp: Any = None  # trace(with_vjp=True): the traced backward of tape outputs
        # NumPy arrays the function used as constants: id -> (weakref, the program's copy)
        self.consts: dict[int, tuple[Any, np.ndarray]] = {}
        #: the arrays the function reaches, with their snapshots (see _reached_arrays)
        self.reached: list[tuple] = []
        self.arg_inputs: list[tuple[int, TracedArray, Var]] = []  # array arguments as traced
        self._loop_spy: Any = None  # the loop body being traced watches record (loops._Spy)

    # -- values --------------------------------------------------------------------------------

    def new_var(self, value: Any) -> Var:
        t = type(value)
        if t in _PY_SCALARS:
            var = Var(len(self.vars), (), np.dtype(t if t is not int else np.int64), t)
        else:
            if not isinstance(value, np.ndarray):
                value = np.asarray(value)
            var = Var(len(self.vars), value.shape, value.dtype)
        self.vars.append(var)
        return var

    def read_values(self, t: Tensor) -> None:
        """The values of Tensor ``t`` (state the function closes over, not traced) are read as
        constants (``t.item()``, ``float(t)``, ``np.array(t)``, ``if t:``): the program keeps
        them, and a guard retraces when ``t``'s values change (a Tensor made inside the
        function, dead after the trace, needs none)."""
        key = (id(t), "values")
        if key in self.guarded:
            return
        self.guarded[key] = t
        snap = np.array(t._data, copy=True)
        self.guards.append(Guard(functools.partial(_tensor_values, weakref.ref(t), snap), True,
                                 f"the values of a closed-over Tensor (shape {snap.shape}, "
                                 f"{snap.dtype}) read as constants"))

    def constant_array(self, a: np.ndarray) -> np.ndarray:
        """A NumPy array the function closed over (or made) used with traced values: the
        program holds its value at trace time — a copy, so that every use in the program,
        and every NumPy result computed from it while tracing, sees the same values — and a
        guard retraces when the array itself changes (see :func:`_constant_guards`)."""
        entry = self.consts.get(id(a))
        if entry is not None and entry[0]() is a:
            return entry[1]
        if a.size <= _SNAPSHOT_ELEMS:
            snap = np.array(a, copy=True)
            snap.flags.writeable = False
        else:
            snap = a  # large: the program reads it where it is; a sampled guard watches it
        # a view (c.T, c[:2]) made while tracing dies with the trace, but the array it shows
        # lives on: the guard keeps the view, so a change to that array is seen through it
        # (an entry left by a dead array at the same address goes: the guards come in the
        # order the live arrays were first used, whatever addresses the allocator reused)
        self.consts.pop(id(a), None)
        self.consts[id(a)] = (weakref.ref(a) if a.base is None else _Kept(a), snap)
        return snap

    def input(self, value: Any, binding: Binding) -> TracedArray:
        var = self.new_var(value)
        self.inputs.append((var, binding))
        return TracedArray(self, var, value)

    def constant(self, value: Any) -> TracedArray:
        """A traced array holding a constant (a step returning it)."""
        var = self.new_var(value)
        self.steps.append(Step(_identity, None, "const", (value,), {}, (var,), False, False))
        return TracedArray(self, var, value)

    def check_open(self) -> None:
        if self.open and threading.get_ident() == self.thread:
            return
        if not self.open:
            raise TracingError(
                "fg.jit: a traced value escaped the function that was traced (kept in an "
                "attribute, a global or a closure) and was used after tracing ended; return it "
                "from the jitted function instead"
            )
        if threading.get_ident() != self.thread:
            raise TracingError("fg.jit: a traced value was used on another thread than the "
                               "one tracing it")

    # -- recording -----------------------------------------------------------------------------

    def record(self, fn: Callable, args: tuple, params: dict, op: Any = None,
               name: str | None = None) -> Any:
        """Run ``fn`` on the concrete values and, if anything traced went in, record a step."""
        # (runs once per recorded op: the common case — one array out, plain params — is
        # written straight, without helper frames)
        if params:
            plain = _plain_params(params)  # (atoms only: nothing traced, stored as they are)
            traced = dynamic = not plain and _params_traced(params)
        else:
            plain = True
            traced = dynamic = False
        for a in args:
            if type(a) is TracedArray:
                traced = True
                if a._tracer is not self:
                    a._tracer.check_open()
        if traced:
            if not self.open or threading.get_ident() != self.thread:
                self.check_open()
            if op is not None and not dynamic:
                rule = _LAZY.get(op.name)
                if rule is not None:
                    out_var = rule(self, args, params)
                    if out_var is not None:
                        return self._record_lazy(op, args, params, out_var)
            cargs = [a._value if type(a) is TracedArray else a for a in args]
            cparams = _concrete(params) if dynamic else params
        else:
            cargs, cparams = args, params
        try:
            out = fn(*cargs, **cparams)
        except FungradError:
            raise
        except Exception as e:
            if op is None:
                raise
            raise _explain(op, e, list(cargs), cparams) from e
        if not traced:
            return out  # constants in, constant out: nothing to record
        if type(out) is np.ndarray:  # the common case: one array
            multi = False
            outs: tuple = (out,)
            out_vars: tuple = (Var(len(self.vars), out.shape, out.dtype),)
            self.vars.append(out_vars[0])
        else:
            multi = isinstance(out, (tuple, list)) and (op is not None or not _is_value(out))
            outs = tuple(out) if multi else (out,)
            for o in outs:
                if not _is_value(o):
                    raise _not_a_value(name or getattr(fn, "__name__", fn), o)
            out_vars = tuple([self.new_var(o) for o in outs])
        refs = tuple([a._var if type(a) is TracedArray else
                      self.constant_array(a) if type(a) is np.ndarray else a for a in args])
        stored = (dict(params) if params else _NO_PARAMS) if plain else _refs(params, self)
        label = name or getattr(fn, "__name__", "call")
        if _value_dependent(label, args, params, dynamic):
            fn = _FixedShape(fn, tuple(np.shape(o) for o in outs), label, multi)
        self.steps.append(Step(fn, op, label, refs, stored, out_vars, dynamic, multi))
        if not multi:
            return TracedArray(self, out_vars[0], outs[0])
        return tuple([TracedArray(self, v, o) for v, o in zip(out_vars, outs)])

    def lazy_binary(self, op: Any, a: Any, b: Any) -> TracedArray | None:
        """``op(a, b)`` (``a`` or ``b`` a traced array) recorded without running it, when ``op``
        is add, subtract or multiply and :func:`_lazy_same_shape` holds with a Python number
        or another of this tracer's arrays on the other side: :meth:`forward`'s rule and
        :meth:`_record_lazy` written out as one (the commonest recorded op of a long program:
        a chain's layers and every gradient it sums). None: anything else, which ``forward``
        then decides as it always does."""
        if self._loop_spy is not None or op.name not in _SAME_SHAPE_OPS:
            return None
        if type(a) is TracedArray:
            x, y = a, b
        else:
            x, y = b, a
            if type(x) is not TracedArray:
                return None
        vx = x._var
        dt = vx.dtype
        if vx.weak is not None or dt.kind not in "fc" or x._tracer is not self:
            return None
        ty = type(y)
        if ty is TracedArray:
            vy = y._var
            if y._tracer is not self or vy.weak is not None or vy.shape != vx.shape or (
                    vy.dtype is not dt and vy.dtype != dt):
                return None
            ry, valy = vy, y._val
        elif ty is float or ty is int:
            ry = valy = y
        else:  # (an ndarray: the program's copy, which forward's path takes)
            return None
        var = Var(len(self.vars), vx.shape, dt)
        self.vars.append(var)
        if x is a:
            refs: tuple = (vx, ry)
            vals: tuple = (x._val, valy)
        else:
            refs, vals = (ry, vx), (valy, x._val)
        fwd = op.forward
        self.steps.append(Step(fwd, op, op.name, refs, _NO_PARAMS, (var,), False, False))
        return TracedArray(self, var, Lazy(fwd, vals, _NO_PARAMS))

    def _lazy_one(self, op: Any, a: Any, params: dict, row: bool) -> TracedArray | None:
        """A layer's ``tanh`` (``negative``; ``row=False``: :func:`_lazy_unary`) or its rows
        ``w[i]`` (``getitem`` at one int; ``row=True``: :func:`_lazy_row`) of one of this
        tracer's arrays, ruled and recorded as :meth:`_record_lazy` does, in one frame.
        None: anything else, which :meth:`forward` decides as it always does."""
        if type(a) is not TracedArray or a._tracer is not self:
            return None
        v = a._var
        shape = v.shape
        if v.weak is not None:
            return None
        if row:
            if len(params) != 1:
                return None
            i = params.get("index")
            if type(i) is not int or not shape or not -shape[0] <= i < shape[0]:
                return None
            shape = shape[1:]
        elif params or v.dtype.kind not in "fc":
            return None
        var = Var(len(self.vars), shape, v.dtype)
        self.vars.append(var)
        fwd = op.forward
        stored = dict(params) if params else _NO_PARAMS
        self.steps.append(Step(fwd, op, op.name, (v,), stored, (var,), False, False))
        return TracedArray(self, var, Lazy(fwd, (a._val,), stored))

    def _record_lazy(self, op: Any, args: tuple, params: dict, var: Var) -> TracedArray:
        """Record ``op`` without running it: its value is computed when a later step needs
        it (see :class:`~fungrad.jit.traced.Lazy`)."""
        # (once per recorded op of a long chain: the one- and two-argument cases are written
        # out, without comprehensions, which are frames of their own)
        self.vars.append(var)
        n = len(args)
        if n == 2:  # (the binary ops of _LAZY)
            a, b = args
            if type(a) is TracedArray:
                ra, va = a._var, a._val
            else:  # (a NumPy constant: the program's copy, as record keeps it)
                ra = va = self.constant_array(a) if type(a) is np.ndarray else a
            if type(b) is TracedArray:
                rb, vb = b._var, b._val
            else:
                rb = vb = self.constant_array(b) if type(b) is np.ndarray else b
            refs: tuple = (ra, rb)
            vals: tuple = (va, vb)
        elif n == 1 and type(args[0]) is TracedArray:  # (the unary ops: tanh, w[i], sum...)
            a = args[0]
            refs, vals = (a._var,), (a._val,)
        else:
            refs = tuple([a._var if type(a) is TracedArray else
                          self.constant_array(a) if type(a) is np.ndarray else a
                          for a in args])
            vals = tuple([a._val if type(a) is TracedArray else b
                          for a, b in zip(args, refs)])
        fwd = op.forward
        stored = dict(params) if params else _NO_PARAMS  # (the Lazy only reads them, and
        # lets them go when forced)
        self.steps.append(Step(fwd, op, op.name, refs, stored, (var,), False, False))
        return TracedArray(self, var, Lazy(fwd, vals, stored))

    def call(self, fn: Callable, args: tuple, kwargs: dict, name: str | None = None) -> Any:
        """A NumPy function (or method) called with traced arrays: one recorded step."""
        if fn is np.copyto and args and type(args[0]) is TracedArray:
            dst, src = args[0], args[1] if len(args) > 1 else kwargs["src"]
            dst._assign(src)
            return None
        return self.record(fn, tuple(args), kwargs, None, name)

    # -- the engine's callbacks ------------------------------------------------------------

    def prepare(self, args) -> None:
        """``apply`` is about to run an op: Tensors not yet traced become program inputs."""
        for a in args:
            if isinstance(a, Tensor) and type(a._data) is not TracedArray:
                self.capture(a)

    def forward(self, op, datas: Any, params: dict) -> Any:
        """Run an op's forward on traced arrays (``apply`` calls this instead of the forward)."""
        name = op.name
        rule = _LAZY.get(name)
        if rule is not None and self._loop_spy is None:
            # what record does for an op of _LAZY, without its frame and its general checks:
            # the arguments this tracer's arrays or plain values, the params without any
            # traced array (else record runs it, or raises as it does). (The engine and traced
            # arrays call this only on the thread this tracer is the hook of, while it is:
            # the trace is open.)
            args = datas if type(datas) is tuple else tuple(datas)
            if rule is _lazy_same_shape and not params and len(args) == 2:
                out = self.lazy_binary(op, args[0], args[1])
                if out is not None:
                    return out
            elif (rule is _lazy_unary or rule is _lazy_row) and len(args) == 1:
                out = self._lazy_one(op, args[0], params, rule is _lazy_row)
                if out is not None:
                    return out
            for a in args:
                if type(a) is TracedArray and a._tracer is not self:
                    break
            else:
                if not params or _plain_params(params) or not _params_traced(params):
                    var = rule(self, args, params)
                    if var is not None:
                        return self._record_lazy(op, args, params, var)
        if name in LOOP_OPS:  # a structured loop: one step, its body traced once
            return record_loop(self, op, datas, params)
        return self.record(op.forward, tuple(datas), params, op, name)

    def tensor_data(self, t: Tensor) -> Any:
        """``t.data`` while tracing: its traced array (capturing it if it is state)."""
        if type(t._data) is not TracedArray:
            self.capture(t)
        return t._data

    def set_tensor_data(self, t: Tensor, value: Any) -> None:
        """``t.data = value`` while tracing: journaled; the new value is a traced array."""
        self.journal(t)
        if type(value) is not TracedArray:
            value = self.constant(np.asarray(value))
        t._data = value
        t._version += 1

    def get_grad(self, t: Tensor) -> Any:
        """``t.grad`` while tracing: an existing gradient Tensor becomes captured state."""
        g = t._grad
        if g is not None and type(g._data) is not TracedArray and id(g) not in self.tracked:
            self.journal(t)
            k = self.arg_index.get(id(t))
            binding = Binding("arg_grad", key=k) if k is not None else Binding("grad", t)
            self.capture(g, binding, is_grad=True)
        return g

    def set_grad(self, t: Tensor, value: Any) -> None:
        """``t.grad = value`` while tracing: journaled, committed when the step succeeds."""
        self.journal(t)
        if value is not None and not isinstance(value, Tensor):
            value = Tensor._make(value if type(value) is TracedArray else
                                 self.constant(np.asarray(value)), None)
        t._grad = value

    # -- what fungrad.optim asks of the tracer (it checks recording.thread.hook; it never imports
    # -- fungrad.jit): optimizer steps, zeroing and clipping become program steps

    def optimizer_step(self, opt: Any, eager_step: Callable, zero: bool = True) -> None:
        """``opt.step(zero)`` while tracing: SGD and Adam traced, other classes as written."""
        from .optimizers import traced_step  # noqa: PLC0415 (optim sits above the tensor)

        key = (id(opt), "parameters")
        if key not in self.guarded:  # ``del opt.parameters[0]``, ``append``: retrace
            self.guarded[key] = opt
            self.guards.append(Guard(functools.partial(_param_list_state, opt),
                                     _param_list_state(opt),
                                     f"{type(opt).__name__}.parameters (edited)"))
        return traced_step(self, opt, eager_step, zero)

    def optimizer_zero(self, opt: Any) -> None:
        """``opt.zero()`` while tracing: the gradients are zeroed in the program."""
        from .optimizers import traced_zero  # noqa: PLC0415

        return traced_zero(opt)

    def clip_grad_norm(self, parameters: Any, max_norm: float) -> Any:
        """``fg.optim.clip_grad_norm`` while tracing: the norm and the scaling in the program."""
        from .optimizers import traced_clip_grad_norm  # noqa: PLC0415

        return traced_clip_grad_norm(self, parameters, max_norm)

    def accumulate_grad(self, t: Tensor, c: Any) -> None:
        """Backward reached leaf ``t`` with cotangent ``c``: add it to ``t.grad`` as eager does
        (a new gradient Tensor if there is none, else in place into the existing one)."""
        self.backward_ran = True
        g = self.get_grad(t)
        if type(c) is not TracedArray:
            c = self.constant(np.asarray(c))
        if g is not None and tuple(g.shape) != tuple(c.shape):
            raise ShapeError(
                f"backward: a leaf of shape {tuple(t.shape)} already has a .grad of shape "
                f"{tuple(g.shape)} (its .data changed shape since); set .grad = None (or "
                "call the optimizer's zero_grad()) before backpropagating into it again")
        if g is None:
            if c.dtype.kind != "f":
                c = c.astype(np.float64)
            self.set_grad(t, Tensor._make(TracedArray(self, c._var, c._val), None))
        else:
            if type(g._data) is not TracedArray:
                g._data = self.constant(g._data)  # a gradient Tensor made during this trace
            g._data._assign(g._data + c)

    def new_tensor_data(self, data: TracedArray, dtype: Any) -> TracedArray:
        """``Tensor(traced)``: a traced array of its own (a copy, as ``Tensor(ndarray)`` is)."""
        self.check_open()
        if dtype is not None and np.dtype(dtype) != data.dtype:
            return data.astype(dtype)
        return TracedArray(self, data._var, data._val)

    def guard_attribute(self, obj: Any, name: str, value: Any) -> None:
        """The trace read ``obj.name`` (``model.training``): a changed value retraces."""
        key = (id(obj), name)
        if key not in self.guarded:
            self.guarded[key] = obj
            self.guards.append(Guard(functools.partial(getattr, obj, name), value,
                                     f"{type(obj).__name__}.{name}"))

    def check(self, fn: Callable, *args: Any, bounds: tuple[int, int] | None = None) -> None:
        """Run ``fn(*values)`` now and at every call of the program (before anything is
        committed): a check eager makes in Python on values (an id range) raises there.
        ``bounds=(lo, hi)`` says ``fn`` checks only ``lo <= args[0] < hi`` (integers, dtype
        already checked): the compiled program then checks that itself and calls ``fn``
        only to raise eager's error."""
        cargs = [a._value if type(a) is TracedArray else a for a in args]
        fn(*cargs)
        refs = tuple(a._var if type(a) is TracedArray else a for a in args)
        self.steps.append(Step(_Check(fn, bounds), None,
                               f"check:{getattr(fn, '__name__', 'check')}", refs, {}, (), False,
                               True, pure=False))

    def generator(self, gen: Any) -> "TracedGenerator":
        """A stand-in for ``gen`` (None: the default generator) whose draws are steps."""
        return TracedGenerator(self, gen)

    def draw(self, gen: Any, method: str, args: tuple, kwargs: dict) -> Any:
        """Draw as eager would now (restoring the generator when the trace ends), and record a
        step that draws afresh from the same generator each time the program runs."""
        if _has_traced((args, kwargs)):
            raise TracingError(f"fg.jit: the arguments of a random draw ({method}) must be "
                               "known when tracing (shapes, probabilities as Python numbers)")
        draw = _Draw(gen, method, args, kwargs)
        actual = draw.generator()
        if id(actual) not in self.rng_saved:
            self.rng_saved[id(actual)] = actual
            state = _rng_state(actual)
            self.restores.append(functools.partial(_set_rng_state, actual, state))
        value = draw()
        if not _is_value(value):
            raise TracingError(f"fg.jit: random draw {method} gave a {type(value).__name__}")
        var = self.new_var(value)
        self.steps.append(Step(draw, None, f"random.{method}", (), {}, (var,), False, False,
                               pure=False))
        return TracedArray(self, var, value)

    # -- captured state ---------------------------------------------------------------------

    def journal(self, t: Tensor, binding: Binding | None = None, is_grad: bool = False) -> _Track:
        tr = self.tracked.get(id(t))
        if tr is None:
            k = self.arg_index.get(id(t))
            if binding is None:
                binding = Binding("arg", key=k) if k is not None else Binding("data", t)
            tr = self.tracked[id(t)] = _Track(t, binding, is_grad)
        return tr

    def capture(self, t: Tensor, binding: Binding | None = None, is_grad: bool = False) -> None:
        """Make ``t``'s data a traced array: a program input read from ``t`` at run time (or a
        constant, if the trace itself assigned that data)."""
        tr = self.journal(t, binding, is_grad)
        if type(t._data) is TracedArray:
            return
        if tr.var0 is not None or t._data is not tr.data:
            t._data = self.constant(t._data)  # data assigned during the trace: a constant
            return
        proxy = self.input(t._data, tr.binding)  # its shape and dtype are checked per call
        tr.var0 = proxy._var
        t._data = proxy

    # -- finishing ---------------------------------------------------------------------------

    def effects(self) -> list[Effect]:
        """What changed in the captured state, as effects (computed before restoring it)."""
        out: list[Effect] = []
        for tr in list(self.tracked.values()):
            t = tr.tensor
            cur = t._data
            if cur is not tr.data and not (type(cur) is TracedArray and cur._var is tr.var0):
                ref = cur._var if type(cur) is TracedArray else np.array(cur)
                out.append(Effect("data", tr.binding, ref))
            if tr.is_grad:
                continue
            g = t._grad
            if g is tr.grad:
                continue
            if g is None:
                out.append(Effect("grad", tr.binding, None))
            else:
                d = g._data
                out.append(Effect("grad", tr.binding,
                                  d._var if type(d) is TracedArray else np.array(d)))
        return out + self.extra_effects

    def grad_guards(self) -> list[tuple[Tensor, bool]]:
        """For each captured Tensor that takes gradients: whether its ``.grad`` was None when
        the trace began (a program accumulating into an existing gradient differs)."""
        # (a .grad captured as an input needs none: reading it at each call finds it gone)
        return [(tr.tensor, tr.grad is None) for tr in self.tracked.values()
                if not tr.is_grad and tr.binding.kind == "data" and tr.tensor.requires_grad
                and (tr.grad is None or id(tr.grad) not in self.tracked)]

    def restore(self) -> None:
        """Undo every change the trace made to captured state."""
        for tr in self.tracked.values():
            t = tr.tensor
            t._data, t._version, t._grad = tr.data, tr.version, tr.grad
        for undo in reversed(self.restores):
            undo()


def _lazy_same_shape(tracer: Tracer, args: tuple, params: dict) -> Var | None:
    """``add``/``subtract``/``multiply`` of two float arrays of one shape and dtype (traced,
    or one a NumPy constant: a VJP's seed), or of a traced one and a Python float or int
    (weak: NumPy keeps the array's dtype): the output has that shape and dtype (no
    broadcasting, no promotion to decide)."""
    if params or len(args) != 2:
        return None
    a, b = args
    if type(a) is not TracedArray:
        a, b = b, a
    if type(a) is not TracedArray:
        return None
    va = a._var
    dt = va.dtype
    if va.weak is not None or dt.kind not in "fc":
        return None
    tb = type(b)
    if tb is TracedArray:
        vb = b._var
        if vb.weak is not None or va.shape != vb.shape or (vb.dtype is not dt
                                                           and vb.dtype != dt):
            return None
    elif tb is np.ndarray:  # (one the program copies: its value is fixed from now on)
        if b.shape != va.shape or (b.dtype is not dt and b.dtype != dt) \
                or b.size > _SNAPSHOT_ELEMS:
            return None
    elif tb is not float and tb is not int:
        return None
    return Var(len(tracer.vars), va.shape, dt)


def _lazy_scatter(tracer: Tracer, args: tuple, params: dict) -> Var | None:
    """``scatter_index(g, shape=..., index=...)`` with a constant index: zeros of ``shape``
    in ``g``'s float dtype (float64 for other dtypes), as ``ops.indexing`` makes them."""
    if len(args) != 1 or type(args[0]) is not TracedArray or args[0]._var.weak is not None:
        return None
    shape = params.get("shape")
    if not isinstance(shape, tuple):
        return None
    dt = args[0]._var.dtype
    return Var(len(tracer.vars), tuple(shape), dt if dt.kind in "fc" else np.dtype(np.float64))


def _lazy_unary(tracer: Tracer, args: tuple, params: dict) -> Var | None:
    """``tanh``/``negative`` of a traced float array: the output has its shape and dtype
    (NumPy's ufunc keeps a float or complex dtype, and warns of nothing for these)."""
    if params or len(args) != 1 or type(args[0]) is not TracedArray:
        return None
    v = args[0]._var
    if v.weak is not None or v.dtype.kind not in "fc":
        return None
    return Var(len(tracer.vars), v.shape, v.dtype)


def _lazy_row(tracer: Tracer, args: tuple, params: dict) -> Var | None:
    """``getitem`` of a traced array at one int position in range (``w[i]``): its shape
    without the first axis, its dtype. (Out of range: run, so the error is eager's.)"""
    if len(args) != 1 or type(args[0]) is not TracedArray or len(params) != 1:
        return None
    i = params.get("index")
    v = args[0]._var
    if type(i) is not int or v.weak is not None or not v.shape or \
            not -v.shape[0] <= i < v.shape[0]:
        return None
    return Var(len(tracer.vars), v.shape[1:], v.dtype)


def _lazy_total(tracer: Tracer, args: tuple, params: dict) -> Var | None:
    """``sum`` of a whole traced float array (no axis, no keepdims): a 0-d value of its
    dtype (NumPy sums floats and complex numbers in their own dtype)."""
    if len(args) != 1 or type(args[0]) is not TracedArray or params.get("axis") is not None \
            or params.get("keepdims", False) is not False or len(params) > 2:
        return None
    v = args[0]._var
    if v.weak is not None or v.dtype.kind not in "fc" or not params.keys() <= _TOTAL_PARAMS:
        return None
    return Var(len(tracer.vars), (), v.dtype)


_TOTAL_PARAMS = frozenset({"axis", "keepdims"})
_SAME_SHAPE_OPS = frozenset({"add", "subtract", "multiply"})  # (Tracer.lazy_binary's)


#: registered ops the tracer may record without running (their output's shape and dtype
#: follow from the inputs'; none raises on values): the ones a long
#: program accumulates gradients with, and a layer's rows, activation and loss — so a chain
#: traced whole computes no value at trace time unless a step needs one
_LAZY: dict[str, Callable[[Tracer, tuple, dict], "Var | None"]] = {
    "add": _lazy_same_shape, "subtract": _lazy_same_shape, "multiply": _lazy_same_shape,
    "scatter_index": _lazy_scatter, "tanh": _lazy_unary, "negative": _lazy_unary,
    "sum": _lazy_total, "getitem": _lazy_row,
}


def _through_containers(fn: Callable, program: Program, tracer: Tracer) -> list[Guard]:
    """Captured Tensors the function reaches through plain containers in its closure or
    globals (``state["t"]``, ``weights[0]``; Modules are guarded by
    ``recording.structure_version``): one only read is read through its place at every call
    (another Tensor put there is used; a new shape retraces); one the program updates is
    guarded (another Tensor put there retraces). Containers are searched a few levels
    deep."""
    written = {id(e.target.obj) for e in program.effects
               if isinstance(e.target, Binding) and e.target.kind in ("data", "grad")}
    slots = {id(s[2]): s for s in _container_slots(fn, tracer)}
    guards: list[Guard] = []
    for i, (var, b) in enumerate(program.inputs):
        slot = slots.get(id(b.obj)) if b.kind == "data" else None
        if slot is not None and id(b.obj) not in written and not b.obj.requires_grad:
            container, key, _ = slot
            program.inputs[i] = (var, Binding("call", functools.partial(_slot_data, container,
                                                                        key)))
            del slots[id(b.obj)]
    by_container: dict[int, tuple] = {}  # one guard per container, checked in C loops
    for container, key, t in slots.values():
        place = by_container.setdefault(id(container), (container, [], []))
        place[1].append(key)
        place[2].append(t)
    for container, keys, tensors in by_container.values():
        where = f"at {keys[0]!r}" if len(keys) == 1 else f"at one of its {len(keys)} places"
        guards.append(Guard(_Holds(container, tuple(keys), tuple(tensors)),
                            True, f"a Tensor in a closed-over {type(container).__name__} "
                                  f"({where}: replaced)"))
    return guards


def _slot_data(container: Any, key: Any) -> Any:
    return container[key]._data


def _container_slots(fn: Callable, tracer: Tracer) -> list[tuple]:
    """``(container, key, tensor)`` for each captured Tensor found in a dict or list the
    function reaches."""
    captured = {id(tr.tensor) for tr in tracer.tracked.values() if not tr.is_grad}
    if not captured:
        return []
    found: list[tuple] = []
    seen: set = set()
    stack: list = [(r, 0) for r in _roots_of(fn)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > 4:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            items = list(obj.items())
        elif isinstance(obj, list):
            items = list(enumerate(obj))
        elif isinstance(obj, tuple):
            stack.extend((v, depth + 1) for v in obj)
            continue
        elif callable(obj) and not isinstance(obj, (type, Tensor)):
            stack.extend((r, depth + 1) for r in _roots_of(obj))
            continue
        else:
            continue
        for key, value in items:
            if isinstance(value, Tensor):
                if id(value) in captured:
                    found.append((obj, key, value))
            elif isinstance(value, (dict, list, tuple)) or callable(value):
                stack.append((value, depth + 1))
    return found


def _roots_of(fn: Any) -> list:
    """What a function reaches: its closure's contents, the globals its code names (nested
    functions' too; attribute names included, a superset), a partial's function and
    arguments, a wrapper's ``__wrapped__``."""
    return [value for _, _, value in _places_of(fn, _code_names)]


class _Holds:
    """Whether ``container[k] is v`` for each key and value (6,000 closed-over parameters
    are one guard, checked in C loops, not 6,000 guards). A list whose first ``n`` items
    are the values, in order (a model's layers) is compared item by item as it stands, a
    third of the time of fetching each item by its key."""

    __slots__ = ("container", "keys", "values", "get", "prefix")

    def __init__(self, container: Any, keys: tuple, values: tuple) -> None:
        self.container = container
        self.keys = keys
        self.values = values
        self.get = operator.itemgetter(*keys) if len(keys) > 1 else None
        self.prefix = isinstance(container, list) and keys == tuple(range(len(keys)))

    def __call__(self) -> bool:
        c, values = self.container, self.values
        try:
            if self.prefix:
                return len(c) >= len(values) and all(map(operator.is_, c, values))
            if self.get is None:
                return c[self.keys[0]] is values[0]
            return all(map(operator.is_, self.get(c), values))
        except (KeyError, IndexError, TypeError):
            return False


def _param_list_state(opt: Any) -> tuple:
    """What identifies an optimizer's parameter list between edits: the list object, its
    edit count (``ParamList.generation``) and its length."""
    ps = getattr(opt, "parameters", None)
    if callable(ps) and not isinstance(ps, list):
        ps = None
    return (id(ps), getattr(ps, "generation", None), len(ps) if ps is not None else -1)


class _Check:
    """A check step: calls ``fn`` for its exception and returns an empty tuple (no outputs)."""

    def __init__(self, fn: Callable, bounds: tuple[int, int] | None = None) -> None:
        self.fn = fn
        self.bounds = bounds  # (lo, hi): fn checks lo <= args[0] < hi and nothing else
        self.__name__ = getattr(fn, "__name__", "check")

    def __call__(self, *args: Any) -> tuple:
        self.fn(*args)
        return ()


class _Draw:
    """A random draw step: ``getattr(generator, method)(*args, **kwargs)``, from ``gen`` or,
    when ``gen`` is None, from fungrad's default generator of the moment it runs."""

    def __init__(self, gen: Any, method: str, args: tuple, kwargs: dict) -> None:
        self.gen = gen
        self.method = method
        self.args = args
        self.kwargs = kwargs
        self.__name__ = f"random.{method}"

    def generator(self) -> Any:
        if self.gen is not None:
            return self.gen
        from .. import random as fg_random  # noqa: PLC0415

        return fg_random._default

    def __call__(self) -> Any:
        return getattr(self.generator(), self.method)(*self.args, **self.kwargs)


class TracedGenerator:
    """What ``fungrad.random.resolve_rng`` / ``default_generator`` give while tracing: each
    method call (``random``, ``normal``, ``integers``...) is a recorded draw."""

    def __init__(self, tracer: Tracer, gen: Any) -> None:
        self._tracer = tracer
        self._gen = gen

    def __getattr__(self, method: str):
        target = self._gen if self._gen is not None else np.random.Generator
        if method.startswith("_") or not callable(getattr(target, method, None)):
            raise AttributeError(method)

        def draw(*args, **kwargs):
            return self._tracer.draw(self._gen, method, args, kwargs)

        return draw


def _rng_state(gen: Any) -> Any:
    return gen.get_state() if isinstance(gen, np.random.RandomState) else \
        gen.bit_generator.state


def _set_rng_state(gen: Any, state: Any) -> None:
    if isinstance(gen, np.random.RandomState):
        gen.set_state(state)
    else:
        gen.bit_generator.state = state


def _not_a_value(label: Any, o: Any) -> TracingError:
    """The error for a recorded function whose result is not an array or a number."""
    if o is None:
        return TracingError(
            f"fg.jit: {label!r} changes a traced array in place and returns nothing; use its "
            f"functional form (e.g. y = np.sort(x) rather than x.sort())")
    return TracingError(
        f"fg.jit: {label!r} of a traced value gives a Python {type(o).__name__}, which needs "
        f"the values; compute it outside the jitted function or with array ops")


def _is_value(x: Any) -> bool:
    """Whether a function result can be a program value (an array or a number)."""
    return isinstance(x, (np.ndarray, np.generic)) or type(x) in _PY_SCALARS


def _concrete(tree: Any) -> Any:
    if type(tree) is TracedArray:
        return tree._value
    if isinstance(tree, tuple):
        return tuple(_concrete(x) for x in tree)
    if isinstance(tree, list):
        return [_concrete(x) for x in tree]
    if isinstance(tree, dict):
        return {k: _concrete(v) for k, v in tree.items()}
    return tree


def _refs(tree: Any, tracer: "Tracer | None" = None) -> Any:
    """``tree`` with traced arrays replaced by their Vars and NumPy arrays by the program's
    constants (:meth:`Tracer.constant_array`)."""
    t = type(tree)
    if t is TracedArray:
        return tree._var
    if t is np.ndarray and tracer is not None:
        return tracer.constant_array(tree)
    if t is tuple:
        return tuple(_refs(x, tracer) for x in tree)
    if t is list:
        return [_refs(x, tracer) for x in tree]
    if t is dict:
        return {k: _refs(v, tracer) for k, v in tree.items()}
    if isinstance(tree, (tuple, list, dict)):  # subclasses (a namedtuple): as they are
        return tree
    return tree


#: closed-over arrays up to this many elements are copied into the program and compared
#: with their value at trace time on every call; larger ones are read where they are and
#: watched by a sample of their elements
_SNAPSHOT_ELEMS = 1 << 16
_SAMPLE = 64

# NumPy functions whose output shape depends on their input's values
_VALUE_SHAPED = frozenset({
    "np.nonzero", "np.flatnonzero", "np.argwhere", "np.unique", "np.extract", "np.compress",
    "np.trim_zeros", "np.setdiff1d", "np.intersect1d", "np.union1d", "np.setxor1d",
    "np.unique_values", "np.unique_counts", "np.unique_inverse", "np.unique_all",
    "ndarray.nonzero", "ndarray.compress"})


def _value_dependent(name: str, args: tuple, params: dict, dynamic: bool) -> bool:
    """Whether a step's output shape depends on its input values: a boolean mask used as an
    index, ``np.nonzero`` and its kin, ``np.where(c)`` with one argument. (``dynamic``:
    whether ``params`` hold traced arrays.)"""
    if name in _VALUE_SHAPED or (name == "np.where" and len(args) == 1):
        return True
    if dynamic:
        for x in var_like_leaves(params):
            if type(x) is TracedArray and x.dtype == np.bool_:
                return True
    if len(args) > 1 and name in ("getitem", "ndarray.__getitem__"):
        return any(type(a) is TracedArray and a.dtype == np.bool_ for a in args[1:])
    return False


#: parameter value types that hold no traced array (the common case, checked without a walk)
_ATOMS = frozenset({int, float, bool, str, type(None), slice, type(Ellipsis), type})


def _params_traced(params: dict) -> bool:
    """Whether an op's keyword parameters hold a traced array (a walk only into containers:
    ``axis=1``, ``index=(i, slice(None))`` are answered at once)."""
    for v in params.values():
        t = type(v)
        if t in _ATOMS:
            continue
        if t is TracedArray:
            return True
        if t is tuple:
            for x in v:
                if type(x) not in _ATOMS and _has_traced(x):
                    return True
            continue
        if _has_traced(v):
            return True
    return False


def _plain_params(params: dict) -> bool:
    """Whether every parameter value is a plain atom (``axis=1``, ``index=3``): the step
    stores them as they are (else :func:`_refs` copies containers and snapshots arrays)."""
    for v in params.values():
        if type(v) not in _ATOMS:
            return False
    return True


def var_like_leaves(tree: Any) -> list:
    """The leaves of nested tuples, lists and dicts."""
    out, stack = [], [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        else:
            out.append(x)
    return out


class _FixedShape:
    """A step whose output shape depends on values (``x[mask]``): the program was traced for
    the first call's shapes, so another shape raises :class:`Stale` (the call retraces)
    before anything is written."""

    def __init__(self, fn: Callable, shapes: tuple, name: str, multi: bool) -> None:
        self.fn = fn
        self.shapes = shapes
        self.multi = multi
        self.__name__ = getattr(fn, "__name__", name)
        self.label = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.fn(*args, **kwargs)
        outs = out if self.multi else (out,)
        for o, shape in zip(outs, self.shapes):
            if np.shape(o) != shape:
                raise Stale(f"{self.label}: its output's shape depends on values and changed: "
                            f"{shape} -> {np.shape(o)}")
        return out


def _constant_guards(tracer: Tracer) -> list[Guard]:
    """Guards that the NumPy arrays the program holds as constants still have the values
    they had when traced (a changed one retraces). Arrays that died with the trace (made
    inside the function) need none; views made while tracing are kept (see
    :meth:`Tracer.constant_array`)."""
    guards = []
    whole = {id(ref()) for ref, snap in tracer.consts.values() if snap is not ref()}
    whole.update(id(a) for a, snap in tracer.reached if snap is not None)
    for ref, snap in tracer.consts.values():
        a = ref()
        if a is None or type(ref) is _Kept and id(_root(a)) in whole:
            continue  # (a view of an array compared in full: it cannot change alone)
        what = f"a closed-over NumPy array (shape {a.shape}, {a.dtype})"
        if snap is not a:
            guards.append(Guard(functools.partial(_same_values, ref, snap), True, what))
        else:
            guards.append(Guard(_sample_check(ref, a), True, what))
    return guards


def _root(a: np.ndarray) -> Any:
    """The object whose memory the view ``a`` shows (its last ``base``)."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _tensor_values(ref: Any, snap: np.ndarray) -> bool:
    t = ref()
    return True if t is None else _same_values(lambda: np.asarray(t._data), snap)


def _same_values(ref: Any, snap: np.ndarray) -> bool:
    a = ref()
    if a is None:
        return True  # nothing can change it any more
    if a.shape != snap.shape or a.dtype != snap.dtype:
        return False
    # identical bits are equal values (NaN to NaN): the cheap check (a small array's bytes
    # compared as one string, a large one's as words in place)
    if a.nbytes <= _SMALL_BYTES and a.dtype.kind in "biufc":
        if a.tobytes() == snap.tobytes():
            return True
    elif _same_bits(a, snap):
        return True
    return bool(np.array_equal(a, snap, equal_nan=a.dtype.kind in "fc"))


def _same_bits(a: np.ndarray, snap: np.ndarray) -> bool:
    """Whether ``a`` and ``snap`` (a C-ordered copy of the same shape and dtype) hold the same
    bytes, compared as unsigned words: a tenth of ``np.array_equal(..., equal_nan=True)``'s
    time on floats (which tests every element for NaN). False when it cannot tell (``a`` not
    C-ordered, or not numbers); the caller then compares values.

    >>> x = np.array([1.0, np.nan]); _same_bits(x, x.copy()), _same_bits(x, np.array([1.0, 2.0]))
    (True, False)
    """
    if a.dtype.kind not in "biufc" or not (a.flags.c_contiguous and snap.flags.c_contiguous):
        return False
    size = a.dtype.itemsize
    word = _WORDS[8 if size % 8 == 0 else 4 if size % 4 == 0 else 2 if size % 2 == 0 else 1]
    return bool((a.reshape(-1).view(word) == snap.reshape(-1).view(word)).all())


#: arrays up to this size are compared by their bytes (a copy costs less than a ufunc call)
_SMALL_BYTES = 16384
_WORDS = {8: np.dtype(np.uint64), 4: np.dtype(np.uint32), 2: np.dtype(np.uint16),
          1: np.dtype(np.uint8)}


def _same_sample(ref: Any, shape: tuple, dtype: np.dtype, idx: Any, sample: np.ndarray) -> bool:
    """Whether the array ``ref`` names still holds ``sample`` at ``idx``: the same bytes (the
    cheap check, run at every call), else equal values (NaN to NaN, -0.0 to 0.0)."""
    a = ref()
    if a is None:
        return True
    if a.shape != shape or a.dtype != dtype:
        return False
    got = a[idx]
    if dtype.kind in "biufc" and got.tobytes() == sample.tobytes():
        return True
    return bool(np.array_equal(got, sample, equal_nan=dtype.kind in "fc"))


class _Kept:
    """A strong reference that reads like a weak one (``ref()``): a view the guards keep."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


#: at most this many arrays the function reaches are compared in full at every call, with at
#: most this many bytes in all (4 MiB: some 0.3 ms a call); the rest by a sample
_REACHED_ARRAYS = 256
_REACHED_BYTES = 1 << 22


def _reached_arrays(fn: Callable) -> tuple[list, list]:
    """What ``fn`` reaches — its closure, the globals its code names, containers and
    functions found there, a few levels deep — before it runs: ``(arrays, bindings)``.

    ``arrays``: ``(array, snapshot or None)`` for each NumPy array: what the trace computes
    from them with NumPy (``c.sum()``, ``c.T @ c``) never reaches the tracer, so their values
    are compared at each call instead (snapshot None: a sample, for the arrays past the
    budget). ``bindings``: ``(place, name, value)`` for each closed-over name or global bound
    to an array or a number (a cell, or a module's globals), and ``(container, keys,
    values)`` for the arrays and numbers in each list or dict found: the trace baked the
    values, so the places must still hold them."""
    found: list[tuple] = []
    bindings: list[tuple] = []
    seen: set = set()
    budget = [_REACHED_ARRAYS, _REACHED_BYTES]
    stack: list = []
    for place, name, value in _places_of(fn):
        stack.append((value, 0))
        if place is not None and (type(value) is np.ndarray or isinstance(value, _NUMBERS)):
            bindings.append((place, name, value))
    while stack and len(seen) < 10_000:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > 3:
            continue
        seen.add(id(obj))
        if type(obj) is np.ndarray:
            if obj.dtype.kind in "biufc" and obj.size:
                full = budget[0] > 0 and obj.nbytes <= budget[1]
                if full:
                    budget[0] -= 1
                    budget[1] -= obj.nbytes
                found.append((obj, np.array(obj, copy=True) if full else None))
        elif isinstance(obj, tuple):
            stack.extend((v, depth + 1) for v in obj)
        elif isinstance(obj, (list, dict)):
            items = list(obj.items() if isinstance(obj, dict) else enumerate(obj))
            stack.extend((v, depth + 1) for _, v in items)
            held = [(k, v) for k, v in items
                    if type(v) is np.ndarray or isinstance(v, _NUMBERS)][:_HELD_ITEMS]
            if held:  # (another array or number put in its place: the trace baked this one)
                bindings.append((obj, tuple(k for k, _ in held), tuple(v for _, v in held)))
        elif callable(obj) and not isinstance(obj, (type, Tensor)) and not _library(obj):
            stack.extend((r, depth + 1) for r in _roots_of(obj))
    return found, bindings


#: at most this many arrays and numbers of one closed-over list or dict are watched in place
_HELD_ITEMS = 4096


_NUMBERS = (int, float, complex, np.generic)


def _places_of(fn: Any, names: Callable[[Any], set] | None = None) -> list[tuple]:
    """``(place, name, value)`` for what ``fn`` reaches: each closed-over cell (``name`` its
    variable) and each global its code loads (``names(code)``, by default
    :func:`_global_loads`; ``place`` the globals dict) that is bound; a partial's function
    and arguments and a wrapper's ``__wrapped__`` with no place."""
    if isinstance(fn, functools.partial):
        return [(None, None, v) for v in (fn.func, *fn.args, *fn.keywords.values())]
    out: list = [(None, None, w) for w in (getattr(fn, "__wrapped__", None),) if w is not None]
    code = getattr(fn, "__code__", None)
    if code is None:
        return out
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            out.append((cell, name, cell.cell_contents))
        except ValueError:  # an empty cell
            pass
    g = getattr(fn, "__globals__", {})
    out.extend((g, n, g[n]) for n in (names or _global_loads)(code) if n in g)
    return out


def _global_loads(code: Any) -> set:
    """The names ``code`` and the functions nested in it load as globals (not attribute
    names, which ``co_names`` also holds: ``opt.step()`` does not read a global ``step``)."""
    names: set = set()
    codes = [code]
    while codes:
        c = codes.pop()
        names.update(i.argval for i in dis.get_instructions(c)
                     if i.opname in ("LOAD_GLOBAL", "LOAD_NAME"))
        codes.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    return names


def _code_names(code: Any) -> set:
    """The global (and attribute) names ``code`` and the functions nested in it use."""
    names: set = set()
    codes = [code]
    while codes:
        c = codes.pop()
        names.update(c.co_names)
        codes.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    return names


def _binding_guards(bindings: list) -> list[Guard]:
    """A closed-over name or a global the function names, rebound to another array or
    number (``lr = 0.2``), or another array or number put in a closed-over list or dict
    (``state[0] = h``), retraces: the trace baked the value it had."""
    guards = []
    for place, name, value in bindings:
        if isinstance(place, (list, dict)) and type(name) is tuple:  # a container's items
            where = f"at {name[0]!r}" if len(name) == 1 else f"at one of its {len(name)} places"
            guards.append(Guard(_Holds(place, name, value), True,
                                f"an array or number in a closed-over {type(place).__name__} "
                                f"({where}: replaced)"))
            continue
        read = functools.partial(_cell_value, place) if isinstance(place, types.CellType) \
            else functools.partial(_global_value, place, name)
        kind = "closed-over name" if isinstance(place, types.CellType) else "global"
        guards.append(Guard(functools.partial(_still_bound, read, value), True,
                            f"the value of the {kind} {name!r}"))
    return guards


def _cell_value(cell: Any) -> Any:
    return cell.cell_contents


def _global_value(g: dict, name: str) -> Any:
    return g[name]


def _still_bound(read: Callable[[], Any], value: Any) -> bool:
    """The same array, or a number of the same type and value (NaN to NaN)."""
    now = read()
    if now is value:
        return True
    if type(now) is not type(value) or type(value) is np.ndarray:
        return False
    return bool(now == value) or (now != now and value != value)


#: packages whose functions the search of :func:`_reached_arrays` does not enter: their
#: module-level arrays are not the user's values
_LIBRARIES = frozenset({"numpy", "fungrad", "scipy", "numba", "builtins", "functools",
                        "math", "operator", "typing", "collections", "jax", "torch"})


def _library(obj: Any) -> bool:
    module = getattr(obj, "__module__", None)
    return isinstance(module, str) and module.partition(".")[0] in _LIBRARIES


def _reached_guards(tracer: Tracer) -> list[Guard]:
    """Guards that the arrays of :func:`_reached_arrays` the program does not hold as
    constants (those have their own) still have the values they had."""
    held = {id(ref()) for ref, _ in tracer.consts.values()}
    guards = []
    for a, snap in tracer.reached:
        if id(a) in held:
            continue
        check = _sample_check(weakref.ref(a), a) if snap is None else \
            functools.partial(_same_values, weakref.ref(a), snap)
        guards.append(Guard(check, True, f"a NumPy array the function reaches (shape "
                                         f"{a.shape}, {a.dtype}; its closure or globals)"))
    return guards


def _sample_check(ref: Any, a: np.ndarray) -> Callable[[], bool]:
    """Whether the array ``ref`` names (``a`` now) still holds, at a sample of its elements,
    what ``a`` holds now."""
    flat = np.linspace(0, a.size - 1, _SAMPLE).astype(np.intp) if a.size else \
        np.zeros(0, np.intp)
    idx = np.unravel_index(flat, a.shape) if a.ndim else ()
    return functools.partial(_same_sample, ref, a.shape, a.dtype, idx,
                             np.array(a[idx], copy=True))


# --------------------------------------------------------------------------------------------
# one trace
# --------------------------------------------------------------------------------------------


def trace(fn: Callable, args: tuple, kwargs: dict, static: dict | None = None,
          name: str | None = None, with_vjp: bool = False) -> tuple[Program, Tracer]:
    """Trace ``fn(*args, **kwargs)`` into a Program; ``static`` maps argument positions that
    are static to their values (passed through untraced). ``with_vjp``: also trace the
    backward of the outputs that are Tensors recorded for backward, from cotangents that
    are values of the program (``tracer.vjp`` then holds them: see :mod:`._on_tape`)."""
    static = static or {}
    tracer = Tracer(name or getattr(fn, "__name__", "step"))
    dyn_args = [a for i, a in enumerate(args) if i not in static]
    leaves, spec = flatten((dyn_args, kwargs))
    previous = recording.thread.hook
    if previous is not None:
        raise TracingError("fg.jit: already tracing on this thread")
    recording.thread.hook = tracer
    # A trace allocates an object or more per recorded op and frees almost none until it
    # ends: Python's cyclic collector would rescan the growing heap again and again (time
    # quadratic in the program's length). It runs once, after the trace (as backward does).
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        tracer.reached, bindings = _reached_arrays(fn)  # (before fn runs: what it reads)
        traced_leaves = _trace_leaves(tracer, leaves)
        dyn_t, kw_t = unflatten(spec, traced_leaves)
        it = iter(dyn_t)
        call_args = [static[i] if i in static else next(it) for i in range(len(args))]
        result = fn(*call_args, **kw_t)
        if with_vjp:
            from ._on_tape import trace_backward  # noqa: PLC0415

            tracer.vjp = trace_backward(tracer, result)
        program = _finish(tracer, result)
        program.guards.extend(_through_containers(fn, program, tracer))
        program.guards.extend(_reached_guards(tracer) + _binding_guards(bindings))
    finally:
        recording.thread.hook = None
        try:
            tracer.restore()
        finally:
            tracer.open = False
            # the argument proxies point back at the tracer: let it be freed when dropped,
            # not by a cyclic collection (which fg.jit postpones past the compile, see api)
            tracer.arg_inputs = []
            if collecting:
                gc.enable()
    return program, tracer


def _trace_leaves(tracer: Tracer, leaves: list) -> list:
    out = []
    for k, x in enumerate(leaves):
        if isinstance(x, Tensor):
            tracer.arg_index[id(x)] = k
            tracer.capture(x, Binding("arg", key=k))
            out.append(x)
        elif is_dynamic_leaf(x):
            proxy = tracer.input(x, Binding("arg", key=k))
            if isinstance(x, np.ndarray):
                tracer.arg_inputs.append((k, proxy, proxy._var))
            out.append(proxy)
        else:
            out.append(x)  # None, strings...: part of the signature, passed as they are
    return out


def _finish(tracer: Tracer, result: Any) -> Program:
    leaves, spec = flatten(result)
    outputs, kinds = [], []
    tape_outputs = False
    for x in leaves:
        if isinstance(x, Tensor):
            tape_outputs = tape_outputs or (x.requires_grad and (x._op is not None
                                                                 or x._parent is not None))
            d = x._data
            outputs.append(d._var if type(d) is TracedArray else np.array(d))
            kinds.append("tensor")
        elif type(x) is TracedArray:
            x._tracer is tracer or x._tracer.check_open()
            outputs.append(x._var)
            kinds.append("array")
        else:
            outputs.append(x)
            kinds.append("const")
    effects = tracer.effects()
    for k, proxy, var0 in tracer.arg_inputs:  # an argument array changed in place (x += 1)
        if proxy._var is not var0:
            effects.append(Effect("write", Binding("arg", key=k), proxy._var))
    grad_guards = tracer.grad_guards()
    guards = list(tracer.guards) + _constant_guards(tracer)
    if tracer.tracked:  # captured Tensors: one replaced on its Module retraces
        guards.append(Guard(recording.structure_version, tracer.structure0,
                            "a Module attribute (a parameter or sub-module replaced)"))
    if grad_guards:
        guards.append(_grad_pattern_guard([t for t, _ in grad_guards],
                                          [none for _, none in grad_guards]))
    return Program(tracer.inputs, tracer.steps, outputs, spec, kinds, effects, guards,
                   len(tracer.vars), tracer.name, tape_outputs)


def _grad_pattern_guard(tensors: list, none: list) -> Guard:
    """Which of ``tensors`` have no ``.grad``: checked per call, in C loops where it can be
    (a uniform pattern — all or none without a gradient — is one ``count``)."""
    get = operator.attrgetter("_grad")
    n_none = sum(none)
    if n_none in (0, len(none)):
        return Guard(lambda: sum(map(operator.is_, map(get, tensors), itertools.repeat(None))),
                     n_none,
                     "how many captured Tensors have no .grad")
    expected = tuple(none)
    return Guard(lambda: tuple(g is None for g in map(get, tensors)), expected,
                 "which captured Tensors have a .grad")
