"""Conveniences in the form HIPS autograd users know (``autograd.misc``): ``flatten`` and
``flatten_func`` (:mod:`fungrad.misc.flatten`) and the functional optimizer loops
(:mod:`fungrad.misc.optimizers`).

>>> import numpy as np
>>> from fungrad.misc import flatten
>>> flat, unflatten = flatten({"w": np.ones(2), "b": 0.5})
>>> flat, unflatten(flat)["w"]
(array([0.5, 1. , 1. ]), array([1., 1.]))
"""

from .flatten import flatten, flatten_func

__all__ = ["flatten", "flatten_func"]
