"""Layers, losses and the Module base class: the book's object layer over the Tensor.

>>> import numpy as np, fungrad as fg
>>> from fungrad import nn
>>> _ = fg.manual_seed(0)
>>> model = nn.Sequential([nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.Sigmoid()])
>>> criterion = nn.MSELoss()
>>> optim = fg.optim.SGD(model.get_parameters(), alpha=1.0)
>>> data, target = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), np.array([[0], [1], [0], [1]])
>>> losses = []
>>> for _ in range(50):
...     loss = criterion(model(data), target)
...     loss.backward()
...     optim.step()
...     losses.append(float(loss.data[0]))
>>> losses[-1] < 0.1 * losses[0]
True
"""

from .layers import (
    Dropout, Embedding, EmbeddingBag, Flatten, Linear, Parameter, ReLU, Sequential, Sigmoid, Tanh,
)
from .losses import CrossEntropyLoss, MSELoss
from .module import Layer, LoadResult, Module, functional_call
from .recurrent import LSTM, LSTMCell, RNNCell, detach_hidden

__all__ = [
    "Module", "Layer", "LoadResult", "functional_call",
    "Linear", "Sequential", "Embedding", "Tanh", "Sigmoid", "ReLU", "Dropout",
    "RNNCell", "LSTMCell", "detach_hidden",
    "EmbeddingBag", "LSTM", "Flatten", "Parameter",
    "MSELoss", "CrossEntropyLoss",
]
