"""Where an optimizer keeps things: flat per-dtype buffers for state, parameters and gradients.

The parameters of one dtype form a :class:`FlatGroup`; parameter ``k`` of a group owns the range
``[starts[k], ends[k])`` of each of the group's flat buffers. Optimizer state (momentum,
Adam's moments, step counts) always lives in such buffers, found through the :class:`Layout`
by the parameter itself, never by its position in a list: deleting a parameter from
``opt.parameters`` leaves the others their own state.

A *packed* layout also holds the parameters' values and gradients in flat buffers: each
``p.data`` is a view of the group's ``data`` buffer and each ``p.grad`` a Tensor viewing its
slot of the ``grad`` buffer. Backward accumulates into an existing ``.grad`` in place, so the
gradients land in the buffer and one kernel call updates the whole group. A layout is packed
only when that is invisible to the values: every parameter writeable, owning its memory (or
holding its slot of an earlier optimizer's buffer) and sharing memory with no other
parameter, so that tied weights stay tied.

The layout never decides anything about update rules; :mod:`fungrad.optim` does. The hot
checks read ``Tensor._data`` and ``Tensor.grad`` directly: the ``data`` property costs twice
as much per parameter, and for 6,000 parameters that is the whole budget of a step.
"""

from __future__ import annotations

import math
import operator
import weakref
from typing import Callable

import numpy as np

from .. import recording
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# Flat data buffers made by any optimizer (by id): a parameter whose .data is a view of one
# may be packed again (by a rebuilt layout or a new optimizer). Weak: a buffer lives as long
# as some parameter views it.
_PACK_BUFFERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

Entry = tuple  # (steps taken: int >= 1, {state name: array shaped like the parameter})


class ParamList(list):
    """``opt.parameters``: a list that counts its edits, so a step notices them for free.

    >>> from fungrad.optim._flat import ParamList
    >>> ps = ParamList([1, 2, 3])
    >>> del ps[0]; ps.append(4)
    >>> ps, ps.generation
    ([2, 3, 4], 2)
    """

    __slots__ = ("generation",)

    def __init__(self, items=()) -> None:
        super().__init__(items)
        self.generation = 0

    def _edited(self) -> None:
        self.generation += 1


def _counting(name: str):
    method = getattr(list, name)

    def edit(self, *args):
        result = method(self, *args)
        self.generation += 1
        return result

    edit.__name__ = name
    edit.__doc__ = method.__doc__
    return edit


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend",
              "insert", "pop", "remove", "clear", "sort", "reverse"):
    setattr(ParamList, _name, _counting(_name))
del _name


_VERSION = Tensor.__dict__["_version"]  # the slot behind Tensor._version


class GradView(Tensor):
    """A packed layout's gradient Tensor (``p.grad``, a view of its slot of the flat gradient
    buffer), whose version counter is its own count plus its layout's shared ``epoch``: a
    claim announces a change of every gradient of the layout with one bump of the epoch,
    not one per Tensor (6,000 Tensors: a fifth of a fast step). ``_version`` reads and writes
    as a Tensor's does (a write keeps the epoch and sets the own count), so every check of
    versions (a backward's, fg.jit's) sees each change as before.

    >>> import numpy as np
    >>> epoch = [0]
    >>> g = GradView.over(np.zeros(2), epoch)
    >>> g._version += 1; epoch[0] += 2
    >>> g._version
    3
    >>> g.detach_epoch(); epoch[0] += 5; g._version
    3
    """

    __slots__ = ("_epoch",)
    _epoch: list

    @staticmethod
    def over(data: np.ndarray, epoch: list) -> "GradView":
        """A gradient Tensor viewing ``data`` (no grad, no node) counting ``epoch``'s bumps."""
        t = object.__new__(GradView)
        t._epoch = epoch
        t._data = data
        t.requires_grad = False
        t._grad = t._op = t._inputs = t._params = t._needs = t._versions = None
        t._outs = t._parent = None
        _VERSION.__set__(t, 0)
        t._seq = t._index = 0
        return t

    def _get_version(self) -> int:
        return _VERSION.__get__(self) + self._epoch[0]

    def _set_version(self, value: int) -> None:
        _VERSION.__set__(self, value - self._epoch[0])

    _version = property(_get_version, _set_version)

    def detach_epoch(self) -> None:
        """Stop counting the layout's epoch (the layout no longer holds this Tensor): the
        version stays what it is now, and changes only with this Tensor's own bumps."""
        version = self._version
        self._epoch = [0]
        self._version = version


