"""Functional transformations — grad, value_and_grad, vjp, jvp, jacobian, hessian — on the tape.

They take functions of ndarrays, Python floats and nested dicts/lists/tuples of them, and return
gradients in the same structure, as ndarrays. Nested, they compose to any order: called inside
another transformation (or on Tensors that are being traced), a transformation records its own
backward pass (``create_graph``) and returns Tensors connected to the outer graph.

>>> import numpy as np, fungrad as fg
>>> f = lambda x: fg.sum(fg.tanh(x) ** 2)
>>> fg.grad(f)(np.array([0.5, -1.0])).round(4)
array([ 0.7864, -0.6397])
>>> fg.grad(fg.grad(fg.grad(lambda x: x ** 4)))(2.0)
array(48.)
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import numpy as np

from . import ops as _ops
from . import tape
from .errors import DTypeError, ShapeError
from .registry import unwrap
from .tensor import Tensor
from .tree import flatten, tree_map, unflatten

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian"]


@contextlib.contextmanager
def _tracing():
    st = tape.state
    previous = st.enabled
    st.depth += 1
    st.enabled = True
    try:
        yield
    finally:
        st.depth -= 1
        st.enabled = previous


def _asarray(x, dtype=None):
    """np.asarray, except that an array fg.jit is tracing stays traced (it refuses asarray)."""
    hook = tape.state.hook
    if hook is not None and type(x) is hook.traced_type:
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)
    return np.asarray(x, dtype=dtype)


def _is_traced(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _primal(x, where: str) -> Tensor:
    """A fresh differentiable Tensor for one input leaf (its own node if it is traced)."""
    data = unwrap(x)
    dtype = _asarray(data).dtype
    if dtype.kind not in "fc":
        raise DTypeError(
            f"{where} has dtype {dtype}; gradients are defined for floating-point inputs only "
            "(pass x.astype(float))"
        )
    if _is_traced(x):
        return _ops.identity(x)  # distinct from other arguments, still connected outside
    t = Tensor._make(_asarray(data), None)
    t.requires_grad = True
    return t


def _primals(arg, where: str) -> tuple[Any, list]:
    leaves, spec = flatten(arg)
    prims = [_primal(x, where) for x in leaves]
    return unflatten(spec, prims), prims


def _argnums(argnums, n_args: int, name: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n_args <= i < n_args:
            raise TypeError(f"{name}: argnums {argnums!r} out of range for {n_args} arguments")
    return tuple(i % n_args for i in nums)


def _as_output(x, nested: bool):
    """What the user sees: ndarrays at top level, Tensors connected to the graph when nested."""
    if nested:
        return x
    return x.data if isinstance(x, Tensor) else _asarray(x)


def _own(results: list, nested: bool, avoid: list) -> list:
    """Gradients the user may keep and modify: at top level, copy any array this pass did not
    allocate for that one result (views, read-only broadcasts, the caller's own cotangent, an
    array handed to two inputs), as ``Tensor.backward`` does for ``.grad``."""
    if nested:
        return results
    seen: set = set()
    out = []
    for c in results:
        if isinstance(c, np.ndarray) and (
            c.base is not None or not c.flags.writeable or id(c) in seen
            or any(c is a for a in avoid)
        ):
            c = c.copy()
        seen.add(id(c))
        out.append(c)
    return out


def _zeros_like(t: Tensor) -> np.ndarray:
    return np.zeros(t.data.shape, dtype=t.data.dtype if t.data.dtype.kind == "f" else np.float64)


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0,
                   has_aux: bool = False) -> Callable:
    """A function returning ``(f(*args), gradient of f with respect to args[argnums])``.

    ``f`` must return a scalar (or ``(scalar, aux)`` with ``has_aux=True``, giving
    ``((value, aux), gradient)``). With a tuple ``argnums`` the gradient is a tuple.

    >>> import numpy as np, fungrad as fg
    >>> loss = lambda p, x: fg.sum((x @ p["w"] + p["b"]) ** 2)
    >>> p = {"w": np.ones((2, 1)), "b": np.zeros(1)}
    >>> value, g = fg.value_and_grad(loss)(p, np.array([[1.0, 2.0]]))
    >>> float(value), g["w"].ravel().tolist(), g["b"].tolist()
    (9.0, [6.0, 12.0], [6.0])
    """

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "grad")
        nested = tape.state.depth > 0 or any(
            _is_traced(x) for i in nums for x in flatten(args[i])[0]
        )
        with _tracing():
            args = list(args)
            prims_per_arg = []
            for i in nums:
                args[i], prims = _primals(args[i], f"grad: argument {i}")
                prims_per_arg.append(prims)
            result = f(*args, **kwargs)
            if has_aux:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise TypeError("grad with has_aux=True: f must return a pair (output, aux)")
                out, aux = result
            else:
                out, aux = result, None
            size = np.size(unwrap(out))
            if size != 1:
                raise ShapeError(
                    f"grad: the function must return a scalar, got an output of shape "
                    f"{tuple(np.shape(unwrap(out)))}; use fg.jacobian for the full "
                    "Jacobian or fg.vjp for a vector-Jacobian product"
                )
            flat = [p for prims in prims_per_arg for p in prims]
            if _is_traced(out):
                dtype = out.dtype if out.dtype.kind == "f" else np.dtype(np.float64)
                cots = tape.backward([out], [np.ones(out.shape, dtype=dtype)],
                                     retain_graph=nested, create_graph=nested, targets=flat)
            else:
                cots = [None] * len(flat)
        cots = _own([_as_output(c, nested) if c is not None else None for c in cots], nested,
                    [p.data for p in flat])
        grads, k = [], 0
        for i, prims in zip(nums, prims_per_arg):
            leaves = [c if c is not None else _zeros_like(p)
                      for p, c in zip(prims, cots[k:k + len(prims)])]
            k += len(prims)
            grads.append(unflatten(flatten(args[i])[1], leaves))
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        value = _as_output(out, nested)
        if has_aux:
            return (value, aux if nested else tree_map(_as_output_top, aux)), g
        return value, g

    return wrapper


def _as_output_top(x):
    return _as_output(x, False)


def grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The gradient of a scalar function, in the structure of its arguments.

    >>> import numpy as np, fungrad as fg
    >>> fg.grad(lambda x: fg.sum(x * x))(np.array([1.0, -2.0]))
    array([ 2., -4.])
    >>> fg.grad(lambda x, y: x * y, argnums=(0, 1))(3.0, 4.0)
    (array(4.), array(3.))
    """
    vg = value_and_grad(f, argnums, has_aux)

    def wrapper(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(f: Callable, *primals) -> tuple[Any, Callable]:
    """``(f(*primals), vjp_fn)`` where ``vjp_fn(cotangent)`` gives one cotangent per primal.

    ``vjp_fn`` may be called many times (the graph is kept while it lives).

    >>> import numpy as np, fungrad as fg
    >>> out, vjp_fn = fg.vjp(lambda x: x * np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    >>> vjp_fn(np.array([1.0, 1.0]))
    (array([1., 2.]),)
    """
    nested = tape.state.depth > 0 or any(_is_traced(x) for p in primals for x in flatten(p)[0])
    with _tracing():
        wrapped, prims_per_arg = [], []
        for i, p in enumerate(primals):
            w, prims = _primals(p, f"vjp: argument {i}")
            wrapped.append(w)
            prims_per_arg.append(prims)
        out = f(*wrapped)
    out_leaves, out_spec = flatten(out)
    flat = [p for prims in prims_per_arg for p in prims]

    def vjp_fn(cotangent):
        ct_leaves, ct_spec = flatten(cotangent)
        if len(ct_leaves) != len(out_leaves):
            raise ShapeError(f"vjp: the cotangent has {len(ct_leaves)} arrays, the output "
                             f"{len(out_leaves)}")
        create = nested or tape.state.depth > 0 or any(_is_traced(c) for c in ct_leaves)
        roots, seeds = [], []
        for o, c in zip(out_leaves, ct_leaves):
            o_shape = tuple(np.shape(unwrap(o)))
            c_shape = tuple(np.shape(unwrap(c)))
            if o_shape != c_shape:
                raise ShapeError(f"vjp: cotangent of shape {c_shape} for an output of shape "
                                 f"{o_shape}")
            if _is_traced(o):
                roots.append(o)
                seeds.append(c if create and isinstance(c, Tensor) else
                             _asarray(unwrap(c), dtype=_float_dtype(o)))
        with _tracing():
            cots = tape.backward(roots, seeds, retain_graph=True, create_graph=create,
                                 targets=flat) if roots else [None] * len(flat)
        cots = _own([_as_output(c, create) if c is not None else None for c in cots], create,
                    [unwrap(c) for c in ct_leaves] + [q.data for q in flat])
        results, k = [], 0
        for p, prims in zip(primals, prims_per_arg):
            leaves = [c if c is not None else _zeros_like(q)
                      for q, c in zip(prims, cots[k:k + len(prims)])]
            k += len(prims)
            results.append(unflatten(flatten(p)[1], leaves))
        return tuple(results)

    return unflatten(out_spec, [_as_output(o, nested) for o in out_leaves]), vjp_fn


def _float_dtype(t) -> np.dtype:
    dt = _asarray(unwrap(t)).dtype
    return dt if dt.kind == "f" else np.dtype(np.float64)


def jvp(f: Callable, primals: Sequence, tangents: Sequence) -> tuple[Any, Any]:
    """``(f(*primals), J @ tangents)``: a forward-mode directional derivative.

    Computed as the transpose of the VJP (every VJP is linear in its cotangent and recorded in
    ops), so it composes with the other transformations like any of them.

    >>> import numpy as np, fungrad as fg
    >>> out, t = fg.jvp(lambda x: fg.sin(x), (np.array([0.0, 1.0]),), (np.array([1.0, 1.0]),))
    >>> t.round(4)
    array([1.    , 0.5403])
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise TypeError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        ps = [np.shape(unwrap(x)) for x in flatten(p)[0]]
        ts = [np.shape(unwrap(x)) for x in flatten(t)[0]]
        if ps != ts:
            raise ShapeError(f"jvp: tangent {i} has shapes {ts}, its primal {ps}")
    nested = tape.state.depth > 0 or any(
        _is_traced(x) for tree in primals + tangents for x in flatten(tree)[0]
    )
    with _tracing():
        out, vjp_fn = vjp(f, *primals)
        out_leaves, out_spec = flatten(out)
        dummies = []
        for o in out_leaves:
            u = Tensor._make(np.zeros(np.shape(unwrap(o)), dtype=_float_dtype(o)),
                             None)
            u.requires_grad = True
            dummies.append(u)
        cts = flatten(vjp_fn(unflatten(out_spec, dummies)))[0]
        roots, seeds = [], []
        for c, t in zip(cts, flatten(tangents)[0]):
            if _is_traced(c):
                roots.append(c)
                seeds.append(t if nested and isinstance(t, Tensor) else
                             _asarray(unwrap(t), dtype=_float_dtype(c)))
        res = tape.backward(roots, seeds, retain_graph=nested, create_graph=nested,
                            targets=dummies) if roots else [None] * len(dummies)
    tangent_out = _own([_as_output(r, nested) if r is not None else u.data.copy()
                        for r, u in zip(res, dummies)], nested,
                       [unwrap(t) for t in flatten(tangents)[0]])
    out_value = unflatten(out_spec, [_as_output(o, nested) for o in out_leaves])
    return out_value, unflatten(out_spec, tangent_out)


def jacobian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian of ``f`` with respect to ``args[argnums]``: shape ``out.shape + in.shape``.

    Built one row at a time from VJPs, so it suits small outputs; nested in ``grad`` or in
    itself it records, so ``jacobian(jacobian(f))`` works.

    >>> import numpy as np, fungrad as fg
    >>> fg.jacobian(lambda x: x ** 2)(np.array([1.0, 3.0]))
    array([[2., 0.],
           [0., 6.]])
    """

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "jacobian")

        def partial(*chosen):
            full = list(args)
            for i, v in zip(nums, chosen):
                full[i] = v
            return f(*full, **kwargs)

        out, vjp_fn = vjp(partial, *(args[i] for i in nums))
        out_data = unwrap(out)
        out_shape = tuple(np.shape(out_data))
        n_out = int(np.prod(out_shape))
        rows = []
        for k in range(n_out):
            e = np.zeros(n_out, dtype=_float_dtype(out_data))
            e[k] = 1.0
            rows.append(vjp_fn(e.reshape(out_shape)))
        jacs = []
        for j, i in enumerate(nums):
            in_leaves, in_spec = flatten(args[i])
            per_leaf = []
            for m, leaf in enumerate(in_leaves):
                in_shape = tuple(np.shape(unwrap(leaf)))
                parts = [flatten(r[j])[0][m] for r in rows]
                if not parts:
                    per_leaf.append(np.zeros(out_shape + in_shape))
                    continue
                stacked = _ops.stack(parts, axis=0)
                per_leaf.append(_ops.reshape(stacked, shape=out_shape + in_shape))
            jacs.append(unflatten(in_spec, per_leaf))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return wrapper


def hessian(f: Callable, argnums: int = 0) -> Callable:
    """The Hessian of a scalar function: ``jacobian(grad(f))``, shape ``in.shape * 2``.

    >>> import numpy as np, fungrad as fg
    >>> fg.hessian(lambda x: fg.sum(x ** 3))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    return jacobian(grad(f, argnums), argnums)
