"""The contract of stage ``embeddings`` (lookup tables, positions, a character tokenizer), checked
through the public API. References are computed here with plain NumPy indexing and formulas."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import Check, ConformanceError, check_gradients, expect_close, expect_error, expect_learned, train
from .contract import Layer, Op

INDICES = np.array([[1, 3, 3, 0], [9, 2, 1, 1]])


def sinusoid_reference(length, dim):
    table = np.zeros((length, dim))
    for p in range(length):
        for i in range(dim):
            angle = p / 10000.0 ** (2 * (i // 2) / dim)
            table[p, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    return table


# ---- ops.embedding --------------------------------------------------------------------------------------
def embedding_forward():
    weight = np.random.default_rng(0).standard_normal((10, 4))
    out = tt.ops.embedding(Tensor(INDICES), Tensor(weight.astype(np.float32)))
    expect_close("embedding(indices, weight)", out, weight[INDICES])
    padded = tt.ops.embedding(Tensor(INDICES), Tensor(weight.astype(np.float32)), padding_idx=1)
    expected = weight[INDICES].copy()
    expected[INDICES == 1] = 0.0
    expect_close("embedding with padding_idx=1 (padding positions are zero vectors)", padded, expected)


def embedding_backward():
    weight = np.random.default_rng(1).standard_normal((10, 3))
    check_gradients(lambda weight: tt.ops.embedding(Tensor(INDICES), weight), {"weight": weight})
    table = Tensor(weight, requires_grad=True, dtype=np.float64)
    tt.ops.embedding(Tensor(INDICES), table, padding_idx=1).sum().backward()
    counts = np.bincount(INDICES.ravel(), minlength=10).astype(float)
    counts[1] = 0.0  # the padding row never receives a gradient
    expect_close("grad of weight with padding_idx=1 (rows summed per use)", table.grad,
                 np.repeat(counts[:, None], 3, axis=1))


def embedding_contract():
    weight = Tensor(np.zeros((10, 4), np.float32))
    expect_error(TypeError, lambda: tt.ops.embedding(Tensor(INDICES.astype(np.float64)), weight),
                 "embedding of float indices")
    expect_error(IndexError, lambda: tt.ops.embedding(Tensor(np.array([10])), weight),
                 "embedding of index 10 into a table of 10 rows")


# ---- the layers and the tokenizer -------------------------------------------------------------------------
def embedding_layer():
    layer = tt.nn.Embedding(10, 4, padding_idx=0)
    if tuple(layer.weight.shape) != (10, 4):
        raise ConformanceError(f"Embedding(10, 4) has weight of shape {tuple(layer.weight.shape)}, expected (10, 4)")
    if np.any(layer.weight.data[0] != 0):
        raise ConformanceError("Embedding(10, 4, padding_idx=0): the padding row must start at zero")
    expect_close("Embedding forward", layer(Tensor(INDICES)), layer.weight.data.astype(np.float64)[INDICES])


def sinusoidal_layer():
    for dim in (8, 7):  # an odd size drops the last cosine column
        layer = tt.nn.SinusoidalPositionalEncoding(16, dim)
        out = layer(Tensor(np.zeros((2, 12, dim), np.float32)))
        expect_close(f"SinusoidalPositionalEncoding(16, {dim}) of zeros", out,
                     np.broadcast_to(sinusoid_reference(12, dim), (2, 12, dim)), atol=1e-6)
    layer = tt.nn.SinusoidalPositionalEncoding(16, 8)
    expect_error(ValueError, lambda: layer(Tensor(np.zeros((1, 17, 8), np.float32))),
                 "SinusoidalPositionalEncoding(16, 8) of a sequence of 17")


def learned_positions_layer():
    layer = tt.nn.LearnedPositionalEmbedding(6, 3)
    names = [name for name, _ in layer.named_parameters()]
    if names != ["weight"] or tuple(layer.weight.shape) != (6, 3):
        raise ConformanceError(f"LearnedPositionalEmbedding(6, 3) has parameters {names}, expected weight (6, 3)")
    x = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    out = layer(Tensor(x))
    expect_close("LearnedPositionalEmbedding forward", out, x + layer.weight.data[:4])
    out.sum().backward()
    expected = np.zeros((6, 3))
    expected[:4] = 2.0  # two sequences use positions 0..3
    expect_close("grad of LearnedPositionalEmbedding.weight", layer.weight.grad, expected)


def char_tokenizer():
    tokenizer = tt.text.CharTokenizer.from_text("hello world")
    if tuple(tokenizer.chars) != tuple(sorted(set("hello world"))) or tokenizer.vocab_size != 8:
        raise ConformanceError(f"CharTokenizer.from_text('hello world') has chars {tuple(tokenizer.chars)}, "
                               "expected the distinct characters sorted by code point")
    ids = tokenizer.encode("lower")
    expected = [sorted(set("hello world")).index(c) for c in "lower"]
    if list(ids) != expected:
        raise ConformanceError(f"encode('lower') gave {list(ids)}, expected {expected}")
    if tokenizer.decode(ids) != "lower":
        raise ConformanceError("decode(encode('lower')) is not 'lower'")
    expect_error(ValueError, lambda: tokenizer.encode("hex"), "encode of a character not in the vocabulary")
    expect_error(TypeError, lambda: tokenizer.decode(np.array([1.0])), "decode of float ids")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vocab.json"
        tokenizer.save(path)
        again = tt.text.CharTokenizer.load(path)
    if tuple(again.chars) != tuple(tokenizer.chars):
        raise ConformanceError("CharTokenizer.load(save(t)) does not give back the same vocabulary")


# ---- training: an embedding learns which token comes next --------------------------------------------------
def next_token_learns():
    ids = np.arange(5)
    model = tt.nn.Sequential(tt.nn.Embedding(5, 8, generator=0), tt.nn.Linear(8, 5, generator=0))
    optimizer = tt.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = tt.nn.CrossEntropyLoss()
    x, y = Tensor(ids), Tensor((ids + 1) % 5)
    first, last = train(lambda: loss_fn(model(x), y), optimizer, 100)
    accuracy = float((model(x).data.argmax(axis=1) == (ids + 1) % 5).mean())
    expect_learned("Embedding + Linear on i -> i + 1 (mod 5)", first, last, loss_ratio=0.2, accuracy=accuracy,
                   min_accuracy=1.0)


CHECKS = [
    Check("ops.embedding", "forward", embedding_forward),
    Check("ops.embedding", "backward", embedding_backward),
    Check("ops.embedding", "contract", embedding_contract),
    Check("nn.Embedding", "contract", embedding_layer),
    Check("nn.SinusoidalPositionalEncoding", "forward", sinusoidal_layer),
    Check("nn.LearnedPositionalEmbedding", "contract", learned_positions_layer),
    Check("text.CharTokenizer", "contract", char_tokenizer),
    Check("embeddings", "training", next_token_learns),
]

CONTRACT = [
    Op("embedding", "indices, weight, padding_idx=None", inputs=("weight",),
       doc="""Rows of ``weight`` (V, E) picked by integer ``indices`` of any shape: out = weight[indices],
    shape indices.shape + (E,). Positions holding ``padding_idx`` (if given) are zero vectors.
    Errors: TypeError for non-integer indices, IndexError for an index outside 0..V-1. Backward:
    the gradient of weight, each row the sum of the gradients of the positions that used it
    (repeated indices add up), zero for the padding row.""",
       sample="Sample(np.array([[1, 3, 3], [0, 2, 1]]), randn(rng, 5, 4))"),
    Layer("Embedding", "num_embeddings, embedding_dim, padding_idx=None, generator=None",
          doc="""A learnable table: parameter weight (num_embeddings, embedding_dim), N(0, 1) at start, the
    padding row (if any) zero; forward(indices) = embedding(indices, weight, padding_idx)."""),
    Layer("SinusoidalPositionalEncoding", "max_len, embedding_dim",
          doc="""forward(x) for x (..., T, E), T <= max_len (else ValueError): x + pe[:T], with
    pe[p, 2i] = sin(p / 10000**(2i / E)) and pe[p, 2i + 1] = cos(p / 10000**(2i / E)); no parameters."""),
    Layer("LearnedPositionalEmbedding", "max_len, embedding_dim, generator=None",
          doc="""One learnable vector per position: parameter weight (max_len, embedding_dim), N(0, 0.02**2)
    at start; forward(x) for x (..., T, E), T <= max_len: x + weight[:T]."""),
    Layer("CharTokenizer", "chars, unk_token=None", namespace="text", base="object",
          doc="""Characters to integer ids and back. Ids are positions in ``chars``; ``from_text(text)``
    uses the distinct characters of text sorted by code point. encode(text) -> int64 array of ids
    (ValueError for a character not in the vocabulary unless ``unk_token`` is given); decode(ids)
    -> str (TypeError for non-integer ids, IndexError out of range); save(path) / load(path) as
    JSON; chars and vocab_size describe the vocabulary.""",
          methods=("@classmethod\ndef from_text(cls, text, unk_token=None)", "def encode(self, text)",
                   "def decode(self, ids)", "def save(self, path)", "@classmethod\ndef load(cls, path)",
                   "@property\ndef chars(self)", "@property\ndef vocab_size(self)")),
]
