"""Hypothesis strategies: shapes, arrays in a domain, valid inputs for any registered op, pytrees.

Every strategy here is an ordinary Hypothesis strategy, so it composes with
``hypothesis.strategies`` and ``hypothesis.extra.numpy`` (pass a strategy wherever a shape or a
dtype is expected, or use :func:`elements` inside ``hnp.arrays``).

>>> import numpy as np, fungrad as fg
>>> from hypothesis import given
>>> from fungrad.testing import check_grads, strategies as fst
>>> @given(fst.op_inputs("tanh"))
... def test_tanh(call):
...     check_grads(call.function(), *call.float_args, order=2)
>>> test_tanh()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from ..domains import Complex, Domain, Mask, Real, spread
from ..registry import Op, lookup
from ..tree import flatten, unflatten
from ._opcall import OpCall, param_defaults

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

#: A shape, or a strategy that draws one.
ShapeLike = Union[tuple, SearchStrategy[tuple]]
#: A dtype, or a strategy that draws one (such as :func:`float_dtypes`).
DTypeOrStrategy = Union["DTypeLike", SearchStrategy[np.dtype]]

__all__ = [
    "shapes", "broadcastable_shapes", "float_dtypes", "complex_dtypes", "elements", "arrays",
    "index_arrays",
    "op_cases", "op_inputs", "pytrees", "parameters_like", "OpCall",
]

_UNIT = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)
_DEFAULT = Real()


def _resolve(draw, value):
    return draw(value) if isinstance(value, SearchStrategy) else value


def shapes(*, min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
           max_side: int = 4) -> SearchStrategy[tuple]:
    """Array shapes; 0-d included by default, no empty axes unless ``min_side=0``.

    >>> from fungrad.testing import strategies as fst
    >>> fst.shapes(max_dims=2).example().__class__
    <class 'tuple'>
    """
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(n: int = 2, *, min_dims: int = 0, max_dims: int = 3,
                         min_side: int = 1, max_side: int = 4) -> SearchStrategy[tuple]:
    """Tuples of ``n`` shapes that broadcast together (different ranks, size-1 axes, 0-d).

    >>> import numpy as np
    >>> from fungrad.testing import strategies as fst
    >>> a, b = fst.broadcastable_shapes(2).example()
    >>> np.broadcast_shapes(a, b) is not None
    True
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side,
    ).map(lambda r: tuple(r.input_shapes))


def complex_dtypes() -> SearchStrategy[np.dtype]:
    """complex64 or complex128.

    >>> from fungrad.testing import strategies as fst
    >>> fst.complex_dtypes().example().kind
    'c'
    """
    return st.sampled_from([np.dtype(np.complex64), np.dtype(np.complex128)])


def float_dtypes() -> SearchStrategy[np.dtype]:
    """float32 or float64.

    >>> from fungrad.testing import strategies as fst
    >>> fst.float_dtypes().example().name in ("float32", "float64")
    True
    """
    return st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])


def elements(spec: Real | None = None, dtype: DTypeLike = np.float64
             ) -> SearchStrategy[float]:
    """Scalars from a :class:`~fungrad.domains.Real` spec (bounds, avoided points), exactly
    representable in ``dtype``: the ``elements`` argument of ``hnp.arrays``.

    >>> import numpy as np
    >>> import hypothesis.extra.numpy as hnp
    >>> from fungrad.domains import positive
    >>> from fungrad.testing import strategies as fst
    >>> x = hnp.arrays(np.float32, (3,), elements=fst.elements(positive(), np.float32)).example()
    >>> bool((x > 0).all())
    True
    """
    spec = spec or _DEFAULT
    dt = np.dtype(dtype)
    return _UNIT.map(lambda u: float(dt.type(spec.from_unit(u))))  # type: ignore[call-overload]


def arrays(shape: ShapeLike, spec: Real | Complex | None = None, *,
           dtype: DTypeOrStrategy = np.float64, apart: float = 0.0) -> SearchStrategy[np.ndarray]:
    """Float arrays with values from ``spec`` (default: reals in [-2, 2]); complex arrays for
    a complex ``dtype`` or a :class:`~fungrad.domains.Complex` spec (real parts from its
    ``real`` spec, imaginary parts from its ``imag``; a Real spec gives ``Complex(spec)``).

    ``shape`` and ``dtype`` may be values or strategies. ``apart > 0`` keeps any two elements
    (their real parts) at least that far apart (ties are kinks for max, sort, median...).

    >>> import numpy as np
    >>> from fungrad.domains import reals
    >>> from fungrad.testing import strategies as fst
    >>> x = fst.arrays((5,), reals(-1, 1, avoid=(0,)), apart=0.05).example()
    >>> bool((np.abs(x) >= 0.1).all()), len(set(x.tolist()))
    (True, 5)
    >>> fst.arrays((2,), dtype=np.complex64).example().dtype
    dtype('complex64')
    """
    spec = spec or _DEFAULT

    @st.composite
    def build(draw):
        shp = tuple(_resolve(draw, shape))
        dt = np.dtype(_resolve(draw, dtype))
        cspec = spec if isinstance(spec, Complex) else Complex(spec)
        if isinstance(spec, Complex) and dt.kind != "c":
            dt = np.result_type(dt, np.complex64)
        real = cspec.real
        u = draw(hnp.arrays(np.float64, shp, elements=_UNIT))
        if apart > 0:
            u = spread(u, apart / max(real.length, 1e-12))
        if dt.kind != "c":
            return np.asarray(real.from_unit(u), dtype=dt).reshape(shp)
        v = draw(hnp.arrays(np.float64, shp, elements=_UNIT))
        return np.asarray(cspec.from_units(u, v), dtype=dt).reshape(shp)

    return build()


