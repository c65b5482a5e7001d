"""The examples' one plotting helper: a titled, labelled line plot saved as a PNG, if it can be.

matplotlib is optional (``python -m pip install -e ".[plot]"``); without it the examples say
once that plots are skipped and carry on.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

_said_skipped = False


def save_plot(path: str, curves: Mapping[str, Sequence[float]], *, title: str, xlabel: str,
              ylabel: str, log_y: bool = False,
              hlines: Mapping[str, float] | None = None,
              x: Sequence[float] | None = None) -> str | None:
    """Plot each curve against 1, 2, 3, ... (or against ``x``) and save to ``path``; returns
    it, or None.

    ``curves`` maps legend labels to values (one curve may have the label ``""``: no legend);
    ``hlines`` maps labels to constant reference levels drawn dashed.
    """
    global _said_skipped
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if not _said_skipped:
            print("(matplotlib is not installed: plots skipped; python -m pip install -e "
                  '".[plot]" from the repository adds it)')
            _said_skipped = True
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1) if x is None else x, values, label=label or None)
    for label, level in (hlines or {}).items():
        ax.axhline(level, color="gray", linestyle="--", label=label)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(curves) + len(hlines or {}) > 1 or any(curves):
        ax.legend()
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("saved", os.path.abspath(path))
    return path
