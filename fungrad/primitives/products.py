"""``einsum``: one op for every Einstein summation, whose gradient is again an einsum.

The cotangent of operand ``k`` contracts the output's cotangent with the other operands into
operand ``k``'s subscripts. Two cases need a constant extra operand so that the VJP stays a
single einsum: an index that only operand ``k`` has and the output lacks (summed away in the
forward; the gradient is constant along it: a vector of ones), and an index repeated within
operand ``k`` (a trace or diagonal, ``"ii->i"``; the gradient lives on the diagonal: an
identity matrix). The other products of ``fungrad.numpy`` (dot, tensordot, kron, cross...)
are composites of ``matmul``, ``einsum`` and shape ops.
"""

from __future__ import annotations

import functools
import string
from collections import Counter

import numpy as np

from .batch_rules import ndim_of
from ..domains import Domain, Real
from ..errors import ShapeError
from ..registry import defop
from .shape import shape_of

__all__ = ["einsum", "parse_subscripts"]

_LETTERS = string.ascii_uppercase + string.ascii_lowercase  # NumPy's 52 labels, in its order


@functools.lru_cache(maxsize=512)
def parse_subscripts(subscripts: str, ndims: tuple) -> tuple[tuple[str, ...], str]:
    """The explicit form of ``subscripts`` for operands of ``ndims`` dimensions: one term per
    operand and the output term, with each ellipsis spelled out in unused letters and the
    implicit output (no ``->``) made explicit as NumPy defines it.

    >>> parse_subscripts("...j,jk", (3, 2))
    (('ABj', 'jk'), 'ABk')
    """
    s = subscripts.replace(" ", "")
    lhs, arrow, rhs = s.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ShapeError(f"einsum: subscripts {subscripts!r} have {len(terms)} operand terms "
                         f"for {len(ndims)} operands")
    spare = [c for c in _LETTERS if c not in s]
    widths = [nd - (len(t) - 3) for t, nd in zip(terms, ndims) if "..." in t]
    ell = "".join(spare[:max(widths, default=0)])

    def spelled(term: str, nd: int) -> str:
        if "..." not in term:
            return term
        k = nd - (len(term) - 3)
        return term.replace("...", ell[len(ell) - k:])

    terms = [spelled(t, nd) for t, nd in zip(terms, ndims)]
    if arrow:
        out = rhs.replace("...", ell)
    else:
        counts = Counter("".join(terms))
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return tuple(terms), out


def _einsum(*operands, subscripts, optimize=False):
    return np.einsum(subscripts, *operands, optimize=optimize)


def _einsum_vjp(g, out, *operands, subscripts, optimize=False, needs=None):
    shapes = [shape_of(x) for x in operands]
    terms, out_term = parse_subscripts(subscripts, tuple(len(s) for s in shapes))
    if not isinstance(optimize, (bool, str)):  # an explicit path fits the forward only
        optimize = "greedy"
    return tuple(_cotangent(k, g, operands, shapes, terms, out_term, optimize)
                 if needs is None or needs[k] else None  # constant operands: no einsum
                 for k in range(len(operands)))


def _cotangent(k, g, operands, shapes, terms, out_term, optimize):
    """The cotangent of operand ``k``: one einsum of ``g`` with the other operands."""
    others = [j for j in range(len(operands)) if j != k]
    in_terms = [out_term] + [terms[j] for j in others]
    args = [g] + [operands[j] for j in others]
    sizes: dict = {}  # each index's size among the VJP's operands (1 if only broadcast)
    for term, shape in zip(in_terms, [shape_of(g)] + [shapes[j] for j in others]):
        for letter, n in zip(term, shape):
            sizes[letter] = max(sizes.get(letter, 1), n)
    fresh = (c for c in _LETTERS if c not in sizes and c not in terms[k])
    result, seen = [], set()
    for letter, size in zip(terms[k], shapes[k]):
        if letter in seen:  # repeated in this operand: the cotangent sits on a diagonal
            new = next(fresh)
            in_terms.append(letter + new)
            args.append(np.eye(size, dtype=g.dtype))
            result.append(new)
            continue
        seen.add(letter)
        if sizes.get(letter, 1) != size:  # summed away from (or broadcast along) this operand
            in_terms.append(letter)       # alone: the cotangent is constant along the index
            args.append(np.ones(size, dtype=g.dtype))
            sizes[letter] = size
        result.append(letter)
    return einsum(args, subscripts=",".join(in_terms) + "->" + "".join(result),
                  optimize=optimize)


def _einsum_batch(op, args, dims, *, subscripts, optimize=False):
    # the batch is one more index: a letter of its own on each batched operand and the output
    ndims = tuple(ndim_of(x) - (d is not None) for x, d in zip(args, dims))
    terms, out_term = parse_subscripts(subscripts, ndims)
    used = "".join(terms) + out_term
    b = next(c for c in _LETTERS if c not in used)
    terms = [t if d is None else t[:d] + b + t[d:] for t, d in zip(terms, dims)]
    return einsum(list(args), subscripts=",".join(terms) + "->" + b + out_term,
                  optimize=optimize), 0


einsum = defop("einsum", _einsum, _einsum_vjp, pass_needs=True, domain=Domain((Real(),), [
    (((3, 4), (4, 5)), {"subscripts": "ij,jk->ik"}),
    (((3, 3),), {"subscripts": "ii->i"}),
    (((3, 3),), {"subscripts": "ii"}),
    (((2, 3, 2),), {"subscripts": "iji->j"}),
    (((3, 4),), {"subscripts": "ij->"}),
    (((3,), (4,)), {"subscripts": "i,j->ij"}),
    (((2, 3), (3,)), {"subscripts": "...j,j"}),
    (((2, 1, 3), (4, 3)), {"subscripts": "...j,...j->..."}),
    (((2, 3), (3, 4), (4,)), {"subscripts": "ij,jk,k->i", "optimize": True}),
    (((2, 3, 4),), {"subscripts": "abc->cb"}),
    (((4, 1), (4, 3)), {"subscripts": "ij,ij->i"}),
], complex=True),
    doc="""Einstein summation over the operands, as numpy.einsum with a subscripts string:
    repeated indices (traces, diagonals), ellipses, implicit output and NumPy's size-1
    broadcasting (also of named indices); ``optimize`` as NumPy's. The VJP of each operand
    is one einsum.

    >>> import numpy as np
    >>> from fungrad.primitives import einsum
    >>> einsum([np.eye(2), np.array([1.0, 2.0])], subscripts="ij,j->i")
    array([1., 2.])
    >>> float(einsum([np.arange(4.0).reshape(2, 2)], subscripts="ii"))
    3.0
    """,
    batch=_einsum_batch)
