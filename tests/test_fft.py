"""fungrad.numpy.fft: NumPy's values, signatures and errors, and derivatives to second order in
both modes for every transform with its ``n``/``s``, ``axis``/``axes`` and ``norm``, on real
and complex inputs (the registry-driven suite checks each op's declared cases as well)."""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad import Tensor
from fungrad.errors import DTypeError, ShapeError
from fungrad.testing import check_grads

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 5))
Z = RNG.standard_normal((4, 5)) + 1j * RNG.standard_normal((4, 5))
X3 = RNG.standard_normal((3, 4, 5)) / 3

ONE_D = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]
N_D = ["fft2", "ifft2", "fftn", "ifftn", "rfft2", "irfft2", "rfftn", "irfftn"]
REAL_ONLY = {"rfft", "ihfft", "rfft2", "rfftn"}


def _inputs(name):
    return [X] if name in REAL_ONLY else [X, Z]


@pytest.mark.parametrize("name", ONE_D)
@pytest.mark.parametrize("kw", [{}, {"n": 3}, {"n": 8}, {"n": 7, "axis": 0},
                                {"norm": "ortho"}, {"n": 6, "norm": "forward"}])
def test_one_dimensional_transforms(name, kw):
    ours, theirs = getattr(fnp.fft, name), getattr(np.fft, name)
    for a in _inputs(name):
        np.testing.assert_allclose(ours(a, **kw), theirs(a, **kw), rtol=1e-12, atol=1e-12)
        check_grads(lambda a: ours(a, **kw), a, order=2, modes=("rev", "fwd"))


@pytest.mark.parametrize("name", N_D)
@pytest.mark.parametrize("kw", [{}, {"axes": (0, 2)}, {"s": (5, 3), "axes": (2, 0)},
                                {"s": (2, 6), "axes": (0, 1), "norm": "ortho"},
                                {"axes": (1, 2), "norm": "forward"}])
def test_n_dimensional_transforms(name, kw):
    ours, theirs = getattr(fnp.fft, name), getattr(np.fft, name)
    z3 = X3 + 1j * X3[::-1]
    for a in ([X3] if name in REAL_ONLY else [X3, z3]):
        np.testing.assert_allclose(ours(a, **kw), theirs(a, **kw), rtol=1e-12, atol=1e-12)
        check_grads(lambda a: ours(a, **kw), a, order=2, modes=("rev", "fwd"))


@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn"])
def test_repeated_axes_transform_twice_as_numpy_does(name):
    ours, theirs = getattr(fnp.fft, name), getattr(np.fft, name)
    kw = {"s": (3, 6), "axes": (1, 1)}
    np.testing.assert_allclose(ours(X, **kw), theirs(X, **kw), rtol=1e-12, atol=1e-12)
    check_grads(lambda a: ours(a, **kw), X, order=1, modes=("rev", "fwd"))


@pytest.mark.parametrize("name", ["fftshift", "ifftshift"])
@pytest.mark.parametrize("axes", [None, 0, (1,), (0, 1)])
def test_shifts(name, axes):
    ours, theirs = getattr(fnp.fft, name), getattr(np.fft, name)
    for a in (X, Z):
        np.testing.assert_array_equal(ours(a, axes=axes), theirs(a, axes=axes))
        check_grads(lambda a: ours(a, axes=axes), a, order=1, modes=("rev", "fwd"))


