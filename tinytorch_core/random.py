"""Seeded randomness. Every random source in the framework draws from a ``numpy.random.Generator``
that is either passed explicitly or the default one, which ``manual_seed`` resets."""

from __future__ import annotations

import numpy as np

_default = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator (used when no ``generator=`` is given)."""
    global _default
    _default = np.random.default_rng(_seed(seed, "manual_seed"))
    return _default


def default_generator() -> np.random.Generator:
    return _default


def resolve_generator(generator=None) -> np.random.Generator:
    """``generator`` if given (a Generator or an int seed), else the default generator."""
    if generator is None:
        return _default
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, (bool, np.bool_)):
        return np.random.default_rng(_seed(generator, "generator"))  # (not True: seed 1 would be PyTorch's inplace)
    raise TypeError(f"generator: expected a numpy Generator or an int seed, got {type(generator).__name__}")


def _seed(seed, where: str) -> int:
    """``seed`` as an int >= 0, the seeds NumPy's generators take."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, (bool, np.bool_)) or seed < 0:
        raise ValueError(f"{where}: a seed must be an int >= 0, got {seed!r}")
    return int(seed)
