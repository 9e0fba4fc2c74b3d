"""Spatial ops: 2-D convolution, max/average pooling and 2-D batch normalisation.

Every op is a ``Function`` with a vectorised forward and backward; inputs are NCHW. This module
is the public namespace; each topic lives in its own module:

- ``geometry``: ``WindowGeometry`` (where a conv's or a pooling's windows lie) and the argument checks;
- ``conv``: ``conv2d`` by im2col and one matrix product, ``col2im`` for its input gradient;
- ``pooling``: ``max_pool2d`` and ``avg_pool2d``, one kernel offset at a time;
- ``batchnorm``: ``batch_norm2d``.
"""

from .batchnorm import BatchNorm2dFunction, batch_norm2d
from .conv import Conv2dFunction, col2im, conv2d, im2col
from .geometry import WindowGeometry, output_size
from .pooling import AvgPool2dFunction, MaxPool2dFunction, avg_pool2d, max_pool2d

__all__ = [
    "Conv2dFunction",
    "MaxPool2dFunction",
    "AvgPool2dFunction",
    "BatchNorm2dFunction",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "batch_norm2d",
    "output_size",
    "im2col",
    "col2im",
    "WindowGeometry",
]
