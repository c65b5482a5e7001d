"""Module (the book's ``Layer``): parameters found from attributes, state dicts, train/eval.

A module's parameters are the leaf Tensors with ``autograd=True`` held in its attributes —
directly, in sub-modules, or in lists, tuples and dicts of them — in attribute order, each
once. Modules hold no backward code: ``forward`` composes Tensor methods and ``fg`` functions.

>>> import numpy as np, fungrad as fg
>>> from fungrad.nn import Module
>>> class Scale(Module):
...     def __init__(self):
...         self.s = fg.Tensor(np.array([2.0]), autograd=True)
...     def forward(self, x):
...         return x * self.s
>>> m = Scale()
>>> m(np.array([1.0, 3.0]))
array([2., 6.])
>>> [name for name, _ in m.named_parameters()], m.state_dict()
(['s'], {'s': array([2.])})
"""

from __future__ import annotations

import inspect
from typing import Any, Iterator, Mapping, NamedTuple

import numpy as np

from .. import recording
from ..errors import CheckpointError
from ..tensor import Tensor
from . import _dtype_guard

__all__ = ["Module", "Layer", "functional_call", "LoadResult"]


class LoadResult(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""

    missing_keys: list
    unexpected_keys: list


class _BookParameters(list):
    """The book's ``self.parameters`` list, also callable as PyTorch's ``parameters()``.

    Book-style layers append to it (``self.parameters.append(w)``, ``self.parameters +=
    layer.get_parameters()``); calling it returns every parameter of the module.
    """

    def __init__(self, owner: "Module", items=()) -> None:
        super().__init__(items)
        self._owner = owner

    def __call__(self, recurse: bool = True) -> list:
        return [p for _, p in self._owner.named_parameters(recurse=recurse)]


_INTERNAL = ("_book_params", "training", "_training")


class Module:
    """Base class of layers: ``forward``, ``__call__``, parameters, state dicts, train/eval.

    Subclasses set parameters and sub-modules as attributes and define ``forward``; calling
    ``super().__init__()`` is optional. ``parameters()`` (PyTorch) and ``get_parameters()``
    (the book) give the same list; the book's ``self.parameters.append(w)`` also works.

    >>> import fungrad as fg
    >>> layers = [fg.nn.Linear(2, 3, rng=0), fg.nn.Tanh(), fg.nn.Linear(3, 1, rng=1)]
    >>> model = fg.nn.Sequential(layers)
    >>> [n for n, _ in model.named_parameters()]
    ['layers.0.weight', 'layers.0.bias', 'layers.2.weight', 'layers.2.bias']
    >>> len(model.get_parameters()) == len(model.parameters()) == 4
    True
    """

    @property
    def training(self) -> bool:
        """Whether the module is in training mode (Dropout active); set by ``train()``."""
        value = self.__dict__.get("_training", True)
        hook = recording.thread.hook
        if hook is not None:  # fg.jit: a step traced in one mode retraces in the other
            hook.guard_attribute(self, "training", value)
        return value

    @training.setter
    def training(self, value: bool) -> None:
        self.__dict__["_training"] = bool(value)

    def __init__(self) -> None:
        pass

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get(name)
        if old is not None and old is not value and isinstance(old, (Tensor, Module)):
            recording.structure_changed()  # fg.jit: a program that captured ``old`` retraces
        object.__setattr__(self, name, value)

    # -- the book's parameter list / PyTorch's parameters() ---------------------------------

    @property
    def parameters(self) -> _BookParameters:
        """Call it for every parameter (``m.parameters()``); the book appends to it."""
        book = self.__dict__.get("_book_params")
        if book is None:
            book = _BookParameters(self)
            self.__dict__["_book_params"] = book
        return book

    @parameters.setter
    def parameters(self, value) -> None:
        self.__dict__["_book_params"] = _BookParameters(self, value)

    def get_parameters(self) -> list[Tensor]:
        """The book's name for ``parameters()``: a list of this module's parameters."""
        return [p for _, p in self.named_parameters()]

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, parameter)`` pairs, each parameter once, in attribute order."""
        for name, p, _, _ in self._walk(prefix, recurse):
            yield name, p

    def _walk(self, prefix: str, recurse: bool):
        """Yield ``(name, tensor, container, key)`` for each parameter (first place found)."""
        seen: set[int] = set()
        for name, t, box, key in _locations(self, prefix, recurse, set()):
            if id(t) not in seen:
                seen.add(id(t))
                yield name, t, box, key

    def children(self) -> Iterator["Module"]:
        """The direct sub-modules (in attributes, lists, tuples and dicts)."""
        for _, value in _attributes(self):
            yield from _modules_in(value)

    def modules(self) -> Iterator["Module"]:
        """This module and every module below it, each once."""
        seen: set[int] = set()
        stack = [self]
        while stack:
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield m
            stack.extend(reversed(list(m.children())))

    # -- calling ------------------------------------------------------------------------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every layer's forward, the book's direct .forward() calls included, warns once when
        # float32 parameters meet float64 input or the reverse (see nn/_dtype_guard.py)
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get("forward")
        if inspect.isfunction(forward):
            cls.forward = _dtype_guard.checked(forward)  # type: ignore[method-assign]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the module's output; subclasses define it (the base class raises).

        Call the module itself (``m(x)``, PyTorch's way) or ``m.forward(x)`` (the book's):
        both run this. When the module's own float parameters and a float input differ in
        dtype (float32 and float64), a ``UserWarning`` naming the layer and both dtypes is
        shown once per layer type; NumPy's promotion then decides the result's dtype.

        >>> import fungrad as fg
        >>> fg.nn.Module().forward(1.0)
        Traceback (most recent call last):
        NotImplementedError: Module does not define forward()
        """
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``module(*args)`` is ``module.forward(*args)``.

        >>> import numpy as np, fungrad as fg
        >>> fg.nn.Tanh()(np.zeros(2))
        array([0., 0.])
        """
        return self.forward(*args, **kwargs)

    # -- modes and gradients ------------------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Set training mode (Dropout active) on this module and all below it; returns self."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (Dropout is the identity); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``p.grad = None``)."""
        for _, p in self.named_parameters():
            p.grad = None

    # -- state dicts ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's data, by dotted name (what ``fg.save`` writes).

        >>> import fungrad as fg
        >>> sd = fg.nn.Linear(2, 1, rng=0).state_dict()
        >>> sorted(sd), sd["weight"].shape
        (['bias', 'weight'], (2, 1))
        """
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> LoadResult:
        """Copy ``state`` into the parameters, in place — all of them or none.

        Every name, shape, dtype and the parameters' writability are checked before anything
        is written; any problem raises :class:`~fungrad.errors.CheckpointError` listing all of
        them, with the model unchanged. ``strict=False`` tolerates missing and unexpected
        names (not bad shapes). Each parameter written gets a new version, so a graph recorded
        before the load refuses to backpropagate (it would give gradients of the new weights).

        >>> import fungrad as fg
        >>> a, b = fg.nn.Linear(2, 1, rng=0), fg.nn.Linear(2, 1, rng=1)
        >>> b.load_state_dict(a.state_dict())
        LoadResult(missing_keys=[], unexpected_keys=[])
        >>> bool((a.weight.data == b.weight.data).all())
        True
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{where}: expected a mapping of names to arrays, got "
                            f"{type(state).__name__}")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if strict:
            problems += [f"missing parameter '{k}'" for k in missing]
            problems += [f"unexpected name '{k}'" for k in unexpected]
        values = {}
        for name, p in own.items():
            if name in state:
                arr = _loadable(name, p, state[name], problems)
                if arr is not None:
                    values[name] = arr
        if problems:
            raise CheckpointError(f"{where}: the state does not match the model (nothing was "
                                  f"loaded): " + "; ".join(problems))
        for name, arr in values.items():
            p = own[name]
            np.copyto(p.data, arr)
            p.bump_version()  # an in-place write: graphs recorded before it must not run
        return LoadResult(missing, unexpected)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


