"""fg.checkpoint's memory: the backward pass's peak with and without rematerialization.

    python benchmarks/checkpoint_memory.py [--layers 2000] [--size 4096] [--every 50]

An RNN-like chain with shared weights, ``h = tanh(h * w + b)`` for ``--layers`` layers of
``--size``-vectors (``w`` and ``b`` shared by every layer), loss ``sum(h * h)``; the
checkpointed variant wraps every ``--every`` layers in one ``fg.checkpoint``. Each variant runs
in a process of its own, in both styles:

- *object*: ``w``, ``b`` Tensors with ``autograd=True``, the forward, then ``loss.backward()``;
- *functional*: ``fg.grad(loss, argnums=(0, 1))(w, b)``, forward and backward in one call;
- *jit*: the same under ``fg.jit``; its "backward peak" is the size of the buffers the
  compiled program holds (internal, fresh and loop-window buffers: they are allocated once,
  so tracemalloc sees none of them during a call) — the checkpointed program's gradients are
  compared with the plain compiled program's.

Reported per run: tracemalloc's peak during the backward pass (object style: from just before
``backward()``, so it counts the graph the forward left, which the backward reads, to its end;
functional style: over the whole ``fg.grad`` call, forward included), the process's peak
resident memory (which also holds the interpreter, NumPy and the weights) and its growth over
the resident memory just before the forward pass, and the wall time. The gradients of the two
variants are compared bit for bit (float64). Ratios are checkpointed / plain.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np

_WORKER = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
import fungrad as fg

layers, size, every, variant, style, out = sys.argv[1:7]
layers, size, every = int(layers), int(size), int(every)
rng = np.random.default_rng(0)
w0 = rng.uniform(0.5, 1.0, size)
b0 = rng.uniform(-0.1, 0.1, size)
h0 = rng.standard_normal(size)

def segment(h, w, b, n):
    for _ in range(n):
        h = fg.tanh(h * w + b)
    return h

def loss(w, b):
    h = h0
    if variant == "plain":
        h = segment(h, w, b, layers)
    else:
        block = fg.checkpoint(lambda h, w, b, n: segment(h, w, b, n))
        done = 0
        while done < layers:
            n = min(every, layers - done)
            h = block(h, w, b, n)
            done += n
    return fg.sum(h * h)

def rss_mib():  # resident memory now (Linux), to take the interpreter's own out of the peak
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

base_rss = rss_mib()
tracemalloc.start()
t0 = time.perf_counter()
if style == "object":
    w, b = fg.Tensor(w0, autograd=True), fg.Tensor(b0, autograd=True)
    value = loss(w, b)
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    value.backward()
    backward_peak = tracemalloc.get_traced_memory()[1]
    grads = (w.grad.data, b.grad.data)
elif style == "jit":  # the buffers the compiled program holds while it runs
    before = 0
    jitted = fg.jit(fg.grad(loss, argnums=(0, 1)))
    grads = jitted(w0, b0)
    (variant_,) = [v for vs in jitted._cache.values() for v in vs]
    backward_peak = sum(b.size * b.dtype.itemsize for b in variant_.run.plan.buffers
                        if b.kind in ("internal", "fresh", "window"))
else:
    before = 0
    grads = fg.grad(loss, argnums=(0, 1))(w0, b0)
    backward_peak = tracemalloc.get_traced_memory()[1]
seconds = time.perf_counter() - t0
total_peak = tracemalloc.get_traced_memory()[1]
np.savez(out, *grads)
print(json.dumps({"backward_peak_mib": backward_peak / 2**20,
                  "graph_at_backward_mib": before / 2**20,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_growth_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                  - base_rss,
                  "seconds": seconds}))
"""


def run(layers: int, size: int, every: int, variant: str, style: str, out: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, str(layers), str(size), str(every), variant, style, out],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode:
        raise SystemExit(f"{variant}/{style} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    print(f"chain of {args.layers} layers h = tanh(h * w + b), {args.size}-vectors, shared w "
          f"and b, float64; checkpointed every {args.every} layers; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| style | variant | backward peak (MiB) | graph held at backward (MiB) | "
          "peak RSS (MiB) | peak RSS growth (MiB) | time (s) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for style in ("object", "functional", "jit"):
            results, grads = {}, {}
            for variant in ("plain", "checkpointed"):
                path = os.path.join(tmp, f"{style}_{variant}.npz")
                r = results[variant] = run(args.layers, args.size, args.every, variant, style,
                                           path)
                with np.load(path) as z:
                    grads[variant] = [z[k] for k in sorted(z.files)]
                held = f"{r['graph_at_backward_mib']:.1f}" if style == "object" else "-"
                print(f"| {style} | {variant} | {r['backward_peak_mib']:.1f} | {held} | "
                      f"{r['peak_rss_mib']:.0f} | {r['rss_growth_mib']:.0f} | "
                      f"{r['seconds']:.2f} |")
            p, c = results["plain"], results["checkpointed"]
            same = all(np.array_equal(a, b) for a, b in zip(grads["plain"],
                                                            grads["checkpointed"]))
            ratio = c["backward_peak_mib"] / p["backward_peak_mib"]
            growth = c["rss_growth_mib"] / p["rss_growth_mib"]
            print(f"| {style} | **ratio** | **{ratio:.3f}x** "
                  f"| | {c['peak_rss_mib'] / p['peak_rss_mib']:.3f}x | {growth:.3f}x | "
                  f"{c['seconds'] / p['seconds']:.2f}x |")
            print(f"\n{style}: gradients bit-identical (float64): {same}\n")


if __name__ == "__main__":
    main()
