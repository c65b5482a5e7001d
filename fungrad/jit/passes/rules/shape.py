"""Lowering rules of shape and indexing ops: views (free at run time: reshape of a contiguous
value, transpose, squeeze, expand_dims, broadcasts, basic indexing), joins (copies into parts
of one buffer), gathers and scatters of rows."""

from __future__ import annotations

import numpy as np

from ....primitives.indexing import is_advanced
from ....primitives.manipulation import pad_pairs
from ....primitives.shape import normalize_axes
from ...ir import FLOATS, Node, Own, Scalar, Unsupported, View, c_strides
from ...program import Step, Var
from ..lowering import Lowering, index_view, registered, rule, sub_view, view_index, view_of

__all__ = ["gather", "scatter_rows"]


def _reshape(low: Lowering, step: Step) -> None:
    x, out = step.inputs[0], step.outputs[0]
    if type(x) is not Var or not low.is_array(x):
        raise Unsupported("reshape of a non-buffer")
    if out.size == 0:
        raise Unsupported("empty")
    if not low.contiguous(x):
        x = low.contiguous_copy(x)
    low.make_view(out, x, 0, c_strides(out.shape))


def _transpose(low, step):
    axes = step.params.get("axes")
    view_of(low, step.inputs[0], step.outputs[0], lambda a: np.transpose(a, axes))


def _squeeze(low, step):
    view_of(low, step.inputs[0], step.outputs[0],
             lambda a: np.squeeze(a, step.params.get("axis")))


def _expand_dims(low, step):
    view_of(low, step.inputs[0], step.outputs[0],
             lambda a: np.expand_dims(a, step.params["axis"]))


def _broadcast_to(low, step):
    x = step.inputs[0]
    if type(x) is Var and isinstance(low.storage[x.id], Scalar):
        low.storage[step.outputs[0].id] = low.storage[x.id]
        return
    view_of(low, x, step.outputs[0], lambda a: np.broadcast_to(a, step.params["shape"]))


def _expand(low, step):
    dim, copies = step.params["dim"], step.params["copies"]
    view_of(low, step.inputs[0], step.outputs[0],
             lambda a: np.broadcast_to(np.expand_dims(a, dim),
                                       a.shape[:dim] + (copies,) + a.shape[dim:]))


def _getitem(low: Lowering, step: Step) -> None:
    x, out = step.inputs[0], step.outputs[0]
    index = step.params["index"]
    if not step.dynamic and (type(index) is int or not is_advanced(index)):
        if type(index) is int:  # (view_of computes a row itself: no function needed)
            view_of(low, x, out, None, index)
        elif _reverses(index):
            _gather(low, x, low.arg(_positions(x.shape, index)), out, flat=True)
        else:
            view_of(low, x, out, lambda a: a[view_index(index)], index)
        return
    idx = index
    if type(idx) is not Var and not isinstance(idx, np.ndarray):
        raise Unsupported("advanced index other than one integer array")
    _gather(low, x, low.arg(idx), out)


def _reverses(index) -> bool:
    """Whether a basic index has a slice with a negative step (``a[::-1]``): its view would
    have negative strides, which views here never have."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, slice) and i.step is not None and i.step < 0 for i in items)


def _positions(shape: tuple, index) -> np.ndarray:
    """The C-order positions, in an array of ``shape``, of the elements ``a[index]`` selects,
    in the result's C order: ``a[index]`` is then a gather of the flattened ``a``."""
    every = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    return np.ascontiguousarray(every[view_index(index)]).reshape(-1)


def _gather(low: Lowering, x: Var, idx, out: Var, flat: bool = False) -> None:
    """Rows ``idx`` of ``x`` (elements of the flattened ``x`` with ``flat``) into ``out``."""
    if type(x) is not Var or not low.is_array(x) or x.dtype not in FLOATS or not x.shape:
        raise Unsupported("gather source")
    if type(idx) is not Var or not low.is_array(idx) or idx.dtype != np.dtype(np.int64):
        raise Unsupported("gather indices")
    x = low.contiguous_copy(x)
    idx = low.contiguous_copy(idx)
    row = 1 if flat else int(np.prod(x.shape[1:], dtype=np.int64))
    rows = x.size if flat else x.shape[0]
    low.block("gather", (x, idx), out, x.dtype, count=idx.size, rows=rows, row=row)


def _index_select(low, step):
    _gather(low, step.inputs[0], low.arg(step.inputs[1]), step.outputs[0])