Layer = Module  # the book's name


def _loadable(name: str, p: Tensor, raw: Any, problems: list) -> np.ndarray | None:
    """``raw`` as an array that fits parameter ``p``, or None with the reason in problems."""
    arr = np.asarray(raw.data if isinstance(raw, Tensor) else raw)
    if arr.dtype == object:
        problems.append(f"'{name}' is an object array; expected {p.dtype}")
    elif arr.shape != p.shape:
        problems.append(f"'{name}' has shape {arr.shape}, the model expects {p.shape}")
    elif arr.dtype != p.dtype:
        problems.append(f"'{name}' has dtype {arr.dtype}, the model expects {p.dtype} "
                        f"(convert it with .astype)")
    elif not p.data.flags.writeable:
        problems.append(f"'{name}' is read-only in the model (its .data has writeable=False), "
                        "so it cannot be loaded in place; make it writeable or drop it from "
                        "the state and pass strict=False")
    else:
        return arr
    return None


def _attributes(module: Module):
    for key, value in vars(module).items():
        if key not in _INTERNAL:
            yield key, value


def _modules_in(value) -> Iterator[Module]:
    if isinstance(value, Module):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _modules_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _modules_in(v)


def _is_param(value) -> bool:
    return isinstance(value, Tensor) and value.requires_grad and value.is_leaf


