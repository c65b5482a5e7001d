"""Benchmark fungrad's Numba kernels against their NumPy twins (and np.add.at for scatter).

    python benchmarks/kernels_bench.py [--quick]

For every kernel entry point: first-call time in a fresh process with a cold Numba cache
(``NUMBA_CACHE_DIR`` = a new temporary directory) and again in a second process with that
cache warm; then the median per-call time of kernel and twin at realistic shapes, timed
interleaved (kernel, twin, kernel, ... in rotating order) so machine noise hits both alike.
Both sides are the entry points the ops call (no argument checks: the ops check once).
Prints a markdown table and writes it to ``benchmarks/KERNELS.md``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------------- inputs


def make_cases(rng: np.random.Generator):
    """[(function name, shape label, dtype name, kernel thunk, twin thunk, extra baselines)]."""
    from fungrad.kernels import activations, bags, optim, recurrent, reduce, scatter, softmax

    cases = []

    def bind(f, args):
        return lambda: f(*args)

    def pair(module, fn, args):
        return bind(getattr(module, fn), args), bind(getattr(module, fn + "_numpy"), args)

    def add(name, label, dtype, kernel, twin, **extra):
        cases.append((name, label, np.dtype(dtype).name, kernel, twin, extra))

    for dtype in (np.float32, np.float64):
        _scatter_cases(rng, dtype, add, scatter)
        _bag_cases(rng, dtype, add, pair, bags)

        for n, c in ((128, 10), (32, 65), (128, 1000), (32, 10000)):
            x = (rng.standard_normal((n, c)) * 3).astype(dtype)
            t = rng.integers(0, c, n)
            probs = softmax.softmax_forward_numpy(x)
            for fn, args in (("softmax_xent_forward", (x, t)),
                             ("softmax_xent_backward", (probs, t, 1.0)),
                             ("softmax_forward", (x,))):
                add(fn, f"{n}x{c}", dtype, *pair(softmax, fn, args))

        for shape in ((128, 256), (32, 128)):
            x = rng.standard_normal(shape).astype(dtype)
            add("sigmoid_forward", "x".join(map(str, shape)), dtype,
                *pair(activations, "sigmoid_forward", (x,)))
        _removed_activation_cases(rng, dtype, add)

        for shape in ((784, 256), (256,)):
            grad = (rng.standard_normal(shape) * 0.01).astype(dtype)
            label = "x".join(map(str, shape))

            def state(shape=shape, dtype=dtype):
                return [np.zeros(shape, dtype) for _ in range(3)]

            sk, st = state(), state()  # param, velocity, spare: one set per side
            add("sgd_update", label + " mom=0.9", dtype,
                lambda s=sk, g=grad: optim.sgd_update(s[0], g, 0.01, 0.9, s[1]),
                lambda s=st, g=grad: optim.sgd_update_numpy(s[0], g, 0.01, 0.9, s[1]))
            add("sgd_update", label + " mom=0", dtype,
                lambda s=sk, g=grad: optim.sgd_update(s[0], g, 0.01),
                lambda s=st, g=grad: optim.sgd_update_numpy(s[0], g, 0.01))
            ak, at = state(), state()
            add("adam_update", label, dtype,
                lambda s=ak, g=grad: optim.adam_update(s[0], g, s[1], s[2], 10, lr=1e-3),
                lambda s=at, g=grad: optim.adam_update_numpy(s[0], g, s[1], s[2], 10, lr=1e-3))

        for b, h in ((32, 128), (32, 16), (100, 16)):
            gates = rng.standard_normal((b, 4 * h)).astype(dtype)
            c_prev, dh, dc = (rng.standard_normal((b, h)).astype(dtype) for _ in range(3))
            acts, c, hh = np.empty_like(gates), np.empty_like(c_prev), np.empty_like(c_prev)
            recurrent.lstm_forward_step_numpy(gates, c_prev, acts, c, hh)
            tc, dgates, dcp = np.tanh(c), np.empty_like(gates), np.empty_like(c)
            for fn, args in (("lstm_forward_step", (gates, c_prev, np.empty_like(gates),
                                                    np.empty_like(c), np.empty_like(c))),
                             ("lstm_backward_step", (dh, dc, acts, c_prev, tc, dgates, dcp))):
                add(fn, f"B={b} H={h}", dtype, *pair(recurrent, fn, args))

        for shape, label in (((1, 128, 256), "(128, 256)->(256,)"),
                             ((1, 100, 16), "(100, 16)->(16,)"),
                             ((1, 32, 65), "(32, 65)->(65,)"),
                             ((1, 800, 512), "(800, 512)->(512,)"),
                             ((1, 512, 128), "(32, 16, 128)->(128,)"),
                             ((8, 32, 64), "(8, 32, 64)->(8, 1, 64)")):
            x = rng.standard_normal(shape).astype(dtype)
            add("sum_middle", label, dtype, *pair(reduce, "sum_middle", (x,)),
                **{"np.sum over the axes": lambda x=x: x.sum(axis=1)})
    return cases


def _scatter_cases(rng, dtype, add, scatter):
    for n_rows, n_ids, d in ((20000, 100_000, 64), (20000, 8192, 64), (82, 192, 16)):
        idx = rng.integers(0, n_rows, n_ids)
        vals = rng.standard_normal((n_ids, d)).astype(dtype)

        def add_at_rows(n_rows=n_rows, idx=idx, vals=vals):
            out = np.zeros((n_rows, vals.shape[1]), vals.dtype)
            np.add.at(out, idx, vals)
            return out

        def bincount_flat(n_rows=n_rows, idx=idx, vals=vals, d=d):
            flat = (idx[:, None] * d + np.arange(d)).ravel()
            out = np.bincount(flat, weights=vals.ravel(), minlength=n_rows * d)
            return out.reshape(n_rows, d).astype(vals.dtype, copy=False)

        def sort_reduceat(n_rows=n_rows, idx=idx, vals=vals):
            out = np.zeros((n_rows, vals.shape[1]), vals.dtype)
            order = np.argsort(idx, kind="stable")
            s = idx[order]
            starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
            out[s[starts]] = np.add.reduceat(vals[order], starts, axis=0)
            return out

        add("scatter_add", f"{n_ids} ids -> {n_rows}x{d}", dtype,
            lambda a=(n_rows, idx, vals): scatter.scatter_add(*a),
            lambda a=(n_rows, idx, vals): scatter.scatter_add_numpy(*a),
            **{"np.add.at rows": add_at_rows, "bincount flat": bincount_flat,
               "sort+reduceat": sort_reduceat})


def _bag_cases(rng, dtype, add, pair, bags):
    """embed_ce's (512, 16) bags of a 20000x64 table, and a babi-sized one."""
    for n_rows, d, n_bags, length in ((20000, 64, 512, 16), (20, 16, 100, 5)):
        table = rng.standard_normal((n_rows, d)).astype(dtype)
        idx = rng.integers(0, n_rows, (n_bags, length))
        g = rng.standard_normal((n_bags, d)).astype(dtype)
        label = f"{n_bags}x{length} of {n_rows}x{d}"
        add("bag_sum", label, dtype, *pair(bags, "bag_sum", (table, idx, 1.0)),
            **{"take + sum(1)": lambda t=table, i=idx: t.take(i, axis=0).sum(1)})
        add("bag_scatter", label, dtype, *pair(bags, "bag_scatter", (n_rows, idx, g, 1.0)))


