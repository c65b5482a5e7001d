"""PyTorch's numbers for the optimizers and learning-rate schedules fungrad copies.

Runs PyTorch (the benchmark venv's torch, never a test dependency) on small fixed problems and
writes the trajectories to ``tests/data/torch_reference.json``, which
``tests/test_pytorch_habits.py`` compares fungrad against. Rerun after changing a rule::

    /work/bench-venv/bin/python benchmarks/torch_reference.py

Problem: ``loss(p) = sum(c * p**2) + sum(d * p)`` for fixed ``c``, ``d`` (so each step's gradient
is a known function of ``p``), float64, 12 steps from a fixed ``p0``.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "torch_reference.json"

P0 = [0.5, -1.5, 2.0, 0.25]
C = [1.0, 0.5, 2.0, 3.0]
D = [0.1, -0.2, 0.3, 0.0]
STEPS = 12

OPTIMIZERS = {
    "sgd_wd": ("SGD", dict(lr=0.05, weight_decay=0.1)),
    "sgd_momentum_wd": ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    "sgd_nesterov_wd": ("SGD", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.2)),
    "sgd_dampening": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    "rmsprop": ("RMSprop", dict(lr=0.01)),
    "rmsprop_centered": ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    "rmsprop_momentum_wd": ("RMSprop", dict(lr=0.01, momentum=0.8, weight_decay=0.1, eps=1e-6)),
    "adamw": ("AdamW", dict(lr=0.1)),
    "adamw_custom": ("AdamW", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3)),
}


def run_optimizer(name: str, kwargs: dict) -> list[list[float]]:
    p = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    c, d = torch.tensor(C, dtype=torch.float64), torch.tensor(D, dtype=torch.float64)
    opt = getattr(torch.optim, name)([p], **kwargs)
    out = []
    for _ in range(STEPS):
        opt.zero_grad()
        (c * p * p + d * p).sum().backward()
        opt.step()
        out.append(p.detach().tolist())
    return out


SCHEDULES = {
    "step": ("StepLR", dict(step_size=3, gamma=0.5), 0.1, 10),
    "cosine": ("CosineAnnealingLR", dict(T_max=5, eta_min=0.001), 0.1, 13),
    "lambda": ("LambdaLR", dict(lr_lambda="inverse"), 0.2, 6),
}


def run_schedule(name: str, kwargs: dict, lr: float, epochs: int) -> list[float]:
    kwargs = dict(kwargs)
    if kwargs.get("lr_lambda") == "inverse":
        kwargs["lr_lambda"] = lambda epoch: 1.0 / (1.0 + epoch)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)
    rates = [sched.get_last_lr()[0]]
    for _ in range(epochs):
        opt.step()
        sched.step()
        rates.append(sched.get_last_lr()[0])
    return rates


def main() -> None:
    data = {
        "torch": torch.__version__, "p0": P0, "c": C, "d": D, "steps": STEPS,
        "optimizers": {k: {"class": cls, "kwargs": kw, "params": run_optimizer(cls, kw)}
                       for k, (cls, kw) in OPTIMIZERS.items()},
        "schedules": {k: {"class": cls, "kwargs": kw, "lr": lr,
                          "rates": run_schedule(cls, kw, lr, n)}
                      for k, (cls, kw, lr, n) in SCHEDULES.items()},
    }
    assert all(math.isfinite(x) for v in data["optimizers"].values() for row in v["params"]
               for x in row)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT} (torch {torch.__version__}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
