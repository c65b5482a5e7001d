"""Finite-difference checks of reverse mode (VJP) and forward mode (JVP), to any order."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..tensor import Tensor
from ..tree import flatten, unflatten

__all__ = ["check_grads"]


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _upcast(arg):
    """Float leaves to float64 ndarrays (the check runs in float64); others unchanged."""
    leaves, spec = flatten(arg)
    out = []
    for x in leaves:
        a = np.asarray(_data(x))
        out.append(a.astype(np.float64) if a.dtype.kind == "f" or isinstance(x, float) else x)
    return unflatten(spec, out)


def _float_positions(args) -> list[tuple[int, int]]:
    """(argument, leaf) positions of the floating-point leaves: the differentiable inputs."""
    pos = []
    for i, arg in enumerate(args):
        for j, x in enumerate(flatten(arg)[0]):
            if isinstance(x, float) or np.asarray(_data(x)).dtype.kind == "f":
                pos.append((i, j))
    return pos


def _output(y) -> list[np.ndarray]:
    return [np.asarray(_data(v), dtype=np.float64) for v in flatten(y)[0]]


def _inner(a: list, b: list) -> float:
    return float(sum(np.vdot(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
                     for x, y in zip(a, b)))


def _shift(args, positions, directions, scale):
    new = []
    for i, arg in enumerate(args):
        leaves, spec = flatten(arg)
        leaves = list(leaves)
        for (ai, lj), d in zip(positions, directions):
            if ai == i:
                leaves[lj] = np.asarray(leaves[lj], dtype=np.float64) + scale * d
        new.append(unflatten(spec, leaves))
    return new


def _close(analytic: float, numeric: float, rtol: float, atol: float) -> bool:
    return abs(analytic - numeric) <= atol + rtol * max(abs(analytic), abs(numeric))


def check_grads(f: Callable, *args: Any, order: int = 1, modes: Sequence[str] = ("rev", "fwd"),
                eps: float | None = None, rtol: float | None = None, atol: float | None = None,
                rng: np.random.Generator | None = None) -> None:
    """Check the derivatives of ``f`` at ``args`` against central finite differences.

    Reverse mode is checked as ``<u, J^T v>`` against the numeric ``<J u, v>`` for random
    directions ``u`` (inputs) and ``v`` (outputs); forward mode compares ``<J u, v>`` from
    ``fg.jvp``. ``order=2`` also checks the derivative function itself, and so on. Float inputs
    are upcast to float64 for the check; integer inputs (indices, labels) are held fixed.
    Raises AssertionError naming the order, mode, and the analytic and numeric values.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.testing import check_grads
    >>> check_grads(lambda x: fg.tanh(x) * x, np.array([0.3, -1.2]), order=2)
    """
    from ..functional import jvp, vjp  # noqa: PLC0415

    rng = rng if rng is not None else np.random.default_rng(0)
    eps = 1e-6 if eps is None else eps
    rtol = 1e-5 if rtol is None else rtol
    atol = 1e-6 if atol is None else atol
    args = [_upcast(a) for a in args]
    positions = _float_positions(args)
    if not positions:
        raise ValueError("check_grads: no floating-point input to differentiate")

    def leaf(pos):
        return flatten(args[pos[0]])[0][pos[1]]

    def restricted(*xs):
        full = list(args)
        full = _replace(full, positions, xs)
        return f(*full)

    primals = [np.asarray(leaf(p), dtype=np.float64) for p in positions]
    u = [rng.standard_normal(np.shape(p)) for p in primals]
    y = _output(f(*args))
    v = [rng.standard_normal(np.shape(o)) for o in y]

    plus = _output(f(*_shift(args, positions, u, eps)))
    minus = _output(f(*_shift(args, positions, u, -eps)))
    numeric = _inner([(a - b) / (2 * eps) for a, b in zip(plus, minus)], v)

    if "rev" in modes:
        _, vjp_fn = vjp(restricted, *primals)
        cts = vjp_fn(unflatten(flatten(f(*args))[1], v))
        analytic = _inner([np.asarray(_data(c)) for c in cts], u)
        if not _close(analytic, numeric, rtol, atol):
            raise AssertionError(
                f"check_grads: reverse mode (VJP) of order {order} is wrong: <u, J^T v> = "
                f"{analytic!r} but finite differences give {numeric!r} "
                f"(inputs {_describe(primals)})"
            )
    if "fwd" in modes:
        _, tangent = jvp(restricted, primals, u)
        analytic = _inner(_output(tangent), v)
        if not _close(analytic, numeric, rtol, atol):
            raise AssertionError(
                f"check_grads: forward mode (JVP) of order {order} is wrong: <J u, v> = "
                f"{analytic!r} but finite differences give {numeric!r} "
                f"(inputs {_describe(primals)})"
            )
    if order > 1:
        v_tree = unflatten(flatten(f(*args))[1], v)

        def derivative(*xs):
            return vjp(restricted, *xs)[1](v_tree)

        check_grads(derivative, *primals, order=order - 1, modes=("rev",), eps=eps,
                    rtol=rtol * 10, atol=atol * 10, rng=rng)


def _replace(full: list, positions, xs) -> list:
    out = []
    for i, arg in enumerate(full):
        leaves, spec = flatten(arg)
        leaves = list(leaves)
        for (ai, lj), x in zip(positions, xs):
            if ai == i:
                leaves[lj] = x
        out.append(unflatten(spec, leaves))
    return out


def _describe(arrays) -> str:
    return ", ".join(f"shape {tuple(np.shape(a))}" for a in arrays)
