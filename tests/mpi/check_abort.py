"""An exception on one rank must stop every rank at once: run with ``mpiexec -n 2``.

Rank 1 raises in the middle of training while rank 0 goes on into the next gradient
reduction, where it would wait forever without fungrad.distributed's MPI_Abort hook.
"""

from __future__ import annotations

import itertools

import numpy as np
from _harness import dist, fg

FAIL_AT = 3


def main() -> None:
    dist.init()  # installs the abort-on-error hook
    model = fg.nn.Linear(4, 2, rng=0)
    opt = dist.DistributedOptimizer(fg.optim.SGD(model.parameters(), alpha=0.01))
    x = np.ones((8, 4))
    for step in itertools.count():
        if dist.rank() == 1 and step == FAIL_AT:
            raise ValueError(f"injected failure at step {step}")
        fg.mean(model(x) ** 2).backward()
        opt.step()
        if dist.rank() == 0:
            print(f"step {step} done", flush=True)


if __name__ == "__main__":
    main()
