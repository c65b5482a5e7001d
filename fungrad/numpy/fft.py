"""``numpy.fft``, differentiable: ``fungrad.numpy.fft`` (``fnp.fft``).

Each transform has NumPy's name, signature and result (``n`` or ``s`` to cut or zero-pad,
``axis`` or ``axes``, ``norm`` "backward", "ortho" or "forward"; ``out=`` is refused, as
everywhere in fungrad) and is a registered op (:mod:`fungrad.primitives.spectral`), so it
differentiates to any order, forward and reverse: the VJP of an FFT is an FFT. Real transforms
(``rfft``, ``irfft`` and kin) handle the halved spectrum exactly, for odd lengths too.
``np.fft.fft(t)`` on a Tensor dispatches here. ``fftfreq`` and ``rfftfreq`` (no derivative)
are NumPy's own.

Gradients follow fungrad's complex convention (see the README): for a real loss of a complex
spectrum the gradient with respect to a complex input is ``dL/dx - i dL/dy``, and a real
input gets the real part.

>>> import numpy as np, fungrad as fg, fungrad.numpy as fnp
>>> x = np.array([1.0, 2.0, 0.0, -1.0])
>>> power = lambda x: fnp.sum(fnp.abs(fnp.fft.fft(x)) ** 2)  # Parseval: 4 |x|^2
>>> fg.grad(power)(x)
array([ 8., 16.,  0., -8.])
"""

from __future__ import annotations

from typing import Any

import numpy
import numpy.fft as _np_fft

from ..primitives import spectral
from ._wrap import implements, no_out

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "hfft", "ihfft", "fftshift", "ifftshift"]


def _tuple(value: Any) -> Any:
    """A sequence of lengths or axes as a tuple (static parameters are hashable); an int or
    None as it is."""
    if value is None or numpy.ndim(value) == 0:
        return value
    return tuple(int(v) if v is not None else None for v in value)


def _one_d(name: str, op: Any) -> Any:
    @implements(getattr(_np_fft, name))
    def transform(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
                  out: Any = None) -> Any:
        no_out(f"fft.{name}", out)
        return op(a, n=n, axis=axis, norm=norm)

    return _named(transform, name, op)


def _n_d(name: str, op: Any, default_axes: Any) -> Any:
    @implements(getattr(_np_fft, name))
    def transform(a: Any, s: Any = None, axes: Any = default_axes, norm: str | None = None,
                  out: Any = None) -> Any:
        no_out(f"fft.{name}", out)
        return op(a, s=_tuple(s), axes=_tuple(axes), norm=norm)

    return _named(transform, name, op)


def _shift(name: str, op: Any) -> Any:
    @implements(getattr(_np_fft, name))
    def transform(x: Any, axes: Any = None) -> Any:
        return op(x, axes=_tuple(axes))

    return _named(transform, name, op)


def _named(f: Any, name: str, op: Any) -> Any:
    f.__name__ = f.__qualname__ = name
    f.__module__ = __name__
    doc = op.doc.split("\nTakes ndarrays, Tensors or Python numbers.")[0].rstrip()
    f.__doc__ = (doc.replace("from fungrad.primitives.spectral import", "from fungrad.numpy.fft import")
                 + f"\n\n    NumPy's ``fft.{name}``, differentiable (the fungrad op '{op.name}').")
    return f


fft = _one_d("fft", spectral.fft)
ifft = _one_d("ifft", spectral.ifft)
rfft = _one_d("rfft", spectral.rfft)
irfft = _one_d("irfft", spectral.irfft)
hfft = _one_d("hfft", spectral.hfft)
ihfft = _one_d("ihfft", spectral.ihfft)
fftn = _n_d("fftn", spectral.fftn, None)
ifftn = _n_d("ifftn", spectral.ifftn, None)
rfftn = _n_d("rfftn", spectral.rfftn, None)
irfftn = _n_d("irfftn", spectral.irfftn, None)
fft2 = _n_d("fft2", spectral.fft2, (-2, -1))
ifft2 = _n_d("ifft2", spectral.ifft2, (-2, -1))
rfft2 = _n_d("rfft2", spectral.rfft2, (-2, -1))
irfft2 = _n_d("irfft2", spectral.irfft2, (-2, -1))
fftshift = _shift("fftshift", spectral.fftshift)
ifftshift = _shift("ifftshift", spectral.ifftshift)


def __getattr__(name: str):
    # what fungrad does not define (fftfreq, rfftfreq) is numpy.fft's own
    try:
        return getattr(_np_fft, name)
    except AttributeError:
        raise AttributeError(f"module 'fungrad.numpy.fft' (and numpy.fft) has no attribute "
                             f"{name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(__all__) | {n for n in dir(_np_fft) if not n.startswith("_")})
