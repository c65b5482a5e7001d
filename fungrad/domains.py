"""Where each op's test inputs may be drawn from: the test metadata that lives with the op.

A :class:`Domain` has one spec per array input (:class:`Real` intervals with points to stay
away from, :class:`Indices` valid for another argument, :class:`ClassTargets`, :class:`Mask`)
and a list of *cases*: input shapes together with static parameters (``axis``, ``keepdims``,
a ``shape`` for ``reshape``...). Its ``kind`` says whether new shapes may be invented
(``"elementwise"``: any broadcast-compatible shapes; ``"reduction"``: any shape with an axis in
range), ``apart`` lists arguments whose values must not tie (the kinks of ``maximum`` and of
``max``), and ``params`` offers choices of static parameters for invented cases. ``complex``
says whether the op accepts complex inputs, and where their values are drawn from
(:class:`Complex`): an op whose domain has no ``complex`` refuses complex inputs. The
registry-driven tests and ``fungrad.testing.strategies.op_inputs`` draw from it.

>>> import numpy as np
>>> from fungrad.domains import Domain, Real
>>> d = Domain((Real(0.1, 3.0),), cases=[(((2, 3),), {})])
>>> args, params = d.draw(np.random.default_rng(0), d.cases[0])
>>> args[0].shape, bool((args[0] > 0).all())
((2, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "Real", "Indices", "ClassTargets", "Mask", "Domain", "UNARY_CASES", "BINARY_CASES",
    "KINDS", "Spec", "default_domain", "positive", "reals", "spread",
]

KINDS = ("general", "elementwise", "reduction")


@dataclass(frozen=True)
class Real:
    """Floats in ``[low, high]``, kept at least ``margin`` away from each ``avoid`` point
    (kinks such as relu at 0, poles such as 1/x at 0).

    Values are drawn as ``u`` in ``[0, 1]`` and mapped monotonically onto the allowed set
    (the interval minus the holes around the avoided points), so distinct draws stay distinct
    and Hypothesis can shrink ``u``.

    >>> Real(-1.0, 1.0, avoid=(0.0,), margin=0.5).from_unit([0.0, 0.5, 1.0]).tolist()
    [-1.0, 0.5, 1.0]
    """

    low: float = -2.0
    high: float = 2.0
    avoid: tuple = ()
    margin: float = 0.1

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"Real: low={self.low} must not exceed high={self.high}")
        if not self.intervals():
            raise ValueError(f"Real({self.low}, {self.high}, avoid={self.avoid}, "
                             f"margin={self.margin}): no value is left to draw from")

    def intervals(self) -> list[tuple[float, float]]:
        """The allowed set as sorted disjoint closed intervals."""
        pieces = [(float(self.low), float(self.high))]
        for p in sorted(self.avoid):
            lo_hole, hi_hole = p - self.margin, p + self.margin
            nxt = []
            for a, b in pieces:
                if hi_hole <= a or lo_hole >= b:
                    nxt.append((a, b))
                    continue
                if a < lo_hole:
                    nxt.append((a, lo_hole))
                if hi_hole < b:
                    nxt.append((hi_hole, b))
            pieces = nxt
        return pieces

    @property
    def length(self) -> float:
        """Total length of the allowed set (distances in ``u`` scale by this)."""
        return float(sum(b - a for a, b in self.intervals()))

    def from_unit(self, u: ArrayLike) -> np.ndarray:
        """Map ``u`` in ``[0, 1]`` (any shape) monotonically onto the allowed set, in float64.

        >>> Real(0.0, 4.0).from_unit([0.25, 1.0]).tolist()
        [1.0, 4.0]
        """
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        pieces = self.intervals()
        starts = np.array([a for a, _ in pieces])
        cum = np.concatenate([[0.0], np.cumsum([b - a for a, b in pieces])])
        t = u * cum[-1]
        k = np.clip(np.searchsorted(cum, t, side="right") - 1, 0, len(pieces) - 1)
        return np.clip(starts[k] + (t - cum[k]), self.low, self.high)

    def draw(self, rng: np.random.Generator, shape: tuple, args: Sequence[Any],
             dtype: DTypeLike = np.float64, params: Mapping[str, Any] | None = None
             ) -> np.ndarray:
        """An array of ``shape`` drawn from the allowed set (``args``/``params`` unused).

        >>> x = Real(1.0, 2.0).draw(np.random.default_rng(0), (2, 2), [], np.float32)
        >>> x.dtype, bool(((1 <= x) & (x <= 2)).all())
        (dtype('float32'), True)
        """
        return np.asarray(self.from_unit(rng.uniform(0.0, 1.0, size=shape)), dtype=dtype)


def positive(low: float = 0.2, high: float = 3.0) -> Real:
    """Strictly positive reals (log, sqrt, a base of power).

    >>> positive()
    Real(low=0.2, high=3.0, avoid=(), margin=0.1)
    """
    return Real(low, high)


def reals(low: float = -2.0, high: float = 2.0, avoid: Sequence[float] = (),
          margin: float = 0.1) -> Real:
    """Reals in ``[low, high]`` away from ``avoid`` (the keyword form of :class:`Real`).

    >>> reals(-1, 1, avoid=[0.0]).intervals()
    [(-1.0, -0.1), (0.1, 1.0)]
    """
    return Real(low, high, tuple(avoid), margin)


def spread(u: ArrayLike, gap: float) -> np.ndarray:
    """Move values in ``[0, 1]`` as little as needed so that any two differ by ``gap``.

    Order is kept (ties are broken by position) and the result stays in ``[0, 1]``; ``gap`` is
    shrunk if the values cannot all fit.

    >>> spread([0.5, 0.5, 0.5], 0.1).round(6).tolist()
    [0.5, 0.6, 0.7]
    """
    u = np.asarray(u, dtype=np.float64)
    flat = u.ravel()
    n = flat.size
    if n < 2 or gap <= 0:
        return u.copy()
    gap = min(gap, 1.0 / (n - 1))
    order = np.argsort(flat, kind="stable")
    s = flat[order]
    for i in range(1, n):  # push up
        s[i] = max(s[i], s[i - 1] + gap)
    s[-1] = min(s[-1], 1.0)
    for i in range(n - 2, -1, -1):  # then back down below 1
        s[i] = min(s[i], s[i + 1] - gap)
    out = np.empty_like(flat)
    out[order] = np.clip(s, 0.0, 1.0)  # rounding may leave -1e-16
    return out.reshape(u.shape)


@dataclass(frozen=True)
class Indices:
    """Integer indices valid for axis ``axis`` of array argument ``of``, or below the static
    parameter named ``param`` (repeats allowed).

    >>> ids = Indices(of=0).draw(np.random.default_rng(0), (5,), [np.zeros((3, 2))])
    >>> ids.dtype, bool(((0 <= ids) & (ids < 3)).all())
    (dtype('int64'), True)
    """

    of: int = 0
    axis: int = 0
    param: str | None = None

    def bound(self, args: Sequence[Any], params: Mapping[str, Any] | None) -> int:
        """How many distinct index values are valid (indices are drawn in ``[0, bound)``).

        >>> Indices(of=0, axis=1).bound([np.zeros((3, 7))], {})
        7
        """
        return int((params or {})[self.param] if self.param else np.shape(args[self.of])[self.axis])

    def draw(self, rng: np.random.Generator, shape: tuple, args: Sequence[Any],
             dtype: DTypeLike | None = None, params: Mapping[str, Any] | None = None) -> np.ndarray:
        """int64 indices of ``shape`` in ``[0, bound(args, params))`` (``dtype`` unused)."""
        return rng.integers(0, self.bound(args, params), size=shape, dtype=np.int64)


@dataclass(frozen=True)
class ClassTargets:
    """Integer class ids for logits argument ``of``: values in ``[0, C)``, C its last axis.

    >>> ClassTargets(of=0).bound([np.zeros((4, 10))], {})
    10
    """

    of: int = 0

    def bound(self, args: Sequence[Any], params: Mapping[str, Any] | None) -> int:
        """The number of classes: the last axis of argument ``of``."""
        return int(np.shape(args[self.of])[-1])

    def draw(self, rng: np.random.Generator, shape: tuple, args: Sequence[Any],
             dtype: DTypeLike | None = None, params: Mapping[str, Any] | None = None) -> np.ndarray:
        """int64 class ids of ``shape`` in ``[0, C)`` (``dtype`` unused)."""
        return rng.integers(0, self.bound(args, params), size=shape, dtype=np.int64)


@dataclass(frozen=True)
class Mask:
    """A boolean array (the condition of ``where``).

    >>> Mask().draw(np.random.default_rng(0), (3,), []).dtype
    dtype('bool')
    """

    def draw(self, rng: np.random.Generator, shape: tuple, args: Sequence[Any],
             dtype: DTypeLike | None = None, params: Mapping[str, Any] | None = None) -> np.ndarray:
        """Booleans of ``shape``, each True with probability 1/2 (the other arguments unused)."""
        return rng.random(size=shape) < 0.5


#: What a :class:`Domain` holds for each array input.
Spec = Union[Real, Indices, ClassTargets, Mask]


# -- matrices for the linear-algebra ops: drawn where each op is smooth -----------------------
# Each maps unit draws of shape (..., m, n) onto matrices, so Hypothesis can shrink the units
# and every draw is a valid input, however degenerate the units (all equal, all zero).

__all__ += ["WellConditioned", "PositiveDefinite", "DistinctEigenvalues",
            "DistinctSingularValues"]


def _unit_matrices(u, what: str, square: bool = False) -> np.ndarray:
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    if u.ndim < 2 or (square and u.shape[-1] != u.shape[-2]):
        kind = "square matrices (..., n, n)" if square else "matrices (..., m, n)"
        raise ValueError(f"{what}: draws {kind}, got shape {u.shape}")
    return u


def _mT(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _symmetric(a: np.ndarray) -> np.ndarray:
    return (a + _mT(a)) / 2


def _generic_orthonormal(u: np.ndarray, v: np.ndarray | None = None) -> np.ndarray:
    """Orthonormal columns ``(..., m, min(m, n))`` from units ``(..., m, n)``, never close to a
    signed permutation. Eigen- and singular vectors are defined up to sign, and LAPACK's sign
    choice jumps at structured matrices (a diagonal one: a perturbation of either sign flips
    a vector), where finite differences would see a jump: so the units only move a fixed,
    generic matrix (Householder QR is orthonormal whatever its input). With units ``v`` for
    the imaginary parts, unitary columns."""
    m, n = u.shape[-2:]
    generic = 2.0 * np.random.default_rng(1000 * m + n).standard_normal((m, n))
    if v is not None:  # complex: unitary columns from a generic complex matrix
        generic = generic + 2j * np.random.default_rng(1000 * m + n + 1).standard_normal((m, n))
        return np.linalg.qr(generic + 2.0 * u - 1.0 + 1j * (2.0 * v - 1.0))[0]
    return np.linalg.qr(generic + 2.0 * u - 1.0)[0]


def _hermitian(a: np.ndarray) -> np.ndarray:
    return (a + np.conj(_mT(a))) / 2


@dataclass(frozen=True)
class WellConditioned(Real):
    """Matrices ``(..., m, n)`` of full rank, singular values at least 0.4: the leading square
    block is strictly diagonally dominant (diagonal ``±(1 + u)``, signs alternating so that
    determinants of both signs occur; other entries of that block of size ``0.6 / (k - 1)``
    at most), the remaining entries of size at most 1. No entry off the diagonal is near 0:
    LAPACK's QR flips the sign of a column where the part below the diagonal is exactly zero.
    For inv, det, slogdet, solve, pinv, qr.

    >>> import numpy as np
    >>> a = WellConditioned().from_unit(np.full((3, 3), 0.5))
    >>> np.diag(a).tolist(), bool(np.linalg.svd(a, compute_uv=False).min() >= 0.4)
    ([1.5, -1.5, 1.5], True)
    """

    def from_unit(self, u: ArrayLike) -> np.ndarray:
        """Map unit draws of shape (..., m, n) onto WellConditioned matrices."""
        u = _unit_matrices(u, "WellConditioned")
        m, n = u.shape[-2:]
        k = min(m, n)
        signs = np.where(np.random.default_rng(1000 * m + n).random((m, n)) < 0.5, -1.0, 1.0)
        a = signs * (0.25 + 0.75 * u)
        a[..., :k, :k] *= 0.6 / max(k - 1, 1)
        i = np.arange(k)
        a[..., i, i] = np.where(i % 2 == 0, 1.0, -1.0) * (1.0 + u[..., i, i])
        return a

    def complex_from_units(self, u: ArrayLike, v: ArrayLike) -> np.ndarray:
        """Complex WellConditioned matrices, imaginary parts from units ``v``: in the leading
        block, real parts off the diagonal scaled by 0.8 and imaginary parts of size
        ``0.36 / (k - 1)`` at most, so every modulus there stays below ``0.6 / (k - 1)``."""
        a = self.from_unit(u)
        imag = 0.5 * (2.0 * _unit_matrices(v, "WellConditioned") - 1.0)
        m, n = a.shape[-2:]
        k = min(m, n)
        off = np.zeros((m, n), dtype=bool)
        off[:k, :k] = ~np.eye(k, dtype=bool)
        return (np.where(off, 0.8, 1.0) * a
                + 1j * np.where(off, 0.72 / max(k - 1, 1), 1.0) * imag)


@dataclass(frozen=True)
class PositiveDefinite(Real):
    """Symmetric positive definite matrices ``b bᵀ / n + I`` with ``b = 2u - 1``: eigenvalues
    in [1, n + 1]. For cholesky.

    >>> import numpy as np
    >>> a = PositiveDefinite().from_unit(np.random.default_rng(0).random((3, 3)))
    >>> bool((a == a.T).all()), bool(np.linalg.eigvalsh(a).min() >= 1.0)
    (True, True)
    """

    def from_unit(self, u: ArrayLike) -> np.ndarray:
        """Map unit draws of shape (..., m, n) onto PositiveDefinite matrices."""
        u = _unit_matrices(u, "PositiveDefinite", square=True)
        b = 2.0 * u - 1.0
        n = u.shape[-1]
        return _symmetric(b @ _mT(b) / n + np.eye(n))

    def complex_from_units(self, u: ArrayLike, v: ArrayLike) -> np.ndarray:
        """Hermitian positive definite matrices ``b bᴴ / n + I``, ``b = 2u - 1 + i (2v - 1)``."""
        u = _unit_matrices(u, "PositiveDefinite", square=True)
        b = 2.0 * u - 1.0 + 1j * (2.0 * _unit_matrices(v, "PositiveDefinite") - 1.0)
        n = u.shape[-1]
        return _hermitian(b @ np.conj(_mT(b)) / n + np.eye(n))


@dataclass(frozen=True)
class DistinctEigenvalues(Real):
    """Symmetric matrices ``q diag(w) qᵀ`` whose eigenvalues ``w`` are at least ``gap`` apart
    (the eigenvectors' derivatives divide by their differences), none near zero and no two of
    the same magnitude. For eigh.

    >>> import numpy as np
    >>> a = DistinctEigenvalues().from_unit(np.random.default_rng(0).random((4, 4)))
    >>> bool(np.diff(np.linalg.eigvalsh(a)).min() >= 0.7 - 1e-12)
    True
    """

    gap: float = 0.7

    def from_unit(self, u: ArrayLike) -> np.ndarray:
        """Map unit draws of shape (..., m, n) onto DistinctEigenvalues matrices."""
        u = _unit_matrices(u, "DistinctEigenvalues", square=True)
        q = _generic_orthonormal(u)
        return _symmetric((q * self._values(u)[..., None, :]) @ _mT(q))

    def complex_from_units(self, u: ArrayLike, v: ArrayLike) -> np.ndarray:
        """Hermitian matrices ``q diag(w) qᴴ``, ``q`` unitary, the same eigenvalues."""
        u = _unit_matrices(u, "DistinctEigenvalues", square=True)
        q = _generic_orthonormal(u, _unit_matrices(v, "DistinctEigenvalues"))
        return _hermitian((q * self._values(u)[..., None, :]) @ np.conj(_mT(q)))

    def _values(self, u: np.ndarray) -> np.ndarray:
        n = u.shape[-1]
        jitter = 0.2 * (np.diagonal(u, axis1=-2, axis2=-1) - 0.5)
        # LAPACK's sign choice for the vectors jumps where an eigenvalue is 0 or two have the
        # same magnitude: steps offset from 0 by a quarter and three quarters of a step
        step = self.gap + 0.3
        return (np.arange(n) - n // 2 + 0.75) * step + jitter


@dataclass(frozen=True)
class DistinctSingularValues(Real):
    """Matrices ``(..., m, n) = l diag(s) rᵀ`` whose singular values ``s`` are at least 1 and
    at least ``gap`` apart (the singular vectors' derivatives divide by differences of their
    squares). For svd.

    >>> import numpy as np
    >>> a = DistinctSingularValues().from_unit(np.random.default_rng(0).random((4, 2)))
    >>> s = np.linalg.svd(a, compute_uv=False)
    >>> bool(s.min() >= 1.0 - 1e-12 and s[0] - s[1] >= 0.5 - 1e-12)
    True
    """

    gap: float = 0.5

    def from_unit(self, u: ArrayLike) -> np.ndarray:
        """Map unit draws of shape (..., m, n) onto DistinctSingularValues matrices."""
        u = _unit_matrices(u, "DistinctSingularValues")
        left, right = _generic_orthonormal(u), _generic_orthonormal(_mT(u))  # (m, k), (n, k)
        return (left * self._values(u)[..., None, :]) @ _mT(right)

    def complex_from_units(self, u: ArrayLike, v: ArrayLike) -> np.ndarray:
        """Complex matrices ``l diag(s) rᴴ`` (``l``, ``r`` with unitary columns)."""
        u = _unit_matrices(u, "DistinctSingularValues")
        v = _unit_matrices(v, "DistinctSingularValues")
        left, right = _generic_orthonormal(u, v), _generic_orthonormal(_mT(u), _mT(v))
        return (left * self._values(u)[..., None, :]) @ np.conj(_mT(right))

    def _values(self, u: np.ndarray) -> np.ndarray:
        k = min(u.shape[-2:])
        jitter = 0.3 * np.diagonal(u[..., :k, :k], axis1=-2, axis2=-1)
        return 1.0 + np.arange(k) * (self.gap + 0.3) + jitter


@dataclass(frozen=True)
class Diagonalizable(Real):
    """Square matrices ``p diag(w) p⁻¹`` (``p`` :class:`WellConditioned`) whose eigenvalues are
    at least ``gap`` apart (the eigenvectors' derivatives divide by their differences); a real
    one of size 2 or more has a pair of complex-conjugate eigenvalues ``a ± ib``, ``b >= 0.8``
    (a rotation block), the others real. For eig.

    >>> import numpy as np
    >>> a = Diagonalizable().from_unit(np.random.default_rng(0).random((3, 3)))
    >>> w = np.linalg.eigvals(a)
    >>> sorted(np.round(np.abs(w.imag), 6).tolist())[0], bool(np.iscomplexobj(w))
    (0.0, True)
    """

    gap: float = 0.7

    def from_unit(self, u: ArrayLike) -> np.ndarray:
        """Map unit draws of shape (..., n, n) onto Diagonalizable real matrices."""
        u = _unit_matrices(u, "Diagonalizable", square=True)
        n = u.shape[-1]
        block = np.zeros(u.shape)
        i = np.arange(n)
        block[..., i, i] = self._values(u)
        if n >= 2:  # eigenvalues a +- ib of [[a, -b], [b, a]]
            b = 0.8 + 0.4 * u[..., 0, 1]
            block[..., 1, 1] = block[..., 0, 0]
            block[..., 0, 1], block[..., 1, 0] = -b, b
        p = WellConditioned().from_unit(u)
        return p @ block @ np.linalg.inv(p)

    def complex_from_units(self, u: ArrayLike, v: ArrayLike) -> np.ndarray:
        """Complex matrices ``p diag(w) p⁻¹``, the eigenvalues ``w`` complex."""
        u = _unit_matrices(u, "Diagonalizable", square=True)
        v = _unit_matrices(v, "Diagonalizable", square=True)
        w = self._values(u) + 1j * (np.diagonal(v, axis1=-2, axis2=-1) - 0.5)
        p = WellConditioned().complex_from_units(u, v)
        return (p * w[..., None, :]) @ np.linalg.inv(p)

    def _values(self, u: np.ndarray) -> np.ndarray:
        n = u.shape[-1]
        jitter = 0.2 * (np.diagonal(u, axis1=-2, axis2=-1) - 0.5)
        return (np.arange(n) - n // 2 + 0.75) * (self.gap + 0.3) + jitter


__all__ += ["Diagonalizable", "Complex", "IMAGINARY"]

#: Where imaginary parts are drawn by default: inside the strip where arctan, arcsinh and
#: their kin (branch points at ±i) stay smooth.
IMAGINARY = Real(-0.7, 0.7)


@dataclass(frozen=True)
class Complex:
    """Complex numbers: real parts from the spec ``real``, imaginary parts from ``imag``.

    A matrix spec gives its own complex kind from both draws instead (Hermitian matrices for
    :class:`PositiveDefinite` and :class:`DistinctEigenvalues`, unitary factors for
    :class:`DistinctSingularValues`...). A :class:`Domain` lists one per input that may be
    complex.

    >>> import numpy as np
    >>> z = Complex(Real(1.0, 2.0), Real(-0.5, 0.5)).from_units([0.0, 1.0], [0.5, 1.0])
    >>> z.tolist()
    [(1+0j), (2+0.5j)]
    """

    real: Real = Real()
    imag: Real = IMAGINARY

    def from_units(self, u: ArrayLike, v: ArrayLike) -> np.ndarray:
        """complex128 values from unit draws ``u`` (real parts) and ``v`` (imaginary parts)."""
        make = getattr(self.real, "complex_from_units", None)
        if make is not None:
            return np.asarray(make(u, v), dtype=np.complex128)
        return self.real.from_unit(u) + 1j * self.imag.from_unit(v)


Case = tuple  # ((shape of each array input, ...), {static params})


@dataclass(frozen=True)
class Domain:
    """Test metadata of one op: a spec per array input and the cases to check.

    ``args`` holds one spec per array input (for ops taking a sequence of arrays, one spec used
    for all of them). ``cases`` is a list of ``(shapes, params)`` pairs. ``kind`` tells
    strategies how to invent new shapes: ``"elementwise"`` ops accept any broadcast-compatible
    shapes, ``"reduction"`` ops any shape with an ``axis`` in range (and ``keepdims`` either
    way), ``"general"`` ops only the listed cases. ``apart`` lists groups of argument positions
    whose elements must all differ by at least ``apart_margin``: ties are kinks (``(0, 1)`` for
    ``maximum(x, y)``, ``(0,)`` for ``max(x)``); the arguments of a group share one spec.
    ``params`` maps a static parameter to the values invented cases may use.

    ``complex`` says whether the op accepts complex inputs (and its VJP follows fungrad's
    convention for them): ``None`` (the default: it refuses them), ``True`` (every Real input
    may be complex, drawn as ``Complex(spec)``), or one :class:`Complex` spec or ``None`` per
    input (``None``: that input stays real, as rfft's). ``phase_free`` lists outputs defined
    only up to a phase per column when complex (eigenvectors, singular vectors): the tests
    check them through ``abs``.

    >>> from fungrad.domains import Domain, Real
    >>> d = Domain((Real(), Real()), [((3, 4), (4,))], kind="elementwise", apart=[(0, 1)])
    >>> d.cases, d.explicit, d.accepts_complex
    (((((3, 4), (4,)), {}),), True, False)
    >>> Domain((Real(),), complex=True).complex_spec(0).imag
    Real(low=-0.7, high=0.7, avoid=(), margin=0.1)
    """

    args: tuple
    cases: tuple = field(default=())
    kind: str = "general"
    apart: tuple = ()
    apart_margin: float = 0.01
    params: Mapping = field(default_factory=dict)
    explicit: bool = True
    complex: tuple | None = None
    phase_free: tuple = ()

    def __init__(self, args: Sequence[Spec], cases: Sequence[Any] | None = None,
                 kind: str = "general", *, apart: Sequence[Sequence[int]] = (),
                 apart_margin: float = 0.01, params: Mapping[str, Sequence[Any]] | None = None,
                 explicit: bool = True, complex: bool | Sequence[Complex | None] | None = None,
                 phase_free: Sequence[int] = ()) -> None:
        args = tuple(args)
        if kind not in KINDS:
            raise ValueError(f"Domain: kind must be one of {KINDS}, got {kind!r}")
        if cases is None:
            cases = default_domain(len(args)).cases
        else:
            cases = _normalize_cases(cases)
        apart = tuple(tuple(int(i) for i in group) for group in apart)
        for group in apart:
            specs = {args[i] if i < len(args) else args[-1] for i in group}
            if len(specs) != 1 or not isinstance(next(iter(specs)), Real):
                raise ValueError(f"Domain: the arguments {group} kept apart must share one "
                                 f"Real spec, got {specs}")
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "cases", cases)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "apart", apart)
        object.__setattr__(self, "apart_margin", float(apart_margin))
        object.__setattr__(self, "params", dict(params or {}))
        object.__setattr__(self, "explicit", bool(explicit))
        object.__setattr__(self, "complex", _complex_specs(args, complex))
        object.__setattr__(self, "phase_free", tuple(int(i) for i in phase_free))

    @property
    def accepts_complex(self) -> bool:
        """Whether the op accepts complex values in some input (a domain may also declare
        complex outputs of real inputs alone, as rfft's: ``complex=[None]``)."""
        return self.complex is not None and any(c is not None for c in self.complex)

    def complex_spec(self, i: int) -> Complex | None:
        """The :class:`Complex` spec of input ``i``, or None if it must be real."""
        if self.complex is None:
            return None
        return self.complex[i] if i < len(self.complex) else self.complex[-1]

    def spec(self, i: int) -> Spec:
        """The spec of array input ``i`` (the last spec serves every input after it).

        >>> Domain((Real(), Mask())).spec(5)
        Mask()
        """
        return self.args[i] if i < len(self.args) else self.args[-1]

    def group_of(self, i: int) -> tuple | None:
        """The ``apart`` group argument ``i`` belongs to, if any."""
        for group in self.apart:
            if i in group:
                return group
        return None

    def draw(self, rng: np.random.Generator, case: Case, dtype: DTypeLike = np.float64
             ) -> tuple[list, dict]:
        """Concrete arrays and params for one case (float inputs in ``dtype``; a complex
        ``dtype`` draws the inputs that may be complex from their :class:`Complex` specs)."""
        shapes, params = case
        shapes = [tuple(s) for s in shapes]
        units = [rng.uniform(0.0, 1.0, size=s) for s in shapes]
        imag = [rng.uniform(0.0, 1.0, size=s) for s in shapes] \
            if np.dtype(dtype).kind == "c" else None
        return self.build(units, shapes, params, dtype, rng=rng, imag_units=imag)

    def build(self, units: list, shapes: list, params: Mapping, dtype: DTypeLike = np.float64,
              rng: np.random.Generator | None = None,
              integers: Callable[[Spec, tuple, int], np.ndarray] | None = None,
              imag_units: list | None = None) -> tuple[list, dict]:
        """Arrays from unit draws ``units`` (one array in ``[0, 1]`` per Real input): applies
        the ``apart`` groups, maps onto each spec, then draws the index/label/mask inputs
        (with ``integers(spec, shape, bound)`` if given, else from ``rng``). A complex
        ``dtype`` maps ``units`` and ``imag_units`` through each input's :class:`Complex`
        spec; inputs that must stay real get the matching real dtype."""
        n = len(shapes)
        dtype = np.dtype(dtype)
        if dtype.kind == "c":
            if self.complex is None:
                raise ValueError("Domain.build: this domain accepts no complex inputs")
            if imag_units is None:
                imag_units = [(rng or np.random.default_rng(0)).uniform(0.0, 1.0, size=s)
                              for s in shapes]
        units = [None if u is None else np.asarray(u, dtype=np.float64) for u in units]
        for group in self.apart:
            members = [i for i in group if i < n]
            if not members:
                continue
            flat = np.concatenate([units[i].ravel() for i in members])
            spec = self.spec(members[0])
            moved = spread(flat, self.apart_margin / max(spec.length, 1e-12))  # type: ignore[union-attr]
            k = 0
            for i in members:
                size = units[i].size
                units[i] = moved[k:k + size].reshape(shapes[i])
                k += size
        args: list[Any] = [None] * n
        real_dtype = np.finfo(dtype).dtype if dtype.kind == "c" else dtype
        for i in range(n):
            spec = self.spec(i)
            if not isinstance(spec, Real):
                continue
            cspec = self.complex_spec(i) if dtype.kind == "c" else None
            if cspec is not None and imag_units is not None:
                value = cspec.from_units(units[i], imag_units[i]).astype(dtype)
            else:
                value = np.asarray(spec.from_unit(units[i]), dtype=real_dtype)
            args[i] = value.reshape(shapes[i])
        for i in range(n):
            spec = self.spec(i)
            if isinstance(spec, Real):
                continue
            if integers is not None and hasattr(spec, "bound"):
                args[i] = integers(spec, shapes[i], spec.bound(args, params))
            elif integers is not None and isinstance(spec, Mask):
                args[i] = integers(spec, shapes[i], 2).astype(bool)
            else:
                args[i] = spec.draw(rng or np.random.default_rng(0), shapes[i], args,
                                    real_dtype, params)
        return args, dict(params)

    def float_args(self, n_args: int) -> list[int]:
        """Positions of the real-valued (differentiable) inputs."""
        return [i for i in range(n_args) if isinstance(self.spec(i), Real)]


def _complex_specs(args: tuple, given) -> tuple | None:
    """One :class:`Complex` spec (or None) per input from Domain's ``complex`` argument."""
    if given is None or given is False:
        return None
    if given is True:
        return tuple(Complex(spec) if isinstance(spec, Real) else None for spec in args)
    specs = tuple(given)
    if len(specs) != len(args):
        raise ValueError(f"Domain: complex gives {len(specs)} specs for {len(args)} inputs")
    for i, (c, spec) in enumerate(zip(specs, args)):
        if c is not None and not (isinstance(c, Complex) and isinstance(spec, Real)):
            raise ValueError(f"Domain: complex spec {i} must be a Complex spec for a Real input "
                             f"or None, got {c!r} for {spec!r}")
    return specs


def _normalize_cases(cases) -> tuple:
    out = []
    for case in cases:
        if len(case) == 2 and isinstance(case[1], dict):
            shapes, params = case
        else:
            shapes, params = case, {}
        out.append((tuple(tuple(s) for s in shapes), dict(params)))
    return tuple(out)


UNARY_CASES: tuple = (((3, 4),), {}), (((5,),), {}), (((),), {}), (((2, 3, 2),), {})
BINARY_CASES: tuple = (
    (((3, 4), (3, 4)), {}),
    (((3, 4), (4,)), {}),
    (((4,), (3, 4)), {}),
    (((2, 1, 4), (3, 1)), {}),
    (((), (2, 3)), {}),
    (((3, 1), ()), {}),
)


def default_domain(n_inputs: int) -> Domain:
    """Moderate reals in [-2, 2] for every input, broadcasting cases for binary ops.

    The result is marked ``explicit=False``: a built-in op must declare its own domain.

    >>> d = default_domain(2)
    >>> d.kind, d.explicit, d.cases[1]
    ('elementwise', False, (((3, 4), (4,)), {}))
    """
    cases: tuple
    if n_inputs == 1:
        cases = UNARY_CASES
    elif n_inputs == 2:
        cases = BINARY_CASES
    else:
        cases = ((((3, 4),) * n_inputs, {}),)
    return Domain((Real(),) * max(n_inputs, 1), cases, kind="elementwise", explicit=False)
