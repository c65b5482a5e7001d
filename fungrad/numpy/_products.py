"""Products under NumPy's names: dot, vdot, inner, outer, tensordot, einsum, kron, cross.

Contractions that are matrix products after a transpose and a reshape (``tensordot``, and
``dot``/``inner`` built on it) run on ``matmul``, so BLAS does the arithmetic forward and
backward; ``einsum`` is its own op (its gradient is an einsum); ``cross`` is an einsum with
the Levi-Civita symbol, ``outer`` and ``kron`` are broadcast products.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any, Sequence

import numpy

from .. import primitives as ops
from ..errors import DTypeError, ShapeError
from ..primitives.products import _LETTERS
from ..primitives.shape import shape_of
from ._shape import Array, _permuted, _reshaped, axis_list, moveaxis, operand, ravel
from ._wrap import cast, implements, no_out, plain

__all__ = ["dot", "vdot", "inner", "outer", "tensordot", "einsum", "kron", "cross"]


def _aligned(name: str, sa: tuple, sb: tuple, ia: int, ib: int) -> None:
    if sa[ia] != sb[ib]:
        raise ShapeError(f"{name}: shapes {sa} and {sb} are not aligned: {sa[ia]} (axis "
                         f"{ia % len(sa)} of a) != {sb[ib]} (axis {ib % len(sb)} of b)")


@implements(numpy.dot)
def dot(a: Any, b: Any, out: None = None) -> Array:
    """The dot product, as ``numpy.dot``: a product of scalars, the inner product of vectors,
    the matrix product of 2-D arrays, and for N-D arrays a sum over the last axis of ``a``
    and the second-to-last of ``b``.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.dot(np.ones((2, 3)), np.arange(3.0))
    array([3., 3.])
    >>> fg.grad(lambda w: fnp.dot(np.array([1.0, 2.0]), w))(np.zeros(2))
    array([1., 2.])
    """
    no_out("dot", out)
    a, b = operand(a), operand(b)
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        return ops.multiply(a, b)
    _aligned("dot", sa, sb, -1, -2 if len(sb) > 1 else 0)
    if len(sb) <= 2:
        return ops.matmul(a, b)
    return _tensordot("dot", a, b, [len(sa) - 1], [len(sb) - 2])


@implements(numpy.vdot)
def vdot(a: Any, b: Any, /) -> Array:
    """The dot product of the flattened inputs, the first conjugated if complex, as
    ``numpy.vdot``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> float(fnp.vdot(np.ones((2, 2)), np.arange(4.0)))
    6.0
    >>> fnp.vdot(np.array([1j]), np.array([1j]))
    np.complex128(1+0j)
    """
    a, b = ravel(a), ravel(b)
    if shape_of(a) != shape_of(b):
        raise ShapeError(f"vdot: the inputs have {shape_of(a)[0]} and {shape_of(b)[0]} "
                         "elements; they must have as many")
    if numpy.iscomplexobj(plain(a)):
        a = ops.conj(a)
    return ops.matmul(a, b)


@implements(numpy.inner)
def inner(a: Any, b: Any, /) -> Array:
    """The sum of products over the last axes of ``a`` and ``b``, as ``numpy.inner``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.inner(np.eye(2), np.array([1.0, 2.0]))
    array([1., 2.])
    """
    a, b = operand(a), operand(b)
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        return ops.multiply(a, b)
    _aligned("inner", sa, sb, -1, -1)
    if len(sa) == 1 and len(sb) == 1:
        return ops.matmul(a, b)
    return _tensordot("inner", a, b, [len(sa) - 1], [len(sb) - 1])


@implements(numpy.outer)
def outer(a: Any, b: Any, out: None = None) -> Array:
    """The outer product of the flattened inputs, as ``numpy.outer``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.outer(np.array([1.0, 2.0]), np.array([1.0, 0.0, -1.0]))
    array([[ 1.,  0., -1.],
           [ 2.,  0., -2.]])
    """
    no_out("outer", out)
    a, b = ravel(a), ravel(b)
    return ops.multiply(ops.reshape(a, shape=(-1, 1)), ops.reshape(b, shape=(1, -1)))


@implements(numpy.tensordot)
def tensordot(a: Any, b: Any, axes: Any = 2) -> Array:
    """The sum of products over ``axes``, as ``numpy.tensordot``: an int ``N`` (the last N
    axes of ``a`` with the first N of ``b``), or a pair naming the axes of each (ints or
    sequences).

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.tensordot(np.ones((2, 3, 4)), np.ones((4, 3)), axes=([1, 2], [1, 0]))
    array([12., 12.])
    """
    a, b = operand(a), operand(b)
    na, nb = len(shape_of(a)), len(shape_of(b))
    try:
        n = operator.index(axes)
    except TypeError:
        try:
            axes_a, axes_b = axes
        except (TypeError, ValueError):
            raise ShapeError(f"tensordot: axes must be an int or a pair of axis sequences, got "
                             f"{axes!r}") from None
        axes_a = axis_list("tensordot", axes_a, na)
        axes_b = axis_list("tensordot", axes_b, nb)
    else:
        if not 0 <= n <= builtins.min(na, nb):
            raise ShapeError(f"tensordot: axes={n} needs 0 <= axes <= {builtins.min(na, nb)} "
                             f"for shapes {shape_of(a)} and {shape_of(b)}")
        axes_a, axes_b = list(range(na - n, na)), list(range(n))
    return _tensordot("tensordot", a, b, axes_a, axes_b)


def _tensordot(name: str, a: Array, b: Array, axes_a: list, axes_b: list) -> Array:
    """Contract ``axes_a`` of ``a`` with ``axes_b`` of ``b`` as one matrix product."""
    sa, sb = shape_of(a), shape_of(b)
    if len(axes_a) != len(axes_b):
        raise ShapeError(f"{name}: {len(axes_a)} axes of a but {len(axes_b)} of b to sum over")
    for i, j in zip(axes_a, axes_b):
        _aligned(name, sa, sb, i, j)
    free_a = [i for i in range(len(sa)) if i not in axes_a]
    free_b = [j for j in range(len(sb)) if j not in axes_b]
    m, k, n = (int(numpy.prod([s[i] for i in ax])) for s, ax in
               ((sa, free_a), (sa, axes_a), (sb, free_b)))
    lhs = _reshaped(_permuted(a, free_a + axes_a), (m, k))
    rhs = _reshaped(_permuted(b, axes_b + free_b), (k, n))
    out = ops.matmul(lhs, rhs)
    return _reshaped(out, tuple(sa[i] for i in free_a) + tuple(sb[j] for j in free_b))


@implements(numpy.einsum)
def einsum(*operands: Any, out: None = None, optimize: Any = False, dtype: Any = None,
           order: str = "K", casting: str = "safe") -> Array:
    """Einstein summation, as ``numpy.einsum``: a subscripts string and the operands
    (``einsum("ij,jk->ik", a, b)``), or NumPy's sublist form (``einsum(a, [0, 1], b, [1,
    2])``); repeated indices, ellipses and implicit output; ``optimize`` as NumPy's. Its
    gradient is an einsum again.

    >>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
    >>> fnp.einsum("ii->i", np.arange(4.0).reshape(2, 2))
    array([0., 3.])
    >>> fg.grad(lambda x: fnp.einsum("ij,ij", x, x))(np.ones((2, 2)))
    array([[2., 2.],
           [2., 2.]])
    """
    no_out("einsum", out)
    if not operands:
        raise TypeError("einsum: give the subscripts and the operands")
    if isinstance(operands[0], str):
        subscripts, arrays = operands[0], list(operands[1:])
    else:
        subscripts, arrays = _from_sublists(operands)
    arrays = [cast(operand(x), dtype) for x in arrays]
    return ops.einsum(arrays, subscripts=subscripts, optimize=plain(optimize))


def _from_sublists(items: Sequence) -> tuple[str, list]:
    """NumPy's ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as a subscripts string and arrays."""
    items = list(items)
    arrays, terms = [], []
    while len(items) >= 2:
        arrays.append(items.pop(0))
        terms.append(_sublist_term(items.pop(0)))
    spec = ",".join(terms)
    return (spec + "->" + _sublist_term(items[0]) if items else spec), arrays


