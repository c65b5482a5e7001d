"""The unrolled chain as a process's *first* fg.jit call: Numba's start, the trace and the
compile in one number (``compile_cost.py`` makes a tiny jitted call first and reports the
chain's call apart from that start).

    cd <tree> && FUNGRAD_CACHE_DIR=<warm dir> PYTHONPATH=. python benchmarks/first_call.py \\
        [--layers 3000] [--label main]

Prints one line: the seconds to import fungrad and build the chain, the first call's wall and
CPU seconds, and the second call's milliseconds. Run it once first to warm the cache, and
alternate trees in the same minutes to compare them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=3000, help="layers of the chain (default 3000)")
    ap.add_argument("--label", default=os.getcwd(), help="printed first (default: the cwd)")
    args = ap.parse_args()
    import _steady_state  # noqa: F401 (before fungrad: the build in this process)

    t0, c0 = time.perf_counter(), time.process_time()
    from trace_cost import make  # (imports fungrad)
    step, params = make(args.layers)
    t1, c1 = time.perf_counter(), time.process_time()
    step(params)
    t2, c2 = time.perf_counter(), time.process_time()
    step(params)
    t3 = time.perf_counter()
    print(f"{args.label}: import and build {t1 - t0:.2f} s; first call {t2 - t1:.2f} s wall, "
          f"{c2 - c1:.2f} s CPU; second call {1e3 * (t3 - t2):.2f} ms")


if __name__ == "__main__":
    main()
