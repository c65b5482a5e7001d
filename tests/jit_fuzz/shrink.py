"""Minimise a failing fuzz program, keeping its failure class.

Each round builds every one-step simplification of the current program (cut a statement: its
value becomes a fresh input of the same shape, then dead code goes; bypass a statement by one
of its operands of the same shape; keep one term of the loss; drop an extra output; fewer
calls; no donation; contiguous inputs; no aliasing; a simpler mode), runs them as one batch
in the sandbox, and keeps the first that fails the same way. It stops when no candidate does,
or at the candidate/time budget.
"""

from __future__ import annotations

import re
import time

from .program import Input, Program, names_in
from .sandbox import run_batch

__all__ = ["shrink", "failure_key", "dead_code"]


def failure_key(cls: str) -> str:
    """What must stay the same while shrinking: a crash is any crash; an exception its type
    and site; a wrong answer what was wrong."""
    if cls.startswith("crash"):
        return "crash"
    if cls.startswith("wrong:"):
        return "wrong"
    return cls


def _extras(p: Program) -> None:
    """Rebuild the mode's extra inputs (tangents, vectors) after the inputs changed."""
    kind = p.mode["kind"]
    if kind == "jvp":
        p.mode["extra"] = [[f"t{i}", list(inp.shape), 1000 + i] for i, inp in enumerate(p.inputs)]
    elif kind == "hvp" and p.inputs:
        p.mode["extra"] = [["t0", list(p.inputs[0].shape), 1000]]


def _inline_copies(p: Program) -> None:
    """Replace statements ``v = w`` (a bare name) by ``w`` where ``v`` is used."""
    while True:
        for i, (name, expr, _s) in enumerate(p.body):
            if re.fullmatch(r"[xvct]\d+", expr.strip()):
                pat = re.compile(rf"\b{name}\b")
                p.body = [[n, pat.sub(expr, e), s] for n, e, s in p.body[:i] + p.body[i + 1:]]
                p.loss = pat.sub(expr, p.loss)
                p.outputs = [pat.sub(expr, o) for o in p.outputs]
                break
        else:
            return


def dead_code(p: Program) -> Program:
    """Drop statements, constants and inputs nothing uses (keeping the mode consistent)."""
    _inline_copies(p)
    used = names_in(p.loss) | set().union(*[names_in(o) for o in p.outputs] or [set()])
    body = []
    for name, expr, shape in reversed(p.body):
        if name in used:
            body.append([name, expr, shape])
            used |= names_in(expr)
    p.body = body[::-1]
    p.consts = [c for c in p.consts if c[0] in used]
    for inp in p.inputs:
        if inp.alias and inp.name in used:
            used.add(inp.alias)
    old = p.names
    k = p.param_count()
    keep = [i for i, inp in enumerate(p.inputs) if inp.name in used]
    if not keep and p.inputs:
        keep = [0]
    donated = {old[i] for i in p.mode.get("donate", []) if i < len(old)}
    p.inputs = [p.inputs[i] for i in keep]
    if "n_params" in p.mode:
        p.mode["n_params"] = max(1, sum(1 for i in keep if i < k))
        if p.mode["n_params"] > len(p.inputs):
            p.mode["n_params"] = len(p.inputs)
    if p.mode["kind"] not in ("sgd", "object"):
        p.mode["donate"] = [i for i, n in enumerate(p.names) if n in donated]
    names = set(p.names)
    for inp in p.inputs:
        if inp.alias and inp.alias not in names:
            inp.alias = None
    _extras(p)
    return p


def _cut(p: Program, i: int) -> Program:
    q = p.copy()
    name, _expr, shape = q.body[i]
    new = f"x{max([int(n[1:]) for n in q.names] + [-1]) + 1}"
    q.inputs.append(Input(new, tuple(shape), "Real(0.2, 0.9)", 7 + i))
    q.body = q.body[:i] + q.body[i + 1:]
    pat = re.compile(rf"\b{name}\b")
    q.body = [[n, pat.sub(new, e), s] for n, e, s in q.body]
    q.loss = pat.sub(new, q.loss)
    q.outputs = [pat.sub(new, o) for o in q.outputs]
    return dead_code(q)