def _removed_activation_cases(rng, dtype, add):
    """What a fused tanh backward would save over the NumPy VJP (removed: see activations)."""
    import numba

    @numba.njit(nogil=True, error_model="numpy")
    def tanh_backward(g, out):
        res = np.empty_like(g)
        for i in range(g.shape[0]):
            res[i] = g[i] * (1 - out[i] * out[i])
        return res

    for shape in ((64,), (100, 16), (128, 256)):
        g = rng.standard_normal(shape).astype(dtype)
        y = np.tanh(rng.standard_normal(shape)).astype(dtype)
        add("tanh_backward (removed)", "x".join(map(str, shape)), dtype,
            lambda g=g, y=y: tanh_backward(g.reshape(-1), y.reshape(-1)).reshape(g.shape),
            lambda g=g, y=y: g * (1 - y * y))


# --------------------------------------------------------------------------- timing


def per_call_seconds(fn, target=0.001) -> int:
    """Number of calls that take about ``target`` seconds."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target / 4 or n >= 1 << 16:
            return max(1, int(n * target / max(dt, 1e-9)))
        n *= 4


def interleaved(fns: dict, repeats: int) -> dict:
    """Seconds per call of each function in each round; rounds run the functions in rotating
    order, so a burst of load from other processes hits every candidate alike."""
    numbers = {k: per_call_seconds(f) for k, f in fns.items()}
    times = {k: [] for k in fns}
    keys = list(fns)
    for r in range(repeats):
        for k in keys[r % len(keys):] + keys[: r % len(keys)]:
            f, n = fns[k], numbers[k]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            times[k].append((time.perf_counter() - t0) / n)
    return times


# --------------------------------------------------------------------------- compile times

COMPILE_PROBE = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
import numba
from fungrad.kernels import activations, bags, optim, recurrent, reduce, scatter, softmax
t_import = time.perf_counter() - t0
numba.njit(lambda x: x + 1)(1)  # initialise LLVM outside the timings
x, g = np.random.rand(8, 16), np.random.rand(8, 16)
t = np.arange(8) % 16
calls = {
    "scatter_add": lambda: scatter.scatter_add(10, t, x),
    "bag_sum": lambda: bags.bag_sum(x, t.reshape(2, 4), 1.0),
    "bag_scatter": lambda: bags.bag_scatter(10, t.reshape(2, 4), g[:2], 1.0),
    "softmax_xent_forward": lambda: softmax.softmax_xent_forward(x, t),
    "softmax_xent_backward": lambda: softmax.softmax_xent_backward(x, t, 1.0),
    "softmax_forward": lambda: softmax.softmax_forward(x),
    "sigmoid_forward": lambda: activations.sigmoid_forward(x),
    "sgd_update": lambda: (optim.sgd_update(x.copy(), g, 0.1),
                           optim.sgd_update(x.copy(), g, 0.1, 0.9, np.zeros_like(x))),
    "adam_update": lambda: optim.adam_update(x.copy(), g, np.zeros_like(x), np.zeros_like(x), 1),
    "lstm_forward_step": lambda: recurrent.lstm_forward_step(
        x, x[:, :4].copy(), np.empty_like(x), np.empty((8, 4)), np.empty((8, 4))),
    "lstm_backward_step": lambda: recurrent.lstm_backward_step(
        *(np.ones((8, 4)) for _ in range(2)), x, *(np.ones((8, 4)) for _ in range(2)),
        np.empty_like(x), np.empty((8, 4))),
    "sum_middle": lambda: reduce.sum_middle(x.reshape(1, 8, 16)),
}
out = {"import numba + kernels": t_import}
for name, call in calls.items():
    t0 = time.perf_counter()
    call()
    out[name] = time.perf_counter() - t0
print(json.dumps(out))
"""


