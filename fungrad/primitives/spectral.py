"""Discrete Fourier transforms: the ops behind ``fungrad.numpy.fft``, one per NumPy function.

Each forward is NumPy's own (``numpy.fft.fftn`` and kin, with NumPy's ``n``/``s``,
``axis``/``axes`` and ``norm``). NumPy computes every transform as a sequence of 1-D ones (the
last axis first), each resizing its axis to ``n`` (cutting or zero-padding) and then
transforming it; a VJP runs that sequence backwards, each step's transpose being a 1-D
transform again, so the VJPs differentiate to any order:

* ``fft`` and ``ifft`` are symmetric matrices: the transpose of a step is the same transform of
  the cotangent (same ``norm``), then the resize undone (pad back what was cut, cut what was
  padded).
* ``rfft`` keeps ``n // 2 + 1`` of the ``n`` frequencies of a real signal, the others being
  their conjugates. With fungrad's pairing ``Re(g * dz)`` its transpose is
  ``irfft(conj(g) / w, n)`` with the opposite ``norm``, ``w`` being 1 for the frequencies that
  have no conjugate partner (0, and ``n / 2`` for even ``n``) and 2 for the others, which stand
  for two; ``irfft``'s transpose is ``w * conj(rfft(g, n))`` with the opposite ``norm``, which is
  also why the imaginary parts ``irfft`` ignores get zero gradient. Odd lengths need no special
  case.
* ``hfft`` is ``irfft`` of the conjugate and ``ihfft`` the conjugate of ``rfft`` (NumPy's own
  definitions); ``fftshift`` and ``ifftshift`` are each other's transposes.

>>> import numpy as np, fungrad as fg
>>> from fungrad.primitives.spectral import rfft
>>> x, w = np.array([1.0, 2.0, 0.5, -1.0]), np.array([1.0, 2.0, 1.0])
>>> fg.grad(lambda x: fg.sum(w * fg.abs(rfft(x)) ** 2))(x) / x  # Parseval: 4 |x|^2
array([8., 8., 8., 8.])
"""

from __future__ import annotations

import operator

import numpy as np

from .batch_rules import move_axis, ndim_of
from ..domains import Domain, Real
from ..errors import DTypeError, ShapeError
from ..registry import defop
from .elementwise import conj
from .indexing import getitem
from .manipulation import pad
from .shape import shape_of

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "hfft", "ihfft", "fftshift", "ifftshift"]

_NORMS = {None: "backward", "backward": "backward", "ortho": "ortho", "forward": "forward"}
_SWAPPED = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _norm(op: str, norm) -> str:
    try:
        return _NORMS[norm]
    except (KeyError, TypeError):
        raise ShapeError(f"{op}: norm must be None, 'backward', 'ortho' or 'forward', got "
                         f"{norm!r}") from None


def _axis(op: str, axis, ndim: int) -> int:
    try:
        a = operator.index(axis)
    except TypeError:
        raise DTypeError(f"{op}: an axis must be an int, got {axis!r}") from None
    if not -ndim <= a < ndim:
        raise ShapeError(f"{op}: axis {a} is out of range for an array of {ndim} dimensions")
    return a % ndim


def _plan(op: str, shape: tuple, s, axes, inverse_real: bool = False) -> tuple:
    """``(s, axes)`` as NumPy's n-D transforms read them: axes non-negative ints, one length
    per axis (the input's, or for an inverse real transform ``2 (m - 1)`` on the last axis)."""
    if s is None:
        axes = tuple(range(len(shape))) if axes is None else tuple(axes)
        axes = tuple(_axis(op, a, len(shape)) for a in axes)
        lengths = [shape[a] for a in axes]
        if inverse_real and axes:
            lengths[-1] = 2 * (shape[axes[-1]] - 1)
    else:
        lengths = [None if n is None else operator.index(n) for n in s]
        axes = tuple(range(-len(lengths), 0)) if axes is None else tuple(axes)
        axes = tuple(_axis(op, a, len(shape)) for a in axes)
        if len(lengths) != len(axes):
            raise ShapeError(f"{op}: s {tuple(s)} and axes {axes} have different lengths")
        lengths = [shape[a] if n is None or n == -1 else n for n, a in zip(lengths, axes)]
    for n in lengths:
        if n < 1:
            raise ShapeError(f"{op}: a transform length must be at least 1, got {n} (shape "
                             f"{shape}, s={s!r}, axes={axes!r})")
    return tuple(lengths), axes


