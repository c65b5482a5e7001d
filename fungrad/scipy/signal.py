"""``scipy.signal.convolve`` and ``correlate`` (N-d, modes full/valid/same) and HIPS autograd's
generalized ``convolve(A, B, axes, dot_axes, mode)``, differentiable in both arrays to any
order.

A convolution here is a composite of registered ops: ``B`` padded (``pad``), its sliding
windows gathered (indexing with an array of shape (outputs, window)), and one ``einsum``
with ``A`` flipped. So its gradients (which are again convolutions), vmap and jit come from
those ops, and no separate VJP needs to be kept consistent with the forward.

>>> import numpy as np
>>> from fungrad.scipy.signal import convolve
>>> convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
array([0. , 1. , 2.5, 4. , 1.5])
"""

from __future__ import annotations

import string
from typing import Any, Sequence

import numpy as np

from ..errors import ShapeError
from ..primitives import conj, einsum, pad, transpose
from ..registry import unwrap

__all__ = ["convolve", "correlate"]

_MODES = ("full", "valid", "same")


def _shape(x: Any) -> tuple:
    return tuple(np.shape(unwrap(x)))


def convolve(in1: Any, in2: Any, axes: Any = None, dot_axes: Any = ((), ()),
             mode: str = "full", method: str = "auto") -> Any:
    """The convolution of ``in1`` and ``in2``.

    SciPy's form, ``convolve(in1, in2, mode="full")``, convolves along every axis (the arrays
    have the same number of axes); ``mode="same"`` keeps ``in1``'s size, centred as SciPy.
    HIPS autograd's form adds ``axes=([axes of in1], [axes of in2])`` to convolve along (the
    others are kept, as an outer product: the result's axes are in1's kept axes, then in2's,
    then the convolved ones) and ``dot_axes`` pairs of axes to sum over (a tensordot), as
    autograd's convnet example uses. ``method`` is accepted for SciPy's signature (the
    result is computed directly).

    >>> import numpy as np
    >>> from fungrad.scipy.signal import convolve
    >>> a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 2))
    >>> convolve(a, b, mode="valid")
    array([[ 8., 12.]])
    >>> convolve(a, np.ones(2), axes=([1], [0])).shape  # along in1's axis 1 only
    (2, 4)
    """
    if isinstance(axes, str):  # SciPy's positional order: convolve(in1, in2, mode)
        axes, mode = None, axes
    if mode not in _MODES:
        raise ValueError(f"convolve: mode must be one of {_MODES}, got {mode!r}")
    shape_a, shape_b = _shape(in1), _shape(in2)
    if axes is None:
        if len(shape_a) != len(shape_b):
            raise ShapeError(f"convolve: in1 and in2 must have the same number of axes "
                             f"(got shapes {shape_a} and {shape_b}); pass axes= to convolve "
                             "along some of them")
        axes = (tuple(range(len(shape_a))), tuple(range(len(shape_b))))
    conv_a, conv_b = (tuple(int(i) for i in axes[0]), tuple(int(i) for i in axes[1]))
    dot_a, dot_b = (tuple(int(i) for i in dot_axes[0]), tuple(int(i) for i in dot_axes[1]))
    if len(conv_a) != len(conv_b) or len(dot_a) != len(dot_b):
        raise ShapeError(f"convolve: axes {axes} and dot_axes {dot_axes} must pair as many "
                         "axes of in1 as of in2")
    for i, j in zip(dot_a, dot_b):
        if shape_a[i] != shape_b[j]:
            raise ShapeError(f"convolve: dot axes {i} of in1 (size {shape_a[i]}) and {j} of "
                             f"in2 (size {shape_b[j]}) differ in size")
    if mode == "same":
        full = _direct(in1, in2, conv_a, conv_b, dot_a, dot_b, "full")
        keep = len(shape_a) + len(shape_b) - 2 * len(conv_a) - len(dot_a) - len(dot_b)
        index = [slice(None)] * keep
        for i, j in zip(conv_a, conv_b):
            start = (shape_b[j] - 1) // 2
            index.append(slice(start, start + shape_a[i]))
        return full[tuple(index)]
    return _direct(in1, in2, conv_a, conv_b, dot_a, dot_b, mode)


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """The cross-correlation of two N-d arrays, as scipy.signal.correlate: the convolution of
    ``in1`` with ``in2`` reversed along every axis (and conjugated).

    >>> import numpy as np
    >>> from fungrad.scipy.signal import correlate
    >>> correlate(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]), mode="same")
    array([2. , 3.5, 3. ])
    """
    reversed_in2 = in2[(slice(None, None, -1),) * np.ndim(unwrap(in2))] \
        if np.ndim(unwrap(in2)) else in2
    if np.iscomplexobj(unwrap(in2)):
        reversed_in2 = conj(reversed_in2)
    return convolve(in1, reversed_in2, mode=mode, method=method)


