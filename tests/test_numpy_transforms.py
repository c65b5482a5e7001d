"""Every fungrad.numpy function under the transformations, generated from the namespace.

For each function of ``fungrad.numpy.__all__`` (and each NumPy function it runs on Tensors'
data, such as ``argsort``), the argument forms NumPy itself accepts are found among a fixed set
of templates built from one example; each accepted form is then run over a batch of examples:

* ``fg.vmap(f)(xs)`` equals the stack of ``f(x)`` for each example,
* ``fg.vmap(fg.grad(loss))(xs)`` equals the stack of per-example gradients (for functions with a
  floating result), and
* for the selection and order-statistics family, ``fg.jit(f)`` and ``fg.jit(fg.vmap(f))`` equal
  eager (fg.jit's other programs are checked by its own suites).

Templates compute indices from the example (``argsort(x)``, ``argmax(x)``), so under vmap the
indices differ from one example to the next, as a per-example loop would have them.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad.errors import FungradError
from fungrad.numpy import _passthrough

R = np.random.default_rng(5)
B = 3
XS = R.standard_normal((B, 3, 4))
VS = R.standard_normal((B, 5))
SQ = R.standard_normal((B, 3, 3))
IDX = np.array([[0, 2, 1, 1], [2, 0, 0, 1]])

# label: (the batch, one example -> (args, kwargs))
TEMPLATES = {
    "x": (XS, lambda e: ((e,), {})),
    "x,axis=0": (XS, lambda e: ((e,), {"axis": 0})),
    "x,axis=None": (XS, lambda e: ((e,), {"axis": None})),
    "x-with-nan,axis=1": (XS, lambda e: ((fnp.where(e > 1.0, np.nan, e),), {"axis": 1})),
    "x,axis=1,where": (XS, lambda e: ((e,), {"axis": 1, "where": e > 0})),
    "x,axis=1,weights": (XS, lambda e: ((e,), {"axis": 1, "weights": e * e + 1})),
    "v": (VS, lambda e: ((e,), {})),
    "sq": (SQ, lambda e: ((e,), {})),
    "x,x": (XS, lambda e: ((e, e), {})),
    "x,1": (XS, lambda e: ((e, 1), {})),
    "x,[1,2]": (XS, lambda e: ((e, [1, 2]), {})),
    "v,2": (VS, lambda e: ((e, 2), {})),
    "x,idx,axis=0": (XS, lambda e: ((e, IDX), {"axis": 0})),
    "x,(2,1)": (XS, lambda e: ((e, (2, 1)), {})),
    "x,50.0": (XS, lambda e: ((e, 50.0), {})),
    "[x,x]": (XS, lambda e: (([e, e],), {})),
    "conditions": (XS, lambda e: (([e > 0, e < -1], [e * 2, e ** 2]), {"default": e})),
    "v,v": (VS, lambda e: ((e, e), {})),
    "sorted,v": (VS, lambda e: ((fnp.sort(e), e * 0.5), {})),
    "x,argsort(x),axis=1": (XS, lambda e: ((e, np.argsort(e, axis=1)), {"axis": 1})),
    "x,argmax(x),axis=0": (XS, lambda e: ((e, np.argmax(e, axis=0)[None]), {"axis": 0})),
    "v,argsort(v)[:3]": (VS, lambda e: ((e, np.argsort(e)[:3]), {})),
    "x,argmin(x,1),axis=1": (XS, lambda e: ((e, np.argmin(e, axis=1)), {"axis": 1})),
}
MAX_FORMS = 5  # argument forms per function (the first NumPy accepts, in template order)

NOT_FUNCTIONS_OF_ARRAYS = {"random", "c_", "r_"}
# no value to compare: uninitialised memory
UNDEFINED_VALUES = {"empty_like"}
# NumPy functions of Tensors that fungrad has no differentiable version of (their gradient is
# refused with a TypeError, checked below) — none of them in this namespace's __all__
NO_GRADIENT: set = set()
# jit of the selection and order-statistics family (and what they are built from)
JIT_FAMILY = {"sort", "partition", "take", "take_along_axis", "select", "tril", "triu", "diag",
              "diagonal", "diagflat", "trace", "roll", "flip", "cumsum", "cumprod", "median",
              "quantile", "percentile", "nanmedian", "nanquantile", "nanpercentile", "argsort",
              "argmax", "argmin", "argpartition", "searchsorted", "average", "nansum",
              "nanmean", "cumulative_sum", "cumulative_prod", "gradient", "float_power",
              "fabs", "mean", "sum", "nanmax", "nanmin", "nanprod", "nanvar", "nanstd"}


def _names() -> list[str]:
    names = [n for n in fnp.__all__ if n not in NOT_FUNCTIONS_OF_ARRAYS]
    return names + [n for n in _passthrough._FUNCTIONS if n not in names]


def _numeric(r) -> bool:
    if isinstance(r, (list, tuple)):
        return len(r) > 0 and all(_numeric(p) for p in r)
    return np.asarray(r).dtype.kind in "fiub"


def _binds_out(np_fn, args: tuple) -> bool:
    """Whether a positional argument of ``args`` would be NumPy's ``out=``."""
    if isinstance(np_fn, np.ufunc):
        return len(args) > np_fn.nin
    try:
        params = list(inspect.signature(np_fn).parameters)
    except (TypeError, ValueError):
        return False
    return "out" in params[:len(args)]


