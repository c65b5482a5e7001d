"""Per-example gradients of an MLP: fg.vmap against torch.func and JAX, side by side.

    python benchmarks/vmap_bench.py [--rounds 25] [--batch 256] [--loop-batch 512]
                                    [--output benchmarks/VMAP.md]

The task (issue 20): the gradient of every parameter of an MLP 256-128-10 (ReLU, softmax
cross-entropy, float32), one gradient per example of a batch of 256. The per-example weight
gradients of the first layer alone are 256 x 256 x 128 float32 numbers (33.6 MB).

Implementations, each giving the same four per-example gradient arrays:

* ``torch.func``: ``torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))``.
* ``jax``: ``jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))``.
* ``fg.vmap``: ``fg.vmap(fg.grad(loss), in_axes=(None, 0, 0))``, eager.
* ``fg.jit``: ``fg.jit`` of that (one compiled batched program).
* ``numpy floor``: the first layer's per-example gradients alone, written by NumPy
  (``x[:, :, None] * g[:, None, :]`` into a fresh array): the memory traffic no
  implementation avoids.

Then, on ``--loop-batch`` examples: a Python loop of ``fg.grad`` calls, one per example,
against ``fg.vmap`` of the same gradient, for the MLP above (whose per-example gradients are
mostly memory traffic: the NumPy floor is shown beside them) and for the DP-SGD example's MLP
20-64-4 (where the loop's per-call overhead dominates).

One thread everywhere (OMP/OPENBLAS/MKL/NUMBA variables and XLA's flags set before the
libraries load, ``torch.set_num_threads(1)``). After a warm-up (and fg.jit's and jax's
compilation), the implementations are timed round-robin, one call each per round in rotating
order, so that load on the shared machine hits all alike; the table gives medians and the
ratios the issue sets targets for. The load average is printed before and after: compare
ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fungrad as fg  # noqa: E402

D_IN, HIDDEN, CLASSES = 256, 128, 10
SMALL = (20, 64, 4)  # the DP-SGD example's model, for the loop comparison
TARGETS = {  # issue 20, item 5 (None: shown for context)
    "fg.vmap / torch.func": 1.0,
    "fg.jit / min(torch.func, jax)": 0.5,
    "fg.vmap / loop of fg.grad (MLP 256-128-10)": 0.1,
    "numpy floor / loop of fg.grad (MLP 256-128-10)": None,
    "fg.vmap / loop of fg.grad (MLP 20-64-4)": 0.1,
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Per-example gradients of an MLP 256-128-10 (float32, 1 thread): "
                    "fg.vmap and fg.jit against torch.func and jax.jit(jax.vmap(jax.grad)), "
                    "and fg.vmap against a Python loop of fg.grad calls.")
    p.add_argument("--rounds", type=int, default=25,
                   help="timed round-robin rounds (one call of each implementation per round); "
                        "default 25")
    p.add_argument("--batch", type=int, default=256,
                   help="examples per batch for the peer comparison; default 256")
    p.add_argument("--loop-batch", type=int, default=512,
                   help="examples for the loop-of-fg.grad comparisons (the MLP above and the "
                        "DP-SGD example's MLP 20-64-4); default 512")
    p.add_argument("--loop-rounds", type=int, default=5,
                   help="rounds of the (slow) loop comparison; default 5")
    p.add_argument("--seed", type=int, default=0, help="data and weights seed; default 0")
    p.add_argument("--profile", action="store_true",
                   help="also time each instruction of fg.jit's compiled program "
                        "(fungrad.jit.profile) and add the table to the results")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "VMAP.md"),
                   help="results file (markdown); '-' prints only; default benchmarks/VMAP.md")
    return p.parse_args(argv)


# -- the task -------------------------------------------------------------------------------------


def make_data(batch: int, seed: int, sizes: tuple = (D_IN, HIDDEN, CLASSES)):
    d_in, hidden, classes = sizes
    rng = np.random.default_rng(seed)
    params = {
        "W1": (rng.standard_normal((d_in, hidden)) / np.sqrt(d_in)).astype(np.float32),
        "b1": np.zeros(hidden, np.float32),
        "W2": (rng.standard_normal((hidden, classes)) / np.sqrt(hidden)).astype(np.float32),
        "b2": np.zeros(classes, np.float32),
    }
    x = rng.standard_normal((batch, d_in)).astype(np.float32)
    y = rng.integers(0, classes, batch)
    return params, x, y


def fg_loss(p, x, y):
    h = fg.relu(x @ p["W1"] + p["b1"])
    return fg.cross_entropy(h @ p["W2"] + p["b2"], y)


def fungrad_impls(params, x, y) -> dict:
    per_example = fg.vmap(fg.grad(fg_loss), in_axes=(None, 0, 0))
    jitted = fg.jit(per_example)
    return {"fg.vmap": lambda: per_example(params, x, y),
            "fg.jit": lambda: jitted(params, x, y)}


def torch_impl(params, x, y):
    try:
        import torch  # noqa: PLC0415
        from torch.func import grad, vmap  # noqa: PLC0415
    except ImportError:
        return None
    torch.set_num_threads(1)
    tp = {k: torch.from_numpy(v) for k, v in params.items()}
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def loss(p, xi, yi):
        h = torch.relu(xi @ p["W1"] + p["b1"])
        logits = h @ p["W2"] + p["b2"]
        return torch.nn.functional.cross_entropy(logits.unsqueeze(0), yi.unsqueeze(0))

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    return lambda: {k: v.numpy() for k, v in per_example(tp, tx, ty).items()}


def jax_impl(params, x, y):
    try:
        import jax  # noqa: PLC0415
        import jax.numpy as jnp  # noqa: PLC0415
    except ImportError:
        return None
    jp = {k: jnp.asarray(v) for k, v in params.items()}
    jx, jy = jnp.asarray(x), jnp.asarray(y)

    def loss(p, xi, yi):
        h = jax.nn.relu(xi @ p["W1"] + p["b1"])
        logits = h @ p["W2"] + p["b2"]
        return -jax.nn.log_softmax(logits)[yi]

    per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))

    def run():
        out = per_example(jp, jx, jy)
        jax.block_until_ready(out)
        return {k: np.asarray(v) for k, v in out.items()}

    return run


def numpy_floor(params, x, y):
    """The first layer's per-example gradient written by NumPy alone (its memory traffic)."""
    g = np.ones((x.shape[0], params["W1"].shape[1]), np.float32)
    return lambda: {"W1": x[:, :, None] * g[:, None, :]}