def _one(op: str, shape: tuple, n, axis, inverse_real: bool = False) -> tuple:
    """``(n, axis)`` of a 1-D transform, as :func:`_plan` for one axis."""
    (n,), (axis,) = _plan(op, shape, None if n is None else (n,), (axis,), inverse_real)
    return n, axis


# -- fg.vmap: the batch axis first, the transform's axes counted past it -------------------------


def _batch(op, args, dims, **params):
    """The batching rule of every transform here: the batch axis goes first, non-negative
    ``axis``/``axes`` move past it, and ``axes=None`` becomes an example's own axes (the last
    ``len(s)`` of them when ``s`` is given, as NumPy reads it)."""
    (x,), (d,) = args, dims
    x = move_axis(x, d, 0)
    nd = ndim_of(x) - 1  # an example's axes
    signature = op.__signature__.parameters
    if "axis" in signature:
        params["axis"] = _past_batch(params.get("axis", signature["axis"].default))
    if "axes" in signature:
        axes = params.get("axes", signature["axes"].default)
        if axes is None:
            s = params.get("s")
            axes = tuple(range(nd)) if s is None else tuple(range(nd - len(s), nd))
        params["axes"] = _past_batch(axes)
    return op(x, **params), 0


def _past_batch(axes):
    if isinstance(axes, (tuple, list)):
        return tuple(_past_batch(a) for a in axes)
    a = operator.index(axes)
    return a + 1 if a >= 0 else a  # negative axes count from the end: still an example's


# -- the transposes of the 1-D steps ------------------------------------------------------------


def _unresize(g, axis: int, length: int):
    """The transpose of resizing an axis of length ``length`` to ``g``'s: zero-pad what was
    cut, cut what was padded."""
    n = shape_of(g)[axis]
    if n == length:
        return g
    if n > length:
        return getitem(g, index=(slice(None),) * axis + (slice(0, length),))
    widths = [(0, 0)] * len(shape_of(g))
    widths[axis] = (0, length - n)
    return pad(g, pad_width=tuple(widths))


def _weights(n: int, axis: int, ndim: int, like) -> np.ndarray:
    """1 for the frequencies of a length-``n`` real transform that have no conjugate partner
    (0, and ``n / 2`` for even ``n``), 2 for the others, shaped to broadcast along ``axis``."""
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    dtype = np.finfo(np.result_type(like.dtype, np.float32)).dtype
    return w.astype(dtype).reshape((-1,) + (1,) * (ndim - axis - 1))


def _c2c_transpose(g, inverse: bool, axis: int, norm: str, length: int):
    g = (ifft if inverse else fft)(g, axis=axis, norm=norm)
    return _unresize(g, axis, length)


def _r2c_transpose(g, n: int, axis: int, norm: str, length: int):
    w = _weights(n, axis, len(shape_of(g)), g)
    return _unresize(irfft(conj(g) / w, n=n, axis=axis, norm=_SWAPPED[norm]), axis, length)


def _c2r_transpose(g, n: int, axis: int, norm: str, length: int):
    w = _weights(n, axis, len(shape_of(g)), g)
    return _unresize(conj(rfft(g, n=n, axis=axis, norm=_SWAPPED[norm])) * w, axis, length)


def _steps_transposed(g, steps: list, norm: str):
    """Run the transposes of ``steps`` — ``(kind, axis, n, input length)`` in the order the
    forward applied them — on the cotangent ``g``, last step first."""
    for kind, axis, n, length in reversed(steps):
        if kind == "r2c":
            g = _r2c_transpose(g, n, axis, norm, length)
        elif kind == "c2r":
            g = _c2r_transpose(g, n, axis, norm, length)
        else:
            g = _c2c_transpose(g, kind == "inverse", axis, norm, length)
    return g


