"""The engine's interface to a tracer: what ``fungrad.recording.thread.hook`` must provide.

The engine never imports ``fungrad.jit``. While fg.jit traces a function on a thread, it
installs its tracer as that thread's ``recording.thread.hook``; the engine checks the slot at a
few points and, when it is set, hands the work over through the methods below. This module
lists them all, as a :class:`typing.Protocol`, so that the contract is written once: the
slot is typed with it, mypy checks every call site, and a test checks that
:class:`fungrad.jit.tracer.Tracer` implements it.

Who calls what (the call sites are the only places the engine reads the slot):

============================  ===============================================================
method                        called from
============================  ===============================================================
``traced_type``               ``recording.is_traced``, ``recording.check_finite``, ``Tensor.__init__``,
                              ``nn.Embedding`` (is this array a traced one?)
``prepare``, ``forward``      ``registry.apply``: Tensors become program inputs; an op's
                              forward runs on traced arrays and is recorded
``tensor_data``,              ``Tensor.data`` get / set
``set_tensor_data``
``get_grad``, ``set_grad``    ``Tensor.grad`` get / set
``new_tensor_data``           ``Tensor(traced_array)``
``accumulate_grad``           ``backprop.backward``: a cotangent reached a leaf
``check``                     ``recording.check_values``, ``nn.Embedding``: a value check made at
                              every call of the program
``guard_attribute``           ``Module.training``, optimizer hyperparameters: a read value
                              whose change retraces
``generator``                 ``fungrad.random``: a generator whose draws are program steps
``optimizer_step``,           ``Optimizer.step`` / ``zero`` and ``optim.clip_grad_norm``
``optimizer_zero``,
``clip_grad_norm``
============================  ===============================================================

What the jit reads of an optimizer's state (its packed layout, the per-parameter arrays and
step counts) is not part of this interface: it is
:class:`OptimizerStateView`, below, which the optimizers' module provides.

>>> from fungrad.hooks import TracerHook
>>> from fungrad.jit.tracer import Tracer
>>> isinstance(Tracer(), TracerHook)
True
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

__all__ = ["TracerHook", "OptimizerStateView"]


@runtime_checkable
class TracerHook(Protocol):
    """What the engine calls on ``recording.thread.hook`` (see the module docstring for where)."""

    #: the type of the tracer's arrays (the engine compares ``type(x) is hook.traced_type``)
    traced_type: type

    def prepare(self, args: Any) -> None:
        """``apply`` is about to run an op on ``args``: untraced Tensors become inputs."""

    def forward(self, op: Any, datas: Any, params: Any) -> Any:
        """Run ``op``'s forward on (traced) ``datas`` and record it; return its output."""

    def tensor_data(self, t: Any) -> Any:
        """``t.data`` while tracing: the traced array of ``t``."""

    def read_values(self, t: Any) -> None:
        """``t``'s values are read as constants while tracing (``t.item()``, ``if t:``): keep
        them, guarded, so that a change retraces."""

    def set_tensor_data(self, t: Any, value: Any) -> None:
        """``t.data = value`` while tracing (journaled; committed when the step succeeds)."""

    def get_grad(self, t: Any) -> Any:
        """``t.grad`` while tracing."""

    def set_grad(self, t: Any, value: Any) -> None:
        """``t.grad = value`` while tracing."""

    def new_tensor_data(self, data: Any, dtype: Any) -> Any:
        """``Tensor(data, dtype=...)`` of a traced array: the new Tensor's own traced data."""

    def accumulate_grad(self, t: Any, c: Any) -> None:
        """Backward reached leaf ``t`` with cotangent ``c``: add it to ``t.grad``."""

    def check(self, fn: Callable, *args: Any, bounds: tuple[int, int] | None = None) -> None:
        """Run the value check ``fn(*args)`` now and at every call of the program."""

    def guard_attribute(self, obj: Any, name: str, value: Any) -> None:
        """The trace read ``obj.name == value``: a changed value retraces."""

    def generator(self, gen: Any) -> Any:
        """A stand-in for generator ``gen`` (None: the default) whose draws are steps."""

    def optimizer_step(self, opt: Any, eager_step: Callable, zero: bool = True) -> None:
        """``opt.step(zero)`` while tracing."""

    def optimizer_zero(self, opt: Any) -> None:
        """``opt.zero()`` while tracing."""

    def clip_grad_norm(self, parameters: Any, max_norm: float) -> Any:
        """``fungrad.optim.clip_grad_norm(parameters, max_norm)`` while tracing."""


@runtime_checkable
class OptimizerStateView(Protocol):
    """What fg.jit needs of an optimizer to compile its step, instead of reading private
    attributes: whether its state covers ``params`` (its first step lays the state out), an
    identity of the current layout (a change retraces), each parameter's state array (a
    view of the optimizer's buffer, updated in place) and step count."""

    def state_ready(self, params: list) -> bool:
        """Whether every parameter of ``params`` has its state laid out."""

    def layout_id(self) -> int:
        """An identity of the state layout; a different value means the layout changed."""

    def state_array(self, p: Any, name: str) -> np.ndarray:
        """Parameter ``p``'s state array ``name`` (written in place by the compiled step)."""

    def step_count(self, p: Any) -> int:
        """How many steps parameter ``p`` has taken."""
