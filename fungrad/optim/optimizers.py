"""The optimizer classes: parameter list, per-parameter state, ``step``, state dicts.

See :mod:`fungrad.optim` for what flat buffers mean to a user.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence

import numpy as np

from .. import recording
from .._keywords import hints
from ..errors import DTypeError
from ..kernels import optim_formulas as _formulas
from ..tensor import Tensor
from . import rules as _rules
from ._flat import Layout, ParamList, checked_grads, make_layout
from ._state_dict import check_hparams as _check_hparams
from ._state_dict import parse_state

__all__ = ["Optimizer", "OptimizerState", "ParamGroup", "SGD", "Adam", "AdamW", "RMSprop",
           "clip_grad_norm"]

# Flat groups smaller than this are updated with NumPy (the kernel's call overhead and first
# load cost more than they save; benchmarks/KERNELS.md), larger ones with the fused kernel.
# Kernel and NumPy twin agree bit for bit, so the choice never changes a result.
_FUSED_MIN_SIZE = 4096
# The one range of a whole parameter starts at 0 (never written; writeable, as the layouts'
# own range arrays are, so that the kernel is the same compiled specialisation for both).
_START = np.zeros(1, np.intp)


class _Rate:
    """A learning rate: a float attribute also held in a 0-d float64 Tensor
    (``opt._rate_tensor``), which ``fg.jit`` reads each time a compiled step runs, so that a
    schedule changes it without retracing. Assignments are checked (a number >= 0)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__["_rate"]

    def __set__(self, obj: Any, value: float) -> None:
        rate = _check_hparams(obj._name, {self.attr: value})[self.attr]
        obj.__dict__["_rate"] = rate
        t = obj.__dict__.get("_rate_tensor")
        if t is None:
            obj.__dict__["_rate_tensor"] = Tensor._make(np.array(rate))
        else:
            t._data = np.array(rate)


