"""The cache's op and the compiled decoding step: ``kv_cache_write`` writes and reads by position,
``seek`` hands the layers the very positions array a compiled step binds, and
``generate`` replays the one-token step with the same tokens as eager steps, falling back to
eager steps for a model whose step a replay cannot follow."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_generation import KVCache, generate, kv_cache_write

VOCAB = 23


def gpt(positional="learned", dtype=np.float32, max_len=48):
    model = tt.nn.GPT(VOCAB, max_len, 16, 2, 2, 32, generator=4, positional=positional).to(dtype)
    with tt.no_grad():  # tokens, not positions, drive the untrained model's choices
        model.tok_emb.weight.mul_(20.0)
    return model


class CountingModel:
    """The model as generate sees it, counting the calls that reach its Python code."""

    def __init__(self, model):
        self.model, self.calls = model, 0
        self.vocab_size, self.max_len, self.num_layers = model.vocab_size, model.max_len, model.num_layers
        self.training = False

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, idx, **kwargs):
        self.calls += 1
        return self.model(idx, **kwargs)


# ---- kv_cache_write -------------------------------------------------------------------------------
def test_kv_cache_write_stores_in_place_at_the_positions_and_returns_every_position_up_to_them():
    key_buffer, value_buffer = np.zeros((2, 6, 3)), np.zeros((2, 6, 3))
    keys = np.random.default_rng(0).standard_normal((2, 2, 3))
    stored_keys, stored_values = tt.ops.kv_cache_write(key_buffer, value_buffer, keys, 2 * keys, np.array([3, 4]))
    assert np.array_equal(key_buffer[:, 3:5], keys) and np.array_equal(value_buffer[:, 3:5], 2 * keys)
    assert not key_buffer[:, :3].any() and not key_buffer[:, 5:].any()
    assert stored_keys.shape == stored_values.shape == (2, 5, 3)  # positions 0..4: the new ones last
    assert np.shares_memory(stored_keys.data, key_buffer) and not stored_keys.data.flags.writeable
    assert np.array_equal(stored_values.data[:, 3:], 2 * keys) and not stored_keys.requires_grad


@pytest.mark.parametrize("positions, error, message", [
    (np.array([6]), IndexError, r"positions must lie in 0\.\.5"),
    (np.array([-1]), IndexError, r"positions must lie in 0\.\.5"),  # would silently wrap to the last slot
    (np.array([1.0]), TypeError, "int array"),
    (np.array([[1]]), TypeError, r"\(T,\) int array"),
    (np.array([2, 2]), ValueError, "must be consecutive"),
    (np.array([3, 2]), ValueError, "must be consecutive"),
    (np.array([], np.int64), TypeError, "non-empty"),
])
def test_kv_cache_write_refuses_bad_positions(positions, error, message):
    key_buffer = np.zeros((1, 6, 3))
    keys = np.ones((1, max(positions.size, 1) if positions.ndim == 1 else 1, 3))
    with pytest.raises(error, match=message):
        kv_cache_write(key_buffer, key_buffer.copy(), keys, keys, positions)
    assert not key_buffer.any()


def test_kv_cache_write_refuses_mismatched_arrays():
    key_buffer, keys = np.zeros((1, 6, 3)), np.ones((1, 1, 3))
    with pytest.raises(ValueError, match="one shape"):
        kv_cache_write(key_buffer, np.zeros((1, 5, 3)), keys, keys, np.array([0]))
    with pytest.raises(ValueError, match=r"\(batch, T, width\) = \(1, 1, 3\)"):
        kv_cache_write(key_buffer, key_buffer.copy(), np.ones((1, 1, 4)), np.ones((1, 1, 4)), np.array([0]))
    with pytest.raises(ValueError, match="float64"):
        kv_cache_write(key_buffer, key_buffer.copy(), keys.astype(np.float32), keys, np.array([0]))
    frozen = np.zeros((1, 6, 3))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        kv_cache_write(frozen, frozen.copy(), keys, keys, np.array([0]))


def test_kv_cache_write_refuses_keys_that_record_a_gradient():
    key_buffer, keys = np.zeros((1, 4, 2), np.float32), tt.Tensor(np.ones((1, 1, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable.*no_grad"):
        kv_cache_write(key_buffer, key_buffer.copy(), keys, keys, np.array([0]))
    with tt.no_grad():
        stored_keys, _ = kv_cache_write(key_buffer, key_buffer.copy(), keys, keys, np.array([0]))
    assert not stored_keys.requires_grad and key_buffer[0, 0].tolist() == [1.0, 1.0]


# ---- seek -----------------------------------------------------------------------------------------
def test_seek_hands_the_layers_that_very_array_until_advance():
    cache = KVCache(2, 8)
    positions = np.array([3])
    cache.seek(positions)
    assert cache.length == 3 and cache.positions(1) is positions
    cache.advance(1)
    assert cache.length == 4 and cache.positions(2).tolist() == [4, 5]


@pytest.mark.parametrize("positions", [np.array([8]), np.array([-1]), np.array([2, 4]), np.array([]),
                                       np.array([1.0]), np.array([[1]])])
def test_seek_refuses_positions_outside_the_context_or_not_consecutive(positions):
    with pytest.raises(ValueError, match="KVCache.seek"):
        KVCache(2, 8).seek(positions)


# ---- the compiled decoding step -------------------------------------------------------------------
@pytest.mark.parametrize("positional, dtype", [("learned", np.float32), ("sinusoidal", np.float64)])
def test_compiled_decoding_gives_the_tokens_of_eager_decoding_and_of_no_cache(positional, dtype):
    model = gpt(positional, dtype)
    prompts = np.random.default_rng(5).integers(0, VOCAB, (3, 8))
    compiled = generate(model, prompts, 40, temperature=0)
    assert np.array_equal(compiled, generate(model, prompts, 40, temperature=0, compiled=False))
    assert np.array_equal(compiled, generate(model, prompts, 40, temperature=0, use_cache=False))
    assert len(np.unique(compiled[:, 8:])) >= 4  # not one token repeated: the comparison has teeth
    sampled = generate(model, prompts, 40, temperature=0.9, top_k=10, top_p=0.95, seed=3)
    assert np.array_equal(sampled, generate(model, prompts, 40, temperature=0.9, top_k=10, top_p=0.95, seed=3,
                                            compiled=False))


def test_the_step_is_recorded_twice_then_replayed():
    counting = CountingModel(gpt())
    ids = generate(counting, np.array([[1, 2, 3]]), 30, temperature=0)
    assert counting.calls == 3  # the prompt, then two recordings of the one-token step; 27 replays
    assert np.array_equal(ids, generate(gpt(), np.array([[1, 2, 3]]), 30, temperature=0, compiled=False))
    counting.calls = 0
    generate(counting, np.array([[1, 2, 3]]), 30, temperature=0, compiled=False)
    assert counting.calls == 30


class DriftingModel(CountingModel):
    """A step a replay cannot follow: it adds to the logits an array computed outside ops from
    Python state (the cache's length), which a recording would freeze as a constant."""

    def __call__(self, idx, cache=None):
        self.calls += 1
        logits = self.model(idx, cache=cache)
        drift = np.zeros(self.vocab_size, np.float32)
        drift[(cache.length * 7) % self.vocab_size] = 1e4  # forces that token
        return logits + drift


def test_a_step_a_replay_cannot_follow_falls_back_to_eager_decoding():
    drifting = DriftingModel(gpt())
    ids = generate(drifting, np.array([[1, 2, 3]]), 20, temperature=0)
    expected = generate(DriftingModel(gpt()), np.array([[1, 2, 3]]), 20, temperature=0, compiled=False)
    assert np.array_equal(ids, expected)
    assert ids[0, 3:].tolist() == [(position * 7) % VOCAB for position in range(3, 23)]
    assert drifting.calls == 1 + 2 + 1 + 17  # prompt, two recordings, the refused step again, then eager


def test_compiled_must_be_a_bool():
    with pytest.raises(TypeError, match="compiled must be True or False"):
        generate(gpt(), np.array([[1, 2]]), 2, compiled="yes")
