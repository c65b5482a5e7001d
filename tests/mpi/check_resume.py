"""A run killed mid-training resumes from its last checkpoint with identical results.

``mpiexec -n 2 python check_resume.py kill FOLDER`` trains with a checkpoint every
``EVERY`` steps (``dist.save`` from rank 0, which all ranks wait for) until rank 1 kills
itself with SIGKILL at step ``KILL_AT``. ``... resume FOLDER`` first trains the whole run
uninterrupted in memory, then loads the checkpoint on every rank (``dist.load``), finishes
the run, and checks that the parameters and optimizer state are bitwise equal.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
from _harness import assert_same_on_all_ranks, dist, fg

STEPS, EVERY, KILL_AT, BATCH = 12, 3, 8, 8
DATA = np.random.default_rng(1)
X = DATA.standard_normal((32, 5))
Y = np.sin(X @ DATA.standard_normal((5, 2)))


def setup():
    model = fg.nn.Sequential([fg.nn.Linear(5, 8, rng=0), fg.nn.Tanh(),
                              fg.nn.Linear(8, 2, rng=1)])
    opt = dist.DistributedOptimizer(fg.optim.Adam(model.parameters(), lr=0.02))
    return model, opt


def batch(step: int) -> np.ndarray:
    """This rank's share of global batch ``step`` (BATCH items per rank)."""
    per_epoch = len(X) // (BATCH * dist.size())
    mine = dist.shard(len(X), seed=5, epoch=step // per_epoch)
    k = step % per_epoch
    return mine[k * BATCH:(k + 1) * BATCH]


def train(model, opt, start: int, stop: int, folder: str | None = None,
          kill_at: int | None = None) -> None:
    loss_fn = fg.nn.MSELoss(reduction="mean")
    for step in range(start, stop):
        if kill_at is not None and step == kill_at and dist.rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        idx = batch(step)
        loss_fn(model(X[idx]), Y[idx]).backward()
        opt.step()
        if dist.rank() == 0:
            print(f"step {step + 1} done", flush=True)
        if folder is not None and (step + 1) % EVERY == 0:
            state = {"step": np.array(step + 1)}
            state.update({"model." + k: v for k, v in model.state_dict().items()})
            state.update({"optim." + k: v for k, v in opt.state_dict().items()})
            dist.save(os.path.join(folder, "ckpt.npz"), state)
            if dist.rank() == 0:
                print(f"checkpoint at step {step + 1}", flush=True)


def resume(folder: str):
    model, opt = setup()
    state = dist.load(os.path.join(folder, "ckpt.npz"))
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    opt.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("optim.")})
    start = int(state["step"])
    if dist.rank() == 0:
        print(f"resumed at step {start}", flush=True)
    train(model, opt, start, STEPS)
    return model, opt


def main() -> None:
    phase, folder = sys.argv[1], sys.argv[2]
    dist.init()
    if phase == "kill":
        model, opt = setup()
        dist.broadcast_parameters(model)
        train(model, opt, 0, STEPS, folder, kill_at=KILL_AT)
        raise SystemExit("not killed")
    reference, ref_opt = setup()
    dist.broadcast_parameters(reference)
    train(reference, ref_opt, 0, STEPS)
    model, opt = resume(folder)
    for got, want in ((model.state_dict(), reference.state_dict()),
                      (opt.state_dict(), ref_opt.state_dict())):
        assert sorted(got) == sorted(want)
        for k in want:
            assert np.array_equal(got[k], want[k]), f"'{k}' differs after resuming"
    assert_same_on_all_ranks(model.state_dict(), "resumed parameters")
    if dist.rank() == 0:
        print("PASS resumed run equals the uninterrupted run", flush=True)


if __name__ == "__main__":
    main()
