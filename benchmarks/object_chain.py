"""The 6,000-Tensor object-style chain (deep_chain: 3000 layers, a ``w`` and ``b`` Tensor each,
``loss.backward()`` and ``SGD.step()``) under ``fg.jit`` against JAX's ``lax.scan`` step,
interleaved in one process (1 thread): 30 rounds of 5 steps each, medians of wall and CPU
time per step. ``prof`` as an argument adds a cProfile of 200 fg.jit steps; ``nojax`` leaves
JAX out.

    FUNGRAD_CACHE_DIR=<warm dir> PYTHONPATH=. python benchmarks/object_chain.py [prof] [nojax]
"""
import os, sys, time, statistics
os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("NUMBA_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
from tasks import deep_chain as D
prob = D.make_problem(0)
impls = {"fungrad_jit": D.fungrad_jit_step(prob)}
if "nojax" not in sys.argv:
    impls["jax"] = D.jax_step(prob)
for k, im in impls.items():
    t = time.perf_counter(); im.step(); im.step(); im.step(); print(k, "warm", round(time.perf_counter() - t, 2), flush=True)
times = {k: [] for k in impls}
cpu = {k: [] for k in impls}
for r in range(30):
    for k, im in impls.items():
        t = time.perf_counter(); c = time.process_time()
        for _ in range(5): im.step()
        times[k].append((time.perf_counter() - t) / 5); cpu[k].append((time.process_time() - c) / 5)
for k in impls:
    print(k, "median ms wall %.3f cpu %.3f" % (statistics.median(times[k]) * 1e3, statistics.median(cpu[k]) * 1e3))
print("load", os.getloadavg())
if "prof" in sys.argv:
    import cProfile, pstats
    im = impls["fungrad_jit"]
    cProfile.run("for _ in range(200): im.step()", "object_chain.prof")
    pstats.Stats("object_chain.prof").sort_stats("tottime").print_stats(25)
