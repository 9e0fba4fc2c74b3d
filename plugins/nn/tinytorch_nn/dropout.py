"""The ``dropout`` op: zero random elements while training, scale the rest to keep the mean."""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_core import Function, resolve_generator
from tinytorch_core import flops as count  # FLOP formulas
from tinytorch_core.checks import array_of, not_floating


class DropoutFunction(Function):
    """``x * mask`` for a given mask that already holds the ``1 / (1 - p)`` scaling."""

    flops = staticmethod(count.per_output_element)  # the mask's product

    @staticmethod
    def forward(ctx, x, mask=None):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None  # None: the mask


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Identity when ``training`` is False or ``p == 0``. ``generator`` is a
    ``numpy.random.Generator`` (its stream advances) or an int seed (the same mask on
    every call with that seed); None draws from the default generator.
    """
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not isinstance(training, (bool, np.bool_)):  # "no" would read as True
        raise TypeError(f"dropout: training must be True or False, got {training!r}")
    if not training or p == 0:
        return x
    return DropoutFunction.apply(x, _dropout_mask(array_of(x), p, generator))


def _dropout_mask(data, p, generator):
    """``keep / (1 - p)`` in the input's float dtype, ``keep`` true with probability ``1 - p``."""
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float32)
    if p == 1:
        return np.zeros(data.shape, dtype=dtype)
    rng = resolve_generator(generator)
    uniform_dtype = np.float32 if dtype == np.float32 else np.float64  # the two dtypes random() draws
    keep = rng.random(data.shape, dtype=uniform_dtype) >= p
    return keep.astype(dtype) * (1.0 / (1.0 - p))
