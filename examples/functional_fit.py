"""The functional style: pure functions of parameter dicts, differentiated by ``fg`` transforms.

1. Fit a small MLP to noisy ``sin(3x)`` with ``fg.value_and_grad`` over a dict of parameters
   (plain NumPy arrays in, plain arrays out; Adam written in a few lines of NumPy).
2. Newton's method with ``fg.hessian``: with the hidden features fixed, fitting the MLP's
   output layer is a (ridge) least-squares problem, so one Newton step lands on its exact
   optimum (checked against the closed form); and a logistic regression, where Newton's
   iterations converge quadratically (the gradient norm roughly squares at each step).

Run ``python examples/functional_fit.py`` (a few seconds); ``main(...)`` takes short settings.
"""

from __future__ import annotations

import os
import sys
import time

# Small matrices: BLAS worker threads cost more than they save, and stall badly on a busy
# machine (40x slower steps measured on 2 loaded cores). Set before NumPy loads BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

try:
    import fungrad as fg
except ImportError:  # running from a source checkout without installing fungrad
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import fungrad as fg
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the examples' _plots helper
import _cli  # noqa: E402
from _plots import save_plot


def init_mlp(sizes: list[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``{"w0", "b0", "w1", "b1", ...}`` with the book's ``randn * sqrt(2 / fan_in)``."""
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"w{i}"] = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        params[f"b{i}"] = np.zeros(n_out)
    return params


def features(params: dict, x):
    """The hidden representation: every layer but the last, with tanh."""
    n_layers = len(params) // 2
    h = x
    for i in range(n_layers - 1):
        h = fg.tanh(h @ params[f"w{i}"] + params[f"b{i}"])
    return h


def predict(params: dict, x):
    last = len(params) // 2 - 1
    return features(params, x) @ params[f"w{last}"] + params[f"b{last}"]


def mse(params: dict, x, y):
    return fg.mean((predict(params, x) - y) ** 2)


def adam_fit(loss, params: dict, args: tuple, steps: int, lr: float = 0.01,
             log_every: int = 500) -> tuple[dict, list[float]]:
    """Adam on a dict of arrays, driven by ``fg.value_and_grad(loss)``."""
    value_and_grad = fg.value_and_grad(loss)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    history = []
    for t in range(1, steps + 1):
        value, grads = value_and_grad(params, *args)
        history.append(float(value))
        for k in params:
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            step = lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
            params = {**params, k: params[k] - step}
        if log_every and t % log_every == 0:
            print(f"step {t:5d}  mse {history[-1]:.5f}")
    return params, history


def newton_output_layer(params: dict, x, y,
                        l2: float = 1e-4) -> tuple[dict, float, float, float]:
    """One Newton step on the output layer, ``theta = [w_last, b_last]``, via ``fg.hessian``.

    With the hidden features fixed, the (ridge-regularised) loss is quadratic in ``theta``, so
    one step from anywhere lands on its minimum. Returns the new parameters, the loss before and
    after the step, and the loss at the closed-form ridge solution (the last two agree). The
    small ``l2`` keeps the Hessian well conditioned: a trained net's features are nearly
    collinear.
    """
    last = len(params) // 2 - 1
    h = np.asarray(fg.Tensor(features(params, x)).data)  # fixed features, as an ndarray
    n, n_hidden = h.shape
    target = y[:, 0]

    def loss(theta):
        residual = h @ theta[:n_hidden] + theta[n_hidden] - target
        return fg.mean(residual ** 2) + l2 * fg.sum(theta * theta)

    theta = np.concatenate([params[f"w{last}"][:, 0], params[f"b{last}"]])
    g = fg.grad(loss)(theta)
    H = fg.hessian(loss)(theta)
    theta_new = theta - np.linalg.solve(H, g)
    design = np.hstack([h, np.ones((n, 1))])
    exact = np.linalg.solve(design.T @ design / n + l2 * np.eye(n_hidden + 1),
                            design.T @ target / n)
    new = {**params, f"w{last}": theta_new[:n_hidden, None], f"b{last}": theta_new[n_hidden:]}
    return new, float(loss(theta)), float(loss(theta_new)), float(loss(exact))


def newton_logistic(n: int = 200, iterations: int = 6, seed: int = 0) -> list[float]:
    """Newton's method on an L2-regularised logistic regression; returns gradient norms."""
    rng = np.random.default_rng(seed)
    x = np.hstack([rng.standard_normal((n, 2)), np.ones((n, 1))])
    true_w = np.array([2.0, -1.0, 0.5])
    labels = (rng.random(n) < 1 / (1 + np.exp(-x @ true_w))).astype(float)

    def nll(w):
        z = x @ w
        return fg.mean(fg.softplus(z) - labels * z) + 0.01 * fg.sum(w * w)

    w = np.zeros(3)
    norms = []
    for i in range(iterations):
        g = fg.grad(nll)(w)
        norms.append(float(np.linalg.norm(g)))
        print(f"newton {i}: loss {float(nll(w)):.6f}  |grad| {norms[-1]:.2e}  w {np.round(w, 4)}")
        w = w - np.linalg.solve(fg.hessian(nll)(w), g)
    return norms


def main(steps: int = 3000, hidden: int = 32, n_points: int = 200, seed: int = 0,
         plot: bool = True, out_dir: str = ".") -> dict:
    """Fit the MLP, take the Newton step on its output layer, run the logistic Newton demo."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1, 1, (n_points, 1)), axis=0)
    y = np.sin(3 * x) + 0.1 * rng.standard_normal((n_points, 1))
    params = init_mlp([1, hidden, hidden, 1], rng)
    print(f"MLP 1-{hidden}-{hidden}-1 on noisy sin(3x), {n_points} points "
          f"(noise variance 0.01)")
    params, history = adam_fit(mse, params, (x, y), steps)
    print(f"after {steps} Adam steps: mse {history[-1]:.5f} (started at {history[0]:.4f})")

    params2, before, after, exact = newton_output_layer(params, x, y)
    print(f"one Newton step on the output layer (ridge 1e-4): loss {before:.8f} -> "
          f"{after:.8f}; closed-form ridge solution: {exact:.8f}")

    print("\nlogistic regression by Newton's method:")
    norms = newton_logistic(seed=seed)
    if plot:
        save_plot(os.path.join(out_dir, "functional_fit_loss.png"), {"": history},
                  title=f"MLP 1-{hidden}-{hidden}-1 fitted to noisy sin(3x) with Adam",
                  xlabel="Adam step (all points)", ylabel="mean squared error", log_y=True)
    print(f"({time.perf_counter() - t0:.1f} s)")
    return {"losses": history, "newton_loss": after, "ridge_loss": exact, "newton_norms": norms,
            "params": params2}


if __name__ == "__main__":
    parser = _cli.parser(__doc__)
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps for the MLP")
    parser.add_argument("--hidden", type=int, default=32, help="width of the two hidden layers")
    parser.add_argument("--points", type=int, default=200, help="noisy samples of sin(3x)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    _cli.add_out_dir(parser, "loss plot functional_fit_loss.png")
    args = parser.parse_args()
    main(steps=args.steps, hidden=args.hidden, n_points=args.points, seed=args.seed,
         out_dir=args.out_dir)
