"""fungrad.scipy.stats against scipy.stats (values) and finite differences (gradients in the
value and every continuous parameter, second order, both modes)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

import scipy.stats as ss  # noqa: E402

import fungrad as fg  # noqa: E402
from fungrad.scipy import stats as fs  # noqa: E402
from fungrad.testing import check_grads  # noqa: E402

_rng = np.random.default_rng(0)
_X = _rng.uniform(0.2, 0.8, 4)
_A = _rng.uniform(1.2, 3.0, 4)
_B = _rng.uniform(1.2, 3.0, 4)
_LOC = _rng.normal(size=4)
_SCALE = _rng.uniform(0.5, 2.0, 4)
_Z = _rng.normal(size=4)
_CONT = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"]
_DISC = ["pmf", "logpmf", "cdf", "logcdf", "sf", "logsf"]

# name: (arguments, functions, the first differentiable argument)
CASES = {
    "norm": ([_Z, _LOC, _SCALE], _CONT, 0),
    "t": ([_Z, _A + 2.0, _LOC, _SCALE], _CONT, 0),
    "gamma": ([_X + 1.0, _A], _CONT, 0),
    "beta": ([_X, _A, _B], _CONT, 0),
    "chi2": ([_X + 1.0, _A], _CONT, 0),
    "expon": ([_X + 1.0, _LOC - 3.0, _SCALE], _CONT, 0),
    "laplace": ([_Z + 2.0, _LOC - 2.0, _SCALE], _CONT, 0),
    "uniform": ([_X, np.full(4, -0.5), _SCALE + 1.0], _CONT, 0),
    "lognorm": ([_X + 1.0, _A / 3.0, np.zeros(4), _SCALE], _CONT, 0),
    "cauchy": ([_Z, _LOC, _SCALE], _CONT, 0),
    "poisson": ([np.array([0.0, 1.0, 3.0, 5.0]), _A], _DISC, 1),
    "binom": ([np.array([0.0, 1.0, 3.0, 5.0]), np.array([5.0, 6.0, 7.0, 8.0]), _X], _DISC, 2),
    "bernoulli": ([np.zeros(4), _X], _DISC, 1),  # (at k = 1 the sf is 0: log 0)
    "bernoulli_one": ([np.ones(4), _X], ["pmf", "logpmf", "cdf"], 1),
}
CALLS = [(name, fn) for name, (_, fns, _) in CASES.items() for fn in fns]


@pytest.mark.parametrize("name, fn", CALLS, ids=[f"{n}.{f}" for n, f in CALLS])
def test_matches_scipy(name, fn):
    args = CASES[name][0]
    dist = name.split("_")[0]
    ours = getattr(getattr(fs, dist), fn)(*args)
    np.testing.assert_allclose(ours, getattr(getattr(ss, dist), fn)(*args), rtol=1e-9,
                               atol=1e-12)


@pytest.mark.parametrize("name, fn", CALLS, ids=[f"{n}.{f}" for n, f in CALLS])
def test_gradients_in_every_continuous_argument(name, fn):
    args, _, first = CASES[name]
    f = getattr(getattr(fs, name.split("_")[0]), fn)
    for i in range(first, len(args)):
        def g(v, i=i):
            return f(*args[:i], v, *args[i + 1:])
        check_grads(g, args[i], order=2, modes=("rev", "fwd"))


def _psd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + np.eye(d)


def test_multivariate_normal_matches_scipy_and_differentiates():
    rng = np.random.default_rng(1)
    x, m, c = rng.normal(size=(5, 3)), rng.normal(size=3), _psd(rng, 3)
    mvn = fs.multivariate_normal
    np.testing.assert_allclose(mvn.logpdf(x, m, c), ss.multivariate_normal.logpdf(x, m, c))
    np.testing.assert_allclose(mvn.pdf(x[0], m, c), ss.multivariate_normal.pdf(x[0], m, c))
    np.testing.assert_allclose(mvn.entropy(m, c), ss.multivariate_normal.entropy(m, c))
    check_grads(lambda x_, m_, c_: mvn.logpdf(x_, m_, 0.5 * (c_ + c_.T)), x, m, c, order=2,
                modes=("rev", "fwd"))
    check_grads(lambda c_: mvn.entropy(m, 0.5 * (c_ + c_.T)), c, order=2)


def test_multivariate_normal_singular_covariance_as_scipy():
    rng = np.random.default_rng(2)
    cov, m = np.diag([1.0, 2.0, 0.0]), rng.normal(size=3)
    x = np.concatenate([rng.normal(size=(4, 2)), np.tile(m[2:], (4, 1))], axis=1)
    mvn = fs.multivariate_normal
    np.testing.assert_allclose(mvn.logpdf(x, m, cov, allow_singular=True),
                               ss.multivariate_normal.logpdf(x, m, cov, allow_singular=True))
    check_grads(lambda m_: mvn.logpdf(x, m_, cov, allow_singular=True), m, order=2)
    with pytest.raises(fg.errors.FungradError, match="allow_singular"):
        fg.grad(lambda c: mvn.logpdf(x, m, c, allow_singular=True).sum())(cov)


def test_dirichlet_matches_scipy_and_differentiates():
    alpha, x = np.array([1.5, 2.0, 3.0]), np.array([0.2, 0.3, 0.5])
    pts = np.stack([x, x[::-1]], axis=1)
    np.testing.assert_allclose(fs.dirichlet.logpdf(x, alpha), ss.dirichlet.logpdf(x, alpha))
    np.testing.assert_allclose(fs.dirichlet.pdf(pts, alpha), ss.dirichlet.pdf(pts, alpha))
    check_grads(lambda x_, a_: fs.dirichlet.logpdf(x_ / x_.sum(), a_), x, alpha, order=2)


def test_rvs_is_scipys():
    draws = fs.norm.rvs(0.0, 1.0, size=3, random_state=0)
    np.testing.assert_array_equal(draws, ss.norm.rvs(0.0, 1.0, size=3, random_state=0))


def test_importing_fungrad_does_not_import_scipy():
    import subprocess
    import sys
    code = "import sys, fungrad; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
