"""Per-op overhead: forward + backward of one tiny op, in microseconds.

    python benchmarks/overhead.py [--calls 2000] [--repeat 15] [--output FILE]

Cases, on 4-element float32 arrays: ``(x * y).sum()`` with gradients w.r.t. x and y, and
``tanh(x).sum()`` with the gradient w.r.t. x.  Each library is used the way its users
differentiate: NumPy by hand (the floor: the same arithmetic, no engine), PyTorch and
fungrad with leaf tensors and ``.backward()`` (grads reset to None before each call),
fungrad's functional ``fg.grad``, and HIPS autograd's ``grad``.  A library that does not
import is skipped.  Single-threaded (thread variables are set before NumPy is imported).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import _steady_state  # noqa: F401 (first: timed rounds run compiled code, see its doc)
import numpy as np  # noqa: E402

X = np.array([0.5, -1.0, 2.0, 0.25], dtype=np.float32)
Y = np.array([1.5, 0.5, -0.75, 3.0], dtype=np.float32)


def numpy_cases() -> dict[str, Callable[[], object]]:
    """The same forward and backward arithmetic written by hand: the floor."""
    def mul_sum():
        out = (X * Y).sum()
        g = np.float32(1.0)
        return out, g * Y, g * X

    def tanh_sum():
        t = np.tanh(X)
        out = t.sum()
        return out, np.float32(1.0) * (1.0 - t * t)

    return {"mul+sum": mul_sum, "tanh+sum": tanh_sum}


def torch_cases() -> dict[str, Callable[[], object]]:
    import torch

    torch.set_num_threads(1)
    return _object_cases(torch.tensor(X, requires_grad=True),
                         torch.tensor(Y, requires_grad=True), torch.tanh)


def _object_cases(x, y, tanh) -> dict[str, Callable[[], object]]:
    """The two steps in the object style, the same code for PyTorch's tensors and fungrad's
    (``x``, ``y``: leaves that require grad; ``tanh``: the library's)."""
    def mul_sum():
        x.grad = y.grad = None
        (x * y).sum().backward()
        return x.grad, y.grad

    def tanh_sum():
        x.grad = None
        tanh(x).sum().backward()
        return x.grad

    return {"mul+sum": mul_sum, "tanh+sum": tanh_sum}


def autograd_cases() -> dict[str, Callable[[], object]]:
    import autograd.numpy as anp
    from autograd import grad

    g_mul = grad(lambda a, b: anp.sum(a * b), argnum=(0, 1))
    g_tanh = grad(lambda a: anp.sum(anp.tanh(a)))
    return {"mul+sum": lambda: g_mul(X, Y), "tanh+sum": lambda: g_tanh(X)}


def fungrad_cases() -> dict[str, Callable[[], object]]:
    import fungrad as fg
    from fungrad import Tensor

    return _object_cases(Tensor(X.copy(), autograd=True), Tensor(Y.copy(), autograd=True),
                         fg.tanh)


def fungrad_functional_cases() -> dict[str, Callable[[], object]]:
    import fungrad as fg

    g_mul = fg.grad(lambda a, b: fg.sum(a * b), argnums=(0, 1))
    g_tanh = fg.grad(lambda a: fg.sum(fg.tanh(a)))
    return {"mul+sum": lambda: g_mul(X, Y), "tanh+sum": lambda: g_tanh(X)}


LIBRARIES = {
    "NumPy by hand": numpy_cases,
    "PyTorch (.backward)": torch_cases,
    "HIPS autograd (grad)": autograd_cases,
    "fungrad (.backward)": fungrad_cases,
    "fungrad (fg.grad)": fungrad_functional_cases,
}


def measure(fn: Callable[[], object], calls: int, repeat: int) -> float:
    """Median over ``repeat`` batches of ``calls`` calls, in microseconds per call."""
    for _ in range(max(10, calls // 10)):
        fn()
    per_call = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        per_call.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(per_call)


def _header(args) -> list[str]:
    """Title, date, machine, versions and load, for a self-describing output file."""
    import datetime
    import platform
    from importlib import metadata

    libs = []
    for dist in ("numpy", "torch", "autograd", "fungrad"):
        try:
            libs.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    load = os.getloadavg()
    return [
        "# Per-op overhead (forward + backward of one tiny op)",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
        f"{platform.platform()}, {os.cpu_count()} logical CPUs, 1 thread; "
        f"load average {load[0]:.2f}",
        f"- Python {platform.python_version()}; {', '.join(libs)}",
        f"- 4-element float32 arrays; median over {args.repeat} batches of {args.calls} calls",
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per timed batch")
    ap.add_argument("--repeat", type=int, default=15, help="timed batches (median)")
    ap.add_argument("--output", help="also write the markdown table to this file ('-': only "
                    "print it, as run.py's --output -)")
    args = ap.parse_args()

    lines = ["| library | mul+sum fwd+bwd (µs) | tanh+sum fwd+bwd (µs) |", "|---|---:|---:|"]
    skipped = []
    for label, make in LIBRARIES.items():
        try:
            cases = make()
            cells = []
            for case in ("mul+sum", "tanh+sum"):
                cells.append(f"{measure(cases[case], args.calls, args.repeat):.1f}")
        except ImportError as exc:
            skipped.append(f"{label}: not importable ({exc})")
            continue
        except Exception as exc:  # an unfinished engine is reported, not fatal
            skipped.append(f"{label}: failed ({type(exc).__name__}: {exc})")
            continue
        lines.append(f"| {label} | {' | '.join(cells)} |")
    text = "\n".join(_header(args) + lines + [""] + [f"Skipped — {s}" for s in skipped])
    print(text)
    if args.output and args.output != "-":
        with open(args.output, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