def _direct(a: Any, b: Any, conv_a: Sequence[int], conv_b: Sequence[int],
            dot_a: Sequence[int], dot_b: Sequence[int], mode: str) -> Any:
    """Full or valid convolution, the result's axes ordered (a's kept, b's kept, conv)."""
    shape_a, shape_b = _shape(a), _shape(b)
    sizes = [(shape_a[i], shape_b[j]) for i, j in zip(conv_a, conv_b)]
    if mode == "valid" and any(nb < na for na, nb in sizes):
        if not all(nb <= na for na, nb in sizes):
            raise ShapeError("convolve: in mode 'valid' one array must be at least as large "
                             "as the other along every convolved axis (got sizes "
                             f"{[s for s in sizes]} for (in1, in2))")
        swapped = _direct(b, a, conv_b, conv_a, dot_b, dot_a, mode)  # convolution commutes
        keep_a = len(shape_a) - len(conv_a) - len(dot_a)
        keep_b = len(shape_b) - len(conv_b) - len(dot_b)
        order = (list(range(keep_b, keep_b + keep_a)) + list(range(keep_b))
                 + list(range(keep_a + keep_b, keep_a + keep_b + len(conv_a))))
        return transpose(swapped, axes=tuple(order))
    if mode == "full":
        width = [(0, 0)] * len(shape_b)
        for (na, _), j in zip(sizes, conv_b):
            width[j] = (na - 1, na - 1)
        b = pad(b, pad_width=tuple(width))
    letters = iter(string.ascii_letters)
    a_labels = [next(letters) for _ in shape_a]
    b_labels: list = [next(letters) for _ in shape_b]
    for i, j in zip(dot_a, dot_b):
        b_labels[j] = a_labels[i]
    original = list(b_labels)  # b's axes by label: takes insert axes, so positions move
    out_conv = []
    padded = _shape(b)
    for (na, _), i, j in zip(sizes, conv_a, conv_b):
        count = padded[j] - na + 1
        windows = np.arange(count)[:, None] + np.arange(na)[None, :]
        position = b_labels.index(original[j])
        b = b[(slice(None),) * position + (windows,)]  # (..., count, na, ...)
        n_label = next(letters)
        b_labels[position:position + 1] = [n_label, a_labels[i]]
        out_conv.append(n_label)
    if conv_a:  # a reversed along its convolved axes
        a = a[tuple(slice(None, None, -1) if k in conv_a else slice(None)
                    for k in range(len(shape_a)))]
    kept_a = [a_labels[i] for i in range(len(shape_a)) if i not in conv_a and i not in dot_a]
    kept_b = [b_labels[k] for k, label in enumerate(b_labels)
              if label not in a_labels and label not in out_conv]
    spec = f"{''.join(a_labels)},{''.join(b_labels)}->{''.join(kept_a + kept_b + out_conv)}"
    return einsum([a, b], subscripts=spec)
