"""The cache seam (tinytorch_attention.cache): any object with the protocol's few members works;
here a minimal one that concatenates, independent of the generation stage's KVCache."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_attention import GPT, MultiHeadAttention
from tinytorch_attention.cache import cached_causal_mask


class ConcatenatingLayerCache:
    def __init__(self):
        self.keys = self.values = None

    def append(self, keys, values):
        keys, values = np.asarray(keys.data), np.asarray(values.data)
        self.keys = keys if self.keys is None else np.concatenate([self.keys, keys], axis=1)
        self.values = values if self.values is None else np.concatenate([self.values, values], axis=1)
        return self.keys, self.values


class ConcatenatingCache:
    def __init__(self, num_layers):
        self.length = 0
        self.layers = [ConcatenatingLayerCache() for _ in range(num_layers)]

    def layer(self, index):
        return self.layers[index]

    def advance(self, count):
        self.length += count


def test_the_cached_causal_mask_aligns_the_queries_with_the_last_keys():
    assert cached_causal_mask(1, 4).tolist() == [[True] * 4]
    assert cached_causal_mask(2, 4).tolist() == [[True, True, True, False], [True] * 4]
    assert np.array_equal(cached_causal_mask(3, 3), np.tril(np.ones((3, 3), bool)))


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_a_gpt_fed_one_token_at_a_time_through_a_cache_matches_the_full_forward(positional):
    model = GPT(10, 16, 12, 2, 2, 24, generator=0, positional=positional).to(np.float64)
    ids = np.random.default_rng(0).integers(0, 10, (2, 9))
    cache = ConcatenatingCache(model.num_layers)
    with tt.no_grad():
        full = model(ids).data
        stepped = np.concatenate([model(ids[:, :3], cache=cache).data]
                                 + [model(ids[:, p : p + 1], cache=cache).data for p in range(3, 9)], axis=1)
    assert cache.length == 9 and cache.layers[1].keys.shape == (2, 9, 12)
    assert np.allclose(stepped, full, rtol=1e-12, atol=1e-12)


def test_multi_head_attention_with_a_cache_is_causal_attention_over_every_stored_position():
    attention = MultiHeadAttention(8, 2, generator=1).to(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 5, 8))
    layer_cache = ConcatenatingLayerCache()
    with tt.no_grad():
        full = attention(x, causal=True).data
        first = attention(x[:, :2], causal=True, cache=layer_cache).data
        rest = attention(x[:, 2:], causal=True, cache=layer_cache).data  # 3 queries at positions 2..4
    assert np.allclose(np.concatenate([first, rest], axis=1), full, rtol=1e-12, atol=1e-12)


def test_a_cache_is_refused_with_cross_attention_masks_or_recording():
    attention = MultiHeadAttention(8, 2, generator=1)
    x = np.zeros((1, 2, 8), np.float32)
    with tt.no_grad(), pytest.raises(ValueError, match="with a cache, forward takes the new positions as query only"):
        attention(x, x, cache=ConcatenatingLayerCache())
    with pytest.raises(RuntimeError, match=r"use the cache under tinytorch_core\.no_grad\(\)"):
        attention(x, cache=ConcatenatingLayerCache())


def test_gpt_positional_choices():
    assert "pos_emb.weight" in GPT(5, 4, 6, 2, 1, 8, generator=0).state_dict()
    sinusoidal = GPT(5, 4, 6, 2, 1, 8, generator=0, positional="sinusoidal")
    assert not any(name.startswith("pos_emb") for name in sinusoidal.state_dict())  # a fixed table: nothing to train
    assert sinusoidal(np.array([[1, 2, 3]])).shape == (1, 3, 5)
    with pytest.raises(ValueError, match=r"positional must be one of \('learned', 'sinusoidal'\), got 'rope'"):
        GPT(5, 4, 6, 2, 1, 8, positional="rope")
