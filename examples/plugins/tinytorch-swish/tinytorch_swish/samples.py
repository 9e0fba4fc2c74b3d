"""Sample inputs the host gradient-checks each op on (float64 arrays are the differentiable
inputs; Tensors and plain values pass through unchanged)."""

from __future__ import annotations

import numpy as np

from tinytorch_core import Sample, Tensor


def swish_samples(rng):
    yield Sample(rng.standard_normal((3, 4)))  # beta = 1 (SiLU), a plain number: not differentiated
    yield Sample(rng.standard_normal((2, 5)) * 3, -0.7)  # a negative slope
    yield Sample(rng.standard_normal(6), np.array(1.7))  # a learnable scalar beta
    yield Sample(rng.standard_normal((2, 3, 2, 2)), rng.uniform(0.5, 2.0, (3, 1, 1)))  # one beta per channel
    yield Sample(np.array([-1000.0, -40.0, 40.0, 1000.0]), np.array(1.5))  # saturated both ways
    yield Sample(Tensor(rng.standard_normal((2, 3)), dtype=np.float64), rng.uniform(0.5, 2.0, 3))  # only beta


def depthwise_conv2d_samples(rng):
    def randn(*shape):
        return rng.standard_normal(shape)

    yield Sample(randn(2, 3, 5, 5), randn(3, 1, 3, 3), randn(3))
    # two filters per channel, stride 2 and padding 1, a non-square kernel
    yield Sample(randn(1, 2, 6, 5), randn(4, 1, 3, 2), randn(4), stride=2, padding=1)
    # dilation, per-axis padding, no bias
    yield Sample(randn(2, 2, 7, 6), randn(2, 1, 2, 3), None, padding=(1, 2), dilation=(2, 1))
    # stride 2 over an even size: the last row and column are in no window (their gradient is 0)
    yield Sample(randn(1, 3, 6, 6), randn(3, 1, 3, 3), randn(3), stride=(2, 2))
    # an input that needs no gradient: only the weight and the bias are checked
    yield Sample(Tensor(randn(2, 2, 4, 4), dtype=np.float64), randn(6, 1, 2, 2), randn(6), stride=(1, 2))
