"""Each optimizer's update rule, ``rule(p, g, state, hp)``: the one definition every path uses.

A rule updates the parameter ``p`` and its ``state`` arrays **in place** from the gradient
``g``. It reads the hyperparameters ``hp`` into scalars of ``p``'s dtype (so float32 stays
float32) and applies the optimizer's formula of :mod:`fungrad.kernels.optim_formulas`. The
same function runs

- eagerly on ndarrays: one parameter at a time (``p`` is ``param.data``, each state array a
  view of the optimizer's buffer or a Tensor's data); a model's packed flat buffer is updated
  by the Numba kernels compiled from the same formulas (``fungrad.kernels.optim``);
- under ``fg.jit`` on traced arrays (:mod:`fungrad.jit.optimizers` calls these rules on the
  traced parameter, gradient and state; the in-place updates become the program's effects,
  committed when the whole step succeeds).

``hp`` holds the hyperparameters as numbers, 0-d arrays or traced arrays (under ``fg.jit``
the learning rate is read each time the program runs, so a schedule changes it without
retracing). A hyperparameter that decides the formula's structure (``momentum``,
``weight_decay``, ``dampening``) turns its term on when it is not the number 0; under the jit
a traced value is a guarded non-zero. ``state["step"]`` is this update's number, counted from
1 by the caller before the rule runs, as PyTorch counts (Adam's rules also take
``state["bias"]``, the :func:`~fungrad.kernels.optim_formulas.adam_scalars` of that number,
in its place). Rules follow PyTorch's formulas and
order of operations (``torch.optim``, single-tensor path).

>>> import numpy as np
>>> p, g = np.array([1.0, -1.0]), np.array([0.5, 0.5])
>>> state = {"step": 1, "square_avg": np.zeros(2)}
>>> rmsprop(p, g, state, {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
...                       "momentum": 0.0, "centered": False})
>>> p.round(4)
array([ 0.9, -1.1])
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..kernels import optim_formulas as formulas
from ..kernels.optim_formulas import _cast, adam_consts, adam_scalars

__all__ = ["sgd", "adam", "adamw", "rmsprop", "Prepared", "STATE"]

Array = Any  # an ndarray, or a traced array under fg.jit
HParams = Mapping[str, Any]

# the state arrays each rule may keep per parameter (besides the step count)
STATE = {
    "sgd": ("momentum_buffer",),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
    "rmsprop": ("square_avg", "momentum_buffer", "grad_avg"),
}


def _on(x: Any) -> bool:
    """Whether a structural hyperparameter turns its term on: anything but the number 0."""
    return bool(x) if isinstance(x, (bool, int, float, np.number)) else x is not None


class Prepared(dict):
    """Hyperparameters for many calls of a rule: what a rule derives from them for a dtype
    (its scalars in that dtype, which terms are on) is computed at the first call and
    reused. A caller updating many parameters wraps its ``hp`` once per step.

    >>> import numpy as np
    >>> hp = Prepared({"lr": 0.5, "momentum": 0.0})
    >>> for _ in range(3):
    ...     sgd(np.ones(2), np.ones(2), {}, hp)
    >>> len(hp.cache)
    1
    """

    __slots__ = ("cache",)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.cache: dict = {}


def _derived(hp: HParams, dt: np.dtype, make: Any, *key: Any) -> Any:
    """``make(hp, dt, *key)``, computed once per ``(make, dt, *key)`` when ``hp`` is
    :class:`Prepared`."""
    if type(hp) is not Prepared:
        return make(hp, dt, *key)
    k = (make, dt, *key)
    got = hp.cache.get(k)
    if got is None:
        got = hp.cache[k] = make(hp, dt, *key)
    return got


def _grad_in(g: Array, dtype: np.dtype) -> Array:
    return g if g.dtype == dtype else g.astype(dtype)


def _sgd_scalars(hp: HParams, dt: np.dtype) -> tuple:
    wd, momentum, damp = hp.get("weight_decay", 0.0), hp["momentum"], hp.get("dampening", 0.0)
    flags = (_on(wd), _on(momentum), _on(damp), bool(hp.get("nesterov", False)))
    return flags, _cast(hp["lr"], dt), _cast(momentum, dt), _cast(wd, dt), _cast(damp, dt)


def sgd(p: Array, g: Array, state: dict, hp: HParams) -> None:
    """SGD with PyTorch's ``weight_decay`` (L2, added to the gradient), momentum (with
    ``dampening``) and Nesterov momentum, in place.

    >>> import numpy as np
    >>> p, st = np.array([1.0]), {"step": 1, "momentum_buffer": np.zeros(1)}
    >>> hp = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.5, "nesterov": True}
    >>> sgd(p, np.array([1.0]), st, hp); p.round(4), st["momentum_buffer"]
    (array([0.715]), array([1.5]))
    """
    dt = p.dtype
    flags, lr, momentum, wd, damp = _derived(hp, dt, _sgd_scalars)
    decay, heavy, damped, nesterov = flags
    keep = 1.0
    if damped:  # PyTorch's first step takes the gradient undamped
        keep = 1 - damp * (1 - _cast(state["step"] == 1, dt))
    buf = state["momentum_buffer"] if heavy else None
    formulas.sgd(p, _grad_in(g, dt), buf, lr, momentum, keep, wd, decay, heavy, damped,
                 nesterov)


def _adam_scalars(hp: HParams, dt: np.dtype, decoupled: bool) -> tuple:
    wd = hp["weight_decay"]
    consts = adam_consts(hp["beta1"], hp["beta2"], hp["eps"], wd, dt)
    shrink = _cast(1 - hp["lr"] * np.float64(wd), dt) if decoupled and _on(wd) else 1.0
    return consts, shrink, not decoupled and _on(wd), decoupled and _on(wd)


def _adam_bias(hp: HParams, dt: np.dtype, step: Any) -> tuple:
    return adam_scalars(step, hp["lr"], hp["beta1"], hp["beta2"], dt)


def _adam(p: Array, g: Array, state: dict, hp: HParams, decoupled: bool) -> None:
    dt = p.dtype
    consts, shrink, l2, shrinks = _derived(hp, dt, _adam_scalars, decoupled)
    step = state.get("step")
    if "bias" in state:  # the caller computed adam_scalars for this update (fg.jit)
        size, bc2 = state["bias"]
    elif isinstance(step, (int, np.integer, np.ndarray)):  # computed once per step count
        size, bc2 = _derived(hp, dt, _adam_bias, int(step))
    else:  # traced under fg.jit
        size, bc2 = _adam_bias(hp, dt, step)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    b1, omb1, b2, omb2, eps, wd = consts
    formulas.adam(p, _grad_in(g, dt), m, v, size, bc2, b1, omb1, b2, omb2, eps, wd, shrink, l2,
                  shrinks)


def adam(p: Array, g: Array, state: dict, hp: HParams) -> None:
    """Adam (Kingma & Ba) as PyTorch's, with its bias correction and L2 ``weight_decay``
    (added to the gradient), in place.

    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> st = {"step": 1, "exp_avg": np.zeros(1), "exp_avg_sq": np.zeros(1)}
    >>> hp = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
    >>> adam(p, np.array([3.0]), st, hp); p.round(6)
    array([0.9])
    """
    _adam(p, g, state, hp, decoupled=False)


def adamw(p: Array, g: Array, state: dict, hp: HParams) -> None:
    """AdamW (Loshchilov & Hutter) as PyTorch's: the weight decay shrinks ``p`` directly
    (decoupled from the gradient's moments), then Adam's bias-corrected step, in place.

    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> st = {"step": 1, "exp_avg": np.zeros(1), "exp_avg_sq": np.zeros(1)}
    >>> hp = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    >>> adamw(p, np.array([3.0]), st, hp); p.round(6)
    array([0.899])
    """
    _adam(p, g, state, hp, decoupled=True)


def _rmsprop_scalars(hp: HParams, dt: np.dtype) -> tuple:
    wd, momentum = hp["weight_decay"], hp["momentum"]
    alpha = _cast(hp["alpha"], dt)
    flags = (_on(wd), bool(hp["centered"]), _on(momentum))
    return flags, (_cast(hp["lr"], dt), alpha, 1 - alpha, _cast(hp["eps"], dt),
                   _cast(momentum, dt), _cast(wd, dt))


def rmsprop(p: Array, g: Array, state: dict, hp: HParams) -> None:
    """RMSprop as PyTorch's: a running mean of squared gradients with smoothing ``alpha``,
    optionally ``centered`` (minus the squared mean gradient), with momentum and L2
    ``weight_decay``, in place.

    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> st = {"step": 1, **{k: np.zeros(1) for k in STATE["rmsprop"]}}
    >>> hp = {"lr": 0.1, "alpha": 0.9, "eps": 0.0, "weight_decay": 0.0, "momentum": 0.0,
    ...       "centered": False}
    >>> rmsprop(p, np.array([2.0]), st, hp); p.round(4), st["square_avg"].round(4)
    (array([0.6838]), array([0.4]))
    """
    dt = p.dtype
    (decay, centered, heavy), scalars = _derived(hp, dt, _rmsprop_scalars)
    sq = state["square_avg"]
    ga = state["grad_avg"] if centered else None
    buf = state["momentum_buffer"] if heavy else None
    lr, alpha, oma, eps, momentum, wd = scalars
    formulas.rmsprop(p, _grad_in(g, dt), sq, ga, buf, lr, alpha, oma, eps, momentum, wd, decay,
                     centered, heavy)
