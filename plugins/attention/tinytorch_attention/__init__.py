"""TinyTorch stage 4, attention: scaled dot-product attention, LayerNorm, transformer blocks, GPT.

Reach these as ``tinytorch_core.nn.MultiHeadAttention`` / ``tinytorch_core.ops.layer_norm`` once
the stage is installed, or import them from here.
"""

from .functional import (
    LayerNormFunction,
    ScaledDotProductAttention,
    causal_mask,
    layer_norm,
    scaled_dot_product_attention,
)
from .layers import GPT, FeedForward, LayerNorm, MultiHeadAttention, TransformerBlock

__all__ = [
    "GPT",
    "FeedForward",
    "LayerNorm",
    "LayerNormFunction",
    "MultiHeadAttention",
    "ScaledDotProductAttention",
    "TransformerBlock",
    "causal_mask",
    "layer_norm",
    "scaled_dot_product_attention",
]