class Optimizer:
    """Base class: the parameter list, per-parameter state, ``step``, ``zero``, state dicts.

    Subclasses define ``_hparams()`` (validated hyperparameters), ``_set_hparams``,
    ``_STATE`` (names of per-parameter state arrays) and ``_RULE``, their update rule of
    :mod:`fungrad.optim.rules`. Those that keep their state in flat buffers also say how to
    update a packed buffer (``_update_flat``: the Numba kernels compiled from the same
    formulas); one parameter at a time, every optimizer runs ``_RULE``. ``flat`` turns
    packing on (the default) or off; see the module docstring.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.ones(3), autograd=True)
    >>> opt = fg.optim.SGD([w], alpha=0.1, momentum=0.9)
    >>> (w * w).sum().backward(); opt.step()
    >>> sorted(opt.state_dict())
    ['hparams.lr', 'hparams.momentum', 'num_parameters', 'state.0.momentum_buffer']
    """

    _STATE: tuple[str, ...] = ()
    _EXPORT_STEP = False  # whether state dicts carry a per-parameter step count
    # An optimizer may keep its per-parameter state in Tensors instead of flat buffers and
    # run its rule on them, the same code eagerly and under fg.jit (see _rule_step).
    _by_rule = False
    _RULE: Callable[..., None]  # the update rule (rule-based optimizers)
    _GUARDED: tuple[str, ...] = ()  # hyperparameters that decide the rule's structure
    _rate_tensor: Tensor  # the learning rate as a 0-d Tensor (see _Rate)

    def __init__(self, parameters: Iterable[Tensor], name: str, flat: bool = True) -> None:
        self._name = name
        self.flat = bool(flat)
        self._rstate: dict[int, tuple[Tensor, dict[str, Tensor]]] = {}
        self._steps_called = 0
        self.initial_lr: float | None = None  # set by the first lr_scheduler made on it
        self._layout: Layout | None = None
        self._carry: dict[int, tuple[Tensor, tuple]] | None = None  # loaded, not yet laid out
        self.parameters = _param_list(parameters, name)
        make_layout(list(self.parameters), name, False, _no_state)  # check them now

    # -- the parameter list -----------------------------------------------------------------

    @property
    def parameters(self) -> ParamList:
        """The parameters, a list you may edit (``del opt.parameters[0]``, ``append``)."""
        return self._params

    @parameters.setter
    def parameters(self, value: Iterable[Tensor]) -> None:
        self._params = ParamList(value)

    @property
    def param_groups(self) -> list["ParamGroup"]:
        """PyTorch's view of the hyperparameters: one group, a dict-like ``{"lr": ...,
        "params": [...]}`` whose assignments set the optimizer's attributes
        (``opt.param_groups[0]["lr"] = 0.01``)."""
        return [ParamGroup(self)]

    @property
    def state(self) -> "OptimizerState":
        """Per-parameter state: ``opt.state[p]`` is a dict of arrays (views, live) and the
        step count; ``del opt.state[p]`` starts ``p``'s state afresh."""
        return OptimizerState(self)

    # -- stepping ---------------------------------------------------------------------------

    def step(self, zero: bool = True) -> None:
        """Update every parameter that has a gradient; then zero the gradients (the book's).

        >>> import numpy as np, fungrad as fg
        >>> w = fg.Tensor(np.array([2.0]), autograd=True)
        >>> opt = fg.optim.SGD([w], alpha=0.25)
        >>> (w * w).sum().backward(); opt.step(zero=False)
        >>> w.data, w.grad.data
        (array([1.]), array([4.]))
        """
        self._steps_called += 1  # what lr_scheduler checks its order against
        if self._by_rule:  # written with operators: the same code eagerly and under fg.jit
            return self._rule_step(zero)
        hook = recording.thread.hook
        if hook is not None:  # fg.jit traces this thread: the step becomes program steps
            return hook.optimizer_step(self, Optimizer._step_now, zero)
        self._step_now(zero)

    def _rule_step(self, zero: bool) -> None:
        """One step by the class's rule. Every parameter and gradient is checked first;
        then each parameter's data and state arrays are updated in place. Reads only
        ``p.data``, ``p.grad`` and state Tensors' ``.data``, so under ``fg.jit`` (which makes
        them traced arrays) it records the same step; the learning rate is a 0-d Tensor read
        when the program runs, the hyperparameters in ``_GUARDED`` retrace when they change."""
        name = f"{self._name}.step"
        hp: dict[str, Any] = dict(self._hparams())
        hook = recording.thread.hook
        if hook is not None:
            for attr in self._GUARDED:
                hook.guard_attribute(self, attr, getattr(self, attr))
        hp["lr"] = self._rate_tensor.data
        hp.update(self._rule_flags())
        if hook is None:
            hp = _rules.Prepared(hp)  # scalars cast once for all the parameters
        live = []
        for i, p in enumerate(self._params):
            g = p.grad
            if g is None:
                continue
            pd, gd = p.data, g.data
            if pd.dtype.kind != "f":
                raise DTypeError(f"{name}: parameter {i} has dtype {pd.dtype}; optimizers "
                                 "update floating-point parameters; nothing was updated")
            if tuple(gd.shape) != tuple(pd.shape):
                raise ValueError(f"{name}: parameter {i} has shape {tuple(pd.shape)} but its "
                                 f"gradient has shape {tuple(gd.shape)}; nothing was updated")
            if gd.dtype.kind not in "biuf":
                raise DTypeError(f"{name}: parameter {i} has a gradient of dtype {gd.dtype}; "
                                 "nothing was updated")
            if isinstance(pd, np.ndarray) and not pd.flags.writeable:
                raise ValueError(f"{name}: parameter {i} is read-only; nothing was updated")
            live.append((p, pd, gd))
        needed = self._STATE
        for p, pd, gd in live:
            state = {k: t.data for k, t in self._rule_state(p, needed).items()}
            state["step"] += 1  # the rule reads this update's number
            self._RULE(pd, gd, state, hp)
            p.bump_version()
        if zero:
            self.zero()

    def _rule_flags(self) -> dict[str, Any]:
        """Hyperparameters the rule takes that are not numbers in the state dict's sense."""
        return {}

    def _rule_state(self, p: Tensor, names: tuple[str, ...]) -> dict[str, Tensor]:
        """``p``'s state Tensors (a step count and ``names``), zeros when first asked for."""
        entry = self._rstate.get(id(p))
        if entry is None or entry[0] is not p:
            entry = (p, {"step": Tensor._make(np.zeros((), np.int64))})
            self._rstate[id(p)] = entry
        state = entry[1]
        for k in names:
            if k not in state:
                state[k] = Tensor._make(np.zeros(tuple(p.shape), p.dtype))
        return state

    def _step_now(self, zero: bool = True) -> None:
        hp = self._hparams()
        layout = self._layout
        if layout is not None and layout.packed and layout.claim(self._params, True, zero):
            self._step_claimed(layout, zero, hp)  # the fast path: every gradient in place
            return
        layout, grads, live = self._prepare(zero, f"{self._name}.step")
        if layout.packed:
            self._update_packed(layout, live, hp)
        else:
            self._update_each(layout, live, grads, hp)
        params = layout.params if live is None else [layout.params[i] for i in live]
        for p in params:
            p._version += 1  # p.bump_version(), inlined: a graph recorded before must not run
        if zero:
            self._zero_live(params, layout.packed)
        if layout.packed and zero:
            layout.zero_buffers()

    def _step_claimed(self, layout: Layout, zero: bool, hp: dict | None = None) -> None:
        """The step over a packed layout that :meth:`Layout.claim` has just checked (and
        whose versions it bumped): one fused update per dtype, then the gradients zeroed."""
        self._update_packed(layout, None, self._hparams() if hp is None else hp)
        if zero:
            layout.zero_buffers()

    def zero(self) -> None:
        """Set every gradient to zero in place (the book's ``zero``).

        >>> import numpy as np, fungrad as fg
        >>> w = fg.Tensor(np.array([2.0]), autograd=True)
        >>> opt = fg.optim.SGD([w]); (w * w).sum().backward(); opt.zero()
        >>> w.grad.data
        array([0.])
        """
        hook = recording.thread.hook
        if hook is not None:  # fg.jit: zeroing becomes a program step
            return hook.optimizer_zero(self)
        layout = self._layout
        if layout is not None and layout.packed and layout.claim(self._params, False, True):
            layout.zero_buffers()
            return
        for p in self._params:
            g = getattr(p, "grad", None)
            if g is not None:
                arr = g.data if isinstance(g, Tensor) else np.asarray(g)
                arr[...] = 0
                if isinstance(g, Tensor):
                    g.bump_version()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``p.grad = None``, PyTorch's default), or zero them in place
        with ``set_to_none=False`` (keeps the flat gradient buffer: the faster next step).

        >>> import numpy as np, fungrad as fg
        >>> w = fg.Tensor(np.array([2.0]), autograd=True)
        >>> opt = fg.optim.SGD([w]); (w * w).sum().backward(); opt.zero_grad()
        >>> w.grad is None
        True
        """
        if not set_to_none:
            return self.zero()
        for p in self._params:
            p.grad = None

    def flat_grads(self) -> list[np.ndarray] | None:
        """The packed gradient buffers, one flat array per dtype, when every parameter's
        ``.grad`` is a view of them (else None: unpacked, or a parameter without gradient).

        Reducing a buffer in place (an MPI allreduce of the whole model's gradients in one
        call) changes every ``p.grad`` at once. Gradients not yet in the buffers (the first
        backward, or after ``zero_grad()``) are moved there first, and before the first step
        the parameters too (as the first step would); values do not change.

        >>> import numpy as np, fungrad as fg
        >>> a, b = (fg.Tensor(np.ones(2, np.float32), autograd=True) for _ in range(2))
        >>> opt = fg.optim.SGD([a, b])
        >>> (a * 2.0 + b * 3.0).sum().backward()
        >>> bufs = opt.flat_grads()
        >>> bufs
        [array([2., 2., 3., 3.], dtype=float32)]
        >>> bufs[0] *= 0.5
        >>> b.grad.data
        array([1.5, 1.5], dtype=float32)
        """
        if self._by_rule:  # no packed buffers: each gradient is where backward put it
            return None
        layout = self._layout
        if layout is None or not layout.packed or not layout.claim(self._params, False, False):
            layout, grads, live = self._prepare(True, f"{self._name}.flat_grads")
            if not layout.packed or live is not None:
                return None
        return [g.grad for g in layout.groups if g.grad is not None]

    def _prepare(self, repoint: bool, name: str) -> tuple[Layout, list, list[int] | None]:
        """The slow path: check everything, (re)build the layout if the parameters moved,
        gather the gradients into a packed layout (``repoint``: and make each ``p.grad`` its
        view). Nothing changes until all checks pass. Returns the layout, the checked
        gradients and the positions of the parameters that have one (None: all)."""
        params = list(self._params)
        layout = self._layout
        reuse = self._carry is None and layout is not None and layout.same_params(params)
        if reuse and layout is not None:
            layout.adopt(self._params)
        else:
            layout = make_layout(params, name, self.flat, self._entry, self._params)
        grads, live, foreign = checked_grads(name, layout, reuse)
        if not layout.packed:
            for i in range(len(params)) if live is None else live:
                if not params[i]._data.flags.writeable:
                    raise ValueError(f"{name}: parameter {i} is read-only; nothing was "
                                     "updated")
        if not reuse:  # from here on the step goes through
            layout.commit()
            self._layout, self._carry = layout, None
        if layout.packed:
            layout.gather(grads, foreign, repoint)
        return layout, grads, live

    def _update_packed(self, layout: Layout, live: list[int] | None, hp: dict) -> None:
        """One fused update per dtype over the ranges of the live parameters."""
        live_set = None if live is None or len(live) == len(layout.params) else set(live)
        for g in layout.groups:
            ks = None
            if live_set is not None:
                ks = [k for k, i in enumerate(g.members) if i in live_set]
                if not ks:
                    continue
            starts, ends, steps = g.segments(ks)
            kernel = g.size >= _FUSED_MIN_SIZE or len(starts) > 4
            self._update_flat(g, starts, ends, steps, hp, kernel)

    def _update_each(self, layout: Layout, live: list[int] | None, grads: list,
                     hp: dict) -> None:
        """One update per parameter, where each one's data is (an unpacked layout)."""
        live_set = set(range(len(layout.params)) if live is None else live)
        for g in layout.groups:
            ks = [k for k, i in enumerate(g.members) if i in live_set]
            if ks:
                g.steps[ks] += 1
                items = [(k, layout.params[g.members[k]]._data, grads[g.members[k]])
                         for k in ks]
                self._update_group(g, items, hp)

    @staticmethod
    def _zero_live(params: list[Tensor], packed: bool) -> None:
        """Zero the gradients of ``params`` after a slow step (packed: only their versions;
        the caller zeroes the buffers they view in one pass)."""
        for p in params:
            g = p.grad
            if isinstance(g, Tensor):
                g._version += 1  # a graph that read the old gradient must not run on zeros
                if not packed:
                    g._data.fill(0)
            elif g is not None:
                np.asarray(g)[...] = 0

    # -- state -----------------------------------------------------------------------------

    def _entry(self, p: Tensor) -> tuple | None:
        """``p``'s state as ``(steps, {name: array})``, or None before its first step."""
        if self._by_rule:
            entry = self._rstate.get(id(p))
            if entry is None or entry[0] is not p:
                return None
            arrays = {k: t._data for k, t in entry[1].items() if k != "step"}
            return int(entry[1]["step"]._data), arrays
        if self._carry is not None:
            item = self._carry.get(id(p))
            return item[1] if item is not None and item[0] is p else None
        return self._layout.entry(p) if self._layout is not None else None

    def _forget(self, p: Tensor) -> None:
        if self._by_rule:
            self._rstate.pop(id(p), None)
        elif self._carry is not None:
            self._carry.pop(id(p), None)
        elif self._layout is not None:
            self._layout.forget(p)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's state as a flat ``{name: ndarray}`` (copies), for ``fg.save``.

        Per-parameter state is named by the parameter's position in ``opt.parameters``
        (``"state.3.exp_avg"``); hyperparameters (``"hparams.lr"``), the number of parameters
        (``"num_parameters"``) and step counts are 0-d arrays. Parameters that have taken no
        step have no entries.

        >>> import numpy as np, fungrad as fg
        >>> w = fg.Tensor(np.ones(2), autograd=True)
        >>> opt = fg.optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()
        >>> sd = opt.state_dict()
        >>> sd["state.0.step"], sd["hparams.lr"], sd["state.0.exp_avg"].shape
        (array(1), array(0.1), (2,))
        """
        out = {"num_parameters": np.array(len(self._params), np.int64)}
        for key, value in self._hparams().items():
            out["hparams." + key] = np.array(value, np.float64)
        for i, p in enumerate(self._params):
            entry = self._entry(p)
            if entry is None:
                continue
            step, arrays = entry
            if self._EXPORT_STEP:
                out[f"state.{i}.step"] = np.array(step, np.int64)
            for key in self._STATE:
                if key in arrays:
                    out[f"state.{i}.{key}"] = np.array(arrays[key], copy=True)
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the optimizer's state and hyperparameters by ``state`` — all or nothing.

        Every name, shape and dtype is checked against the current parameters first; a
        mismatch raises :class:`~fungrad.errors.CheckpointError` naming each bad key, with the
        optimizer unchanged. The arrays are copied.

        >>> import numpy as np, fungrad as fg
        >>> w = fg.Tensor(np.ones(2), autograd=True)
        >>> opt = fg.optim.SGD([w], alpha=0.1, momentum=0.9)
        >>> (w * w).sum().backward(); opt.step()
        >>> fresh = fg.optim.SGD([w]); fresh.load_state_dict(opt.state_dict())
        >>> fresh.momentum, fresh.state[w]["momentum_buffer"]
        (0.9, array([2., 2.]))
        """
        params = list(self._params)
        hp, entries = parse_state(self, params, state)
        if self._by_rule:
            self._set_hparams(hp)
            self._rstate = {}
            for i, (step, arrays) in entries.items():
                p = params[i]
                tensors = {k: Tensor._make(a) for k, a in arrays.items()}
                tensors["step"] = Tensor._make(np.array(step, np.int64))
                self._rstate[id(p)] = (p, tensors)
            return
        carry = {}
        for i, (step, arrays) in entries.items():
            p = params[i]
            carry[id(p)] = (p, (step, arrays))
        self._set_hparams(hp)
        self._carry, self._layout = carry, None

    # -- to be defined by each optimizer ----------------------------------------------------

    def _hparams(self) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_hparams(self, hp: dict[str, float]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update_flat(self, g, starts, ends, steps, hp, kernel) -> None:  # pragma: no cover
        """Update the ranges ``[starts, ends)`` of group ``g``'s packed buffers."""
        raise NotImplementedError

    def _update_group(self, g, items, hp) -> None:
        """Update each ``(slot, data, grad)`` of group ``g``, one parameter at a time, by the
        rule (a large parameter by the kernel compiled from the same formula)."""
        names = self._state_names(hp)
        views = [g.views(name) for name in names]
        hp = _rules.Prepared(hp)
        for k, data, grad in items:
            state = {name: vs[k] for name, vs in zip(names, views)}
            if data.size >= _FUSED_MIN_SIZE:
                self._update_large(data, grad, state, int(g.steps[k]), hp)
            else:
                state["step"] = int(g.steps[k])
                self._RULE(data, grad, state, hp)

    def _state_names(self, hp: dict) -> tuple[str, ...]:
        """The state arrays these hyperparameters update (made on first use)."""
        return self._STATE

    def _update_large(self, data, grad, state, step, hp) -> None:  # pragma: no cover
        """Update one large parameter with the kernel."""
        raise NotImplementedError

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v:g}" for k, v in self._hparams().items())
        return f"{self._name}({len(self._params)} parameters, {hp})"


