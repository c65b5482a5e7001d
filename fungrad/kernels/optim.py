"""Fused in-place optimizer updates (PyTorch semantics), one pass over the parameters.

    sgd_update(param, grad, lr, momentum=0.0, velocity=None)
        momentum == 0:  p -= lr * grad
        otherwise:      v = momentum * v + grad;  p -= lr * v
    adam_update(param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0)
        grad += weight_decay * p   (L2, as torch.optim.Adam, not AdamW)
        m = beta1 m + (1 - beta1) grad;  v = beta2 v + (1 - beta2) grad^2
        p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)

``param`` and the state arrays (``velocity``, ``m``, ``v``) are updated in place and must be
writeable ndarrays of one float dtype (float32 or float64) and one shape; ``grad`` may be any
real array of that shape and is read in the parameter's dtype. Any memory layout works: the
kernel wrappers update a C-contiguous copy of a non-contiguous array and copy it back. Every
argument is checked before anything is written, so a bad call leaves all arrays untouched.
``step`` counts from 1 (the caller increments it before the update, as PyTorch does).
Both functions return None.

The ``*_segments`` entry points are the same updates over *flat buffers*: many parameters laid
end to end in one 1-D array, of which the ranges ``[starts[k], ends[k])`` are updated (Adam with
its own ``steps[k]`` per range). They check nothing: the optimizer that owns the buffers has
checked them once (all 1-D, C-contiguous, one float dtype, one length). One call updates every
parameter of a model.

The arithmetic is not written here: each kernel is a loop that calls the formula of
:mod:`fungrad.kernels.optim_formulas` (compiled by Numba and inlined) on each element, and the
NumPy twins apply the same formula to whole arrays. Kernel and twin therefore compute the same
operations in the same order and dtype and agree bit for bit: which one runs never changes a
result. (Editing a formula invalidates the compiled kernels: the cache key hashes every source
file of this directory; see ``_cache.py``.)
"""

from __future__ import annotations

import numba
from . import _cache  # noqa: F401 (cache=True files go to a user cache dir, not the package)
from ._background import deferrable, with_twin
import numpy as np

from . import optim_formulas as _formulas
from .optim_formulas import adam_array, adam_bias, adam_consts, adam_ranges_numpy
from .optim_formulas import adam_segments_numpy
from .optim_formulas import sgd_array, sgd_segments_numpy

__all__ = [
    "adam_ranges", "adam_ranges_numpy", "adam_segments", "adam_segments_numpy", "adam_update",
    "adam_update_numpy",
    "sgd_segments", "sgd_segments_numpy", "sgd_update", "sgd_update_numpy",
]


def _check_state(name: str, param, **states) -> None:
    """param and the states: writeable float32/float64 ndarrays of one dtype and shape."""
    if not isinstance(param, np.ndarray):
        raise TypeError(f"{name}: param must be a NumPy array, got {type(param).__name__}")
    if param.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: param must be float32 or float64, got dtype {param.dtype}")
    arrays = {"param": param}
    for key, a in states.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: {key} must be a NumPy array, got {type(a).__name__}")
        if a.shape != param.shape or a.dtype != param.dtype:
            raise ValueError(
                f"{name}: {key} must match param (shape {param.shape}, dtype {param.dtype}), "
                f"got shape {a.shape}, dtype {a.dtype}"
            )
        arrays[key] = a
    for key, a in arrays.items():
        if not a.flags.writeable:
            raise ValueError(f"{name}: {key} is read-only; it is updated in place")
    keys = list(arrays)
    for i, k1 in enumerate(keys):
        for k2 in keys[i + 1 :]:
            if np.shares_memory(arrays[k1], arrays[k2]):
                raise ValueError(f"{name}: {k1} and {k2} share memory; they must be distinct")


def _grad(name: str, grad, param: np.ndarray) -> np.ndarray:
    grad = np.asarray(grad)
    if grad.shape != param.shape:
        raise ValueError(f"{name}: grad shape {grad.shape} does not match param {param.shape}")
    if grad.dtype.kind not in "biuf":
        raise TypeError(f"{name}: grad must be real numeric, got dtype {grad.dtype}")
    return grad


def _nonneg(name: str, **scalars) -> dict:
    out = {}
    for key, val in scalars.items():
        val = float(val)
        if not val >= 0.0:
            raise ValueError(f"{name}: {key} must be >= 0, got {val}")
        out[key] = val
    return out


def _work(a: np.ndarray) -> np.ndarray:
    """A flat C-contiguous view of a, or of a copy when a is not C-contiguous."""
    return (a if a.flags.c_contiguous else np.ascontiguousarray(a)).reshape(-1)


def _copy_back(a: np.ndarray, flat: np.ndarray) -> None:
    if not a.flags.c_contiguous:
        a[...] = flat.reshape(a.shape)