def loop_comparison(sizes: tuple, batch: int, seed: int, with_floor: bool) -> dict:
    """A Python loop of fg.grad calls, one per example, and fg.vmap of the same gradient."""
    params, x, y = make_data(batch, seed, sizes)
    one = fg.grad(fg_loss)
    per_example = fg.vmap(fg.grad(fg_loss), in_axes=(None, 0, 0))
    impls = {
        "loop": lambda: [one(params, x[i], y[i]) for i in range(batch)],
        "fg.vmap": lambda: per_example(params, x, y),
    }
    if with_floor:
        impls["numpy floor"] = numpy_floor(params, x, y)
    for run in impls.values():
        run()
    return impls


# -- timing ---------------------------------------------------------------------------------------


def round_robin(impls: dict, rounds: int) -> dict:
    """Median seconds per call of each implementation, one call of each per round, the order
    rotating from round to round."""
    names = list(impls)
    times: dict = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t = time.perf_counter()
            impls[n]()
            times[n].append(time.perf_counter() - t)
    return {n: float(np.median(ts)) for n, ts in times.items()}


def check_agree(results: dict, reference: str) -> dict:
    """The largest absolute difference of each implementation's gradients from the
    reference's (every key the implementation returns)."""
    ref = results[reference]
    return {n: max(float(np.max(np.abs(np.asarray(out[k]) - ref[k]))) for k in out)
            for n, out in results.items() if n != reference}


