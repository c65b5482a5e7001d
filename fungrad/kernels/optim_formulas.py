"""Each optimizer's update, written once, as elementwise arithmetic (PyTorch's formulas).

A formula takes a parameter, its gradient and its state values, with the hyperparameters as
scalars *already in the parameter's dtype*. It updates the parameter and the state with
augmented assignments (``p -= ...``) and returns them: arrays are updated in place (the
returned values are the same arrays), scalars are rebound (the caller stores the returned
values). The gradient is never written. A formula uses only arithmetic operators and
``np.sqrt``, and branches only on its trailing flags (constants at each call site; passed by
position where Numba compiles the call), so the very same function runs

- on whole ndarrays (the NumPy path, and :mod:`fungrad.optim.rules` on one parameter),
- on traced arrays under ``fg.jit`` (through the same rules; an in-place update is recorded
  as the array's new value),
- on scalars inside a Numba loop over flat buffers (:mod:`fungrad.kernels.optim` compiles
  these functions into its kernels; it writes no formula of its own).

Every path computes the same operations in the same order and dtype, so which one runs never
changes a result (checked bit for bit by the tests). This module imports no Numba, so that
small models never load it. The ``*_array`` and ``*_segments_numpy`` functions at the end
are the NumPy twins of the kernels: the formulas applied to whole arrays.

>>> import numpy as np
>>> p = np.array([1.0])
>>> sgd(p, np.array([2.0]), None, 0.5, heavy=False); p
(array([0.]), None)
array([0.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sgd", "adam", "rmsprop", "adam_scalars", "adam_bias", "adam_consts",
           "sgd_array", "adam_array", "sgd_segments_numpy", "adam_segments_numpy",
           "adam_ranges_numpy"]


# ------------------------------------------------------------------------------ formulas


def sgd(p, g, buf, lr, momentum=0.0, keep=1.0, weight_decay=0.0, decay=False, heavy=True,
        damped=False, nesterov=False):
    """SGD: ``(p, buf)`` after one step; ``buf`` is the momentum buffer (``heavy``).

    ``decay``: PyTorch's L2 term, ``g + weight_decay * p``; ``heavy``: momentum,
    ``buf = momentum * buf + g`` (``damped``: ``keep * g``, ``keep = 1 - dampening`` after the
    first step); ``nesterov``: the step takes ``g + momentum * buf``, else ``buf``.

    >>> import numpy as np
    >>> p, buf = np.array([1.0]), np.array([0.0])
    >>> sgd(p, np.array([1.0]), buf, 0.1, 0.9, nesterov=True); p, buf
    (array([0.81]), array([1.]))
    (array([0.81]), array([1.]))
    """
    if decay:
        g = g + weight_decay * p
    if heavy:
        buf *= momentum
        buf += keep * g if damped else g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g
    return p, buf


def adam(p, g, m, v, step_size, bc2, b1, omb1, b2, omb2, eps, weight_decay=0.0, shrink=1.0,
         l2=False, decoupled=False):
    """Adam: ``(p, m, v)`` after one step, with the bias corrections folded into
    ``step_size = lr / (1 - beta1**step)`` and ``bc2 = sqrt(1 - beta2**step)``
    (:func:`adam_scalars`); ``omb1``/``omb2`` are ``1 - beta1``/``1 - beta2``.

    ``l2`` adds ``weight_decay * p`` to the gradient (``torch.optim.Adam``); ``decoupled``
    first multiplies ``p`` by ``shrink = 1 - lr * weight_decay`` (AdamW).

    >>> import numpy as np
    >>> p, m, v = np.ones(1), np.zeros(1), np.zeros(1)
    >>> _ = adam(p, np.full(1, 3.0), m, v, *adam_scalars(1, 0.1, 0.9, 0.999, "float64"),
    ...          *adam_consts(0.9, 0.999, 1e-8, 0.0, "float64"))
    >>> p.round(6), m, v.round(6)
    (array([0.9]), array([0.3]), array([0.009]))
    """
    if l2:
        g = g + weight_decay * p
    if decoupled:
        p *= shrink
    m *= b1
    m += omb1 * g
    v *= b2
    v += omb2 * g * g
    p -= step_size * (m / (np.sqrt(v) / bc2 + eps))
    return p, m, v


def rmsprop(p, g, sq, ga, buf, lr, alpha, oma, eps, momentum=0.0, weight_decay=0.0,
            decay=False, centered=False, heavy=False):
    """RMSprop: ``(p, sq, ga, buf)`` after one step: ``sq`` the running mean of squared
    gradients (smoothing ``alpha``, ``oma = 1 - alpha``), ``ga`` that of the gradients
    (``centered``), ``buf`` the momentum buffer (``heavy``); ``decay`` is the L2 term.

    >>> import numpy as np
    >>> p, sq = np.ones(1), np.zeros(1)
    >>> _ = rmsprop(p, np.full(1, 2.0), sq, None, None, 0.1, 0.9, 0.1, 0.0)
    >>> p.round(4), sq.round(4)
    (array([0.6838]), array([0.4]))
    """
    if decay:
        g = g + weight_decay * p
    sq *= alpha
    sq += oma * g * g
    if centered:
        ga *= alpha
        ga += oma * g
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if heavy:
        buf *= momentum
        buf += g / avg
        p -= lr * buf
    else:
        p -= lr * (g / avg)
    return p, sq, ga, buf


# ----------------------------------------------------------------- scalars in the dtype


def _cast(x: Any, dtype: np.dtype) -> Any:
    """``x`` (a number, NumPy scalar, 0-d array or traced array) as a scalar of ``dtype``."""
    if hasattr(x, "astype"):
        return x if x.dtype == dtype else x.astype(dtype)
    return dtype.type(x)


def adam_scalars(step: Any, lr: Any, beta1: Any, beta2: Any, dtype: Any) -> tuple:
    """``lr / (1 - beta1**step)`` and ``sqrt(1 - beta2**step)``: float64, then cast to dtype.

    The one place these are computed, so that every path (one parameter or a flat buffer,
    kernel, NumPy or ``fg.jit``) uses the very same scalars. The arguments may be numbers,
    0-d arrays or traced arrays.

    >>> size, bc2 = adam_scalars(1, 0.1, 0.9, 0.999, "float32")
    >>> size, bc2.round(4)
    (np.float32(1.0), np.float32(0.0316))
    """
    dt = np.dtype(dtype)
    f64 = np.float64
    b1 = f64(beta1) if isinstance(beta1, (int, float)) else beta1
    b2 = f64(beta2) if isinstance(beta2, (int, float)) else beta2
    if isinstance(step, (int, np.integer, np.ndarray)):
        step = int(step)  # Python's power, whatever the caller holds the count in
    return _cast(lr / (1.0 - b1 ** step), dt), _cast(np.sqrt(1.0 - b2 ** step), dt)


def adam_bias(steps, lr: float, beta1: float, beta2: float, dtype) -> tuple:
    """:func:`adam_scalars` for each entry of ``steps``, as two arrays of ``dtype``.

    >>> size, bc2 = adam_bias([1, 2, 1], 0.1, 0.5, 0.75, "float64")
    >>> size.tolist(), bc2.round(4).tolist()
    ([0.2, 0.13333333333333333, 0.2], [0.5, 0.6614, 0.5])
    """
    dt = np.dtype(dtype)
    if len(steps) == 1:  # one range (a packed step whose parameters all took as many steps)
        size, bc2 = adam_scalars(int(steps[0]), lr, beta1, beta2, dt)
        return np.array([size], dt), np.array([bc2], dt)
    steps = np.asarray(steps, dtype=np.int64)
    distinct, where = np.unique(steps, return_inverse=True)
    pairs = [adam_scalars(t, lr, beta1, beta2, dtype) for t in distinct.tolist()]
    return (np.array([s for s, _ in pairs], dt)[where],
            np.array([b for _, b in pairs], dt)[where])


def adam_consts(beta1: Any, beta2: Any, eps: Any, weight_decay: Any, dtype) -> tuple:
    """``beta1, 1 - beta1, beta2, 1 - beta2, eps, weight_decay`` as scalars of ``dtype``
    (``1 - beta`` computed in float64 first). Numbers, 0-d arrays or traced arrays.

    >>> [float(x) for x in adam_consts(0.5, 0.75, 1e-8, 0.0, "float64")]
    [0.5, 0.5, 0.75, 0.25, 1e-08, 0.0]
    """
    dt = np.dtype(dtype)
    b1 = float(beta1) if isinstance(beta1, (int, float, np.number)) else beta1
    b2 = float(beta2) if isinstance(beta2, (int, float, np.number)) else beta2
    return (_cast(b1, dt), _cast(1.0 - b1, dt), _cast(b2, dt), _cast(1.0 - b2, dt),
            _cast(eps, dt), _cast(weight_decay, dt))


# ------------------------------------------------- the NumPy twins of the Numba kernels


def sgd_array(param: np.ndarray, grad: np.ndarray, lr: float, momentum: float = 0.0,
              velocity: np.ndarray | None = None) -> None:
    """SGD on one parameter of any layout, in place; no checks (the caller made them).

    >>> import numpy as np
    >>> p = np.ones(2, np.float32)
    >>> sgd_array(p, np.array([1.0, 2.0]), 0.25)
    >>> p
    array([0.75, 0.5 ], dtype=float32)
    """
    dt = param.dtype.type
    sgd(param, grad.astype(param.dtype, copy=False), velocity, dt(lr), dt(momentum),
        heavy=momentum != 0)


def sgd_segments_numpy(param: np.ndarray, grad: np.ndarray, starts: np.ndarray,
                       ends: np.ndarray, lr: float, momentum: float = 0.0,
                       velocity: np.ndarray | None = None) -> None:
    """NumPy twin of :func:`fungrad.kernels.optim.sgd_segments` (bit-identical results).

    >>> import numpy as np
    >>> p, v = np.ones(3, np.float32), np.zeros(3, np.float32)
    >>> sgd_segments_numpy(p, np.ones(3, np.float32), np.array([1]), np.array([3]), 0.5, 0.9, v)
    >>> p, v
    (array([1. , 0.5, 0.5], dtype=float32), array([0., 1., 1.], dtype=float32))
    """
    for lo, hi in zip(starts.tolist(), ends.tolist()):
        vel = None if momentum == 0 or velocity is None else velocity[lo:hi]
        sgd_array(param[lo:hi], grad[lo:hi], lr, momentum, vel)


def adam_array(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, step: int,
               lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
               weight_decay: float = 0.0) -> None:
    """Adam on one parameter of any layout at update ``step``, in place; no checks.

    >>> import numpy as np
    >>> p, m, v = np.ones(2), np.zeros(2), np.zeros(2)
    >>> adam_array(p, np.array([3.0, -3.0]), m, v, 1, lr=0.1)
    >>> p.round(6)
    array([0.9, 1.1])
    """
    size, bc2 = adam_scalars(step, lr, beta1, beta2, param.dtype)
    b1, omb1, b2, omb2, eps_, wd = adam_consts(beta1, beta2, eps, weight_decay, param.dtype)
    adam(param, grad.astype(param.dtype, copy=False), m, v, size, bc2, b1, omb1, b2, omb2, eps_,
         wd, l2=weight_decay != 0)


def adam_segments_numpy(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                        starts: np.ndarray, ends: np.ndarray, steps, lr: float = 1e-3,
                        beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                        weight_decay: float = 0.0) -> None:
    """NumPy twin of :func:`fungrad.kernels.optim.adam_segments` (bit-identical results).

    >>> import numpy as np
    >>> p, m, v = np.ones(2, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32)
    >>> adam_segments_numpy(p, np.ones(2, np.float32), m, v, np.array([1]), np.array([2]),
    ...                     [1], lr=0.5)
    >>> p.round(5)
    array([1. , 0.5], dtype=float32)
    """
    size, bc2 = adam_bias(steps, lr, beta1, beta2, param.dtype)
    b1, omb1, b2, omb2, eps_, wd = adam_consts(beta1, beta2, eps, weight_decay, param.dtype)
    for k, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist())):
        adam(param[lo:hi], grad[lo:hi], m[lo:hi], v[lo:hi], size[k], bc2[k], b1, omb1, b2, omb2,
             eps_, wd, l2=weight_decay != 0)


def adam_ranges_numpy(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                      starts: np.ndarray, ends: np.ndarray, step_size: np.ndarray,
                      bc2: np.ndarray, consts: tuple) -> None:
    """NumPy twin of :func:`fungrad.kernels.optim.adam_ranges` (bit-identical results).

    >>> import numpy as np
    >>> p, m, v = np.ones(2), np.zeros(2), np.zeros(2)
    >>> adam_ranges_numpy(p, np.full(2, 3.0), m, v, np.array([0]), np.array([2]),
    ...                   *adam_bias([1], 0.1, 0.9, 0.999, p.dtype),
    ...                   adam_consts(0.9, 0.999, 1e-8, 0.0, p.dtype))
    >>> p.round(6)
    array([0.9, 0.9])
    """
    b1, omb1, b2, omb2, eps, wd = consts
    for k, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist())):
        adam(param[lo:hi], grad[lo:hi], m[lo:hi], v[lo:hi], step_size[k], bc2[k], b1, omb1, b2,
             omb2, eps, wd, l2=wd != 0)