def _sublist_term(sub: Any) -> str:
    letters = []
    for s in sub:
        if s is Ellipsis:
            letters.append("...")
            continue
        try:
            letters.append(_LETTERS[operator.index(s)])
        except (TypeError, IndexError):
            raise DTypeError(f"einsum: sublist labels must be Ellipsis or ints in 0..51, got "
                             f"{s!r}") from None
    return "".join(letters)


@implements(numpy.kron)
def kron(a: Any, b: Any) -> Array:
    """The Kronecker product: blocks of ``b`` scaled by the elements of ``a``, as
    ``numpy.kron``.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.kron(np.array([1.0, 10.0]), np.array([1.0, 2.0]))
    array([ 1.,  2., 10., 20.])
    """
    a, b = operand(a), operand(b)
    sa, sb = shape_of(a), shape_of(b)
    nd = builtins.max(len(sa), len(sb))
    sa, sb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    # a as (a0, 1, a1, 1, ...) times b as (1, b0, 1, b1, ...), merged pairwise
    x = ops.multiply(_reshaped(a, tuple(v for n in sa for v in (n, 1))),
                     _reshaped(b, tuple(v for n in sb for v in (1, n))))
    return _reshaped(x, tuple(m * n for m, n in zip(sa, sb)))


@implements(numpy.cross)
def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: int | None = None) -> Array:
    """The cross product of vectors along ``axisa`` of ``a`` and ``axisb`` of ``b`` (3 or 2
    components; the other axes broadcast), placed along ``axisc``, as ``numpy.cross``; two
    2-component vectors give the scalar z component.

    >>> import numpy as np, fungrad.numpy as fnp
    >>> fnp.cross(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    array([0., 0., 1.])
    """
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(operand(a), axisa, -1)
    b = moveaxis(operand(b), axisb, -1)
    da, db = shape_of(a)[-1], shape_of(b)[-1]
    if da not in (2, 3) or db not in (2, 3):
        raise ShapeError(f"cross: vectors must have 2 or 3 components, got {da} and {db}")
    dtype = numpy.result_type(plain(a), plain(b))
    if da == db == 2:
        z = numpy.array([[0, 1], [-1, 0]], dtype=dtype)
        return ops.einsum([z, a, b], subscripts="jk,...j,...k->...")
    a, b = _three(a), _three(b)
    c = ops.einsum([_LEVI_CIVITA.astype(dtype), a, b], subscripts="ijk,...j,...k->...i")
    return moveaxis(c, -1, axisc)


def _three(v: Array) -> Array:
    """A vector of 2 components with a third, zero, one."""
    shape = shape_of(v)
    if shape[-1] == 3:
        return v
    return ops.pad(v, pad_width=((0, 0),) * (len(shape) - 1) + ((0, 1),))


_LEVI_CIVITA = numpy.zeros((3, 3, 3), dtype=numpy.int8)
for _i, _j, _k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
    _LEVI_CIVITA[_i, _j, _k], _LEVI_CIVITA[_i, _k, _j] = 1, -1
