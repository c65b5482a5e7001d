"""Losses: softmax cross-entropy (fused, for stability and speed) and mean squared error.

``cross_entropy`` is the mean over the batch of ``-log softmax(logits)[target]``. Its gradient is
``(softmax - onehot) / N`` — the book's listing forgets the ``1 / N``. Its VJP is the registered
op ``cross_entropy_grad`` (one fused pass in a Numba kernel), whose own VJP is written in ops,
so cross-entropy is twice differentiable.
"""

from __future__ import annotations

import numpy as np

from .batch_rules import align, batch_size, materialize, ndim_of
from ..domains import ClassTargets, Domain, Real
from ..errors import DTypeError, IndexRangeError, ShapeError
from ..kernels._dtypes import float_dtype
from ..registry import defop, unwrap
from .reduce import log_softmax, mean, softmax, sum
from .shape import reshape, shape_of

__all__ = ["cross_entropy", "cross_entropy_grad", "mse", "one_hot"]


def _rows(op: str, logits, targets):
    """Logits as (N, C) and targets as (N,), checked: the book flattens targets the same way."""
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    if logits.ndim == 0:
        raise ShapeError(f"{op}: logits must have a class axis, got a 0-d array")
    if targets.dtype.kind not in "iu":
        if targets.dtype.kind == "f" and targets.size and np.all(targets == np.round(targets)):
            targets = targets.astype(np.int64)  # the book passes integer-valued float labels too
        else:
            raise DTypeError(f"{op}: targets must be integer class ids, got dtype {targets.dtype}")
    n_classes = logits.shape[-1]
    n_rows = logits.size // n_classes if n_classes else 0
    if targets.size != n_rows:
        raise ShapeError(f"{op}: logits of shape {tuple(logits.shape)} hold {n_rows} rows of "
                         f"{n_classes} classes but targets of shape {tuple(targets.shape)} "
                         f"hold {targets.size} labels (expected {logits.shape[:-1]})")
    t = targets.reshape(-1)
    if t.size:
        lo, hi = t.min(), t.max()
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise IndexRangeError(f"{op}: target {bad} is out of range for {n_classes} classes "
                                  f"(valid: 0..{n_classes - 1})")
    return logits.reshape(n_rows, n_classes), t


def one_hot(targets, n_classes: int, dtype=np.float64) -> np.ndarray:
    """Rows of the identity: ``one_hot([2, 0], 3)`` is ``[[0, 0, 1], [1, 0, 0]]``."""
    t = np.asarray(targets).reshape(-1)
    out = np.zeros((t.size, n_classes), dtype=dtype)
    out[np.arange(t.size), t] = 1
    return out


def _float(logits) -> np.dtype:
    dt = logits if isinstance(logits, np.dtype) else np.asarray(logits).dtype
    return dt if dt.kind == "f" else np.dtype(np.float64)


# Numba has no vectorised exp here: the fused kernels win up to ~64 classes, NumPy beyond
# (benchmarks/KERNELS.md). The backward kernel has no exp and wins at every width.
_KERNEL_MAX_CLASSES = 64


def _softmax_kernels(n_classes: int):
    from ..kernels import softmax as k  # noqa: PLC0415 (Numba loads on first use)

    if n_classes <= _KERNEL_MAX_CLASSES:
        return k.softmax_xent_forward, k.softmax_forward, k.softmax_xent_backward
    return k.softmax_xent_forward_numpy, k.softmax_forward_numpy, k.softmax_xent_backward


def _kernel_rows(logits, targets):
    """Checked (N, C) logits and (N,) targets in the kernels' layout: C-contiguous, a float32
    or float64 computing dtype, int64 targets (the kernels trust this and check nothing)."""
    x, t = _rows("cross_entropy", logits, targets)
    x = np.ascontiguousarray(x, dtype=float_dtype("cross_entropy", x.dtype))
    return x, np.ascontiguousarray(t, dtype=np.int64)


def _cross_entropy(logits, targets):
    x, t = _kernel_rows(logits, targets)
    forward, _, _ = _softmax_kernels(x.shape[1])
    loss, _ = forward(x, t)
    return np.asarray(loss, dtype=_float(logits))


def _cross_entropy_grad(g, logits, targets):
    x, t = _kernel_rows(logits, targets)
    _, softmax_rows, backward = _softmax_kernels(x.shape[1])
    dx = backward(softmax_rows(x), t, float(np.asarray(g).reshape(())))
    return dx.astype(_float(logits), copy=False).reshape(np.shape(logits))


def _rows_shape(logits) -> tuple[int, int]:
    """(N, C) of logits (..., C), from the shape alone (the forward checked the values)."""
    shape = shape_of(logits)
    c = shape[-1]
    return int(np.prod(shape[:-1], dtype=np.int64)), c


def _targets_one_hot(targets, n: int, c: int, dtype) -> np.ndarray:
    """one_hot written as a comparison, so it works on arrays fg.jit traces too."""
    t = np.reshape(unwrap(targets), (n, 1))
    return (t == np.arange(c)).astype(dtype)


