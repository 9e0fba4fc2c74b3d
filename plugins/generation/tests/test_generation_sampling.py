"""The sampling helpers on hand-computed cases, and generate's decoding modes."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_generation import choose_next, generate, sample_tokens, top_k_filter, top_p_filter

NEG = -np.inf


def test_top_k_keeps_the_k_largest_of_each_row():
    logits = np.array([[1.0, 4.0, 2.0, 3.0], [0.0, -1.0, 5.0, 5.0]])
    assert np.array_equal(top_k_filter(logits, 2), [[NEG, 4.0, NEG, 3.0], [NEG, NEG, 5.0, 5.0]])
    assert np.array_equal(top_k_filter(logits, 1), [[NEG, 4.0, NEG, NEG], [NEG, NEG, 5.0, 5.0]])  # a tie stays
    assert np.array_equal(top_k_filter(logits, 9), logits)


def test_top_p_keeps_the_smallest_likely_set_reaching_p():
    probs = np.array([[0.2, 0.5, 0.3], [0.25, 0.25, 0.5]])
    logits = np.log(probs)
    kept = lambda p: np.isfinite(top_p_filter(logits, p))  # noqa: E731
    assert kept(0.6).tolist() == [[False, True, True], [True, False, True]]  # 0.5 + 0.3 / 0.5 + 0.25 (lower id)
    assert kept(0.5).tolist() == [[False, True, False], [False, False, True]]  # the top token already has 0.5
    assert kept(0.01).tolist() == [[False, True, False], [False, False, True]]  # the top token always stays
    assert kept(1.0).all()


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_top_p_of_one_keeps_every_token_in_low_precision(dtype):
    """The float16 or float32 cumulative sum reached 1 before the last tokens, which were dropped."""
    logits = np.array([[9.0, 0.0, 0.0, -3.0]], dtype)
    assert np.isfinite(top_p_filter(logits, 1.0)).all()
    assert np.isfinite(top_p_filter(logits, 0.999)).sum() == 1  # the top token holds 0.99975 of it


def test_sample_tokens_follows_the_probabilities_and_never_draws_a_filtered_token():
    probs = np.array([0.1, 0.0, 0.6, 0.3])
    with np.errstate(divide="ignore"):
        logits = np.tile(np.log(probs), (20000, 1))
    tokens = sample_tokens(logits, np.random.default_rng(0))
    frequencies = np.bincount(tokens, minlength=4) / len(tokens)
    assert frequencies[1] == 0
    assert np.allclose(frequencies, probs, atol=0.015)
    assert np.array_equal(tokens, sample_tokens(logits, np.random.default_rng(0)))  # seeded: reproducible


def test_greedy_takes_the_argmax_and_draws_nothing():
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    logits = np.array([[0.1, 2.0, 1.9], [3.0, 3.0, -1.0]], dtype=np.float32)
    assert choose_next(logits, 0.0, None, None, rng).tolist() == [1, 0]  # a tie: the lowest id
    assert rng.bit_generator.state == state


def test_a_low_temperature_sharpens_the_distribution():
    logits = np.tile([[0.0, 1.0, 0.5]], (4000, 1))
    hot = choose_next(logits, 5.0, None, None, np.random.default_rng(1))
    cold = choose_next(logits, 0.05, None, None, np.random.default_rng(1))
    assert (cold == 1).mean() > 0.99 > (hot == 1).mean()


def gpt(**options):
    return tt.nn.GPT(13, 32, 16, 2, 2, 32, generator=4, **options)


def test_greedy_generation_matches_the_attention_stage_reference():
    model = gpt()
    prompt = np.random.default_rng(0).integers(0, 13, (2, 5))
    expected = model.generate(prompt, 20, temperature=0)  # GPT.generate: no cache, the plain reference
    assert np.array_equal(generate(model, prompt, 20, temperature=0), expected)


def test_generate_is_seeded_and_returns_the_prompt_first():
    model = gpt(positional="sinusoidal")
    prompt = [3, 1, 4, 1, 5]
    first = generate(model, prompt, 12, seed=5)
    assert first.dtype == np.int64 and first.shape == (17,)
    assert first[:5].tolist() == prompt
    assert np.array_equal(first, generate(model, prompt, 12, seed=5))
    assert not np.array_equal(first, generate(model, prompt, 12, seed=6))
    assert np.array_equal(generate(model, prompt, 0), prompt)


def test_generate_runs_without_recording_and_restores_the_mode():
    model = gpt(dropout=0.5)
    model.train()
    out = generate(model, np.array([[1, 2]]), 5, temperature=0)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    assert np.array_equal(out, generate(model, np.array([[1, 2]]), 5, temperature=0))  # dropout was off
    assert not model.training


def test_generate_records_no_graph():
    model = gpt()
    seen = []
    forward = model.forward

    class Spy:  # a model-like wrapper: what generate sees while the GPT computes
        vocab_size, max_len, num_layers, training = model.vocab_size, model.max_len, model.num_layers, False

        def eval(self):
            return self

        def train(self, mode=True):
            return self

        def __call__(self, idx, **kwargs):
            seen.append(tt.is_grad_enabled())
            return forward(idx, **kwargs)

    generate(Spy(), [1, 2, 3], 4, use_cache=True, compiled=False)
    generate(Spy(), [1, 2, 3], 4, use_cache=False)
    assert seen == [False] * 8
    generate(Spy(), [1, 2, 3], 6, use_cache=True)  # compiled: the prompt and two recorded steps call it
    assert seen == [False] * 11


@pytest.mark.parametrize("k", [1, 3])
def test_top_k_one_is_greedy_and_filters_apply_in_generate(k):
    model = gpt()
    prompt = np.array([[2, 7, 1]])
    sampled = generate(model, prompt, 10, temperature=1.0, top_k=k, seed=0)
    if k == 1:
        assert np.array_equal(sampled, generate(model, prompt, 10, temperature=0))
    assert np.array_equal(sampled, generate(model, prompt, 10, temperature=1.0, top_k=k, seed=0, use_cache=False))


def test_filters_return_new_arrays_even_when_they_keep_everything():
    logits = np.array([[1.0, 2.0, 3.0]])
    for filtered in (top_p_filter(logits, 1.0), top_k_filter(logits, 5)):
        filtered[0, 0] = 99.0
        assert logits[0, 0] == 1.0
