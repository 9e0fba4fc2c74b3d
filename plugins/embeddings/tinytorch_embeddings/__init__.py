"""TinyTorch stage 3, embeddings: token tables, positional encodings, and two tokenizers (one id
per character, and byte-level BPE) that implement one ``Tokenizer`` protocol.

Reach these as ``tinytorch_core.nn.Embedding`` / ``tinytorch_core.ops.embedding`` /
``tinytorch_core.text.CharTokenizer`` / ``tinytorch_core.text.BPETokenizer`` once the stage is
installed, or import them from here.
"""

from .functional import EmbeddingLookup, embedding
from .layers import Embedding, LearnedPositionalEmbedding, SinusoidalPositionalEncoding, sinusoidal_table
from .bpe import BPETokenizer
from .tokenizer import CharTokenizer, Tokenizer, VocabularyError

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "Embedding",
    "EmbeddingLookup",
    "LearnedPositionalEmbedding",
    "SinusoidalPositionalEncoding",
    "Tokenizer",
    "VocabularyError",
    "embedding",
    "sinusoidal_table",
]