class FlatGroup:
    """The parameters of one dtype: slot ``k`` is ``[starts[k], ends[k])`` of each flat buffer."""

    __slots__ = ("dtype", "members", "shapes", "starts", "ends", "size", "steps", "state",
                 "data", "grad", "_views")

    def __init__(self, dtype: np.dtype, members: list[int], shapes: list[tuple]) -> None:
        sizes = np.array([math.prod(s) for s in shapes], dtype=np.intp)
        self.dtype = dtype
        self.members = members  # positions in the layout's parameter list
        self.shapes = shapes
        self.ends = np.cumsum(sizes, dtype=np.intp)
        self.starts = self.ends - sizes
        self.size = int(self.ends[-1])
        self.steps = np.zeros(len(members), np.int64)  # updates taken, per parameter
        self.state: dict[str, np.ndarray] = {}  # flat state buffers, made on first use
        self.data: np.ndarray | None = None  # packed parameter values
        self.grad: np.ndarray | None = None  # packed gradients
        self._views: dict[str, list[np.ndarray]] = {}

    def buffer(self, name: str) -> np.ndarray:
        """The flat state buffer ``name`` (zeros when first asked for)."""
        buf = self.state.get(name)
        if buf is None:
            buf = self.state[name] = np.zeros(self.size, self.dtype)
        return buf

    def view(self, flat: np.ndarray, k: int) -> np.ndarray:
        """Slot ``k`` of the flat buffer ``flat``, shaped like its parameter."""
        return flat[self.starts[k]:self.ends[k]].reshape(self.shapes[k])

    def views(self, name: str) -> list[np.ndarray]:
        """Every slot of the state buffer ``name``, shaped like its parameter (made once)."""
        views = self._views.get(name)
        if views is None:
            buf = self.buffer(name)
            views = self._views[name] = [self.view(buf, k) for k in range(len(self.members))]
        return views

    def segments(self, ks: list[int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance the step counts of slots ``ks`` (None: all) and return the ranges to update
        with their step counts; neighbouring slots at the same count make one range."""
        steps = self.steps
        if ks is None or len(ks) == len(self.members):
            steps += 1
            if steps[0] == steps[-1] and steps.min() == steps.max():
                return self.starts[:1], self.ends[-1:], steps[:1]  # one range, one count
            starts, ends = self.starts, self.ends
        else:
            idx = np.array(ks, np.intp)
            steps[idx] += 1
            starts, ends, steps = self.starts[idx], self.ends[idx], steps[idx]
        cut = (starts[1:] != ends[:-1]) | (steps[1:] != steps[:-1])
        first, last = np.append(True, cut), np.append(cut, True)
        return starts[first], ends[last], steps[first]


class Layout:
    """Each parameter's group and slot; when packed, the views its ``.data``/``.grad`` hold."""

    def __init__(self, params: list, groups: list[FlatGroup], packed: bool,
                 plist: ParamList | None) -> None:
        self.params = params
        self.groups = groups
        self.packed = packed
        self.plist = plist  # the list object and edit count this layout was made from
        self.generation = plist.generation if plist is not None else -1
        self.where: dict[int, tuple[FlatGroup, int]] = {}
        for g in groups:
            for k, i in enumerate(g.members):
                self.where[id(params[i])] = (g, k)
        self.datas: list[np.ndarray] = [p._data for p in params]
        self.shapes: list[tuple] = [d.shape for d in self.datas]
        self.gtensors: list = [None] * len(params)
        self.gviews: list = [None] * len(params)
        #: every gradient Tensor's version counts this (see GradView): one bump claims them all
        self.epoch = [0]
        if packed:
            self._allocate()
        self.slots = list(zip(params, self.datas, self.gtensors, self.gviews))

    def _allocate(self) -> None:
        for g in self.groups:
            g.data = np.empty(g.size, g.dtype)
            g.grad = np.zeros(g.size, g.dtype)
            for k, i in enumerate(g.members):
                self.datas[i] = g.view(g.data, k)
                gv = self.gviews[i] = g.view(g.grad, k)
                self.gtensors[i] = GradView.over(gv, self.epoch)

    def commit(self) -> None:
        """Copy the parameters' values into the data buffers and point each ``p.data`` there."""
        if not self.packed:
            return
        for g in self.groups:
            np.concatenate([self.params[i]._data for i in g.members], axis=None, out=g.data)
            _PACK_BUFFERS[id(g.data)] = g.data
        for p, view in zip(self.params, self.datas):
            p.data = view  # the setter bumps the version, as the step that follows would

    def claim(self, plist: ParamList, params: bool, grads: int) -> bool:
        """If the packed layout still describes ``plist`` (same list, every ``p.data`` and
        ``p.grad`` still its views), bump the versions of every parameter (``params``) and
        every gradient (by ``grads``: a bool, or how many changes the caller announces) and
        return True; otherwise change nothing, return False.

        One pass does both: this loop is most of a fast step's Python time, so it reads the
        ``_grad`` slot rather than the ``grad`` property (half the cost). Under ``fg.jit``
        the property is the tracer's, so a traced thread never claims. The versions are
        bumped just before the update they announce, which cannot fail once checked. The
        gradients' versions move together, with the layout's ``epoch`` (each ``p.grad`` was
        checked to be the layout's :class:`GradView`, which counts it).
        """
        if plist is not self.plist or plist.generation != self.generation:
            return False
        if recording.thread.hook is not None:
            return False
        slots = self.slots
        if params:
            for p, d, g, gd in slots:
                if p._data is not d or p._grad is not g or g._data is not gd:
                    break
                p._version += 1
            else:
                self.epoch[0] += grads
                return True
        else:
            for p, d, g, gd in slots:
                if p._data is not d or p._grad is not g or g._data is not gd:
                    return False
            self.epoch[0] += grads
            return True
        self.unclaim(params, 0, broken=True)
        return False

    def claimed_array(self, p: Tensor, grad: bool) -> np.ndarray | None:
        """The array :meth:`claim` checks ``p.data`` (``grad``: ``p.grad.data``) to be, or
        None if ``p`` is not one of this packed layout's parameters."""
        found = self.where.get(id(p)) if self.packed else None
        if found is None:
            return None
        g, k = found
        i = g.members[k]
        if self.params[i] is not p:
            return None
        return self.gviews[i] if grad else self.datas[i]

    def unclaim(self, params: bool, grads: int, broken: bool = False) -> None:
        """Take back the version bumps of a :meth:`claim` (``broken``: up to the slot that
        broke the layout) when what they announced did not happen."""
        if params:
            for p, d, g, gd in self.slots:
                if broken and (p._data is not d or p._grad is not g or g._data is not gd):
                    break
                p._version -= 1
        if not broken:
            self.epoch[0] -= grads

    def gather(self, grads: list, foreign: list[int] | None, repoint: bool) -> None:
        """Copy the gradients at positions ``foreign`` (None: all) into the packed buffers;
        with ``repoint``, make each such ``p.grad`` the Tensor viewing its slot (same values).

        ``grads`` and ``foreign`` are what :func:`checked_grads` returned.
        """
        single = len(self.groups) == 1
        for g in self.groups:
            if foreign is None and single:  # every gradient new (after zero_grad()): one copy
                np.concatenate(grads, axis=None, out=g.grad, casting="unsafe")
                todo = g.members
            else:
                todo = [i for i in g.members if type(grads[i]) is np.ndarray]
                for i in todo:
                    np.copyto(self.gviews[i], grads[i], casting="unsafe")
            if repoint:
                self._repoint(todo)

    def _repoint(self, positions: list[int]) -> None:
        for i in positions:
            t = self.gtensors[i]
            if t._data is not self.gviews[i]:  # the user replaced our Tensor's array
                t.detach_epoch()  # no longer the layout's: later claims do not concern it
                t = self.gtensors[i] = GradView.over(self.gviews[i], self.epoch)
                self.slots[i] = (self.params[i], self.datas[i], t, self.gviews[i])
            self.params[i].grad = t

    def zero_buffers(self) -> None:
        """Zero every packed gradient buffer (one pass per dtype)."""
        for g in self.groups:
            if g.grad is not None:
                g.grad.fill(0)

    def adopt(self, plist: ParamList) -> None:
        """Describe ``plist`` from now on (it holds the same parameters, checked by the caller)."""
        self.plist, self.generation = plist, plist.generation

    def same_params(self, params: list) -> bool:
        """The same parameters in the same order, each still holding the array it had."""
        if len(params) != len(self.params):
            return False
        for p, q, d in zip(params, self.params, self.datas):
            if p is not q or p._data is not d:
                return False
        return True

    def entry(self, p: Tensor) -> Entry | None:
        """``p``'s state (views of the buffers), or None if it has taken no step."""
        found = self.where.get(id(p))
        if found is None:
            return None
        g, k = found
        step = int(g.steps[k])
        if step == 0:
            return None
        return step, {name: g.view(buf, k) for name, buf in g.state.items()}

    def forget(self, p: Tensor) -> None:
        """Drop ``p``'s state: zero moments and no steps taken."""
        found = self.where.get(id(p))
        if found is not None:
            g, k = found
            g.steps[k] = 0
            for buf in g.state.values():
                buf[g.starts[k]:g.ends[k]] = 0


IN_PLACE = object()  # checked_grads: this gradient is already in the layout's buffer


_GRAD = operator.attrgetter("grad")
_DATA = operator.attrgetter("_data")
_DTYPE = operator.attrgetter("dtype")
_SHAPE = operator.attrgetter("shape")


def checked_grads(name: str, layout: Layout, reused: bool) -> tuple[list, list | None,
                                                                     list | None]:
    """Each parameter's gradient, checked; the positions of those that have one, and of those
    that are arrays to copy (None: all of them). A gradient is None (none), ``IN_PLACE``
    (already its view in the packed buffer of a ``reused`` layout), or an ndarray of the
    parameter's shape and a real dtype.

    The layout has checked the parameters; the checks on the gradients run over all of them
    at once (per-element NumPy attribute reads would cost ~1 µs per parameter). Raises
    naming the optimizer, the parameter's position, and the dtype or shapes.
    """
    params = layout.params
    grads = list(map(_GRAD, params))
    if reused and layout.packed:
        foreign = []
        for i, (g, gt, gv) in enumerate(zip(grads, layout.gtensors, layout.gviews)):
            if g is None:
                continue
            if g is gt and g._data is gv:
                grads[i] = IN_PLACE
            else:
                foreign.append(i)
    else:
        foreign = [i for i, g in enumerate(grads) if g is not None]
    items = [grads[i] for i in foreign]
    try:
        arrays = list(map(_DATA, items))  # Tensors, as backward makes them
    except AttributeError:
        arrays = [g._data if isinstance(g, Tensor) else np.asarray(g) for g in items]
    for dtype in set(map(_DTYPE, arrays)):
        if dtype.kind not in "biuf":
            i = next(i for i, a in zip(foreign, arrays) if a.dtype == dtype)
            raise _grad_error(name, i, params[i]._data, grads_array(grads[i]))
    want = layout.shapes if len(foreign) == len(params) else [layout.shapes[i] for i in foreign]
    if list(map(_SHAPE, arrays)) != want:
        i = next(i for i, a in zip(foreign, arrays) if a.shape != layout.shapes[i])
        raise _grad_error(name, i, params[i]._data, arrays[foreign.index(i)])
    if len(foreign) == len(params):
        return arrays, None, None
    for i, a in zip(foreign, arrays):
        grads[i] = a
    live = [i for i, g in enumerate(grads) if g is not None]
    return grads, None if len(live) == len(params) else live, foreign


def grads_array(g) -> np.ndarray:
    """A gradient (Tensor or array-like) as an ndarray."""
    return g._data if isinstance(g, Tensor) else np.asarray(g)


def _grad_error(name: str, i: int, data: np.ndarray, arr: np.ndarray) -> Exception:
    if arr.dtype.kind not in "biuf":
        hint = " (complex differentiation is not supported)" if arr.dtype.kind == "c" else ""
        return DTypeError(f"{name}: parameter {i} has a gradient of dtype {arr.dtype}; "
                          f"expected real numbers{hint}; nothing was updated")
    if data.dtype.kind != "f":
        return DTypeError(f"{name}: parameter {i} has dtype {data.dtype}; optimizers update "
                          "float32 or float64 parameters; nothing was updated")
    return ShapeError(f"{name}: parameter {i} has shape {data.shape} but its gradient has "
                      f"shape {arr.shape}; nothing was updated (after replacing p.data with "
                      "another shape, set p.grad = None before the next backward)")


def make_layout(params: list, name: str, pack: bool, entry_of: Callable,
                plist: ParamList | None = None) -> Layout:
    """A new layout for ``params`` holding the state ``entry_of(p)`` gives for each.

    Checks every parameter and every carried state array first; touches no parameter (call
    :meth:`Layout.commit` to move the values into a packed layout's buffers).
    """
    by_dtype: dict[np.dtype, list[int]] = {}
    seen: set[int] = set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, expected a Tensor "
                            "(pass model.parameters() or model.get_parameters())")
        if id(p) in seen:
            raise ValueError(f"{name}: parameter {i} appears more than once in the list")
        seen.add(id(p))
        dtype = p._data.dtype
        if dtype not in FLOATS:
            raise DTypeError(f"{name}: parameter {i} has dtype {dtype}; optimizers update "
                             "float32 or float64 parameters (make it with dtype=np.float32 "
                             "or np.float64)")
        by_dtype.setdefault(dtype, []).append(i)
    groups = [FlatGroup(dt, members, [params[i]._data.shape for i in members])
              for dt, members in by_dtype.items()]
    layout = Layout(params, groups, pack and _worth_packing(params) and _packable(params), plist)
    for i, p in enumerate(params):
        entry = entry_of(p)
        if entry is not None:
            _carry(layout, i, p, entry, name)
    return layout


def _carry(layout: Layout, i: int, p: Tensor, entry: Entry, name: str) -> None:
    step, arrays = entry
    g, k = layout.where[id(p)]
    for key, arr in arrays.items():
        if arr.shape != g.shapes[k] or arr.dtype != g.dtype:
            cls = ShapeError if arr.shape != g.shapes[k] else DTypeError
            raise cls(
                f"{name}: parameter {i} has shape {g.shapes[k]} and dtype {g.dtype} now, but "
                f"its {key} (optimizer state from earlier steps) has shape {arr.shape} and "
                f"dtype {arr.dtype}: its .data was replaced by an array of another shape or "
                f"dtype. Start its state afresh with `del opt.state[p]` (or make a new "
                "optimizer); nothing was updated"
            )
    for key, arr in arrays.items():
        g.view(g.buffer(key), k)[...] = arr
    g.steps[k] = step


# Packing pays where the parameters are many and small (one call per parameter would cost more
# than the arithmetic: deep_chain's 6,000 vectors of 64); for large parameters one kernel call
# each is already cheap, and packing would hold a second copy of the weights at the first step.
PACK_MEAN_SIZE = 16384


def _worth_packing(params: list) -> bool:
    """Whether the parameters are small on average (at most ``PACK_MEAN_SIZE`` numbers)."""
    return sum(p._data.size for p in params) <= PACK_MEAN_SIZE * max(len(params), 1)


def _packable(params: list) -> bool:
    """Whether packing would leave every value, aliasing and read-only flag as it is."""
    bounds = []
    for p in params:
        d = p._data
        if not d.flags.writeable:
            return False
        base = d.base
        if base is not None and _PACK_BUFFERS.get(id(base)) is not base:
            return False  # a view of the user's memory: they may expect it to follow
        if d.size:
            bounds.append(np.lib.array_utils.byte_bounds(d))
    bounds.sort()
    return all(hi <= lo for (_, hi), (lo, _) in zip(bounds, bounds[1:]))
