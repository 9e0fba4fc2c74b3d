"""Embedding layers: a token table and two ways to tell a model where each token sits."""

from __future__ import annotations

import math

import numpy as np

from tinytorch_core import Module, Parameter, Tensor, resolve_generator
from tinytorch_core.checks import dtype_mismatch, positive_int

from .functional import embedding, normalize_padding_idx


class Embedding(Module):
    """A learnable table of ``num_embeddings`` vectors of size ``embedding_dim``.

    ``forward(indices)`` maps integer ids of any shape to ``indices.shape + (embedding_dim,)``.
    The weight starts as N(0, 1) draws (PyTorch's default). Positions holding ``padding_idx``
    (if given) embed to zero vectors and that row never receives a gradient; it also starts at
    zero, so a state dict looks like PyTorch's.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None, *, generator=None):
        super().__init__()
        self.num_embeddings = positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim", "Embedding")
        self.padding_idx = normalize_padding_idx(padding_idx, self.num_embeddings, "Embedding")
        rng = resolve_generator(generator)
        table = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(np.float32)
        if self.padding_idx is not None:
            table[self.padding_idx] = 0.0
        self.weight = Parameter(table)

    def forward(self, indices):
        return embedding(indices, self.weight, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _check_sequence(x: Tensor, max_len: int, dim: int, where: str) -> int:
    if x.ndim < 2 or x.shape[-1] != dim:
        raise ValueError(
            f"{where}: expected input of shape (..., seq_len, {dim}), got {tuple(x.shape)}"
        )
    length = x.shape[-2]
    if length > max_len:
        raise ValueError(
            f"{where}: sequence length {length} exceeds max_len {max_len}; "
            "build the layer with a larger max_len or crop the sequence"
        )
    return length


class LearnedPositionalEmbedding(Module):
    """One learnable vector per position, added to the input.

    ``forward(x)`` takes ``x`` of shape ``(..., T, embedding_dim)`` (token embeddings) and
    returns ``x + weight[:T]``. ``weight`` (``max_len``, ``embedding_dim``) is a Parameter, so
    optimizers train it; it starts as N(0, 0.02**2) draws (the GPT-2 convention).
    """

    init_std = 0.02

    def __init__(self, max_len: int, embedding_dim: int, generator=None):
        super().__init__()
        self.max_len = positive_int(max_len, "max_len", "LearnedPositionalEmbedding")
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim", "LearnedPositionalEmbedding")
        rng = resolve_generator(generator)
        table = rng.standard_normal((self.max_len, self.embedding_dim)) * self.init_std
        self.weight = Parameter(table.astype(np.float32))

    def forward(self, x):
        if getattr(x, "dtype", None) is None:
            x = Tensor(x)  # nested lists
        if x.dtype != self.weight.dtype:  # checked before any conversion: float64 arrays are not cast silently
            raise dtype_mismatch(self, x, self.weight.dtype)
        x = _as_tensor(x)
        length = _check_sequence(x, self.max_len, self.embedding_dim, "LearnedPositionalEmbedding")
        return x + (self.weight if length == self.max_len else self.weight[:length])

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, embedding_dim={self.embedding_dim}"


def sinusoidal_table(max_len: int, embedding_dim: int) -> np.ndarray:
    """``table[p, 2i] = sin(p / 10000**(2i/E))``, ``table[p, 2i+1] = cos(...)`` (float64)."""
    positions = np.arange(max_len, dtype=np.float64)[:, None]
    pairs = (embedding_dim + 1) // 2
    frequencies = np.exp(-math.log(10000.0) * (2.0 * np.arange(pairs)) / embedding_dim)
    angles = positions * frequencies  # (max_len, pairs)
    table = np.empty((max_len, 2 * pairs), dtype=np.float64)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table[:, :embedding_dim]  # an odd size drops the last cosine column


class SinusoidalPositionalEncoding(Module):
    """Fixed sine/cosine position vectors (Vaswani et al. 2017), added to the input.

    ``forward(x)`` takes ``x`` of shape ``(..., T, embedding_dim)`` and returns ``x + pe[:T]``.
    The table ``pe`` is a non-persistent buffer: not trained, not in the state dict (it is
    recomputed from ``max_len`` and ``embedding_dim``), and ``Module.to`` recomputes it in the
    new dtype, so a model moved to float64 gets a float64-accurate table.
    """

    def __init__(self, max_len: int, embedding_dim: int):
        super().__init__()
        self.max_len = positive_int(max_len, "max_len", "SinusoidalPositionalEncoding")
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim", "SinusoidalPositionalEncoding")
        self.register_buffer("pe", Tensor(self._table(np.float32)), persistent=False, rebuild=self._table)

    def _table(self, dtype):
        return sinusoidal_table(self.max_len, self.embedding_dim).astype(dtype)

    def forward(self, x):
        x = _as_tensor(x)
        length = _check_sequence(x, self.max_len, self.embedding_dim, "SinusoidalPositionalEncoding")
        table = self.pe.data[:length]
        if x.dtype.kind == "f" and table.dtype != x.dtype:
            # computed in the input's dtype: a float32 model stays float32, a float64 input gets
            # float64-accurate positions rather than float32 values widened
            table = sinusoidal_table(length, self.embedding_dim).astype(x.dtype)
        return x + table

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, embedding_dim={self.embedding_dim}"