def index_arrays(shape: ShapeLike, bound: int) -> SearchStrategy[np.ndarray]:
    """int64 arrays of indices in ``[0, bound)`` (repeats allowed).

    >>> from fungrad.testing import strategies as fst
    >>> ids = fst.index_arrays((4,), 3).example()
    >>> ids.dtype.name, bool(((0 <= ids) & (ids < 3)).all())
    ('int64', True)
    """
    return hnp.arrays(np.int64, shape, elements=st.integers(0, max(int(bound) - 1, 0)))


# -- inputs of registered ops ------------------------------------------------------------------


def _choices(domain: Domain, name: str):
    values = domain.params.get(name)
    return None if values is None else st.sampled_from(list(values))


def _extra_params(op: Op, domain: Domain, skip: tuple) -> SearchStrategy[dict]:
    """Invented cases: params from ``domain.params`` choices, others at their defaults."""
    strategies = {name: s for name in op.param_names if name not in skip
                  and (s := _choices(domain, name)) is not None}
    return st.fixed_dictionaries(strategies)


def _axis_for(ndim: int, default) -> SearchStrategy:
    if isinstance(default, (int, np.integer)) and not isinstance(default, bool):
        return st.integers(-ndim, ndim - 1)  # ops like softmax want one axis
    options: list[SearchStrategy[Any]] = [st.none()]
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
    options.append(st.lists(st.integers(0, max(ndim - 1, 0)), unique=True,
                            max_size=ndim).map(lambda a: tuple(sorted(a))))
    return st.one_of(*options)


@st.composite
def _reduction_case(draw, op: Op, domain: Domain, max_dims: int, max_side: int):
    defaults = param_defaults(op)
    axis_default = defaults.get("axis")
    needs_axis = "axis" in op.param_names
    one_axis = isinstance(axis_default, (int, np.integer)) and not isinstance(axis_default, bool)
    shape = draw(shapes(min_dims=1 if one_axis else 0, max_dims=max_dims, max_side=max_side))
    params: dict = {}
    if needs_axis:
        choice = _choices(domain, "axis")
        params["axis"] = draw(choice if choice is not None else _axis_for(len(shape),
                                                                         axis_default))
    if "keepdims" in op.param_names:
        params["keepdims"] = draw(_choices(domain, "keepdims") or st.booleans())
    params.update(draw(_extra_params(op, domain, ("axis", "keepdims"))))
    n = op.n_inputs if op.n_inputs is not None else 1
    return (shape,) * n, params


@st.composite
def _elementwise_case(draw, op: Op, domain: Domain, max_dims: int, max_side: int):
    n = op.n_inputs if op.n_inputs is not None else draw(st.integers(1, 3))
    if n == 0:
        return (), {}
    shape_tuple = draw(broadcastable_shapes(n, max_dims=max_dims, max_side=max_side))
    return shape_tuple, draw(_extra_params(op, domain, ()))


def op_cases(op: Op | str, *, cases: str = "any", max_dims: int = 3,
             max_side: int = 4) -> SearchStrategy[tuple]:
    """``(shapes, params)`` pairs for ``op``: its declared cases, and (``cases="any"`` or
    ``"invented"``) new ones its domain's ``kind`` allows — any broadcast-compatible shapes for
    ``"elementwise"`` ops, any shape with a valid ``axis`` (and ``keepdims``) for
    ``"reduction"`` ops.

    >>> from fungrad.testing import strategies as fst
    >>> shapes, params = fst.op_cases("add", cases="invented").example()
    >>> len(shapes), params
    (2, {})
    """
    op = lookup(op)
    domain = op.domain
    if cases not in ("any", "declared", "invented"):
        raise ValueError(f"op_cases: cases must be 'any', 'declared' or 'invented', got {cases!r}")
    declared = st.sampled_from(list(domain.cases)) if domain.cases else None
    invented: SearchStrategy[Any] | None = None
    if domain.kind == "elementwise":
        invented = _elementwise_case(op, domain, max_dims, max_side)
    elif domain.kind == "reduction":
        invented = _reduction_case(op, domain, max_dims, max_side)
    if cases == "declared" or (cases == "any" and invented is None):
        if declared is None:
            raise ValueError(f"op_cases: op '{op.name}' declares no cases")
        return declared
    if cases == "invented":
        if invented is None:
            raise ValueError(f"op_cases: op '{op.name}' is of kind '{domain.kind}': it has no "
                             "shapes to invent, only its declared cases")
        return invented
    if invented is None or declared is None:
        return invented if declared is None else declared  # type: ignore[return-value]
    return st.one_of(declared, invented)


