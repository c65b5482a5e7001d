"""Random fuzz programs, drawn from the registry ``fg.ops()`` and each op's domain.

The generator evaluates every statement eagerly as it writes it (on the first call's input
values), so it knows each value's shape and range: an op's input is used directly when its
values already lie inside the op's domain, else it is first squashed into it
(``lo + (hi - lo) * fg.sigmoid(v)``); a statement whose eager value is not finite is dropped.
Ops whose domain is a matrix family (``WellConditioned``...) take fresh inputs drawn from it.
Besides registry ops the programs use Python syntax the way users write it: slices (negative
steps, ``[k:]``, ``[::-1]``), integer indexing to 0-d values (``y * y[0]``), fancy indexing,
``.T``/``.reshape``, ``@``, Python and NumPy scalars, comparisons as ``where`` masks,
concatenation and stacking (also of 0-d values: per-step scalar losses).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

import fungrad as fg
from fungrad.domains import Mask, Real

from .program import LAYOUTS, Input, Program, literal

__all__ = ["generate", "registry_ops"]

# ops never drawn: complex results, control flow with Python bodies, dtype changes
_SKIP = {"astype", "eig", "angle", "imag", "conj", "real_if_close", "scan", "while_loop",
         "fft", "fft2", "fftn", "ifft", "ifft2", "ifftn", "rfft", "rfft2", "rfftn", "irfft",
         "irfft2", "irfftn", "hfft", "ihfft", "fftshift", "ifftshift"}
# ops a value of any size may go through unsquashed (linear or piecewise linear, bounded)
_TOLERANT = {"add", "subtract", "multiply", "negative", "abs", "maximum", "minimum", "fmax",
             "fmin", "where", "sum", "mean", "max", "min", "copy", "identity", "relu",
             "transpose", "reshape", "getitem", "concatenate", "stack", "split", "unstack",
             "roll", "pad", "diagonal", "diag_embed", "expand", "expand_dims", "squeeze",
             "broadcast_to", "sum_to", "cumsum", "index_select", "matmul", "mm", "einsum",
             "affine", "embedding_bag", "sign", "nan_to_num", "real", "clip", "tanh",
             "sigmoid", "softmax", "log_softmax", "logsumexp"}
_MATRIX = ("WellConditioned", "PositiveDefinite", "DistinctEigenvalues",
           "DistinctSingularValues", "Diagonalizable")
MAX_SIZE = 4096


def registry_ops() -> list:
    """The public registered ops the fuzzer draws from (sorted by name)."""
    public = set(fg.primitives.__all__)
    return [op for name, op in sorted(fg.ops().items())
            if name in public and name not in _SKIP and not _has_callable(op)]


def _has_callable(op) -> bool:
    """Whether an op's cases carry code (a function, or a loop's traced ``Body``): such
    parameters cannot be written as a program's source (tests/test_jit_loops.py covers them)."""
    from fungrad.control._body import Body
    return any(callable(v) or isinstance(v, Body) for _, p in op.domain.cases for v in p.values())


def _fn(op) -> str:
    return f"fg.{op.name}" if hasattr(fg, op.name) else f"fg.ops.{op.name}"