def _locations(module: Module, prefix: str, recurse: bool, visiting: set):
    """Every place a parameter is held: ``(name, tensor, container, key)``, duplicates kept."""
    if id(module) in visiting:
        return
    visiting.add(id(module))
    for key, value in _attributes(module):
        yield from _in_value(value, prefix + key, module, key, recurse, visiting, top=True)
    book = module.__dict__.get("_book_params")
    for i, value in enumerate(book or ()):
        if _is_param(value):
            yield f"{prefix}parameters.{i}", value, book, i
    visiting.discard(id(module))


def _in_value(value, name, box, key, recurse, visiting, top=False):
    if _is_param(value):
        yield name, value, box, key
    elif isinstance(value, Module):
        if recurse:
            yield from _locations(value, name + ".", recurse, visiting)
    elif isinstance(value, (list, tuple, dict)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            yield from _in_value(v, f"{name}.{k}", value, k, recurse, visiting)


def functional_call(module: Module, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``module(*args, **kwargs)`` with some parameters replaced by ``params`` (by name).

    The values may be Tensors or arrays — in particular the traced inputs of ``fg.grad``, so a
    module becomes a pure function of its parameters. The module is restored afterwards.

    >>> import numpy as np, fungrad as fg
    >>> lin = fg.nn.Linear(2, 1, rng=0)
    >>> loss = lambda p, x: fg.sum(fg.nn.functional_call(lin, p, x) ** 2)
    >>> g = fg.grad(loss)(lin.state_dict(), np.ones((3, 2)))
    >>> sorted(g), g["weight"].shape
    (['bias', 'weight'], (2, 1))
    """
    locations: dict[str, list] = {}
    by_id: dict[int, str] = {}
    for name, t, box, key in _locations(module, "", True, set()):
        first = by_id.setdefault(id(t), name)
        locations.setdefault(first, []).append((box, key))
    unknown = [k for k in params if k not in locations]
    if unknown:
        raise KeyError(f"functional_call: {type(module).__name__} has no parameter "
                       f"{unknown[0]!r}; its parameters are {sorted(locations)}")
    saved = []
    try:
        for name, value in params.items():
            value = value if isinstance(value, Tensor) else Tensor(value)
            for box, key in locations[name]:
                saved.append((box, key, _get(box, key)))
                _set(box, key, value)
        return module(*args, **kwargs)
    finally:
        for box, key, old in reversed(saved):
            _set(box, key, old)


def _get(box, key):
    return getattr(box, key) if isinstance(box, Module) else box[key]


def _set(box, key, value) -> None:
    if isinstance(box, Module):
        setattr(box, key, value)
    elif isinstance(box, tuple):
        raise TypeError("functional_call: cannot replace a parameter held in a tuple")
    else:
        box[key] = value

