"""Type information users' checkers see: py.typed ships, and the public API is not ``Any``.

The full check — mypy on a user's script after the README's editable install, outside the
repository — runs in ``.ci/run`` (``.ci/user_types.py``); this one runs when mypy is
installed (the ``typecheck`` extra), against this checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fungrad

ROOT = Path(__file__).resolve().parents[1]


def test_py_typed_ships_with_the_package():
    assert (Path(fungrad.__file__).parent / "py.typed").exists()
    assert 'fungrad = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


def test_a_checker_sees_the_public_api_and_catches_a_misspelled_keyword(tmp_path):
    pytest.importorskip("mypy")
    script = tmp_path / "user.py"
    script.write_text((ROOT / ".ci" / "user_types.py").read_text() + (
        "reveal_type(fg.Tensor([1.0]) * 2)  # noqa: F821\n"
        "reveal_type(fg.optim.lr_scheduler.CosineAnnealingLR)  # noqa: F821\n"
        "reveal_type(fnp.linalg.det(np.eye(2)))  # noqa: F821\n"))
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), str(script)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    out = run.stdout
    assert 'Unexpected keyword argument "alhpa" for "SGD"' in out, out
    revealed = [line for line in out.splitlines() if "Revealed type is" in line]
    assert len(revealed) == 9 and not any('is "Any"' in r for r in revealed), revealed
    assert "JittedFunction" in revealed[2] and "Tensor" in revealed[6], revealed
