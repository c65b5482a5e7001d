"""The README's section "Differentiate NumPy code" runs as printed, and
examples/gp_regression.py (its longer version) runs with short settings."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np

from fungrad.testing import check_grads

from examples_loader import EXAMPLES, load

EXAMPLE = os.path.join(EXAMPLES, "gp_regression.py")


def _load():
    return load("gp_regression")


def _plain_numpy_nlml(theta, x, y):
    k = np.exp(theta[1]) * np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / np.exp(2 * theta[0]))
    k = k + np.exp(theta[2]) * np.eye(len(x))
    return (0.5 * y @ np.linalg.solve(k, y) + 0.5 * np.linalg.slogdet(k)[1]
            + 0.5 * len(x) * np.log(2 * np.pi))


def test_gp_example_fits_the_hyperparameters_and_newton_converges():
    gp = _load()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        r = gp.main(n=30, steps=150, newton_steps=3)
    assert "negative log marginal likelihood" in out.getvalue()
    assert r["history"][-1] < r["history"][0] - 20
    assert r["newton_norms"][-1] < 1e-8  # Newton with fg.hessian through cholesky and solve
    assert 0.002 < np.exp(r["theta"][2]) < 0.05  # the data's noise variance is 0.01
    np.testing.assert_allclose(r["mean"], r["truth"], atol=0.25)


def test_gp_likelihood_is_numpys_value_and_its_gradient_checks():
    gp = _load()
    x, y = gp.make_data(12, seed=1)
    theta = np.array([-0.3, 0.2, -2.0])
    value = gp.nlml(theta, x, y)  # ndarrays in: plain NumPy, nothing recorded
    assert isinstance(value, (float, np.floating, np.ndarray))
    np.testing.assert_allclose(value, _plain_numpy_nlml(theta, x, y), rtol=1e-12)
    check_grads(lambda t: gp.nlml(t, x, y), theta, order=2)


def test_readme_section_runs_as_printed():
    text = (Path(EXAMPLE).parents[1] / "README.md").read_text()
    section = text[text.index("## Differentiate NumPy code"):]
    section = section[:section.index("\n## ", 1)]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_gp"})  # noqa: S102
    printed = out.getvalue().splitlines()
    comments = [line.split("# ")[1].split(":")[0].strip() for line in code.splitlines()
                if line.startswith("print(")]
    assert printed == comments  # the outputs the README shows in its comments
