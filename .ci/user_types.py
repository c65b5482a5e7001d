"""A user's script, type-checked by .ci/run outside the repository: mypy must find fungrad
through the README's editable install, see its types, and catch the misspelled keyword."""

import numpy as np

import fungrad as fg
import fungrad.numpy as fnp
from fungrad.optim import SGD
from fungrad.optim.lr_scheduler import StepLR


def loss(w: np.ndarray, x: np.ndarray) -> fg.Tensor:
    return fg.sum(fg.tanh(x @ w))


reveal_type(fg.grad(loss))  # noqa: F821 (mypy's)
reveal_type(fg.value_and_grad(loss))  # noqa: F821
reveal_type(fg.jit(loss))  # noqa: F821
reveal_type(fnp.tanh(np.ones(3)))  # noqa: F821
reveal_type(fnp.sum(fg.tensor([1.0])))  # noqa: F821
reveal_type(StepLR(SGD([], lr=0.1), step_size=2).get_last_lr())  # noqa: F821
opt = SGD([], alhpa=0.1)  # the one error mypy must report
