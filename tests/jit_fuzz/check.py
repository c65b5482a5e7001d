"""Run one fuzz program eagerly and under ``fg.jit`` and say how they differ.

:func:`check` returns a :class:`Outcome`: ``ok``, ``invalid`` (eager itself raises: the
program is dropped, not counted), or a failure with a *class* naming what went wrong:

- ``internal:<Type>@<site>``: fg.jit raised an exception that is not a ``fungrad.errors``
  error (a bare KeyError/TypeError/IndexError/AssertionError/AttributeError...), site = the
  innermost frame inside fungrad (also where eager refuses the program, if eager raised a
  different exception and fg.jit's comes from inside ``fungrad/jit``);
- ``refused:<Type>@<site>``: fg.jit raised a ``fungrad.errors`` error where eager succeeds;
- ``wrong:<what>``: a value, gradient, update or state differs from eager beyond a tolerance
  scaled by the program's sensitivity (``value``, ``dtype``, ``shape``, ``structure``,
  ``state``), an argument was modified (``input-mutated``), or an output of one call was
  overwritten by a later call (``output-overwritten``);
- ``fallback-warning:<Category>``: fg.jit warned that it fell back for an op (the test suite
  treats that warning as an error, so no bug hides behind the fallback).

Crashes and hangs are classified by the sandbox (``crash:SIG...``, ``hang``).

Tolerances: float64, ``|jit - eager| <= 1e-11 * max|eager| + 1e-3 * d`` per output (1e-10 for
parameters after optimizer steps), where ``d``
is how far eager moves when every input moves by a relative 1e-10 (the program's condition:
rounding differences of ~1e-13 are amplified by the same factor); float32,
``1e-5 * max|eager| + 4 * d`` with ``d`` the distance from the same program run in float64.
Both plus an absolute floor of 1e-13 (float64) / 1e-6 (float32) of the largest result of the
call: an output that is a cancellation (~1e-16 where the others are ~1) may differ there.
"""

from __future__ import annotations

import traceback
import warnings
from dataclasses import dataclass, field

import numpy as np

import fungrad as fg
from fungrad.errors import FungradError

from .program import Program

__all__ = ["Outcome", "check", "load"]


@dataclass
class Outcome:
    status: str  # ok | invalid | fail
    cls: str = ""
    detail: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"status": self.status, "cls": self.cls, "detail": self.detail}


def load(program: Program) -> dict:
    """Execute the program's source; its namespace (``f``, ``inputs``, ``make_step``...)."""
    ns: dict = {"__name__": "jit_fuzz_program"}
    code = compile(program.source(), f"<jit_fuzz {program.label or 'program'}>", "exec")
    exec(code, ns)  # noqa: S102 (our own generated program)
    return ns


def _leaves(x, out: list, path: str = "") -> None:
    if isinstance(x, fg.Tensor):
        out.append((path, x.data))
    elif isinstance(x, dict):
        for k in sorted(x):
            _leaves(x[k], out, f"{path}[{k!r}]")
    elif isinstance(x, (tuple, list)):
        out.append((path + f"<{type(x).__name__}{len(x)}>", None))
        for i, v in enumerate(x):
            _leaves(v, out, f"{path}[{i}]")
    elif x is None:
        out.append((path, None))
    else:
        out.append((path, x))


def leaves(x) -> list:
    """(path, value) pairs of a pytree's leaves (Tensors as their data; values not copied)."""
    out: list = []
    _leaves(x, out)
    return out


def _snap(pairs: list) -> list:
    return [(p, None if v is None else np.array(v, copy=True)) for p, v in pairs]


