"""The contract of stage ``embeddings`` (lookup tables, positions, a character tokenizer, a byte-level
BPE tokenizer), checked through the public API. References are computed here with plain NumPy
indexing and formulas, and byte-pair encoding with plain Python loops."""

from __future__ import annotations

import math
import tempfile
from collections import Counter
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


# ---- text.BPETokenizer: references with plain Python, one pair at a time -------------------------------------
BPE_TEXT = "low lower lowest; newer wider ñoño ñoño 🙂🙂 字字 " * 3
EOT = "<|endoftext|>"


def bpe_reference_merge(seq, pair, new_id):
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def bpe_reference_train(text, merges):
    seq, learned = list(text.encode("utf-8")), []
    for new_id in range(256, 256 + merges):
        counts = Counter(zip(seq, seq[1:]))
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))  # the most frequent; a tie goes to the smallest pair
        seq = bpe_reference_merge(seq, pair, new_id)
        learned.append(pair)
    return learned


def bpe_reference_encode(text, merges):
    seq = list(text.encode("utf-8"))
    for rank, pair in enumerate(merges):
        seq = bpe_reference_merge(seq, pair, 256 + rank)
    return seq


def bpe_merges_of(tokenizer):
    return [tuple(int(i) for i in pair) for pair in tokenizer.merges]


def bpe_known_answers():
    tokenizer = tt.text.BPETokenizer.train("aaabdaaabac", 259)
    if bpe_merges_of(tokenizer) != [(97, 97), (97, 98), (256, 257)]:
        raise ConformanceError(f"train('aaabdaaabac', 259) learned {bpe_merges_of(tokenizer)}, expected "
                               "[(97, 97), (97, 98), (256, 257)] (the tie of (256, 97) and (97, 98) goes to "
                               "the smaller)")
    if list(tokenizer.encode("aaabdaaabac")) != [258, 100, 258, 97, 99]:
        raise ConformanceError(f"encode('aaabdaaabac') gave {list(tokenizer.encode('aaabdaaabac'))}, "
                               "expected [258, 100, 258, 97, 99]")
    tokenizer = tt.text.BPETokenizer.train(BPE_TEXT, 300)
    expected = bpe_reference_train(BPE_TEXT, 300 - 256)
    if bpe_merges_of(tokenizer) != expected:
        raise ConformanceError(f"train(text, 300) learned {bpe_merges_of(tokenizer)[:6]}..., "
                               f"expected {expected[:6]}...")
    sample = "the newest lowly wider ñ🙂字"
    if list(tokenizer.encode(sample)) != bpe_reference_encode(sample, expected):
        raise ConformanceError(f"encode({sample!r}) gave {list(tokenizer.encode(sample))}, expected "
                               f"{bpe_reference_encode(sample, expected)} (the merges applied in the order learned)")


def bpe_contract():
    tokenizer = tt.text.BPETokenizer.train(BPE_TEXT + EOT, 280, special_tokens=[EOT])
    if tokenizer.vocab_size != 280 or tokenizer.special_tokens != {EOT: 279}:
        raise ConformanceError(f"train(text, 280, special_tokens=[EOT]) has vocab_size {tokenizer.vocab_size} and "
                               f"special_tokens {tokenizer.special_tokens}, expected 280 and {{EOT: 279}}")
    text = f"Zoë e\u0301 👩‍👩‍👧 \x00\n字{EOT}x"
    ids = tokenizer.encode(text)
    if tokenizer.decode(ids) != text or 279 not in list(ids):
        raise ConformanceError(f"decode(encode(text)) gave {tokenizer.decode(ids)!r} for {text!r} (ids {list(ids)}), "
                               "expected the text back, the special token as its id 279")
    if 279 in list(tokenizer.encode(EOT, allow_special=False)):
        raise ConformanceError("encode(EOT, allow_special=False) must encode the special token's text as bytes")
    expect_error(TypeError, lambda: tokenizer.decode(np.array([1.0])), "decode of float ids")
    expect_error(IndexError, lambda: tokenizer.decode([280]), "decode of id 280 in a vocabulary of 280")
    expect_error(ValueError, lambda: tt.text.BPETokenizer.train("abc", 256, special_tokens=[EOT]),
                 "train with vocab_size 256 and a special token (no room for it)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bpe.json"
        tokenizer.save(path)
        again = tt.text.BPETokenizer.load(path)
    if bpe_merges_of(again) != bpe_merges_of(tokenizer) or list(again.encode(text)) != list(ids):
        raise ConformanceError("BPETokenizer.load(save(t)) does not give back the same merges and encoding")


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
    Check("text.BPETokenizer", "forward", bpe_known_answers),
    Check("text.BPETokenizer", "contract", bpe_contract),
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
    Layer("BPETokenizer", "merges=(), special_tokens=()", namespace="text", base="object",
          doc="""Byte-level byte-pair encoding. Ids 0..255 are the bytes; merge r (merges[r], a pair of
    earlier ids) makes id 256 + r; the special tokens take the last ids. train(text, vocab_size,
    special_tokens=()) starts from the UTF-8 bytes of text and repeats: count adjacent pairs, the most
    frequent becomes the next id (a tie goes to the smallest (left, right)), replace it left to right
    (in "a a a" the pair (a, a) merges once, on the left); until vocab_size ids (256 + merges +
    specials; ValueError if smaller than 256 + specials) or no pair is left. Special tokens in the
    text are cut out and never merged across. encode(text, allow_special=True) -> int64 ids: the bytes,
    then the merges in the order learned; a special token's text is its id (as bytes if allow_special
    is False). decode(ids, errors="replace") -> str (TypeError for non-integer ids, IndexError out of
    range); decode(encode(s)) == s for every str. save(path) / load(path) as JSON; merges (tuple of
    pairs), special_tokens ({text: id}) and vocab_size describe the vocabulary.""",
          methods=("@classmethod\ndef train(cls, text, vocab_size, special_tokens=())",
                   "def encode(self, text, allow_special=True)", 'def decode(self, ids, errors="replace")',
                   "def save(self, path)", "@classmethod\ndef load(cls, path)", "@property\ndef merges(self)",
                   "@property\ndef special_tokens(self)", "@property\ndef vocab_size(self)")),
]
