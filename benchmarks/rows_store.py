"""The fused groups' row store, one walk (``kernels_ew._rows_store``, specialised on a literal
``add``) against the two copies of it it replaced (``_rows_out`` / ``_rows_add`` as of
241e2fe, read from git): best of 21 interleaved runs per case, ns per call,
and the count of 256-bit vector instructions in each caller's machine code.

    FUNGRAD_CACHE_DIR=/tmp/fgcache PYTHONPATH=. python benchmarks/rows_store.py
"""
import ast
import re
import subprocess
import time
from pathlib import Path

import numba
import numpy as np

from fungrad.jit.backend import kernels_ew as K

_row_at = K._row_at
NJ = dict(nogil=True, error_model="numpy")
BEFORE = "241e2fe"


def _old_pair():
    root = Path(__file__).resolve().parent.parent
    src = subprocess.check_output(["git", "show", f"{BEFORE}:fungrad/jit/backend/kernels_ew.py"],
                                  cwd=root, text=True)
    ns = {"numba": numba, "_row_at": _row_at, "_NJIT": NJ}
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef) and node.name in ("_rows_out", "_rows_add"):
            exec(ast.get_source_segment(src, node, padded=True).replace(
                "def ", "@numba.njit(**_NJIT)\ndef ", 1), ns)
    return ns["_rows_out"], ns["_rows_add"]


_rows_out, _rows_add = _old_pair()


@numba.njit(**NJ)
def bench_old(vals, dst, reps, nc, nr, s3, add):
    for _ in range(reps):
        if add:
            _rows_add(vals, dst, 0, nc * s3, 0, 0, s3, 1, 1, 0, nr, 0, nc)
        else:
            _rows_out(vals, dst, 0, nc * s3, 0, 0, s3, 1, 1, 0, nr, 0, nc)

@numba.njit(**NJ)
def bench_new(vals, dst, reps, nc, nr, s3, add):
    for _ in range(reps):
        walk = (0, nc * s3, 0, 0, s3, 1, 1, 0, nr, 0, nc)
        if add:
            K._rows_store(vals, dst, walk, True)
        else:
            K._rows_store(vals, dst, walk, False)

for dt in (np.float32, np.float64):
    vals = np.random.rand(4096).astype(dt); dst = np.zeros(4096 * 2, dt)
    for add in (False, True):
        for s3 in (1, 2):
            d1 = dst.copy(); d2 = dst.copy()
            bench_old(vals, d1, 3, 100, 7, s3, add); bench_new(vals, d2, 3, 100, 7, s3, add)
            assert np.array_equal(d1, d2)
    for nc, nr, s3 in ((64, 1, 1), (2048, 1, 1), (64, 1, 2), (16, 8, 1), (2048, 1, 2)):
        for add in (False, True):
            best = {"old": [], "new": []}
            reps = 2000000 // (nc * nr)
            for _ in range(21):
                for name, f in (("old", bench_old), ("new", bench_new)):
                    t0 = time.perf_counter(); f(vals, dst, reps, nc, nr, s3, add); best[name].append(time.perf_counter() - t0)
            o, n = min(best["old"]) / reps * 1e9, min(best["new"]) / reps * 1e9
            print(f"{np.dtype(dt).name} rows={nr} nc={nc} s3={s3} {'add' if add else 'put'}: pair {o:.1f} ns, merged {n:.1f} ns")
for name, f in (("pair", bench_old), ("merged", bench_new)):
    asm = "".join(f.inspect_asm().values())
    print(name, "256-bit vector instructions:", len(re.findall(r"\bv\w+\s[^\n]*ymm", asm)))