def _cross_entropy_grad_vjp_g(h, out, g, logits, targets):
    n, c = _rows_shape(logits)
    p = softmax(reshape(logits, (n, c)), axis=-1)
    diff = p - _targets_one_hot(targets, n, c, _float(getattr(unwrap(logits), "dtype",
                                                              np.float64)))
    return sum(reshape(h, (n, c)) * diff) / max(n, 1)


def _cross_entropy_grad_vjp_logits(h, out, g, logits, targets):
    n, c = _rows_shape(logits)
    p = softmax(reshape(logits, (n, c)), axis=-1)
    hp = reshape(h, (n, c)) * p
    dx = (hp - p * sum(hp, axis=-1, keepdims=True)) * (g / max(n, 1))
    return reshape(dx, shape_of(logits))


def _batched_rows(args, dims):
    """Logits ``(batch, rows, C)`` and targets ``(batch * rows,)`` of a batch of calls, the
    targets checked as the forward checks them (when they are concrete)."""
    (logits, targets), (dl, dt) = args, dims
    size = batch_size(args, dims)
    logits = materialize(logits, dl, size)
    targets = materialize(targets, dt, size)
    shape = shape_of(logits)
    if len(shape) < 2:
        raise ShapeError("cross_entropy: logits must have a class axis, got a 0-d array")
    c = shape[-1]
    n = int(np.prod(shape[1:-1], dtype=np.int64))
    if int(np.prod(shape_of(targets)[1:], dtype=np.int64)) != n:
        raise ShapeError(f"cross_entropy: logits of shape {shape[1:]} hold {n} rows of {c} "
                         f"classes but targets of shape {shape_of(targets)[1:]} hold a "
                         f"different number of labels (expected {shape[1:-1]})")
    t = reshape(targets, (-1,))
    if isinstance(t, np.ndarray):
        _rows("cross_entropy", np.empty((t.size, c)), t)  # dtype and range, as the forward
        if t.dtype.kind == "f":
            t = t.astype(np.int64)
    return reshape(logits, (size, n, c)), t, size, n, c


def _cross_entropy_batch(op, args, dims):
    # one mean per example: -log_softmax at the target, through a one-hot (no gather, so fg.jit
    # compiles it elementwise), averaged over each example's rows
    rows, t, size, n, c = _batched_rows(args, dims)
    dtype = _float(getattr(unwrap(rows), "dtype", np.float64))
    onehot = (reshape(t, (size, n, 1)) == np.arange(c)).astype(dtype)
    picked = sum(log_softmax(rows, axis=-1) * onehot, axis=-1)
    return -mean(picked, axis=1), 0


def _cross_entropy_grad_batch(op, args, dims):
    # the fused kernel on all rows at once gives (softmax - onehot) / (batch * rows): scaled
    # back by batch and by each example's cotangent
    (g, logits, targets), (dg, dl, dt) = args, dims
    rows, t, size, n, c = _batched_rows((logits, targets), (dl, dt))
    grad = reshape(cross_entropy_grad(1.0, reshape(rows, (size * n, c)), t), (size, n, c))
    scale = g * size if dg is None else reshape(materialize(g, dg, size), (size, 1, 1)) * size
    shape = shape_of(logits)
    per_example = shape if dl is None else shape[:dl] + shape[dl + 1:]
    return reshape(grad * scale, (size,) + per_example), 0


cross_entropy_grad = defop(
    "cross_entropy_grad", _cross_entropy_grad,
    (_cross_entropy_grad_vjp_g, _cross_entropy_grad_vjp_logits, None),
    Domain((Real(), Real(-3, 3), ClassTargets(of=1)),
           [((), (4, 5), (4,)), ((), (2, 3, 4), (2, 3))]),
    nondiff=(2,), doc="(softmax(logits) - onehot(targets)) * g / N: the VJP of cross_entropy.",
    batch=_cross_entropy_grad_batch)

cross_entropy = defop(
    "cross_entropy", _cross_entropy,
    (lambda g, out, logits, targets: cross_entropy_grad(g, logits, targets), None),
    Domain((Real(-3, 3), ClassTargets(of=0)),
           [((4, 5), (4,)), ((2, 3, 4), (2, 3)), ((1, 3), (1,))]),
    nondiff=(1,),
    doc="Mean over rows of -log softmax(logits)[target]; logits (..., C), integer targets (...).",
    batch=_cross_entropy_batch)


def _mse(pred, target):
    d = np.subtract(pred, target)
    return np.mean(d * d)


def _mse_vjp(g, out, pred, target):
    d = pred - target
    return d * (g * (2.0 / max(int(np.prod(shape_of(d))), 1)))


def _mse_batch(op, args, dims):
    pred, target = align(args, dims)
    d = pred - target
    return mean(d * d, axis=tuple(range(1, ndim_of(d)))), 0


mse = defop("mse", _mse, (
    _mse_vjp,
    lambda g, out, pred, target: -_mse_vjp(g, out, pred, target),
), Domain((Real(), Real()), [((3, 4), (3, 4)), ((3, 4), (4,)), ((5,), (5,))]),
    doc="Mean squared error mean((pred - target) ** 2), as PyTorch's mse_loss.",
    batch=_mse_batch)
