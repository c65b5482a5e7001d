"""Learning-rate schedules with PyTorch's semantics: ``fungrad.optim.lr_scheduler``.

Make the scheduler after the optimizer; it sets the optimizer's ``lr`` to the schedule's first
value. Call ``scheduler.step()`` once per epoch (or per batch) **after** ``optimizer.step()``,
as in PyTorch; ``get_last_lr()`` is the list of the current learning rates (one: fungrad's
optimizers have a single parameter group), ``state_dict()`` / ``load_state_dict()`` checkpoint
the schedule. Under ``fg.jit`` the new rate takes effect at the next call without retracing
(the compiled step reads the optimizer's rate each time it runs).

>>> import numpy as np, fungrad as fg
>>> from fungrad.optim.lr_scheduler import StepLR
>>> w = fg.Tensor(np.ones(2), autograd=True)
>>> opt = fg.optim.SGD([w], lr=1.0)
>>> sched = StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     (w * w).sum().backward()
...     opt.step()
...     sched.step()
...     lrs.append(sched.get_last_lr()[0])
>>> lrs
[1.0, 0.5, 0.5, 0.25, 0.25]
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

from .._keywords import hints

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "LambdaLR"]


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``state_dict()``, ``load_state_dict()``.

    A subclass defines ``get_lr()``, the rate at ``self.last_epoch`` (it may read the
    optimizer's current rate, as PyTorch's chainable schedules do). ``last_epoch=-1`` starts a
    schedule; a larger value resumes one and needs the optimizer's ``initial_lr`` (set by the
    first scheduler made on it).

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.optim.lr_scheduler import LRScheduler
    >>> class Halve(LRScheduler):
    ...     def get_lr(self):
    ...         return [self.base_lrs[0] * 0.5 ** self.last_epoch]
    >>> opt = fg.optim.SGD([fg.Tensor(np.ones(1), autograd=True)], lr=0.8)
    >>> sched = Halve(opt); opt.step(); sched.step(); sched.get_last_lr()
    [0.4]
    """

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        if not hasattr(optimizer, "lr") or not hasattr(optimizer, "step"):
            raise TypeError(f"{type(self).__name__}: expected an optimizer with an lr, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            if getattr(optimizer, "initial_lr", None) is None:
                optimizer.initial_lr = float(optimizer.lr)
        elif getattr(optimizer, "initial_lr", None) is None:
            raise KeyError(f"{type(self).__name__}: last_epoch={last_epoch} resumes a "
                           "schedule, but the optimizer has no initial_lr (make the "
                           "scheduler with last_epoch=-1, or load its state_dict instead)")
        self.base_lrs = [float(optimizer.initial_lr)]
        self.last_epoch = int(last_epoch)
        self._step_count = 0
        self._initial = True
        self._steps_seen = _optimizer_steps(optimizer)
        self.step()
        self._initial = False

    def get_lr(self) -> list[float]:
        """The learning rate at ``last_epoch`` (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} defines no get_lr()")

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set: a list of one float."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance the schedule one epoch and set the optimizer's learning rate.

        Call it after ``optimizer.step()``, as in PyTorch; called first, it warns (the first
        rate of the schedule would be skipped).
        """
        if self._step_count == 1 and _optimizer_steps(self.optimizer) == self._steps_seen:
            warnings.warn(
                f"{type(self).__name__}.step() was called before optimizer.step(): call "
                "optimizer.step() first, then scheduler.step() (PyTorch's order); otherwise "
                "the first learning rate of the schedule is skipped", UserWarning, stacklevel=2)
        self._step_count += 1
        self.last_epoch += 1
        rate = float(self.get_lr()[0])
        self.optimizer.lr = rate
        self._last_lr = [float(self.optimizer.lr)]

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state: every attribute but the optimizer (a plain dict)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state ``state_dict()`` gave (the optimizer's rate is not changed:
        load the optimizer's own state for that, as in PyTorch)."""
        self.__dict__.update(state_dict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr[0]:g})"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    >>> import numpy as np, fungrad as fg
    >>> opt = fg.optim.SGD([fg.Tensor(np.ones(1), autograd=True)], lr=0.1)
    >>> sched = fg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    >>> opt.step(); sched.step(); round(opt.lr, 12)
    0.01
    """

    @hints
    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if int(step_size) < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rate, times ``gamma`` at each multiple of ``step_size``."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [float(self.optimizer.lr)]
        return [float(self.optimizer.lr) * self.gamma]


class CosineAnnealingLR(LRScheduler):
    """Anneal the learning rate from its initial value to ``eta_min`` along half a cosine
    over ``T_max`` epochs (then back up, as PyTorch's, if stepped further).

    >>> import numpy as np, fungrad as fg
    >>> opt = fg.optim.SGD([fg.Tensor(np.ones(1), autograd=True)], lr=1.0)
    >>> sched = fg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    >>> rates = []
    >>> for _ in range(4):
    ...     opt.step(); sched.step(); rates.append(round(sched.get_last_lr()[0], 4))
    >>> rates
    [0.8536, 0.5, 0.1464, 0.0]
    """

    @hints
    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1) -> None:
        if int(T_max) < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """PyTorch's recursive form: each rate from the previous one."""
        lr, base, lo, t = float(self.optimizer.lr), self.base_lrs[0], self.eta_min, self.T_max
        e = self.last_epoch
        if self._initial:
            return [lr]
        if self._step_count == 1 and e > 0:  # resumed: the closed form
            return [lo + (base - lo) * (1 + math.cos(e * math.pi / t)) / 2]
        if (e - 1 - t) % (2 * t) == 0:
            return [lr + (base - lo) * (1 - math.cos(math.pi / t)) / 2]
        return [(1 + math.cos(math.pi * e / t)) / (1 + math.cos(math.pi * (e - 1) / t))
                * (lr - lo) + lo]


class LambdaLR(LRScheduler):
    """Set the learning rate to the initial rate times ``lr_lambda(epoch)``.

    ``state_dict()`` leaves the function out (a lambda cannot be saved), as PyTorch's.

    >>> import numpy as np, fungrad as fg
    >>> opt = fg.optim.Adam([fg.Tensor(np.ones(1), autograd=True)], lr=0.1)
    >>> sched = fg.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1 / (1 + epoch))
    >>> opt.step(); sched.step(); sched.get_last_lr()
    [0.05]
    """

    @hints
    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float],
                 last_epoch: int = -1) -> None:
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != 1:
                raise ValueError(f"LambdaLR: fungrad's optimizers have one parameter group, "
                                 f"so one lr_lambda; got {len(lr_lambda)}")
            lr_lambda = lr_lambda[0]
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch, got "
                            f"{type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The initial rate times ``lr_lambda(last_epoch)``."""
        return [self.base_lrs[0] * float(self.lr_lambda(self.last_epoch))]

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state without the optimizer and the function."""
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambda")}


def _optimizer_steps(optimizer: Any) -> int:
    """How many times ``optimizer.step()`` has been called (0 if it does not count them)."""
    inner = getattr(optimizer, "optimizer", optimizer)  # a DistributedOptimizer wraps one
    return int(getattr(inner, "_steps_called", 0))
