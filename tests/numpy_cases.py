"""Shared checks for the fungrad.numpy test modules: a fungrad.numpy function against NumPy's
own on the same arguments (values, shapes, dtypes), its gradient against finite differences,
and NumPy's protocols dispatching to it for Tensors."""

from __future__ import annotations

import warnings

import numpy as np

import fungrad as fg
import fungrad.numpy as fnp
from fungrad.testing import check_grads


def _is_float(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _float_positions(args) -> list[int]:
    """Arguments to differentiate: float ndarrays, and lists of them (as for concatenate)."""
    return [i for i, a in enumerate(args)
            if _is_float(a) or (isinstance(a, list) and a and all(_is_float(x) for x in a))]


def _leaves(a):
    if isinstance(a, list):
        return [fg.Tensor(x, autograd=True) for x in a]
    return fg.Tensor(a, autograd=True)


def numpy_result(name: str, args, kwargs):
    with warnings.catch_warnings():  # np.cross of 2-vectors and np.row_stack are deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(np, name)(*args, **kwargs)


def assert_same_result(got, want, what: str) -> None:
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), what
        for g, w in zip(got, want):
            assert_same_result(g, w, what)
        return
    got_data = got.data if isinstance(got, fg.Tensor) else got
    want = np.asarray(want)
    assert np.shape(got_data) == want.shape, f"{what}: shape {np.shape(got_data)} != {want.shape}"
    assert np.asarray(got_data).dtype == want.dtype, (
        f"{what}: dtype {np.asarray(got_data).dtype} != {want.dtype}")
    np.testing.assert_allclose(got_data, want, rtol=1e-12, atol=1e-12, err_msg=what)


def check_forward(name: str, args, kwargs) -> None:
    """``fnp.<name>`` on ndarrays gives NumPy's result, as ndarrays (nothing recorded)."""
    want = numpy_result(name, args, kwargs)
    got = getattr(fnp, name)(*args, **kwargs)
    assert_same_result(got, want, f"fnp.{name}{args_repr(args, kwargs)}")
    for piece in got if isinstance(got, (list, tuple)) else [got]:
        assert not isinstance(piece, fg.Tensor), f"fnp.{name} on ndarrays returned a Tensor"


def check_dispatch(name: str, args, kwargs) -> None:
    """``np.<name>`` called with Tensors dispatches to fungrad: a Tensor result with NumPy's
    values, whose gradient reaches the Tensors."""
    positions = _float_positions(args)
    leaves = {i: _leaves(args[i]) for i in positions}
    targs = [leaves.get(i, a) for i, a in enumerate(args)]
    got = numpy_result(name, targs, kwargs)
    want = numpy_result(name, args, kwargs)
    assert_same_result(got, want, f"np.{name} on Tensors")
    pieces = got if isinstance(got, (list, tuple)) else [got]
    assert all(isinstance(p, fg.Tensor) for p in pieces), f"np.{name} did not return Tensors"
    total = fg.sum(fnp.concatenate([fnp.ravel(p) for p in pieces]) ** 2)
    total.backward()
    for i, leaf in leaves.items():
        for t, a in zip(leaf, args[i]) if isinstance(leaf, list) else [(leaf, args[i])]:
            assert t.grad is not None and t.grad.shape == a.shape, (
                f"np.{name}: no gradient for argument {i}")


def check_gradient(name: str, args, kwargs, order: int = 1) -> None:
    """The gradient of ``fnp.<name>`` (each output piece weighted) against finite
    differences, with respect to every float ndarray argument."""
    positions = _float_positions(args)
    fn = getattr(fnp, name)

    def f(*xs):
        full = list(args)
        for i, x in zip(positions, xs):
            full[i] = x
        out = fn(*full, **kwargs)
        return tuple(out) if isinstance(out, list) else out

    check_grads(f, *[args[i] for i in positions], order=order, modes=("rev",))


def args_repr(args, kwargs) -> str:
    parts = [_arg_repr(a) for a in args]
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


def _arg_repr(a) -> str:
    if isinstance(a, np.ndarray):
        return f"<{a.shape} {a.dtype}>"
    if isinstance(a, list):
        return "[" + ", ".join(_arg_repr(x) for x in a) + "]"
    return repr(a)


def case_id(case) -> str:
    name, args, kwargs = case
    return f"{name}{args_repr(args, kwargs)}"
