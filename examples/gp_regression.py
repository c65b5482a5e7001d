"""Gaussian-process regression: fit the kernel's hyperparameters by minimising the negative log
marginal likelihood, written as plain NumPy code against ``fungrad.numpy``.

The likelihood uses ``cholesky``, ``solve`` and ``slogdet``; ``fg.value_and_grad`` gives its
gradient with respect to the hyperparameters (log length scale, log signal variance, log noise
variance), which Adam follows; ``fg.hessian`` (second derivatives through the Cholesky factor
and the solves) then polishes the optimum with a few Newton steps. The same ``nlml`` run on
ndarrays is plain NumPy: it returns the value NumPy computes.

Run ``python examples/gp_regression.py`` (a few seconds; ``--help`` lists the options);
``main(...)`` takes short settings. It writes no files.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: threads cost more
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

try:
    import fungrad as fg
except ImportError:  # running from a source checkout without installing fungrad
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import fungrad as fg
import fungrad.numpy as fnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the _cli helper
import _cli  # noqa: E402

NAMES = ("log length scale", "log signal variance", "log noise variance")


def kernel(theta, xa, xb):
    """The squared-exponential kernel exp(theta[1]) * exp(-|xa - xb|^2 / (2 exp(theta[0])^2))."""
    sq = (xa[:, None] - xb[None, :]) ** 2
    return fnp.exp(theta[1]) * fnp.exp(-0.5 * sq / fnp.exp(2 * theta[0]))


def nlml(theta, x, y):
    """The negative log marginal likelihood -log p(y | x, theta) of a zero-mean GP."""
    n = x.shape[0]
    k = kernel(theta, x, x) + fnp.exp(theta[2]) * np.eye(n)
    chol = fnp.linalg.cholesky(k)
    z = fnp.linalg.solve(chol, y)  # y^T K^-1 y = |L^-1 y|^2
    _, logdet = fnp.linalg.slogdet(k)
    return 0.5 * fnp.sum(z * z) + 0.5 * logdet + 0.5 * n * np.log(2 * np.pi)


def predict(theta, x, y, x_new):
    """The posterior mean at ``x_new``."""
    n = x.shape[0]
    k = kernel(theta, x, x) + fnp.exp(theta[2]) * np.eye(n)
    chol = fnp.linalg.cholesky(k)
    alpha = fnp.linalg.solve(chol.T, fnp.linalg.solve(chol, y))
    return kernel(theta, x_new, x) @ alpha


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-3.0, 3.0, n))
    return x, np.sin(2.0 * x) + 0.1 * rng.standard_normal(n)


def adam(value_and_grad, theta, args, steps: int, lr: float):
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    history = []
    for t in range(1, steps + 1):
        value, g = value_and_grad(theta, *args)
        history.append(float(value))
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        theta = theta - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return theta, history


def newton(theta, args, steps: int):
    """Newton steps with ``fg.hessian``, once Adam is near the optimum."""
    grad, hess = fg.grad(nlml), fg.hessian(nlml)
    norms = []
    for _ in range(steps):
        g = grad(theta, *args)
        norms.append(float(np.linalg.norm(g)))
        theta = theta - np.linalg.solve(hess(theta, *args), g)
    norms.append(float(np.linalg.norm(grad(theta, *args))))
    return theta, norms


def main(n: int = 60, steps: int = 300, newton_steps: int = 3, seed: int = 0) -> dict:
    x, y = make_data(n, seed)
    theta0 = np.zeros(3)  # length scale 1, signal variance 1, noise variance 1
    theta, history = adam(fg.value_and_grad(nlml), theta0, (x, y), steps, lr=0.05)
    theta, norms = newton(theta, (x, y), newton_steps)
    x_test = np.linspace(-3.0, 3.0, 7)
    mean = predict(theta, x, y, x_test)
    print(f"negative log marginal likelihood: {history[0]:.3f} -> {float(nlml(theta, x, y)):.3f}")
    for name, value in zip(NAMES, theta):
        print(f"  {name:20s} {value:+.3f}  ({np.exp(value):.3f})")
    print("gradient norm after each Newton step:", " ".join(f"{g:.1e}" for g in norms))
    print("posterior mean vs sin(2x):", np.round(mean, 2), np.round(np.sin(2 * x_test), 2))
    return {"history": history, "theta": theta, "newton_norms": norms, "mean": mean,
            "truth": np.sin(2 * x_test), "x": x, "y": y}


if __name__ == "__main__":
    parser = _cli.parser(__doc__)
    parser.add_argument("--points", type=int, default=60, help="noisy samples of sin(2x)")
    parser.add_argument("--steps", type=int, default=300,
                        help="Adam steps on the hyperparameters")
    parser.add_argument("--newton-steps", type=int, default=3,
                        help="Newton steps with fg.hessian after Adam")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data")
    args = parser.parse_args()
    main(n=args.points, steps=args.steps, newton_steps=args.newton_steps, seed=args.seed)
