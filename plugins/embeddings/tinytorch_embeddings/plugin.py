"""pluggy hooks of the 'embeddings' stage: what it registers with the TinyTorch host.
The entry point's name, ``embeddings``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

import tinytorch_embeddings

from .functional import EmbeddingLookup, embedding, embedding_samples


@hookimpl
def tinytorch_register_ops(registry):
    registry.op("embeddings::embedding", EmbeddingLookup, samples=embedding_samples, call=embedding)


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(tinytorch_embeddings)  # its layers and tokenizers, as the catalog lists them
