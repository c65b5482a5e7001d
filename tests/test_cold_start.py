"""Cold start: with an empty cache, first calls run NumPy while Numba builds in a background
process (fungrad.kernels._background); the next process loads what it built. Each cold path
runs in a new process with a fresh cache directory (the suite itself compiles in-process:
conftest sets FUNGRAD_BACKGROUND_BUILD=0)."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import warnings
from contextlib import redirect_stderr

import numpy as np
import pytest

pytest.importorskip("numba")

from fungrad.kernels import _background  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A user's program: eager kernels (softmax cross-entropy, SGD) and a jitted gradient step.
_COLD = r"""
import json, sys, time
from numba.core import event
compiled_here = []

class Count(event.Listener):
    def on_start(self, ev):
        pass
    def on_end(self, ev):
        compiled_here.append(ev.data["dispatcher"].py_func.__qualname__)

event.register("numba:compile", Count())
import numpy as np
import fungrad as fg
from fungrad.kernels import _background
from fungrad.kernels._cache import cache_dir

rng = np.random.default_rng(0)
w = rng.standard_normal((6, 3)).astype(np.float32)
x = rng.standard_normal((4, 6)).astype(np.float32)
y = np.array([0, 2, 1, 2])

def loss(w, x):
    return fg.cross_entropy(fg.tanh(x @ w), y)

step = fg.jit(fg.value_and_grad(loss))
eager = fg.value_and_grad(loss)
out = {}
v0, g0 = step(w, x)          # the first call: traced, run with NumPy
v_eager, g_eager = eager(w, x)
out["builder_at_first_call"] = _background.running() is not None
variant = step._cache[next(iter(step._cache))][0]
out["warming_at_first_call"] = bool(variant.warming)
deadline = time.time() + 900
while (variant.warming or _background.running() is not None) and time.time() < deadline:
    step(w, x)               # calls go on meanwhile
    time.sleep(0.05)
v1, g1 = step(w, x)          # compiled
out["switched"] = type(variant.run).__name__
out["diff_first_eager"] = float(np.abs(np.asarray(g0) - np.asarray(g_eager)).max())
out["diff_compiled_first"] = float(np.abs(np.asarray(g1) - np.asarray(g0)).max())
out["loss"] = [float(v0), float(v1), float(v_eager)]
out["compiled_here"] = compiled_here
out["cache_dir"] = cache_dir()
print(json.dumps(out))
"""


def _python(code: str, cache: str, background: str = "1", timeout: int = 1200) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FUNGRAD_CACHE_DIR", "NUMBA_CACHE_DIR")}
    env.update(FUNGRAD_CACHE_DIR=cache, FUNGRAD_BACKGROUND_BUILD=background,
               PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_cold_process_runs_numpy_while_numba_builds_and_the_next_loads_it(tmp_path):
    cache = str(tmp_path / "cache")
    cold = _python(_COLD, cache)
    # the first call did not wait: a builder ran, the program ran with NumPy meanwhile
    assert cold["builder_at_first_call"] and cold["warming_at_first_call"]
    assert cold["switched"] == "Executable"
    # nothing compiled in the calling process: the builder did it, the caller loaded it
    assert cold["compiled_here"] == []
    assert cold["diff_first_eager"] == 0.0  # NumPy steps: eager's own numbers
    assert cold["diff_compiled_first"] < 1e-5  # compiled: the same up to float32 rounding
    assert cold["loss"][0] == cold["loss"][2]
    assert abs(cold["loss"][1] - cold["loss"][0]) < 1e-5
    # the builder wrote into this process's own (private) directory
    assert cold["cache_dir"].startswith(cache)
    assert stat.S_IMODE(os.stat(cold["cache_dir"]).st_mode) == 0o700
    names = os.listdir(cold["cache_dir"])
    assert any(n.startswith("runner.run") for n in names)
    assert any(n.startswith("softmax._softmax_xent_forward_kernel") for n in names)
    # a new process finds everything on disk: no builder, compiled from the first call
    warm = _python(_COLD, cache)
    assert not warm["builder_at_first_call"] and not warm["warming_at_first_call"]
    assert warm["compiled_here"] == []


def test_with_the_background_build_off_the_first_call_compiles_here(tmp_path):
    code = _COLD.replace("v0, g0 = step(w, x)", "v0, g0 = step(w, x)\nassert not _background.enabled()")
    out = _python(code, str(tmp_path / "cache"), background="0")
    assert not out["builder_at_first_call"] and not out["warming_at_first_call"]
    assert "run" in out["compiled_here"]  # the runner, compiled in this process


def test_the_builder_refuses_a_directory_others_can_write(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    job = json.dumps({"cache_dir": str(shared), "specs": [
        ["fungrad.jit.backend.runner", "compile_runner", []]]})
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from fungrad.kernels._background import main; main()")
    done = subprocess.run([sys.executable, "-c", code, ROOT], input=job, text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 2
    assert "writable by other users" in done.stderr
    assert os.listdir(shared) == []


def test_a_failed_build_warns_once_and_leaves_compiling_to_the_caller(monkeypatch, tmp_path):
    monkeypatch.setenv(_background.ENV_VAR, "1")
    builder = _background._Builder()
    monkeypatch.setattr(_background, "_BUILDER", builder)
    spec = ("fungrad.no_such_module", "compile", [])
    _background.request([spec])
    assert _background.running() is not None
    builder.proc.wait(timeout=300)
    with pytest.warns(RuntimeWarning, match="background Numba build failed.*no_such_module"):
        assert _background.finished([spec])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _background.request([("fungrad.other", "compile", [])])  # no builder any more
        assert _background.finished([("fungrad.other", "compile", [])])
        assert _background.running() is None


@pytest.mark.parametrize("value", [np.zeros((2, 3), np.float32), np.zeros(4, np.int64),
                                   np.zeros((2, 2, 2), np.float64)[:, 0], np.float32(1.5), 3,
                                   2.5, True, np.zeros(3, np.bool_)])
def test_argument_types_travel_to_the_builder_and_back(value):
    from numba import typeof

    t = typeof(value)
    described = _background._describe(t)
    assert described is not None
    assert _background._rebuild(json.loads(json.dumps(described))) == t


def test_an_entry_point_runs_its_twin_while_its_kernel_is_not_built():
    calls = []

    def kernel_not_built(x):
        calls.append("entry")
        raise _background.NotBuilt("k")

    entry = _background.with_twin("twin_of_it")(kernel_not_built)
    mod = sys.modules[__name__]
    mod.twin_of_it = lambda x: calls.append("twin") or x * 2  # type: ignore[attr-defined]
    try:
        assert entry(21) == 42
    finally:
        del mod.twin_of_it  # type: ignore[attr-defined]
    assert calls == ["entry", "twin"]
    assert entry.__name__ == "kernel_not_built" and entry.__module__ == __name__


def test_the_still_compiling_notice_says_what_it_is_doing_once(monkeypatch):
    from fungrad.jit import api

    monkeypatch.setattr(api, "_cold_notice", [False])
    f = api.Jitted(lambda x: x, backend="compiled")
    f._status[0] = "building Numba kernel matmul[float32] (none in the disk cache)"
    err = io.StringIO()
    with redirect_stderr(err):
        f._cold_notice()
        f._cold_notice()
    text = err.getvalue()
    assert text.count("\n") == 1
    assert "still at it after 2 s" in text
    assert "building Numba kernel matmul[float32] (none in the disk cache)" in text
