"""Sample inputs the automatic gradient check runs every spatial op on.

They cover stride > 1, padding, dilation, non-square kernels, a batch of one, odd
sizes, a missing bias, grouped and depthwise convolutions, overlapping pooling windows and
pooling's ceil_mode (a last window past the input, and past the padding). Max-pool inputs are distinct
values far apart, so finite differences never straddle a tie.
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Sample, Tensor
from tinytorch_core.host.samples import randn


def _distinct(rng, *shape, spacing=0.05):
    """Float64 values that differ pairwise by at least ``spacing``, in random order."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * spacing - size * spacing / 2).reshape(shape).astype(np.float64)


def conv2d_samples(rng):
    # odd sizes, non-square kernel
    yield Sample(randn(rng, 2, 3, 5, 6), randn(rng, 4, 3, 3, 2), randn(rng, 4))
    # batch of one, stride 2, padding 1
    yield Sample(randn(rng, 1, 2, 7, 5), randn(rng, 3, 2, 3, 3), randn(rng, 3), stride=2, padding=1)
    # no bias, per-axis stride, padding and dilation
    yield Sample(randn(rng, 2, 2, 6, 7), randn(rng, 2, 2, 2, 3), None, stride=(2, 1), padding=(1, 0),
                 dilation=(2, 1))
    # dilation 2 with stride 3 and wide padding; 1x1 output channels edge
    yield Sample(randn(rng, 1, 1, 5, 5), randn(rng, 2, 1, 3, 3), randn(rng, 2), stride=3, padding=2, dilation=2)
    # two groups of two channels, three filters each; stride 2, padding 1
    yield Sample(randn(rng, 2, 4, 6, 5), randn(rng, 6, 2, 3, 3), randn(rng, 6), stride=2, padding=1, groups=2)
    # depthwise (groups == channels), two filters per channel, no bias, stride 1
    yield Sample(randn(rng, 2, 3, 5, 6), randn(rng, 6, 1, 3, 2), None, padding=1, groups=3)


def max_pool2d_samples(rng):
    yield Sample(_distinct(rng, 2, 3, 5, 7), 2)  # stride = kernel, trailing row/column dropped
    yield Sample(_distinct(rng, 1, 2, 7, 6), 3, stride=2, padding=1)  # overlapping, padded
    yield Sample(_distinct(rng, 2, 1, 6, 5), (2, 3), stride=(1, 2))  # non-square, overlapping rows
    yield Sample(_distinct(rng, 2, 2, 5, 7), 2, ceil_mode=True)  # last row and column windows half outside
    yield Sample(_distinct(rng, 1, 2, 6, 7), 3, stride=2, padding=1, ceil_mode=True)  # past the padding too


def avg_pool2d_samples(rng):
    yield Sample(randn(rng, 2, 3, 5, 7), 2)
    yield Sample(randn(rng, 1, 2, 7, 6), 3, stride=2, padding=1)
    yield Sample(randn(rng, 2, 1, 6, 5), (2, 3), stride=(1, 2), padding=(1, 0))
    yield Sample(randn(rng, 2, 2, 5, 7), 2, ceil_mode=True)
    yield Sample(randn(rng, 1, 2, 6, 7), 3, stride=2, padding=1, ceil_mode=True)
    yield Sample(randn(rng, 1, 2, 6, 7), 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)


def batch_norm2d_samples(rng):
    def buffers(channels):
        mean = Tensor(randn(rng, channels) * 0.1, dtype=np.float64)
        var = Tensor(rng.uniform(0.5, 1.5, channels), dtype=np.float64)
        return mean, var

    mean, var = buffers(3)
    yield Sample(randn(rng, 4, 3, 3, 2), mean, var, randn(rng, 3), randn(rng, 3), training=True)
    # batch of one, no affine part, no running buffers
    yield Sample(randn(rng, 1, 2, 3, 3), None, None, None, None, training=True)
    mean, var = buffers(3)
    yield Sample(randn(rng, 2, 3, 2, 3), mean, var, randn(rng, 3), randn(rng, 3), training=False)
