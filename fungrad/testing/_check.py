"""Finite-difference checks of reverse mode (VJP) and forward mode (JVP), to any order.

The check runs in float64: float inputs are upcast, and the function is compared with central
differences ``(f(x + eps u) - f(x - eps u)) / 2 eps`` along random directions. Reverse mode is
checked as ``<u, J^T v>`` against the numeric ``<J u, v>``, one argument at a time so that a
failure names the argument; forward mode compares ``<J u, v>`` from ``fg.jvp``; for small inputs
the whole Jacobian is compared too, so a failure names the worst element. ``order=2`` then
checks the derivative functions themselves (``x -> J(x)^T v`` and ``x -> J(x) u``), and so on.

Complex inputs and outputs are checked in complex128 as pairs of reals: directions ``u`` and
cotangents ``v`` are complex, so both the real and the imaginary parts are perturbed, and
``<a, b>`` is ``Re(sum(a * b))``, the pairing of fungrad's convention (a cotangent ``g`` meets a
change ``dz`` as ``Re(g * dz)``). The full Jacobian is then that of the real and imaginary
parts, each complex element two columns (directions 1 and i) or two rows.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Sequence, overload

import numpy as np

from ..registry import Op
from ..tensor import Tensor
from ..tree import flatten, unflatten

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = ["check_grads", "default_tolerances"]

MODES = ("rev", "fwd")
_MODE_NAMES = {"rev": "reverse mode (VJP)", "fwd": "forward mode (JVP)"}
# central-difference step and tolerances by the precision the function computes in
_TOLERANCES = {
    np.dtype(np.float64): (1e-6, 1e-5, 1e-6),
    np.dtype(np.float32): (1e-3, 2e-2, 2e-3),
    np.dtype(np.float16): (3e-2, 1e-1, 5e-2),
}
JACOBIAN_MAX_SIZE = 32  # compare the full Jacobian when inputs and outputs are this small


def default_tolerances(dtype: DTypeLike) -> tuple[float, float, float]:
    """``(eps, rtol, atol)`` used when a function computes in ``dtype``.

    >>> import numpy as np
    >>> from fungrad.testing import default_tolerances
    >>> default_tolerances(np.float64)
    (1e-06, 1e-05, 1e-06)
    """
    dt = np.dtype(dtype)
    if dt in _TOLERANCES:
        return _TOLERANCES[dt]
    if dt.kind == "f" and dt.itemsize > 8:  # longdouble: as strict as float64
        return _TOLERANCES[np.dtype(np.float64)]
    if dt.kind == "c":
        return default_tolerances(np.finfo(dt).dtype)
    return _TOLERANCES[np.dtype(np.float64)]


@overload
def check_grads(f: Callable, *, order: int = 1, modes: Sequence[str] = MODES,
                eps: float | None = None, rtol: float | None = None, atol: float | None = None,
                rng: np.random.Generator | None = None,
                full_jacobian: bool | None = None) -> Callable[..., None]: ...
@overload
def check_grads(f: Callable, arg: Any, /, *args: Any, order: int = 1,
                modes: Sequence[str] = MODES, eps: float | None = None,
                rtol: float | None = None, atol: float | None = None,
                rng: np.random.Generator | None = None,
                full_jacobian: bool | None = None) -> None: ...


def check_grads(f: Callable, *args: Any, order: int = 1, modes: Sequence[str] = MODES,
                eps: float | None = None, rtol: float | None = None, atol: float | None = None,
                rng: np.random.Generator | None = None,
                full_jacobian: bool | None = None) -> Callable[..., None] | None:
    """Check the derivatives of ``f`` at ``args`` against central finite differences.

    ``f`` takes ndarrays, Tensors, Python floats or nested dicts/lists/tuples of them and
    returns any of those. Float inputs are upcast to float64 for the check and differentiated
    (complex ones to complex128, perturbed along their real and imaginary parts; see the module
    docstring for the pairing); integer and boolean inputs (indices, labels, masks) are held
    fixed. For each float argument,
    reverse mode is checked as ``<u, J^T v>`` against the numeric ``<J u, v>`` for random
    directions ``u`` and ``v``; forward mode (in ``modes``) compares ``<J u, v>`` from
    ``fg.jvp``. When inputs and outputs hold at most 32 numbers each (or with
    ``full_jacobian=True``), the whole reverse-mode Jacobian is compared as well. ``order=2``
    (and higher) then checks the derivative functions themselves, in the same modes.

    ``eps``, ``rtol`` and ``atol`` default by the precision ``f`` computes in (see
    :func:`default_tolerances`); each higher order multiplies the tolerances by 10. A value
    passes if ``|analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|)``.

    Raises AssertionError naming the argument, the order and the mode, with the analytic and
    numeric values (and, for the full Jacobian, the worst element's index).

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.testing import check_grads
    >>> check_grads(lambda x: fg.tanh(x) * x, np.array([0.3, -1.2]), order=2)
    >>> check_grads(lambda p, x: fg.sum((x @ p["w"]) ** 2),
    ...             {"w": np.ones((2, 1))}, np.array([[1.0, 2.0]]))
    >>> check_grads(lambda z: fg.abs(fg.exp(z)) ** 2, np.array([0.5 + 1.0j]), order=2)

    HIPS autograd's curried form works too: ``check_grads(f, modes=["rev"])(x)`` (with no
    arguments, ``check_grads(f)`` returns the check to call on them; one never called warns
    that nothing was checked).

    >>> check_grads(fg.tanh, modes=["rev"])(np.array([0.5]))
    """
    if not args:  # HIPS autograd's curried form: check_grads(f, modes=["rev"])(x)
        return _Curried(f, dict(order=order, modes=modes, eps=eps, rtol=rtol, atol=atol,
                                rng=rng, full_jacobian=full_jacobian))
    modes = tuple(modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"check_grads: modes must be a non-empty subset of {MODES}, got {modes}")
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"check_grads: order must be an integer >= 1, got {order!r}")
    _Check(f, args, int(order), modes, eps, rtol, atol,
           rng if rng is not None else np.random.default_rng(0), full_jacobian,
           labels=None, what=_function_name(f), level=1).run()
    return None


class _Curried:
    """``check_grads(f, **options)`` without arguments: the check, to be called on them."""

    _NO_ARGS = ("check_grads: no arguments given: call check_grads(f, *args), or HIPS "
                "autograd's form check_grads(f, **options)(*args)")

    def __init__(self, f: Callable, options: dict) -> None:
        self.f, self.options, self.called = f, options, False

    def __call__(self, *args: Any) -> None:
        self.called = True
        if not args:
            raise TypeError(self._NO_ARGS)
        check_grads(self.f, *args, **self.options)

    def __del__(self) -> None:
        if not self.called:
            import warnings  # noqa: PLC0415

            warnings.warn(self._NO_ARGS + f" ({_function_name(self.f)} was not checked)",
                          RuntimeWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"<check_grads of {_function_name(self.f)}: call it on the arguments>"


# ---------------------------------------------------------------------------------------------


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _is_float(x) -> bool:
    return isinstance(x, float) or np.asarray(_data(x)).dtype.kind in "fc"


def _function_name(f) -> str:
    if isinstance(f, Op):
        return f"op '{f.name}'"
    name = getattr(f, "__name__", None) or type(f).__name__
    return "f" if name == "<lambda>" else name


def _arg_names(f, n: int) -> list[str]:
    try:
        params = list(inspect.signature(f.forward if isinstance(f, Op) else f).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(n):
        p = params[i] if i < len(params) else None
        if p is not None and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(f"argument {i} ({p.name!r})")
        else:
            names.append(f"argument {i}")
    return names


def _leaf_paths(spec) -> list[str]:
    """``['w']``, ``[1][0]``... for each leaf of a flattened pytree, in ``flatten`` order."""
    out: list[str] = []

    def walk(s, prefix):
        if s is None:
            out.append(prefix)
            return
        try:
            kind, meta, children = s
        except (TypeError, ValueError):  # an unknown spec format: number the leaves
            out.append(prefix)
            return
        for k, child in enumerate(children):
            key = meta[k] if kind == "dict" else k
            walk(child, f"{prefix}[{key!r}]")

    walk(spec, "")
    return out


def _fmt_index(flat: int, shape: tuple) -> str:
    if not shape:
        return ""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


class _Check:
    """One check of one function at one point (one derivative order)."""

    def __init__(self, f, args, order, modes, eps, rtol, atol, rng, full_jacobian, *, labels,
                 what, level):
        self.f, self.order, self.modes, self.rng = f, order, modes, rng
        self.full_jacobian, self.what, self.level = full_jacobian, what, level
        self.user = (eps, rtol, atol)
        names = labels or _arg_names(f, len(args))
        self.specs, self.leaves, self.tensor_leaf = [], [], []
        self.positions, self.labels = [], []
        for i, arg in enumerate(args):
            leaves, spec = flatten(arg)
            paths = _leaf_paths(spec)
            if len(paths) != len(leaves):
                paths = [f"[{j}]" for j in range(len(leaves))]
            new = []
            for j, x in enumerate(leaves):
                if _is_float(x):
                    self.positions.append((i, j))
                    self.labels.append(names[i] + paths[j] if labels is None else names[i])
                    self.tensor_leaf.append(isinstance(x, Tensor))
                    new.append(_as64(x, copy=True))
                else:
                    new.append(x)
            self.specs.append(spec)
            self.leaves.append(new)
        if not self.positions:
            raise ValueError(f"check_grads: {what} has no floating-point input to differentiate "
                             "(integer and boolean inputs are held fixed)")
        self.primals = [self.leaves[i][j] for i, j in self.positions]

    # -- evaluating f -------------------------------------------------------------------------

    def call(self, xs, wrap: bool):
        """f with the float leaves replaced by ``xs`` (wrapped as Tensors where the user gave
        Tensors, when ``wrap``)."""
        leaves = [list(ls) for ls in self.leaves]
        for (i, j), x, was_tensor in zip(self.positions, xs, self.tensor_leaf):
            leaves[i][j] = Tensor(x) if wrap and was_tensor else x
        return self.f(*[unflatten(s, ls) for s, ls in zip(self.specs, leaves)])

    def restricted(self, *xs):
        return self.call(xs, wrap=False)

    def outputs(self, xs) -> list[np.ndarray]:
        y = flatten(self.call(xs, wrap=True))[0]
        return [_as64(o) for o in y]

    # -- the check ----------------------------------------------------------------------------

    def run(self) -> None:
        from ..functional import vjp  # noqa: PLC0415 (functional imports the ops)

        y_leaves, self.out_spec = flatten(self.call(self.primals, wrap=True))
        self.out_shapes = [tuple(np.shape(_data(o))) for o in y_leaves]
        dtypes = [np.asarray(_data(o)).dtype for o in y_leaves]
        float_dtypes = [d for d in dtypes if d.kind in "fc"]
        # the least precise output sets the defaults (a function that casts to float32 inside)
        compute = max(float_dtypes, key=lambda d: np.finfo(d).eps, default=np.dtype(np.float64))
        eps, rtol, atol = default_tolerances(compute)
        scale = 10.0 ** (self.level - 1)
        self.eps = self.user[0] if self.user[0] is not None else eps
        self.rtol = (self.user[1] if self.user[1] is not None else rtol) * scale
        self.atol = (self.user[2] if self.user[2] is not None else atol) * scale
        self.float_out = [d.kind in "fc" for d in dtypes]
        self.complex_out = [d.kind == "c" for d in dtypes]

        rng = self.rng
        self.u = [_direction(rng, np.shape(p), np.iscomplexobj(p)) for p in self.primals]
        self.v = [_direction(rng, s, c) if fl else np.zeros(s)
                  for s, fl, c in zip(self.out_shapes, self.float_out, self.complex_out)]
        self.v_tree = unflatten(self.out_spec, self.v)
        self.numeric = [self.directional(k, self.u[k]) for k in range(len(self.primals))]

        vjp_fn = None
        if "rev" in self.modes:
            _, vjp_fn = vjp(self.restricted, *self.primals)
            self.check_rev(vjp_fn)
        if "fwd" in self.modes:
            self.check_fwd()
        if vjp_fn is not None and self.small():
            self.check_jacobian(vjp_fn)
        if self.order > 1:
            self.check_derivatives()

    def small(self) -> bool:
        if self.full_jacobian is not None:
            return self.full_jacobian
        n_in = sum(int(np.size(p)) for p in self.primals)
        n_out = sum(int(np.prod(s)) for s in self.out_shapes)
        return n_in <= JACOBIAN_MAX_SIZE and n_out <= JACOBIAN_MAX_SIZE

    def shifted(self, k: int, d, step: float) -> list:
        xs = list(self.primals)
        xs[k] = self.primals[k] + step * d
        return xs

    def directional(self, k: int, d) -> float:
        """Numeric ``<J_k d, v>``: central differences along ``d`` in leaf ``k``."""
        plus = self.outputs(self.shifted(k, d, self.eps))
        minus = self.outputs(self.shifted(k, d, -self.eps))
        return _inner([(a - b) / (2 * self.eps) for a, b in zip(plus, minus)], self.v)

    def close(self, analytic: float, numeric: float) -> bool:
        if not (np.isfinite(analytic) and np.isfinite(numeric)):
            return False
        return abs(analytic - numeric) <= self.atol + self.rtol * max(abs(analytic),
                                                                      abs(numeric))

    def where(self, mode: str) -> str:
        return (f"check_grads: {_MODE_NAMES[mode]} is wrong at order {self.level} "
                f"(checking {self.what})")

    def fail(self, mode: str, k: int, analytic: float, numeric: float,
             formula: str | tuple[str, str], extra: str = "") -> None:
        p = self.primals[k]
        raise AssertionError(
            f"{self.where(mode)}, {self.labels[k]} of shape {tuple(np.shape(p))}:\n"
            f"  analytic {formula[0]} = {analytic!r}\n"
            f"  numeric  {formula[1]} = {numeric!r} (central differences, eps={self.eps:g})\n"
            f"  |difference| = {abs(analytic - numeric):.3g} > atol + rtol * |value| "
            f"(rtol={self.rtol:g}, atol={self.atol:g}){extra}"
        )

    def check_rev(self, vjp_fn) -> None:
        cts = [np.asarray(_data(c)) for c in flatten(vjp_fn(self.v_tree))[0]]
        for k, (c, p) in enumerate(zip(cts, self.primals)):
            if c.shape != np.shape(p):
                raise AssertionError(
                    f"{self.where('rev')}, {self.labels[k]}: the gradient has shape "
                    f"{c.shape}, the argument {tuple(np.shape(p))}")
            if np.iscomplexobj(c) != np.iscomplexobj(p):
                raise AssertionError(
                    f"{self.where('rev')}, {self.labels[k]}: the gradient has dtype {c.dtype} "
                    f"for an argument of dtype {np.asarray(p).dtype} (a complex argument's "
                    "gradient is complex, a real argument's real)")
            analytic = _inner([c], [self.u[k]])
            if not self.close(analytic, self.numeric[k]):
                self.fail("rev", k, analytic, self.numeric[k], ("<u, J^T v>", "<J u, v>  "),
                          self.jacobian_note())

    def check_fwd(self) -> None:
        numeric = float(sum(self.numeric))
        analytic = self.jvp_inner(self.u)
        if self.close(analytic, numeric):
            return
        # localise: one argument at a time
        for k in range(len(self.primals)):
            only = [self.u[k] if m == k else np.zeros_like(self.u[m])
                    for m in range(len(self.primals))]
            a_k = self.jvp_inner(only)
            if not self.close(a_k, self.numeric[k]) or len(self.primals) == 1:
                self.fail("fwd", k, a_k, self.numeric[k], ("<J u, v>", "<J u, v>"))
        raise AssertionError(f"{self.where('fwd')}: <J u, v> = {analytic!r} but finite "
                             f"differences give {numeric!r} (each argument alone agrees)")

    def jvp_inner(self, tangents) -> float:
        from ..functional import jvp  # noqa: PLC0415

        _, t = jvp(self.restricted, tuple(self.primals), tuple(tangents))
        t_leaves = [_as64(x) for x in flatten(t)[0]]
        return _inner(t_leaves, self.v)

    # -- the full Jacobian --------------------------------------------------------------------

    def numeric_jacobian(self) -> np.ndarray:
        """Columns: one per real direction of the inputs (1 and i for a complex element);
        rows: the real view of the outputs (real and imaginary parts of a complex element)."""
        cols = []
        for k, p in enumerate(self.primals):
            units = (1.0, 1.0j) if np.iscomplexobj(p) else (1.0,)
            for e in range(int(np.size(p))):
                for unit in units:
                    d = np.zeros(np.shape(p), dtype=type(unit))
                    d.flat[e] = unit
                    plus = self.outputs(self.shifted(k, d, self.eps))
                    minus = self.outputs(self.shifted(k, d, -self.eps))
                    cols.append(np.concatenate(
                        [_real_view((a - b) / (2 * self.eps)) for a, b in zip(plus, minus)]
                        or [np.zeros(0)]))
        n_out = sum(self.out_sizes())
        return np.stack(cols, axis=1) if cols else np.zeros((n_out, 0))

    def analytic_jacobian(self, vjp_fn) -> np.ndarray:
        """The same matrix from VJPs: the cotangent 1 (or -i) picks the real (or imaginary)
        part of an output element, and a cotangent c meets the input directions 1 and i as
        Re(c) and -Im(c)."""
        rows = []
        for o, shape in enumerate(self.out_shapes):
            seeds_of = (1.0, -1.0j) if self.complex_out[o] else (1.0,)
            for e in range(int(np.prod(shape))):
                for unit in seeds_of:
                    seeds = [np.zeros(s, dtype=complex if c else float)
                             for s, c in zip(self.out_shapes, self.complex_out)]
                    seeds[o].flat[e] = unit
                    cts = flatten(vjp_fn(unflatten(self.out_spec, seeds)))[0]
                    rows.append(np.concatenate([_real_view(np.conj(_as64(c)) if
                                                           np.iscomplexobj(p) else _as64(c))
                                                for c, p in zip(cts, self.primals)]))
        n_in = sum(self.in_sizes())
        return np.stack(rows) if rows else np.zeros((0, n_in))

    def out_sizes(self) -> list[int]:
        """How many real numbers each output holds."""
        return [int(np.prod(s)) * (2 if c else 1)
                for s, c in zip(self.out_shapes, self.complex_out)]

    def in_sizes(self) -> list[int]:
        """How many real numbers each input holds."""
        return [int(np.size(p)) * (2 if np.iscomplexobj(p) else 1) for p in self.primals]

    def check_jacobian(self, vjp_fn) -> None:
        worst = self.worst_element(vjp_fn)
        if worst is not None:
            raise AssertionError(f"{self.where('rev')}: the Jacobian differs from finite "
                                 f"differences{worst}")

    def jacobian_note(self) -> str:
        """On a directional failure, the worst Jacobian element too (small inputs only)."""
        if not self.small():
            return ""
        from ..functional import vjp  # noqa: PLC0415

        try:
            return self.worst_element(vjp(self.restricted, *self.primals)[1]) or ""
        except Exception:  # the directional failure is the message; this is a bonus
            return ""

    def worst_element(self, vjp_fn) -> str | None:
        ja = self.analytic_jacobian(vjp_fn)
        jn = self.numeric_jacobian()
        if ja.size == 0:
            return None
        bound = self.atol + self.rtol * np.maximum(np.abs(ja), np.abs(jn))
        excess = np.abs(ja - jn) / bound
        excess = np.where(np.isfinite(ja) & np.isfinite(jn), excess, np.inf)
        n_bad = int((excess > 1).sum())
        if not n_bad:
            return None
        r, c = np.unravel_index(int(np.argmax(excess)), ja.shape)
        out_name, out_index = self.locate(r, self.out_sizes(), self.out_shapes,
                                          self.complex_out)
        k, in_index = self.locate(c, self.in_sizes(), [tuple(np.shape(p)) for p in self.primals],
                                  [np.iscomplexobj(p) for p in self.primals])
        outs = "output" if len(self.out_shapes) == 1 else f"output {out_name}"
        return (f"\n  worst element: d {outs}{out_index} / d {self.labels[k]}{in_index}: "
                f"analytic {float(ja[r, c])!r}, numeric {float(jn[r, c])!r} "
                f"({n_bad} of {ja.size} Jacobian elements differ)")

    @staticmethod
    def locate(index: int | np.integer, sizes: list, shapes: list,
               complex_: list) -> tuple[int, str]:
        flat = int(index)
        for k, n in enumerate(sizes):
            if flat < n:
                if complex_[k]:  # the real view: (real part, imaginary part) per element
                    part = ".real" if flat % 2 == 0 else ".imag"
                    return k, _fmt_index(flat // 2, shapes[k]) + part
                return k, _fmt_index(flat, shapes[k])
            flat -= n
        raise IndexError(flat)

    # -- higher orders ------------------------------------------------------------------------

    def check_derivatives(self) -> None:
        from ..functional import jvp, vjp  # noqa: PLC0415

        v_tree, u = self.v_tree, tuple(self.u)

        def vjp_of_f(*xs):
            return vjp(self.restricted, *xs)[1](v_tree)

        def jvp_of_f(*xs):
            return jvp(self.restricted, xs, u)[1]

        derivatives = [(vjp_of_f, f"the VJP of {self.what}")]
        if "fwd" in self.modes:
            derivatives.append((jvp_of_f, f"the JVP of {self.what}"))
        for g, what in derivatives:
            _Check(g, self.primals, self.order - 1, self.modes, *self.user, self.rng,  # type: ignore[misc]
                   self.full_jacobian, labels=self.labels, what=what, level=self.level + 1).run()


def _inner(a: list, b: list) -> float:
    """``sum(Re(x * y))`` over the pairs: the dot product of real arrays, and for complex ones
    the pairing of a cotangent with a change."""
    total = 0.0
    for x, y in zip(a, b):
        x, y = _as64(x), _as64(y)
        if np.iscomplexobj(x) or np.iscomplexobj(y):
            total += float(np.real(np.vdot(np.conj(x), y)))
        else:
            total += float(np.vdot(x, y))
    return total


def _as64(x, copy: bool = False) -> np.ndarray:
    """``x`` in float64, or complex128 if it is complex."""
    a = np.asarray(_data(x))
    dtype = np.complex128 if a.dtype.kind == "c" else np.float64
    return np.array(a, dtype=dtype) if copy else np.asarray(a, dtype=dtype)


def _direction(rng: np.random.Generator, shape: tuple, complex_: bool) -> np.ndarray:
    """A random standard normal direction; complex (real and imaginary parts) if asked."""
    d = rng.standard_normal(shape)
    return d + 1j * rng.standard_normal(shape) if complex_ else d


def _real_view(a: np.ndarray) -> np.ndarray:
    """A flat real array: ``a`` itself, or each complex element as (real, imaginary)."""
    if np.iscomplexobj(a):
        return np.stack([a.real, a.imag], axis=-1).ravel()
    return np.asarray(a, dtype=np.float64).ravel()
