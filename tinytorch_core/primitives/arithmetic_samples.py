"""Sample inputs of the elementwise and matrix-product primitives (``arithmetic.py``): what
``opcheck`` gradient-checks each of them on. Values are kept away from kinks and ties (``abs`` at
0, ``maximum`` of equal values, ``clip`` at a bound), where a finite difference is not a derivative."""

from __future__ import annotations

import numpy as np

from ..host.samples import Sample, rand_away_from, randn


def binary_samples(rng):
    yield Sample(randn(rng, 3, 4), randn(rng, 3, 4))
    yield Sample(randn(rng, 2, 3, 4), randn(rng, 4))  # broadcast a trailing axis
    yield Sample(randn(rng, 3, 1), randn(rng, 1, 5))  # broadcast both ways
    yield Sample(randn(rng, 3, 2), 1.7)  # tensor with a scalar
    yield Sample(-0.6, randn(rng, 2, 3))  # scalar on the left


def div_samples(rng):
    yield Sample(randn(rng, 3, 4), rand_away_from(rng, (3, 4)))
    yield Sample(randn(rng, 2, 3), rand_away_from(rng, (3,)))
    yield Sample(2.5, rand_away_from(rng, (4,)))
    yield Sample(randn(rng, 4), 3.0)


def pow_samples(rng):
    yield Sample(rand_away_from(rng, (3, 4), signed=False), 3.0)
    yield Sample(randn(rng, 5), 2)
    yield Sample(rand_away_from(rng, (2, 3), signed=False), randn(rng, 2, 3))
    yield Sample(2.0, randn(rng, 4))


def unary_samples(rng):
    yield Sample(randn(rng, 3, 4))
    yield Sample(randn(rng, 5))


def positive_samples(rng):
    yield Sample(rand_away_from(rng, (3, 4), signed=False))
    yield Sample(rand_away_from(rng, (2, 2, 3), signed=False))


def kinked_samples(rng):
    yield Sample(rand_away_from(rng, (3, 4), low=0.1))


def maxmin_samples(rng):
    a = randn(rng, 3, 4)
    yield Sample(a, a + rand_away_from(rng, (3, 4), low=0.05))
    yield Sample(randn(rng, 2, 3), rand_away_from(rng, (3,), low=0.1) + 5.0)
    yield Sample(rand_away_from(rng, (4,), low=0.1), 0.0)


def remainder_samples(rng):
    """``a / b`` kept 0.2 or more from every integer: the remainder jumps there."""
    b = rand_away_from(rng, (3, 4), low=1.0, high=2.0)
    a = b * (rng.integers(-3, 4, (3, 4)) + rng.uniform(0.2, 0.8, (3, 4)))
    yield Sample(a, b)
    yield Sample(a, -b)
    yield Sample(a[0], 1.5)


def floor_divide_samples(rng):
    yield Sample(randn(rng, 3, 4) * 5.0, rand_away_from(rng, (3, 4), low=0.5, high=2.0))


def clip_samples(rng):
    x = rand_away_from(rng, (3, 5), low=0.05, high=2.0)
    yield Sample(x, -1.0, 1.0)
    yield Sample(x + 0.03, None, 0.5)
    low = x.mean() + rng.choice([-0.4, 0.4], size=(3, 1))  # tensor bounds, away from ties with x
    yield Sample(x, low, low + rand_away_from(rng, (1, 5), low=0.3, high=0.8))


def where_samples(rng):
    cond = rng.random((3, 4)) > 0.5
    yield Sample(cond, randn(rng, 3, 4), randn(rng, 3, 4))
    yield Sample(cond, randn(rng, 4), 0.0)


def cast_samples(rng):
    yield Sample(randn(rng, 3, 2), np.dtype(np.float64))


def matmul_samples(rng):
    yield Sample(randn(rng, 3, 4), randn(rng, 4, 2))
    yield Sample(randn(rng, 2, 3, 4), randn(rng, 2, 4, 5))  # batched
    yield Sample(randn(rng, 2, 3, 4), randn(rng, 4, 5))  # batch broadcast
    yield Sample(randn(rng, 4), randn(rng, 4, 3))  # vector @ matrix
    yield Sample(randn(rng, 3, 4), randn(rng, 4))  # matrix @ vector
    yield Sample(randn(rng, 4), randn(rng, 4))  # dot
    yield Sample(randn(rng, 4), randn(rng, 2, 4, 3))  # vector @ batch
