"""The cache changes the speed, never the tokens: 200 generated tokens, batch 3, with and without
the cache, greedy and sampled, in float32 and float64, with learned and sinusoidal positions.

Why equality can be asserted at all: the cached and uncached paths do the same operations on the
same numbers, except that matrix products and sums run over different lengths (one new row
against stored keys, or every row at once), so BLAS may round differently: the logits agree to
~1e-7 relative in float32 and ~1e-16 in float64, not bit for bit. A token can therefore only
differ where the reference decision is a near-tie at that scale. Each test also measures both
sides of that argument (the rounding gap between the two paths' logits, and how far every
decision is from a tie) and asserts the decisions are clear by a factor of 20, so a pass is
explained, not lucky, and a failure would say which premise broke.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_generation import KVCache, generate
from tinytorch_generation.sampling import softmax_rows

VOCAB, PROMPT, NEW = 40, 16, 200
CASES = [(np.float32, "learned"), (np.float64, "sinusoidal")]


def tiny_gpt(dtype, positional, context=PROMPT + NEW):
    model = tt.nn.GPT(VOCAB, context, 16, 2, 2, 32, generator=0, positional=positional).to(dtype)
    with tt.no_grad():  # token vectors of N(0, 0.4**2), not GPT-2's 0.02: the tokens, not the
        model.tok_emb.weight.mul_(20.0)  # positions, drive the untrained model's choices
    return model


def prompts(batch=3, seed=1):
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, PROMPT))


def reference_logits(model, ids):
    """The logits that chose ``ids[:, PROMPT:]``, from one uncached forward over the whole sequence."""
    with tt.no_grad():
        return model(ids[:, :-1]).data[:, PROMPT - 1 :].astype(np.float64)


def cached_logits(model, ids):
    """The same logits as the cached path computes them: the prompt once, then one token a step."""
    cache = KVCache.for_model(model)
    with tt.no_grad():
        steps = [model(ids[:, :PROMPT], cache=cache).data[:, -1:]]
        steps += [model(ids[:, p : p + 1], cache=cache).data for p in range(PROMPT, ids.shape[1] - 1)]
    return np.concatenate(steps, axis=1).astype(np.float64)


def cumulative_probabilities(logits, temperature):
    return np.cumsum(softmax_rows(logits.reshape(-1, logits.shape[-1]) / temperature), axis=-1)


def rounding_gaps(model, ids, temperature=1.0) -> tuple[float, float]:
    """How far the two paths' logits, and their cumulative probabilities, are apart."""
    reference, cached = reference_logits(model, ids), cached_logits(model, ids)
    logit_gap = np.abs(reference - cached).max()
    assert 0 <= logit_gap < 1e-4  # the same numbers up to rounding: a wrong cache is off by ~0.1
    probability_gap = np.abs(cumulative_probabilities(reference, temperature)
                             - cumulative_probabilities(cached, temperature)).max()
    return float(logit_gap), float(probability_gap)


def greedy_margin(logits) -> float:
    """How far the closest greedy decision is from a tie: the smallest top-1 minus top-2 gap."""
    top_two = np.sort(logits, axis=-1)[..., -2:]
    return float((top_two[..., 1] - top_two[..., 0]).min())


def sampling_margin(logits, temperature, seed) -> float:
    """How far the closest sampled decision is from flipping: the smallest distance between a
    uniform draw (replayed from the seed: one per row per step) and a cumulative-probability
    boundary."""
    batch, steps, _ = logits.shape
    draws = np.random.default_rng(seed).random((steps, batch)).T  # generate draws (B, 1) per step
    cumulative = cumulative_probabilities(logits, temperature)
    scaled = draws.reshape(-1, 1) * cumulative[:, -1:]
    return float(np.abs(cumulative - scaled).min())


@pytest.mark.parametrize("dtype, positional", CASES)
def test_greedy_200_tokens_are_identical_with_and_without_the_cache(dtype, positional):
    model = tiny_gpt(dtype, positional)
    batch = prompts()
    cached = generate(model, batch, NEW, temperature=0, use_cache=True)
    uncached = generate(model, batch, NEW, temperature=0, use_cache=False)
    assert cached.shape == (3, PROMPT + NEW)
    assert np.array_equal(cached[:, :PROMPT], batch)
    gap, _ = rounding_gaps(model, uncached)
    margin = greedy_margin(reference_logits(model, uncached))
    assert margin > 20 * gap, f"a near-tie: margin {margin:.3g} vs rounding gap {gap:.3g}"
    assert np.array_equal(cached, uncached)
    assert len(np.unique(cached[:, PROMPT:])) >= 4  # not one token repeated: the comparison has teeth


@pytest.mark.parametrize("dtype, positional", CASES)
def test_sampled_200_tokens_are_identical_with_and_without_the_cache(dtype, positional):
    model = tiny_gpt(dtype, positional)
    batch = prompts(seed=2)
    cached = generate(model, batch, NEW, temperature=0.9, seed=7, use_cache=True)
    uncached = generate(model, batch, NEW, temperature=0.9, seed=7, use_cache=False)
    _, gap = rounding_gaps(model, uncached, temperature=0.9)
    margin = sampling_margin(reference_logits(model, uncached), 0.9, seed=7)
    assert margin > 20 * gap, f"a draw on a boundary: margin {margin:.3g} vs rounding gap {gap:.3g}"
    assert np.array_equal(cached, uncached)
    assert len(np.unique(cached[:, PROMPT:])) > 20  # sampled, not stuck on a few tokens


def test_top_k_and_top_p_sampling_agree_with_and_without_the_cache():
    model = tiny_gpt(np.float64, "learned", context=PROMPT + 60)
    batch = prompts(batch=2, seed=3)
    options = dict(temperature=1.3, top_k=12, top_p=0.8, seed=11)
    cached = generate(model, batch, 60, use_cache=True, **options)
    assert np.array_equal(cached, generate(model, batch, 60, use_cache=False, **options))


def test_a_single_prompt_agrees_with_the_batch_it_belongs_to():
    model = tiny_gpt(np.float32, "sinusoidal", context=PROMPT + 40)
    batch = prompts()
    together = generate(model, batch, 40, temperature=0)
    alone = generate(model, batch[1], 40, temperature=0)
    assert alone.shape == (PROMPT + 40,)
    assert np.array_equal(alone, together[1])
