"""fg.jit's run time against its peers, side by side in one process, and writes
``benchmarks/JIT_PEERS.md``.

    PYTHONPATH=. /work/bench-venv/bin/python benchmarks/jit_peers.py [--rounds 30]
        [--output benchmarks/JIT_PEERS.md]

Issue 19's item 3 as a table: the ``fg.scan`` chain (``x = tanh(x * w[i] + b[i])``,
value_and_grad + SGD, parameters donated) at 300 and 3000 steps against JAX's ``lax.scan``;
babi_rnn, embed_ce and lstm_char under fg.jit against JAX jit; mlp under fg.jit against NumPy
by hand; and every task eager against fg.jit, with an object-style MLP 784-128-10 trained by
``fungrad.optim.Adam`` among them.

The parent starts one worker process with every thread count set to 1 (OMP, OpenBLAS, MKL,
Numba, XLA) before NumPy is imported. Per group of implementations the worker builds each,
runs warm-up steps (the first call traces and compiles), then times them in rounds: each round
runs a block of about 10 ms of steps of every implementation in turn, the order rotating, so
load on the machine hits all alike. A block's time divided by its steps is one sample; the
table shows the median sample, CPU time of the process (``time.process_time``: what the step
costs, whatever else runs on the machine; JAX runs its computations on threads of its own,
which process time counts) and wall time. Ratios are CPU-time medians of the same run.
"""

from __future__ import annotations

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import argparse
import datetime
import functools
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
TASKS = ("mlp", "babi_rnn", "embed_ce", "lstm_char", "deep_chain")
SCAN_STEPS = (300, 3000)
LR = 0.01


# --------------------------------------------------------------------------------------------
# the extra problems: the scan chain and the object-style MLP with Adam
# --------------------------------------------------------------------------------------------


def scan_chain(steps: int) -> dict:
    """name -> step() for the fg.scan chain and JAX's lax.scan chain of ``steps`` steps."""
    import numpy as np

    rng = np.random.default_rng(0)
    W = rng.normal(1.0, 0.1, (steps, 64)).astype(np.float32)
    B = rng.normal(0.0, 0.1, (steps, 64)).astype(np.float32)
    X0 = rng.standard_normal(64).astype(np.float32)
    impls = {}

    import fungrad as fg

    def fg_loss(q):
        x, _ = fg.scan(lambda x, wb: (fg.tanh(x * wb[0] + wb[1]), None), X0, (q["w"], q["b"]))
        return fg.sum(x)

    @fg.jit(donate_argnums=0)
    def fg_update(q):
        value, g = fg.value_and_grad(fg_loss)(q)
        return value, {k: q[k] - LR * g[k] for k in q}

    fg_state = {"p": {"w": W.copy(), "b": B.copy()}}

    def fg_step():
        fg_state["p"] = fg_update(fg_state["p"])[1]

    impls["fungrad_jit"] = fg_step
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return impls

    def jax_loss(q):
        x, _ = jax.lax.scan(lambda x, wb: (jnp.tanh(x * wb[0] + wb[1]), None), X0,
                            (q["w"], q["b"]))
        return jnp.sum(x)

    @functools.partial(jax.jit, donate_argnums=0)
    def jax_update(q):
        value, g = jax.value_and_grad(jax_loss)(q)
        return value, jax.tree_util.tree_map(lambda a, b: a - LR * b, q, g)

    jax_state = {"p": {"w": jnp.asarray(W), "b": jnp.asarray(B)}}

    def jax_step():
        v, jax_state["p"] = jax_update(jax_state["p"])
        v.block_until_ready()

    impls["jax"] = jax_step
    return impls


def mlp_adam() -> dict:
    """name -> step() for an object-style MLP 784-128-10 (batch 64) trained with Adam:
    eager and under fg.jit (the step jitted whole, the optimizer's update included)."""
    import numpy as np

    import fungrad as fg
    from fungrad import Tensor
    from fungrad.optim import Adam

    def build():
        rng = np.random.default_rng(0)
        w1 = Tensor((rng.standard_normal((784, 128)) / 28).astype(np.float32), autograd=True)
        b1 = Tensor(np.zeros(128, np.float32), autograd=True)
        w2 = Tensor((rng.standard_normal((128, 10)) / 11.3).astype(np.float32), autograd=True)
        b2 = Tensor(np.zeros(10, np.float32), autograd=True)
        x = rng.standard_normal((64, 784)).astype(np.float32)
        y = rng.integers(0, 10, 64)
        opt = Adam([w1, b1, w2, b2], lr=1e-3)

        def step():
            h = fg.tanh(fg.affine(x, w1, b1))
            loss = fg.cross_entropy(fg.affine(h, w2, b2), y)
            loss.backward()
            opt.step()
        return step

    return {"fungrad": build(), "fungrad_jit": fg.jit(build())}


# --------------------------------------------------------------------------------------------
# worker
# --------------------------------------------------------------------------------------------


