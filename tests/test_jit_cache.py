"""fg.jit's compiled runner and kernels are cached in the user's cache dir, never the package,
and a new process loads them instead of compiling again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("numba")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUN = """
import json
import numpy as np
import fungrad as fg
from fungrad.jit import jit
from fungrad.jit.backend import runner
from fungrad.kernels import _cache
f = jit(lambda x: fg.sum(fg.tanh(x) * 2.0 + 1.0))
assert abs(float(f(np.zeros(3))) - 3.0) < 1e-12
stats = runner.run.stats
print(json.dumps({"cache_path": stats.cache_path, "cache_dir": _cache.cache_dir(),
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def _run(tmp_path, pkg: str, cache: str) -> dict:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("FUNGRAD_CACHE_DIR", "NUMBA_CACHE_DIR", "PYTHONPATH")}
    environ.update(PYTHONPATH=pkg, FUNGRAD_CACHE_DIR=cache)
    done = subprocess.run([sys.executable, "-c", _RUN], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _numba_files(folder) -> list[str]:
    return [f for _, _, files in os.walk(folder) for f in files if f.endswith((".nbi", ".nbc"))]


def test_compiled_code_goes_to_the_user_cache_dir_and_is_loaded_by_the_next_process(tmp_path):
    pkg = tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "fungrad"), pkg / "fungrad",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    cache = str(tmp_path / "cache")
    first = _run(tmp_path, str(pkg), cache)
    second = _run(tmp_path, str(pkg), cache)
    assert first["cache_path"] == first["cache_dir"] and first["cache_path"].startswith(cache)
    assert (first["misses"], second["hits"], second["misses"]) == (1, 1, 0)
    names = _numba_files(cache)
    assert any(n.startswith("runner.run") for n in names)
    assert any(n.startswith("kernels_ew.") for n in names)  # the cfunc kernels too
    assert not _numba_files(pkg)
