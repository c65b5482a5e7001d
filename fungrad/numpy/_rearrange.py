"""Rearranging elements under NumPy's names: repeat, tile, flip, fliplr, flipud, rot90, roll
and pad.

``repeat`` by a count and ``tile`` broadcast a reshaped view, so their VJPs are sums;
``repeat`` by per-element counts is a ``take``; flips are reversed slices, ``rot90`` a flip
and a transpose. ``roll`` and constant ``pad`` are ops of their own; ``pad``'s other modes
gather each axis along NumPy's own index pattern (``numpy.pad`` of ``arange``).
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy

from .. import primitives as ops
from ..errors import DTypeError, ShapeError
from ..primitives.manipulation import pad_pairs
from ..primitives.shape import normalize_axes, shape_of
from ._selection import take, take_along_axis
from ._shape import Array, _int_tuple, _reshaped, axis_list, operand, ravel
from ._wrap import data_of, implements, plain
from ..typing import array_function

__all__ = ["repeat", "tile", "flip", "fliplr", "flipud", "rot90", "roll", "pad"]


@array_function
@implements(numpy.repeat)
def repeat(a: Any, repeats: Any, axis: int | None = None) -> Array:
    """Each element repeated ``repeats`` times along ``axis`` (the flattened array when
    None), as ``numpy.repeat``; ``repeats`` may give one count per element.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.repeat(np.array([1.0, 2.0]), [1, 3])
    array([1., 2., 2., 2.])
    >>> fg.grad(lambda x: fnp.sum(fnp.repeat(x, 3) ** 2))(np.array([1.0, 2.0]))
    array([ 6., 12.])
    """
    a = operand(a)
    if axis is None:
        a, axis = ravel(a), 0
    shape = shape_of(a)
    ax = normalize_axes("repeat", axis, len(shape))[0]
    counts = numpy.asarray(plain(repeats))
    if counts.dtype.kind not in "iu" or (counts < 0).any():
        raise DTypeError(f"repeat: repeats must be non-negative integers, got {repeats!r}")
    if counts.size == 1:  # one count: broadcast a new axis after ax, then merge the two
        r = int(counts.reshape(()))
        x = ops.expand_dims(a, axis=ax + 1)
        x = ops.broadcast_to(x, shape=shape[:ax + 1] + (r,) + shape[ax + 1:])
        return ops.reshape(x, shape=shape[:ax] + (shape[ax] * r,) + shape[ax + 1:])
    if counts.shape != (shape[ax],):
        raise ShapeError(f"repeat: {counts.size} counts for axis {axis} of length {shape[ax]} "
                         "(give one count, or one per element)")
    return take(a, numpy.repeat(numpy.arange(shape[ax]), counts), axis=ax)


@array_function
@implements(numpy.tile)
def tile(A: Any, reps: Any) -> Array:  # noqa: N803 (NumPy's name)
    """``A`` repeated ``reps`` times along each axis, as ``numpy.tile``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.tile(np.array([1.0, 2.0]), (2, 2))
    array([[1., 2., 1., 2.],
           [1., 2., 1., 2.]])
    """
    a = operand(A)
    reps = _int_tuple("tile", "reps", reps)
    reps = (reps,) if isinstance(reps, int) else reps
    if any(r < 0 for r in reps):
        raise ShapeError(f"tile: reps must be non-negative, got {reps}")
    shape = shape_of(a)
    nd = builtins.max(len(shape), len(reps))
    shape = (1,) * (nd - len(shape)) + shape
    reps = (1,) * (nd - len(reps)) + reps
    # (1, s0, 1, s1, ...) broadcast to (r0, s0, r1, s1, ...): block i of axis k is a copy
    x = _reshaped(a, tuple(v for s in shape for v in (1, s)))
    x = ops.broadcast_to(x, shape=tuple(v for r, s in zip(reps, shape) for v in (r, s)))
    return ops.reshape(x, shape=tuple(r * s for r, s in zip(reps, shape)))


@array_function
@implements(numpy.flip)
def flip(m: Any, axis: Any = None) -> Array:
    """``m`` with the order of elements reversed along ``axis`` (all axes when None), as
    ``numpy.flip``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.flip(np.arange(4.0).reshape(2, 2), axis=1)
    array([[1., 0.],
           [3., 2.]])
    """
    m = operand(m)
    nd = len(shape_of(m))
    axes = normalize_axes("flip", axis, nd)
    reverse = slice(None, None, -1)
    return ops.getitem(m, index=tuple(reverse if i in axes else slice(None) for i in range(nd)))


def _flip_axis(name: str, m: Any, axis: int, min_ndim: int) -> Array:
    m = operand(m)
    if len(shape_of(m)) < min_ndim:
        raise ShapeError(f"{name}: needs an array of at least {min_ndim} dimension"
                         f"{'s' if min_ndim > 1 else ''}, got shape {shape_of(m)}")
    return flip(m, axis)


@array_function
@implements(numpy.fliplr)
def fliplr(m: Any) -> Array:
    """``m`` reversed along axis 1 (left/right), as ``numpy.fliplr``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.fliplr(np.array([[1.0, 2.0]]))
    array([[2., 1.]])
    """
    return _flip_axis("fliplr", m, 1, 2)


@array_function
@implements(numpy.flipud)
def flipud(m: Any) -> Array:
    """``m`` reversed along axis 0 (up/down), as ``numpy.flipud``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.flipud(np.array([1.0, 2.0]))
    array([2., 1.])
    """
    return _flip_axis("flipud", m, 0, 1)


@array_function
@implements(numpy.rot90)
def rot90(m: Any, k: int = 1, axes: Any = (0, 1)) -> Array:
    """``m`` rotated by 90 degrees ``k`` times in the plane of ``axes`` (from the first axis
    towards the second), as ``numpy.rot90``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.rot90(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[2., 4.],
           [1., 3.]])
    """
    m = operand(m)
    nd = len(shape_of(m))
    if nd < 2 or len(axes) != 2:
        raise ShapeError(f"rot90: needs an array of at least 2 dimensions and two axes, got "
                         f"shape {shape_of(m)} and axes {axes!r}")
    a0, a1 = axis_list("rot90", axes, nd)
    k = int(k) % 4
    if k == 0:
        return ops.getitem(m, index=(Ellipsis,))
    if k == 2:
        return flip(m, (a0, a1))
    perm = list(range(nd))
    perm[a0], perm[a1] = a1, a0
    if k == 1:
        return ops.transpose(flip(m, a1), axes=tuple(perm))
    return flip(ops.transpose(m, axes=tuple(perm)), a1)


@array_function
@implements(numpy.roll)
def roll(a: Any, shift: Any, axis: Any = None) -> Array:
    """Elements shifted cyclically by ``shift`` along ``axis`` (the flattened array when
    None), as ``numpy.roll``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.roll(np.arange(6.0).reshape(2, 3), (1, -1), axis=(0, 1))
    array([[4., 5., 3.],
           [1., 2., 0.]])
    """
    axis = None if axis is None else _int_tuple("roll", "axis", axis)
    a = operand(a)
    s = data_of(shift)
    if isinstance(s, numpy.ndarray):
        return ops.roll(a, shift=_int_tuple("roll", "shift", shift), axis=axis)
    # a shift computed from values (one per example under fg.vmap, traced under fg.jit): a
    # gather of the positions shifted back, the same for every call of the program
    if s.dtype.kind not in "iu":
        raise DTypeError(f"roll: shift must be integers, got dtype {s.dtype}")
    if axis is None:
        return _reshaped(_roll_by_values(ravel(a), s, (0,)), shape_of(a))
    return _roll_by_values(a, s, axis if isinstance(axis, tuple) else (axis,))


def _roll_by_values(a: Array, shift: Any, axes: tuple) -> Array:
    shifts = [shift] if shift.ndim == 0 else [shift[i] for i in range(shift.shape[0])]
    if len(shifts) != len(axes) and 1 not in (len(shifts), len(axes)):
        raise ShapeError(f"roll: {len(shifts)} shifts do not pair with {len(axes)} axes")
    shape = shape_of(a)
    nd = len(shape)
    for sh, ax in zip(shifts * (len(axes) if len(shifts) == 1 else 1),
                      axes * (len(shifts) if len(axes) == 1 else 1)):
        ax = normalize_axes("roll", ax, nd)[0]
        n = shape[ax]
        if n == 0:
            continue
        at = numpy.arange(n).reshape((1,) * ax + (n,) + (1,) * (nd - ax - 1))
        a = take_along_axis(a, (at - sh) % n, axis=ax)
    return a


_GATHER_MODES = ("edge", "reflect", "symmetric", "wrap")


@array_function
@implements(numpy.pad)
def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Array:  # noqa: A002
    """``array`` padded by ``pad_width``, as ``numpy.pad`` with the modes 'constant' (with
    ``constant_values``), 'edge', 'reflect', 'symmetric', 'wrap' and 'empty' (zeros).

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.pad(np.array([1.0, 2.0, 3.0]), (2, 1), mode="reflect")
    array([3., 2., 1., 2., 3., 2.])
    >>> fg.grad(lambda x: fnp.sum(fnp.pad(x, 1, mode="edge")))(np.array([1.0, 2.0]))
    array([2., 2.])
    """
    a = operand(array)
    shape = shape_of(a)
    pairs = pad_pairs(plain(pad_width), len(shape))
    if mode in ("constant", "empty"):
        values = kwargs.pop("constant_values", 0) if mode == "constant" else 0
        _no_more_options(mode, kwargs)
        return ops.pad(a, pad_width=pairs, constant_values=_constant_values(values))
    if mode not in _GATHER_MODES:
        raise ShapeError(f"pad: mode {mode!r} is not supported (differentiable modes: "
                         f"'constant', 'empty', {', '.join(repr(m) for m in _GATHER_MODES)})")
    if kwargs.pop("reflect_type", "even") != "even":
        raise ShapeError("pad: reflect_type='odd' is not supported (only 'even')")
    _no_more_options(mode, kwargs)
    for axis, (before, after) in enumerate(pairs):
        if before or after:
            if shape[axis] == 0:
                raise ShapeError(f"pad: cannot pad the empty axis {axis} of shape {shape} in "
                                 f"mode {mode!r} (only 'constant' and 'empty' can)")
            source = numpy.pad(numpy.arange(shape[axis]), (before, after), mode=mode)  # type: ignore[call-overload]
            a = take(a, source, axis=axis)
    return a


def _no_more_options(mode: str, kwargs: dict) -> None:
    if kwargs:
        raise TypeError(f"pad: unexpected keyword argument(s) {sorted(kwargs)} for mode "
                        f"{mode!r}")


def _constant_values(values: Any) -> Any:
    """NumPy's ``constant_values`` forms as a number or nested tuples (constants)."""
    if getattr(values, "requires_grad", False):
        raise DTypeError("pad: constant_values are constants; to pad with a value that is "
                         "differentiated, concatenate it (fungrad.numpy.concatenate)")
    arr = numpy.asarray(plain(values))
    if arr.ndim == 0:
        return arr.item()
    return tuple(tuple(row) if isinstance(row, list) else row for row in arr.tolist())
