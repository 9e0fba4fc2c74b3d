"""TinyTorch stage 3, embeddings: token tables, positional encodings and a character tokenizer.

Reach these as ``tinytorch_core.nn.Embedding`` / ``tinytorch_core.ops.embedding`` /
``tinytorch_core.text.CharTokenizer`` once the stage is installed, or import them from here.
"""

from .functional import EmbeddingLookup, embedding
from .layers import Embedding, LearnedPositionalEmbedding, SinusoidalPositionalEncoding, sinusoidal_table
from .tokenizer import CharTokenizer

__all__ = [
    "CharTokenizer",
    "Embedding",
    "EmbeddingLookup",
    "LearnedPositionalEmbedding",
    "SinusoidalPositionalEncoding",
    "embedding",
    "sinusoidal_table",
]