def _c2c_steps(shape: tuple, lengths: tuple, axes: tuple, inverse: bool) -> list:
    """NumPy's order for fftn/ifftn: the last axis first."""
    now, steps = list(shape), []
    for n, axis in reversed(list(zip(lengths, axes))):
        steps.append(("inverse" if inverse else "forward", axis, n, now[axis]))
        now[axis] = n
    return steps


def _r2c_steps(shape: tuple, lengths: tuple, axes: tuple) -> list:
    """rfftn: rfft along the last axis, then fft along the others from the last."""
    now = list(shape)
    steps = [("r2c", axes[-1], lengths[-1], now[axes[-1]])]
    now[axes[-1]] = lengths[-1] // 2 + 1
    for n, axis in reversed(list(zip(lengths[:-1], axes[:-1]))):
        steps.append(("forward", axis, n, now[axis]))
        now[axis] = n
    return steps


def _c2r_steps(shape: tuple, lengths: tuple, axes: tuple) -> list:
    """irfftn: ifft along the axes but the last, from the first, then irfft along the last."""
    now, steps = list(shape), []
    for n, axis in zip(lengths[:-1], axes[:-1]):
        steps.append(("inverse", axis, n, now[axis]))
        now[axis] = n
    steps.append(("c2r", axes[-1], lengths[-1], now[axes[-1]]))
    return steps


