"""Update rules written once, as functions of ``(p, g, state, hp)``, for arrays of any kind.

Each rule updates the parameter ``p`` and its ``state`` arrays **in place** from the gradient
``g``, with NumPy operators and functions only. So the same function runs

- eagerly on ndarrays (``p`` is ``param.data``, each state array a Tensor's data), and
- under ``fg.jit`` on traced arrays (``param.data`` and the state Tensors' ``.data`` are then
  traced, and the in-place updates become the program's effects, committed when the whole
  step succeeds).

``hp`` holds the hyperparameters as float64 numbers or 0-d arrays (the learning rate is a 0-d
array read from the optimizer each time the step runs, so a schedule changes it without
retracing); ``state["step"]`` is a 0-d int64 array counting this parameter's updates. A rule
casts what multiplies ``p`` to ``p``'s dtype, so float32 stays float32. Rules follow
PyTorch's formulas and order of operations (``torch.optim``, single-tensor path).

>>> import numpy as np
>>> p, g = np.array([1.0, -1.0]), np.array([0.5, 0.5])
>>> state = {"step": np.zeros((), np.int64), "square_avg": np.zeros(2), "momentum_buffer":
...          np.zeros(2), "grad_avg": np.zeros(2)}
>>> rmsprop(p, g, state, {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
...                       "momentum": 0.0, "centered": False})
>>> p.round(4), int(state["step"])
(array([ 0.9, -1.1]), 1)
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["sgd", "rmsprop", "adamw", "STATE"]

Array = Any  # an ndarray, or a traced array under fg.jit
HParams = Mapping[str, Any]

# the state arrays each rule keeps per parameter (besides the step count)
STATE = {
    "sgd": ("momentum_buffer",),
    "rmsprop": ("square_avg", "momentum_buffer", "grad_avg"),
    "adamw": ("exp_avg", "exp_avg_sq"),
}


def _as(x: Any, dtype: np.dtype) -> Any:
    """``x`` (a number or 0-d array) as a 0-d array of ``dtype``."""
    return np.asarray(x).astype(dtype) if isinstance(x, (int, float)) else x.astype(dtype)


def _count_and_decay(p: Array, g: Array, state: dict, hp: HParams) -> Array:
    """Count this step; return the gradient in ``p``'s dtype plus PyTorch's L2 term
    ``weight_decay * p`` (SGD's and RMSprop's, not AdamW's decoupled decay)."""
    state["step"] += 1
    g = g.astype(p.dtype) if g.dtype != p.dtype else g
    if hp["weight_decay"]:
        g = g + _as(hp["weight_decay"], p.dtype) * p
    return g


def sgd(p: Array, g: Array, state: dict, hp: HParams) -> None:
    """SGD with PyTorch's ``weight_decay`` (L2, added to the gradient), momentum (with
    ``dampening``) and Nesterov momentum, in place.

    >>> import numpy as np
    >>> p, st = np.array([1.0]), {"step": np.zeros((), np.int64), "momentum_buffer": np.zeros(1)}
    >>> hp = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.5, "nesterov": True}
    >>> sgd(p, np.array([1.0]), st, hp); p.round(4), st["momentum_buffer"]
    (array([0.715]), array([1.5]))
    """
    dt = p.dtype
    g = _count_and_decay(p, g, state, hp)
    if hp["momentum"]:
        m = _as(hp["momentum"], dt)
        buf = state["momentum_buffer"]
        buf *= m
        if hp.get("dampening"):  # PyTorch's first step takes the gradient undamped
            later = 1 - (state["step"] == 1).astype(dt)
            buf += (1 - _as(hp["dampening"], dt) * later) * g
        else:
            buf += g
        g = g + m * buf if hp["nesterov"] else buf
    p -= _as(hp["lr"], dt) * g


def rmsprop(p: Array, g: Array, state: dict, hp: HParams) -> None:
    """RMSprop as PyTorch's: a running mean of squared gradients with smoothing ``alpha``,
    optionally ``centered`` (minus the squared mean gradient), with momentum and L2
    ``weight_decay``, in place.

    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> st = {"step": np.zeros((), np.int64), **{k: np.zeros(1) for k in STATE["rmsprop"]}}
    >>> hp = {"lr": 0.1, "alpha": 0.9, "eps": 0.0, "weight_decay": 0.0, "momentum": 0.0,
    ...       "centered": False}
    >>> rmsprop(p, np.array([2.0]), st, hp); p.round(4), st["square_avg"].round(4)
    (array([0.6838]), array([0.4]))
    """
    dt = p.dtype
    g = _count_and_decay(p, g, state, hp)
    alpha = _as(hp["alpha"], dt)
    sq = state["square_avg"]
    sq *= alpha
    sq += (1 - alpha) * g * g
    if hp["centered"]:
        ga = state["grad_avg"]
        ga *= alpha
        ga += (1 - alpha) * g
        avg = np.sqrt(sq - ga * ga) + _as(hp["eps"], dt)
    else:
        avg = np.sqrt(sq) + _as(hp["eps"], dt)
    lr = _as(hp["lr"], dt)
    if hp["momentum"]:
        buf = state["momentum_buffer"]
        buf *= _as(hp["momentum"], dt)
        buf += g / avg
        p -= lr * buf
    else:
        p -= lr * (g / avg)


def adamw(p: Array, g: Array, state: dict, hp: HParams) -> None:
    """AdamW (Loshchilov & Hutter) as PyTorch's: the weight decay shrinks ``p`` directly
    (decoupled from the gradient's moments), then Adam's bias-corrected step, in place.

    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> st = {"step": np.zeros((), np.int64), "exp_avg": np.zeros(1), "exp_avg_sq": np.zeros(1)}
    >>> hp = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    >>> adamw(p, np.array([3.0]), st, hp); p.round(6)
    array([0.899])
    """
    dt = p.dtype
    state["step"] += 1
    step = state["step"]
    g = g.astype(dt) if g.dtype != dt else g
    lr = hp["lr"]
    if hp["weight_decay"]:
        p *= _as(1 - lr * np.float64(hp["weight_decay"]), dt)
    b1, b2 = np.float64(hp["beta1"]), np.float64(hp["beta2"])
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m *= _as(b1, dt)
    m += _as(1 - b1, dt) * g
    v *= _as(b2, dt)
    v += _as(1 - b2, dt) * g * g
    bc1 = 1 - b1 ** step  # float64, as PyTorch computes them in Python floats
    bc2 = 1 - b2 ** step
    denom = np.sqrt(v) / _as(np.sqrt(bc2), dt) + _as(hp["eps"], dt)
    p -= _as(lr / bc1, dt) * (m / denom)
