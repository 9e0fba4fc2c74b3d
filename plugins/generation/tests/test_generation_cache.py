"""KVCache: preallocated for the whole context, filled in place, one new position per step, and
the same logits as the full forward; its errors. (Its op and the compiled decoding step:
test_generation_static_cache.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_generation import KVCache, LayerKVCache


def gpt(positional="learned", dtype=np.float64):
    return tt.nn.GPT(11, 24, 12, 3, 2, 20, generator=1, positional=positional).to(dtype)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_stepping_with_the_cache_gives_the_full_forward_logits(positional, dtype, tolerance):
    model = gpt(positional, dtype)
    ids = np.random.default_rng(0).integers(0, 11, (2, 15))
    cache = KVCache.for_model(model)
    with tt.no_grad():
        full = model(ids).data
        chunks = [model(ids[:, :6], cache=cache).data, model(ids[:, 6:9], cache=cache).data]  # chunks too
        chunks += [model(ids[:, p : p + 1], cache=cache).data for p in range(9, 15)]
    stepped = np.concatenate(chunks, axis=1)
    assert stepped.dtype == dtype and cache.length == 15
    assert np.allclose(stepped, full, rtol=tolerance, atol=tolerance)
    assert np.abs(full[:, 1:] - full[:, :-1]).max() > 0.05  # positions differ: a wrong offset would show


def test_the_cache_is_allocated_once_for_the_context_and_written_in_place():
    model = gpt()
    cache = KVCache.for_model(model)
    assert (cache.num_layers, cache.max_len, cache.nbytes) == (2, 24, 0)
    ids = np.random.default_rng(1).integers(0, 11, (3, 10))
    with tt.no_grad():
        model(ids[:, :4], cache=cache)
        arrays = [(layer.keys, layer.values) for layer in cache.layers]
        assert arrays[0][0].shape == (3, 24, 12)  # (batch, max_len, width): the whole context
        size = cache.nbytes
        keys_at_4 = cache.layers[1].keys[:, :4].copy()
        for p in range(4, 10):
            model(ids[:, p : p + 1], cache=cache)
    assert all(layer.keys is k and layer.values is v for layer, (k, v) in zip(cache.layers, arrays))
    assert cache.nbytes == size == 2 * 2 * 3 * 24 * 12 * 8
    assert np.array_equal(cache.layers[1].keys[:, :4], keys_at_4)  # earlier positions untouched
    assert np.abs(cache.layers[1].keys[:, 4:10]).min() > 0 and not cache.layers[1].keys[:, 10:].any()


class RecordingLayer(LayerKVCache):
    def append(self, keys, values):
        self._owner.appended.append(keys.shape[1])
        return super().append(keys, values)


class RecordingCache(KVCache):
    """Records how many positions each layer was given: the keys and values a step computes."""

    def __init__(self, num_layers, max_len):
        super().__init__(num_layers, max_len)
        self.appended = []
        self.layers = tuple(RecordingLayer(self, index) for index in range(num_layers))


def test_generation_computes_one_new_position_per_layer_per_step():
    model = gpt()
    cache = RecordingCache(model.num_layers, model.max_len)
    with tt.no_grad():
        model(np.array([[1, 2, 3, 4, 5]]), cache=cache)
        for token in (6, 7, 8):
            model(np.array([[token]]), cache=cache)
    assert cache.appended == [5, 5] + [1, 1] * 3  # the prompt once, then one position, never the past


def test_the_cache_refuses_what_does_not_fit():
    cache = KVCache(2, 4)
    layer = cache.layer(0)
    keys = np.zeros((1, 3, 8), np.float32)
    stored_keys, _ = layer.append(keys, keys)
    assert stored_keys.shape == (1, 3, 8)
    with pytest.raises(ValueError, match="read-only"):
        stored_keys.data[0, 0, 0] = 1.0
    cache.advance(3)
    with pytest.raises(ValueError, match=r"at most max_len=4 positions; 3 are stored and 2 more came"):
        layer.append(np.zeros((1, 2, 8), np.float32), np.zeros((1, 2, 8), np.float32))
    with pytest.raises(ValueError, match="holds batch 1, width 8, float32"):
        layer.append(np.zeros((2, 1, 8), np.float32), np.zeros((2, 1, 8), np.float32))
    with pytest.raises(ValueError, match="one shape"):
        layer.append(keys, np.zeros((1, 3, 4), np.float32))
    with pytest.raises(IndexError, match=r"0\.\.1"):
        cache.layer(2)
    with pytest.raises(ValueError, match="exceed max_len=4"):
        cache.advance(2)
    cache.reset()
    assert cache.length == 0 and layer.append(keys, keys)[0].shape == (1, 3, 8)
    with pytest.raises(ValueError, match="positive int"):
        KVCache(0, 4)


def test_the_model_refuses_a_cache_it_cannot_use():
    model = gpt()
    cache = KVCache.for_model(model)
    ids = np.zeros((1, 20), np.int64)
    with pytest.raises(RuntimeError, match="no_grad"):
        model(ids, cache=cache)  # recording: the cache would cut the gradient
    with tt.no_grad():
        model(ids, cache=cache)
        with pytest.raises(ValueError, match="after the 20 positions already in the cache exceeds max_len 24"):
            model(np.zeros((1, 5), np.int64), cache=cache)
        with pytest.raises(ValueError, match="key_padding_mask cannot be combined with a cache"):
            model(ids[:, :1], cache=cache, key_padding_mask=np.zeros((1, 21), bool))
    assert cache.length == 20  # refused calls stored nothing