def op_inputs(op: Op | str, *, dtype: DTypeOrStrategy = np.float64, cases: str = "any",
              max_dims: int = 3,
              max_side: int = 4) -> SearchStrategy[OpCall]:
    """Valid arguments for a registered op (by name or Op), drawn from its declared domain.

    Draws an :class:`~fungrad.testing.OpCall`: ``call.args`` (arrays: floats from each input's
    :class:`~fungrad.domains.Real` spec in ``dtype``, index and label arrays valid for the
    arrays they index, masks), ``call.params`` (static parameters), ``call.float_args`` and
    ``call.function()`` for :func:`~fungrad.testing.check_grads`. ``cases`` chooses between
    the declared cases, invented ones (see :func:`op_cases`) or ``"any"``. ``dtype`` may be a
    strategy such as :func:`float_dtypes`; a complex ``dtype`` draws the inputs that the op's
    domain lets be complex from their :class:`~fungrad.domains.Complex` specs (real and
    imaginary parts both drawn), the others real.

    >>> import numpy as np
    >>> from fungrad.testing import strategies as fst
    >>> call = fst.op_inputs("log").example()
    >>> bool((call.args[0] > 0).all())
    True
    >>> fst.op_inputs("exp", dtype=np.complex128).example().args[0].dtype
    dtype('complex128')
    """
    op = lookup(op)
    case_strategy = op_cases(op, cases=cases, max_dims=max_dims, max_side=max_side)
    domain = op.domain
    if not isinstance(dtype, SearchStrategy) and np.dtype(dtype).kind == "c" \
            and not domain.accepts_complex:
        raise ValueError(f"op_inputs: op '{op.name}' accepts no complex inputs (its domain "
                         "declares none)")

    @st.composite
    def build(draw):
        shape_list, params = draw(case_strategy)
        shape_list = [tuple(s) for s in shape_list]
        dt = np.dtype(_resolve(draw, dtype))
        units = [draw(hnp.arrays(np.float64, s, elements=_UNIT))
                 if isinstance(domain.spec(i), Real) else None
                 for i, s in enumerate(shape_list)]
        imag = None
        if dt.kind == "c":  # imaginary parts for the inputs that may be complex
            imag = [draw(hnp.arrays(np.float64, s, elements=_UNIT))
                    if domain.complex_spec(i) is not None else None
                    for i, s in enumerate(shape_list)]

        def integers(spec, shape, bound):
            if isinstance(spec, Mask):
                return draw(hnp.arrays(np.bool_, shape))
            return draw(index_arrays(shape, bound))

        args, params = domain.build(units, shape_list, params, dt, integers=integers,
                                    imag_units=imag)
        output = None
        call = OpCall(op, args, params)
        if op.n_outputs != 1:  # which view of a multi-output op's outputs is checked
            output = draw(st.sampled_from([None, *range(call.n_outputs())]))
        return OpCall(op, args, params, output)

    return build()


# -- pytrees -----------------------------------------------------------------------------------

_KEYS = st.sampled_from(["w", "b", "gamma", "beta", "embed", "h0"])


def pytrees(leaves: SearchStrategy | None = None, *, max_leaves: int = 6) -> SearchStrategy:
    """Nested dicts, lists and tuples of arrays (the shape of model parameters).

    >>> from fungrad.tree import flatten
    >>> from fungrad.testing import strategies as fst
    >>> len(flatten(fst.pytrees(max_leaves=3).example())[0]) >= 1
    True
    """
    leaves = leaves if leaves is not None else arrays(shapes(max_dims=2, max_side=3))
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.dictionaries(_KEYS, children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3),
            st.tuples(children, children),
        ),
        max_leaves=max_leaves,
    )


def parameters_like(tree: Any, spec: Real | None = None) -> SearchStrategy:
    """Pytrees with the structure, shapes and float dtypes of ``tree`` and fresh values from
    ``spec`` (for checking a model's loss at many parameter values); non-float leaves are kept.

    >>> import numpy as np
    >>> from fungrad.testing import strategies as fst
    >>> p = fst.parameters_like({"w": np.zeros((3, 2)), "b": np.zeros(2)}).example()
    >>> sorted(p), p["w"].shape
    (['b', 'w'], (3, 2))
    """
    leaves, spec_tree = flatten(tree)
    parts = []
    for x in leaves:
        a = np.asarray(getattr(x, "data", x))
        if a.dtype.kind in "fc":
            parts.append(arrays(a.shape, spec, dtype=a.dtype))
        else:
            parts.append(st.just(x))
    return st.tuples(*parts).map(lambda xs: unflatten(spec_tree, list(xs)))