class _Run:
    """One drive of a program's step through its calls (eager or jitted)."""

    def __init__(self, ns: dict, jitted: bool, perturb: float = 0.0, dtype=None):
        self.ns, self.jitted = ns, jitted
        self.perturb, self.dtype = perturb, dtype
        self.calls: list = []  # per call: (outputs, state) snapshots
        self.kept: list = []  # per call: the output leaves themselves (not copies)
        self.mutated: list = []
        self.warnings: list = []

    def go(self) -> None:
        ns = self.ns
        old = ns["DTYPE"], ns["PERTURB"]
        if self.dtype is not None:
            ns["DTYPE"] = self.dtype
        ns["PERTURB"] = self.perturb
        try:
            self._go()
        finally:
            ns["DTYPE"], ns["PERTURB"] = old

    def _go(self) -> None:
        ns = self.ns
        step, state = ns["make_step"]()
        donate = set(ns["JIT"].get("donate_argnums", ()))
        if self.jitted:
            step = fg.jit(step, **ns["JIT"])
        carry = None
        for call in range(ns["CALLS"]):
            args = ns["inputs"](call)[ns["PARAMS"]:]
            if ns["CHAIN"] and carry is not None:
                args[0] = carry
            kept = [a for i, a in enumerate(args) if i not in donate]
            before = _snap(leaves(kept))
            if self.jitted:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    out = step(*args)
                self.warnings += [w for w in caught if _is_fallback(w)]
            else:
                with np.errstate(all="ignore"):
                    out = step(*args)
            after = leaves(kept)
            for (p, a), (_, b) in zip(before, after):
                if a is not None and not _same_bits(a, b):
                    self.mutated.append(f"call {call}: argument{p} changed")
            pairs = leaves(out)
            self.calls.append((_snap(pairs), _snap(leaves(state()))))
            if ns["CHAIN"]:
                carry = out[1]
                self.kept.append([(p, v) for p, v in pairs if not p.startswith("[1]")
                                  or 0 not in donate])
            else:
                self.kept.append(pairs)


def _is_fallback(w) -> bool:
    text = f"{w.category.__name__} {w.message}".lower()
    return "fallback" in text or "fall back" in text or "falls back" in text


