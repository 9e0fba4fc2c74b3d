"""pluggy hooks of the 'attention' stage: what it registers with the TinyTorch host.
The entry point's name, ``attention``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

from . import layers
from .functional import (
    LayerNormFunction,
    ScaledDotProductAttention,
    attention_samples,
    layer_norm,
    layer_norm_samples,
    scaled_dot_product_attention,
)


@hookimpl
def tinytorch_register_ops(registry):
    registry.op(
        "attention::scaled_dot_product_attention",
        ScaledDotProductAttention,
        samples=attention_samples,
        call=scaled_dot_product_attention,
    )
    registry.op("attention::layer_norm", LayerNormFunction, samples=layer_norm_samples, call=layer_norm)


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(layers)  # MultiHeadAttention, LayerNorm, ...: the catalog's names for the stage
