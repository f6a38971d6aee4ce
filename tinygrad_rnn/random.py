"""One seeded random generator for the whole package.

Weight initialisation, data shuffling and dropout all draw from here (on the host, with NumPy), so
`manual_seed(s)` makes a run reproducible bit for bit on the NumPy backend.
"""
import contextlib
import copy

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reset the package's random generator (weights, shuffling, dropout) to `seed`."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    """The package's NumPy random Generator."""
    return _generator


@contextlib.contextmanager
def fork_rng():
    """Inside the block, reseed and draw freely; afterwards the generator continues as if nothing had
    been drawn (as torch.random.fork_rng). The plugin checks use it to build plugins twice alike."""
    global _generator
    saved = copy.deepcopy(_generator)
    try:
        yield
    finally:
        _generator = saved
