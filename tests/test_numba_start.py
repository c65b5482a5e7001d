"""fungrad starts Numba without importing SciPy's linear algebra (``fungrad/kernels/_numba_start``),
and a user's own Numba code that needs a BLAS still gets one.

Each test runs a fresh interpreter: what is imported is a property of the whole process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUN = """
import importlib.util, json, sys
import numpy as np
import fungrad as fg
from fungrad.kernels import scatter
scatter.scatter_add(3, np.array([0, 2, 0]), np.ones((3, 2)))  # an eager kernel, loaded or built
y = fg.jit(lambda x: fg.sum(fg.tanh(x * 2.0)))(np.ones(3, np.float32))
import numba.np.arraymath as arraymath
report = {"linalg_after_fungrad": "scipy.linalg" in sys.modules,
          "have_blas": arraymath._HAVE_BLAS,
          "scipy_linalg_exists": importlib.util.find_spec("scipy.linalg") is not None,
          "jit": float(y)}
import numba
@numba.njit
def user_code(a, b, u, v):
    return np.dot(a, b), np.correlate(u, v)
a = np.arange(6.0).reshape(2, 3)
u, v = np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0])
m, c = user_code(a, a.T, u, v)
report["dot_right"] = bool(np.allclose(m, a @ a.T))
report["correlate_right"] = bool(np.allclose(c, np.correlate(u, v)))
report["linalg_after_user_blas"] = "scipy.linalg" in sys.modules
print(json.dumps(report))
"""


def _report() -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_numba_starts_without_scipy_linalg_and_user_blas_code_still_works():
    report = _report()
    assert report["jit"] == pytest.approx(3 * np.tanh(2.0), rel=1e-6)
    # the answer Numba's own check would give, without importing the package
    assert report["have_blas"] == report["scipy_linalg_exists"]
    assert report["linalg_after_fungrad"] is False
    # a user's np.dot / np.correlate in @njit code: right, through SciPy's BLAS when present
    assert report["dot_right"] and report["correlate_right"]
    assert report["linalg_after_user_blas"] == report["scipy_linalg_exists"]


def test_another_thread_importing_scipy_linalg_meanwhile_is_not_refused():
    pytest.importorskip("scipy")
    from fungrad.kernels._numba_start import _RefuseScipyLinalg
    import threading

    refuse = _RefuseScipyLinalg()
    seen = []
    worker = threading.Thread(target=lambda: seen.append(refuse.find_spec("scipy.linalg")))
    worker.start()
    worker.join()
    assert seen == [None]  # another thread: let through to the real finders
    with pytest.raises(ImportError, match="deferred while Numba starts"):
        refuse.find_spec("scipy.linalg")
    assert refuse.find_spec("scipy.special") is None  # only scipy.linalg is refused


def test_docstring_example_runs():
    import doctest

    from fungrad.kernels import _numba_start

    result = doctest.testmod(_numba_start, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