def _forms(name: str) -> list[str]:
    """The templates NumPy's own function accepts for ``name`` (first MAX_FORMS)."""
    np_fn = getattr(np, name, None)
    if not callable(np_fn):
        return []
    found = []
    for label, (batch, build) in TEMPLATES.items():
        args, kwargs = build(batch[0])
        if _binds_out(np_fn, args):
            continue  # the extra argument would be NumPy's out=
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                r = np_fn(*args, **kwargs)
                for e in batch:  # and fungrad's, for every example
                    getattr(fnp, name)(*build(e)[0], **build(e)[1])
        except Exception:  # noqa: BLE001 (a form this function does not take)
            continue
        if _numeric(r):
            found.append(label)
    return found[:MAX_FORMS]


# NumPy's own functions (argsort...) see Tensors only as arguments, not inside a list (NumPy
# converts a list without asking its items): fungrad.numpy's guide says to stack them first
CASES = [pytest.param(name, label, id=f"{name}[{label}]")
         for name in _names() for label in _forms(name)
         if not (label == "[x,x]" and name in _passthrough._FUNCTIONS)]


def test_the_cases_cover_the_namespace():
    covered = {c.values[0] for c in CASES}
    # what takes no array of the templates' kind: shape tuples, dtypes, index tuples
    uncovered = set(_names()) - covered
    assert uncovered <= {"broadcast_to", "dsplit", "moveaxis", "swapaxes", "result_type",
                         "bincount", "unravel_index", "ravel_multi_index", "min_scalar_type",
                         "can_cast", "ndenumerate", "ndindex", "may_share_memory",
                         "shares_memory", "isnat", "left_shift", "right_shift", "gcd", "lcm",
                         "invert", "bitwise_and", "bitwise_or", "bitwise_xor", "lexsort",
                         "histogram", "digitize", "einsum", "reshape", "full"}, sorted(uncovered)
    assert len(covered) > 150


def _call(name: str, label: str, e):
    args, kwargs = TEMPLATES[label][1](e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(fnp, name)(*args, **kwargs)


def _plain(r):
    if isinstance(r, (list, tuple)):
        return [_plain(p) for p in r]
    return np.asarray(r.data if isinstance(r, fg.Tensor) else r)


def _shapes(r):
    return [_shapes(p) for p in r] if isinstance(r, list) else r.shape


def _stacked(results: list):
    if isinstance(results[0], list):
        return [_stacked([r[k] for r in results]) for k in range(len(results[0]))]
    return np.stack(results)


def _assert_close(got, want, what: str) -> None:
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), what
        for g, w in zip(got, want):
            _assert_close(g, w, what)
        return
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=what)


def _loss(out):
    """A scalar of every floating piece of ``out`` (sin, so that no piece's gradient is
    constant), or None if nothing is floating."""
    pieces = out if isinstance(out, (list, tuple)) else [out]
    floats = [fg.sum(fnp.sin(p)) for p in pieces
              if (p.dtype if hasattr(p, "dtype") else np.asarray(p).dtype).kind == "f"]
    return sum(floats[1:], floats[0]) if floats else None


@pytest.mark.parametrize("name, label", CASES)
def test_vmap_equals_the_loop(name, label):
    batch = TEMPLATES[label][0]
    results = [_plain(_call(name, label, e)) for e in batch]
    if len({str(_shapes(r)) for r in results}) > 1:  # nonzero, unique, split at data...
        with pytest.raises(FungradError, match=r"vmap|differ|stack|must be an int"):
            fg.vmap(lambda e: _call(name, label, e))(batch)
        return
    loop = _stacked(results)
    got = _plain(fg.vmap(lambda e: _call(name, label, e))(batch))
    if name in UNDEFINED_VALUES:
        assert np.shape(got) == np.shape(loop)
        return
    _assert_close(got, loop, f"vmap of fnp.{name}({label})")


@pytest.mark.parametrize("name, label", CASES)
def test_vmap_of_grad_equals_the_loop_of_grads(name, label):
    batch = TEMPLATES[label][0]
    if _loss(_call(name, label, batch[0])) is None:
        return  # no floating result: nothing to differentiate (indices, tests, masks)

    def loss(e):
        return _loss(_call(name, label, e))

    if len({str(_shapes(_plain(_call(name, label, e)))) for e in batch}) > 1:
        return  # results of different shapes: refused by vmap (above)
    if name in NO_GRADIENT:
        with pytest.raises(TypeError, match="no differentiable fungrad implementation"):
            fg.grad(loss)(batch[0])
        return
    loop = np.stack([_plain(fg.grad(loss)(e)) for e in batch])
    got = _plain(fg.vmap(fg.grad(loss))(batch))
    _assert_close(got, loop, f"vmap(grad) of fnp.{name}({label})")


@pytest.mark.parametrize("name, label", [c for c in CASES if c.values[0] in JIT_FAMILY])
def test_jit_and_jit_of_vmap_equal_eager(name, label):
    batch = TEMPLATES[label][0]

    def f(e):
        return _call(name, label, e)

    _assert_close(_plain(fg.jit(f)(batch[0])), _plain(f(batch[0])), f"jit of fnp.{name}")
    _assert_close(_plain(fg.jit(fg.vmap(f))(batch)), _plain(fg.vmap(f)(batch)),
                  f"jit(vmap) of fnp.{name}")
