"""Careless and hostile input to generation and the cache seam: a clear error or the right answer,
never a NumPy warning, a raw traceback or a token chosen from garbage."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_generation import KVCache, choose_next, generate, sample_tokens, softmax_rows, top_k_filter, top_p_filter

MODEL = tt.nn.GPT(9, 12, 8, 2, 2, 16, generator=0)
NAN, INF = np.nan, np.inf
BROKEN_ROWS = {
    "nan": [[0.0, NAN, 1.0]],
    "plus-inf": [[0.0, INF, 1.0]],
    "all-minus-inf": [[-INF, -INF, -INF]],
}


@pytest.mark.parametrize("row", BROKEN_ROWS.values(), ids=BROKEN_ROWS.keys())
@pytest.mark.parametrize("helper", [
    lambda rows: sample_tokens(rows, np.random.default_rng(0)),
    lambda rows: top_k_filter(rows, 1),
    lambda rows: top_p_filter(rows, 0.5),
    lambda rows: softmax_rows(rows),
    lambda rows: choose_next(rows, 0.0, None, None, None),  # greedy: argmax would pick a NaN
    lambda rows: choose_next(rows, 1.0, 2, 0.9, np.random.default_rng(0)),
], ids=["sample", "top_k", "top_p", "softmax", "greedy", "sampled"])
def test_logits_no_token_can_be_chosen_from_are_refused(helper, row):
    # before: NaN drew token 0 (or the NaN's id), +inf and all -inf warned and drew the last id
    with pytest.raises(ValueError, match=r"row 1 of the logits holds NaN or \+inf, or no finite value"):
        helper(np.array([[0.0, 1.0, 2.0]] + row))


def test_a_row_with_some_ruled_out_tokens_is_fine():
    rows = np.array([[-INF, 0.0, -INF], [1.0, -INF, 2.0]])
    assert top_k_filter(rows, 1)[0, 1] == 0.0
    assert sample_tokens(rows, np.random.default_rng(0))[0] == 1


@pytest.mark.parametrize("temperature", [5e-324, 1e-200, 1e-10])
def test_a_tiny_temperature_is_greedy_in_the_limit_without_overflow(temperature):
    logits = np.array([[1e300, -1e300, 0.0], [0.0, 2.0, 1.0]])  # before: "overflow encountered in divide"
    assert choose_next(logits, temperature, None, None, np.random.default_rng(0)).tolist() == [0, 1]
    prompt = np.array([1, 2, 3])
    assert np.array_equal(generate(MODEL, prompt, 4, temperature=temperature, seed=0),
                          generate(MODEL, prompt, 4, temperature=0))


def test_choose_next_checks_its_options_itself():
    rows = np.array([[0.0, 1.0, 5.0]])
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="choose_next: temperature must be a finite number >= 0"):
        choose_next(rows, -1.0, None, None, rng)  # before: silently inverted the distribution
    with pytest.raises(ValueError, match="choose_next: top_k must be a positive int"):
        choose_next(rows, 1.0, 0, None, rng)
    with pytest.raises(ValueError, match=r"choose_next: top_p must be a number in \(0, 1\]"):
        choose_next(rows, 1.0, None, 2.0, rng)
    with pytest.raises(ValueError, match=r"softmax_rows: logits must be a floating \(batch, vocab\) array"):
        softmax_rows(np.zeros((1, 3), np.int64))
    assert np.allclose(softmax_rows([[0.0, 0.0]]), 0.5)  # a list: before, AttributeError


def test_prompts_of_unequal_length_are_a_clear_error():
    with pytest.raises(ValueError, match="generate: prompt_ids must hold prompts of equal length"):
        generate(MODEL, [[1, 2, 3], [4, 5]], 2)


@pytest.mark.parametrize("flag", ["no", "False", None, 1, 0])
def test_use_cache_must_be_a_bool(flag):
    with pytest.raises(TypeError, match="generate: use_cache must be True or False"):
        generate(MODEL, [1, 2], 1, use_cache=flag)  # before: any truthy value meant True


def test_a_non_causal_model_refuses_a_cache_instead_of_changing_its_answers():
    model = tt.nn.GPT(9, 12, 8, 2, 2, 16, generator=0, causal=False)
    with pytest.raises(ValueError, match=r"generate: the model is not causal .* use_cache=False"):
        generate(model, [1, 2, 3], 2, temperature=0)
    assert generate(model, [1, 2, 3], 2, temperature=0, use_cache=False).shape == (5,)
    with tt.no_grad(), pytest.raises(ValueError, match="GPT: a key/value cache needs a causal model"):
        model(np.array([[1, 2]]), cache=KVCache.for_model(model))  # before: logits 0.05 off the uncached ones


class WideModel(tt.nn.GPT):
    """Returns one logit too many: an id sampled from it is not a token of the model."""

    def forward(self, idx, key_padding_mask=None, cache=None):
        logits = super().forward(idx, cache=cache)
        return tt.Tensor(np.concatenate([logits.data, np.full(logits.shape[:2] + (1,), 50.0, np.float32)], -1))


def test_logits_of_the_wrong_width_are_refused_not_sampled():
    model = WideModel(9, 12, 8, 2, 1, 16, generator=0)
    for use_cache in (True, False):
        with pytest.raises(ValueError, match=r"returned logits of shape \(1, 3, 10\) .* vocab_size=9"):
            generate(model, [1, 2, 3], 1, temperature=0, use_cache=use_cache)  # before: returned id 9


def test_reset_lets_the_cache_take_a_new_batch_size_or_dtype():
    cache = KVCache.for_model(MODEL)
    with tt.no_grad():
        MODEL(np.array([[1, 2]] * 2), cache=cache)
        cache.reset()  # before: the next batch of 3 was refused, its message saying to reset()
        assert MODEL(np.array([[1, 2]] * 3), cache=cache).shape == (3, 2, 9)
        with pytest.raises(ValueError, match="holds batch 3"):
            MODEL(np.array([[1]]), cache=cache)  # without reset, stored positions still guard the batch
        cache.reset()
        double = tt.nn.GPT(9, 12, 8, 2, 2, 16, generator=0).to(np.float64)
        assert double(np.array([[1]]), cache=cache).dtype == np.float64
    assert cache.layer(0).keys.shape == (1, 12, 8)


@pytest.mark.parametrize("cache", [True, {}, (), object(), KVCache], ids=["bool", "dict", "tuple", "object", "class"])
def test_something_that_is_no_cache_is_a_type_error(cache):
    with tt.no_grad(), pytest.raises(TypeError, match="GPT: cache must be a key/value cache"):
        MODEL(np.array([[1]]), cache=cache)  # before: AttributeError 'bool' object has no attribute 'length'
    with tt.no_grad(), pytest.raises(TypeError, match="MultiHeadAttention: cache must be a layer cache"):
        MODEL.blocks[0].attn(tt.Tensor(np.zeros((1, 1, 8), np.float32)), cache=cache)
    with pytest.raises(TypeError, match="KVCache.for_model: expected a model with num_layers and max_len"):
        KVCache.for_model(cache)


def test_a_cache_with_too_few_layers_fails_before_any_layer_stores_a_thing():
    cache = KVCache(1, 12)
    with tt.no_grad(), pytest.raises(IndexError, match=r"the cache holds 1 layer\(s\); KVCache.for_model"):
        MODEL(np.array([[1, 2]]), cache=cache)
    assert cache.length == 0 and cache.layer(0).keys is None