def main(argv=None) -> None:
    args = parse_args(argv)
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    params, x, y = make_data(args.batch, args.seed)

    impls = fungrad_impls(params, x, y)
    for name, make in (("torch.func", torch_impl), ("jax", jax_impl)):
        run = make(params, x, y)
        if run is not None:
            impls[name] = run
    impls["numpy floor"] = numpy_floor(params, x, y)

    compile_s = {}
    results = {}
    for name, run in impls.items():  # warm-up: traces and compiles happen here
        t = time.perf_counter()
        results[name] = run()
        compile_s[name] = time.perf_counter() - t
        run()
    agree = check_agree({k: v for k, v in results.items() if k != "numpy floor"}, "fg.vmap")
    med = round_robin(impls, args.rounds)

    # the loop comparisons: the MLP above, and the DP-SGD example's small one
    n = args.loop_batch
    big = loop_comparison((D_IN, HIDDEN, CLASSES), n, args.seed + 1, with_floor=True)
    small = loop_comparison(SMALL, n, args.seed + 2, with_floor=False)
    loop_impls = {f"MLP 256-128-10: {k}": v for k, v in big.items()}
    loop_impls.update({f"MLP 20-64-4: {k}": v for k, v in small.items()})
    loop_med = round_robin(loop_impls, args.loop_rounds)
    load_after = os.getloadavg()

    ratios = {}
    if "torch.func" in med:
        ratios["fg.vmap / torch.func"] = med["fg.vmap"] / med["torch.func"]
    peers = [med[n] for n in ("torch.func", "jax") if n in med]
    if peers:
        ratios["fg.jit / min(torch.func, jax)"] = med["fg.jit"] / min(peers)
    for model in ("MLP 256-128-10", "MLP 20-64-4"):
        loop = loop_med[f"{model}: loop"]
        ratios[f"fg.vmap / loop of fg.grad ({model})"] = loop_med[f"{model}: fg.vmap"] / loop
        if f"{model}: numpy floor" in loop_med:
            ratios[f"numpy floor / loop of fg.grad ({model})"] = \
                loop_med[f"{model}: numpy floor"] / loop

    report = format_report(args, started, load_before, load_after, med, loop_med, ratios,
                           agree, compile_s)
    if args.profile:
        report += jit_profile(params, x, y)
    print(report)
    if args.output != "-":
        Path(args.output).write_text(report)
        print(f"\nwritten to {args.output}")


def jit_profile(params, x, y) -> str:
    """fg.jit's compiled program for the batch, instruction by instruction."""
    from fungrad.jit.profile import format_profile, profile  # noqa: PLC0415

    jitted = fg.jit(fg.vmap(fg.grad(fg_loss), in_axes=(None, 0, 0)))
    text = format_profile(profile(jitted, params, x, y, repeat=10))
    return f"\nWhere fg.jit's program spends its time (fungrad.jit.profile):\n\n```\n{text}\n```\n"


def _versions() -> str:
    parts = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for mod in ("numba", "torch", "jax"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    return ", ".join(parts)


def format_report(args, started, load_before, load_after, med, loop_med, ratios, agree,
                  compile_s) -> str:
    cmd = "python benchmarks/vmap_bench.py " + " ".join(sys.argv[1:])
    lines = [
        "# Per-example gradients: fg.vmap against torch.func and JAX",
        "",
        f"`{cmd.strip()}` — {started:%Y-%m-%d %H:%M} UTC, {platform.machine()} with "
        f"{os.cpu_count()} CPUs, {_versions()}.",
        f"1 thread everywhere. Load average (1, 5, 15 min): before "
        f"{', '.join(f'{v:.2f}' for v in load_before)}; after "
        f"{', '.join(f'{v:.2f}' for v in load_after)}"
        + (" — above the CPU count: other work shared the machine, compare ratios only."
           if max(load_before[0], load_after[0]) > (os.cpu_count() or 1) else "."),
        "",
        f"MLP {D_IN}-{HIDDEN}-{CLASSES} (ReLU, softmax cross-entropy), float32, the gradient of "
        f"every parameter for each of {args.batch} examples. Medians of {args.rounds} "
        "round-robin rounds:",
        "",
        "| implementation | median ms | × torch.func | first call s | max abs diff vs fg.vmap |",
        "|---|---:|---:|---:|---:|",
    ]
    base = med.get("torch.func")
    for name, s in med.items():
        rel = f"{s / base:.2f}" if base else "—"
        diff = "—" if name in ("fg.vmap", "numpy floor") else f"{agree.get(name, 0.0):.1e}"
        lines.append(f"| {name} | {s * 1e3:.2f} | {rel} | {compile_s[name]:.2f} | {diff} |")
    lines += ["", f"Per-example gradients of {args.loop_batch} examples: a Python loop of "
              f"{args.loop_batch} `fg.grad` calls against one `fg.vmap` ({args.loop_rounds} "
              "round-robin rounds; the numpy floor is the first layer's per-example gradients "
              "alone, written by NumPy into fresh memory):", "",
              "| implementation | median ms |", "|---|---:|"]
    for name, s in loop_med.items():
        lines.append(f"| {name} | {s * 1e3:.1f} |")
    lines += ["", "| ratio (issue 20 target) | measured | target | met |", "|---|---:|---:|---|"]
    for name, value in ratios.items():
        target = TARGETS[name]
        met = "—" if target is None else ("yes" if value <= target else "NO")
        lines.append(f"| {name} | {value:.3f} | {'—' if target is None else f'≤ {target}'} "
                     f"| {met} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
