"""Functional transformations — grad, value_and_grad, vjp, jvp, jacobian, hessian — on the tape.

They take functions of ndarrays, Python floats and nested dicts/lists/tuples of them, and return
gradients in the same structure, as ndarrays. Nested, they compose to any order: called inside
another transformation (or on Tensors that require grad), a transformation records its own
backward pass (``create_graph``) and returns Tensors connected to the outer graph.

A transformation touches only the part of the graph between its inputs and its outputs: a
function that closes over a Tensor of the caller's own graph leaves that graph untouched.

Complex inputs follow one convention (HIPS autograd's and JAX's): a cotangent ``g`` of a complex
value ``z`` pairs with a change ``dz`` as ``Re(sum(g * dz))``. So the gradient of a real
function of ``z = x + iy`` is ``df/dx - i df/dy`` (step along its conjugate to descend), VJPs of
holomorphic functions are ``g * f'(z)`` with no conjugation, ``jvp`` pushes complex tangents
``dz`` forward as they are, and ``grad(f, holomorphic=True)`` (``holomorphic_grad``) is
``f'(z)``. The README compares this with PyTorch's conjugate convention.

>>> import numpy as np, fungrad as fg
>>> f = lambda x: fg.sum(fg.tanh(x) ** 2)
>>> fg.grad(f)(np.array([0.5, -1.0])).round(4)
array([ 0.7269, -0.6397])
>>> fg.grad(fg.grad(fg.grad(lambda x: x ** 4)))(2.0)
array(48.)
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ParamSpec, Sequence, TypeVar

import numpy as np

from . import backprop, recording
from . import primitives as _ops
from .errors import DTypeError, ShapeError
from .registry import unwrap
from .batching import interpreter as _batching
from .batching.api import vmap
from .tensor import Tensor
from .tree import flatten, unflatten

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "jacrev", "jacfwd", "hessian",
           "hvp", "elementwise_grad", "vmap", "holomorphic_grad"]


@contextlib.contextmanager
def _recording():
    """Record ops (even under no_grad) one transformation deeper."""
    st = recording.thread
    previous = st.enabled
    st.depth += 1
    st.enabled = True
    try:
        yield
    finally:
        st.depth -= 1
        st.enabled = previous


def _asarray(x, dtype=None):
    """np.asarray, except that an array fg.jit traces or fg.vmap batches stays one (both
    refuse asarray)."""
    if recording.is_traced(x):
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)
    return np.asarray(x, dtype=dtype)


def _needs_grad(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _primal(x, where: str) -> Tensor:
    """A fresh differentiable Tensor for one input leaf (its own node if it requires grad)."""
    data = unwrap(x)
    if isinstance(data, (str, bytes)) or data is None:
        raise DTypeError(f"{where} is {type(data).__name__} {data!r}; expected arrays or numbers")
    dtype = _asarray(data).dtype
    if dtype.kind not in "fc":
        raise DTypeError(f"{where} has dtype {dtype}; gradients are defined for floating-point "
                         "and complex inputs only (pass x.astype(float))")
    if _needs_grad(x):
        t = _ops.identity(x)  # distinct from other arguments, still connected outside
        leaf = _batching.lift(t)  # inside fg.vmap: a leaf of the vmap's level (per example)
        if leaf is t:
            return t
    else:
        leaf = _batching.lift(_asarray(data))
    t = Tensor._make(leaf)
    t.requires_grad = True
    t._seq = recording.next_seq()  # a leaf born here: a loop step calling grad made it itself
    return t


def _primals(arg, where: str) -> tuple[Any, list]:
    leaves, spec = flatten(arg)
    prims = [_primal(x, where) for x in leaves]
    return unflatten(spec, prims), prims


def _argnums(argnums, n_args: int, name: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not isinstance(i, int) or not -n_args <= i < n_args:
            raise TypeError(f"{name}: argnums {argnums!r} out of range for {n_args} arguments")
    return tuple(i % n_args for i in nums)


def _as_output(x, nested: bool):
    """What the user sees: ndarrays at top level, Tensors connected to the graph when nested."""
    if nested:
        return x
    return x._data if isinstance(x, Tensor) else _asarray(x)


def _own(results: list, nested: bool, avoid: list) -> list:
    """Gradients the user may keep and modify: at top level, copy any array this pass did not
    allocate for that one result (views, read-only broadcasts, the caller's own cotangent, an
    array handed to two inputs), as ``Tensor.backward`` does for ``.grad``."""
    if nested:
        return results
    taken = {id(a) for a in avoid}
    out = []
    for c in results:
        if isinstance(c, np.ndarray) and (
            c.base is not None or not c.flags.writeable or id(c) in taken
        ):
            c = c.copy()
        taken.add(id(c))
        out.append(c)
    return out


def _zeros_like(t: Tensor) -> np.ndarray:
    return np.zeros(t._data.shape, dtype=t._data.dtype if t._data.dtype.kind in "fc"
                    else np.float64)


def _scalar_output(out, has_aux: bool, holomorphic: bool = False):
    """``out`` checked: a floating-point scalar (or one-element array or Tensor); complex only
    with ``holomorphic``."""
    if isinstance(out, (tuple, list)) and not has_aux:
        raise TypeError(
            f"grad: the function returned a {type(out).__name__} of {len(out)} items; it must "
            "return a scalar. If the extra items are auxiliary results, pass has_aux=True "
            "(f must then return (scalar, aux))")
    data = unwrap(out)
    if data is None or isinstance(data, (str, bytes, dict, list, tuple)):
        raise TypeError(f"grad: gradient only defined for scalar-output functions; the output "
                        f"was {data!r} — a forgotten return?" if data is None else
                        f"grad: gradient only defined for scalar-output functions; the output "
                        f"was a {type(data).__name__}")
    dtype = _asarray(data).dtype
    if dtype.kind == "c" and not holomorphic:
        raise TypeError(f"grad: the function returned a complex value (dtype {dtype}); grad "
                        "takes real-valued functions. For the derivative f'(z) of a holomorphic "
                        "function pass holomorphic=True (or use fg.holomorphic_grad); otherwise "
                        "differentiate a real value such as fg.abs(f(z)) ** 2 or fg.real(f(z)), "
                        "or use fg.vjp")
    if dtype.kind not in "fc":
        raise TypeError(f"grad: the function returned a value of dtype {dtype}; gradients are "
                        "defined for floating-point outputs only (a bool or int output is "
                        "piecewise constant)")
    if np.size(data) != 1:
        raise ShapeError(
            f"grad: the function must return a scalar, got an output of shape "
            f"{tuple(np.shape(data))}; use fg.jacobian for the full Jacobian or fg.vjp for a "
            "vector-Jacobian product")


@contextlib.contextmanager
def _explain_list_inputs(args: Sequence, nums: Sequence[int], name: str):
    """A TypeError inside f caused by a list input (taken as a pytree) says so."""
    try:
        yield
    except TypeError as e:
        for i in nums:
            a = args[i]
            if isinstance(a, list) and a and all(isinstance(x, (int, float)) for x in a):
                raise TypeError(
                    f"{name}: argument {i} is a Python list, which fungrad takes as a pytree "
                    f"of {len(a)} separate scalar inputs, so the function received a list of "
                    "Tensors; pass np.array([...]) for one vector input") from e
        raise


def value_and_grad(f: Callable[P, R], argnums: int | Sequence[int] = 0,
                   has_aux: bool = False, holomorphic: bool = False
                   ) -> Callable[P, tuple[R, Any]]:
    """A function returning ``(f(*args), gradient of f with respect to args[argnums])``.

    ``f`` must return a floating-point scalar (or ``(scalar, aux)`` with ``has_aux=True``,
    giving ``((value, aux), gradient)``). With a tuple ``argnums`` the gradient is a tuple.
    For complex arguments the gradient is ``df/dx - i df/dy``; with ``holomorphic=True`` (complex
    arguments, a complex scalar output) it is the complex derivative ``f'(z)``.

    >>> import numpy as np, fungrad as fg
    >>> loss = lambda p, x: fg.sum((x @ p["w"] + p["b"]) ** 2)
    >>> p = {"w": np.ones((2, 1)), "b": np.zeros(1)}
    >>> value, g = fg.value_and_grad(loss)(p, np.array([[1.0, 2.0]]))
    >>> float(value), g["w"].ravel().tolist(), g["b"].tolist()
    (9.0, [6.0, 12.0], [6.0])
    """

    def wrapper(*args, **kwargs):  # typed by value_and_grad's signature
        nums = _argnums(argnums, len(args), "grad")
        nested = recording.thread.depth > 0 or any(
            _needs_grad(x) for i in nums for x in flatten(args[i])[0]
        )
        with _recording():
            start = recording.next_seq()
            call_args = list(args)
            prims_per_arg = []
            for i in nums:
                call_args[i], prims = _primals(args[i], f"grad: argument {i}")
                prims_per_arg.append(prims)
                if holomorphic:
                    _require_complex(prims, f"grad with holomorphic=True: argument {i}")
            with _explain_list_inputs(args, nums, "grad"):
                result = f(*call_args, **kwargs)
            if has_aux:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise TypeError("grad with has_aux=True: f must return a pair (output, aux)")
                out, aux = result
            else:
                out, aux = result, None
            _scalar_output(out, has_aux, holomorphic)
            flat = [p for prims in prims_per_arg for p in prims]
            if _needs_grad(out):
                dtype = out.dtype
                cots = backprop.backward([out], [np.ones(out.shape, dtype=dtype)],
                                         retain_graph=nested, create_graph=nested,
                                         targets=flat, since=start)
            else:
                cots = [None] * len(flat)
        cots = _own([_as_output(c, nested) if c is not None else None for c in cots], nested,
                    [p._data for p in flat])
        grads, k = [], 0
        for i, prims in zip(nums, prims_per_arg):
            leaves = [c if c is not None else _zeros_like(p)
                      for p, c in zip(prims, cots[k:k + len(prims)])]
            k += len(prims)
            grads.append(unflatten(flatten(args[i])[1], leaves))
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        value = _as_output(out, nested)
        if has_aux:
            return (value, aux if nested else _tree_output(aux)), g
        return value, g

    return wrapper


def _tree_output(tree):
    leaves, spec = flatten(tree)
    return unflatten(spec, [_as_output(x, False) if isinstance(x, Tensor) else x
                            for x in leaves])


def grad(f: Callable[P, Any], argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False) -> Callable[P, Any]:
    """The gradient of a scalar function, in the structure of its arguments.

    ``f`` returns a real scalar. For a complex argument ``z = x + iy`` the gradient is
    ``df/dx - i df/dy`` (as in HIPS autograd and JAX; gradient descent steps along its
    conjugate). With ``holomorphic=True``, ``f`` is a holomorphic function of complex arguments
    returning a complex scalar, and the result is its derivative ``f'(z)``.

    >>> import numpy as np, fungrad as fg
    >>> fg.grad(lambda x: fg.sum(x * x))(np.array([1.0, -2.0]))
    array([ 2., -4.])
    >>> fg.grad(lambda x, y: x * y, argnums=(0, 1))(3.0, 4.0)
    (array(4.), array(3.))
    >>> fg.grad(lambda z: fg.abs(z) ** 2)(3.0 + 4.0j)  # 2 conj(z)
    array(6.-8.j)
    >>> fg.grad(lambda z: z ** 3, holomorphic=True)(1.0 + 1.0j)  # 3 z ** 2
    array(0.+6.j)
    """
    vg = value_and_grad(f, argnums, has_aux, holomorphic)

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def holomorphic_grad(f: Callable[P, Any], argnums: int | Sequence[int] = 0,
                     has_aux: bool = False) -> Callable[P, Any]:
    """The complex derivative ``f'(z)`` of a holomorphic scalar function of complex arguments:
    ``grad(f, holomorphic=True)`` (HIPS autograd's name).

    >>> import numpy as np, fungrad as fg
    >>> fg.holomorphic_grad(lambda z: z * (1.0 + 0.2j))(1.0 + 0.0j)
    array(1.+0.2j)
    """
    return grad(f, argnums, has_aux, holomorphic=True)


def _require_complex(prims: list, where: str) -> None:
    for p in prims:
        if p._data.dtype.kind != "c":
            raise TypeError(f"{where} has dtype {p._data.dtype}; holomorphic differentiation "
                            "needs complex inputs (pass z.astype(complex))")


def vjp(f: Callable[..., R], *primals: Any) -> tuple[R, Callable[[Any], tuple[Any, ...]]]:
    """``(f(*primals), vjp_fn)`` where ``vjp_fn(cotangent)`` gives one cotangent per primal.

    ``vjp_fn`` may be called many times (the graph is kept while it lives).

    >>> import numpy as np, fungrad as fg
    >>> out, vjp_fn = fg.vjp(lambda x: x * np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    >>> vjp_fn(np.array([1.0, 1.0]))
    (array([1., 2.]),)
    """
    nested = recording.thread.depth > 0 or any(_needs_grad(x) for p in primals for x in flatten(p)[0])
    with _recording():
        start = recording.next_seq()
        wrapped, prims_per_arg = [], []
        for i, p in enumerate(primals):
            w, prims = _primals(p, f"vjp: argument {i}")
            wrapped.append(w)
            prims_per_arg.append(prims)
        with _explain_list_inputs(primals, range(len(primals)), "vjp"):
            out = f(*wrapped)
    out_leaves, out_spec = flatten(out)
    for o in out_leaves:
        if not isinstance(unwrap(o), (np.ndarray, float, int, np.generic)) and \
                not recording.is_traced(unwrap(o)):
            raise TypeError(f"vjp: the function returned a {type(unwrap(o)).__name__} among its "
                            "outputs; expected arrays, Tensors or numbers (in any pytree)")
    flat = [p for prims in prims_per_arg for p in prims]

    def vjp_fn(cotangent):
        ct_leaves, ct_spec = flatten(cotangent)
        if len(ct_leaves) != len(out_leaves):
            raise ShapeError(f"vjp: the cotangent has {len(ct_leaves)} arrays, the output "
                             f"{len(out_leaves)}")
        create = nested or recording.thread.depth > 0 or any(_needs_grad(c) for c in ct_leaves)
        roots, seeds = [], []
        for o, c in zip(out_leaves, ct_leaves):
            if isinstance(unwrap(c), (str, bytes)) or c is None:
                raise DTypeError(f"vjp: a cotangent is {type(c).__name__} {c!r}; expected an "
                                 "array shaped like the output")
            o_shape = tuple(np.shape(unwrap(o)))
            c_shape = tuple(np.shape(unwrap(c)))
            if o_shape != c_shape:
                raise ShapeError(f"vjp: cotangent of shape {c_shape} for an output of shape "
                                 f"{o_shape}")
            if _needs_grad(o):
                roots.append(o)
                seeds.append(c if create and isinstance(c, Tensor) else
                             backprop.as_seed(c, _float_dtype(o), "vjp"))
        with _recording():
            cots = backprop.backward(roots, seeds, retain_graph=True, create_graph=create,
                                     targets=flat, since=start) if roots else [None] * len(flat)
        cots = _own([_as_output(c, create) if c is not None else None for c in cots], create,
                    [unwrap(c) for c in ct_leaves] + [q._data for q in flat])
        results, k = [], 0
        for p, prims in zip(primals, prims_per_arg):
            leaves = [c if c is not None else _zeros_like(q)
                      for q, c in zip(prims, cots[k:k + len(prims)])]
            k += len(prims)
            results.append(unflatten(flatten(p)[1], leaves))
        return tuple(results)

    return unflatten(out_spec, [_as_output(o, nested) for o in out_leaves]), vjp_fn


def _float_dtype(t) -> np.dtype:
    """The dtype of ``t``'s cotangents: its own if floating or complex, else float64."""
    dt = _asarray(unwrap(t)).dtype
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def jvp(f: Callable[..., R], primals: Sequence, tangents: Sequence) -> tuple[R, Any]:
    """``(f(*primals), J @ tangents)``: a forward-mode directional derivative.

    ``primals`` and ``tangents`` are tuples (or lists) with one entry per argument of ``f``,
    as in JAX. Computed as the transpose of the VJP (every VJP is linear in its cotangent and
    recorded in ops), so it composes with the other transformations like any of them. A complex
    primal takes a complex (or real) tangent ``dz`` and the result is the change of ``f``
    along it, as it is: ``f'(z) dz`` for holomorphic ``f``; a real primal takes a real tangent.

    >>> import numpy as np, fungrad as fg
    >>> out, t = fg.jvp(lambda x: fg.sin(x), (np.array([0.0, 1.0]),), (np.array([1.0, 1.0]),))
    >>> t.round(4)
    array([1.    , 0.5403])
    """
    for what, value in (("primals", primals), ("tangents", tangents)):
        if not isinstance(value, (tuple, list)):
            raise TypeError(f"jvp: {what} must be a tuple or list with one entry per argument "
                            f"of f, got {type(value).__name__}; write fg.jvp(f, (x,), (v,))")
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise TypeError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        ps = [np.shape(unwrap(x)) for x in flatten(p)[0]]
        ts = [np.shape(unwrap(x)) for x in flatten(t)[0]]
        if ps != ts:
            raise ShapeError(f"jvp: tangent {i} has shapes {ts}, its primal {ps}")
        for x, dx in zip(flatten(p)[0], flatten(t)[0]):
            if np.iscomplexobj(unwrap(dx)) and not np.iscomplexobj(unwrap(x)):
                raise DTypeError(f"jvp: tangent {i} is complex but its primal is real; a real "
                                 "input moves along real directions only (make the primal "
                                 "complex to move it off the real axis)")
    nested = recording.thread.depth > 0 or any(
        _needs_grad(x) for tree in primals + tangents for x in flatten(tree)[0]
    )
    with _recording():
        start = recording.next_seq()
        out, vjp_fn = vjp(f, *primals)
        out_leaves, out_spec = flatten(out)
        dummies = []
        for o in out_leaves:
            u = Tensor._make(_batching.lift(np.zeros(np.shape(unwrap(o)),
                                                     dtype=_float_dtype(o))))
            u.requires_grad = True
            dummies.append(u)
        cts = flatten(vjp_fn(unflatten(out_spec, dummies)))[0]
        roots, seeds = [], []
        for c, t in zip(cts, flatten(tangents)[0]):
            if _needs_grad(c):
                roots.append(c)
                seeds.append(t if nested and isinstance(t, Tensor) else
                             backprop.as_seed(t, _float_dtype(c), "jvp"))
        res: list | None = backprop.backward(
            roots, seeds, retain_graph=nested, create_graph=nested, targets=dummies,
            since=start) if roots else [None] * len(dummies)
        assert res is not None  # with targets, backward returns one cotangent per target
    tangent_out = _own([_as_output(r, nested) if r is not None else u._data.copy()
                        for r, u in zip(res, dummies)], nested,
                       [unwrap(t) for t in flatten(tangents)[0]])
    out_value = unflatten(out_spec, [_as_output(o, nested) for o in out_leaves])
    return out_value, unflatten(out_spec, tangent_out)


def jacrev(f: Callable[P, Any], argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable[P, Any]:
    """The Jacobian of ``f`` with respect to ``args[argnums]`` by reverse mode: one VJP, mapped
    with :func:`vmap` over the rows of the identity (one backward pass for all of them).

    The result has the structure of ``f``'s output; each of its leaves holds the structure of
    the input (a tuple over ``argnums`` if it is a tuple), with arrays of shape
    ``out_leaf.shape + in_leaf.shape``, as JAX's ``jacrev``. With ``has_aux=True``, ``f``
    returns ``(output, aux)`` and the result is ``(jacobian, aux)``. Suits functions with fewer
    outputs than inputs; :func:`jacfwd` the other way round.

    A real output's row for a complex input is its gradient ``d/dx - i d/dy``. A complex output
    needs ``holomorphic=True`` (complex inputs, a holomorphic ``f``: the rows are complex
    derivatives), as in JAX; for a non-holomorphic complex function, take the Jacobians of
    ``fg.real(f)`` and ``fg.imag(f)`` or use ``fg.vjp``.

    >>> import numpy as np, fungrad as fg
    >>> fg.jacrev(lambda x: x ** 2)(np.array([1.0, 3.0]))
    array([[2., 0.],
           [0., 6.]])
    >>> J = fg.jacrev(lambda p: {"s": fg.sum(p["a"] * p["b"])})(
    ...     {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])})
    >>> J["s"]["a"], J["s"]["b"]
    (array([3., 4.]), array([1., 2.]))
    """

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "jacrev")
        if holomorphic:
            _require_complex_args(args, nums, "jacrev")
        aux = []
        out, vjp_fn = vjp(_partial(f, args, kwargs, nums, has_aux, aux),
                          *(args[i] for i in nums))
        out_leaves, out_spec = flatten(out)
        if not holomorphic and any(np.iscomplexobj(unwrap(o)) for o in out_leaves):
            raise TypeError(
                "jacobian: the function returns complex values; for a holomorphic function "
                "pass holomorphic=True (complex inputs); otherwise take the Jacobians of its "
                "real and imaginary parts (fg.real, fg.imag) or use fg.vjp")
        shapes = [tuple(np.shape(unwrap(o))) for o in out_leaves]
        basis = _identity_rows(shapes, [_float_dtype(o) for o in out_leaves])
        if basis is None:  # no output elements: every block is empty
            rows = tuple(_tree_zeros(args[i], 0) for i in nums)
        else:
            rows = vmap(vjp_fn)(unflatten(out_spec, basis))
        per_out = []
        for start, shape in zip(_offsets(shapes), shapes):
            per_arg = [_block(rows[a], start, shape, args[i])
                       for a, i in enumerate(nums)]
            per_out.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
        jac = unflatten(out_spec, per_out)
        return (jac, _aux_output(aux[0])) if has_aux else jac

    return wrapper


def jacfwd(f: Callable[P, Any], argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable[P, Any]:
    """The Jacobian of ``f`` with respect to ``args[argnums]`` by forward mode: one JVP, mapped
    with :func:`vmap` over the columns of the identity.

    Same structure and shapes as :func:`jacrev` (JAX's ``jacfwd``); suits functions with more
    outputs than inputs. ``jacfwd(jacrev(f))`` is the Hessian (what :func:`hessian` computes).
    Complex inputs need ``holomorphic=True`` (the columns move them along the real axis only,
    which gives the complex derivative of a holomorphic ``f`` and not all of a general one), as
    in JAX; :func:`jacrev` takes them for real outputs.

    >>> import numpy as np, fungrad as fg
    >>> fg.jacfwd(lambda x: fg.stack([x[0] * x[1], fg.sin(x[0])]))(np.array([2.0, 3.0])).round(4)
    array([[ 3.    ,  2.    ],
           [-0.4161,  0.    ]])
    """

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "jacfwd")
        if holomorphic:
            _require_complex_args(args, nums, "jacfwd")
        else:
            for i in nums:
                if any(np.iscomplexobj(unwrap(x)) for x in flatten(args[i])[0]):
                    raise TypeError(
                        f"jacfwd: argument {i} is complex; forward mode along the identity's "
                        "columns moves it along the real axis only. For a holomorphic f pass "
                        "holomorphic=True; otherwise use jacrev (its rows are gradients "
                        "d/dx - i d/dy) or fg.jvp with complex tangents")
        primals = tuple(args[i] for i in nums)
        aux = []
        partial = _partial(f, args, kwargs, nums, has_aux, aux)
        leaves = [flatten(p)[0] for p in primals]
        shapes = [tuple(np.shape(unwrap(x))) for ls in leaves for x in ls]
        dtypes = [_float_dtype(x) for ls in leaves for x in ls]
        basis = _identity_rows(shapes, dtypes)
        if basis is None:
            out = partial(*primals)
            cols = _tree_map_leaves(out, lambda o: np.zeros((0,) + np.shape(unwrap(o))))
        else:
            tangents, k = [], 0
            for p, ls in zip(primals, leaves):
                tangents.append(unflatten(flatten(p)[1], basis[k:k + len(ls)]))
                k += len(ls)
            cols = vmap(lambda *ts: jvp(partial, primals, ts)[1])(*tangents)
        col_leaves, out_spec = flatten(cols)
        starts = _offsets(shapes)
        per_out = []
        for c in col_leaves:
            per_arg, k = [], 0
            for p, ls in zip(primals, leaves):
                blocks = [_column_block(c, starts[k + m], shapes[k + m])
                          for m in range(len(ls))]
                per_arg.append(unflatten(flatten(p)[1], blocks))
                k += len(ls)
            per_out.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
        jac = unflatten(out_spec, per_out)
        return (jac, _aux_output(aux[0])) if has_aux else jac

    return wrapper


def jacobian(f: Callable[P, Any], argnums: int | Sequence[int] = 0,
             holomorphic: bool = False) -> Callable[P, Any]:
    """The Jacobian of ``f`` with respect to ``args[argnums]``: shape ``out.shape + in.shape``.

    :func:`jacrev` (as JAX's ``jacobian``): pytrees work as in JAX: the result has the
    structure of ``f``'s output, each of whose leaves holds the structure of the input (a
    tuple over ``argnums`` if it is a tuple), with arrays of shape ``out_leaf.shape +
    in_leaf.shape``. Nested in ``grad`` or in itself it records, so ``jacobian(jacobian(f))``
    works. Complex outputs need ``holomorphic=True``, as in :func:`jacrev`.

    >>> import numpy as np, fungrad as fg
    >>> fg.jacobian(lambda x: x ** 2)(np.array([1.0, 3.0]))
    array([[2., 0.],
           [0., 6.]])
    >>> J = fg.jacobian(lambda p: {"s": fg.sum(p["a"] * p["b"])})(
    ...     {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])})
    >>> J["s"]["a"], J["s"]["b"]
    (array([3., 4.]), array([1., 2.]))
    """
    return jacrev(f, argnums, holomorphic=holomorphic)


def _require_complex_args(args: tuple, nums: tuple, name: str) -> None:
    for i in nums:
        if not all(np.iscomplexobj(unwrap(x)) for x in flatten(args[i])[0]):
            raise TypeError(f"{name} with holomorphic=True: argument {i} is real; holomorphic "
                            "differentiation needs complex inputs (pass z.astype(complex))")


def _partial(f: Callable, args: tuple, kwargs: dict, nums: tuple, has_aux: bool, aux: list):
    """``f`` as a function of the arguments at ``nums``; with ``has_aux`` the auxiliary output
    is put aside in ``aux``."""

    def partial(*chosen):
        full = list(args)
        for i, v in zip(nums, chosen):
            full[i] = v
        result = f(*full, **kwargs)
        if not has_aux:
            return result
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError("jacobian with has_aux=True: f must return a pair (output, aux)")
        aux[:] = [result[1]]
        return result[0]

    return partial


def _aux_output(aux):
    return _tree_output(aux) if recording.thread.depth == 0 else aux


def _offsets(shapes: list) -> list:
    starts, n = [], 0
    for s in shapes:
        starts.append(n)
        n += int(np.prod(s, dtype=np.int64))
    return starts


def _identity_rows(shapes: list, dtypes: list) -> list | None:
    """The rows of the identity over all leaves: for leaf ``k``, an array of shape
    ``(total,) + shapes[k]`` holding the one-hot rows of that leaf's elements (zeros in the
    rows of the others). None if there are no elements."""
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    total = sum(sizes)
    if total == 0:
        return None
    out, start = [], 0
    for shape, size, dtype in zip(shapes, sizes, dtypes):
        e = np.zeros((total, size), dtype=dtype)
        e[np.arange(start, start + size), np.arange(size)] = 1
        out.append(e.reshape((total,) + shape))
        start += size
    return out


def _block(rows_tree, start: int, out_shape: tuple, arg):
    """The Jacobian block of one output leaf (rows ``start:start + size`` of the mapped VJPs)
    with respect to one argument, in the argument's structure."""
    size = int(np.prod(out_shape, dtype=np.int64))
    in_leaves, in_spec = flatten(arg)
    rows = flatten(rows_tree)[0]
    blocks = []
    for leaf, r in zip(in_leaves, rows):
        in_shape = tuple(np.shape(unwrap(leaf)))
        if r is None:
            blocks.append(np.zeros(out_shape + in_shape))
            continue
        if tuple(np.shape(unwrap(r)))[0] != size:
            r = _ops.getitem(r, index=slice(start, start + size))
        blocks.append(_ops.reshape(r, shape=out_shape + in_shape))
    return unflatten(in_spec, blocks)


def _column_block(cols, start: int, in_shape: tuple):
    """The Jacobian block of one output leaf with respect to one input leaf, from the mapped
    JVPs ``cols`` (the columns first): shape ``out.shape + in_shape``."""
    size = int(np.prod(in_shape, dtype=np.int64))
    out_shape = tuple(np.shape(unwrap(cols)))[1:]
    if tuple(np.shape(unwrap(cols)))[0] != size:
        cols = _ops.getitem(cols, index=slice(start, start + size))
    nd = len(out_shape)
    moved = _ops.transpose(cols, axes=tuple(range(1, nd + 1)) + (0,)) if nd else cols
    return _ops.reshape(moved, shape=out_shape + in_shape)


def _tree_zeros(arg, n: int):
    leaves, spec = flatten(arg)
    return unflatten(spec, [np.zeros((n,) + tuple(np.shape(unwrap(x)))) for x in leaves])


def _tree_map_leaves(tree, fn: Callable):
    leaves, spec = flatten(tree)
    return unflatten(spec, [fn(x) for x in leaves])


def hessian(f: Callable[P, Any], argnums: int | Sequence[int] = 0,
            holomorphic: bool = False) -> Callable[P, Any]:
    """The Hessian of a scalar function: ``jacfwd(jacrev(f))`` (forward over reverse, as
    JAX's), shape ``in.shape * 2``.

    With pytree inputs or a tuple ``argnums`` the result is nested as in JAX
    (``hessian(f, argnums=(0, 1))`` gives ``((H00, H01), (H10, H11))``). With
    ``holomorphic=True`` it is the complex Hessian ``f''(z)`` of a holomorphic ``f``. The
    Hessian of a real function of complex inputs is not one complex matrix (its gradient is
    not holomorphic): use :func:`hvp` with complex directions, or pass the real and imaginary
    parts as separate real arguments.

    >>> import numpy as np, fungrad as fg
    >>> fg.hessian(lambda x: fg.sum(x ** 3))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    >>> fg.hessian(lambda z: z ** 3, holomorphic=True)(np.array(1.0j))  # 6 z
    array(0.+6.j)
    """
    outer = jacfwd(jacrev(f, argnums, holomorphic=holomorphic), argnums,
                   holomorphic=holomorphic)
    if holomorphic:
        return outer

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "hessian")
        for i in nums:
            if any(np.iscomplexobj(unwrap(x)) for x in flatten(args[i])[0]):
                raise TypeError(
                    f"hessian: argument {i} is complex. The Hessian of a real function of "
                    "complex inputs is not one complex matrix (its gradient df/dx - i df/dy is "
                    "not holomorphic): use fg.hvp(f)(z, v) for its action on complex "
                    "directions v, or pass the real and imaginary parts as separate real "
                    "arguments; for a holomorphic f pass holomorphic=True")
        return outer(*args, **kwargs)

    return wrapper


def hvp(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """Hessian-vector products of a scalar function: ``H @ v`` without forming ``H``.

    ``hvp(f)(*args, v)`` returns the Hessian of ``f`` with respect to ``args[argnums]``
    applied to ``v`` (same structure as that argument), at the cost of about two gradients.
    HIPS autograd users know it as ``hessian_vector_product``. For real floating arguments it
    is reverse-over-reverse, the gradient of ``<grad f(x), v>`` (H is symmetric): two backward
    passes, where forward-over-reverse (fungrad's JVP is a transposed VJP) takes three and is
    about 2.5x slower; complex or integer arguments take forward-over-reverse, ``J_grad @ v``.

    >>> import numpy as np, fungrad as fg
    >>> f = lambda x: fg.sum(x ** 3)
    >>> fg.hvp(f)(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    array([6., 0.])
    """
    if not isinstance(argnums, int):
        raise TypeError(f"hvp: argnums must be an int, got {argnums!r}")
    g = grad(f, argnums)

    def wrapper(*args_and_vector, **kwargs):
        if len(args_and_vector) < 2:
            raise TypeError("hvp: call it as hvp(f)(*args, v): the arguments of f, then the "
                            "vector")
        *args, vector = args_and_vector
        i = _argnums(argnums, len(args), "hvp")[0]

        def grad_at(x):
            full = list(args)
            full[i] = x
            return g(*full, **kwargs)

        x_leaves, x_spec = flatten(args[i])
        v_leaves, v_spec = flatten(vector)
        if x_spec == v_spec and all(_real_float(a) for a in x_leaves + v_leaves):
            def along_v(x):  # <grad f(x), v>: its gradient is H v
                terms = [_ops.sum(gx * v) for gx, v in zip(flatten(grad_at(x))[0], v_leaves)]
                return sum(terms[1:], terms[0]) if terms else 0.0
            return grad(along_v)(args[i])
        return jvp(grad_at, (args[i],), (vector,))[1]

    return wrapper


def _real_float(x: Any) -> bool:
    """Whether ``x`` holds real floating-point values (a Python float counts)."""
    return isinstance(x, float) or getattr(unwrap(x), "dtype", np.dtype(object)).kind == "f"


def elementwise_grad(f: Callable[P, Any], argnums: int = 0) -> Callable[P, Any]:
    """The gradient of ``sum(f(x))``: for an elementwise ``f``, its derivative at every element.

    As HIPS autograd's ``elementwise_grad``; one reverse pass with a cotangent of ones.

    >>> import numpy as np, fungrad as fg
    >>> fg.elementwise_grad(fg.tanh)(np.array([0.0, 1.0])).round(4)
    array([1.  , 0.42])
    """
    if not isinstance(argnums, int):
        raise TypeError(f"elementwise_grad: argnums must be an int, got {argnums!r}")

    def wrapper(*args, **kwargs):
        i = _argnums(argnums, len(args), "elementwise_grad")[0]

        def partial(x):
            full = list(args)
            full[i] = x
            return f(*full, **kwargs)

        out, vjp_fn = vjp(partial, args[i])
        leaves, spec = flatten(out)
        if any(np.iscomplexobj(unwrap(o)) for o in leaves):
            raise TypeError("elementwise_grad: the function returns complex values; it takes "
                            "real-valued functions (use fg.vjp with a cotangent of ones for a "
                            "holomorphic one)")
        ones = [np.ones(np.shape(unwrap(o)), dtype=_float_dtype(o)) for o in leaves]
        return vjp_fn(unflatten(spec, ones))[0]

    return wrapper
