"""Optimizer steps and gradient clipping under ``fg.jit``, traced as ops on traced arrays.

An optimizer's ``step()`` updates packed buffers in place with Numba kernels and reads its
hyperparameters and state as Python values — neither can be traced as it is. While a jitted
function is being traced, ``Optimizer.step``, ``Optimizer.zero`` and
``fungrad.optim.clip_grad_norm`` hand over to the tracer (they check the thread's
``recording.thread.hook``, as ``Tensor.data`` does), which records the same arithmetic as program
steps with the functions here:

- hyperparameters (``opt.alpha``/``opt.lr``, ``momentum``, Adam's ``betas``, ``eps``,
  ``weight_decay``) and Adam's step counts are program inputs read from the optimizer at run
  time, so a changed learning rate or a schedule takes effect on the next call without
  retracing; whether ``momentum`` / ``weight_decay`` are zero is a guard (a change retraces);
- the state arrays (momentum buffers, Adam's moments) are inputs too, and their updates are
  effects, committed with the parameters only when the whole step has succeeded.

A parameter's state is created by the optimizer's own first step, so a call whose step would
create state (the first) runs eagerly; the next call traces (see :class:`EagerCall`).
Optimizers of other classes run their own ``step`` under the trace (fine when it is written
with operators and ``fg`` functions). What these functions read of an optimizer beyond its
public attributes is in the ``_opt_*`` functions at the end.

>>> import numpy as np, fungrad as fg
>>> from fungrad.jit import jit
>>> w = fg.Tensor(np.array([1.0, -2.0]), autograd=True)
>>> opt = fg.optim.SGD([w], alpha=0.5)
>>> @jit
... def step():
...     (w * w).sum().backward()
...     opt.step()
>>> step(); w.data
array([0., 0.])
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import Counter
from typing import Any, Callable

import numpy as np

from ..optim import optimizers as _optim
from ..optim import rules as _rules
from ..kernels.optim_formulas import adam_scalars
from ..errors import DTypeError
from .program import Binding, Effect, Guard, Var, var_refs

__all__ = ["EagerCall", "DeferredStep", "no_deferral", "settle_deferred", "traced_step",
           "traced_zero", "traced_clip_grad_norm"]



class EagerCall(Exception):
    """Internal: this call must run eagerly (an optimizer creates its state in it)."""


def traced_step(tracer, opt, original: Callable, zero: bool = True) -> None:
    """``opt.step(zero)`` while tracing: SGD's and Adam's rules run on traced arrays, with
    their hyperparameters and state as program inputs; other classes as written."""
    traced = _TRACED_STEPS.get(type(opt))
    if traced is None:
        return original(opt, zero)
    hp = opt._hparams()  # checked as the eager step checks them
    live = _live(opt)
    layout = _opt_layout(opt, [p for _, p, _ in live])
    if layout is None:  # the optimizer's own first step lays out its state: run it eagerly
        raise EagerCall(f"{type(opt).__name__}: a parameter takes its first step")
    if _worth_deferring(opt, layout, live) and _may_defer(tracer):
        _defer(tracer, opt, original, live, zero)
        return None
    tracer.guards.append(Guard(functools.partial(_opt_layout_now, opt), id(layout),
                               f"{type(opt).__name__}'s state layout"))
    traced(tracer, opt, live, hp)
    for _, p, _ in live:
        p.bump_version()
    tracer.extra_effects.append(Effect("call", _StepCounter(opt, [p for _, p, _ in live]), ()))
    if zero:
        traced_zero(opt)
    return None


def traced_zero(opt) -> None:
    """``opt.zero()`` while tracing: every existing gradient set to zero, as a program step."""
    for p in opt.parameters:
        g = p.grad
        if g is not None:
            g.data[...] = 0
            g.bump_version()


def _live(opt) -> list:
    """``(index, parameter, gradient traced array)`` for parameters with a gradient, checked
    as the eager step checks them (a bad gradient raises before anything is recorded)."""
    name = f"{type(opt).__name__}.step"
    live = []
    for i, p in enumerate(opt.parameters):
        g = p.grad
        if g is None:
            continue
        gd = g.data
        if tuple(gd.shape) != tuple(p.data.shape):
            raise ValueError(f"{name}: parameter {i} has shape {tuple(p.data.shape)} but its "
                             f"gradient has shape {tuple(gd.shape)}; nothing was updated")
        if gd.dtype.kind not in "biuf":
            raise DTypeError(f"{name}: parameter {i} has a gradient of dtype {gd.dtype}")
        live.append((i, p, gd))
    return live


def _number(tracer, obj, attr: str, read: Callable[[], float] | None = None):
    """A number read from the optimizer each time the program runs."""
    if read is None:
        return tracer.input(float(getattr(obj, attr)), Binding("attr", obj, attr))
    return tracer.input(float(read()), Binding("call", read))


def _state_input(tracer, opt, p, name: str):
    getter = _StateArray(opt, p, name)
    return tracer.input(getter(), Binding("call", getter)), getter


def _store(getter: Callable[[], np.ndarray]) -> Callable[[Any], None]:
    def store(value):
        np.copyto(getter(), value, casting="unsafe")
    store.reads = getter  # the compiled runner may update the array in place
    return store


# -- SGD and Adam: their rules of fungrad.optim.rules, run on traced arrays -------------------


def _run_rule(tracer, opt, live, hp, names) -> None:
    """Each live parameter's update by the optimizer's rule, on traced arrays: its data, its
    gradient and its state arrays (program inputs read from the optimizer's buffers when the
    program runs, written back as effects once the whole step has succeeded)."""
    hp = _rules.Prepared(hp)  # what the rule derives from hp (casts...): once per dtype
    bias = _shared_bias(tracer, opt, live) if opt._EXPORT_STEP else {}
    for _, p, g in live:
        state, getters = {}, {}
        for name in names:
            state[name], getters[name] = _state_input(tracer, opt, p, name)
        shared = bias.get(np.dtype(p.data.dtype))
        if shared is not None:  # this update's bias-corrected scalars, as the eager step's
            state["bias"] = shared
        elif opt._EXPORT_STEP:  # the step count: read at run time, this update's number
            state["step"] = tracer.input(_opt_steps(opt, p), Binding(
                "call", functools.partial(_opt_steps, opt, p))) + 1
        opt._RULE(p.data, g, state, hp)
        tracer.extra_effects += [Effect("call", _store(getters[name]), state[name]._var)
                                 for name in names]


def _shared_bias(tracer, opt, live: list) -> dict:
    """``{dtype: (step_size, bc2)}``: Adam's bias-corrected scalars for this update, as
    program inputs computed when the program runs (by :func:`adam_scalars`, from the
    optimizer's step count and hyperparameters, as its eager step computes them) — when every
    live parameter has taken the same number of steps, which is guarded (else each
    parameter's step count is an input and the program computes its scalars)."""
    params = [p for _, p, _ in live]
    if not params or len({_opt_steps(opt, p) for p in params}) != 1:
        return {}
    counts = _UniformSteps(opt, params)
    tracer.guards.append(Guard(counts, True, f"{type(opt).__name__}: every parameter has "
                                             "taken the same number of steps"))
    out = {}
    for dt in {np.dtype(p.data.dtype) for p in params}:
        last: list = [None]  # the two scalars' inputs and values, computed once a call
        size, bc2 = _BiasScalar(opt, counts, dt, 0, last), _BiasScalar(opt, counts, dt, 1, last)
        out[dt] = (tracer.input(size(), Binding("call", size)),
                   tracer.input(bc2(), Binding("call", bc2)))
    return out


def _step_slots(opt, params: list) -> list[tuple[np.ndarray, list[int]]]:
    """``params``' step counts in the optimizer's layout: per parameter group, its count array
    and the positions of ``params`` in it."""
    where = opt._layout.where
    parts: dict[int, tuple] = {}
    for p in params:
        g, k = where[id(p)]
        parts.setdefault(id(g), (g.steps, []))[1].append(k)
    return list(parts.values())


class _UniformSteps:
    """Whether the parameters have all taken the same number of steps (their positions in
    the layout's per-group count arrays found once: the program is guarded on the layout)."""

    def __init__(self, opt, params: list) -> None:
        self.parts = [(steps, np.array(ks, np.intp)) for steps, ks in _step_slots(opt, params)]

    def count(self) -> int:
        steps, ks = self.parts[0]
        return int(steps[ks[0]])

    def __call__(self) -> bool:
        first = self.count()
        return all(bool((steps[ks] == first).all()) for steps, ks in self.parts)


class _BiasScalar:
    """One of :func:`adam_scalars` for the coming update, in a 0-d array of ``dtype`` kept
    from call to call (the program reads it where it is). The two scalars of one dtype share
    ``last`` (a one-item list: the inputs :func:`adam_scalars` last had, and its result), so
    a call computes them once."""

    def __init__(self, opt, counts: _UniformSteps, dtype: np.dtype, which: int,
                 last: list | None = None) -> None:
        self.opt = opt
        self.counts = counts
        self.which = which
        self.dtype = dtype
        self.value = np.zeros((), dtype)
        self.last = last if last is not None else [None]

    def __call__(self) -> np.ndarray:
        opt = self.opt
        b1, b2 = opt.betas
        key = (self.counts.count() + 1, float(opt.lr), float(b1), float(b2))
        entry = self.last[0]  # (inputs, scalars), replaced whole (another thread may read it)
        if entry is None or entry[0] != key:
            entry = self.last[0] = (key, adam_scalars(*key, self.dtype))
        self.value[()] = entry[1][self.which]
        return self.value


def _guarded_zero(tracer, opt, attr: str, value: float, what: str) -> bool:
    """Whether ``opt.<attr>`` is zero, as a guard (a change retraces)."""
    zero = value == 0.0
    tracer.guards.append(Guard(lambda: float(getattr(opt, attr)) == 0.0, zero, what))
    return zero


def _sgd(tracer, opt, live, hp) -> None:
    heavy = not _guarded_zero(tracer, opt, "momentum", hp["momentum"], "SGD momentum is zero")
    rule_hp = {"lr": _number(tracer, opt, "alpha"),
               "momentum": _number(tracer, opt, "momentum") if heavy else 0.0}
    _run_rule(tracer, opt, live, rule_hp, ("momentum_buffer",) if heavy else ())


def _adam(tracer, opt, live, hp) -> None:
    decay = not _guarded_zero(tracer, opt, "weight_decay", hp["weight_decay"],
                              "Adam weight_decay is zero")
    rule_hp = {"lr": _number(tracer, opt, "lr"),
               "beta1": _number(tracer, opt, "betas", lambda: float(opt.betas[0])),
               "beta2": _number(tracer, opt, "betas", lambda: float(opt.betas[1])),
               "eps": _number(tracer, opt, "eps"),
               "weight_decay": _number(tracer, opt, "weight_decay") if decay else 0.0}
    _run_rule(tracer, opt, live, rule_hp, ("exp_avg", "exp_avg_sq"))


# -- the step deferred to the commit -------------------------------------------------------------


#: an optimizer step is deferred (see :class:`DeferredStep`) when it updates at least this many
#: parameters, packed: then the per-parameter instructions of a traced update cost more than
#: one pass of the optimizer's kernel over its flat buffers. With fewer (or large, unpacked)
#: parameters SGD's update in the program is the faster one: fused with the backward, and an
#: embedding's rows updated sparsely. Adam's is not (below).
DEFER_MIN_PARAMS = 64

#: Adam's step is deferred too when the parameters it updates hold at least this many numbers
#: in all, however few they are: its traced update is a fused group of some 28 instructions
#: per element (about 2.6 ns an element in float32), the optimizer's kernel one pass (about
#: 0.5 ns: two divisions and a square root), and from here on that pays for the eager step's
#: own Python (some 30-60 µs). SGD's traced update is one ``sgd_dense`` pass already: it is
#: deferred for the count alone.
ADAM_DEFER_MIN_SIZE = 32768

#: ... and, when the optimizer does not pack them, when they hold at least this many numbers
#: on average: its eager step then updates each with one kernel call (about 5 µs of Python a
#: parameter, paid back by ~2 ns an element; see ``Adam._update_group``). Many small unpacked
#: parameters (``flat=False``) keep the traced update, one program for all of them.
ADAM_DEFER_MEAN_SIZE = 4096


def _worth_deferring(opt, layout, live: list) -> bool:
    """Whether ``opt``'s step is left to the optimizer (see :class:`DeferredStep`)."""
    if layout.packed and len(live) >= DEFER_MIN_PARAMS:
        return True
    if type(opt) is not _optim.Adam:
        return False
    size = sum(int(g.size) for _, _, g in live)
    return size >= ADAM_DEFER_MIN_SIZE and (
        layout.packed or size >= ADAM_DEFER_MEAN_SIZE * len(live))


class DeferredStep:
    """The optimizer's own eager step, run as the program's last effect.

    A traced function that steps its optimizer and reads nothing the step changes afterwards
    (the book's ``loss.backward(); opt.step()``) leaves the update to the optimizer: the
    program computes the gradients into the ``.grad`` arrays (the optimizer's flat gradient
    buffer when it packs the parameters), and committing the step runs ``opt.step()`` eagerly
    on them — one pass of the optimizer's kernels over its flat buffers, with its step counts,
    state and hyperparameters as they are at that moment, bit for bit as an eager step.

    While tracing, the values the step changes (the parameters, and the gradients it zeroes)
    are replaced by values no step defines (``poison``); :func:`settle_deferred` checks after
    the trace that nothing read them and that the step was the last change to the captured
    state, and otherwise the function is traced again with the step recorded as program steps
    (:func:`no_deferral`).
    """

    def __init__(self, opt, original: Callable, zero: bool) -> None:
        self.opt = opt
        self.original = original
        self.zero = zero
        self.poison: dict[int, tuple] = {}  # poison Var id -> (value before the step, var0)
        self.before: Counter = Counter()  # the captured state's changes at the step
        self.invalid = False  # a second step in the same trace
        self.first = 0  # the steps recorded before it (they cannot read what it changes)
        #: the Tensors whose ``.grad`` the program accumulates into in place (settle sets it)
        self.accumulated: frozenset = frozenset()
        self._covers: tuple = (None, False)  # (layout, whether accumulated is all of it)
        #: whether the layout may be claimed before the program runs (see settle_deferred)
        self.claimable = False
        self._local = threading.local()  # this thread's claim (see begin)

    def begin(self):
        """Before the compiled program runs: claim the optimizer's packed layout as its eager
        step would (every parameter and ``.grad`` still its view of the flat buffers) and
        bump the versions the call will change — the parameters, and the gradients for the
        program's accumulation and the step's zeroing. Returns the layout (whose arrays the
        program's inputs then need not be checked against one by one) or None."""
        self._local.claim = None
        opt = self.opt
        layout = opt._layout
        if not self.claimable or layout is None or not layout.packed or opt._carry is not None:
            return None
        try:
            hp = opt._hparams()
        except Exception:  # noqa: BLE001 (the eager step raises it, after the backward)
            return None
        if self._covers[0] is not layout:
            ids = self.accumulated
            self._covers = (layout, len(ids) == len(layout.params)
                            and all(id(p) in ids for p in layout.params))
        backward = 1 if self._covers[1] else 0  # else the commit bumps them one by one
        grads = backward + (1 if self.zero else 0)
        if not layout.claim(opt._params, True, grads):
            return None
        self._local.claim = (layout, grads, backward, hp)
        return layout

    def abort(self, ran: bool = False) -> None:
        """The call failed after :meth:`begin`: take back the version bumps of what did not
        happen (``ran``: the program ran, its gradients were written: keep those)."""
        claim = getattr(self._local, "claim", None)
        self._local.claim = None
        if claim is not None:
            claim[0].unclaim(True, claim[1] - (claim[2] if ran else 0))

    def bumped_grads(self) -> bool:
        """Whether this thread's claim has bumped the accumulated gradients' versions."""
        claim = getattr(self._local, "claim", None)
        return claim is not None and claim[2] == 1

    def __call__(self, value=None) -> None:
        claim = getattr(self._local, "claim", None)
        self._local.claim = None
        if claim is None or self.opt._layout is not claim[0]:
            self.original(self.opt, self.zero)
        else:
            self.opt._step_claimed(claim[0], self.zero, claim[3])

    def __repr__(self) -> str:
        return f"{type(self.opt).__name__}.step(zero={self.zero}) deferred"


_DEFER = threading.local()


@contextlib.contextmanager
def no_deferral():
    """Trace optimizer steps as program steps (not deferred) inside this block."""
    previous = getattr(_DEFER, "off", False)
    _DEFER.off = True
    try:
        yield
    finally:
        _DEFER.off = previous


def _may_defer(tracer) -> bool:
    if getattr(_DEFER, "off", False):
        return False
    step = getattr(tracer, "deferred_step", None)
    if step is not None:  # a second step: the first one's values would be needed
        step.invalid = True
        return False
    return True


def _defer(tracer, opt, original: Callable, live: list, zero: bool) -> None:
    step = DeferredStep(opt, original, zero)
    step.before = Counter(map(_effect_key, _state_changes(tracer)))
    changed = [p for _, p, _ in live]
    if zero:
        changed += [p._grad for _, p, _ in live]
    for t in changed:
        arr = t._data  # a traced array: _live read every one
        tr = tracer.tracked.get(id(t))
        var = Var(len(tracer.vars), arr._var.shape, arr._var.dtype)
        tracer.vars.append(var)
        step.poison[var.id] = (arr._var, tr.var0 if tr is not None else None)
        arr._var = var  # in place: every alias of the array sees it
    for p in changed[:len(live)]:
        p.bump_version()
    step.first = len(tracer.steps)
    tracer.deferred_step = step
    tracer.extra_effects.append(Effect("call", step, ()))


def _state_changes(tracer) -> list:
    """The effects the trace has made so far (what :func:`fungrad.jit.tracer.trace` records at
    its end, taken now)."""
    out = tracer.effects()
    for k, proxy, var0 in tracer.arg_inputs:
        if proxy._var is not var0:
            out.append(Effect("write", Binding("arg", key=k), proxy._var))
    return out


def _effect_key(e: Effect) -> tuple:
    t = e.target
    target = (t.kind, id(t.obj), t.key) if isinstance(t, Binding) else id(t)
    ref = e.ref
    if isinstance(ref, np.ndarray):  # a constant (copied each time the effects are listed)
        return e.kind, target, ("const", ref.shape, ref.dtype.str, ref.tobytes())
    ids = (ref.id,) if type(ref) is Var else tuple(v.id for v in var_refs(ref))
    return e.kind, target, ids, ref is None


def settle_deferred(program, tracer) -> bool:
    """Finish a program whose optimizer step was deferred (see :class:`DeferredStep`): the
    effects of the values the step changes are those before it, and the step runs last.
    False when the deferral does not hold (something read or changed what the step changes
    after it): the caller traces again under :func:`no_deferral`."""
    step = getattr(tracer, "deferred_step", None)
    if step is None:
        return True
    poison = step.poison
    if step.invalid:
        return False
    for s in program.steps[step.first:]:  # (the poison Vars were made at the step)
        if any(v.id in poison for v in s.input_vars()):
            return False
    if any(type(v) is Var and v.id in poison for v in program.outputs):
        return False
    effects = []
    for e in program.effects:
        if e.target is step:
            continue
        ref = e.ref
        if type(ref) is Var and ref.id in poison and e.kind in ("data", "grad"):
            before, var0 = poison[ref.id]
            if before is var0:
                continue  # the trace had not changed it before the step
            e = Effect(e.kind, e.target, before)
        elif any(v.id in poison for v in var_refs(ref)):
            return False
        effects.append(e)
    if Counter(map(_effect_key, effects)) != step.before:
        return False  # the captured state changed after the step: order matters
    program.effects[:] = effects + [Effect("call", step, ())]
    # a commit that gives a Tensor a new .grad (the trace set it to None, or made it) changes
    # what the optimizer finds: its step then checks the layout itself, after the commit
    step.claimable = not any(e.kind == "grad" for e in effects)
    step.accumulated = frozenset(id(e.target.obj) for e in effects if e.kind == "data"
                                 and isinstance(e.target, Binding) and e.target.kind == "grad")
    return True


# -- clip_grad_norm ----------------------------------------------------------------------------


def traced_clip_grad_norm(tracer, parameters, max_norm: float):
    """``clip_grad_norm`` while tracing: the norm (summed in float64, as eager) and the scaling
    as program steps; returns the norm as a traced 0-d float64 array (eager: a Python float)."""
    max_norm = _optim._check_hparams("clip_grad_norm", {"max_norm": max_norm})["max_norm"]
    params = _optim._param_list(parameters, "clip_grad_norm")
    grads = []
    for i, p in enumerate(params):
        g = p.grad if isinstance(p, _optim.Tensor) else None
        if g is None:
            continue
        if g.data.dtype.kind != "f":
            raise DTypeError(f"clip_grad_norm: parameter {i} has a gradient of dtype "
                             f"{g.data.dtype}; expected floating point")
        grads.append(g)
    total = 0.0
    for g in grads:
        flat = g.data.reshape(-1).astype(np.float64)
        total = total + np.dot(flat, flat)
    total = np.sqrt(total)
    clip = np.isfinite(total) & (total > max_norm)
    scale = np.where(clip, max_norm / (total + 1e-6), 1.0)
    for g in grads:
        arr = g.data
        arr *= scale.astype(arr.dtype)
        g.bump_version()
    return total


# -- what the traced step reads of an optimizer beyond its public attributes -----------------


def _opt_layout(opt, params: list):
    """The optimizer's state layout if it covers every parameter of ``params``, else None
    (it is made by the optimizer's first step, and remade when the parameters change)."""
    layout = opt._layout
    if layout is None or opt._carry is not None:
        return None
    if any(id(p) not in layout.where for p in params):
        return None
    return layout


def _opt_layout_now(opt) -> int:
    return id(opt._layout) if opt._carry is None else -1


def _opt_state_array(opt, p, name: str) -> np.ndarray:
    """``p``'s state array ``name`` (a view of the optimizer's buffer; zeros after
    ``del opt.state[p]``, as the eager step then starts afresh). The same view object from
    call to call, so that the program finds it bound already."""
    g, k = opt._layout.where[id(p)]
    view = g.views(name)[k]
    return view if view.base is g.state[name] else g.view(g.state[name], k)


class _StateArray:
    """:func:`_opt_state_array` of ``(opt, p, name)``, the view found last returned again
    while the optimizer has the same layout and the state buffer it views is still the
    group's (a state array input is read at every call: the lookups are skipped)."""

    __slots__ = ("opt", "p", "name", "layout", "state", "view")

    def __init__(self, opt, p, name: str) -> None:
        self.opt, self.p, self.name = opt, p, name
        self.layout: Any = None
        self.state: dict = {}
        self.view: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        view = self.view
        layout = self.opt._layout
        if view is not None and layout is self.layout \
                and view.base is self.state.get(self.name):
            return view
        view = _opt_state_array(self.opt, self.p, self.name)
        self.layout, self.state, self.view = layout, layout.where[id(self.p)][0].state, view
        return view


def _opt_steps(opt, p) -> int:
    g, k = opt._layout.where[id(p)]
    return int(g.steps[k])


class _StepCounter:
    """One more step taken by each of ``params`` (what the eager step counts): their
    positions in the layout's per-group count arrays, found once (the program is guarded
    on the layout's identity)."""

    def __init__(self, opt, params: list) -> None:
        self.parts = [(steps, None if len(ks) == len(steps) else np.array(ks, np.intp))
                      for steps, ks in _step_slots(opt, params)]

    def __call__(self, value=None) -> None:
        for steps, ks in self.parts:
            if ks is None:
                steps += 1
            else:
                steps[ks] += 1


_TRACED_STEPS = {_optim.SGD: _sgd, _optim.Adam: _adam}
