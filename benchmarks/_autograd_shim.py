"""Run one HIPS autograd example, with upstream autograd or with fungrad behind a renaming shim.

    python benchmarks/_autograd_shim.py upstream|fungrad path/to/example.py

``fungrad`` installs an import hook (``sys.meta_path``) under which ``import autograd.X`` gives
fungrad's module of the same role; only where autograd's *names* differ does the hook build a
small module that renames (``grad(f, argnum)`` -> ``fg.grad(f, argnums)``,
``hessian_vector_product`` -> ``fg.hvp``, ``autograd.builtins.tuple`` -> ``tuple``). Nothing in
an example is changed. ``autograd.tracer`` is ``fungrad.extend`` (its Node and trace); names
with no fungrad counterpart (Box, VSpace: autograd's internals) are missing, so the examples
that use them fail honestly.

Both modes count every gradient the example takes and how many of them were exactly zero in
every leaf (a detached graph gives zeros, not an error): the runner prints
``[shim] gradients: N taken, Z all-zero`` on stderr at exit, so the harness can compare the
two libraries on it. autograd is a benchmark extra, never imported by fungrad itself.
"""
from __future__ import annotations

import atexit
import importlib
import importlib.abc
import importlib.util
import os
import runpy
import signal
import sys
import types
from typing import Any

import numpy as onp

COUNTS = {"taken": 0, "zero": 0}


def _leaves(tree: Any) -> list:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _leaves(v)]
    if isinstance(tree, (list, tuple)):
        return [x for v in tree for x in _leaves(v)]
    return [tree]


def _record(g: Any) -> Any:
    """Count one gradient, and whether every leaf of it is exactly zero."""
    COUNTS["taken"] += 1
    leaves = [onp.asarray(getattr(x, "data", x)) for x in _leaves(g)]
    if leaves and all(not onp.any(x) for x in leaves):
        COUNTS["zero"] += 1
    return g


def _counting(make: Any, which: int | None = None) -> Any:
    """Wrap a gradient transform so that each gradient it returns is counted."""
    def transform(*targs: Any, **tkw: Any) -> Any:
        f = make(*targs, **tkw)

        def run(*args: Any, **kwargs: Any) -> Any:
            out = f(*args, **kwargs)
            if which is None:
                return _record(out)
            _record(out[which])
            return out
        return run
    return transform


def _report() -> None:
    print(f"[shim] gradients: {COUNTS['taken']} taken, {COUNTS['zero']} all-zero",
          file=sys.stderr)


# --- fungrad under autograd's names ---------------------------------------------------------

MAP = {
    "autograd.numpy": "fungrad.numpy",
    "autograd.numpy.linalg": "fungrad.numpy.linalg",
    "autograd.numpy.fft": "fungrad.numpy.fft",
    "autograd.numpy.random": "numpy.random",  # draws have no derivative, as in autograd
    "autograd.scipy": "fungrad.scipy",
    "autograd.scipy.special": "fungrad.scipy.special",
    "autograd.scipy.linalg": "fungrad.scipy.linalg",
    "autograd.scipy.signal": "fungrad.scipy.signal",
    "autograd.scipy.integrate": "fungrad.scipy.integrate",
    "autograd.scipy.stats": "fungrad.scipy.stats",
    "autograd.extend": "fungrad.extend",
    "autograd.tracer": "fungrad.extend",  # Node and trace (Box and VSpace have no counterpart)
    "autograd.misc": "fungrad.misc",
    "autograd.misc.fixed_points": "fungrad.misc.fixed_points",
    "autograd.misc.optimizers": "fungrad.misc.optimizers",
    "autograd.misc.flatten": "fungrad.misc.flatten",
}
for _d in ["norm", "t", "poisson", "gamma", "beta", "chi2", "dirichlet", "multivariate_normal",
           "bernoulli", "binom", "laplace", "expon", "uniform", "lognorm", "cauchy"]:
    MAP[f"autograd.scipy.stats.{_d}"] = f"fungrad.scipy.stats.{_d}"


def _top() -> types.ModuleType:
    """``autograd``: its transforms, renamed to fungrad's (``argnum`` -> ``argnums``)."""
    import fungrad as fg
    m = types.ModuleType("autograd")
    m.__path__ = []  # a package, so that autograd.numpy etc. resolve through the hook

    def renamed(fun: Any) -> Any:
        return lambda f, argnum=0, **kw: fun(f, argnums=argnum, **kw)
    m.grad = _counting(renamed(fg.grad))
    m.value_and_grad = _counting(renamed(fg.value_and_grad), which=1)
    m.elementwise_grad = _counting(renamed(fg.elementwise_grad))
    m.jacobian, m.hessian = renamed(fg.jacobian), renamed(fg.hessian)
    m.hessian_vector_product = m.hessian_tensor_product = renamed(fg.hvp)
    return m


def _builtins() -> types.ModuleType:
    m = types.ModuleType("autograd.builtins")  # fungrad's containers are Python's own
    m.tuple, m.list, m.dict, m.isinstance, m.type = tuple, list, dict, isinstance, type
    return m


def _test_util() -> types.ModuleType:
    from fungrad.testing import check_grads as fg_check
    m = types.ModuleType("autograd.test_util")

    def check_grads(f: Any, argnum: int = 0, modes: Any = ("fwd", "rev"), order: int = 2) -> Any:
        def run(*args: Any, **kwargs: Any) -> None:
            def g(x: Any) -> Any:
                a = list(args)
                a[argnum] = x
                return f(*a, **kwargs)
            fg_check(g, args[argnum], order=order, modes=tuple(modes))
        return run
    m.check_grads = check_grads
    return m


SHIMS = {"autograd": _top, "autograd.builtins": _builtins, "autograd.test_util": _test_util}


class _Loader(importlib.abc.Loader):
    def __init__(self, name: str) -> None:
        self.name = name

    def create_module(self, spec: Any) -> Any:
        if self.name in SHIMS:
            return SHIMS[self.name]()
        return importlib.import_module(MAP[self.name])

    def exec_module(self, module: Any) -> None:
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name in SHIMS or name in MAP:
            return importlib.util.spec_from_loader(name, _Loader(name))
        if name == "autograd" or name.startswith("autograd."):
            raise ModuleNotFoundError(f"shim: fungrad has no counterpart of {name}")
        return None


def install_fungrad() -> None:
    sys.meta_path.insert(0, _Finder())


def install_upstream_counting() -> None:
    """Count upstream autograd's gradients the same way (its own functions, wrapped)."""
    import autograd
    autograd.grad = _counting(autograd.grad)
    autograd.value_and_grad = _counting(autograd.value_and_grad, which=1)
    autograd.elementwise_grad = _counting(autograd.elementwise_grad)


def main() -> None:
    mode, path = sys.argv[1], os.path.abspath(sys.argv[2])
    if mode == "fungrad":
        install_fungrad()
    elif mode == "upstream":
        install_upstream_counting()
    else:
        raise SystemExit(f"mode must be 'upstream' or 'fungrad', not {mode!r}")
    atexit.register(_report)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout still reports its counts
    onp.random.seed(0)  # the same draws under both libraries, also where the example seeds none
    sys.path.insert(0, os.path.dirname(path))
    sys.argv = [path]
    runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    main()
