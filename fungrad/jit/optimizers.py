"""Optimizer steps and gradient clipping under ``fg.jit``, lowered to ops on traced arrays.

An optimizer's ``step()`` updates packed buffers in place with Numba kernels and reads its
hyperparameters and state as Python values — neither can be traced as it is. While a jitted
function is being traced, ``Optimizer.step``, ``Optimizer.zero`` and
``fungrad.optim.clip_grad_norm`` hand over to the tracer (they check the thread's
``tape.state.hook``, as ``Tensor.data`` does), which records the same arithmetic as program
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

import functools
from typing import Any, Callable

import numpy as np

from .. import optim as _optim
from ..errors import DTypeError
from ..kernels import _optim_twins as _twins
from .program import Binding, Effect, Guard

__all__ = ["EagerCall", "traced_step", "traced_zero", "traced_clip_grad_norm"]



class EagerCall(Exception):
    """Internal: this call must run eagerly (an optimizer creates its state in it)."""


def traced_step(tracer, opt, original: Callable, zero: bool = True) -> None:
    """``opt.step(zero)`` while tracing: SGD and Adam lowered, other classes as written."""
    lower = _LOWERINGS.get(type(opt))
    if lower is None:
        return original(opt, zero)
    hp = opt._hparams()  # checked as the eager step checks them
    live = _live(opt)
    layout = _opt_layout(opt, [p for _, p, _ in live])
    if layout is None:  # the optimizer's own first step lays out its state: run it eagerly
        raise EagerCall(f"{type(opt).__name__}: a parameter takes its first step")
    tracer.guards.append(Guard(functools.partial(_opt_layout_now, opt), id(layout),
                               f"{type(opt).__name__}'s state layout"))
    lower(tracer, opt, live, hp)
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
    getter = functools.partial(_opt_state_array, opt, p, name)
    return tracer.input(getter(), Binding("call", getter)), getter


def _store(getter: Callable[[], np.ndarray]) -> Callable[[Any], None]:
    def store(value):
        np.copyto(getter(), value, casting="unsafe")
    store.reads = getter  # the compiled runner may update the array in place
    return store


# -- SGD ---------------------------------------------------------------------------------------


def _sgd(tracer, opt, live, hp) -> None:
    momentum0 = hp["momentum"] == 0.0
    tracer.guards.append(Guard(lambda: float(opt.momentum) == 0.0, momentum0,
                               "SGD momentum is zero"))
    lr = _number(tracer, opt, "alpha")
    momentum = None if momentum0 else _number(tracer, opt, "momentum")
    for _, p, g in live:
        pd = p.data
        g = g if g.dtype == pd.dtype else g.astype(pd.dtype)
        if momentum is None:
            pd -= lr * g
            continue
        v, getter = _state_input(tracer, opt, p, "momentum_buffer")
        v = v * momentum + g  # velocity *= momentum; velocity += g
        tracer.extra_effects.append(Effect("call", _store(getter), v._var))
        pd -= lr * v


# -- Adam --------------------------------------------------------------------------------------


def _adam(tracer, opt, live, hp) -> None:
    decay0 = hp["weight_decay"] == 0.0
    tracer.guards.append(Guard(lambda: float(opt.weight_decay) == 0.0, decay0,
                               "Adam weight_decay is zero"))
    lr = _number(tracer, opt, "lr")
    beta1 = _number(tracer, opt, "betas", lambda: float(opt.betas[0]))
    beta2 = _number(tracer, opt, "betas", lambda: float(opt.betas[1]))
    eps = _number(tracer, opt, "eps")
    decay = _number(tracer, opt, "weight_decay")
    for _, p, g in live:
        pd = p.data
        dt = pd.dtype
        g = g if g.dtype == dt else g.astype(dt)
        m, m_get = _state_input(tracer, opt, p, "exp_avg")
        v, v_get = _state_input(tracer, opt, p, "exp_avg_sq")
        count = tracer.input(_opt_steps(opt, p), Binding("call", functools.partial(
            _opt_steps, opt, p)))
        step_size, bc2 = tracer.call(_twins.adam_scalars, (count + 1, lr, beta1, beta2, dt.name),
                                     {}, "adam_scalars")
        b1, omb1, b2, omb2, eps_, wd = tracer.call(
            _twins.adam_consts, (beta1, beta2, eps, decay, dt.name), {}, "adam_consts")
        if not decay0:
            g = g + wd * pd
        m_new = m * b1 + omb1 * g
        v_new = v * b2 + omb2 * g * g
        denom = np.sqrt(v_new) / bc2 + eps_
        pd -= (m_new / denom) * step_size
        tracer.extra_effects += [Effect("call", _store(m_get), m_new._var),
                                 Effect("call", _store(v_get), v_new._var)]


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


# -- what the lowering reads of an optimizer beyond its public attributes ---------------------


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
    ``del opt.state[p]``, as the eager step then starts afresh)."""
    g, k = opt._layout.where[id(p)]
    return g.view(g.state[name], k)


def _opt_steps(opt, p) -> int:
    g, k = opt._layout.where[id(p)]
    return int(g.steps[k])


class _StepCounter:
    """One more step taken by each of ``params`` (what the eager step counts): their
    positions in the layout's per-group count arrays, found once (the program is guarded
    on the layout's identity)."""

    def __init__(self, opt, params: list) -> None:
        where = opt._layout.where
        parts: dict[int, tuple] = {}
        for p in params:
            g, k = where[id(p)]
            parts.setdefault(id(g), (g.steps, []))[1].append(k)
        self.parts = [(steps, None if len(ks) == len(steps) else np.array(ks, np.intp))
                      for steps, ks in parts.values()]

    def __call__(self, value=None) -> None:
        for steps, ks in self.parts:
            if ks is None:
                steps += 1
            else:
                steps[ks] += 1


_LOWERINGS = {_optim.SGD: _sgd, _optim.Adam: _adam}
