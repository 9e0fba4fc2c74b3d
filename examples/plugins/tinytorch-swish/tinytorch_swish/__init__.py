"""tinytorch-swish: an example third-party TinyTorch plugin.

It adds stage ``swish`` with a Swish activation (``x * sigmoid(beta * x)``, beta fixed or
learnable) and a depthwise 2-D convolution, each an op with its backward and samples and a
layer. Installed, they are also ``tinytorch_core.nn.Swish`` / ``tinytorch_core.nn.DepthwiseConv2d``
and ``tinytorch_core.ops.swish`` / ``tinytorch_core.ops.depthwise_conv2d``.
"""

from . import functional
from .functional import DepthwiseConv2dFunction, SwishFunction, depthwise_conv2d, swish
from .layers import DepthwiseConv2d, Swish

__version__ = "0.1.0"

__all__ = ["DepthwiseConv2d", "DepthwiseConv2dFunction", "Swish", "SwishFunction", "depthwise_conv2d",
           "functional", "swish"]
