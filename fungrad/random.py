"""Where fungrad's randomness comes from: a generator passed in, or one default generator.

Layers draw their initial weights (and ``Dropout`` its masks) from the ``rng`` they are given,
or else from the module-level default :class:`numpy.random.Generator`, which
:func:`manual_seed` replaces. Nothing else touches it: creating or combining Tensors never
draws a random number (the book's Tensor drew a random id per tensor from NumPy's global
state, which is why its printed numbers depend on how many tensors a listing created).

>>> import fungrad as fg
>>> from fungrad.random import default_generator
>>> _ = fg.manual_seed(0)
>>> a = default_generator().random()
>>> _ = fg.manual_seed(0)
>>> a == default_generator().random()
True
"""

from __future__ import annotations

from typing import Union

import numpy as np

from . import recording

__all__ = ["manual_seed", "default_generator", "resolve_rng", "RNGLike"]

#: What a layer's ``rng=`` accepts: a Generator, a seed, or None (the default generator).
#: A legacy ``numpy.random.RandomState`` also works (it has the same ``standard_normal`` and
#: ``random`` methods); it is how the chapter example replays the book's exact draws.
RNGLike = Union[np.random.Generator, np.random.RandomState, int, None]

_default: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed fungrad's default generator with ``seed`` and return it.

    Layers created afterwards without an explicit ``rng=`` draw from it in creation order, so
    the same seed and the same sequence of layer constructors give the same weights.

    >>> import fungrad as fg
    >>> _ = fg.manual_seed(1); w1 = fg.nn.Linear(2, 2).weight.data.copy()
    >>> _ = fg.manual_seed(1); w2 = fg.nn.Linear(2, 2).weight.data
    >>> bool((w1 == w2).all())
    True
    """
    global _default
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    _default = np.random.default_rng(int(seed))
    return _default


def default_generator() -> np.random.Generator:
    """The generator layers use when no ``rng=`` is given (replaced by :func:`manual_seed`).

    Inside a function ``fg.jit`` traces, it returns a stand-in whose draws are steps of the
    compiled program, made from the default generator of the moment each time it runs.

    >>> import fungrad as fg
    >>> from fungrad.random import default_generator
    >>> g = fg.manual_seed(5)
    >>> default_generator() is g
    True
    """
    hook = recording.thread.hook
    if hook is not None:  # fg.jit: draws are fresh on every call, from the generator of then
        return hook.generator(None)
    return _default


def resolve_rng(rng: RNGLike, where: str = "rng") -> np.random.Generator | np.random.RandomState:
    """``rng`` itself, a new Generator for an int seed, or the default generator for None.

    >>> import numpy as np
    >>> from fungrad.random import resolve_rng
    >>> float(resolve_rng(0).random()) == float(np.random.default_rng(0).random())
    True
    """
    hook = recording.thread.hook
    if rng is None:
        return _default if hook is None else hook.generator(None)
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng if hook is None else hook.generator(rng)  # fg.jit: draws are program steps
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{where}: rng must be a numpy.random.Generator, an int seed or None, "
        f"got {type(rng).__name__}; use numpy.random.default_rng(seed)"
    )
