"""Optimizers: the book's SGD (with momentum), Adam, AdamW, RMSprop, gradient-norm clipping,
learning-rate schedules, and HIPS autograd's functional loops.

They update ``p.data`` in place from ``p.grad`` with the fused kernels of
:mod:`fungrad.kernels.optim` (NumPy for small models, so that they never load Numba).
Parameters whose ``.grad`` is None are skipped. Every parameter and gradient is checked
before any is changed, so a bad gradient leaves the whole model as it was; every step bumps
the parameters' versions, so a graph recorded before the step refuses to backpropagate.

**Flat buffers** (``flat=True``, the default) for many small parameters (at most 16,384
numbers each on average; larger ones are updated where they are, one kernel call each,
which is already cheap and needs no second copy of the weights): at its first step an
optimizer moves the parameters of each dtype into one contiguous buffer (each ``p.data``
becomes a view of it, with the same values) and their gradients into another (each
``p.grad`` a Tensor viewing its slot; backward accumulates into it in place), so one kernel
call updates every parameter: for
deep_chain's 6,000 small parameters a step is 20-60 times faster than one update per
parameter (``benchmarks/OPTIM.md``). What to know:

- An array fetched from ``p.data`` *before* the first step no longer follows the parameter
  afterwards; read ``p.data`` again (as training code normally does), or pass ``flat=False``.
- ``step()`` (the book's ``zero=True``), ``zero()`` and ``zero_grad(set_to_none=False)``
  zero the gradient buffer in place and keep the fast path. After ``zero_grad()`` (gradients
  set to None, PyTorch's default) the next step first checks and copies the new gradients
  into the buffer: still one fused update, but a few milliseconds for 6,000 parameters.
- Anything that breaks the layout is noticed at the next step and handled: ``p.data = ...``,
  ``p.grad = ...``, edits of ``opt.parameters``, ``load_state_dict``. Parameters that are
  read-only, views of other arrays, or share memory with each other (tied weights) are never
  packed; the optimizer then updates each parameter where it is. (Setting a packed
  ``p.data``'s writeable flag off later is not re-checked at every step: to freeze a
  parameter, remove it from ``opt.parameters``.)

Optimizer state is kept per parameter (``opt.state[p]``), and ``state_dict()`` /
``load_state_dict()`` checkpoint it with ``fg.save`` / ``fg.load``.

>>> import numpy as np, fungrad as fg
>>> w = fg.Tensor(np.array([1.0, -2.0]), autograd=True)
>>> opt = fg.optim.SGD([w], alpha=0.5)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w.data, w.grad.data
(array([0., 0.]), array([0., 0.]))

The package's modules, each with one job:

``optimizers``      the optimizer classes (parameter list, state, ``step``, state dicts)
``rules``           each optimizer's update rule ``rule(p, g, state, hp)``, written once, used
                    eagerly, one parameter at a time and under ``fg.jit``
``_flat``           where an optimizer keeps things: packed per-dtype flat buffers
``_state_dict``     hyperparameter checks and the reading of optimizer state dicts
``lr_scheduler``    PyTorch's schedules (``fungrad.optim.lr_scheduler.StepLR``)
``loops``           ``sgd``/``adam``/... over pytrees (``fungrad.misc.optimizers``, autograd's)

The formulas the rules apply are in :mod:`fungrad.kernels.optim_formulas`, from which the
Numba kernels for flat buffers are compiled (:mod:`fungrad.kernels.optim`).
"""

from . import lr_scheduler  # PyTorch's path: fungrad.optim.lr_scheduler.StepLR
from .optimizers import (
    SGD, Adam, AdamW, Optimizer, OptimizerState, ParamGroup, RMSprop, clip_grad_norm,
)

__all__ = ["Optimizer", "OptimizerState", "ParamGroup", "SGD", "Adam", "AdamW", "RMSprop",
           "clip_grad_norm", "lr_scheduler"]
