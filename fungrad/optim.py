"""Optimizers: the book's SGD (with momentum), Adam, and gradient-norm clipping.

They update ``p.data`` in place from ``p.grad`` with the fused kernels of
:mod:`fungrad.kernels.optim` (loaded on the first step, so ``import fungrad`` stays fast).
Parameters whose ``.grad`` is None are skipped. Every parameter is checked before any is
changed, so a bad gradient leaves the whole model as it was.

>>> import numpy as np, fungrad as fg
>>> w = fg.Tensor(np.array([1.0, -2.0]), autograd=True)
>>> opt = fg.optim.SGD([w], alpha=0.5)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w.data, w.grad.data
(array([0., 0.]), array([0., 0.]))
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "clip_grad_norm"]

# parameters smaller than this are updated with NumPy, larger ones with the fused kernel
_FUSED_MIN_SIZE = 4096


class Optimizer:
    """Base class: holds the parameter list; ``zero()`` / ``zero_grad()``; ``step(zero=True)``."""

    def __init__(self, parameters: Iterable[Tensor], name: str) -> None:
        params = list(parameters() if callable(parameters) else parameters)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, expected a "
                                "Tensor (pass model.parameters() or model.get_parameters())")
            if p.data.dtype not in (np.float32, np.float64):
                raise TypeError(f"{name}: parameter {i} has dtype {p.data.dtype}; optimizers "
                                "update float32 or float64 parameters")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears more than once in the list")
        self.parameters = params
        self._name = name

    def zero(self) -> None:
        """Set every gradient to zero in place (the book's ``zero``)."""
        for p in self.parameters:
            if p.grad is not None:
                p.grad.data[...] = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``p.grad = None``), or zero them with ``set_to_none=False``."""
        if not set_to_none:
            return self.zero()
        for p in self.parameters:
            p.grad = None

    def step(self, zero: bool = True) -> None:
        """Update every parameter that has a gradient; then zero the gradients (the book's)."""
        live = self._checked()
        self._update(live)
        for _, p, _ in live:
            p.bump_version()  # a graph recorded before this step can no longer backpropagate
        if zero:
            self.zero()

    def _checked(self) -> list[tuple[int, Tensor, np.ndarray]]:
        live = []
        for i, p in enumerate(self.parameters):
            if p.grad is None:
                continue
            g = p.grad.data if isinstance(p.grad, Tensor) else np.asarray(p.grad)
            if g.shape != p.data.shape:
                raise ValueError(f"{self._name}.step: parameter {i} has shape {p.data.shape} "
                                 f"but its gradient has shape {g.shape}; nothing was updated")
            if not p.data.flags.writeable:
                raise ValueError(f"{self._name}.step: parameter {i} is read-only; nothing was "
                                 "updated")
            live.append((i, p, g))
        return live

    def _update(self, live) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent: ``p -= alpha * grad``; with momentum,
    ``v = momentum * v + grad; p -= alpha * v`` (PyTorch's form).

    ``alpha`` is the book's name for the learning rate; ``lr`` is an alias.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.array([1.0]), autograd=True)
    >>> opt = fg.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     (w * 1.0).sum().backward()
    ...     opt.step()
    >>> w.data.round(4), opt.alpha == opt.lr == 0.1
    (array([0.71]), True)
    """

    def __init__(self, parameters: Iterable[Tensor], alpha: float = 0.1,
                 momentum: float = 0.0, *, lr: float | None = None) -> None:
        super().__init__(parameters, "SGD")
        if lr is not None:
            if alpha != 0.1 and alpha != lr:
                raise TypeError(f"SGD: got alpha={alpha} and lr={lr}; they are the same "
                                "setting, pass one")
            alpha = lr
        _nonneg("SGD", alpha=alpha, momentum=momentum)
        self.alpha = float(alpha)
        self.momentum = float(momentum)
        self.velocity: dict[int, np.ndarray] = {}

    @property
    def lr(self) -> float:
        return self.alpha

    @lr.setter
    def lr(self, value: float) -> None:
        _nonneg("SGD", lr=value)
        self.alpha = float(value)

    def _update(self, live) -> None:
        alpha, momentum = self.alpha, self.momentum
        sgd_update = None
        for i, p, g in live:
            v = None
            if momentum:
                v = self.velocity.get(i)
                if v is None:
                    v = self.velocity[i] = np.zeros_like(p.data)
            data = p.data
            if data.size < _FUSED_MIN_SIZE:
                # small arrays: the fused kernel's call overhead exceeds the NumPy passes it
                # saves (benchmarks/KERNELS.md: sgd_update on 256 numbers is a tie or a loss)
                if v is not None:
                    v *= momentum
                    v += g
                    g = v
                data -= alpha * g
                continue
            if sgd_update is None:
                from .kernels.optim import sgd_update  # noqa: PLC0415 (Numba loads lazily)
            sgd_update(data, g, alpha, momentum, v)


class Adam(Optimizer):
    """Adam (Kingma & Ba), with PyTorch's bias correction and L2 ``weight_decay``.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.array([3.0, -3.0]), autograd=True)
    >>> opt = fg.optim.Adam([w], lr=0.1)
    >>> for _ in range(100):
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> bool(np.abs(w.data).max() < 0.5)
    True
    """

    def __init__(self, parameters: Iterable[Tensor], lr: float = 1e-3,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(parameters, "Adam")
        _nonneg("Adam", lr=lr, eps=eps, weight_decay=weight_decay)
        if len(betas) != 2 or not all(0.0 <= float(b) < 1.0 for b in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas!r}")
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.state: dict[int, tuple[np.ndarray, np.ndarray, list]] = {}

    def _update(self, live) -> None:
        from .kernels.optim import adam_update  # noqa: PLC0415

        for i, p, g in live:
            st = self.state.get(i)
            if st is None:
                st = self.state[i] = (np.zeros_like(p.data), np.zeros_like(p.data), [0])
            m, v, count = st
            count[0] += 1
            adam_update(p.data, g, m, v, count[0], self.lr, self.betas[0], self.betas[1],
                        self.eps, self.weight_decay)


def clip_grad_norm(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients in place so that their joint L2 norm is at most ``max_norm``.

    Returns the norm before clipping (``inf`` or ``nan`` gradients are left as they are and
    their norm returned, so the caller can skip the step).

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.zeros(2), autograd=True)
    >>> (w * np.array([3.0, 4.0])).sum().backward()
    >>> fg.optim.clip_grad_norm([w], 1.0), w.grad.data.round(3)
    (5.0, array([0.6, 0.8]))
    """
    _nonneg("clip_grad_norm", max_norm=max_norm)
    params = list(parameters() if callable(parameters) else parameters)
    grads = [p.grad.data for p in params if isinstance(p, Tensor) and p.grad is not None]
    total = math.sqrt(sum(float(np.vdot(g, g).real) for g in grads))
    if math.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= g.dtype.type(scale)
    return total


def _nonneg(name: str, **values) -> None:
    for key, val in values.items():
        if not float(val) >= 0.0:
            raise ValueError(f"{name}: {key} must be >= 0, got {val}")