class ParamGroup(MutableMapping):
    """``opt.param_groups[0]``: the optimizer's parameters and hyperparameters as PyTorch's
    dict; reading or assigning ``"lr"`` reads or sets ``opt.lr``, and so on.

    >>> import numpy as np, fungrad as fg
    >>> opt = fg.optim.SGD([fg.Tensor(np.ones(1), autograd=True)], lr=0.1, momentum=0.9)
    >>> group = opt.param_groups[0]
    >>> group["lr"], group["momentum"], len(group["params"])
    (0.1, 0.9, 1)
    >>> group["lr"] = 0.05; opt.lr
    0.05
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self._opt = optimizer

    def _keys(self) -> list[str]:
        names = [k for k in self._opt._hparams() if not k.startswith("beta")]
        if any(k.startswith("beta") for k in self._opt._hparams()):
            names.append("betas")
        return ["params", *names] + (["initial_lr"] if self._opt.initial_lr is not None else [])

    def __getitem__(self, key: str) -> Any:
        if key == "params":
            return self._opt.parameters
        if key not in self._keys():
            raise KeyError(key)
        value = getattr(self._opt, key)
        return bool(value) if key in ("nesterov", "centered") else value

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._keys():
            raise KeyError(f"{self._opt._name}: no hyperparameter {key!r}; the group has "
                           f"{', '.join(self._keys())}")
        setattr(self._opt, "parameters" if key == "params" else key, value)

    def __delitem__(self, key: str) -> None:
        raise TypeError("a parameter group's keys cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


class OptimizerState(Mapping):
    """``opt.state``: each parameter that has taken a step -> ``{"step": n, name: array}``.

    The arrays are live views of the optimizer's buffers; ``del opt.state[p]`` resets ``p``.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.ones(2), autograd=True)
    >>> opt = fg.optim.Adam([w]); (w * w).sum().backward(); opt.step()
    >>> sorted(opt.state[w]), w in opt.state
    (['exp_avg', 'exp_avg_sq', 'step'], True)
    >>> del opt.state[w]; len(opt.state)
    0
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self._opt = optimizer

    def __getitem__(self, p: Tensor) -> dict:
        entry = self._opt._entry(p) if isinstance(p, Tensor) else None
        if entry is None:
            raise KeyError("this parameter has no optimizer state (it has taken no step)")
        step, arrays = entry
        return {"step": step, **arrays}

    def __delitem__(self, p: Tensor) -> None:
        self[p]  # KeyError if absent
        self._opt._forget(p)

    def __iter__(self) -> Iterator[Tensor]:
        return (p for p in list(self._opt._params) if self._opt._entry(p) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, p: object) -> bool:
        return isinstance(p, Tensor) and self._opt._entry(p) is not None


