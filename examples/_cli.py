"""The examples' command lines: one argparse style, every option with its help and default.

``parser(__doc__)`` describes the example with its docstring's first paragraph and shows each
option's default in ``--help``; ``add_out_dir`` adds ``--out-dir``, where an example writes its
files (plots). ``--help`` answers before anything runs.
"""

from __future__ import annotations

import argparse


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` for an example whose module docstring is ``doc``."""
    first = (doc or "").strip().split("\n\n")[0]
    return argparse.ArgumentParser(
        description=" ".join(first.split()),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_out_dir(p: argparse.ArgumentParser, what: str = "loss plots (PNG)") -> None:
    """``--out-dir DIR``: where the example writes its files (created if missing)."""
    p.add_argument("--out-dir", default=".", metavar="DIR",
                   help=f"where to write the {what}, created if missing ('.': the current "
                        "directory); each file's path is printed when written")