def _warm(step, seconds: float = 0.3, least: int = 3) -> float:
    """Run ``step`` until warm; the median CPU seconds of the later calls (CPU, not wall: on
    a loaded machine a wall-time estimate would make blocks of one step)."""
    times, start = [], time.perf_counter()
    while len(times) < least or (time.perf_counter() - start < seconds and len(times) < 200):
        t0 = time.process_time()
        step()
        times.append(time.process_time() - t0)
    later = sorted(times[1:])
    return later[len(later) // 2]


def time_group(impls: dict, rounds: int, block_s: float = 0.010, budget: float = 20.0) -> dict:
    """Interleaved rounds of blocks: name -> {"cpu_ms", "wall_ms", "blocks", "steps"}. An
    implementation stops taking part after ``budget`` seconds of timed blocks (and at least
    5 blocks): a slow eager step must not hold up the run."""
    import statistics

    per_block, errors = {}, {}
    for name, step in impls.items():
        try:
            est = _warm(step)
        except Exception as exc:  # a failing implementation is reported, not fatal
            errors[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            continue
        per_block[name] = max(3, int(block_s / max(est, 1e-7)))
    names = list(per_block)
    cpu: dict = {n: [] for n in names}
    wall: dict = {n: [] for n in names}
    spent = dict.fromkeys(names, 0.0)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if spent[name] > budget and len(cpu[name]) >= 5:
                continue
            step, k = impls[name], per_block[name]
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(k):
                step()
            cpu[name].append((time.process_time() - c0) / k)
            wall[name].append((time.perf_counter() - w0) / k)
            spent[name] += wall[name][-1] * k
    out = {n: {"cpu_ms": statistics.median(cpu[n]) * 1e3,
               "wall_ms": statistics.median(wall[n]) * 1e3,
               "blocks": len(cpu[n]), "steps": len(cpu[n]) * per_block[n]} for n in names}
    out.update({n: {"error": e} for n, e in errors.items()})
    return out


def worker(args) -> None:
    import importlib

    from tasks.common import Impl  # noqa: F401  (the tasks package on the path)

    result = {"loadavg": list(os.getloadavg()), "groups": {},
              "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"}

    def save():  # after every group: a run cut short still reports what it measured
        result["loadavg_end"] = list(os.getloadavg())
        Path(args.json).write_text(json.dumps(result, indent=1))

    for steps in args.scan:
        print(f"scan chain {steps}", file=sys.stderr, flush=True)
        result["groups"][f"scan_chain_{steps}"] = time_group(scan_chain(steps), args.rounds)
        save()
    if args.adam:  # (before the tasks: deep_chain's eager step is the slowest, it runs last)
        print("mlp_adam", file=sys.stderr, flush=True)
        result["groups"]["mlp_adam"] = time_group(mlp_adam(), args.rounds)
        save()
    for task in args.tasks:
        print(task, file=sys.stderr, flush=True)
        mod = importlib.import_module(f"tasks.{task}")
        problem = mod.make_problem(0)
        impls = {}
        for name in ("numpy", "fungrad", "fungrad_jit", "fungrad_jit_stacked", "jax"):
            factory = getattr(mod, f"{name}_step", None)
            if factory is None:
                continue
            try:
                impls[name] = factory(problem).step
            except ImportError:
                continue
        result["groups"][task] = time_group(impls, args.rounds)
        save()
    save()


# --------------------------------------------------------------------------------------------
# parent: the worker, then the markdown
# --------------------------------------------------------------------------------------------

TARGETS = {  # group -> (implementation, peer, at most this ratio)
    "scan_chain_300": ("fungrad_jit", "jax", 1.0),
    "scan_chain_3000": ("fungrad_jit", "jax", 1.0),
    "babi_rnn": ("fungrad_jit", "jax", 1.0),
    "embed_ce": ("fungrad_jit", "jax", 1.0),
    "lstm_char": ("fungrad_jit", "jax", 1.0),
    "mlp": ("fungrad_jit", "numpy", 1.05),
    "deep_chain": ("fungrad_jit", "jax", 2.0),  # the 6,000-Tensor object-style chain
}


def render(res: dict, command: str) -> str:
    la, lb = res["loadavg"], res["loadavg_end"]
    out = ["# fg.jit against its peers (run time)", "",
           f"- date: {res.get('date') or f'{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}'}; "
           f"{platform.platform()}, {os.cpu_count()} logical CPUs",
           f"- command: `{command}`",
           f"- load average (1 min) at start {la[0]:.2f}, at end {lb[0]:.2f}"
           + (f" — **{res['note']}**" if res.get("note") else ""),
           "- 1 thread everywhere, float32; CPU ms per step (process time), the median of "
           "interleaved ~10 ms blocks; wall ms beside it.", "",
           "## Targets", "",
           "| group | fg.jit CPU ms | peer | peer CPU ms | ratio | target | met |",
           "|---|---:|---|---:|---:|---:|---|"]
    for group, (impl, peer, bar) in TARGETS.items():
        rows = res["groups"].get(group)
        if not rows or "cpu_ms" not in rows.get(impl, {}) or "cpu_ms" not in rows.get(peer, {}):
            continue
        a, b = rows[impl]["cpu_ms"], rows[peer]["cpu_ms"]
        out.append(f"| {group} | {a:.3f} | {peer} | {b:.3f} | {a / b:.2f} | ≤ {bar:.2f} "
                   f"| {'yes' if a / b <= bar else 'no'} |")
    out += ["", "## fg.jit against eager fungrad", "",
            "| group | eager CPU ms | fg.jit CPU ms | jit / eager | met (≤ 1) |",
            "|---|---:|---:|---:|---|"]
    for group, rows in res["groups"].items():
        e, j = rows.get("fungrad", {}), rows.get("fungrad_jit", {})
        if "cpu_ms" in e and "cpu_ms" in j:
            r = j["cpu_ms"] / e["cpu_ms"]
            out.append(f"| {group} | {e['cpu_ms']:.3f} | {j['cpu_ms']:.3f} | {r:.2f} "
                       f"| {'yes' if r <= 1 else 'no'} |")
    out += ["", "## Every measurement", "",
            "| group | implementation | CPU ms | wall ms | blocks | steps |",
            "|---|---|---:|---:|---:|---:|"]
    for group, rows in res["groups"].items():
        for name, row in rows.items():
            if "error" in row:
                out.append(f"| {group} | {name} | failed: {row['error']} | | | |")
            else:
                out.append(f"| {group} | {name} | {row['cpu_ms']:.3f} | {row['wall_ms']:.3f} "
                           f"| {row['blocks']} | {row['steps']} |")
    return "\n".join(out) + "\n"


def compare(before: dict, after: dict) -> str:
    """A table of fg.jit's CPU ms per step, an earlier run against this one, and each
    target's ratio in both."""
    out = ["# fg.jit run time: before and after", "",
           f"- before: `{before.get('command', '?')}` (load {before['loadavg'][0]:.1f} at "
           f"start); after: `{after.get('command', '?')}` (load {after['loadavg'][0]:.1f})",
           "", "| group | fg.jit before | fg.jit after | after / before | target ratio before "
           "| target ratio after |", "|---|---:|---:|---:|---:|---:|"]
    for group, rows in after["groups"].items():
        a = rows.get("fungrad_jit", {}).get("cpu_ms")
        b = before["groups"].get(group, {}).get("fungrad_jit", {}).get("cpu_ms")
        if a is None:
            continue

        def ratio(res):
            impl, peer, _ = TARGETS.get(group, ("fungrad_jit", "fungrad", 1.0))
            r = res["groups"].get(group, {})
            x, y = r.get(impl, {}).get("cpu_ms"), r.get(peer, {}).get("cpu_ms")
            return f"{x / y:.2f} (vs {peer})" if x and y else "–"
        out.append(f"| {group} | {b:.3f} | {a:.3f} | {a / b:.2f} | {ratio(before)} "
                   f"| {ratio(after)} |" if b else f"| {group} | – | {a:.3f} | – | – "
                   f"| {ratio(after)} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    raw = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--scan", type=int, nargs="*", default=list(SCAN_STEPS))
    ap.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    ap.add_argument("--no-adam", dest="adam", action="store_false")
    ap.add_argument("--output", default=str(HERE / "JIT_PEERS.md"),
                    help="markdown file to write ('-' for stdout only)")
    ap.add_argument("--before", metavar="JSON",
                    help="a saved run (--save-json) of an earlier version: its fg.jit times "
                         "go beside this run's, and its tables follow")
    ap.add_argument("--save-json", metavar="JSON", help="keep this run's raw results")
    ap.add_argument("--render", metavar="JSON", help="only render a saved run")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    args = ap.parse_args(raw)
    if args.worker:
        worker(args)
        return
    command = "PYTHONPATH=. /work/bench-venv/bin/python benchmarks/jit_peers.py " + " ".join(raw)
    if args.render:
        res = json.loads(Path(args.render).read_text())
        text = render(res, res.get("command", command))
        before = json.loads(Path(args.before).read_text()) if args.before else None
        if before is not None:
            text = compare(before, res) + "\n" + text + "\n# Before\n\n" + render(
                before, before.get("command", "?")).split("\n", 1)[1]
        print(text)
        if args.output != "-":
            Path(args.output).write_text(text)
        return
    env = dict(os.environ, **ONE_THREAD)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--json", str(out),
               "--rounds", str(args.rounds), "--scan", *map(str, args.scan),
               "--tasks", *args.tasks] + ([] if args.adam else ["--no-adam"])
        done = subprocess.run(cmd, env=env)
        if not out.exists():
            sys.exit(f"the worker failed (exit {done.returncode}) before measuring anything")
        res = json.loads(out.read_text())
        if done.returncode != 0:
            res["note"] = f"the worker stopped early (exit {done.returncode}): partial results"

    res["command"] = command
    if args.save_json:
        Path(args.save_json).write_text(json.dumps(res, indent=1))
    text = render(res, command)
    if args.before:
        before = json.loads(Path(args.before).read_text())
        text = compare(before, res) + "\n" + text + "\n# Before\n\n" + render(
            before, before.get("command", "?")).split("\n", 1)[1]
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
