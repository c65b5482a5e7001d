"""NumPy twins of the optimizer kernels, in a module that does not import Numba.

:mod:`fungrad.optim` updates small models with these (so they never load Numba) and
:mod:`fungrad.kernels.optim` re-exports them beside the kernels. The formulas here and in the
kernels are the same operations in the same order and dtype: results agree bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["adam_array", "adam_bias", "adam_consts", "adam_numpy", "adam_scalars",
           "adam_segments_numpy", "sgd_array", "sgd_numpy", "sgd_segments_numpy"]


def sgd_numpy(p, g, lr, momentum, velocity) -> None:
    """SGD's formula, in place on arrays of any layout (scalars already in p's dtype).

    >>> import numpy as np
    >>> p, v = np.ones(2), np.zeros(2)
    >>> sgd_numpy(p, np.array([1.0, 2.0]), 0.5, 0.9, v)
    >>> p, v
    (array([0.5, 0. ]), array([1., 2.]))
    """
    if momentum == 0:
        p -= lr * g
    else:
        velocity *= momentum
        velocity += g
        p -= lr * velocity


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
    sgd_numpy(param, grad.astype(param.dtype, copy=False), dt(lr), dt(momentum), velocity)


def sgd_segments_numpy(param: np.ndarray, grad: np.ndarray, starts: np.ndarray,
                       ends: np.ndarray, lr: float, momentum: float = 0.0,
                       velocity: np.ndarray | None = None) -> None:
    """NumPy twin of :func:`sgd_segments` (bit-identical results).

    >>> import numpy as np
    >>> p, v = np.ones(3, np.float32), np.zeros(3, np.float32)
    >>> sgd_segments_numpy(p, np.ones(3, np.float32), np.array([1]), np.array([3]), 0.5, 0.9, v)
    >>> p, v
    (array([1. , 0.5, 0.5], dtype=float32), array([0., 1., 1.], dtype=float32))
    """
    dt = param.dtype.type
    lr, momentum = dt(lr), dt(momentum)
    for lo, hi in zip(starts.tolist(), ends.tolist()):
        vel = None if momentum == 0 or velocity is None else velocity[lo:hi]
        sgd_numpy(param[lo:hi], grad[lo:hi], lr, momentum, vel)


def adam_numpy(p, g, m, v, step_size, bc2_sqrt, b1, one_m_b1, b2, one_m_b2, eps, wd) -> None:
    """Adam's formula, in place on arrays of any layout (scalars already in p's dtype).

    >>> import numpy as np
    >>> p, m, v = np.ones(1), np.zeros(1), np.zeros(1)
    >>> adam_numpy(p, np.ones(1), m, v, *adam_scalars(1, 0.1, 0.9, 0.999, p.dtype),
    ...            *adam_consts(0.9, 0.999, 1e-8, 0.0, p.dtype))
    >>> p.round(6), m, v.round(6)
    (array([0.9]), array([0.1]), array([0.001]))
    """
    if wd != 0:
        g = g + wd * p
    m *= b1
    m += one_m_b1 * g
    v *= b2
    v += one_m_b2 * g * g
    denom = np.sqrt(v)
    denom /= bc2_sqrt
    denom += eps
    update = m / denom
    update *= step_size
    p -= update


def adam_scalars(step: int, lr: float, beta1: float, beta2: float, dtype) -> tuple:
    """``lr / (1 - beta1**step)`` and ``sqrt(1 - beta2**step)``: float64, then cast to dtype.

    The one place these are computed, so that every path (one parameter or a flat buffer,
    kernel or twin) uses the very same scalars.

    >>> size, bc2 = adam_scalars(1, 0.1, 0.9, 0.999, "float32")
    >>> size, bc2.round(4)
    (np.float32(1.0), np.float32(0.0316))
    """
    dt = np.dtype(dtype).type
    return dt(lr / (1.0 - beta1 ** int(step))), dt(np.sqrt(1.0 - beta2 ** int(step)))


def adam_bias(steps, lr: float, beta1: float, beta2: float, dtype) -> tuple:
    """:func:`adam_scalars` for each entry of ``steps``, as two arrays of ``dtype``.

    >>> size, bc2 = adam_bias([1, 2, 1], 0.1, 0.5, 0.75, "float64")
    >>> size.tolist(), bc2.round(4).tolist()
    ([0.2, 0.13333333333333333, 0.2], [0.5, 0.6614, 0.5])
    """
    steps = np.asarray(steps, dtype=np.int64)
    distinct, where = np.unique(steps, return_inverse=True)
    pairs = [adam_scalars(t, lr, beta1, beta2, dtype) for t in distinct.tolist()]
    dt = np.dtype(dtype)
    return (np.array([s for s, _ in pairs], dt)[where],
            np.array([b for _, b in pairs], dt)[where])


def adam_consts(beta1: float, beta2: float, eps: float, weight_decay: float, dtype) -> tuple:
    """``beta1, 1 - beta1, beta2, 1 - beta2, eps, weight_decay`` as scalars of ``dtype``.

    >>> [float(x) for x in adam_consts(0.5, 0.75, 1e-8, 0.0, "float64")]
    [0.5, 0.5, 0.75, 0.25, 1e-08, 0.0]
    """
    dt = np.dtype(dtype).type
    b1, b2 = float(beta1), float(beta2)
    return dt(b1), dt(1.0 - b1), dt(b2), dt(1.0 - b2), dt(eps), dt(weight_decay)


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
    consts = adam_consts(beta1, beta2, eps, weight_decay, param.dtype)
    adam_numpy(param, grad.astype(param.dtype, copy=False), m, v, size, bc2, *consts)


def adam_segments_numpy(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                        starts: np.ndarray, ends: np.ndarray, steps, lr: float = 1e-3,
                        beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                        weight_decay: float = 0.0) -> None:
    """NumPy twin of :func:`adam_segments` (bit-identical results).

    >>> import numpy as np
    >>> p, m, v = np.ones(2, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32)
    >>> adam_segments_numpy(p, np.ones(2, np.float32), m, v, np.array([1]), np.array([2]),
    ...                     [1], lr=0.5)
    >>> p.round(5)
    array([1. , 0.5], dtype=float32)
    """
    size, bc2 = adam_bias(steps, lr, beta1, beta2, param.dtype)
    consts = adam_consts(beta1, beta2, eps, weight_decay, param.dtype)
    for k, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist())):
        adam_numpy(param[lo:hi], grad[lo:hi], m[lo:hi], v[lo:hi], size[k], bc2[k], *consts)