def _scatter_rows(low: Lowering, values, idx, out: Var, rows: int) -> None:
    if type(values) is not Var or not low.is_array(values) or out.dtype not in FLOATS:
        raise Unsupported("scatter values")
    if values.dtype != out.dtype:
        raise Unsupported("scatter dtype")
    if type(idx) is not Var or not low.is_array(idx) or idx.dtype != np.dtype(np.int64):
        raise Unsupported("scatter indices")
    idx = low.contiguous_copy(idx)
    row = int(np.prod(out.shape[1:], dtype=np.int64))
    k = len(idx.shape)
    _, _, strides = low.layout(values)
    row_shape = values.shape[k:]
    if k in (1, 2) and row_shape == out.shape[1:] and (
            row <= 1 or strides[k:] == c_strides(row_shape)):
        # the values' rows are read where they are, even broadcast along the index axes
        inner = 1 if k == 1 else idx.shape[1]
        vs_out, vs_in = strides[0], (0 if k == 1 else strides[1])
    else:
        values = low.contiguous_copy(values)
        inner, vs_out, vs_in = 1, row, 0
    low.block("scatter", (values, idx), out, out.dtype, count=idx.size, rows=rows, row=row,
              inner=inner, vs_out=vs_out, vs_in=vs_in)


def _scatter_add(low, step):
    _scatter_rows(low, step.inputs[0], low.arg(step.inputs[1]), step.outputs[0],
                  step.params["n_rows"])


def _scatter_index(low: Lowering, step: Step) -> None:
    g, out = step.inputs[0], step.outputs[0]
    index, shape = step.params["index"], tuple(step.params["shape"])
    if step.dynamic or type(index) is not int and is_advanced(index):
        if type(index) is Var or isinstance(index, np.ndarray):
            _scatter_rows(low, g, low.arg(index), out, shape[0])
            return
        raise Unsupported("scatter with a tuple index")
    if out.dtype not in FLOATS or type(g) is not Var:
        raise Unsupported("scatter_index")
    _zeros_with(low, g, out, index_view(shape, c_strides(shape), index))


def _roll(low: Lowering, step: Step) -> None:
    """roll: a gather of the flattened input at the positions NumPy's roll moves each element
    from (a constant of the program, as a reversed slice's)."""
    x, out = step.inputs[0], step.outputs[0]
    if type(x) is not Var or out.size == 0:
        raise Unsupported("roll of a constant or of nothing")
    every = np.arange(x.size, dtype=np.int64).reshape(x.shape)
    positions = np.roll(every, step.params["shift"], step.params.get("axis")).reshape(-1)
    _gather(low, x, low.arg(positions), out, flat=True)


def _pad(low: Lowering, step: Step) -> None:
    """pad (constant mode): the output filled with the constant, the input copied into the
    view of it that ``pad_width`` leaves."""
    x, out = step.inputs[0], step.outputs[0]
    value = step.params.get("constant_values", 0)
    if type(x) is not Var or not low.is_array(x) or out.dtype not in FLOATS \
            or x.dtype != out.dtype or not isinstance(value, (int, float, np.integer, np.floating)):
        raise Unsupported("pad of other than a float array with one constant")
    pairs = pad_pairs(step.params["pad_width"], len(x.shape))
    part = index_view(out.shape, c_strides(out.shape),
                      tuple(slice(b, b + n) for (b, _), n in zip(pairs, x.shape)))
    _zeros_with(low, x, out, part, float(value))


def _pieces(low: Lowering, step: Step, indices: list) -> None:
    """Outputs that are the views ``x[index]`` of the step's input, one per index."""
    if step.dynamic or any(o.size == 0 for o in step.outputs):
        raise Unsupported("empty pieces")
    for out, index in zip(step.outputs, indices):
        view_of(low, step.inputs[0], out, None, index)


def _split(low: Lowering, step: Step) -> None:
    x = step.inputs[0]
    axis = normalize_axes("split", step.params.get("axis", 0), len(x.shape))[0]
    cuts = [0, *step.params["indices"], x.shape[axis]]
    lead = (slice(None),) * axis
    _pieces(low, step, [lead + (slice(a, b),) for a, b in zip(cuts, cuts[1:])])


def _unstack(low: Lowering, step: Step) -> None:
    x = step.inputs[0]
    axis = normalize_axes("unstack", step.params.get("axis", 0), len(x.shape))[0]
    lead = (slice(None),) * axis
    _pieces(low, step, [lead + (i,) for i in range(x.shape[axis])])


