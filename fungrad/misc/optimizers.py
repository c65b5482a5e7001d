"""HIPS autograd's ``autograd.misc.optimizers``: ``sgd``, ``momentum``, ``rmsprop``, ``adam``
over pytrees. They live in :mod:`fungrad.optim.loops`, beside fungrad's other optimizers;
this is their autograd path.

>>> from fungrad.misc.optimizers import adam
>>> adam.__module__
'fungrad.optim.loops'
"""

from ..optim.loops import adam, momentum, rmsprop, sgd

__all__ = ["sgd", "momentum", "rmsprop", "adam"]
