"""Every name the stage registers in ``tinytorch_core.compression``, in one place."""

from .distillation import distillation_loss
from .fake_quant import FakeQuantize
from .integer import dequantize_tensor, int8_matmul, quantize_tensor
from .observers import MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver
from .pruning import prune_global_unstructured, prune_l1_unstructured, remove, sparsity
from .quantize import quantize
from .size import model_size
from .structured import prune_channels

__all__ = [
    "FakeQuantize", "MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver", "dequantize_tensor",
    "distillation_loss", "int8_matmul", "model_size", "prune_channels", "prune_global_unstructured",
    "prune_l1_unstructured", "quantize", "quantize_tensor", "remove", "sparsity",
]