class SGD(Optimizer):
    """Stochastic gradient descent: ``p -= alpha * grad``; with momentum,
    ``v = momentum * v + grad; p -= alpha * v`` (PyTorch's form).

    ``alpha`` is the book's name for the learning rate; ``lr`` is an alias. ``flat=False``
    leaves each ``p.data`` where it is (see the module docstring). ``weight_decay`` adds
    ``weight_decay * p`` to the gradient (L2, PyTorch's meaning), ``nesterov=True`` takes
    Nesterov's step ``p -= alpha * (grad + momentum * v)`` and ``dampening`` scales the
    gradient's share of the velocity after the first step, all as PyTorch's ``SGD``; with any
    of them, the update runs as one NumPy rule per parameter (no flat buffers) rather than
    the fused kernel.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.array([1.0]), autograd=True)
    >>> opt = fg.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     (w * 1.0).sum().backward()
    ...     opt.step()
    >>> w.data.round(4), opt.alpha == opt.lr == 0.1
    (array([0.71]), True)
    """

    _RULE = staticmethod(_rules.sgd)
    _GUARDED = ("momentum", "weight_decay", "nesterov", "dampening")
    alpha = _Rate()

    @hints
    def __init__(self, parameters: Iterable[Tensor], alpha: float = 0.1,
                 momentum: float = 0.0, *, lr: float | None = None, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0, flat: bool = True) -> None:
        super().__init__(parameters, "SGD", flat)
        if lr is not None:
            if alpha != 0.1 and alpha != lr:
                raise TypeError(f"SGD: got alpha={alpha} and lr={lr}; they are the same "
                                "setting, pass one")
            alpha = lr
        hp = _check_hparams("SGD", {"alpha": alpha, "momentum": momentum,
                                    "weight_decay": weight_decay, "dampening": dampening})
        if nesterov and (hp["momentum"] == 0.0 or hp["dampening"] != 0.0):
            raise ValueError("SGD: nesterov=True needs a momentum > 0 and no dampening")
        self.alpha, self.momentum = hp["alpha"], hp["momentum"]
        self.weight_decay, self.nesterov = hp["weight_decay"], bool(nesterov)
        self.dampening = hp["dampening"]
        self._by_rule = self._rule_wanted()

    def _rule_wanted(self) -> bool:
        return bool(self.weight_decay or self.nesterov or self.dampening)

    @property
    def lr(self) -> float:
        """The learning rate (the book's ``alpha``)."""
        return self.alpha

    @lr.setter
    def lr(self, value: float) -> None:
        self.alpha = _check_hparams("SGD", {"lr": value})["lr"]

    def _hparams(self) -> dict[str, float]:
        if self._by_rule != self._rule_wanted():
            raise ValueError("SGD.step: weight_decay, nesterov and dampening are chosen when "
                             "the optimizer is made (they change how its state is kept); make "
                             "a new SGD(..., weight_decay=..., nesterov=..., dampening=...)")
        hp = {"lr": self.alpha, "momentum": self.momentum}
        if self._by_rule:
            hp.update(weight_decay=self.weight_decay, nesterov=float(self.nesterov),
                      dampening=self.dampening)
        return _check_hparams("SGD.step", hp)

    def _set_hparams(self, hp: dict[str, float]) -> None:
        self.alpha, self.momentum = hp["lr"], hp["momentum"]
        if self._by_rule:
            self.weight_decay, self.nesterov = hp["weight_decay"], bool(hp["nesterov"])
            self.dampening = hp["dampening"]

    def _rule_flags(self) -> dict[str, Any]:
        return {"nesterov": self.nesterov}

    @property
    def _STATE(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("momentum_buffer",) if self.momentum or not self._by_rule else ()

    def _update_flat(self, g, starts, ends, steps, hp, kernel) -> None:
        vel = g.buffer("momentum_buffer") if hp["momentum"] else None
        update = _kernels().sgd_segments if kernel else _formulas.sgd_segments_numpy
        update(g.data, g.grad, starts, ends, hp["lr"], hp["momentum"], vel)

    def _state_names(self, hp: dict) -> tuple[str, ...]:
        return ("momentum_buffer",) if hp["momentum"] else ()

    def _update_large(self, data, grad, state, step, hp) -> None:
        _kernels().sgd_update(data, grad, hp["lr"], hp["momentum"],
                              state.get("momentum_buffer"))


class Adam(Optimizer):
    """Adam (Kingma & Ba), with PyTorch's bias correction and L2 ``weight_decay``.

    Each parameter counts its own steps (a parameter without a gradient skips a step), as
    PyTorch does. ``flat=False`` leaves each ``p.data`` where it is.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.array([3.0, -3.0]), autograd=True)
    >>> opt = fg.optim.Adam([w], lr=0.1)
    >>> for _ in range(100):
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> bool(np.abs(w.data).max() < 0.5)
    True
    """

    _RULE = staticmethod(_rules.adam)
    _STATE = ("exp_avg", "exp_avg_sq")
    _EXPORT_STEP = True

    @hints
    def __init__(self, parameters: Iterable[Tensor], lr: float = 1e-3,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, flat: bool = True) -> None:
        super().__init__(parameters, "Adam", flat)
        _check_betas("Adam", betas)
        hp = _check_hparams("Adam", {"lr": lr, "beta1": betas[0], "beta2": betas[1],
                                     "eps": eps, "weight_decay": weight_decay})
        self._set_hparams(hp)

    def _hparams(self) -> dict[str, float]:
        _check_betas("Adam.step", self.betas)
        return _check_hparams("Adam.step", {
            "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps,
            "weight_decay": self.weight_decay})

    def _set_hparams(self, hp: dict[str, float]) -> None:
        self.lr, self.betas, self.eps = hp["lr"], (hp["beta1"], hp["beta2"]), hp["eps"]
        self.weight_decay = hp["weight_decay"]

    def _update_flat(self, g, starts, ends, steps, hp, kernel) -> None:
        update = _kernels().adam_segments if kernel else _formulas.adam_segments_numpy
        update(g.data, g.grad, g.buffer("exp_avg"), g.buffer("exp_avg_sq"), starts, ends,
               steps, **hp)

    def _update_large(self, data, grad, state, step, hp) -> None:
        _kernels().adam_update(data, grad, state["exp_avg"], state["exp_avg_sq"], step, **hp)

    def _update_group(self, g, items, hp) -> None:
        """As the base class's, but when one of the parameters is large (Numba is loaded for
        it anyway) every one of them goes through the kernel, with the scalars made once for
        the step: a kernel call then costs about a microsecond, where the NumPy rule costs
        about ten on a small parameter and ``adam_update``'s checks some forty (the layout
        has checked the parameters and gradients; the moments are the optimizer's own)."""
        if all(data.size < _FUSED_MIN_SIZE for _, data, _ in items):
            return super()._update_group(g, items, hp)
        dt = g.dtype
        lr, b1, b2 = hp["lr"], hp["beta1"], hp["beta2"]
        consts = _formulas.adam_consts(b1, b2, hp["eps"], hp["weight_decay"], dt)
        ms, vs = g.views("exp_avg"), g.views("exp_avg_sq")
        bias: dict[int, tuple] = {}
        update = _kernels().adam_ranges
        for k, data, grad in items:
            step = int(g.steps[k])
            scalars = bias.get(step)
            if scalars is None:
                scalars = bias[step] = _formulas.adam_bias([step], lr, b1, b2, dt)
            p = data if data.flags.c_contiguous else np.ascontiguousarray(data)
            if grad.dtype != dt or not grad.flags.c_contiguous:
                grad = np.ascontiguousarray(grad, dtype=dt)
            update(p.reshape(-1), grad.reshape(-1), ms[k].reshape(-1), vs[k].reshape(-1),
                   _START, np.array([p.size], np.intp), *scalars, consts)
            if p is not data:
                data[...] = p


class RMSprop(Optimizer):
    """RMSprop, as PyTorch's: each step divides the gradient by the root of a running mean of
    its squares (smoothing ``alpha``; ``centered=True`` first subtracts the squared running
    mean of the gradient), with optional ``momentum`` and L2 ``weight_decay``.

    ``alpha`` here is the smoothing constant, as in PyTorch (the learning rate is ``lr``; in
    the book's ``SGD``, ``alpha`` is the learning rate). The update is
    :func:`fungrad.optim.rules.rmsprop`, the same code eagerly and under ``fg.jit``.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.array([3.0, -3.0]), autograd=True)
    >>> opt = fg.optim.RMSprop([w], lr=0.1)
    >>> for _ in range(100):
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> bool(np.abs(w.data).max() < 0.1)
    True
    """

    _RULE = staticmethod(_rules.rmsprop)
    _GUARDED = ("alpha", "eps", "weight_decay", "momentum", "centered")
    _EXPORT_STEP = True
    _by_rule = True
    lr = _Rate()

    @hints
    def __init__(self, parameters: Iterable[Tensor], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        super().__init__(parameters, "RMSprop", flat=False)
        self._set_hparams(_check_hparams("RMSprop", {
            "lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
            "momentum": momentum, "centered": float(bool(centered))}))

    @property
    def _STATE(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("square_avg",) + ("momentum_buffer",) * bool(self.momentum) + (
            ("grad_avg",) * bool(self.centered))

    def _hparams(self) -> dict[str, float]:
        return _check_hparams("RMSprop.step", {
            "lr": self.lr, "alpha": self.alpha, "eps": self.eps,
            "weight_decay": self.weight_decay, "momentum": self.momentum,
            "centered": float(bool(self.centered))})

    def _set_hparams(self, hp: dict[str, float]) -> None:
        self.lr, self.alpha, self.eps = hp["lr"], hp["alpha"], hp["eps"]
        self.weight_decay, self.momentum = hp["weight_decay"], hp["momentum"]
        self.centered = bool(hp["centered"])

    def _rule_flags(self) -> dict[str, Any]:
        return {"centered": self.centered}


class AdamW(Optimizer):
    """AdamW (Loshchilov & Hutter), as PyTorch's: Adam whose ``weight_decay`` (default 0.01)
    shrinks the parameters directly, ``p *= 1 - lr * weight_decay``, instead of being added
    to the gradient as :class:`Adam`'s L2 term is.

    The update is :func:`fungrad.optim.rules.adamw`, the same code eagerly and under
    ``fg.jit``; each parameter counts its own steps for the bias correction.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.array([3.0, -3.0]), autograd=True)
    >>> opt = fg.optim.AdamW([w], lr=0.1)
    >>> for _ in range(100):
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> bool(np.abs(w.data).max() < 0.5), opt.state[w]["step"]
    (True, 100)
    """

    _RULE = staticmethod(_rules.adamw)
    _STATE = ("exp_avg", "exp_avg_sq")
    _GUARDED = ("betas", "eps", "weight_decay")
    _EXPORT_STEP = True
    _by_rule = True
    lr = _Rate()

    @hints
    def __init__(self, parameters: Iterable[Tensor], lr: float = 1e-3,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(parameters, "AdamW", flat=False)
        _check_betas("AdamW", betas)
        self._set_hparams(_check_hparams("AdamW", {
            "lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
            "weight_decay": weight_decay}))

    def _hparams(self) -> dict[str, float]:
        _check_betas("AdamW.step", self.betas)
        return _check_hparams("AdamW.step", {
            "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps,
            "weight_decay": self.weight_decay})

    def _set_hparams(self, hp: dict[str, float]) -> None:
        self.lr, self.betas, self.eps = hp["lr"], (hp["beta1"], hp["beta2"]), hp["eps"]
        self.weight_decay = hp["weight_decay"]


def clip_grad_norm(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients in place so that their joint L2 norm is at most ``max_norm``.

    Returns the norm before clipping, summed in float64 (so float32 gradients near 1e20 are
    measured, not overflowed); ``inf`` or ``nan`` gradients are left as they are and their norm
    returned, so the caller can skip the step.

    >>> import numpy as np, fungrad as fg
    >>> w = fg.Tensor(np.zeros(2), autograd=True)
    >>> (w * np.array([3.0, 4.0])).sum().backward()
    >>> fg.optim.clip_grad_norm([w], 1.0), w.grad.data.round(3)
    (5.0, array([0.6, 0.8]))
    """
    hook = recording.thread.hook
    if hook is not None:  # fg.jit: the norm and the scaling become program steps
        return hook.clip_grad_norm(parameters, max_norm)
    max_norm = _check_hparams("clip_grad_norm", {"max_norm": max_norm})["max_norm"]
    params = _param_list(parameters, "clip_grad_norm")
    grads = []
    for i, p in enumerate(params):
        g = p.grad if isinstance(p, Tensor) else None
        if g is None:
            continue
        arr = g.data if isinstance(g, Tensor) else np.asarray(g)
        if arr.dtype.kind != "f":
            raise DTypeError(f"clip_grad_norm: parameter {i} has a gradient of dtype "
                             f"{arr.dtype}; expected floating point")
        grads.append((g, arr))
    total = 0.0
    for _, arr in grads:
        flat = arr.reshape(-1)
        if flat.dtype != np.float64:
            flat = flat.astype(np.float64)
        total += float(np.dot(flat, flat))
    total = math.sqrt(total)
    if math.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g, arr in grads:
            arr *= arr.dtype.type(scale)
            if isinstance(g, Tensor):
                g.bump_version()
    return total


# --------------------------------------------------------------------------------- helpers


def _param_list(parameters: Any, name: str) -> list:
    """The parameters as a list: an iterable of Tensors, or the book's callable list."""
    from ..nn.module import Module  # noqa: PLC0415 (nn imports optim's neighbours, not optim)

    if isinstance(parameters, Module):
        raise TypeError(f"{name}: got the module {type(parameters).__name__} itself; pass its "
                        f"parameters: {name}(model.parameters(), ...)")
    if isinstance(parameters, Tensor):
        raise TypeError(f"{name}: got a single Tensor; pass a list of parameters: "
                        f"{name}([w], ...)")
    if isinstance(parameters, (str, bytes)) or not (
            callable(parameters) or isinstance(parameters, Iterable)):
        raise TypeError(f"{name}: expected a list of parameter Tensors (model.parameters()), "
                        f"got {type(parameters).__name__}")
    return list(parameters() if callable(parameters) else parameters)


def _kernels():
    """:mod:`fungrad.kernels.optim`, imported on first use (it loads Numba)."""
    from ..kernels import optim  # noqa: PLC0415

    return optim


def _no_state(p: Tensor) -> None:
    return None


def _check_betas(name: str, betas: Any) -> None:
    try:
        ok = len(betas) == 2 and all(0.0 <= float(b) < 1.0 for b in betas)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas!r}")
