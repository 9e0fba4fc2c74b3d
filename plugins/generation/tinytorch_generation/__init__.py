"""TinyTorch stage generation: text generation with a key/value cache, greedy and sampled decoding.

Reach these as ``tinytorch_core.generation.generate`` / ``tinytorch_core.generation.KVCache``
once the stage is installed, or import them from here.
"""

from .cache import KVCache, KVCacheWrite, LayerKVCache, kv_cache_write
from .generate import generate
from .sampling import choose_next, sample_tokens, softmax_rows, top_k_filter, top_p_filter

__all__ = [
    "KVCache",
    "KVCacheWrite",
    "LayerKVCache",
    "choose_next",
    "generate",
    "kv_cache_write",
    "sample_tokens",
    "softmax_rows",
    "top_k_filter",
    "top_p_filter",
]
