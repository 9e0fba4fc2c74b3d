"""``Sample``: one small set of arguments an op is gradient-checked on."""

from __future__ import annotations

import numpy as np


class Sample:
    """Arguments for one call of an op.

    Float64 NumPy arrays among ``args`` become differentiable inputs of the check;
    Tensors are passed as they are (so a float tensor without ``requires_grad``
    is a non-differentiable input); everything else passes through unchanged.
    """

    __slots__ = ("args", "kwargs")

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs

    def describe(self) -> str:
        parts = [_describe(a) for a in self.args]
        parts += [f"{k}={_describe(v)}" for k, v in self.kwargs.items()]
        return "(" + ", ".join(parts) + ")"


def _describe(value) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        dtype = getattr(value, "dtype", "")
        return f"{type(value).__name__}{tuple(shape)}:{dtype}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def randn(rng: np.random.Generator, *shape) -> np.ndarray:
    """Float64 normal sample data (the dtype gradcheck needs)."""
    return rng.standard_normal(shape)


def rand_away_from(rng: np.random.Generator, shape, low=0.2, high=1.5, signed=True) -> np.ndarray:
    """Values with magnitude in [low, high]: safe for ops with a kink or pole at zero."""
    mag = rng.uniform(low, high, size=shape)
    if signed:
        mag *= rng.choice([-1.0, 1.0], size=shape)
    return mag
