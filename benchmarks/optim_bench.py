"""Time the optimizer step alone on deep_chain's 6,000 parameters: per-parameter vs flat buffers.

    python benchmarks/optim_bench.py [--rounds 41] [--old REV] [--out benchmarks/OPTIM.md]

deep_chain (``benchmarks/tasks/deep_chain.py``) has 3,000 layers, each a (64,) float32 weight
and bias: 6,000 leaf Tensors, 384,000 numbers. Only ``opt.step`` is timed, never forward or
backward; gradients are put in place (untimed) the way backward leaves them:

* ``step()``: the book's ``step(zero=True)``. Before each step the gradients are written
  in place into the existing ``p.grad`` arrays, as backward accumulates into them.
* ``step(zero=False); zero_grad()``: the PyTorch-style loop. Before each step every
  ``p.grad`` is a fresh array, as backward makes after ``zero_grad()``; both calls are timed.

Gradients: synthetic N(0, 1e-3) values for every loop, then (``step()`` only) deep_chain's own
gradients, of which about a third are subnormal floats that slow everyone's arithmetic.

Implementations, timed interleaved (one step of each in rotating order per round, so machine
noise hits all alike), medians over the rounds:

* ``old``: ``fungrad/optim.py`` as of git revision ``--old`` (default: the commit before flat
  buffers), loaded from git beside the current package; skipped if git is unavailable.
* ``flat=False``: today's optimizer with packing off (one update per parameter).
* ``flat=True``: today's default, one fused update per dtype.
* ``torch foreach``: ``torch.optim`` with ``foreach=True`` on 6,000 tensors, for reference.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

OLD_REV = "00eb006"  # the last commit whose optimizers update one parameter at a time
LAYERS, WIDTH = 3000, 64
KINDS = {
    "SGD": {"torch": ("SGD", {"lr": 0.01}), "fg": ("SGD", {"alpha": 0.01})},
    "SGD momentum=0.9": {"torch": ("SGD", {"lr": 0.01, "momentum": 0.9}),
                         "fg": ("SGD", {"alpha": 0.01, "momentum": 0.9})},
    "Adam": {"torch": ("Adam", {"lr": 1e-3}), "fg": ("Adam", {"lr": 1e-3})},
}
PATTERNS = ("step()", "step(zero=False); zero_grad()")


def load_old_optim(rev: str):
    """``fungrad/optim.py`` at ``rev`` as a module of the current package, or None."""
    try:
        source = subprocess.run(["git", "show", f"{rev}:fungrad/optim.py"], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("fungrad._optim_at_" + rev)
    module.__package__ = "fungrad"
    exec(compile(source, f"<fungrad/optim.py at {rev}>", "exec"), module.__dict__)
    return module


def gradient_sets(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """Synthetic N(0, 1e-3) gradients, and deep_chain's own gradients at its initial weights.

    The latter are what training sees: a third of them are subnormal float32 numbers (the
    product of 3,000 layer Jacobians underflows), which slows every implementation's
    arithmetic on them.
    """
    synthetic = [rng.standard_normal(WIDTH).astype(np.float32) * 1e-3
                 for _ in range(2 * LAYERS)]
    sets = {"N(0, 1e-3)": synthetic}
    try:
        from tasks import deep_chain

        _, g = deep_chain.fungrad_step(deep_chain.make_problem(0)).grads()
        real = [row.astype(np.float32) for row in np.concatenate([g["w"], g["b"]])]
        tiny = np.finfo(np.float32).tiny
        share = np.mean([((r != 0) & (np.abs(r) < tiny)).mean() for r in real])
        sets[f"deep_chain's ({share:.0%} subnormal)"] = real
    except ImportError:
        pass
    return sets


def make_case(impl: str, kind: str, pattern: str, old, rng: np.random.Generator,
              grads: list[np.ndarray]):
    """``(prepare, step)``: prepare() puts fresh gradients in place (untimed); step() is timed."""
    values = rng.normal(1.0, 0.1, (2 * LAYERS, WIDTH)).astype(np.float32)
    if impl == "torch foreach":
        return _torch_case(kind, pattern, values, grads)
    import fungrad as fg
    from fungrad import Tensor

    params = [Tensor(v.copy(), autograd=True) for v in values]
    cls_name, kwargs = KINDS[kind]["fg"]
    if impl == "old":
        opt = getattr(old, cls_name)(params, **kwargs)
    else:
        opt = getattr(fg.optim, cls_name)(params, flat=impl == "flat=True", **kwargs)
    for p, g in zip(params, grads):
        p.grad = Tensor(g.copy())
    opt.step()  # the first step packs (flat=True) and allocates state: not timed

    if pattern == "step()":
        def prepare():
            for p, g in zip(params, grads):
                p.grad.data[...] = g  # as backward's in-place accumulation into .grad

        def step():
            opt.step()
    else:
        def prepare():
            for p, g in zip(params, grads):
                p.grad = Tensor(g.copy())  # as backward makes them after zero_grad()

        def step():
            opt.step(zero=False)
            opt.zero_grad()
    return prepare, step


def _torch_case(kind: str, pattern: str, values: np.ndarray, grads: list):
    import torch

    params = [torch.tensor(v, requires_grad=True) for v in values]
    cls_name, kwargs = KINDS[kind]["torch"]
    opt = getattr(torch.optim, cls_name)(params, foreach=True, **kwargs)
    tgrads = [torch.from_numpy(g) for g in grads]
    for p, g in zip(params, tgrads):
        p.grad = g.clone()
    opt.step()

    if pattern == "step()":
        def prepare():
            for p, g in zip(params, tgrads):
                p.grad.copy_(g)

        def step():
            opt.step()
            opt.zero_grad(set_to_none=False)
    else:
        def prepare():
            for p, g in zip(params, tgrads):
                p.grad = g.clone()

        def step():
            opt.step()
            opt.zero_grad()
    return prepare, step


def measure(rounds: int, old) -> list[dict]:
    impls = (["old"] if old is not None else []) + ["flat=False", "flat=True"]
    try:
        import torch

        torch.set_num_threads(1)
        impls.append("torch foreach")
    except ImportError:
        pass
    rows = []
    rng = np.random.default_rng(0)
    combos = [(kind, pattern, "N(0, 1e-3)") for kind in KINDS for pattern in PATTERNS]
    sets = gradient_sets(rng)
    combos += [(kind, "step()", name) for name in list(sets)[1:] for kind in KINDS]
    for kind, pattern, grad_name in combos:
        cases = {impl: make_case(impl, kind, pattern, old, rng, sets[grad_name])
                 for impl in impls}
        times: dict[str, list[float]] = {impl: [] for impl in impls}
        for r in range(rounds):
            order = impls[r % len(impls):] + impls[:r % len(impls)]
            for impl in order:
                prepare, step = cases[impl]
                prepare()
                t0 = time.perf_counter()
                step()
                times[impl].append(time.perf_counter() - t0)
        med = {impl: float(np.median(t)) * 1e3 for impl, t in times.items()}
        rows.append({"kind": kind, "pattern": pattern, "grads": grad_name, "ms": med})
        print(kind, pattern, grad_name, {k: round(v, 3) for k, v in med.items()},
              flush=True)
    return rows


def table(rows: list[dict], rounds: int, rev: str | None) -> str:
    impls = list(rows[0]["ms"])
    base = "old" if "old" in impls else "flat=False"
    head = (["optimizer", "loop", "gradients"] + [f"{i} ms" for i in impls]
            + [f"{base} / flat=True"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (len(head) - 3)]
    for row in rows:
        ms = row["ms"]
        cells = ([row["kind"], f"`{row['pattern']}`", row["grads"]]
                 + [f"{ms[i]:.3f}" for i in impls])
        cells.append(f"{ms[base] / ms['flat=True']:.1f}x")
        lines.append("| " + " | ".join(cells) + " |")
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    now = datetime.datetime.now().isoformat(timespec="seconds")
    return "\n".join([
        "# Optimizer step alone: deep_chain's 6,000 parameters",
        "",
        f"Run {now} on {platform.platform()}, Python {platform.python_version()}, NumPy "
        f"{np.__version__}, os.cpu_count()={os.cpu_count()}, load average (1 min) {load:.2f}. "
        f"Command: `python benchmarks/optim_bench.py --rounds {rounds}`"
        + (f" (old = fungrad/optim.py at {rev})." if "old" in impls else "."),
        "",
        "Median ms per step over the rounds (implementations interleaved). 3,000 (64,) weights "
        "and 3,000 (64,) biases, float32. `step()` is the book's step(zero=True) with the "
        "gradients already in `.grad` (as backward leaves them); the other loop gets fresh "
        "gradient arrays each step, as backward makes them after `zero_grad()`, and times "
        "both calls.",
        "",
        *lines,
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--old", default=OLD_REV, help="git revision of the 'old' column")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "OPTIM.md"))
    args = parser.parse_args()
    old = load_old_optim(args.old) if args.old else None
    rows = measure(args.rounds, old)
    text = table(rows, args.rounds, args.old if old is not None else None)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
