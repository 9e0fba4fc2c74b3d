"""pluggy hooks of the 'embeddings' stage: what it registers with the TinyTorch host."""

from tinytorch_core import hookimpl

from .functional import EmbeddingLookup, embedding, embedding_samples
from .layers import Embedding, LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from .tokenizer import CharTokenizer


@hookimpl
def tinytorch_declare_stage(declare):
    declare("embeddings")


@hookimpl
def tinytorch_register_ops(registry):
    registry.function("embeddings::embedding", EmbeddingLookup, samples=embedding_samples, call=embedding)


@hookimpl
def tinytorch_register_layers(registry):
    registry.layer("Embedding", Embedding)
    registry.layer("SinusoidalPositionalEncoding", SinusoidalPositionalEncoding)
    registry.layer("LearnedPositionalEmbedding", LearnedPositionalEmbedding)
    registry.symbol("text", "CharTokenizer", CharTokenizer)