class _Gen:
    def __init__(self, seed: int, index: int):
        self.seed, self.index = seed, index
        self.rng = np.random.default_rng([seed, index])
        self.dtype = np.float32 if self.rng.random() < 0.25 else np.float64
        self.big = self.rng.random() < 0.15  # sizes where some bugs only show
        self.inputs: list[Input] = []
        self.body: list = []
        self.consts: list = []
        self.env: dict[str, np.ndarray] = {}
        self.ops = registry_ops()

    # -- helpers ----------------------------------------------------------------------------
    def choice(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def dim(self) -> int:
        if self.big and self.rng.random() < 0.4:
            return int(self.choice([16, 17, 32, 33, 64]))
        return int(self.choice([1, 2, 3, 3, 4, 4, 5, 6, 7, 8]))

    def shape(self, ndim: int | None = None) -> tuple:
        if ndim is None:
            ndim = int(self.choice([0, 1, 1, 2, 2, 2, 3]))
        return tuple(self.dim() for _ in range(ndim))

    def new_input(self, shape: tuple, spec: str = "Real(-2.0, 2.0)") -> str:
        name = f"x{len(self.inputs)}"
        layout = "c"
        if shape and self.rng.random() < 0.3:
            layout = self.choice([l for l in LAYOUTS if l != "T" or len(shape) >= 2])
        seed = int(self.rng.integers(1, 2**31 - 16))
        inp = Input(name, tuple(shape), spec, seed, None, layout)
        values = eval(spec, _SPEC_NS).from_unit(  # noqa: S307 (our own literal)
            np.random.default_rng(seed).uniform(size=shape))
        self.inputs.append(inp)
        self.env[name] = np.asarray(values, dtype=self.dtype)
        return name

    def const(self, value: np.ndarray) -> str:
        name = f"C{len(self.consts)}"
        self.consts.append([name, literal(value)])
        self.env[name] = value
        return name

    def values(self, name: str) -> np.ndarray:
        """The (first call's) value of a name or of an expression over names."""
        if name in self.env:
            return self.env[name]
        return np.asarray(getattr(v := self.evaluate(name), "data", v))

    def floats(self, min_ndim: int = 0, pred=None) -> list[str]:
        out = [n for n, v in self.env.items() if not n.startswith("C")
               and v.ndim >= min_ndim and (pred is None or pred(v))]
        return out

    def pick(self, min_ndim: int = 0, pred=None) -> str | None:
        names = self.floats(min_ndim, pred)
        if not names:
            return None
        # prefer recent values: programs are chains more than bags
        w = np.arange(1, len(names) + 1, dtype=float) ** 2
        return names[int(self.rng.choice(len(names), p=w / w.sum()))]

    def evaluate(self, expr: str):
        ns = {"fg": fg, "np": np, **self.env}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                return eval(expr, ns)  # noqa: S307 (generated by us)

    def add(self, expr: str) -> str | None:
        """Evaluate ``expr``; keep it as a new statement if its value is a finite float array
        of bounded size."""
        try:
            value = self.evaluate(expr)
        except Exception:  # noqa: BLE001 (a candidate statement eager refuses: try another)
            return None
        value = np.asarray(getattr(value, "data", value))
        if value.dtype.kind != "f" or value.size == 0 or value.size > MAX_SIZE:
            return None
        if not np.all(np.isfinite(value)) or np.abs(value).max(initial=0) > 1e6:
            return None
        name = f"v{len(self.body)}"
        self.body.append([name, expr, tuple(value.shape)])
        self.env[name] = value
        return name

    def fit(self, name: str, spec) -> str:
        """``name`` as an argument for an input with spec ``spec`` (squashed if needed)."""
        if not isinstance(spec, Real):
            return name
        v = self.values(name)
        pieces = [(a, b) for a, b in spec.intervals() if b > a]
        for a, b in pieces:
            m = 0.05 * (b - a)
            if v.size and v.min() >= a + m and v.max() <= b - m:
                return name
        a, b = max(pieces, key=lambda p: p[1] - p[0])
        lo, hi = a + 0.1 * (b - a), b - 0.1 * (b - a)
        return f"({lo!r} + {hi - lo!r} * fg.sigmoid({name}))"

    def adapt(self, shape: tuple) -> str:
        """An expression of ``shape`` made from an existing value (or a fresh input)."""
        n = int(np.prod(shape)) if shape else 1
        src = self.pick()
        if src is None or self.rng.random() < 0.35:
            return self.new_input(shape)
        v = self.values(src)
        if v.shape == shape:
            return src
        flat = f"{src}.reshape(-1)" if v.ndim != 1 else src
        if shape == ():
            return f"{flat}[{int(self.rng.integers(v.size))}]"
        if n <= v.size and self.rng.random() < 0.5:
            return f"{flat}[:{n}].reshape({shape!r})"
        return f"{flat}[np.arange({n}) % {v.size}].reshape({shape!r})"

    def scalar(self, name: str) -> str:
        """A 0-d value taken from ``name`` by integer indexing (``y[0]``), or a Python/NumPy
        scalar."""
        v = self.values(name)
        r = self.rng.random()
        if r < 0.5 and v.ndim:
            idx = ", ".join(str(int(self.rng.integers(-s, s))) for s in v.shape)
            return f"{name}[{idx}]"
        if r < 0.75:
            return repr(float(np.round(self.rng.uniform(-2, 2), 2)))
        if r < 0.9:
            return f"np.float64({float(np.round(self.rng.uniform(0.5, 2), 2))!r})"
        return f"np.linspace(0.5, 1.5, 5)[{int(self.rng.integers(5))}]"

    # -- statements -------------------------------------------------------------------------
    def statement(self) -> str | None:
        kinds = [
            (self.registry_elementwise, 6), (self.registry_reduction, 2),
            (self.registry_general, 3), (self.binary_syntax, 4), (self.slicing, 3),
            (self.indexing, 2), (self.fancy, 1), (self.reshape, 1.5), (self.join, 2),
            (self.matmul, 3), (self.einsum, 1), (self.index_select, 1),
            (self.cross_entropy, 0.7), (self.where, 1), (self.scalar_losses, 0.7),
            (self.loop, 1.5),
        ]
        w = np.array([k[1] for k in kinds], dtype=float)
        make = kinds[int(self.rng.choice(len(kinds), p=w / w.sum()))][0]
        try:
            expr = make()
        except Exception:  # noqa: BLE001 (a draw that does not fit the values: draw again)
            return None
        return None if expr is None else self.add(expr)

    def registry_elementwise(self):
        ops = [op for op in self.ops if op.domain.kind == "elementwise"
               and all(isinstance(s, (Real, Mask)) for s in op.domain.args)]
        op = self.choice(ops)
        n = op.n_inputs or 1
        a = self.pick()
        if a is None:
            return None
        args = []
        for i in range(n):
            spec = op.domain.spec(i)
            if isinstance(spec, Mask):
                args.append(self.mask_for(a))
                continue
            if i == 0 or self.rng.random() < 0.3:
                src = a
            else:
                b = self.pick(pred=lambda v, s=self.values(a).shape: _broadcasts(v.shape, s))
                src = b if b is not None and self.rng.random() < 0.7 else None
                if src is None:
                    if self.rng.random() < 0.5 and spec == Real():
                        args.append(self.scalar(a))
                        continue
                    src = a
            if op.name in _TOLERANT and np.abs(self.values(src)).max() < 1e3:
                args.append(src)
            else:
                args.append(self.fit(src, spec))
        params = {}
        for k, choices in op.domain.params.items():
            params[k] = self.choice(list(choices))
        for _, p in op.domain.cases[:1]:
            for k, v in p.items():
                params.setdefault(k, v)
        kw = "".join(f", {k}={literal(v)}" for k, v in params.items())
        return f"{_fn(op)}({', '.join(args)}{kw})"

    def mask_for(self, name: str) -> str:
        if self.rng.random() < 0.6:
            return f"({name} > {float(np.round(self.rng.uniform(-1, 1), 2))!r})"
        return self.const(self.rng.random(self.values(name).shape) < 0.5)

    def registry_reduction(self):
        ops = [op for op in self.ops if op.domain.kind == "reduction"]
        op = self.choice(ops)
        a = self.pick()
        if a is None:
            return None
        v = self.values(a)
        if op.name in ("std", "var") and (v.size < 2 or np.ptp(v) < 0.1):
            return None  # the spread of equal values: sqrt at 0, derivatives are rounding noise
        params = {}
        if "axis" in op.param_names:
            choices = [None] + list(range(-v.ndim, v.ndim)) if v.ndim else [None]
            if op.name in ("softmax", "log_softmax") and v.ndim == 0:
                return None
            params["axis"] = self.choice(choices)
            if params["axis"] is None and op.name in ("softmax", "log_softmax"):
                params["axis"] = -1
        if "keepdims" in op.param_names and self.rng.random() < 0.3:
            params["keepdims"] = True
        for k, choices in op.domain.params.items():
            params[k] = self.choice(list(choices))
        arg = a if op.name in _TOLERANT and np.abs(v).max() < 1e3 else self.fit(a, op.domain.spec(0))
        if op.name in ("max", "min") and self.rng.random() < 0.5:
            arg = a  # ties are possible in ranges: max of a generic value is fine
        kw = "".join(f", {k}={literal(val)}" for k, val in params.items())
        if self.rng.random() < 0.3 and op.name in ("sum", "mean", "max", "min"):
            axis = params.get("axis")
            return f"{arg}.{op.name}({'' if axis is None else axis})"
        return f"{_fn(op)}({arg}{kw})"

    def registry_general(self):
        ops = [op for op in self.ops if op.domain.kind == "general" and op.n_outputs != 0]
        op = self.choice(ops)
        shapes, params = op.domain.cases[int(self.rng.integers(len(op.domain.cases)))]
        args: list[str] = []
        for i, shape in enumerate(shapes):
            spec = op.domain.spec(i)
            if type(spec).__name__ in _MATRIX:
                args.append(self.new_input(tuple(shape), repr(spec)))
            elif isinstance(spec, Real):
                args.append(self.fit(self.adapt(tuple(shape)), spec))
            else:
                concrete = [self.evaluate(x) if isinstance(x, str) else x for x in args]
                concrete = [np.asarray(getattr(c, "data", c)) for c in concrete]
                value = spec.draw(self.rng, tuple(shape), concrete, self.dtype, params)
                args.append(self.const(value))
        kw = "".join(f", {k}={literal(v)}" for k, v in params.items())
        if op.n_inputs is None:
            call = f"{_fn(op)}([{', '.join(args)}]{kw})"
        else:
            call = f"{_fn(op)}({', '.join(args)}{kw})"
        if op.n_outputs != 1:
            try:
                n = len(self.evaluate(call))
            except Exception:  # noqa: BLE001
                return None
            call = f"{call}[{int(self.rng.integers(n))}]"
        return call

    def binary_syntax(self):
        a = self.pick()
        if a is None:
            return None
        opch = self.choice(["+", "-", "*", "*", "/"])
        r = self.rng.random()
        if r < 0.35:
            b = self.scalar(a)
        else:
            b = self.pick(pred=lambda v, s=self.values(a).shape: _broadcasts(v.shape, s)) or a
        if opch == "/":
            b = f"(fg.sigmoid({b}) + 0.5)" if not _is_number(b) else "1.7"
        if self.rng.random() < 0.5:
            return f"{a} {opch} {b}"
        return f"{b} {opch} {a}" if opch != "/" else f"{a} / {b}"

    def slicing(self):
        a = self.pick(min_ndim=1)
        if a is None:
            return None
        v = self.values(a)
        ax = int(self.rng.integers(v.ndim))
        n = v.shape[ax]
        r = self.rng.random()
        if r < 0.25:
            s = "::-1"
        elif r < 0.5:
            s = f"{int(self.rng.integers(0, n))}:"
        elif r < 0.7:
            s = f"{int(self.rng.integers(-n, 0))}:"
        else:
            start = int(self.rng.integers(0, n))
            step = int(self.choice([1, 2, -1, -2, 3]))
            stop = int(self.rng.integers(0, n + 1))
            if step < 0:
                start, stop = max(start, stop), min(start, stop) - 1
                s = f"{start}:{'' if stop < 0 else stop}:{step}"
            else:
                start, stop = min(start, stop), max(start, stop) + 1
                s = f"{start}:{stop}:{step}"
        spelled = ", ".join([":"] * ax + [s])
        if self.rng.random() >= 0.7 and ax == v.ndim - 1:
            spelled = "..., " + s  # the last axis through an Ellipsis
        idx = spelled
        expr = f"{a}[{idx}]"
        if self.rng.random() < 0.4:  # use it against its source (reads through views)
            other = a if self.values(a).shape == v.shape and s == "::-1" else None
            if other:
                return f"{a} + {expr}"
        return expr

    def indexing(self):
        a = self.pick(min_ndim=1)
        if a is None:
            return None
        v = self.values(a)
        r = self.rng.random()
        k = int(self.rng.integers(-v.shape[0], v.shape[0]))
        if r < 0.4:
            return f"{a} * {a}[{k}]"  # y * y[0]: broadcasting against an indexed value
        if r < 0.7:
            idx = ", ".join(str(int(self.rng.integers(0, s))) for s in v.shape)
            b = self.pick() or a
            return f"{b} * {a}[{idx}]"
        return f"{a}[{k}]"

    def fancy(self):
        a = self.pick(min_ndim=1)
        if a is None:
            return None
        v = self.values(a)
        ax = int(self.rng.integers(v.ndim))
        idx = self.rng.integers(-v.shape[ax], v.shape[ax], size=int(self.rng.integers(1, 6)))
        lst = idx.tolist()
        pre = ":, " * ax
        if self.rng.random() < 0.5:
            return f"{a}[{pre}{lst!r}]"
        return f"{a}[{pre}{self.const(idx.astype(np.int64))}]"

    def reshape(self):
        a = self.pick()
        if a is None:
            return None
        v = self.values(a)
        r = self.rng.random()
        if r < 0.35 and v.ndim >= 2:
            return f"{a}.T" if self.rng.random() < 0.5 else \
                f"fg.transpose({a}, axes={tuple(int(i) for i in self.rng.permutation(v.ndim))!r})"
        factors = _factor_shape(v.size, self.rng)
        if self.rng.random() < 0.3 and len(factors) > 1:
            factors[int(self.rng.integers(len(factors)))] = -1
        if self.rng.random() < 0.5:
            return f"{a}.reshape({tuple(factors)!r})"
        return f"fg.reshape({a}, shape={tuple(factors)!r})"

    def join(self):
        a = self.pick(min_ndim=0)
        if a is None:
            return None
        v = self.values(a)
        fn = "stack" if v.ndim == 0 or self.rng.random() < 0.4 else "concatenate"
        if fn == "stack":
            same = self.floats(pred=lambda u: u.shape == v.shape)
            k = int(self.rng.integers(1, 4))
            parts = [self.choice(same) for _ in range(k)] + [a]
            if v.ndim and self.rng.random() < 0.3:
                parts.append(f"{a}[::-1]")
            axis = int(self.rng.integers(-v.ndim - 1, v.ndim + 1))
            expr = f"fg.stack([{', '.join(parts)}], axis={axis})"
            if self.rng.random() < 0.3:
                expr = f"{expr}[{int(self.rng.integers(1, len(parts)))}:]"
            return expr
        ax = int(self.rng.integers(v.ndim))
        ok = self.floats(pred=lambda u: u.ndim == v.ndim and all(
            u.shape[i] == v.shape[i] for i in range(v.ndim) if i != ax))
        parts = [a] + [self.choice(ok) for _ in range(int(self.rng.integers(1, 3)))]
        if self.rng.random() < 0.3:
            parts.append(f"{a}[{':, ' * ax}::-1]")
        expr = f"fg.concatenate([{', '.join(parts)}], axis={ax})"
        if self.rng.random() < 0.4:  # concatenate(...)[k:] + t
            k = int(self.rng.integers(1, v.shape[ax] + 1)) if ax == 0 else 0
            if ax == 0 and k:
                t = self.pick(pred=lambda u: _broadcasts(u.shape, v.shape[:0] + (v.shape[0],) + v.shape[1:])) or a
                if self.values(t).shape[:1] in ((), (1,), v.shape[:1]) and \
                        _broadcasts(self.values(t).shape, v.shape):
                    total = sum(self.values(p).shape[0] if p in self.env else v.shape[0]
                                for p in parts)
                    if total - k == v.shape[0]:
                        return f"{expr}[{k}:] + {t}"
                return f"{expr}[{k}:]"
        return expr

    def matmul(self):
        a = self.pick(min_ndim=1)
        if a is None:
            return None
        v = self.values(a)
        k = v.shape[-1]
        m = self.dim()
        cands = self.floats(min_ndim=2, pred=lambda u: u.ndim == 2 and u.shape[0] == k)
        if cands and self.rng.random() < 0.5:
            w = self.choice(cands)
        else:
            w = self.new_input((k, m), "Real(-1.0, 1.0)")
        expr = f"{a} @ {w}" if self.rng.random() < 0.8 else f"fg.matmul({a}, {w})"
        r = self.rng.random()
        if r < 0.3 and v.ndim >= 1:  # a sum of two matmuls, then transposed/sliced/reshaped
            b = self.pick(min_ndim=1, pred=lambda u: u.shape[:-1] == v.shape[:-1])
            if b is not None:
                w2 = self.new_input((self.values(b).shape[-1], self.evaluate(w).shape[-1]),
                                    "Real(-1.0, 1.0)")
                tail = self.choice([".T", "[1:]", "[::-1]", ".reshape(-1)", ""])
                expr = f"({expr} + {b} @ {w2}){tail}"
        return expr

    def einsum(self):
        a = self.pick(min_ndim=1, pred=lambda u: u.ndim <= 3)
        if a is None:
            return None
        v = self.values(a)
        letters = "ijk"[: v.ndim]
        r = self.rng.random()
        if r < 0.4:
            m = self.dim()
            w = self.new_input((v.shape[-1], m), "Real(-1.0, 1.0)")
            return f"fg.einsum('{letters},{letters[-1]}z->{letters[:-1]}z', {a}, {w})"
        if r < 0.7:
            b = self.pick(pred=lambda u: u.shape == v.shape) or a
            return f"fg.einsum('{letters},{letters}->{letters[0]}', {a}, {b})"
        out = "".join(self.rng.permutation(list(letters)))
        return f"fg.einsum('{letters}->{out}', {a})"

    def index_select(self):
        a = self.pick(min_ndim=1)
        if a is None:
            return None
        v = self.values(a)
        shape = (int(self.rng.integers(1, 6)),) if self.rng.random() < 0.7 else \
            (int(self.rng.integers(1, 4)), int(self.rng.integers(1, 4)))
        idx = self.const(self.rng.integers(0, v.shape[0], size=shape).astype(np.int64))
        expr = f"fg.index_select({a}, {idx})"
        if len(shape) == 2 and self.rng.random() < 0.7:  # an embedding bag
            expr = f"fg.sum({expr}, axis=1)"
        return expr

    def cross_entropy(self):
        a = self.pick(min_ndim=1, pred=lambda u: u.shape[-1] >= 2)
        if a is None:
            return None
        v = self.values(a)
        t = self.const(self.rng.integers(0, v.shape[-1], size=v.shape[:-1]).astype(np.int64))
        return f"fg.cross_entropy({self.fit(a, Real(-3, 3))}, {t})"

    def where(self):
        a = self.pick()
        if a is None:
            return None
        s = self.values(a).shape
        b = self.pick(pred=lambda u: _broadcasts(u.shape, s)) or a
        if self.rng.random() < 0.4:
            return f"fg.maximum({a}, {b})" if self.rng.random() < 0.5 else f"fg.minimum({a}, {b})"
        return f"fg.where({self.mask_for(a)}, {a}, {b})"

    def scalar_losses(self):
        """Per-step scalar losses stacked (the LSTM idiom), or 0-d values joined."""
        names = [self.pick() for _ in range(int(self.rng.integers(2, 5)))]
        names = [n for n in names if n is not None]
        if not names:
            return None
        red = [f"fg.{self.choice(['sum', 'mean'])}({n})" if self.rng.random() < 0.7 else
               f"{n}.reshape(-1)[0]" for n in names]
        if self.rng.random() < 0.6:
            return f"fg.stack([{', '.join(red)}])"
        return f"fg.concatenate([fg.stack([{r}]) for r in [{', '.join(red)}]], axis=0)"

    # -- structured loops -------------------------------------------------------------------
    def loop(self):
        """A structured loop carrying an existing value: ``fg.scan`` over a new input's rows
        (forward or reverse, a pytree carry, stacked ys, a checkpointed or transformed body),
        ``fg.fori_loop`` or ``fg.while_loop``; the body one expression of the carry, the
        step's slice and values it closes over (Tensors the program differentiates)."""
        a = self.pick(pred=lambda u: 0 < u.size <= 256)
        if a is None:
            return None
        v = self.values(a)
        c0 = self.fit(a, Real(-1.5, 1.5))
        steps = int(self.choice([1, 2, 3, 4, 6]))
        kind = self.choice(["scan", "scan", "scan", "scan_tree", "fori", "while"])
        if kind in ("scan", "scan_tree"):
            xs = self.new_input((steps,) + self.choice([v.shape, v.shape[1:], ()]))
            reverse = ", reverse=True" if self.rng.random() < 0.3 else ""
            if kind == "scan_tree":  # ((c, acc), x) -> ((f(c), acc + c), y)
                step = self._loop_step("c[0]", "x", v.shape)
                body = f"lambda c, x: (({step}, c[1] + c[0]), c[0] * x)"
                pick = self.choice(["[0][0]", "[0][1]", "[1]"])
                return f"fg.scan({body}, ({c0}, {c0} * 0.5), {xs}{reverse}){pick}"
            step = self._loop_step("c", "x", v.shape)
            ys = self.choice(["None", "c", "c * x", "fg.sum(c)"])
            pick = "[0]" if ys == "None" else self.choice(["[0]", "[1]"])
            return f"fg.scan(lambda c, x: ({step}, {ys}), {c0}, {xs}{reverse}){pick}"
        if kind == "fori":
            return f"fg.fori_loop(0, {steps}, lambda i, c: {self._loop_step('c', None, v.shape)}, {c0})"
        step = self._loop_step("s[1]", None, v.shape)
        return f"fg.while_loop(lambda s: s[0] < {steps}, lambda s: (s[0] + 1, {step}), (0, {c0}))[1]"

    def _loop_step(self, c: str, x: str | None, shape: tuple) -> str:
        """One bounded step of carry ``c`` (of ``shape``): ``squash(c * k + x)`` and
        variations, ``k`` a value the body closes over; sometimes through ``fg.checkpoint``,
        plus a ``fg.grad`` of the carry, or a matmul."""
        k = self.pick(pred=lambda u: _broadcasts(u.shape, shape) and np.abs(u).max() < 1e3)
        k = f"fg.tanh({k})" if k is not None else repr(float(np.round(self.rng.uniform(.5, 1.5), 2)))
        forms = [f"{{c}} * {k}", f"{{c}} * {k} + {x}" if x else f"{{c}} + {k}",
                 f"{{c}} * {x} + {k}" if x else f"{{c}} * {{c}} * {k}",
                 f"{{c}} + {k} * {{c}}[..., ::-1]" if shape else f"{{c}} + {k}"]
        form = self.choice(forms)
        squash = self.choice(["fg.tanh", "fg.sin", "fg.sigmoid", "fg.cos", "fg.arctan"])

        def step(name: str) -> str:
            return f"{squash}({form.format(c=name)})"

        r = self.rng.random()
        if r < 0.15:
            return f"fg.checkpoint(lambda u: {step('u')})({c})"
        if r < 0.25:
            return f"{step(c)} + 0.1 * fg.grad(lambda u: fg.sum(fg.sin(u) * {k}))({c})"
        if r < 0.3 and len(shape) == 1 and shape[0] <= 16:
            w = self.new_input((shape[0], shape[0]), "Real(-0.5, 0.5)")
            return f"fg.tanh({c} @ {w} + {step(c)})"
        return step(c)

    # -- the whole program ------------------------------------------------------------------
    def loss(self) -> str:
        live = [n for n, _, _ in self.body] or self.floats()
        k = min(len(live), int(self.rng.integers(1, 4)))
        picks = list(dict.fromkeys(live[-1:] + [self.choice(live) for _ in range(k - 1)]))
        terms = []
        for n in picks:
            big = np.abs(self.values(n)).max() > 30
            r = self.rng.random()
            if r < 0.4 or big:
                terms.append(f"fg.mean(fg.tanh({n}))" if big else f"fg.sum({n})")
            elif r < 0.7:
                terms.append(f"fg.mean({n} * {n})")
            else:
                terms.append(f"({n} ** 2).sum() * 0.5")
        return " + ".join(terms)

    def program(self) -> Program:
        n_inputs = int(self.rng.integers(1, 4))
        for _ in range(n_inputs):
            self.new_input(self.shape())
        target = int(self.rng.integers(3, 31))
        tries = 0
        while len(self.body) < target and tries < 6 * target:
            tries += 1
            self.statement()
        loss = self.loss()
        outputs = []
        if self.rng.random() < 0.5 and self.body:
            outputs.append(self.choice(self.body)[0])
        if self.rng.random() < 0.2:
            x = self.choice(self.inputs).name
            outputs.append(self.choice([x, f"{x}.T", f"{x}[::-1]" if self.env[x].ndim else x]))
        prog = Program(np.dtype(self.dtype).name, self.inputs, self.body, loss, outputs,
                       self.consts, label=f"jit_fuzz seed={self.seed} program={self.index}")
        prog.mode = self.mode(prog)
        return prog

    def mode(self, prog: Program) -> dict:
        kind = self.choice(["call", "grad", "grad", "grad", "grad_aux", "jvp", "vjp", "hvp",
                            "sgd", "sgd", "object"])
        n = len(prog.inputs)
        mode: dict[str, Any] = {"kind": kind, "calls": 3, "donate": []}
        if kind in ("call", "grad", "grad_aux") and self.rng.random() < 0.2 and n >= 2:
            a, b = prog.inputs[0], prog.inputs[-1]
            if a.shape == b.shape:
                b.alias = a.name
            else:  # the same array twice: a new input of the same shape
                pass
        if kind in ("call", "grad", "grad_aux") and self.rng.random() < 0.25:
            aliased = {i.alias for i in prog.inputs if i.alias} | \
                {i.name for i in prog.inputs if i.alias}
            pos = [i for i, inp in enumerate(prog.inputs) if inp.name not in aliased]
            if pos:
                mode["donate"] = [int(self.choice(pos))]
        if kind == "jvp":
            mode["extra"] = [[f"t{i}", list(inp.shape), int(self.rng.integers(1, 2**30))]
                             for i, inp in enumerate(prog.inputs)]
        if kind == "vjp":
            out0 = prog.outputs[0] if prog.outputs else None
            if out0 is None:
                out0 = prog.body[-1][0] if prog.body else prog.inputs[0].name
                prog.outputs.insert(0, out0)
            shape = np.shape(self.evaluate(out0))
            mode["extra"] = [["t0", list(shape), int(self.rng.integers(1, 2**30))]]
        if kind == "hvp":
            mode["extra"] = [["t0", list(prog.inputs[0].shape), int(self.rng.integers(1, 2**30))]]
        if kind in ("sgd", "object"):
            for inp in prog.inputs:
                inp.alias = None
            mode["n_params"] = int(self.rng.integers(1, n + 1))
            mode["lr"] = self.choice(["0.05", "np.float64(0.05)",
                                      "np.linspace(0.01, 0.05, 3)[call]"])
            if kind == "sgd" and self.rng.random() < 0.7:
                mode["donate"] = [0]
            if kind == "object":
                mode["lr"] = "0.05"
                mode["optimizer"] = self.choice(["manual", "SGD", "Adam"])
        return mode


_SPEC_NS = {name: getattr(__import__("fungrad.domains", fromlist=["x"]), name)
            for name in ("Real", "WellConditioned", "PositiveDefinite", "DistinctEigenvalues",
                         "DistinctSingularValues")}


def _broadcasts(a: tuple, b: tuple) -> bool:
    """Whether ``a`` broadcasts against ``b`` without growing ``b``."""
    if len(a) > len(b):
        return False
    return all(x in (1, y) for x, y in zip(a[::-1], b[::-1]))


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _factor_shape(n: int, rng) -> list[int]:
    out = []
    for p in (2, 3, 5, 7):
        while n % p == 0 and rng.random() < 0.6:
            out.append(p)
            n //= p
    out.append(n)
    rng.shuffle(out)
    if rng.random() < 0.2:
        out.insert(int(rng.integers(len(out) + 1)), 1)
    return out


def generate(seed: int, index: int) -> Program:
    """Program ``index`` of the stream ``seed`` (deterministic)."""
    return _Gen(seed, index).program()
