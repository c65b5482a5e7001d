"""A fuzz program: plain data (JSON) that renders as self-contained Python source.

A program is a function ``f`` of some array inputs (a body of statements ``name = expr``, a
scalar ``loss``, and extra outputs), the values of those inputs for each call, and a *mode*: the
transformation and calling convention under which ``f`` is run (plain call, value_and_grad, jvp,
vjp, hvp, a functional SGD step with donation, an object-style step with Tensors and an
optimizer). The rendered source defines ``f``, ``inputs(call, perturb=0.0, dtype=None)`` and
``make_step()``, and ends with a ``__main__`` block comparing ``fg.jit`` with eager: a failure
prints as a script a compiler engineer can run as it is.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Input", "Program", "MODES", "literal"]

#: How a program is called (see ``Program.mode``).
MODES = ("call", "grad", "grad_aux", "jvp", "vjp", "hvp", "sgd", "object")

LAYOUTS = ("c", "T", "s", "n")  # contiguous, transposed (Fortran), strided, negative stride


def literal(value: Any) -> str:
    """Python source for a static value (ints, floats, tuples, slices, int/bool arrays).

    >>> literal(np.array([0, 2], dtype=np.int64)), literal((slice(1, None, -1), 2))
    ('np.array([0, 2], dtype=np.int64)', '(slice(1, None, -1), 2)')
    """
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r}, dtype=np.{value.dtype.name})"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return repr(value.item())
    return repr(value)


@dataclass
class Input:
    """One argument of ``f``: its shape, how its values are drawn and laid out.

    ``spec`` is Python source for a fungrad.domains spec (``Real(...)``, ``WellConditioned()``)
    mapped over uniform draws from ``np.random.default_rng(seed)``; or ``values`` holds the
    values themselves (a nested list, used when the shrinker cuts a program at a statement).
    ``layout``: ``c`` contiguous, ``T`` a transposed view of a C array (Fortran order), ``s``
    every other row of a larger array, ``n`` a negative-stride view. ``alias``: the name of an
    earlier input this one *is* (the same array passed twice).
    """

    name: str
    shape: tuple
    spec: str = "Real(-2.0, 2.0)"
    seed: int = 0
    values: Any = None
    layout: str = "c"
    alias: str | None = None


@dataclass
class Program:
    """A fuzz program (see the module docstring). ``body`` holds ``[name, expr, shape]``;
    ``consts`` ``[name, source]`` (index arrays, masks) closed over by ``f``; ``outputs`` the
    names or view expressions returned beside the loss; ``mode`` a dict:
    ``kind`` (one of MODES), ``donate`` (argument positions), ``calls`` (1-3), ``n_params``
    (how many inputs are parameters in the sgd/object modes), ``lr`` (Python source of the
    learning rate; may use ``call``)."""

    dtype: str
    inputs: list
    body: list
    loss: str
    outputs: list = field(default_factory=list)
    consts: list = field(default_factory=list)
    mode: dict = field(default_factory=lambda: {"kind": "call", "donate": [], "calls": 3})
    label: str = ""

    # -- (de)serialisation ------------------------------------------------------------------
    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict) -> "Program":
        d = json.loads(text) if isinstance(text, str) else copy.deepcopy(text)
        d["inputs"] = [Input(**{**i, "shape": tuple(i["shape"])}) for i in d["inputs"]]
        d["body"] = [[n, e, tuple(s)] for n, e, s in d["body"]]
        return cls(**d)

    def copy(self) -> "Program":
        return Program.from_json(self.to_json())

    # -- facts ------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [i.name for i in self.inputs]

    def n_ops(self) -> int:
        return len(self.body)

    def param_count(self) -> int:
        return int(self.mode.get("n_params", len(self.inputs)))

    # -- rendering --------------------------------------------------------------------------
    def source(self) -> str:
        """The program as a runnable Python script (see the module docstring)."""
        lines = [
            "import numpy as np",
            "import fungrad as fg",
            "from fungrad.domains import (Real, WellConditioned, PositiveDefinite,",
            "                             DistinctEigenvalues, DistinctSingularValues)",
            "",
            f"DTYPE = np.{self.dtype}",
            "PERTURB = 0.0  # the checker's sensitivity run moves every input by this much",
        ]
        if self.label:
            lines.insert(0, f"# {self.label}")
        for name, src in self.consts:
            lines.append(f"{name} = {src}")
        lines += ["", "", f"def f({', '.join(self.names)}):"]
        for name, expr, _shape in self.body:
            lines.append(f"    {name} = {expr}")
        lines.append(f"    loss = {self.loss}")
        outs = "".join(f"{o}, " for o in self.outputs)
        lines.append(f"    return loss, ({outs})")
        lines += ["", ""] + self._inputs_source() + ["", ""] + self._step_source()
        lines += ["", ""] + MAIN.splitlines()
        return "\n".join(lines) + "\n"

    def _inputs_source(self) -> list[str]:
        kind = self.mode["kind"]
        out = [
            "def inputs(call=0, perturb=None, dtype=None):",
            '    """Fresh arguments of call `call` (calls 0 and 2 equal, call 1 moved a little);',
            '    `perturb` moves every value by that relative amount (the sensitivity run)."""',
            "    dtype = DTYPE if dtype is None else dtype",
            "    perturb = PERTURB if perturb is None else perturb",
            "",
            "    def make(seed, spec, shape, layout, values=None):",
            "        rng = np.random.default_rng(seed)",
            "        if values is None:",
            "            x = spec.from_unit(rng.uniform(size=shape))",
            "        else:",
            "            x = np.array(values, dtype=np.float64).reshape(shape)",
            "        if call == 1:",
            "            x = x * (1 + 1e-3 * np.random.default_rng(seed + 1).uniform(-1, 1, shape))",
            "        if perturb:",
            "            x = x * (1 + perturb * np.random.default_rng(seed + 2).uniform(-1, 1, shape))",
            "        x = np.asarray(x, dtype=dtype)",
            "        if layout == 'T':  # a transposed view of a C-ordered array: Fortran order",
            "            return np.ascontiguousarray(x.T).T",
            "        if layout == 's':  # every other row of a larger array",
            "            return np.repeat(x, 2, axis=0)[::2]",
            "        if layout == 'n':  # a negative-stride view",
            "            return np.ascontiguousarray(x[::-1])[::-1]",
            "        return x",
            "",
        ]
        for inp in self.inputs:
            if inp.alias:
                out.append(f"    {inp.name} = {inp.alias}  # the same array passed twice")
                continue
            vals = "None" if inp.values is None else repr(inp.values)
            out.append(f"    {inp.name} = make({inp.seed}, {inp.spec}, {tuple(inp.shape)!r}, "
                       f"{inp.layout!r}, {vals})")
        args = ", ".join(self.names)
        extra = self.mode.get("extra", [])  # tangents, cotangents, vectors: [name, shape, seed]
        for name, shape, seed in extra:
            out.append(f"    {name} = make({seed}, Real(-1.0, 1.0), {tuple(shape)!r}, 'c')")
        k = self.param_count()
        names = self.names
        if kind == "sgd":
            p = ", ".join(f"{n!r}: {n}" for n in names[:k])
            d = "".join(f"{n}, " for n in names[k:])
            out.append(f"    return [{{{p}}}, ({d}), {self.mode.get('lr', '0.05')}]")
        elif kind == "object":
            out.append(f"    return [{args}]")
        else:
            allargs = ", ".join(names + [e[0] for e in extra])
            out.append(f"    return [{allargs}]")
        return out

    def _step_source(self) -> list[str]:
        m = self.mode
        kind = m["kind"]
        n = len(self.inputs)
        argnums = tuple(range(n))
        k = self.param_count()
        out = ["def make_step():", '    """The step to compare, and what to read back after each call."""']
        if kind == "call":
            out += ["    return f, lambda: []"]
        elif kind == "grad":
            out += [f"    return fg.value_and_grad(lambda *a: f(*a)[0], argnums={argnums!r}), "
                    "lambda: []"]
        elif kind == "grad_aux":
            out += [f"    return fg.value_and_grad(f, argnums={argnums!r}, has_aux=True), "
                    "lambda: []"]
        elif kind == "jvp":
            out += ["    def step(*a):",
                    f"        return fg.jvp(lambda *p: f(*p)[0], a[:{n}], a[{n}:])",
                    "    return step, lambda: []"]
        elif kind == "vjp":
            out += ["    def step(*a):",
                    f"        out, pull = fg.vjp(lambda *p: f(*p)[1][0], *a[:{n}])",
                    f"        return out, pull(a[{n}])",
                    "    return step, lambda: []"]
        elif kind == "hvp":
            out += ["    return fg.hvp(lambda *a: f(*a)[0], argnums=0), lambda: []"]
        elif kind == "sgd":
            names = self.names
            pk = ", ".join(f"P[{x!r}]" for x in names[:k])
            out += ["    def step(P, data, lr):",
                    f"        loss, g = fg.value_and_grad(lambda P: f({pk}{', ' if k else ''}*data)[0])(P)",
                    "        return loss, {k: P[k] - lr * g[k] for k in P}",
                    "    return step, lambda: []"]
        elif kind == "object":
            opt = m.get("optimizer", "manual")
            out += [f"    params = [fg.Tensor(a, autograd=True) for a in inputs(0)[:{k}]]"]
            if opt == "manual":
                out += ["    def step(*data):",
                        "        loss = f(*params, *data)[0]",
                        "        loss.backward()",
                        "        for p in params:",
                        "            if p.grad is None:  # a parameter the loss does not use",
                        "                continue",
                        f"            p.data -= {m.get('lr', '0.05')} * p.grad.data",
                        "            p.grad.data *= 0",
                        "        return loss"]
            else:
                out += [f"    opt = fg.optim.{opt}(params, lr={m.get('lr', '0.05')})",
                        "    def step(*data):",
                        "        loss = f(*params, *data)[0]",
                        "        loss.backward()",
                        "        opt.step()",
                        "        return loss"]
            out += ["    return step, lambda: [p.data for p in params]"]
        else:
            raise ValueError(f"unknown mode {kind!r}")
        out += ["", "", f"JIT = dict(donate_argnums={tuple(m.get('donate', ()))!r})",
                f"CALLS = {int(m.get('calls', 3))}",
                f"CHAIN = {kind == 'sgd'}  # feed the updated parameters to the next call",
                f"PARAMS = {k if kind == 'object' else 0}  # leading inputs held by the step"]
        return out


MAIN = '''def run(jitted):
    """Outputs and state after each call, eager or under fg.jit."""
    step, state = make_step()
    if jitted:
        step = fg.jit(step, **JIT)
    results, carry = [], None
    for call in range(CALLS):
        args = inputs(call)[PARAMS:]
        if CHAIN and carry is not None:
            args[0] = carry
        out = step(*args)
        if CHAIN:
            carry = out[1]
        results.append((out, [s.copy() for s in state()]))
    return results


if __name__ == "__main__":
    eager, jitted = run(False), run(True)
    print("eager:", eager)
    print("jit:  ", jitted)'''


_NAME = re.compile(r"\b([xvct]\d+|[A-Z]\d+)\b")


def names_in(expr: str) -> set[str]:
    """The program names (inputs x*, values v*, constants C*) an expression uses."""
    return set(_NAME.findall(expr))
