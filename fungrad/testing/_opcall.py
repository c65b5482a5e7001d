"""One concrete call of a registered op: what ``op_inputs`` draws and the properties check."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from ..domains import Real
from ..registry import Op, lookup

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = ["OpCall"]


class OpCall:
    """An op with concrete array arguments and static parameters.

    ``float_args`` are the arguments that are differentiated (a :class:`~fungrad.domains.Real`
    spec on a differentiable input); ``function()`` is the op as a function of those alone, the
    others (indices, labels, masks) held fixed: the form :func:`~fungrad.testing.check_grads`
    takes.

    >>> import numpy as np, fungrad as fg
    >>> from fungrad.testing import OpCall, check_grads
    >>> call = OpCall("index_select", [np.ones((4, 2)), np.array([0, 3, 3])], {})
    >>> call.float_positions, call.run().shape
    ([0], (3, 2))
    >>> check_grads(call.function(), *call.float_args)
    """

    __slots__ = ("op", "args", "params", "output")

    def __init__(self, op: Op | str, args: Sequence[Any], params: Mapping | None = None,
                 output: int | None = None) -> None:
        self.op = lookup(op)
        self.args = tuple(args)
        self.params = dict(params or {})
        # a multi-output op is checked through one view at a time: output ``i`` alone (the
        # others receive no cotangent), or, for None, all floating outputs raveled and joined
        n_out = self.op.n_outputs
        if output is not None and not (n_out != 1 and 0 <= output < (n_out or output + 1)):
            raise ValueError(f"OpCall: output={output!r} for op '{self.op.name}' with "
                             f"{n_out} output(s)")
        self.output = output

    @property
    def float_positions(self) -> list[int]:
        """Positions of the differentiated arguments."""
        op, n = self.op, len(self.args)
        diff = op.differentiable
        return [i for i in range(n) if isinstance(op.domain.spec(i), Real)
                and np.asarray(self.args[i]).dtype.kind in "fc"
                and (diff is None or diff[i])]

    @property
    def float_args(self) -> tuple:
        """The differentiated arguments themselves, in order (what ``function()`` takes).

        >>> import numpy as np
        >>> call = OpCall("where", [np.array([True, False]), np.ones(2), np.zeros(2)])
        >>> call.float_positions, len(call.float_args)
        ([1, 2], 2)
        """
        return tuple(self.args[i] for i in self.float_positions)

    def run(self, args: Sequence[Any] | None = None) -> Any:
        """Call the op on ``args`` (default: this call's arguments) with this call's params.

        For a multi-output op, the result is this call's view of the outputs (see ``views``).
        """
        result = self._call(self.args if args is None else tuple(args))
        return result if self.op.n_outputs == 1 else self._view(result)

    def n_outputs(self) -> int:
        """How many outputs this call gives (an op with ``n_outputs=None`` decides per call)."""
        n = self.op.n_outputs
        return n if n is not None else len(self._call(self.args))

    def _call(self, args: tuple) -> Any:
        if self.op.n_inputs is None:
            return self.op(list(args), **self.params)
        return self.op(*args, **self.params)

    def _view(self, outs: tuple) -> Any:
        """One output, or all floating and complex ones raveled and joined; complex outputs
        the domain calls ``phase_free`` (eigenvectors) through ``abs``."""
        if self.output is not None:
            return self._checked(self.output, outs[self.output])
        from ..primitives import concatenate, reshape  # noqa: PLC0415 (testing sits above the ops)

        floats = [self._checked(i, o) for i, o in enumerate(outs) if _kind(o) in "fc"]
        return concatenate([reshape(o, shape=(-1,)) for o in floats], axis=0)

    def _checked(self, i: int, out: Any) -> Any:
        if i in self.op.domain.phase_free and _kind(out) == "c":
            from ..primitives import abs as abs_op  # noqa: PLC0415

            return abs_op(out)  # defined up to a phase per column: check what is not
        return out

    def _phase_free(self, i: int, out: Any) -> bool:
        return i in self.op.domain.phase_free and _kind(out) == "c"

    def views(self) -> list["OpCall"]:
        """This call for each view of a multi-output op's outputs (itself for one output)."""
        if self.op.n_outputs == 1:
            return [self]
        return [OpCall(self.op, self.args, self.params, v)
                for v in [None, *range(self.n_outputs())]]

    def raw_vjp(self, g: Any, needs: tuple) -> Sequence:
        """The op's own VJP on ndarrays for the cotangent ``g`` of this call's output."""
        args = tuple(self.args)
        out = self._call(args)
        if self.op.n_outputs == 1:
            return self.op.run_vjp(g, out, args, self.params, needs)
        # (a phase-free output is viewed through abs: its raw cotangent is left out)
        gs: Any
        if self.output is not None:
            gs = tuple(g if i == self.output and not self._phase_free(i, o) else None
                       for i, o in enumerate(out))
        else:
            gs, start = [], 0
            g = np.asarray(g)
            for i, o in enumerate(out):
                if _kind(o) not in "fc":
                    gs.append(None)
                    continue
                n = np.size(o)
                piece = g[start:start + n].reshape(np.shape(o))
                start += n
                if self._phase_free(i, o):
                    gs.append(None)
                elif _kind(o) == "f" and np.iscomplexobj(piece):
                    gs.append(np.ascontiguousarray(piece.real))
                else:
                    gs.append(piece.astype(o.dtype) if _kind(o) == "c" else piece)
            gs = tuple(gs)
        if all(gi is None for gi in gs):  # only phase-free outputs in view: no cotangent
            return [None] * len(args)
        return self.op.run_vjp(gs, out, args, self.params, needs)

    def function(self) -> Callable:
        """``f(*float_args)``: the op with its other arguments held fixed."""
        positions = self.float_positions

        def f(*xs):
            full = list(self.args)
            for i, x in zip(positions, xs):
                full[i] = x
            return self.run(full)

        f.__name__ = f.__qualname__ = self.op.name
        names = _input_names(self.op)
        if names is not None:  # so that check_grads names the op's own arguments
            f.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
                inspect.Parameter(names[i] if i < len(names) else f"x{i}",
                                  inspect.Parameter.POSITIONAL_ONLY) for i in positions])
        return f

    def with_args(self, args: Sequence[Any]) -> "OpCall":
        """The same op, params and view on other arguments.

        >>> import numpy as np
        >>> OpCall("exp", [np.zeros(2)]).with_args([np.ones(3)]).shapes()
        ((3,),)
        """
        return OpCall(self.op, args, self.params, self.output)

    def astype(self, dtype: DTypeLike) -> "OpCall":
        """The same call with every floating-point argument cast to ``dtype`` (and every
        complex one to the complex dtype of that precision)."""
        real = np.dtype(dtype)
        cplx = np.result_type(real, np.complex64)
        return self.with_args([
            np.asarray(a).astype(real) if np.asarray(a).dtype.kind == "f"
            else np.asarray(a).astype(cplx) if np.asarray(a).dtype.kind == "c" else a
            for a in self.args
        ])

    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of each argument.

        >>> import numpy as np
        >>> OpCall("add", [np.ones((2, 3)), 1.0]).shapes()
        ((2, 3), ())
        """
        return tuple(tuple(np.shape(a)) for a in self.args)

    def __repr__(self) -> str:
        args = ", ".join(_array_repr(a) for a in self.args)
        params = ", ".join(f"{k}={_param_repr(v)}" for k, v in self.params.items())
        view = "" if self.output is None else f", output={self.output}"
        return f"OpCall({self.op.name!r}, [{args}], {{{params}}}{view})" if not params else \
            f"OpCall({self.op.name!r}, [{args}], dict({params}){view})"


def _kind(x: Any) -> str:
    dtype = getattr(x, "dtype", None)  # (a Tensor's: asarray refuses a recorded one)
    return np.dtype(dtype).kind if dtype is not None else np.asarray(x).dtype.kind


def _input_names(op: Op) -> list[str] | None:
    try:
        params = inspect.signature(op.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    names = [p.name for p in params
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return names if op.n_inputs is not None and len(names) == op.n_inputs else None


def _array_repr(a) -> str:
    a = np.asarray(a)
    body = np.array2string(a, separator=", ", floatmode="unique", threshold=10_000,
                           max_line_width=10_000)
    return f"np.array({body}, dtype=np.{a.dtype.name})"


def _param_repr(v) -> str:
    if isinstance(v, np.ndarray):
        return _array_repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(_param_repr(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def param_defaults(op: Op) -> dict:
    """The defaults of ``op``'s static parameters, read from its forward's signature (empty
    when the signature cannot be read)."""
    try:
        sig = inspect.signature(op.forward)
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in sig.parameters.values() if p.default is not p.empty}