def compile_times() -> tuple[dict, dict]:
    """First-call seconds (float64 signature) with a cold, then a warm Numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, NUMBA_NUM_THREADS="1",
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        runs = []
        for _ in range(2):
            proc = subprocess.run([sys.executable, "-c", COMPILE_PROBE], env=env, cwd=ROOT,
                                  capture_output=True, text=True, check=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return runs[0], runs[1]


# --------------------------------------------------------------------------- report


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 100 else f"{us:,.0f}"


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    repeats = 7 if quick else 61
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    cold, warm = compile_times()
    cases = make_cases(rng)

    rows = []
    for name, label, dtype, kernel, twin, extra in cases:
        times = interleaved({"kernel": kernel, "twin": twin, **extra}, repeats)
        med = {k: float(np.median(v)) for k, v in times.items()}
        # Median of the per-round ratios: each ratio compares two batches timed moments apart.
        speedup = float(np.median(np.array(times["twin"]) / np.array(times["kernel"])))
        verdict = "kernel" if speedup >= 1.1 else ("twin" if speedup <= 0.9 else "tie")
        others = ", ".join(
            f"{k} {fmt_us(v)}" for k, v in med.items() if k not in ("kernel", "twin")
        )
        rows.append(f"| {name} | {label} | {dtype} | {fmt_us(med['kernel'])} | "
                    f"{fmt_us(med['twin'])} | {speedup:.2f} | {verdict} | {others} |")
        print(rows[-1], flush=True)
    load_after = os.getloadavg()

    lines = [
        "# fungrad kernels: Numba vs NumPy twin",
        "",
        (
            f"Run {datetime.datetime.now().isoformat(timespec='seconds')} on "
            f"{platform.platform()}, {platform.processor() or platform.machine()}, "
            f"os.cpu_count()={os.cpu_count()}, Python {platform.python_version()}, "
            f"NumPy {np.__version__}, Numba {__import__('numba').__version__}, "
            f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}. Load average (1 min) "
            f"{load_before[0]:.2f} before, {load_after[0]:.2f} after: other jobs shared the "
            "2 cores, so single ratios near 1 are noise."
        ),
        "",
        (
            f"Median µs per call over {repeats} interleaved batches of the entry points the "
            "ops call (the ops check arguments once, before). speedup = median over rounds of "
            "twin / kernel "
            "(the two batches of a round run back to back); verdict: kernel if >= 1.1, "
            "twin if <= 0.9, else tie (within noise on this machine). The last column times "
            "other NumPy formulations; the scatter twins are the flat-index `np.add.at`. "
            "`tanh_backward (removed)` compares a throwaway fused kernel with the NumPy VJP "
            "`g * (1 - y * y)` that the tanh op keeps: see `fungrad/kernels/activations.py`."
        ),
        "",
        "| function | shape | dtype | kernel µs | twin µs | speedup | verdict | other NumPy µs |",
        "|---|---|---|---:|---:|---:|---|---|",
        *rows,
        "",
        "## First call (compile) time, float64 signature, seconds",
        "",
        "Fresh process each; cold = empty `NUMBA_CACHE_DIR`, warm = second process, same dir.",
        "",
        "| function | cold cache | warm cache |",
        "|---|---:|---:|",
        *(f"| {k} | {cold[k]:.3f} | {warm[k]:.3f} |" for k in cold),
        "",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    (ROOT / "benchmarks" / "KERNELS.md").write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
