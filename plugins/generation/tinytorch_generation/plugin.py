"""pluggy hooks of the 'generation' stage: what it registers with the TinyTorch host.
The entry point's name, ``generation``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

import tinytorch_generation

from .cache import KVCacheWrite, kv_cache_write


@hookimpl
def tinytorch_register_ops(registry):
    # not differentiable (a cache serves inference under no_grad): registered without gradcheck samples
    registry.op("generation::kv_cache_write", KVCacheWrite, call=kv_cache_write)


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(tinytorch_generation)  # generate, KVCache and the sampling helpers, as the catalog lists them