def _whole(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One segment covering all of the flat array ``a``."""
    return np.zeros(1, np.intp), np.full(1, a.size, np.intp)


# --------------------------------------------------------------------------- SGD


# The segment loops slice each range and loop from 0 over the slice: an index that Numba can
# see is non-negative needs no wraparound branch, so LLVM vectorises the inner loop (indexing
# with starts[k] + i kept it scalar: 2x slower, and 13x slower on subnormal gradients).


# The formulas, compiled for scalars and inlined into the loops below (the loops only index).
_inlined = numba.njit(inline="always", cache=True, nogil=True, error_model="numpy")
_sgd = _inlined(_formulas.sgd)
_adam = _inlined(_formulas.adam)


# Every argument of a formula is passed, each scalar in the parameter's dtype: Numba types
# both sides of a flag's branch, and a float64 default would widen the arithmetic.


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sgd_kernel(p, g, starts, ends, lr, zero):
    for k in range(starts.shape[0]):
        ps, gs = p[starts[k]:ends[k]], g[starts[k]:ends[k]]
        for i in range(ps.shape[0]):
            ps[i] = _sgd(ps[i], gs[i], zero, lr, zero, zero, zero, False, False, False,
                         False)[0]


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sgd_momentum_kernel(p, g, vel, starts, ends, lr, momentum, zero):
    for k in range(starts.shape[0]):
        lo, hi = starts[k], ends[k]
        ps, gs, vs = p[lo:hi], g[lo:hi], vel[lo:hi]
        for i in range(ps.shape[0]):
            ps[i], vs[i] = _sgd(ps[i], gs[i], vs[i], lr, momentum, zero, zero, False, True,
                                False, False)


@with_twin("sgd_segments_numpy")
def sgd_segments(param: np.ndarray, grad: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 lr: float, momentum: float = 0.0, velocity: np.ndarray | None = None) -> None:
    """SGD over the ranges ``[starts[k], ends[k])`` of flat buffers, in place; no checks.

    ``param``, ``grad`` and ``velocity`` (needed when ``momentum != 0``) are 1-D C-contiguous
    arrays of one float dtype; ``starts``/``ends`` are intp arrays of equal length.

    >>> import numpy as np
    >>> p, g = np.ones(4), np.full(4, 2.0)
    >>> sgd_segments(p, g, np.array([0, 3]), np.array([1, 4]), 0.25)
    >>> p
    array([0.5, 1. , 1. , 0.5])
    """
    dt = param.dtype.type
    if momentum == 0:
        _sgd_kernel(param, grad, starts, ends, dt(lr), dt(0))
    else:
        _sgd_momentum_kernel(param, grad, velocity, starts, ends, dt(lr), dt(momentum), dt(0))


def _sgd_args(param, grad, lr, momentum, velocity):
    name = "sgd_update"
    hp = _nonneg(name, lr=lr, momentum=momentum)
    if hp["momentum"] != 0.0 and velocity is None:
        raise ValueError(f"{name}: momentum={momentum} needs a velocity array (zeros to start)")
    states = {"velocity": velocity} if hp["momentum"] != 0.0 else {}
    _check_state(name, param, **states)
    grad = _grad(name, grad, param)
    return grad, hp["lr"], hp["momentum"]


def sgd_update(param: np.ndarray, grad, lr: float, momentum: float = 0.0,
               velocity: np.ndarray | None = None) -> None:
    """SGD step in place; ``velocity`` is required (and updated) when ``momentum != 0``,
    ignored when ``momentum == 0``.

    >>> import numpy as np
    >>> p, v = np.ones(2), np.zeros(2)
    >>> sgd_update(p, np.array([1.0, 2.0]), 0.5, momentum=0.9, velocity=v)
    >>> p, v
    (array([0.5, 0. ]), array([1., 2.]))
    """
    grad, lr, momentum = _sgd_args(param, grad, lr, momentum, velocity)
    p = _work(param)
    g = np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1)
    starts, ends = _whole(p)
    if momentum == 0:
        sgd_segments(p, g, starts, ends, lr)
    else:
        assert velocity is not None, "sgd_update: momentum needs a velocity buffer"
        vel = _work(velocity)
        sgd_segments(p, g, starts, ends, lr, momentum, vel)
        _copy_back(velocity, vel)
    _copy_back(param, p)


def sgd_update_numpy(param: np.ndarray, grad, lr: float, momentum: float = 0.0,
                     velocity: np.ndarray | None = None) -> None:
    """NumPy twin of :func:`sgd_update`.

    >>> import numpy as np
    >>> p = np.ones(2, np.float32)
    >>> sgd_update_numpy(p, np.array([1.0, 2.0]), 0.25)
    >>> p
    array([0.75, 0.5 ], dtype=float32)
    """
    grad, lr, momentum = _sgd_args(param, grad, lr, momentum, velocity)
    sgd_array(param, grad, lr, momentum, velocity)


# --------------------------------------------------------------------------- Adam


@deferrable
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adam_kernel(p, g, m, v, starts, ends, step_size, bc2_sqrt, beta1, one_m_beta1, beta2,
                 one_m_beta2, eps, weight_decay):
    for k in range(starts.shape[0]):
        lo, hi = starts[k], ends[k]
        ps, gs, ms, vs = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        ss, bc = step_size[k], bc2_sqrt[k]
        # The flag is a constant in each loop (not a branch inside one): both vectorise.
        if weight_decay != 0:
            for i in range(ps.shape[0]):
                ps[i], ms[i], vs[i] = _adam(ps[i], gs[i], ms[i], vs[i], ss, bc, beta1,
                                            one_m_beta1, beta2, one_m_beta2, eps,
                                            weight_decay, weight_decay, True, False)
        else:
            for i in range(ps.shape[0]):
                ps[i], ms[i], vs[i] = _adam(ps[i], gs[i], ms[i], vs[i], ss, bc, beta1,
                                            one_m_beta1, beta2, one_m_beta2, eps,
                                            weight_decay, weight_decay, False, False)


@with_twin("adam_segments_numpy")
def adam_segments(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                  starts: np.ndarray, ends: np.ndarray, steps, lr: float = 1e-3,
                  beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                  weight_decay: float = 0.0) -> None:
    """Adam over the ranges ``[starts[k], ends[k])`` of flat buffers, range k at ``steps[k]``.

    No checks: ``param``, ``grad``, ``m`` and ``v`` are 1-D C-contiguous arrays of one float
    dtype; ``starts``/``ends``/``steps`` have one entry per range (steps counted from 1).

    >>> import numpy as np
    >>> p, m, v = np.ones(3), np.zeros(3), np.zeros(3)
    >>> adam_segments(p, np.full(3, 3.0), m, v, np.array([0]), np.array([2]), [1], lr=0.1)
    >>> p.round(6)
    array([0.9, 0.9, 1. ])
    """
    size, bc2 = adam_bias(steps, lr, beta1, beta2, param.dtype)
    consts = adam_consts(beta1, beta2, eps, weight_decay, param.dtype)
    _adam_kernel(param, grad, m, v, starts, ends, size, bc2, *consts)


@with_twin("adam_ranges_numpy")
def adam_ranges(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                starts: np.ndarray, ends: np.ndarray, step_size: np.ndarray, bc2: np.ndarray,
                consts: tuple) -> None:
    """:func:`adam_segments` with its scalars already made: ``step_size``/``bc2`` one entry
    per range (:func:`~fungrad.kernels.optim_formulas.adam_bias`), ``consts`` what
    :func:`~fungrad.kernels.optim_formulas.adam_consts` returns. No checks, no conversions:
    for an optimizer that updates many parameters in one step and has checked them (its
    scalars are computed once per step, and a call costs about a microsecond).

    >>> import numpy as np
    >>> from fungrad.kernels.optim_formulas import adam_bias, adam_consts
    >>> p, m, v = np.ones(2), np.zeros(2), np.zeros(2)
    >>> adam_ranges(p, np.full(2, 3.0), m, v, np.array([0]), np.array([2]),
    ...             *adam_bias([1], 0.1, 0.9, 0.999, p.dtype),
    ...             adam_consts(0.9, 0.999, 1e-8, 0.0, p.dtype))
    >>> p.round(6)
    array([0.9, 0.9])
    """
    _adam_kernel(param, grad, m, v, starts, ends, step_size, bc2, *consts)


def _adam_args(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    name = "adam_update"
    if isinstance(step, (bool, np.bool_)) or int(step) != step or step < 1:
        raise ValueError(f"{name}: step must be an integer >= 1 (the update count), got {step}")
    hp = _nonneg(name, lr=lr, eps=eps, weight_decay=weight_decay)
    for key, beta in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= float(beta) < 1.0:
            raise ValueError(f"{name}: {key} must be in [0, 1), got {beta}")
    _check_state(name, param, m=m, v=v)
    grad = _grad(name, grad, param)
    hp.update(beta1=float(beta1), beta2=float(beta2))
    return grad, int(step), hp


def adam_update(param: np.ndarray, grad, m: np.ndarray, v: np.ndarray, step: int,
                lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                weight_decay: float = 0.0) -> None:
    """Adam step in place on ``param`` and its moment arrays ``m`` and ``v``.

    >>> import numpy as np
    >>> p, m, v = np.ones(2), np.zeros(2), np.zeros(2)
    >>> adam_update(p, np.array([3.0, -3.0]), m, v, step=1, lr=0.1)
    >>> p.round(6)
    array([0.9, 1.1])
    """
    grad, step, hp = _adam_args(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay)
    p, mm, vv = _work(param), _work(m), _work(v)
    g = np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1)
    starts, ends = _whole(p)
    adam_segments(p, g, mm, vv, starts, ends, [step], **hp)
    _copy_back(m, mm)
    _copy_back(v, vv)
    _copy_back(param, p)


def adam_update_numpy(param: np.ndarray, grad, m: np.ndarray, v: np.ndarray, step: int,
                      lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                      eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    """NumPy twin of :func:`adam_update`.

    >>> import numpy as np
    >>> p, m, v = np.ones(1, np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32)
    >>> adam_update_numpy(p, [1.0], m, v, step=1, lr=0.5)
    >>> p.dtype, p.round(5)
    (dtype('float32'), array([0.5], dtype=float32))
    """
    grad, step, hp = _adam_args(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay)
    adam_array(param, grad, m, v, step, **hp)