def _same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and bool(
        np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _site(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "/fungrad/" in f.filename.replace("\\", "/")]
    if not inside:
        return "?"
    f = inside[-1]
    path = f.filename.replace("\\", "/").split("/fungrad/", 1)[1]
    return f"{path}:{f.name}"


def _exc_outcome(exc: BaseException) -> Outcome:
    name = type(exc).__name__
    site = _site(exc)
    kind = "refused" if isinstance(exc, FungradError) else "internal"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    return Outcome("fail", f"{kind}:{name}@{site}", f"{name}: {exc}"[:500], {"traceback": tb})


def _global_scale(pairs: list) -> float:
    """The largest finite magnitude among a call's float results (the scale of the program)."""
    out = 0.0
    for _, v in pairs:
        if v is None:
            continue
        v = np.asarray(v)
        if v.dtype.kind in "fc" and v.size:
            fin = np.abs(v[np.isfinite(v)])
            out = max(out, float(fin.max(initial=0.0)))
    return out


def _compare(ref: list, got: list, sens: list, dtype: str, what: str,
             rtol64: float = 1e-11, floor: float = 0.0) -> str | None:
    """None if ``got`` matches ``ref``; else a description. ``floor``: an absolute tolerance
    (a few units of rounding at the program's scale: an output that is a cancellation, ~1e-16
    where the other results are ~1, may differ there)."""
    if [p for p, _ in ref] != [p for p, _ in got]:
        return f"structure: eager {[p for p, _ in ref]} vs jit {[p for p, _ in got]}"
    for (p, a), (_, b), (_, s) in zip(ref, got, sens):
        if a is None or b is None:
            if (a is None) != (b is None):
                return f"{what}{p}: eager {a!r} vs jit {b!r}"
            continue
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return f"shape of {what}{p}: eager {a.shape} vs jit {b.shape}"
        if a.dtype != b.dtype:
            return f"dtype of {what}{p}: eager {a.dtype} vs jit {b.dtype}"
        if a.dtype.kind not in "fc":
            if not np.array_equal(a, b):
                return f"value of {what}{p}: eager {a} vs jit {b}"
            continue
        fin_a, fin_b = np.isfinite(a), np.isfinite(b)
        if not np.array_equal(fin_a, fin_b) or \
                not np.array_equal(a[~fin_a], b[~fin_b], equal_nan=True):  # (nan == nan)
            return f"value of {what}{p}: non-finite entries differ (eager {a}, jit {b})"
        if not fin_a.any():
            continue
        scale = float(np.abs(a[fin_a]).max())
        d = 0.0
        if s is not None and np.shape(s) == a.shape:
            s = np.asarray(s)
            ok = fin_a & np.isfinite(s)
            d = float(np.abs(a[ok].astype(np.float64) - s[ok]).max(initial=0.0)) if ok.any() \
                else np.inf
        if dtype == "float32":
            # d: eager's own float32 error (against float64). fg.jit's vectorised float32
            # transcendentals are within 5e-7 relative (tests/test_jit_vmath.py: about 4 ulp;
            # NumPy's about 1), and a program amplifies their rounding as it does eager's (a
            # gradient through 1 - tanh(x)**2 near saturation): up to ~5 d, seed 20261's
            # program 118. Beyond 8 d it is not rounding.
            tol = 1e-5 * scale + 8.0 * d
        else:
            tol = rtol64 * scale + 1e-3 * d
        err = float(np.abs(a[fin_a].astype(np.float64) - b[fin_a]).max())
        if not err <= tol + floor + 1e-300:
            i = np.unravel_index(int(np.argmax(np.where(fin_a, np.abs(a - b), -1))), a.shape) \
                if a.ndim else ()
            return (f"value of {what}{p}: max |jit - eager| = {err:.3g} > tol {tol:.3g} "
                    f"(max|eager| {scale:.3g}); at {i}: eager {a[i]!r}, jit {b[i]!r}")
    return None


def _eager_refused(ns: dict, eager_exc: BaseException) -> Outcome:
    """Eager raises: the program is dropped, unless fg.jit raises something no user should
    see (a bare KeyError/TypeError/... from inside fungrad) where eager raised cleanly."""
    dropped = Outcome("invalid", "eager", f"{type(eager_exc).__name__}: {eager_exc}"[:300])
    try:
        _Run(ns, True).go()
    except Exception as exc:  # noqa: BLE001
        if (not isinstance(exc, FungradError) and type(exc) is not type(eager_exc)
                and _site(exc).startswith("jit/")):
            return _exc_outcome(exc)
    return dropped


def check(program: Program) -> Outcome:
    """Compare ``fg.jit`` with eager on ``program`` (see the module docstring)."""
    try:
        ns = load(program)
    except Exception as exc:  # noqa: BLE001
        return Outcome("invalid", "source", f"{type(exc).__name__}: {exc}")
    eager = _Run(ns, False)
    try:
        eager.go()
    except Exception as exc:  # noqa: BLE001 (eager refuses it: jit must refuse it cleanly)
        return _eager_refused(ns, exc)
    if program.dtype == "float32":
        sens = _Run(ns, False, dtype=np.float64)
    else:
        sens = _Run(ns, False, perturb=1e-10)
    try:
        sens.go()
    except Exception:  # noqa: BLE001 (no sensitivity estimate: compare at the base tolerance)
        sens.calls = [([(p, None) for p, _ in o], [(p, None) for p, _ in s])
                      for o, s in eager.calls]
    jit = _Run(ns, True)
    try:
        jit.go()
    except Exception as exc:  # noqa: BLE001 (every exception is classified)
        return _exc_outcome(exc)
    if jit.warnings:
        w = jit.warnings[0]
        return Outcome("fail", f"fallback-warning:{w.category.__name__}", str(w.message)[:300])
    if jit.mutated:
        return Outcome("fail", "wrong:input-mutated", "; ".join(jit.mutated[:3]))
    for call, ((ro, rs), (jo, js), (so, ss)) in enumerate(zip(eager.calls, jit.calls,
                                                              sens.calls)):
        eps = 1e-13 if program.dtype == "float64" else 1e-6
        floor = eps * max(_global_scale(ro), _global_scale(rs))
        bad = _compare(ro, jo, so, program.dtype, "output", floor=floor)
        if bad:
            what = bad.split(" ", 1)[0] if not bad.startswith("structure") else "structure"
            return Outcome("fail", f"wrong:{what}", f"call {call}: {bad}")
        # optimizer state after several steps: Adam divides by sqrt(v), which amplifies
        # last-bit differences of near-zero gradients
        bad = _compare(rs, js, ss, program.dtype, "state", rtol64=1e-10, floor=floor)
        if bad:
            return Outcome("fail", "wrong:state", f"call {call}: {bad}")
    for call, (kept, (snap, _)) in enumerate(zip(jit.kept, jit.calls)):
        snapped = dict(snap)
        for p, v in kept:
            if v is not None and p in snapped and not _same_bits(snapped[p], v):
                return Outcome("fail", "wrong:output-overwritten",
                               f"output{p} of call {call} changed by a later call")
    return Outcome("ok")

