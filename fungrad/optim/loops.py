"""Functional optimizer loops over pytrees, as HIPS autograd's ``autograd.misc.optimizers``.

Each takes a gradient function ``grad(params, i)`` (``i`` is the iteration), initial
parameters (any pytree of arrays), an optional ``callback(params, i, g)``, a number of
iterations and a step size, and returns the final parameters in the same structure. The loops
run on one flat vector (:func:`fungrad.misc.flatten.ravel`), in NumPy. For the object style (Modules,
``loss.backward()``, ``opt.step()``) use :mod:`fungrad.optim`.

>>> import numpy as np, fungrad as fg
>>> from fungrad.optim.loops import adam
>>> loss = lambda p: fg.sum((p["w"] - 3.0) ** 2)
>>> g = fg.grad(loss)
>>> adam(lambda p, i: g(p), {"w": np.zeros(2)}, num_iters=500, step_size=0.1)["w"].round(3)
array([3., 3.])
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..misc.flatten import ravel

__all__ = ["sgd", "momentum", "rmsprop", "adam"]

GradFn = Callable[[Any, int], Any]
Callback = Callable[[Any, int, Any], Any]


def _flat_loop(name: str, grad: GradFn, x0: Any, callback: Callback | None, num_iters: int,
               update: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> Any:
    if not callable(grad):
        raise TypeError(f"{name}: grad must be a function grad(params, i), got "
                        f"{type(grad).__name__}")
    if num_iters < 0:
        raise ValueError(f"{name}: num_iters must be >= 0, got {num_iters}")
    x, unravel = ravel(x0)
    x = np.array(x, dtype=np.result_type(x, np.float32), copy=True)
    for i in range(num_iters):
        g_tree = grad(unravel(x), i)
        g, _ = ravel(g_tree)
        g = np.asarray(g)
        if g.shape != x.shape:
            raise ValueError(f"{name}: grad returned {g.size} numbers for {x.size} parameters "
                             "(it must return the gradient in the structure of the parameters)")
        if callback is not None:
            callback(unravel(x), i, g_tree)
        x = update(x, g, i)
    return unravel(x)


def sgd(grad: GradFn, x: Any, callback: Callback | None = None, num_iters: int = 200,
        step_size: float = 0.1, mass: float = 0.9) -> Any:
    """Gradient descent with momentum ``mass`` (0 gives plain gradient descent).

    >>> import numpy as np
    >>> sgd(lambda x, i: 2 * x, np.array([1.0]), num_iters=100, mass=0.0).round(6)
    array([0.])
    """
    velocity = None

    def update(x, g, i):
        nonlocal velocity
        velocity = -g if velocity is None else mass * velocity - (1.0 - mass) * g
        return x + step_size * velocity

    return _flat_loop("sgd", grad, x, callback, num_iters, update)


momentum = sgd  # another name for the same loop: gradient descent with momentum ``mass``


def rmsprop(grad: GradFn, x: Any, callback: Callback | None = None, num_iters: int = 100,
            step_size: float = 0.1, gamma: float = 0.9, eps: float = 1e-8) -> Any:
    """RMSProp: steps scaled by a running average of squared gradients.

    >>> import numpy as np
    >>> float(rmsprop(lambda x, i: 2 * (x - 1), np.array([0.0]), num_iters=300,
    ...               step_size=0.01)[0].round(2))
    1.0
    """
    avg_sq = None

    def update(x, g, i):
        nonlocal avg_sq
        sq = g * g
        avg_sq = sq if avg_sq is None else gamma * avg_sq + (1 - gamma) * sq
        return x - step_size * g / (np.sqrt(avg_sq) + eps)

    return _flat_loop("rmsprop", grad, x, callback, num_iters, update)


def adam(grad: GradFn, x: Any, callback: Callback | None = None, num_iters: int = 100,
         step_size: float = 0.001, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Any:
    """Adam (Kingma and Ba, 2015) with bias-corrected moments.

    >>> import numpy as np
    >>> float(adam(lambda x, i: 2 * (x - 1), np.array([0.0]), num_iters=2000,
    ...            step_size=0.01)[0].round(3))
    1.0
    """
    m = v = None

    def update(x, g, i):
        nonlocal m, v
        m = (1 - b1) * g if m is None else b1 * m + (1 - b1) * g
        v = (1 - b2) * g * g if v is None else b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** (i + 1))
        v_hat = v / (1 - b2 ** (i + 1))
        return x - step_size * m_hat / (np.sqrt(v_hat) + eps)

    return _flat_loop("adam", grad, x, callback, num_iters, update)
