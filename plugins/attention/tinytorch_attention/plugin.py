"""pluggy hooks of the 'attention' stage: what it registers with the TinyTorch host."""

from tinytorch_core import hookimpl

from .functional import (
    LayerNormFunction,
    ScaledDotProductAttention,
    attention_samples,
    layer_norm,
    layer_norm_samples,
    scaled_dot_product_attention,
)
from .layers import GPT, FeedForward, LayerNorm, MultiHeadAttention, TransformerBlock


@hookimpl
def tinytorch_declare_stage(declare):
    declare("attention")


@hookimpl
def tinytorch_register_ops(registry):
    registry.function(
        "attention::scaled_dot_product_attention",
        ScaledDotProductAttention,
        samples=attention_samples,
        call=scaled_dot_product_attention,
    )
    registry.function("attention::layer_norm", LayerNormFunction, samples=layer_norm_samples, call=layer_norm)


@hookimpl
def tinytorch_register_layers(registry):
    registry.layer("MultiHeadAttention", MultiHeadAttention)
    registry.layer("LayerNorm", LayerNorm)
    registry.layer("FeedForward", FeedForward)
    registry.layer("TransformerBlock", TransformerBlock)
    registry.layer("GPT", GPT)
