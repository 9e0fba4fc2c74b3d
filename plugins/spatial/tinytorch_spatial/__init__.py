"""TinyTorch stage 2 'spatial': convolution, pooling, Flatten and 2-D batch normalisation.

Layers: ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten``, ``BatchNorm2d``.
Functions: ``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``batch_norm2d`` (also reachable as
``tinytorch_core.ops.<name>``), each backed by a ``Function`` with its own backward.
"""

from . import functional
from .functional import (
    AvgPool2dFunction,
    BatchNorm2dFunction,
    Conv2dFunction,
    MaxPool2dFunction,
    avg_pool2d,
    batch_norm2d,
    conv2d,
    max_pool2d,
)
from .layers import AvgPool2d, BatchNorm2d, Conv2d, Flatten, MaxPool2d

__version__ = "0.1.0"

__all__ = [
    "AvgPool2d", "AvgPool2dFunction", "BatchNorm2d", "BatchNorm2dFunction", "Conv2d", "Conv2dFunction",
    "Flatten", "MaxPool2d", "MaxPool2dFunction", "avg_pool2d", "batch_norm2d", "conv2d", "functional",
    "max_pool2d",
]
