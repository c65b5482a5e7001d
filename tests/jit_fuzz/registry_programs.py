"""One small program per (registered op, declared case, variant): fg.jit ≡ eager per op.

Each program calls one op of ``fg.ops()`` on inputs drawn from its domain (its declared cases,
plus 0-d and size-1 shapes for elementwise and reduction ops) and runs it under a *variant*:

- ``values``: the op's outputs, through Python and NumPy scalars, returned with the inputs
  themselves and views of them, non-contiguous inputs, three calls;
- ``index0``: the outputs broadcast against a 0-d value taken from them (``y * y[0]``);
- ``grad``: ``fg.value_and_grad`` of a scalar loss of the outputs (``has_aux``), donating
  argument 0;
- ``jvp``, ``vjp``, ``hvp`` (a Hessian-vector product, for twice-differentiable ops);
- ``float32``: the gradient in float32;
- ``edge``: the gradient on 0-d and size-1 shapes, and with the same array passed twice.

They are ordinary fuzz programs (:class:`~jit_fuzz.program.Program`), so the sandbox runs them
in child processes and a failure prints as a script.
"""

from __future__ import annotations

import numpy as np

import fungrad as fg
from fungrad.domains import Real

from .generator import _has_callable
from .program import Input, Program, literal

__all__ = ["op_programs", "all_programs", "VARIANTS"]

VARIANTS = ("values", "index0", "grad", "jvp", "vjp", "hvp", "float32", "edge")


def _cases(op, thorough: bool) -> list:
    cases = list(op.domain.cases)
    n = op.n_inputs or 1
    if op.domain.kind == "elementwise":
        cases.append((((),) * n, {}))
        cases.append((((1,),) * n, {}))
    elif op.domain.kind == "reduction":
        cases.append((((1, 3),), {"axis": 0}))
        cases.append((((),), {}))
    return cases if thorough else cases


def _loss(n_outputs_expr: str) -> str:
    return f"fg.sum(fg.sin({n_outputs_expr}))"


def _program(op, case, variant: str, seed: int, dtype: str = "float64") -> Program | None:
    shapes, params = case
    rng = np.random.default_rng(seed)
    inputs: list[Input] = []
    consts: list = []
    args: list[str] = []
    placeholders: list = []
    for i, shape in enumerate(shapes):
        spec = op.domain.spec(i)
        if isinstance(spec, Real):
            name = f"x{len(inputs)}"
            layout = "c"
            if variant == "values" and len(shape) >= 2:
                layout = "T"
            elif variant == "values" and len(shape) == 1:
                layout = "n"
            inputs.append(Input(name, tuple(shape), repr(spec), int(rng.integers(1, 2**30)),
                                None, layout))
            args.append(name)
            placeholders.append(np.zeros(shape))
        else:
            value = spec.draw(rng, tuple(shape), placeholders, np.float64, params)
            name = f"C{len(consts)}"
            consts.append([name, literal(value)])
            args.append(name)
            placeholders.append(value)
    if not inputs:
        return None
    kw = "".join(f", {k}={literal(v)}" for k, v in params.items())
    fn = f"fg.{op.name}"
    if not hasattr(fg, op.name):  # a registered op with no public function: the op itself
        fn = f"C{len(consts)}"
        consts.append([fn, f"fg.registry.lookup({op.name!r})"])
    call = f"{fn}([{', '.join(args)}]{kw})" if op.n_inputs is None else \
        f"{fn}({', '.join(args)}{kw})"
    body = []
    # the outputs as one real vector: multi-output ops joined, complex ones as |z|^2
    try:
        with np.errstate(all="ignore"):
            value = eval(call.replace("x", "_x") if False else call,  # noqa: S307
                         {"fg": fg, "np": np, **{n: _value(inp) for n, inp in
                                                 zip([i.name for i in inputs], inputs)},
                          **{c: eval(s, {"np": np, "fg": fg}) for c, s in consts}})  # noqa: S307
    except Exception:  # noqa: BLE001 (a case eager refuses is not a jit question)
        return None
    outs = value if isinstance(value, (tuple, list)) else [value]
    parts = []
    for k, o in enumerate(outs):
        o = np.asarray(getattr(o, "data", o))
        if o.dtype.kind not in "fc":
            continue
        ref = "v0" if not isinstance(value, (tuple, list)) else f"v0[{k}]"
        if o.dtype.kind == "c":
            ref = f"fg.real({ref} * fg.conj({ref}))"
        parts.append(ref if o.ndim == 1 else f"fg.reshape({ref}, shape=(-1,))")
    if not parts:
        return None
    body.append(["v0", call, ()])
    out = parts[0] if len(parts) == 1 else f"fg.concatenate([{', '.join(parts)}], axis=0)"
    body.append(["v1", out, ()])
    mode: dict = {"kind": "grad_aux", "calls": 3, "donate": []}
    outputs = ["v1"]
    last = "v1"
    if variant == "index0":
        body.append(["v2", "v1 * v1[0]", ()])  # broadcasting against a 0-d value taken by indexing
        last = "v2"
        outputs = ["v2"]
        mode = {"kind": "call", "calls": 3, "donate": []}
    elif variant == "values":
        body.append(["v3", "2.5 * v1 + np.float64(0.5) - v1 / 4", ()])
        last = "v3"
        x0 = inputs[0]
        outputs = ["v3", "x0", "x0.T" if len(x0.shape) >= 2 else "x0[::-1]" if x0.shape else "x0"]
        mode = {"kind": "call", "calls": 3, "donate": []}
    elif variant == "grad":
        mode["donate"] = [0]
    elif variant == "jvp":
        mode = {"kind": "jvp", "calls": 3, "donate": [],
                "extra": [[f"t{i}", list(x.shape), 100 + i] for i, x in enumerate(inputs)]}
    elif variant == "vjp":
        mode = {"kind": "vjp", "calls": 3, "donate": [], "extra": []}
    elif variant == "hvp":
        if not op.twice_differentiable:
            return None
        mode = {"kind": "hvp", "calls": 3, "donate": [],
                "extra": [["t0", list(inputs[0].shape), 100]]}
    elif variant == "edge":
        same = [i for i in range(1, len(inputs)) if inputs[i].shape == inputs[0].shape
                and inputs[i].spec == inputs[0].spec]
        if same:
            inputs[same[0]].alias = "x0"  # the same array passed twice
    prog = Program(dtype, inputs, [[n, e, s] for n, e, s in body], _loss(last), outputs,
                   consts, mode, label=f"jit_registry {op.name} {variant}")
    if variant == "vjp":
        prog.mode["extra"] = [["t0", [int(np.size(_flat(outs)))], 100]]
    return prog


