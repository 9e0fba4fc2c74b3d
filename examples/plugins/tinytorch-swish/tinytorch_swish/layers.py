"""Layers of the swish plugin: ``Swish`` and ``DepthwiseConv2d``."""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinytorch_core import Module, Parameter, resolve_generator
from tinytorch_core.checks import positive_int, true_or_false

from . import functional as F

__all__ = ["DepthwiseConv2d", "Swish"]


class Swish(Module):
    """``x * sigmoid(beta * x)``. With ``learnable=True``, ``beta`` is a one-element Parameter
    (shape (1,), which broadcasts against any input) that the optimizer tunes, starting from
    the given value."""

    def __init__(self, beta=1.0, learnable=False):
        super().__init__()
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not math.isfinite(beta):
            raise ValueError(f"Swish: beta must be a finite number, got {beta!r}")
        self.learnable = bool(learnable)
        if self.learnable:
            self.beta = Parameter(np.array([beta], dtype=np.float32))
        else:
            self.beta = float(beta)

    def forward(self, x):
        return F.swish(x, self.beta)

    def extra_repr(self) -> str:
        if self.learnable:
            return f"beta={float(self.beta.data[0]):g}, learnable=True"
        return f"beta={self.beta:g}"


class DepthwiseConv2d(Module):
    """Depthwise convolution over NCHW input: each of the ``channels`` input channels gets its own
    ``multiplier`` filters. ``weight`` is (channels * multiplier, 1, kh, kw), ``bias``
    (channels * multiplier,). Follow it with a 1x1 ``Conv2d`` for a depthwise-separable block.

    Initialised like PyTorch's grouped ``Conv2d``: weight and bias ~ U(-1/sqrt(kh * kw), 1/sqrt(kh * kw)),
    drawn from ``generator`` (a numpy Generator or an int seed).
    """

    def __init__(self, channels, kernel_size, stride=1, padding=0, dilation=1, multiplier=1, bias=True,
                 generator=None):
        super().__init__()
        who = "DepthwiseConv2d"
        self.channels = positive_int(channels, "channels", who)
        self.multiplier = positive_int(multiplier, "multiplier", who)
        bias = true_or_false(bias, "bias", who)  # "False" would read as True
        self.kernel_size = F._pair(kernel_size, "kernel_size", who, 1)
        self.stride = F._pair(stride, "stride", who, 1)
        self.padding = F._pair(padding, "padding", who, 0)
        self.dilation = F._pair(dilation, "dilation", who, 1)
        rng = resolve_generator(generator)
        bound = 1.0 / math.sqrt(self.kernel_size[0] * self.kernel_size[1])  # fan_in of one filter
        out_channels = self.channels * self.multiplier
        shape = (out_channels, 1) + self.kernel_size
        self.weight = Parameter(rng.uniform(-bound, bound, size=shape).astype(np.float32))
        self.bias = Parameter(rng.uniform(-bound, bound, size=out_channels).astype(np.float32)) if bias else None

    def forward(self, x):
        return F.depthwise_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                  _who=f"DepthwiseConv2d({self.extra_repr()})")

    def extra_repr(self) -> str:
        text = f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.multiplier != 1:
            text += f", multiplier={self.multiplier}"
        if self.bias is None:
            text += ", bias=False"
        return text
