"""Numba's cache files for fungrad's kernels go to a per-user directory, never into the package.

Each test runs a fresh interpreter on a copy of the package, so that the cache directory is
chosen from that process's environment, as for a user.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

pytest.importorskip("numba")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# compiles one kernel and reports where Numba cached it
_RUN = """
import json, sys
import numpy as np
import fungrad
from fungrad.kernels import scatter, _cache
out = scatter.scatter_add(3, np.array([0, 2, 0]), np.ones((3, 2)))
assert out.tolist() == [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]], out
stats = scatter._scatter_add_kernel.stats
print(json.dumps({"cache_path": stats.cache_path, "cache_dir": _cache.cache_dir(),
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "package": fungrad.__file__}))
"""


def _copy_package(dest) -> str:
    """A copy of fungrad/ under ``dest`` (without caches); returns the folder to put on the path."""
    shutil.copytree(os.path.join(ROOT, "fungrad"), os.path.join(dest, "fungrad"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    return str(dest)


def _read_only(folder) -> None:
    for base, dirs, files in os.walk(folder):
        for name in files + dirs:
            path = os.path.join(base, name)
            os.chmod(path, os.stat(path).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    os.chmod(folder, os.stat(folder).st_mode & ~stat.S_IWUSR)


def _run(tmp_path, path_dir, code=_RUN, **env) -> dict:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("FUNGRAD_CACHE_DIR", "NUMBA_CACHE_DIR", "PYTHONPATH")}
    environ.update(PYTHONPATH=str(path_dir), **env)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=environ,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _numba_files(folder) -> list[str]:
    return [os.path.join(base, f) for base, _, files in os.walk(folder)
            for f in files if f.endswith((".nbi", ".nbc"))]


def test_a_read_only_package_caches_in_the_user_dir_and_reuses_it(tmp_path):
    pkg = _copy_package(tmp_path / "site")
    _read_only(os.path.join(pkg, "fungrad"))
    cache = tmp_path / "cache"
    try:
        first = _run(tmp_path, pkg, FUNGRAD_CACHE_DIR=str(cache))
        second = _run(tmp_path, pkg, FUNGRAD_CACHE_DIR=str(cache))
    finally:
        for base, _dirs, _ in os.walk(pkg):  # let tmp_path be cleaned up
            os.chmod(base, os.stat(base).st_mode | stat.S_IWUSR)
    assert first["package"].startswith(pkg)
    assert os.path.dirname(first["cache_path"]) == str(cache)
    assert os.path.basename(first["cache_path"]).startswith("kernels-")
    assert (first["misses"], second["hits"], second["misses"]) == (1, 1, 0)
    assert _numba_files(cache) and not _numba_files(pkg)


def test_two_copies_of_the_package_never_share_entries(tmp_path):
    cache = tmp_path / "cache"
    one = _run(tmp_path, _copy_package(tmp_path / "one"), FUNGRAD_CACHE_DIR=str(cache))
    edited = _copy_package(tmp_path / "two")
    with open(os.path.join(edited, "fungrad", "kernels", "scatter.py"), "a") as f:
        f.write("\n# a later version\n")
    two = _run(tmp_path, edited, FUNGRAD_CACHE_DIR=str(cache))
    assert one["cache_path"] != two["cache_path"] and two["misses"] == 1
    assert sorted(os.listdir(cache)) == sorted(
        os.path.basename(r["cache_path"]) for r in (one, two))


def test_the_default_dir_is_under_xdg_cache_home(tmp_path):
    pkg = _copy_package(tmp_path / "site")
    got = _run(tmp_path, pkg, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert os.path.dirname(got["cache_path"]) == str(tmp_path / "xdg" / "fungrad")
    assert _numba_files(tmp_path / "xdg") and not _numba_files(pkg)


def test_an_unwritable_cache_dir_still_works_uncached(tmp_path):
    pkg = _copy_package(tmp_path / "site")  # writable: it must still not be used
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    unwritable = str(blocker / "cache")  # cannot be created, not even by root
    first = _run(tmp_path, pkg, FUNGRAD_CACHE_DIR=unwritable)
    second = _run(tmp_path, pkg, FUNGRAD_CACHE_DIR=unwritable)
    assert not first["cache_path"].startswith(unwritable)
    assert not os.path.exists(first["cache_path"])  # the private directory went with its process
    assert (first["misses"], second["misses"], second["hits"]) == (1, 1, 0)
    assert not _numba_files(pkg) and not _numba_files(tmp_path / "elsewhere")


def test_the_users_own_numba_code_keeps_numbas_choice(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "mine.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    code = ("import json, os, sys; sys.path.insert(0, %r)\n" % str(user)
            + "from fungrad.kernels import scatter\nimport mine\nmine.twice(2.0)\n"
            "print(json.dumps({'cache_path': mine.twice.stats.cache_path,"
            " 'env': 'NUMBA_CACHE_DIR' in os.environ}))")
    got = _run(tmp_path, _copy_package(tmp_path / "site"), code,
               FUNGRAD_CACHE_DIR=str(tmp_path / "cache"))
    assert got == {"cache_path": str(user / "__pycache__"), "env": False}


def test_every_cached_numba_function_in_fungrad_uses_the_user_cache_dir():
    import importlib
    import pkgutil

    import numba

    import fungrad
    from fungrad.kernels import _cache

    checked = []
    for info in pkgutil.walk_packages(fungrad.__path__, "fungrad."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and \
                    type(obj._cache).__name__ != "NullCache":
                checked.append(f"{info.name}.{name}")
                # cache=True belongs in fungrad/kernels/, whose modules `from . import _cache`;
                # anywhere else Numba would write the cache into the installed package
                assert obj.stats.cache_path == _cache.cache_dir(), f"{info.name}.{name}"
    assert len(checked) >= 10, checked