def _zeros_with(low: Lowering, g: Var, out: Var, part: tuple, value: float = 0.0) -> None:
    """``out`` = zeros (or ``value``) with ``g`` copied into its ``part`` (element offset,
    shape, strides): a fill and a copy into that view of it (with zeros,
    ``rewrite.accumulate`` may turn the pair into an add into a running sum)."""
    offset, vshape, vstrides = part
    low.block("fill", (), out, out.dtype, value=value)
    target = low.new_var(vshape, out.dtype)
    low.storage[target.id] = View(out.id, offset, vshape, vstrides)
    copy = Node("ew", "copy", (g,), (target,), out.dtype, {"into": out})
    nodes = low.nodes
    nodes.append(copy)
    if value == 0.0 and not low.in_loop:  # (a term Lowering.add_scatter may sum: the
        # program's, not a body's)
        low.scatters[out.id] = (nodes[-2], copy, len(nodes) - 1)


def _plane_view(params: dict):
    """``a``'s diagonal at the step's offset of its plane (axis1, axis2): a view."""
    offset, axis1, axis2 = (params.get("offset", 0), params.get("axis1", 0),
                            params.get("axis2", 1))
    return lambda a: np.diagonal(a, offset, axis1, axis2)


def _diagonal(low: Lowering, step: Step) -> None:
    """A diagonal is a strided view (the op copies NumPy's only because it is read-only)."""
    if step.outputs[0].size == 0:
        raise Unsupported("empty")
    view_of(low, step.inputs[0], step.outputs[0], _plane_view(step.params))


def _diag_embed(low: Lowering, step: Step) -> None:
    """Zeros with ``g`` on a diagonal (the VJP of ``diagonal``)."""
    g, out = step.inputs[0], step.outputs[0]
    if out.dtype not in FLOATS or type(g) is not Var or g.size == 0 or step.dynamic:
        raise Unsupported("diag_embed")
    part = sub_view(out.shape, c_strides(out.shape), _plane_view(step.params))
    if part[1] != g.shape:
        raise Unsupported("diag_embed shape")
    _zeros_with(low, g, out, part)


def _join(stack: bool):
    def handle(low: Lowering, step: Step) -> None:
        out = step.outputs[0]
        if out.dtype not in FLOATS or step.dynamic:
            raise Unsupported("join dtype")
        arrays = [low.arg(a) for a in step.inputs]
        if step.params.get("axis", 0) is None or any(
                type(a) is Var and len(a.shape) + stack != len(out.shape) for a in arrays):
            raise Unsupported("joining flattened arrays")
        axis = normalize_axes("stack" if stack else "concatenate", step.params.get("axis", 0),
                              len(out.shape))[0]
        low.storage[out.id] = Own()
        start = 0
        full = c_strides(out.shape)
        for a in arrays:
            if type(a) is Var and not low.is_array(a) and low.kind_of(a) != "scalar":
                raise Unsupported("join of a non-buffer")
            width = 1 if stack else (a.shape[axis] if type(a) is Var else 1)
            index = (slice(None),) * axis + ((start,) if stack else (slice(start,
                                                                           start + width),))
            offset, vshape, vstrides = sub_view(out.shape, full,
                                                lambda o, i=index: o[view_index(i)])
            target = low.new_var(vshape, out.dtype)
            low.storage[target.id] = View(out.id, offset, vshape, vstrides)
            low.nodes.append(Node("ew", "copy", (a,), (target,), dtype=out.dtype,
                                  params={"into": out}))
            start += width
    return handle


rule(registered("reshape"))(_reshape)
rule(registered("transpose"))(_transpose)
rule(registered("squeeze"))(_squeeze)
rule(registered("expand_dims"))(_expand_dims)
rule(registered("broadcast_to"))(_broadcast_to)
rule(registered("expand"))(_expand)
rule(registered("getitem"))(_getitem)
rule(registered("index_select"))(_index_select)
rule(registered("scatter_add"))(_scatter_add)
rule(registered("scatter_index"))(_scatter_index)
rule(registered("diagonal"))(_diagonal)
rule(registered("diag_embed"))(_diag_embed)
rule(registered("split"))(_split)
rule(registered("roll"))(_roll)
rule(registered("pad"))(_pad)
rule(registered("unstack"))(_unstack)
rule(registered("concatenate"))(_join(False))
rule(registered("stack"))(_join(True))
gather, scatter_rows = _gather, _scatter_rows
