"""Realistic NumPy programs differentiate as they are written (issue 9).

Each program is written once against a namespace ``xp`` and run two ways: through
``fungrad.numpy`` (the import line changed), and as plain ``numpy`` calls that receive Tensors
(NumPy's own protocols dispatch them). Its gradient is checked against finite differences, and
a Hessian-vector product against finite differences of the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
import fungrad.numpy as fnp
from fungrad.testing import check_grads

RNG = np.random.default_rng(7)



# -- the programs ----------------------------------------------------------------------------


_LOGREG_X = RNG.standard_normal((20, 3))
_LOGREG_Y = (RNG.uniform(size=20) > 0.5).astype(float)
_PCA_DATA = RNG.standard_normal((12, 4)) @ np.diag([3.0, 2.0, 1.0, 0.5])
_RNN_SEQ = RNG.standard_normal((6, 3))
_RNN_U = RNG.standard_normal((3, 4)) * 0.5
_REST = np.zeros((3, 2))


def logistic_regression(xp, w, X=_LOGREG_X, y=_LOGREG_Y):
    """Mean negative log-likelihood of a logistic model, with an L2 penalty."""
    z = xp.dot(X, w)
    log_p = -xp.logaddexp(0.0, -z)
    log_not_p = -xp.logaddexp(0.0, z)
    return -xp.mean(y * log_p + (1 - y) * log_not_p) + 0.01 * xp.sum(w ** 2)


_GP_X = np.linspace(-2, 2, 8)
_GP_Y = np.sin(2 * _GP_X) + 0.1 * RNG.standard_normal(8)


def gp_marginal_likelihood(xp, log_params, X=_GP_X, y=_GP_Y):
    """Negative log marginal likelihood of a Gaussian process with an RBF kernel."""
    length, signal, noise = xp.exp(log_params[0]), xp.exp(log_params[1]), xp.exp(log_params[2])
    d2 = (X[:, None] - X[None, :]) ** 2
    K = signal * xp.exp(-0.5 * d2 / length ** 2) + (noise + 1e-6) * xp.eye(len(X))
    L = xp.linalg.cholesky(K)
    alpha = xp.linalg.solve(K, y)
    sign, logdet = xp.linalg.slogdet(K)
    return 0.5 * xp.dot(y, alpha) + 0.5 * logdet + 0.0 * xp.sum(L) + 0.5 * len(X) * xp.log(
        2 * xp.pi)


def pca_reconstruction(xp, W, data=_PCA_DATA):
    """Reconstruction error of projecting centred data on the span of W (orthonormalised by
    SVD), plus the nuclear norm of W."""
    centred = data - xp.mean(data, axis=0)
    U, s, Vt = xp.linalg.svd(W, full_matrices=False)
    basis = xp.dot(U, Vt)
    recon = xp.dot(xp.dot(centred, basis), basis.T)
    return xp.mean((centred - recon) ** 2) + 0.1 * xp.sum(s)


_GMM_X = np.concatenate([RNG.normal(-2, 0.5, 10), RNG.normal(1.5, 0.7, 10)])


def gaussian_mixture(xp, params, x=_GMM_X):
    """Negative log-likelihood of a two-component 1-D Gaussian mixture (logsumexp by hand)."""
    means, log_sd, logits = params[0:2], params[2:4], params[4:6]
    log_w = logits - xp.max(logits) - xp.log(xp.sum(xp.exp(logits - xp.max(logits))))
    z = (x[:, None] - means[None, :]) / xp.exp(log_sd)[None, :]
    log_comp = -0.5 * z ** 2 - log_sd[None, :] - 0.5 * xp.log(2 * xp.pi) + log_w[None, :]
    m = xp.max(log_comp, axis=1, keepdims=True)
    lse = m[:, 0] + xp.log(xp.sum(xp.exp(log_comp - m), axis=1))
    return -xp.sum(lse)


def rnn_loss(xp, W, seq=_RNN_SEQ, U=_RNN_U):
    """A vanilla RNN over a short sequence, loss on the final state."""
    h = xp.zeros(4)
    for x_t in seq:
        h = xp.tanh(xp.dot(h, W) + xp.dot(x_t, U))
    return xp.sum(h ** 2)


_IMAGE = RNG.standard_normal((2, 6, 6))


def conv_by_einsum(xp, kernel, images=_IMAGE):
    """A 3x3 valid convolution written with einsum over stacked shifted views."""
    n, h, w = images.shape
    patches = xp.stack([images[:, i:i + h - 2, j:j + w - 2]
                        for i in range(3) for j in range(3)], axis=-1)
    out = xp.einsum("bhwk,k->bhw", patches, xp.ravel(kernel))
    return xp.mean(xp.tanh(out) ** 2)


def spring_simulation(xp, positions, velocities=_REST, dt=0.05, steps=5):
    """Leapfrog steps of three masses joined by springs of rest length 1; final energy."""
    pairs = [(0, 1), (1, 2), (0, 2)]

    def forces(p):
        total = [xp.zeros(2), xp.zeros(2), xp.zeros(2)]
        for i, j in pairs:
            d = p[j] - p[i]
            r = xp.linalg.norm(d)
            f = (r - 1.0) * d / r
            total[i] = total[i] + f
            total[j] = total[j] - f
        return xp.stack(total)

    p, v = positions, velocities
    for _ in range(steps):
        v = v + 0.5 * dt * forces(p)
        p = p + dt * v
        v = v + 0.5 * dt * forces(p)
    potential = sum(0.5 * (xp.linalg.norm(p[j] - p[i]) - 1.0) ** 2 for i, j in pairs)
    return potential + 0.5 * xp.sum(v ** 2)


PROGRAMS = {
    "logistic_regression": (logistic_regression, np.array([0.3, -0.5, 0.8])),
    "gp_marginal_likelihood": (gp_marginal_likelihood, np.array([-0.2, 0.1, -2.0])),
    "pca_reconstruction": (pca_reconstruction, RNG.standard_normal((4, 2))),
    "gaussian_mixture": (gaussian_mixture, np.array([-1.5, 1.0, -0.5, -0.2, 0.1, -0.1])),
    "rnn": (rnn_loss, RNG.standard_normal((4, 4)) * 0.5),
    "conv_by_einsum": (conv_by_einsum, RNG.standard_normal((3, 3)) * 0.5),
    "spring_simulation": (spring_simulation,
                          np.array([[0.0, 0.0], [1.2, 0.1], [0.4, 0.9]])),
}
NAMESPACES = {"fungrad.numpy": fnp, "numpy on Tensors": np}


@pytest.mark.parametrize("xp_name", sorted(NAMESPACES))
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_program_gradient_matches_finite_differences(program, xp_name):
    f, x0 = PROGRAMS[program]
    xp = NAMESPACES[xp_name]
    value = f(fnp, x0)
    assert np.ndim(value) == 0 and np.isfinite(value)
    check_grads(lambda x: f(xp, x), x0, modes=("rev",))


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_program_values_equal_plain_numpy(program):
    f, x0 = PROGRAMS[program]
    np.testing.assert_allclose(f(fnp, x0), f(np, x0), rtol=1e-12)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_program_hessian_vector_product_matches_finite_differences(program):
    f, x0 = PROGRAMS[program]
    v = np.random.default_rng(1).standard_normal(x0.shape)
    hv = fg.hvp(lambda x: f(fnp, x))(x0, v)
    g = fg.grad(lambda x: f(fnp, x))
    h = 1e-5
    numeric = (g(x0 + h * v) - g(x0 - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, numeric, rtol=1e-4, atol=1e-6)
