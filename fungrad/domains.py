"""Where each op's test inputs may be drawn from: the test metadata that lives with the op.

A :class:`Domain` has one spec per array input (:class:`Real` intervals with points to stay
away from, :class:`Indices` valid for another argument, :class:`ClassTargets`, :class:`Mask`)
and a list of *cases*: input shapes together with static parameters (``axis``, ``keepdims``,
a ``shape`` for ``reshape``...). The registry-driven tests and
``fungrad.testing.strategies.op_inputs`` draw from it.

>>> import numpy as np
>>> from fungrad.domains import Domain, Real
>>> d = Domain((Real(0.1, 3.0),), cases=[((2, 3),), {}])
>>> args, params = d.draw(np.random.default_rng(0), d.cases[0])
>>> args[0].shape, bool((args[0] > 0).all())
((2, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Real", "Indices", "ClassTargets", "Mask", "Domain", "UNARY_CASES", "BINARY_CASES",
    "default_domain", "positive", "reals",
]


@dataclass(frozen=True)
class Real:
    """Floats uniform in ``[low, high]``, kept at least ``margin`` away from each ``avoid`` point
    (kinks such as relu at 0, poles such as 1/x at 0)."""

    low: float = -2.0
    high: float = 2.0
    avoid: tuple = ()
    margin: float = 0.1

    def draw(self, rng: np.random.Generator, shape: tuple, args: list, dtype=np.float64,
             params=None):
        x = rng.uniform(self.low, self.high, size=shape)
        for p in self.avoid:
            near = np.abs(x - p) < self.margin
            if near.any():
                side = np.where(x >= p, 1.0, -1.0)
                pushed = p + side * self.margin * (1.0 + rng.uniform(0.1, 1.0, size=shape))
                # stay inside [low, high]: flip to the other side if pushing left the interval
                flipped = p - side * self.margin * (1.0 + rng.uniform(0.1, 1.0, size=shape))
                inside = (pushed >= self.low) & (pushed <= self.high)
                x = np.where(near, np.where(inside, pushed, flipped), x)
        return np.asarray(x, dtype=dtype)


def positive(low: float = 0.2, high: float = 3.0) -> Real:
    """Strictly positive reals (log, sqrt, a base of power)."""
    return Real(low, high)


def reals(low: float = -2.0, high: float = 2.0, avoid: tuple = (), margin: float = 0.1) -> Real:
    return Real(low, high, tuple(avoid), margin)


@dataclass(frozen=True)
class Indices:
    """Integer indices valid for axis ``axis`` of array argument ``of``, or below the static
    parameter named ``param`` (repeats allowed)."""

    of: int = 0
    axis: int = 0
    param: str | None = None

    def draw(self, rng, shape, args, dtype=None, params=None):
        n = params[self.param] if self.param else np.shape(args[self.of])[self.axis]
        return rng.integers(0, n, size=shape, dtype=np.int64)


@dataclass(frozen=True)
class ClassTargets:
    """Integer class ids for logits argument ``of``: values in ``[0, C)``, C its last axis."""

    of: int = 0

    def draw(self, rng, shape, args, dtype=None, params=None):
        n = np.shape(args[self.of])[-1]
        return rng.integers(0, n, size=shape, dtype=np.int64)


@dataclass(frozen=True)
class Mask:
    """A boolean array (the condition of ``where``)."""

    def draw(self, rng, shape, args, dtype=None, params=None):
        return rng.random(size=shape) < 0.5


Case = tuple  # ((shape of each array input, ...), {static params})


@dataclass(frozen=True)
class Domain:
    """Test metadata of one op: a spec per array input and the cases to check.

    ``args`` holds one spec per array input (for ops taking a sequence of arrays, one spec used
    for all of them). ``cases`` is a list of ``(shapes, params)`` pairs. ``kind`` tells
    strategies how to invent new shapes: ``"elementwise"`` ops accept any broadcast-compatible
    shapes, ``"reduction"`` ops any shape with an ``axis`` in range, ``"general"`` ops only the
    listed cases.
    """

    args: tuple
    cases: tuple = field(default=())
    kind: str = "general"

    def __init__(self, args, cases=None, kind="general"):
        args = tuple(args)
        if cases is None:
            cases = default_domain(len(args)).cases
        else:
            cases = _normalize_cases(cases)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "cases", cases)
        object.__setattr__(self, "kind", kind)

    def spec(self, i: int):
        return self.args[i] if i < len(self.args) else self.args[-1]

    def draw(self, rng: np.random.Generator, case: Case, dtype=np.float64) -> tuple[list, dict]:
        """Concrete arrays and params for one case (float inputs in ``dtype``)."""
        shapes, params = case
        args: list[Any] = [None] * len(shapes)
        # float inputs first: index and target specs refer to the arrays they index
        order = sorted(range(len(shapes)), key=lambda i: not isinstance(self.spec(i), Real))
        for i in order:
            args[i] = self.spec(i).draw(rng, tuple(shapes[i]), args, dtype, params)
        return args, dict(params)

    def float_args(self, n_args: int) -> list[int]:
        """Positions of the real-valued (differentiable) inputs."""
        return [i for i in range(n_args) if isinstance(self.spec(i), Real)]


def _normalize_cases(cases) -> tuple:
    out = []
    for case in cases:
        if len(case) == 2 and isinstance(case[1], dict):
            shapes, params = case
        else:
            shapes, params = case, {}
        out.append((tuple(tuple(s) for s in shapes), dict(params)))
    return tuple(out)


UNARY_CASES = (((3, 4),), {}), (((5,),), {}), (((),), {}), (((2, 3, 2),), {})
BINARY_CASES = (
    (((3, 4), (3, 4)), {}),
    (((3, 4), (4,)), {}),
    (((4,), (3, 4)), {}),
    (((2, 1, 4), (3, 1)), {}),
    (((), (2, 3)), {}),
    (((3, 1), ()), {}),
)


def default_domain(n_inputs: int) -> Domain:
    """Moderate reals in [-2, 2] for every input, broadcasting cases for binary ops."""
    if n_inputs == 1:
        cases = UNARY_CASES
    elif n_inputs == 2:
        cases = BINARY_CASES
    else:
        cases = ((((3, 4),) * n_inputs, {}),)
    return Domain((Real(),) * max(n_inputs, 1), cases, kind="elementwise")