def _bypass(p: Program, i: int) -> list[Program]:
    name, expr, shape = p.body[i]
    shapes = {n: tuple(s) for n, _, s in p.body} | {x.name: tuple(x.shape) for x in p.inputs}
    out = []
    for op in sorted(names_in(expr)):
        if shapes.get(op) == tuple(shape) and op != name:
            q = p.copy()
            q.body[i][1] = op
            out.append(dead_code(q))
    return out


def _split_terms(loss: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in loss:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "+" and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    terms.append(cur.strip())
    return [t for t in terms if t]


def candidates(p: Program) -> list[Program]:
    """Every one-step simplification of ``p``, most aggressive first."""
    out: list[Program] = []
    terms = _split_terms(p.loss)
    if len(terms) > 1:
        for t in terms:
            q = p.copy()
            q.loss = t
            out.append(dead_code(q))
    for i in range(len(p.body) - 1, -1, -1):
        out.append(_cut(p, i))
    for j in range(len(p.outputs)):
        if p.mode["kind"] == "vjp" and j == 0:
            continue
        q = p.copy()
        q.outputs = q.outputs[:j] + q.outputs[j + 1:]
        out.append(dead_code(q))
    if p.mode.get("calls", 3) > 1:
        q = p.copy()
        q.mode["calls"] = 1
        out.append(q)
    if p.mode.get("donate"):
        q = p.copy()
        q.mode["donate"] = []
        out.append(q)
    if p.mode["kind"] not in ("call",) and p.mode["kind"] not in ("sgd", "object"):
        for kind in ("call", "grad"):
            if kind != p.mode["kind"]:
                q = p.copy()
                q.mode = {"kind": kind, "calls": q.mode.get("calls", 3),
                          "donate": q.mode.get("donate", [])}
                out.append(q)
    for i, inp in enumerate(p.inputs):
        if inp.layout != "c":
            q = p.copy()
            q.inputs[i].layout = "c"
            out.append(q)
        if inp.alias:
            q = p.copy()
            q.inputs[i].alias = None
            out.append(q)
    for i in range(len(p.body)):
        out.extend(_bypass(p, i))
    if p.dtype == "float32":
        q = p.copy()
        q.dtype = "float64"
        out.append(q)
    return out


def size(p: Program) -> tuple:
    return (len(p.body), len(p.inputs), len(p.loss) + sum(len(e) for _, e, _ in p.body),
            p.mode.get("calls", 3), len(p.outputs))


def shrink(program: Program, cls: str, budget_s: float = 240.0, max_rounds: int = 40,
           timeout_per_job: float = 60.0, log=None) -> Program:
    """The smallest program found that fails with the same :func:`failure_key` as ``cls``."""
    key = failure_key(cls)
    best = program
    t0 = time.monotonic()
    for _ in range(max_rounds):
        if time.monotonic() - t0 > budget_s:
            break
        cands = [c for c in candidates(best) if size(c) < size(best) or c.to_json() != best.to_json()]
        seen, uniq = set(), []
        for c in cands:
            j = c.to_json()
            if j not in seen and j != best.to_json():
                seen.add(j)
                uniq.append(c)
        if not uniq:
            break
        found = None
        # small chunks: the first candidate that still fails wins, without running them all
        for start in range(0, len(uniq), 8):
            chunk = uniq[start:start + 8]
            results = run_batch([{"program": c.to_json()} for c in chunk], timeout_per_job)
            for c, r in zip(chunk, results):
                if r["status"] == "fail" and failure_key(r["cls"]) == key and size(c) <= size(best):
                    found = c
                    break
            if found is not None or time.monotonic() - t0 > budget_s:
                break
        if found is None:
            break
        best = found
        if log:
            log(f"  shrunk to {len(best.body)} statements, {len(best.inputs)} inputs")
    return best
