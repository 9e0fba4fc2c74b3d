"""TinyTorch stage 5, compression: INT8 quantization with integer layers, pruning, distillation.

Reach these as ``tinytorch_core.compression.quantize`` / ``tinytorch_core.ops.fake_quantize``
once the stage is installed, or import them from here.
"""

from .api import *  # noqa: F401,F403: the stage's public names
from .api import __all__ as _public
from .fake_quant import FakeQuantizeFunction, fake_quantize
from .integer_layers import QuantizedActivation, QuantizedConv2d, QuantizedLinear
from .pruning import Pruned
from .size import ModelSize

__all__ = [*_public, "FakeQuantizeFunction", "ModelSize", "Pruned", "QuantizedActivation", "QuantizedConv2d",
           "QuantizedLinear", "fake_quantize"]
