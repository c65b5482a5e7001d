"""Where a compiled step spends its time: each instruction and Python step timed alone.

:func:`profile` runs a compiled program's instructions one at a time (each a separate call of
the runner, so the figures include one runner call each, about a microsecond) and its Python
steps, repeating the whole program ``repeat`` times, and returns rows sorted by total time.
It is a diagnostic: it runs the program's effects too, so profile a copy of a model.

>>> import numpy as np, fungrad as fg
>>> from fungrad.jit import jit
>>> from fungrad.jit.profile import profile
>>> f = jit(lambda x: fg.sum(fg.tanh(x * 2.0)))
>>> rows = profile(f, np.ones(1000), repeat=3)
>>> sorted({r.kind for r in rows})
['group', 'reduce']
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from .backend import isa

__all__ = ["profile", "Row", "format_profile"]


class Row(NamedTuple):
    """One instruction or Python step: what it is, and its median time in microseconds."""

    kind: str
    what: str
    us: float


def _describe(exe, pc: int) -> tuple[str, str]:
    code = exe.code
    if code[pc] == isa.LOOP:
        count = int(code[pc + isa.LOOP_HEAD.count])
        steps = f"{count} steps" if count >= 0 else "until its condition fails"
        return "loop", f"{steps}, body of {int(code[pc + isa.LOOP_HEAD.exit])} words"
    if code[pc] == isa.EW:
        h = isa.decode(code, pc, isa.EW_HEAD)
        dims = tuple(int(h[d]) for d in ("d0", "d1", "d2", "d3") if h[d] != 1) or (1,)
        dtype = "float64" if h["f64"] else "float32"
        return "group", f"{int(h['n_ops'])} ops over {dims} {dtype}"
    slot = int(code[pc + isa.BLOCK_SLOT])
    name = next(k for k, v in exe.plan.kernels.items() if v == slot)
    return name[0], f"{name[1]}"


def profile(jitted, *args: Any, repeat: int = 20, **kwargs: Any) -> list[Row]:
    """Time each instruction and Python step of ``jitted``'s compiled program for ``args``."""
    from .compiled import Executable  # noqa: PLC0415

    jitted(*args, **kwargs)  # trace and compile
    variant, leaves = jitted._variant_for(args, kwargs)
    exe = variant.run if variant is not None else None
    if getattr(exe, "warming", False):  # Numba builds in the background: wait for it
        exe = exe.wait()  # type: ignore[union-attr]
    if not isinstance(exe, Executable):
        raise TypeError("profile: the program runs on the Python backend (nothing compiled)")
    inst = exe._acquire()
    try:
        exe._prepare(inst, leaves)
        items = []
        for seg in exe.plan.segments:
            if seg[0] == "run":
                pc = seg[1]
                while pc < seg[2]:
                    length = int(exe.code[pc + isa.EW_HEAD.length])
                    if exe.code[pc] == isa.LOOP:  # a compiled loop is timed whole
                        length = int(exe.code[pc + isa.LOOP_HEAD.exit])
                    items.append(("run", pc, pc + length))
                    pc += length
            else:
                items.append(seg)
        times: list[list[float]] = [[] for _ in items]
        clock = time.perf_counter
        for _ in range(repeat):
            for i, item in enumerate(items):
                t0 = clock()
                if item[0] == "run":
                    exe.run(exe.code, item[1], item[2], exe.table, inst.ctx)
                else:
                    exe._python(inst, item[1].step)
                times[i].append(clock() - t0)
    finally:
        exe._release(inst)
    rows = []
    for item, ts in zip(items, times):
        us = float(np.median(ts)) * 1e6
        if item[0] == "run":
            kind, what = _describe(exe, item[1])
        else:
            kind, what = "python", item[1].step.name
        rows.append(Row(kind, what, us))
    return rows


def format_profile(rows: list[Row], top: int = 15) -> str:
    """A summary by kind, then the ``top`` most expensive rows."""
    total = sum(r.us for r in rows) or 1.0
    by_kind: dict[str, list] = {}
    for r in rows:
        by_kind.setdefault(r.kind, []).append(r.us)
    lines = [f"total {total:.1f} us in {len(rows)} instructions and Python steps"]
    for kind, us in sorted(by_kind.items(), key=lambda kv: -sum(kv[1])):
        share = 100 * sum(us) / total
        lines.append(f"  {kind:10s} x{len(us):5d}  {sum(us):9.1f} us  {share:5.1f}%")
    lines.append("most expensive:")
    for r in sorted(rows, key=lambda r: -r.us)[:top]:
        lines.append(f"  {r.us:9.1f} us  {r.kind:8s} {r.what}")
    return "\n".join(lines)



