"""A cache far larger than memory, and a model that is no Module: both were raw errors from
inside NumPy or ``generate`` (a 58 TiB MemoryError, an AttributeError); now each is named."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_generation import KVCache, generate

MAX_LEN_LIMIT = 1 << 20  # the documented bound: 1,048,576 positions


def small_gpt():
    return tt.nn.GPT(vocab_size=20, max_len=8, embed_dim=8, num_heads=2, num_layers=2, ff_dim=16, generator=0)


# ---- KVCache: max_len ---------------------------------------------------------------------------------------
def test_a_max_len_beyond_the_limit_is_refused_when_the_cache_is_created():
    """Before: KVCache(2, 10**12) was accepted; its first use asked NumPy for 58.2 TiB."""
    with pytest.raises(ValueError, match=r"KVCache: max_len must be at most 1,048,576 positions, got "
                                         r"1,000,000,000,000; KVCache.for_model\(model\) fits"):
        KVCache(2, 10**12)
    assert KVCache(1, MAX_LEN_LIMIT).max_len == MAX_LEN_LIMIT  # the bound itself is allowed


def test_an_allocation_the_system_refuses_names_the_cache_shape_dtype_and_bytes():
    """Keys 2**26 wide (a zero-copy view) make buffers of 2**20 positions 256 TiB each: more than
    any machine's address space, so the system refuses whatever its overcommit policy."""
    cache = KVCache(3, MAX_LEN_LIMIT)
    wide = np.broadcast_to(np.zeros(1, np.float32), (1, 1, 2**26))
    with pytest.raises(MemoryError, match=r"KVCache layer 0: cannot allocate its keys and values, two float32 "
                                          r"arrays of shape \(1, 1048576, 67108864\): 512 TiB for this layer, "
                                          r"1,536 TiB for all 3 layer\(s\); max_len=1048576 sets the size"):
        cache.layer(0).append(wide, wide)
    assert cache.layer(0).keys is None and cache.length == 0  # nothing half-made is kept
    keys = np.ones((1, 2, 4), np.float32)  # the same cache still serves keys that fit
    assert cache.layer(0).append(keys, keys)[0].shape == (1, 2, 4)


# ---- generate: the model must be a Module -------------------------------------------------------------------
class Sizes:
    """The sizes of a causal language model, and a call, but nothing of a Module."""

    vocab_size, max_len, num_layers = 20, 8, 2

    def __call__(self, idx, **kwargs):
        return np.zeros((*np.shape(idx), 20), np.float32)


def test_a_model_that_is_no_module_is_named_not_an_attribute_error():
    """Before: AttributeError: 'Sizes' object has no attribute 'training', from inside generate."""
    with pytest.raises(TypeError, match=r"generate: model must be a tinytorch Module \(such as "
                                        r"tinytorch_core.nn.GPT\).* Sizes lacks a bool 'training', eval\(\), "
                                        r"train\(mode\)$"):
        generate(Sizes(), [1, 2], 2, use_cache=False)


def test_a_model_without_a_call_is_named_too():
    model = small_gpt()

    class Uncallable:
        vocab_size, max_len, num_layers, training = 20, 8, 2, False
        eval, train = model.eval, model.train

    with pytest.raises(TypeError, match=r"Uncallable lacks a call model\(ids\)$"):
        generate(Uncallable(), [1, 2], 2)


def test_a_module_still_generates_and_keeps_its_mode():
    model = small_gpt()
    model.train()
    assert generate(model, [1, 2], 3, temperature=0).shape == (5,)
    assert model.training
