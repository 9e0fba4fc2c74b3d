"""The contract of stage ``attention`` (attention, layer norm, transformer blocks, GPT), checked
through the public API. The ops are compared with formulas computed here; the layers are checked by
what they must do (shapes, causality, padding, gradients of every parameter), not by how a
provider builds them inside."""

from __future__ import annotations

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import (Check, ConformanceError, check_gradients, check_parameter_gradients, expect_close, expect_error,
               expect_learned, train)
from .contract import Layer, Op


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def attention_reference(q, k, v, allowed=None):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return (weights / weights.sum(axis=-1, keepdims=True)) @ v


def layer_norm_reference(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


# ---- ops ------------------------------------------------------------------------------------------------
def layer_norm_forward():
    x, w, b = _data((2, 3, 6)), _data(6, 1), _data(6, 2)
    out = tt.ops.layer_norm(Tensor(x.astype(np.float32)), Tensor(w.astype(np.float32)), Tensor(b.astype(np.float32)))
    expect_close("layer_norm(x, weight, bias)", out, layer_norm_reference(x, w, b), rtol=1e-4, atol=1e-4)


def layer_norm_backward():
    check_gradients(lambda x, weight, bias: tt.ops.layer_norm(x, weight, bias),
                    {"x": _data((3, 5)), "weight": _data(5, 1), "bias": _data(5, 2)})


def attention_forward():
    q, k, v = _data((2, 2, 4, 8)), _data((2, 2, 5, 8), 1), _data((2, 2, 5, 3), 2)
    f32 = lambda a: Tensor(a.astype(np.float32))  # noqa: E731
    expect_close("scaled_dot_product_attention(q, k, v)", tt.ops.scaled_dot_product_attention(f32(q), f32(k), f32(v)),
                 attention_reference(q, k, v), rtol=1e-4, atol=1e-5)
    allowed = np.random.default_rng(3).random((4, 5)) > 0.3
    allowed[:, 0] = True
    expect_close("attention with a mask (True = may attend)",
                 tt.ops.scaled_dot_product_attention(f32(q), f32(k), f32(v), mask=Tensor(allowed)),
                 attention_reference(q, k, v, allowed), rtol=1e-4, atol=1e-5)
    square_k, square_v = _data((2, 2, 4, 8), 4), _data((2, 2, 4, 3), 5)
    expect_close("attention with causal=True (query i sees keys j <= i)",
                 tt.ops.scaled_dot_product_attention(f32(q), f32(square_k), f32(square_v), causal=True),
                 attention_reference(q, square_k, square_v, np.tril(np.ones((4, 4), bool))), rtol=1e-4, atol=1e-5)


def attention_backward():
    check_gradients(lambda q, k, v: tt.ops.scaled_dot_product_attention(q, k, v, causal=True),
                    {"q": _data((2, 3, 4)), "k": _data((2, 3, 4), 1), "v": _data((2, 3, 2), 2)})


def attention_contract():
    q = Tensor(np.zeros((2, 3, 4), np.float32))
    expect_error(ValueError, lambda: tt.ops.scaled_dot_product_attention(q, Tensor(np.zeros((2, 3, 5), np.float32)), q),
                 "attention of queries and keys of different feature sizes")


# ---- layers ---------------------------------------------------------------------------------------------
def layer_norm_layer():
    layer = tt.nn.LayerNorm(6)
    shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    if shapes != {"weight": (6,), "bias": (6,)}:
        raise ConformanceError(f"LayerNorm(6) has parameters {shapes}, expected weight (6,) and bias (6,)")
    x = _data((2, 3, 6))
    expect_close("LayerNorm(6) forward", layer(Tensor(x.astype(np.float32))),
                 layer_norm_reference(x, np.ones(6), np.zeros(6)), rtol=1e-4, atol=1e-4)


def _causal(model, x, what):
    """Changing the last position must leave every earlier output unchanged."""
    changed = x.copy()
    changed[:, -1] = changed[:, -1] + 1.0 if changed.dtype.kind == "f" else (changed[:, -1] + 1) % 7
    with tt.no_grad():
        before, after = model(Tensor(x)).data, model(Tensor(changed)).data
    if not np.allclose(before[:, :-1], after[:, :-1], atol=1e-5):
        raise ConformanceError(f"{what}: changing the last position changed earlier outputs (not causal)")


def multi_head_attention_layer():
    attention = tt.nn.MultiHeadAttention(8, 2, generator=0)
    x = _data((2, 5, 8)).astype(np.float32)
    out = attention(Tensor(x))
    if tuple(out.shape) != (2, 5, 8):
        raise ConformanceError(f"MultiHeadAttention(8, 2) of (2, 5, 8) gave shape {tuple(out.shape)}")
    _causal(lambda t: attention(t, causal=True), x, "MultiHeadAttention(causal=True)")
    padding = np.zeros((2, 5), bool)
    padding[:, 3:] = True
    changed = x.copy()
    changed[:, 3:] += 5.0
    with tt.no_grad():
        a = attention(Tensor(x), key_padding_mask=Tensor(padding)).data
        b = attention(Tensor(changed), key_padding_mask=Tensor(padding)).data
    if not np.allclose(a[:, :3], b[:, :3], atol=1e-5):
        raise ConformanceError("MultiHeadAttention: padded keys (key_padding_mask True) changed the other outputs")
    expect_error(ValueError, lambda: tt.nn.MultiHeadAttention(8, 3), "MultiHeadAttention(8, 3) (8 not divisible by 3)")
    x64 = _data((2, 4, 8), 1)
    check_parameter_gradients(attention, lambda: attention(Tensor(x64, dtype=np.float64), causal=True))


def feed_forward_layer():
    layer = tt.nn.FeedForward(6, 12, generator=0)
    x = _data((2, 3, 6), 2)
    if tuple(layer(Tensor(x.astype(np.float32))).shape) != (2, 3, 6):
        raise ConformanceError("FeedForward(6, 12) must map (2, 3, 6) to (2, 3, 6)")
    check_parameter_gradients(layer, lambda: layer(Tensor(x, dtype=np.float64)))


def transformer_block_layer():
    block = tt.nn.TransformerBlock(8, 2, 16, causal=True, generator=0)
    x = _data((2, 5, 8), 3).astype(np.float32)
    if tuple(block(Tensor(x)).shape) != (2, 5, 8):
        raise ConformanceError("TransformerBlock(8, 2, 16) must map (2, 5, 8) to (2, 5, 8)")
    _causal(block, x, "TransformerBlock(causal=True)")
    x64 = _data((2, 4, 8), 4)
    check_parameter_gradients(block, lambda: block(Tensor(x64, dtype=np.float64)))


def gpt_model():
    model = tt.nn.GPT(7, 8, 8, 2, 2, 16, generator=0)
    ids = np.random.default_rng(5).integers(0, 7, (2, 6))
    logits = model(Tensor(ids))
    if tuple(logits.shape) != (2, 6, 7):
        raise ConformanceError(f"GPT(vocab 7) of ids (2, 6) gave logits {tuple(logits.shape)}, expected (2, 6, 7)")
    _causal(model, ids, "GPT")
    generated = model.generate(Tensor(ids[:1, :3]), max_new_tokens=4, generator=0)
    shape = tuple(np.shape(generated.data if isinstance(generated, Tensor) else generated))
    if shape != (1, 7):
        raise ConformanceError(f"GPT.generate of a (1, 3) prompt and 4 new tokens gave shape {shape}, expected (1, 7)")


# ---- training: a tiny GPT learns a repeating sequence ------------------------------------------------------
def gpt_learns():
    sequence = np.array([0, 1, 2, 3, 4, 5] * 3)
    x, y = Tensor(sequence[None, :-1]), Tensor(sequence[None, 1:])
    model = tt.nn.GPT(6, 17, 16, 2, 1, 32, generator=0)
    optimizer = tt.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = tt.nn.CrossEntropyLoss()
    first, last = train(lambda: loss_fn(model(x).reshape(-1, 6), y.reshape(-1)), optimizer, 80)
    accuracy = float((model(x).data.argmax(axis=-1) == y.data).mean())
    expect_learned("a tiny GPT on a repeating sequence", first, last, loss_ratio=0.2, accuracy=accuracy,
                   min_accuracy=0.9)


CHECKS = [
    Check("ops.layer_norm", "forward", layer_norm_forward),
    Check("ops.layer_norm", "backward", layer_norm_backward),
    Check("ops.scaled_dot_product_attention", "forward", attention_forward),
    Check("ops.scaled_dot_product_attention", "backward", attention_backward),
    Check("ops.scaled_dot_product_attention", "contract", attention_contract),
    Check("nn.LayerNorm", "contract", layer_norm_layer),
    Check("nn.MultiHeadAttention", "contract", multi_head_attention_layer),
    Check("nn.FeedForward", "contract", feed_forward_layer),
    Check("nn.TransformerBlock", "contract", transformer_block_layer),
    Check("nn.GPT", "contract", gpt_model),
    Check("attention", "training", gpt_learns),
]

CONTRACT = [
    Op("scaled_dot_product_attention", "q, k, v, mask=None, dropout_p=0.0, causal=False, generator=None, "
                                       "num_heads=None", inputs=("q", "k", "v"),
       doc="""softmax(q k^T / sqrt(D)) v over the last two axes: q (..., Tq, D), k (..., Tk, D),
    v (..., Tk, Dv) -> (..., Tq, Dv). ``mask`` (bool, broadcastable to (..., Tq, Tk)) is True where a
    query may attend a key; ``causal=True`` also hides keys j > i. A query with no key left gets a
    zero vector (not NaN). ValueError when q and k have different feature sizes. Backward: the
    gradients of q, k and v.""",
       sample="Sample(randn(rng, 2, 3, 4), randn(rng, 2, 3, 4), randn(rng, 2, 3, 2))"),
    Op("layer_norm", "x, weight=None, bias=None, eps=1e-5", inputs=("x", "weight", "bias"),
       doc="""Normalise x over its last axis: (x - mean) / sqrt(var + eps) (biased variance), then
    * weight + bias (each (E,), or None). Backward: the gradients of x, weight and bias.""",
       sample="Sample(randn(rng, 4, 5), randn(rng, 5), randn(rng, 5))"),
    Layer("LayerNorm", "normalized_shape, eps=1e-5",
          doc="""Parameters weight (ones) and bias (zeros) of shape (normalized_shape,);
    forward(x) = layer_norm(x, weight, bias, eps)."""),
    Layer("MultiHeadAttention", "embed_dim, num_heads, dropout=0.0, bias=True, generator=None",
          doc="""Query, key, value and output projections (embed_dim -> embed_dim); num_heads must divide
    embed_dim (else ValueError). forward(query, key=None, value=None, *, mask=None, causal=False,
    key_padding_mask=None): (B, Tq, E) -> (B, Tq, E); key=None is self-attention; mask True = may
    attend; key_padding_mask (B, Tk) True = padding, ignored by every query. cache (the generation
    stage's KVCache, see tinytorch_attention/cache.py): self-attention of the new positions only,
    appended to the cache and attending to every stored position.""",
          methods=("def forward(self, query, key=None, value=None, *, mask=None, causal=False, key_padding_mask=None, "
                   "cache=None)",)),
    Layer("FeedForward", "embed_dim, hidden_dim, dropout=0.0, activation='gelu_tanh', generator=None",
          doc="""Linear(embed_dim, hidden_dim), the activation, dropout, Linear(hidden_dim, embed_dim):
    (..., E) -> (..., E)."""),
    Layer("TransformerBlock", "embed_dim, num_heads, ff_dim, dropout=0.0, causal=False, generator=None",
          doc="""Pre-norm block: x + attention(LayerNorm(x)), then + FeedForward(LayerNorm(.));
    (B, T, E) -> (B, T, E); causal=True makes position i depend on positions <= i only.""",
          methods=("def forward(self, x, mask=None, key_padding_mask=None, cache=None)",)),
    Layer("GPT", "vocab_size, max_len, embed_dim, num_heads, num_layers, ff_dim, dropout=0.0, causal=True, "
                 "generator=None, positional='learned'",
          doc="""Token and learned position embeddings, num_layers causal TransformerBlocks, a final
    LayerNorm and a Linear head: forward(idx (B, T) ints) -> logits (B, T, vocab_size), position i
    depending on tokens <= i only. generate(prompt_ids (B, T0), max_new_tokens, ...) -> (B, T0 +
    max_new_tokens) ids. positional='sinusoidal' uses the fixed table. forward(idx, cache=cache):
    idx holds positions cache.length.., block i gets cache.layer(i), then cache.advance(T).""",
          methods=("def forward(self, idx, key_padding_mask=None, cache=None)",
                   "def generate(self, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, generator=None)")),
]