def test_real_transforms_count_each_conjugate_pair_once_for_odd_and_even_lengths():
    # Parseval: sum |x|^2 = sum_k w_k |X_k|^2 / n, with w = 1 at 0 (and n/2), 2 elsewhere
    for n in (6, 7):
        x = RNG.standard_normal(n)
        w = np.full(n // 2 + 1, 2.0)
        w[0] = 1.0
        if n % 2 == 0:
            w[-1] = 1.0
        energy = lambda x, w=w, n=n: fnp.sum(w * fnp.abs(fnp.fft.rfft(x)) ** 2) / n
        np.testing.assert_allclose(energy(x), np.sum(x ** 2))
        np.testing.assert_allclose(fg.grad(energy)(x), 2 * x)
        # irfft ignores the imaginary part of frequency 0 (and n/2): zero gradient there
        spectrum = np.fft.rfft(x) + 0.3j
        g = fg.grad(lambda s, n=n, x=x: fnp.sum(fnp.fft.irfft(s, n) * x))(spectrum)
        assert g[0].imag == 0 and (n % 2 or g[-1].imag == 0)


def test_round_trips_and_the_gradient_of_a_convolution():
    x, k = RNG.standard_normal(16), RNG.standard_normal(16)
    np.testing.assert_allclose(fnp.fft.irfft(fnp.fft.rfft(x), 16), x)

    def circular(x, k):  # a real function computed through complex spectra
        return fnp.fft.irfft(fnp.fft.rfft(x) * fnp.fft.rfft(k), 16)

    direct = lambda x, k: fg.stack([fg.sum(x * fg.roll(k[::-1], shift=i + 1))
                                    for i in range(16)])
    np.testing.assert_allclose(circular(x, k), direct(x, k), atol=1e-12)
    for i in range(2):
        np.testing.assert_allclose(
            fg.grad(lambda x, k: fg.sum(circular(x, k) ** 3), argnums=i)(x, k),
            fg.grad(lambda x, k: fg.sum(direct(x, k) ** 3), argnums=i)(x, k), atol=1e-10)


def test_numpy_dispatches_tensors_to_the_differentiable_transforms():
    t = Tensor(X, autograd=True)
    y = np.fft.fft2(t)
    assert isinstance(y, Tensor) and y.dtype == np.complex128
    fg.sum(fg.abs(np.fft.fftshift(y)) ** 2).backward()
    np.testing.assert_allclose(t.grad.data, 2 * X.size * X)  # Parseval
    assert fnp.fft.fftfreq(4).tolist() == [0.0, 0.25, -0.5, -0.25]  # NumPy's own


def test_float32_gives_complex64_and_float32_gradients():
    x = X.astype(np.float32)
    assert fnp.fft.rfft(x).dtype == np.complex64
    g = fg.grad(lambda x: fnp.sum(fnp.abs(fnp.fft.rfft2(x))))(x)
    assert g.dtype == np.float32
    g = fg.grad(lambda z: fnp.sum(fnp.abs(fnp.fft.ifft(z))))(Z.astype(np.complex64))
    assert g.dtype == np.complex64


def test_bad_arguments_get_errors_naming_the_transform():
    with pytest.raises(DTypeError, match="rfft: a must be real"):
        fnp.fft.rfft(Z)
    with pytest.raises(DTypeError, match="out="):
        fnp.fft.fft(X, out=np.empty((4, 5), complex))
    t = Tensor(X, autograd=True)
    with pytest.raises(ShapeError, match="fftn"):
        fg.grad(lambda a: fnp.sum(fnp.abs(fnp.fft.fftn(a, s=(3, 3), axes=(0,)))))(t.data)
    with pytest.raises((ShapeError, ValueError), match="norm"):
        fnp.fft.fft(t, norm="both")


@pytest.mark.parametrize("name, kw", [("fft", {"axis": 0}), ("ifftn", {}), ("rfft2", {}),
                                      ("irfftn", {"s": (3, 6), "axes": (1, 0)}),
                                      ("fftn", {"s": (2, 3), "axes": (0, 1)}),
                                      ("fftshift", {}), ("hfft", {"n": 7})])
def test_vmap_maps_every_transform_over_a_batch_axis(name, kw):
    f = lambda a: getattr(fnp.fft, name)(a, **kw)
    batch = X3 if name == "rfft2" else X3 + 1j * X3[::-1]
    want = np.stack([f(batch[:, i]) for i in range(batch.shape[1])])
    np.testing.assert_allclose(fg.vmap(f, in_axes=1)(batch), want, atol=1e-12)
    if name != "rfft2":  # per-example gradients of a real loss of complex examples
        loss = lambda a: fnp.sum(fnp.abs(f(a)) ** 2)
        per_example = fg.vmap(fg.grad(loss), in_axes=1)(batch)
        np.testing.assert_allclose(per_example,
                                   np.stack([fg.grad(loss)(batch[:, i])
                                             for i in range(batch.shape[1])]), atol=1e-10)