def _value(inp: Input) -> np.ndarray:
    from fungrad import domains  # noqa: PLC0415

    spec = eval(inp.spec, vars(domains))  # noqa: S307 (a spec's own repr)
    return spec.from_unit(np.random.default_rng(inp.seed).uniform(size=inp.shape))


def _flat(outs) -> np.ndarray:
    vals = [np.ravel(np.asarray(getattr(o, "data", o))) for o in outs]
    return np.concatenate([v for v in vals if v.dtype.kind in "fc"])


def op_programs(op, thorough: bool = False) -> list[Program]:
    """The programs that check ``op`` under fg.jit (all cases x variants when ``thorough``)."""
    cases = _cases(op, thorough)
    declared = len(op.domain.cases)
    plan: list[tuple[int, str, str]] = []
    if thorough:
        for k in range(len(cases)):
            for v in VARIANTS:
                plan.append((k, v, "float32" if v == "float32" else "float64"))
    else:
        last = declared - 1
        plan = [(0, "values", "float64"), (0, "index0", "float64"), (0, "grad", "float64"),
                (min(1, last), "jvp", "float64"), (0, "vjp", "float64"),
                (last, "hvp", "float64"), (min(1, last), "float32", "float32"),
                (len(cases) - 1 if len(cases) > declared else 0, "edge", "float64")]
        if len(cases) > declared + 1:
            plan.append((declared, "edge", "float64"))
    out = []
    for k, variant, dtype in plan:
        p = _program(op, cases[k], "grad" if variant == "float32" else variant,
                     seed=1000 * k + VARIANTS.index(variant), dtype=dtype)
        if p is not None:
            p.label = f"jit_registry {op.name} case {k} {variant}"
            out.append(p)
    return out


def checked_ops() -> list:
    """Every registered op whose cases can be written as source (not scan/while_loop, whose
    static parameters are Python bodies)."""
    return [op for _, op in sorted(fg.ops().items()) if not _has_callable(op)]


def all_programs(thorough: bool = False) -> dict[str, list[Program]]:
    """``{op name: programs}`` for every op of :func:`checked_ops`."""
    return {op.name: op_programs(op, thorough) for op in checked_ops()}
