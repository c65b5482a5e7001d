"""Optimizer steps and gradient clipping under ``fg.jit``, lowered to ops on traced arrays.

An optimizer's ``step()`` updates arrays in place with Numba kernels, and reads its
hyperparameters and state as Python values — neither can be traced as it is. While a jitted
function is being traced, :func:`install` makes ``Optimizer.step`` and
``fungrad.optim.clip_grad_norm`` record the same arithmetic as program steps instead:

- hyperparameters (``opt.alpha``/``opt.lr``, ``momentum``, Adam's ``betas``, ``eps``,
  ``weight_decay``) and Adam's step count are program inputs read from the optimizer at run
  time, so a changed learning rate or a schedule takes effect on the next call without
  retracing; whether ``momentum`` / ``weight_decay`` are zero, and how many parameters already
  have state, are guards (a change retraces);
- the state arrays (velocity, Adam's moments) are inputs too, and their updates are effects:
  written back, with the parameters, only when the whole step has succeeded.

Optimizers of other classes run their own ``step`` under the trace (fine when it is written
with operators and ``fg`` functions). The engine has no hook for this yet, so :func:`install`
wraps ``Optimizer.step`` and ``clip_grad_norm`` once; the wrappers call the originals whenever
the calling thread is not tracing.

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
import math
from typing import Any, Callable

import numpy as np

from .. import optim as _optim
from .. import tape
from .program import Binding, Effect, Guard

__all__ = ["install"]

_INSTALLED = False


def install() -> None:
    """Wrap ``Optimizer.step`` and ``clip_grad_norm`` so that a tracing thread records them."""
    global _INSTALLED
    if _INSTALLED:
        return
    original_step = _optim.Optimizer.step

    @functools.wraps(original_step)
    def step(self, *args, **kwargs):
        hook = tape.state.hook
        if hook is None:
            return original_step(self, *args, **kwargs)
        return traced_step(hook, self, original_step, *args, **kwargs)

    original_clip = _optim.clip_grad_norm

    @functools.wraps(original_clip)
    def clip_grad_norm(parameters, max_norm):
        hook = tape.state.hook
        if hook is None:
            return original_clip(parameters, max_norm)
        return traced_clip_grad_norm(hook, parameters, max_norm)

    _optim.Optimizer.step = step
    _optim.clip_grad_norm = clip_grad_norm
    _INSTALLED = True


def traced_step(tracer, opt, original: Callable, zero: bool = True) -> None:
    """``opt.step(zero)`` while tracing: SGD and Adam lowered, other classes as written."""
    lower = _LOWERINGS.get(type(opt))
    if lower is None:
        return original(opt, zero)
    live = _live(opt)
    lower(tracer, opt, live)
    for _, p, _ in live:
        p.bump_version()
    if zero:
        opt.zero()
    return None


def _live(opt) -> list:
    """``(index, parameter, gradient traced array)`` for parameters with a gradient, checked
    as the eager step checks them (a bad gradient raises before anything is recorded)."""
    name = type(opt).__name__
    live = []
    for i, p in enumerate(opt.parameters):
        g = p.grad
        if g is None:
            continue
        gd = g.data
        if tuple(gd.shape) != tuple(p.data.shape):
            raise ValueError(f"{name}.step: parameter {i} has shape {tuple(p.data.shape)} but "
                             f"its gradient has shape {tuple(gd.shape)}; nothing was updated")
        live.append((i, p, gd))
    return live


def _scalar(tracer, obj, attr: str):
    """A number read from ``obj.attr`` each time the program runs."""
    return tracer.input(float(getattr(obj, attr)), Binding("attr", obj, attr))


def _state_input(tracer, getter: Callable[[], np.ndarray]):
    return tracer.input(getter(), Binding("call", getter))


def _store(getter: Callable[[], np.ndarray]) -> Callable[[Any], None]:
    def store(value):
        np.copyto(getter(), value, casting="unsafe")
    store.reads = getter  # the compiled runner may update the array in place
    return store


# -- SGD ---------------------------------------------------------------------------------------


def _sgd(tracer, opt, live) -> None:
    momentum0 = float(opt.momentum) == 0.0
    tracer.guards.append(Guard(lambda: float(opt.momentum) == 0.0, momentum0,
                               "SGD momentum is zero"))
    alpha = _scalar(tracer, opt, "alpha")
    if momentum0:
        for _, p, g in live:
            p.data -= alpha * g
        return
    momentum = _scalar(tracer, opt, "momentum")
    velocity = opt.velocity
    present = sorted(velocity)
    tracer.guards.append(Guard(lambda: sorted(velocity), present,
                               "which parameters have a velocity"))
    for i, p, g in live:
        if i in velocity:
            getter = functools.partial(velocity.__getitem__, i)
            v = _state_input(tracer, getter) * momentum + g
            tracer.extra_effects.append(Effect("call", _store(getter), v._var))
        else:  # a new velocity: zeros * momentum + g
            v = g.astype(p.data.dtype)
            tracer.extra_effects.append(Effect("call", _create(velocity, i), v._var))
        p.data -= alpha * v


def _create(table: dict, key) -> Callable[[Any], None]:
    def create(value):
        table[key] = np.array(value, copy=True)
    return create


# -- Adam --------------------------------------------------------------------------------------


def _adam_scalars(lr, beta1, beta2, eps, step):
    """The per-step constants of the Adam update, in float64 as the eager kernel forms them."""
    return (lr / (1.0 - beta1 ** step), math.sqrt(1.0 - beta2 ** step), beta1, 1.0 - beta1,
            beta2, 1.0 - beta2, eps)


def _adam(tracer, opt, live) -> None:
    decay0 = float(opt.weight_decay) == 0.0
    tracer.guards.append(Guard(lambda: float(opt.weight_decay) == 0.0, decay0,
                               "Adam weight_decay is zero"))
    state = opt.state
    present = sorted(state)
    tracer.guards.append(Guard(lambda: sorted(state), present,
                               "which parameters have Adam state"))
    lr = _scalar(tracer, opt, "lr")
    beta1 = tracer.input(float(opt.betas[0]), Binding("call", lambda: float(opt.betas[0])))
    beta2 = tracer.input(float(opt.betas[1]), Binding("call", lambda: float(opt.betas[1])))
    eps = _scalar(tracer, opt, "eps")
    decay = None if decay0 else _scalar(tracer, opt, "weight_decay")
    for i, p, g in live:
        pd = p.data
        g = g.astype(pd.dtype) if g.dtype != pd.dtype else g
        if i in state:
            m = _state_input(tracer, functools.partial(_adam_part, state, i, 0))
            v = _state_input(tracer, functools.partial(_adam_part, state, i, 1))
            count = tracer.input(int(state[i][2][0]),
                                 Binding("call", functools.partial(_adam_count, state, i)))
        else:
            m = v = tracer.constant(np.zeros(pd.shape, pd.dtype))
            count = 0
        step = count + 1
        step_size, bc2_sqrt, b1, one_m_b1, b2, one_m_b2, eps_ = tracer.call(
            _adam_scalars, (lr, beta1, beta2, eps, step), {}, "adam_scalars")
        if decay is not None:
            g = g + decay * pd
        m_new = b1 * m + one_m_b1 * g
        v_new = b2 * v + one_m_b2 * g * g
        pd -= step_size * (m_new / (np.sqrt(v_new) / bc2_sqrt + eps_))
        if i in state:
            tracer.extra_effects += [
                Effect("call", _store(functools.partial(_adam_part, state, i, 0)), m_new._var),
                Effect("call", _store(functools.partial(_adam_part, state, i, 1)), v_new._var),
                Effect("call", functools.partial(_set_count, state, i), step._var),
            ]
        else:
            tracer.extra_effects.append(
                Effect("call", functools.partial(_create_adam, state, i),
                       (m_new._var, v_new._var)))


def _adam_part(state: dict, i: int, k: int) -> np.ndarray:
    return state[i][k]


def _adam_count(state: dict, i: int) -> int:
    return int(state[i][2][0])


def _set_count(state: dict, i: int, value) -> None:
    state[i][2][0] = int(value)


def _create_adam(state: dict, i: int, values) -> None:
    m, v = values
    state[i] = (np.array(m, copy=True), np.array(v, copy=True), [1])


# -- clip_grad_norm ----------------------------------------------------------------------------


def traced_clip_grad_norm(tracer, parameters, max_norm: float):
    """``clip_grad_norm`` while tracing: the norm and the scaling as program steps; returns
    the norm as a traced 0-d array (eager returns a Python float)."""
    _optim._nonneg("clip_grad_norm", max_norm=max_norm)
    params = list(parameters() if callable(parameters) else parameters)
    grads = [p.grad.data for p in params if isinstance(p, _optim.Tensor) and p.grad is not None]
    total = 0.0
    for g in grads:
        total = total + np.vdot(g, g).astype(np.float64)
    total = np.sqrt(total)
    clip = np.isfinite(total) & (total > max_norm)
    scale = np.where(clip, max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= scale.astype(g.dtype)
    return total


_LOWERINGS = {_optim.SGD: _sgd, _optim.Adam: _adam}