def _real_input(op: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind == "c":
        raise DTypeError(f"{op}: a must be real, got dtype {a.dtype} (use fft for complex "
                         "input)")
    return a


# -- complex transforms -------------------------------------------------------------------------

_SIGNAL = Real(-2.0, 2.0)
_C2C_1D = [
    (((5,),), {}), (((3, 4),), {"axis": 0}), (((4,),), {"n": 6}), (((6,),), {"n": 4}),
    (((3, 4),), {"norm": "ortho"}), (((2, 5),), {"n": 3, "axis": 1, "norm": "forward"}),
]
_C2C_ND = [
    (((3, 4),), {}), (((2, 3, 4),), {"axes": (0, 2)}), (((3, 4),), {"s": (5, 2), "axes": (0, 1)}),
    (((2, 3, 2),), {"s": (3,), "axes": (1,), "norm": "ortho"}),
    (((3, 4),), {"axes": (1, 0), "norm": "forward"}), (((3, 4),), {"s": (2, 6), "axes": (1, 1)}),
]


def _fft_vjp_for(op: str, inverse: bool):
    """The VJP of the 1-D complex transform ``op`` (fft, or ifft when ``inverse``)."""
    def vjp(g, out, a, n=None, axis=-1, norm=None):
        n, axis = _one(op, shape_of(a), n, axis)
        return (_c2c_transpose(g, inverse, axis, _norm(op, norm), shape_of(a)[axis]),)
    return vjp


def _fft(a, n=None, axis=-1, norm=None):
    return np.fft.fft(a, n, axis, norm)


fft = defop("fft", _fft, _fft_vjp_for("fft", False), Domain((_SIGNAL,), _C2C_1D, complex=True), doc="""The
    discrete Fourier transform along ``axis``, as numpy.fft.fft (``n``: the length the axis is
    cut or zero-padded to; ``norm``: "backward", "ortho" or "forward"). Its VJP is an fft of
    the cotangent.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import fft
    >>> fft(np.array([1.0, 0.0, 0.0, 0.0]))
    array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """,
    batch=_batch)


def _ifft(a, n=None, axis=-1, norm=None):
    return np.fft.ifft(a, n, axis, norm)


ifft = defop("ifft", _ifft, _fft_vjp_for("ifft", True), Domain((_SIGNAL,), _C2C_1D, complex=True), doc="""The
    inverse discrete Fourier transform along ``axis``, as numpy.fft.ifft. Its VJP is an ifft of
    the cotangent.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import ifft
    >>> ifft(np.array([4.0, 0.0, 0.0, 0.0]))
    array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """,
    batch=_batch)


def _fftn_vjp_for(op: str, inverse: bool):
    def vjp(g, out, a, s=None, axes=None, norm=None):
        shape = shape_of(a)
        lengths, axes = _plan(op, shape, s, axes)
        return (_steps_transposed(g, _c2c_steps(shape, lengths, axes, inverse),
                                  _norm(op, norm)),)
    return vjp


def _fftn(a, s=None, axes=None, norm=None):
    return np.fft.fftn(a, s, axes, norm)


def _ifftn(a, s=None, axes=None, norm=None):
    return np.fft.ifftn(a, s, axes, norm)


def _fft2(a, s=None, axes=(-2, -1), norm=None):
    return np.fft.fft2(a, s, axes, norm)


def _ifft2(a, s=None, axes=(-2, -1), norm=None):
    return np.fft.ifft2(a, s, axes, norm)


def _two_axes(cases: list) -> list:
    """The cases of an n-D transform that a 2-D one takes (its axes default to the last two)."""
    out = []
    for shapes, params in cases:
        axes = params.get("axes")
        if len(shapes[0]) >= 2 and (axes is None or len(axes) == 2):
            out.append((shapes, params))
    return out


_C2C_2D = _two_axes(_C2C_ND)

fftn = defop("fftn", _fftn, _fftn_vjp_for("fftn", False),
             Domain((_SIGNAL,), _C2C_ND, complex=True), doc="""The n-dimensional discrete
    Fourier transform over ``axes`` (all when None) with lengths ``s``, as numpy.fft.fftn.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import fftn
    >>> fftn(np.ones((2, 2))).real
    array([[4., 0.],
           [0., 0.]])
    """,
    batch=_batch)

ifftn = defop("ifftn", _ifftn, _fftn_vjp_for("ifftn", True),
              Domain((_SIGNAL,), _C2C_ND, complex=True), doc="""The n-dimensional inverse
    discrete Fourier transform, as numpy.fft.ifftn.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import ifftn
    >>> ifftn(np.array([[4.0, 0.0], [0.0, 0.0]])).real
    array([[1., 1.],
           [1., 1.]])
    """,
    batch=_batch)

fft2 = defop("fft2", _fft2, _fftn_vjp_for("fft2", False),
             Domain((_SIGNAL,), _C2C_2D, complex=True), doc="""The 2-D discrete Fourier
    transform over ``axes`` (the last two by default), as numpy.fft.fft2.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import fft2
    >>> fft2(np.ones((2, 3)))[0, 0]
    np.complex128(6+0j)
    """,
    batch=_batch)

ifft2 = defop("ifft2", _ifft2, _fftn_vjp_for("ifft2", True),
              Domain((_SIGNAL,), _C2C_2D, complex=True), doc="""The 2-D inverse discrete
    Fourier transform, as numpy.fft.ifft2.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import ifft2
    >>> ifft2(np.full((2, 3), 6.0))[0, 0]
    np.complex128(6+0j)
    """,
    batch=_batch)

# -- real transforms ----------------------------------------------------------------------------

_R2C_1D = [
    (((6,),), {}), (((5,),), {}), (((3, 4),), {"axis": 0}), (((4,),), {"n": 7}),
    (((6,),), {"n": 4, "norm": "ortho"}), (((2, 5),), {"n": 6, "axis": 1, "norm": "forward"}),
]
_C2R_1D = [
    (((4,),), {}), (((3, 4),), {"axis": 0}), (((4,),), {"n": 7}), (((5,),), {"n": 4}),
    (((3,),), {"n": 8, "norm": "ortho"}), (((2, 4),), {"n": 5, "axis": 1, "norm": "forward"}),
]
_R2C_ND = [
    (((3, 4),), {}), (((2, 3, 5),), {"axes": (0, 2)}),
    (((3, 4),), {"s": (5, 3), "axes": (0, 1), "norm": "ortho"}),
    (((2, 3, 4),), {"s": (3, 6), "axes": (2, 1), "norm": "forward"}),
]
_C2R_ND = [
    (((3, 4),), {}), (((2, 3, 4),), {"axes": (0, 2)}),
    (((3, 4),), {"s": (2, 7), "axes": (0, 1), "norm": "ortho"}),
    (((2, 3, 4),), {"s": (3, 5), "axes": (2, 1), "norm": "forward"}),
]
_R2C_2D = _two_axes(_R2C_ND)
_C2R_2D = _two_axes(_C2R_ND)
_REAL_IN = [None]  # complex outputs, real inputs


def _rfft(a, n=None, axis=-1, norm=None):
    return np.fft.rfft(_real_input("rfft", a), n, axis, norm)


def _rfft_vjp(g, out, a, n=None, axis=-1, norm=None):
    n, axis = _one("rfft", shape_of(a), n, axis)
    return (_r2c_transpose(g, n, axis, _norm("rfft", norm), shape_of(a)[axis]),)


rfft = defop("rfft", _rfft, _rfft_vjp, Domain((_SIGNAL,), _R2C_1D, complex=_REAL_IN), doc="""The
    discrete Fourier transform of a real signal along ``axis``: its ``n // 2 + 1``
    non-negative frequencies, as numpy.fft.rfft. Its VJP is an irfft of the conjugated
    cotangent, each frequency with a conjugate partner counted twice.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import rfft
    >>> rfft(np.array([1.0, 1.0, 1.0, 1.0]))
    array([4.+0.j, 0.+0.j, 0.+0.j])
    """,
    batch=_batch)


def _irfft(a, n=None, axis=-1, norm=None):
    return np.fft.irfft(a, n, axis, norm)


def _irfft_vjp(g, out, a, n=None, axis=-1, norm=None):
    n, axis = _one("irfft", shape_of(a), n, axis, inverse_real=True)
    return (_c2r_transpose(g, n, axis, _norm("irfft", norm), shape_of(a)[axis]),)


irfft = defop("irfft", _irfft, _irfft_vjp, Domain((_SIGNAL,), _C2R_1D, complex=True), doc="""The
    real signal of length ``n`` (default ``2 (m - 1)``) whose non-negative frequencies are
    ``a``, as numpy.fft.irfft (the imaginary parts of frequency 0, and of ``n / 2`` for even
    ``n``, are ignored: their gradient is zero). Its VJP is an rfft of the cotangent.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import irfft
    >>> irfft(np.array([4.0, 0.0, 0.0]))
    array([1., 1., 1., 1.])
    """,
    batch=_batch)


def _rfftn_vjp_for(op: str):
    def vjp(g, out, a, s=None, axes=None, norm=None):
        shape = shape_of(a)
        lengths, axes = _plan(op, shape, s, axes)
        return (_steps_transposed(g, _r2c_steps(shape, lengths, axes), _norm(op, norm)),)
    return vjp


def _irfftn_vjp_for(op: str):
    def vjp(g, out, a, s=None, axes=None, norm=None):
        shape = shape_of(a)
        lengths, axes = _plan(op, shape, s, axes, inverse_real=True)
        return (_steps_transposed(g, _c2r_steps(shape, lengths, axes), _norm(op, norm)),)
    return vjp


def _rfftn(a, s=None, axes=None, norm=None):
    return np.fft.rfftn(_real_input("rfftn", a), s, axes, norm)


def _irfftn(a, s=None, axes=None, norm=None):
    return np.fft.irfftn(a, s, axes, norm)


def _rfft2(a, s=None, axes=(-2, -1), norm=None):
    return np.fft.rfft2(_real_input("rfft2", a), s, axes, norm)


def _irfft2(a, s=None, axes=(-2, -1), norm=None):
    return np.fft.irfft2(a, s, axes, norm)


rfftn = defop("rfftn", _rfftn, _rfftn_vjp_for("rfftn"),
              Domain((_SIGNAL,), _R2C_ND, complex=_REAL_IN), doc="""The n-dimensional discrete
    Fourier transform of a real array, halved along the last of ``axes``, as numpy.fft.rfftn.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import rfftn
    >>> rfftn(np.ones((2, 4))).shape
    (2, 3)
    """,
    batch=_batch)

irfftn = defop("irfftn", _irfftn, _irfftn_vjp_for("irfftn"),
               Domain((_SIGNAL,), _C2R_ND, complex=True), doc="""The real array whose
    n-dimensional transform, halved along the last of ``axes``, is ``a``, as numpy.fft.irfftn.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import irfftn
    >>> irfftn(np.array([[8.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """,
    batch=_batch)

rfft2 = defop("rfft2", _rfft2, _rfftn_vjp_for("rfft2"),
              Domain((_SIGNAL,), _R2C_2D, complex=_REAL_IN), doc="""The 2-D discrete Fourier
    transform of a real array, as numpy.fft.rfft2.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import rfft2
    >>> rfft2(np.ones((2, 4)))[0, 0]
    np.complex128(8+0j)
    """,
    batch=_batch)

irfft2 = defop("irfft2", _irfft2, _irfftn_vjp_for("irfft2"),
               Domain((_SIGNAL,), _C2R_2D, complex=True), doc="""The inverse of rfft2, as
    numpy.fft.irfft2.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import irfft2
    >>> irfft2(np.array([[8.0, 0.0, 0.0], [0.0, 0.0, 0.0]])).shape
    (2, 4)
    """,
    batch=_batch)

# -- Hermitian transforms: NumPy's own definitions on irfft and rfft --------------------------


def _hfft(a, n=None, axis=-1, norm=None):
    return np.fft.hfft(a, n, axis, norm)


def _hfft_vjp(g, out, a, n=None, axis=-1, norm=None):
    # hfft(a) = irfft(conj(a)) with the opposite norm
    n, axis = _one("hfft", shape_of(a), n, axis, inverse_real=True)
    swapped = _SWAPPED[_norm("hfft", norm)]
    return (conj(_c2r_transpose(g, n, axis, swapped, shape_of(a)[axis])),)


hfft = defop("hfft", _hfft, _hfft_vjp, Domain((_SIGNAL,), _C2R_1D, complex=True), doc="""The
    real spectrum of length ``n`` of a signal with Hermitian symmetry, given by its first half
    ``a``, as numpy.fft.hfft: ``irfft(conj(a))`` with the opposite ``norm``.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import hfft
    >>> hfft(np.array([1.0, 0.0, 0.0]))
    array([1., 1., 1., 1.])
    """,
    batch=_batch)


def _ihfft(a, n=None, axis=-1, norm=None):
    return np.fft.ihfft(_real_input("ihfft", a), n, axis, norm)


def _ihfft_vjp(g, out, a, n=None, axis=-1, norm=None):
    # ihfft(a) = conj(rfft(a)) with the opposite norm
    n, axis = _one("ihfft", shape_of(a), n, axis)
    swapped = _SWAPPED[_norm("ihfft", norm)]
    return (_r2c_transpose(conj(g), n, axis, swapped, shape_of(a)[axis]),)


ihfft = defop("ihfft", _ihfft, _ihfft_vjp, Domain((_SIGNAL,), _R2C_1D, complex=_REAL_IN),
              doc="""The inverse of hfft for a real spectrum, as numpy.fft.ihfft:
    ``conj(rfft(a))`` with the opposite ``norm``.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import ihfft
    >>> ihfft(np.array([1.0, 1.0, 1.0, 1.0]))
    array([1.-0.j, 0.-0.j, 0.-0.j])
    """,
    batch=_batch)

# -- shifts ---------------------------------------------------------------------------------------

_SHIFT_CASES = [(((5,),), {}), (((4,),), {}), (((4, 5),), {"axes": 1}), (((3, 4),), {}),
                (((2, 3, 4),), {"axes": (0, 2)})]


def _fftshift(x, axes=None):
    return np.fft.fftshift(x, axes)


def _ifftshift(x, axes=None):
    return np.fft.ifftshift(x, axes)


fftshift = defop("fftshift", _fftshift, lambda g, out, x, axes=None: (ifftshift(g, axes=axes),),
                 Domain((_SIGNAL,), _SHIFT_CASES, complex=True), doc="""The zero frequency
    moved to the centre of ``axes`` (all when None), as numpy.fft.fftshift; its transpose is
    ifftshift.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import fftshift
    >>> fftshift(np.arange(5.0))
    array([3., 4., 0., 1., 2.])
    """,
    batch=_batch)

ifftshift = defop("ifftshift", _ifftshift,
                  lambda g, out, x, axes=None: (fftshift(g, axes=axes),),
                  Domain((_SIGNAL,), _SHIFT_CASES, complex=True), doc="""The inverse of
    fftshift, as numpy.fft.ifftshift; its transpose is fftshift.

    >>> import numpy as np
    >>> from fungrad.primitives.spectral import ifftshift
    >>> ifftshift(np.arange(5.0))
    array([2., 3., 4., 0., 1.])
    """,
    batch=_batch)
