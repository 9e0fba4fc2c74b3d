"""TinyTorch stage generation: text generation with a key/value cache, greedy and sampled decoding.

Reach these as ``tinytorch_core.generation.generate`` / ``tinytorch_core.generation.KVCache``
once the stage is installed, or import them from here.
"""

from .cache import KVCache, LayerKVCache
from .generate import generate
from .sampling import choose_next, sample_tokens, softmax_rows, top_k_filter, top_p_filter

__all__ = [
    "KVCache",
    "LayerKVCache",
    "choose_next",
    "generate",
    "sample_tokens",
    "softmax_rows",
    "top_k_filter",
    "top_p_filter",
]
