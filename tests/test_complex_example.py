"""examples/filter_design.py (complex taps through fft, real taps through rfft) with short
settings, its --help, and the README's complex-number snippet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from examples_loader import EXAMPLES, load, quiet


def test_filter_design_designs_a_one_sided_band_and_checks_its_gradients(tmp_path):
    fd = load("filter_design")
    out_dir = tmp_path / "plots"
    results, text = quiet(fd.main, taps=24, n=128, steps=300, lr=0.02, out_dir=str(out_dir))
    assert "gradient checked against finite differences" in text
    dx, dy = results["gradient_probe"]
    np.testing.assert_allclose(results["grad0"], dx - 1j * dy, rtol=1e-6)  # the convention
    for key in ("loss_complex", "loss_real"):
        assert results[key][-1] < 0.2 * results[key][0], key
    complex_design, real_design = results["report"]["complex"], results["report"]["real"]
    assert complex_design["image_db"] < -15.0  # complex taps suppress negative frequencies
    assert real_design["image_db"] > -1.0  # a real filter cannot: |H(-f)| = |H(f)|
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "plots skipped" in text
    else:
        assert sorted(p.name for p in out_dir.iterdir()) == [
            "filter_design_loss.png", "filter_design_response.png"]


def test_filter_design_help_lists_the_options_with_defaults_without_running():
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "filter_design.py"), "--help"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    for option in ("--taps", "--n", "--steps", "--lr", "--seed", "--out-dir", "--no-plot"):
        assert option in out
    assert "(default: 48)" in out and "(default: .)" in out and out.startswith("usage: ")
    assert "gradient checked" not in out


def test_the_readme_complex_snippet_prints_what_it_says():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Complex numbers and FFTs")[1].split("\n## ")[0]
    code = section.split("```python\n")[1].split("```")[0]
    _, text = quiet(exec, code, {})
    lines = text.splitlines()
    expected = [re.search(r"#[^\[]*(\[.*)$", line).group(1) for line in code.splitlines()
                if line.startswith("print(")]
    assert len(lines) == len(expected) == 3
    for got, want in zip(lines, expected):
        assert got.replace(" ", "") == want.replace(" ", "")
