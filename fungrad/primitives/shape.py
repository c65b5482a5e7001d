"""Shape ops: reshape, transpose, squeeze/expand_dims, the book's expand, broadcasting, sum_to.

``sum_to`` is the one helper that sums a broadcast cotangent back to an input's shape; the
engine calls it (never the VJPs), and ``broadcast_to`` is its transpose.
"""

from __future__ import annotations

import itertools
import math
import operator
from typing import Any

import numpy as np

from ..domains import Domain, Real
from ..errors import DTypeError, ShapeError
from ._batch_axes import _shape, batch_size, batched_position, ndim_of
from ..registry import defop, unwrap

__all__ = [
    "reshape", "transpose", "squeeze", "expand_dims", "expand", "broadcast_to", "sum_to",
    "concatenate", "stack", "split", "split_into", "normalize_axes", "shape_of",
]


def shape_of(x) -> tuple:
    """The shape of an ndarray, Tensor or number, as a tuple.

    >>> import numpy as np
    >>> shape_of(np.zeros((2, 3))), shape_of(1.5)
    ((2, 3), ())
    """
    shape = getattr(x, "shape", None)  # ndarrays and Tensors; numbers and lists below
    return shape if type(shape) is tuple else tuple(np.shape(unwrap(x)))


def normalize_axes(op: str, axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative ints, checked; ``op``
    names the caller in the error.

    >>> normalize_axes("sum", None, 3), normalize_axes("sum", (-1, 0), 3)
    ((0, 1, 2), (0, 2))
    """
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, without np.ndim
        return (axis % ndim,)
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in axes:
        try:
            a = operator.index(a)  # int(1.5) would silently reduce over axis 1
        except TypeError:
            raise DTypeError(f"{op}: axis must be an int or a tuple of ints, "
                             f"got {axis!r}") from None
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of range for an array of {ndim} dimensions "
                             f"(valid: {-ndim}..{ndim - 1})" if ndim else
                             f"{op}: axis {a} given for a 0-d array (use axis=None)")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


# -- reshape / transpose -------------------------------------------------------------------------

def _reshape(x, *, shape):
    return np.reshape(x, shape)


def _reshape_check(x, *, shape):
    return ShapeError(f"reshape: cannot reshape an array of shape {tuple(np.shape(x))} "
                      f"(size {np.size(x)}) into shape {tuple(np.atleast_1d(shape).tolist())}")


def _reshape_batch(op, args, dims, *, shape):
    (x,), (d,) = args, dims
    x = to_front(x, d)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return reshape(x, (shape_of(x)[0],) + shape), 0


reshape = defop("reshape", _reshape, lambda g, out, x, shape: (reshape(g, shape_of(x)),),
                Domain((Real(),), [(((2, 6),), {"shape": (3, 4)}), (((2, 6),), {"shape": (12,)}),
                                   (((2, 3, 2),), {"shape": (-1, 2)}), (((1,),), {"shape": ()})],
                                   complex=True),
                check=_reshape_check, doc="""The same elements in a new ``shape`` (one entry may
    be -1), in C order, as numpy.reshape. The VJP reshapes the cotangent back.

    >>> import numpy as np
    >>> from fungrad.primitives import reshape
    >>> reshape(np.arange(6.0), shape=(2, -1)).shape
    (2, 3)
    """,
    batch=_reshape_batch)


def _transpose(x, axes=None):
    return np.transpose(x, axes)


def _transpose_vjp(g, out, x, axes=None):
    if axes is None:
        return (transpose(g),)
    nd = len(axes)  # argsort needs non-negative axes: (0, -1) is the identity, not a swap
    return (transpose(g, axes=tuple(int(i) for i in np.argsort([a % nd for a in axes]))),)


def _transpose_batch(op, args, dims, *, axes=None):
    (x,), (d,) = args, dims
    nd = ndim_of(x) - 1
    perm = tuple(reversed(range(nd))) if axes is None else tuple(
        operator.index(a) % nd if nd else operator.index(a) for a in axes)
    return transpose(x, axes=(d,) + tuple(batched_position(p, d) for p in perm)), 0


transpose = defop("transpose", _transpose, _transpose_vjp, Domain((Real(),), [
    (((3, 4),), {}), (((2, 3, 4),), {}), (((2, 3, 4),), {"axes": (1, 0, 2)}),
    (((2, 3, 4),), {"axes": (2, 0, 1)}), (((5,),), {}),
], complex=True),
    doc="""Permute the axes (reverse them when ``axes`` is None), as numpy.transpose. The
    VJP applies the inverse permutation.

    >>> import numpy as np
    >>> from fungrad.primitives import transpose
    >>> transpose(np.zeros((2, 3, 4)), axes=(1, 0, 2)).shape
    (3, 2, 4)
    """,
    batch=_transpose_batch)


def _squeeze(x, axis=None):
    return np.squeeze(x, axis)


def _squeeze_batch(op, args, dims, *, axis=None):
    (x,), (d,) = args, dims
    shape = shape_of(x)
    one = shape[:d] + shape[d + 1:]
    if axis is None:  # the length-1 axes of one example (never the batch, even of one)
        axes = tuple(i for i, n in enumerate(one) if n == 1)
        pos = tuple(batched_position(a, d) for a in axes)
    else:
        axes, pos = shifted_axes("squeeze", axis, len(one), d)
    return squeeze(x, axis=pos), d - sum(1 for a in axes if a < d)


squeeze = defop("squeeze", _squeeze, lambda g, out, x, axis=None: (reshape(g, shape_of(x)),),
                Domain((Real(),), [(((3, 1, 4),), {}), (((1, 3, 1),), {"axis": 0}),
                                   (((1, 3, 1),), {"axis": (0, 2)})], complex=True),
                doc="""Drop axes of length one (all of them, or those in ``axis``), as
    numpy.squeeze.

    >>> import numpy as np
    >>> from fungrad.primitives import squeeze
    >>> squeeze(np.zeros((1, 3, 1)), axis=0).shape
    (3, 1)
    """,
    batch=_squeeze_batch)


def _expand_dims(x, *, axis):
    return np.expand_dims(x, axis)


def _expand_dims_batch(op, args, dims, *, axis):
    (x,), (d,) = args, dims
    x = to_front(x, d)
    n_new = len(axis) if isinstance(axis, (tuple, list)) else 1
    axes = normalize_axes("expand_dims", axis, ndim_of(x) - 1 + n_new)
    return expand_dims(x, axis=tuple(a + 1 for a in axes)), 0


expand_dims = defop("expand_dims", _expand_dims,
                    lambda g, out, x, axis: (reshape(g, shape_of(x)),),
                    Domain((Real(),), [(((3, 4),), {"axis": 0}), (((3, 4),), {"axis": -1}),
                                       (((3,),), {"axis": (0, 2)})], complex=True),
                    doc="""New axes of length one at ``axis`` (an int or a tuple), as
    numpy.expand_dims.

    >>> import numpy as np
    >>> from fungrad.primitives import expand_dims
    >>> expand_dims(np.zeros(3), axis=(0, 2)).shape
    (1, 3, 1)
    """,
    batch=_expand_dims_batch)


def _expand(x, *, dim, copies):
    x = np.asarray(x)
    if not 0 <= dim <= x.ndim:
        raise ShapeError(f"expand: dim {dim} is out of range for an array of shape "
                         f"{tuple(x.shape)} (valid: 0..{x.ndim})")
    return np.repeat(np.expand_dims(x, dim), copies, axis=dim)


def _expand_batch(op, args, dims, *, dim, copies):
    (x,), (d,) = args, dims
    if not 0 <= dim <= ndim_of(x) - 1:
        raise ShapeError(f"expand: dim {dim} is out of range for an array of shape "
                         f"{shape_of(x)[:d] + shape_of(x)[d + 1:]} (valid: 0..{ndim_of(x) - 1})")
    return expand(to_front(x, d), dim=dim + 1, copies=copies), 0


expand = defop("expand", _expand, lambda g, out, x, dim, copies: (g.sum(axis=dim),),
               Domain((Real(),), [(((2, 3),), {"dim": 2, "copies": 4}),
                                  (((3,),), {"dim": 0, "copies": 5}),
                                  (((2, 3),), {"dim": 1, "copies": 2})], complex=True),
               doc="""The book's expand: a new axis at ``dim`` holding ``copies`` copies of x.
    The VJP sums over that axis.

    >>> import numpy as np
    >>> from fungrad.primitives import expand
    >>> expand(np.array([1.0, 2.0]), dim=0, copies=3).shape
    (3, 2)
    """,
    batch=_expand_batch)

# -- broadcasting and its transpose --------------------------------------------------------------


def _broadcast_to(x, *, shape):
    # a read-only view with zero strides along the broadcast axes, as numpy.broadcast_to makes,
    # built directly for contiguous arrays: numpy's version costs ~2 us of Python at any size,
    # and every sum's VJP broadcasts its cotangent
    if type(x) is np.ndarray and x.flags.c_contiguous and x.size and x.ndim <= len(shape):
        lead = len(shape) - x.ndim
        strides = [0] * lead
        for n, m, st in zip(shape[lead:], x.shape, x.strides):
            if m == n:
                strides.append(st)
            elif m == 1:
                strides.append(0)
            else:
                return np.broadcast_to(x, shape)  # NumPy's own error names the shapes
        view = np.ndarray(shape, x.dtype, x, 0, tuple(strides))
        view.flags.writeable = False
        return view
    return np.broadcast_to(x, shape)


def _broadcast_check(x, *, shape):
    return ShapeError(f"broadcast_to: cannot broadcast shape {tuple(np.shape(x))} "
                      f"to shape {tuple(shape)}")


def _broadcast_to_batch(op, args, dims, *, shape):
    (x,), (d,) = args, dims
    shape = tuple(shape)
    x = with_rank(to_front(x, d), len(shape))
    return broadcast_to(x, (shape_of(x)[0],) + shape), 0


broadcast_to = defop("broadcast_to", _broadcast_to,
                     lambda g, out, x, shape: (sum_to(g, shape_of(x)),),
                     Domain((Real(),), [(((3, 1),), {"shape": (2, 3, 4)}),
                                        (((4,),), {"shape": (3, 4)}),
                                        (((),), {"shape": (2, 2)})], complex=True),
                     check=_broadcast_check, doc="""x broadcast to ``shape``, as
    numpy.broadcast_to (a read-only view). The VJP sums the cotangent back (``sum_to``).

    >>> import numpy as np
    >>> from fungrad.primitives import broadcast_to
    >>> broadcast_to(np.array([1.0, 2.0]), shape=(3, 2)).shape
    (3, 2)
    """,
    batch=_broadcast_to_batch)


def _sum_to(x, *, shape):
    """Sum ``x`` over the axes along which ``shape`` was broadcast to ``x.shape``.

    Neighbouring axes that are all summed or all kept are merged first, so a bias gradient
    ``(B, T, H) -> (H,)`` is one reduction of a ``(B*T, H)`` view; a float array whose summed
    axes form one run between kept ones goes to the ``sum_middle`` kernel.
    """
    x = np.asarray(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if (lead > 0 and shape and x.shape[lead:] == shape and x.dtype.type in _KERNEL_DTYPES
            and x.flags.c_contiguous):  # the usual bias gradient: sum the leading axes
        width = math.prod(shape)
        return _sum_middle(x.reshape(1, x.size // width if width else 0, width)).reshape(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, x.shape[lead:])):
        raise ShapeError(f"sum_to: shape {x.shape} cannot be summed to {shape}"
                         + (" (fewer axes)" if lead < 0 else ""))
    if x.dtype.kind != "f" or not x.flags.c_contiguous:  # (integers promote as in np.sum)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
        return x.sum(axis=axes, keepdims=True).reshape(shape)
    runs = _runs(x.shape, lead, shape)
    summed = [k for k, (is_summed, _) in enumerate(runs) if is_summed]
    if not summed:  # only size-1 axes differ
        return x.reshape(shape)
    sizes = [n for _, n in runs]
    k = summed[0]
    if len(summed) == 1 and k < len(runs) - 1 and x.dtype.type in _KERNEL_DTYPES:
        blocks = (sizes[0] if k else 1, sizes[k], sizes[k + 1])
        return _sum_middle(x.reshape(blocks)).reshape(shape)
    return np.add.reduce(x.reshape(sizes), axis=tuple(summed)).reshape(shape)


_KERNEL_DTYPES = (np.float32, np.float64)  # float16 sums in NumPy


def _runs(x_shape: tuple, lead: int, shape: tuple) -> list:
    """``[summed?, size]`` runs of neighbouring axes of ``x_shape``, size-1 axes dropped."""
    runs: list = []
    for k, n in enumerate(x_shape):
        if n == 1:
            continue
        is_summed = k < lead or shape[k - lead] == 1
        if runs and runs[-1][0] == is_summed:
            runs[-1][1] *= n
        else:
            runs.append([is_summed, n])
    return runs


def _sum_middle(x3):
    from ..kernels import reduce  # noqa: PLC0415 (Numba loads on first use)

    return reduce.sum_middle(x3)


def _sum_to_batch(op, args, dims, *, shape):
    (x,), (d,) = args, dims
    x = to_front(x, d)
    x_shape, shape = shape_of(x), tuple(shape)
    lead = len(x_shape) - 1 - len(shape)
    if lead < 0:
        raise ShapeError(f"sum_to: shape {x_shape[1:]} cannot be summed to {shape} (fewer axes)")
    summed = sum_to(x, (x_shape[0],) + (1,) * lead + shape)  # the batch axis is kept
    return (reshape(summed, (x_shape[0],) + shape) if lead else summed), 0


sum_to = defop("sum_to", _sum_to, lambda g, out, x, shape: (broadcast_to(g, shape_of(x)),),
               Domain((Real(),), [(((2, 3, 4),), {"shape": (3, 1)}),
                                  (((3, 4),), {"shape": (4,)}), (((2, 2),), {"shape": ()})],
                                  complex=True),
               doc="""Sum x over the axes along which ``shape`` was broadcast to x's shape: the
    transpose of broadcast_to, and the one place the engine undoes broadcasting.

    >>> import numpy as np
    >>> from fungrad.primitives import sum_to
    >>> sum_to(np.ones((3, 2)), shape=(2,))
    array([3., 3.])
    """,
    batch=_sum_to_batch)

# -- joining -----------------------------------------------------------------------------------


def _concatenate(*arrays, axis=0):
    return np.concatenate(arrays, axis=axis)


def _concatenate_vjp(g, out, *arrays, axis=0):
    if axis is None:  # NumPy flattened every input first
        pieces = split_into(g, _split_points(arrays, None), axis=0)
        return tuple(reshape(p, shape_of(a)) for p, a in zip(pieces, arrays))
    ax = normalize_axes("concatenate", axis, len(shape_of(out)))[0]
    return split_into(g, _split_points(arrays, ax), axis=ax)


def _split_points(arrays, axis) -> tuple:
    """Where the inputs of a concatenation start in its output (the first one excluded)."""
    sizes = [math.prod(shape_of(a)) if axis is None else shape_of(a)[axis] for a in arrays[:-1]]
    return tuple(itertools.accumulate(sizes))


def _join_check(name):
    def check(*arrays, axis=0):
        shapes = ", ".join(str(shape_of(a)) for a in arrays)
        return ShapeError(f"{name}: shapes {shapes} do not fit along axis {axis}")
    return check


def _concatenate_batch(op, args, dims, *, axis=0):
    size = batch_size(args, dims)
    arrays = [materialize(a, d, size) for a, d in zip(args, dims)]
    if axis is None:  # each example flattened first
        return concatenate([reshape(a, (size, -1)) for a in arrays], axis=1), 0
    ax = normalize_axes("concatenate", axis, ndim_of(arrays[0]) - 1)[0]
    return concatenate(arrays, axis=ax + 1), 0


concatenate = defop("concatenate", _concatenate, _concatenate_vjp, Domain((Real(),), [
    (((2, 3), (4, 3)), {"axis": 0}), (((2, 3), (2, 1), (2, 2)), {"axis": 1}),
    (((3,), (2,)), {"axis": -1}), (((2, 2), (3,)), {"axis": None}),
], complex=True), check=_join_check("concatenate"), doc="""Join arrays along an existing axis, as
    numpy.concatenate; ``axis=None`` flattens them first. The VJP splits the cotangent.

    >>> import numpy as np
    >>> from fungrad.primitives import concatenate
    >>> concatenate([np.zeros((1, 2)), np.ones((2, 2))], axis=0).shape
    (3, 2)
    >>> concatenate([np.zeros((1, 2)), np.ones(3)], axis=None).shape
    (5,)
    """,
    batch=_concatenate_batch)


# -- splitting: the transpose of concatenate ---------------------------------------------------

def _split(x, *, indices, axis=0):
    x = np.asarray(x)
    if x.ndim == 0:
        raise ShapeError("split: cannot split a 0-d array")
    ax = normalize_axes("split", axis, x.ndim)[0]
    n = x.shape[ax]
    try:
        cuts = [operator.index(i) for i in indices] + [n]
    except TypeError:
        cuts = [-1]  # refused below
    pieces, lead, start = [], (slice(None),) * ax, 0
    for stop in cuts:
        if not start <= stop <= n:
            raise ShapeError(f"split: indices {tuple(indices)} must be non-decreasing ints in "
                             f"0..{n} (the length of axis {axis} of shape {x.shape}); "
                             "fungrad.numpy.split accepts NumPy's other forms")
        pieces.append(x[lead + (slice(start, stop),)])
        start = stop
    return tuple(pieces)


def _split_vjp(g, out, x, *, indices, axis=0):
    # pieces that received no cotangent contribute zeros; one concatenation, no scatters
    dtype = next(gi for gi in g if gi is not None).dtype
    parts = [gi if gi is not None else np.zeros(shape_of(o), dtype=dtype)
             for gi, o in zip(g, out)]
    return (concatenate(parts, axis=axis),)


def _split_batch(op, args, dims, *, indices, axis=0):
    (x,), (d,) = args, dims
    _, (pos,) = shifted_axes("split", axis, ndim_of(x) - 1, d)
    return split(x, indices=indices, axis=pos), d


split = defop("split", _split, _split_vjp, Domain((Real(),), [
    (((5, 3),), {"indices": (2,), "axis": 0}), (((2, 6),), {"indices": (4,), "axis": -1}),
    (((2, 3, 4),), {"indices": (1,), "axis": 1}), (((4,),), {"indices": (0,)}),
    (((7, 2),), {"indices": (2, 3, 5)}),
], complex=True),
    n_outputs=None, doc="""Pieces of x along ``axis``, cut at ``indices`` (non-decreasing split
    points): one output per piece, views of x. The VJP concatenates the pieces' cotangents
    (zeros for pieces that received none), so slicing an array into T pieces costs one
    concatenation in backward, not T zero-filled scatters. ``fungrad.numpy.split`` takes
    NumPy's other forms.

    >>> import numpy as np
    >>> from fungrad.primitives import split
    >>> [p.tolist() for p in split(np.arange(5.0), indices=(1, 3))]
    [[0.0], [1.0, 2.0], [3.0, 4.0]]
    """,
    batch=_split_batch)


def split_into(x, indices, axis=0) -> tuple:
    """``split`` into ``len(indices) + 1`` pieces; one piece is ``x`` itself, and ndarrays skip
    the op's dispatch.

    >>> import numpy as np, fungrad as fg
    >>> fg.grad(lambda x: split_into(x, (1, 2))[2].sum())(np.zeros(4))
    array([0., 0., 1., 1.])
    """
    indices = tuple(int(i) for i in indices)
    if not indices:
        return (x,)
    if type(x) is np.ndarray:  # nothing to record: the op's forward without the dispatch
        return _split(x, indices=indices, axis=axis)
    return split(x, indices=indices, axis=axis)


def _stack(*arrays, axis=0):
    return np.stack(arrays, axis=axis)


def _stack_vjp(g, out, *arrays, axis=0):
    ax = normalize_axes("stack", axis, len(shape_of(out)))[0]
    return tuple(g[(slice(None),) * ax + (i,)] for i in range(len(arrays)))


def _stack_batch(op, args, dims, *, axis=0):
    size = batch_size(args, dims)
    arrays = [materialize(a, d, size) for a, d in zip(args, dims)]
    ax = normalize_axes("stack", axis, ndim_of(arrays[0]))[0]
    return stack(arrays, axis=ax + 1), 0


stack = defop("stack", _stack, _stack_vjp, Domain((Real(),), [
    (((2, 3), (2, 3)), {"axis": 0}), (((2, 3), (2, 3), (2, 3)), {"axis": -1}),
    (((4,), (4,)), {"axis": 1}),
], complex=True), check=_join_check("stack"), doc="""Join arrays of one shape along a new axis, as
    numpy.stack. The VJP takes the cotangent apart along that axis.

    >>> import numpy as np
    >>> from fungrad.primitives import stack
    >>> stack([np.zeros(3), np.ones(3)], axis=1).shape
    (3, 2)
    """,
    batch=_stack_batch)


# -- moving batch axes: what batching rules are written with (here, beside the ops they call) ---


def move_axis(x: Any, src: int, dst: int) -> Any:
    """``x`` with axis ``src`` moved to position ``dst`` (one ``transpose`` op; none if equal)."""
    if src == dst:
        return x
    perm = [i for i in range(ndim_of(x)) if i != src]
    perm.insert(dst, src)
    return transpose(x, axes=tuple(perm))


def to_front(x: Any, d: int | None) -> Any:
    """``x`` with its batch axis ``d`` first (``x`` itself if unbatched or already first)."""
    return x if not d else move_axis(x, d, 0)


def materialize(x: Any, d: int | None, size: int) -> Any:
    """``x`` batched along axis 0: moved there, or, if shared, broadcast to ``size`` copies."""
    if d is not None:
        return to_front(x, d)
    shape = _shape(x)
    return broadcast_to(expand_dims(x, axis=0), shape=(size,) + shape)


def with_rank(x: Any, rank: int) -> Any:
    """A batch-first ``x`` with length-1 axes inserted after the batch axis until one example
    has ``rank`` axes (so that it broadcasts against others as its example did)."""
    missing = rank - (ndim_of(x) - 1)
    if missing <= 0:
        return x
    return expand_dims(x, axis=tuple(range(1, 1 + missing)))


def shifted_axes(op_name: str, axis, ndim: int, d: int) -> tuple[tuple, tuple]:
    """``(axes, positions)``: ``axis`` (None, an int or a tuple) normalised for one example of
    ``ndim`` axes, and where those axes sit in the batched array (batch axis ``d``)."""
    axes = normalize_axes(op_name, axis, ndim)
    return axes, tuple(batched_position(a, d) for a in axes)
