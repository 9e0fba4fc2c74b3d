"""Bad input to generate: a clear error naming what was expected and what came, before any work."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_generation import generate, sample_tokens, top_k_filter, top_p_filter

MODEL = tt.nn.GPT(9, 12, 8, 2, 1, 16, generator=0)
PROMPT = np.array([[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("prompt, error, message", [
    (np.zeros(13, np.int64), ValueError, r"the prompt has 13 tokens, more than the model's context max_len=12"),
    (np.zeros(0, np.int64), ValueError, r"non-empty .* got shape \(0,\)"),
    (np.zeros((2, 0), np.int64), ValueError, r"got shape \(2, 0\)"),
    (np.zeros((0, 3), np.int64), ValueError, r"got shape \(0, 3\)"),
    (np.zeros((1, 2, 3), np.int64), ValueError, r"got shape \(1, 2, 3\)"),
    (np.array([[1, 9]]), IndexError, r"index 9 at position \(0, 1\) is out of range .* 0\.\.8"),
    (np.array([-1, 2]), IndexError, r"index -1 .* out of range"),
    (np.array([1.0, 2.0]), TypeError, r"must be integers, got a float64"),
])
def test_bad_prompts(prompt, error, message):
    with pytest.raises(error, match=message):
        generate(MODEL, prompt, 1)


def test_the_context_is_not_slid():
    assert generate(MODEL, PROMPT, 9, temperature=0).shape == (2, 12)  # exactly the context: fine
    with pytest.raises(ValueError, match=r"3 prompt tokens \+ max_new_tokens=10 exceed the model's context "
                                         r"max_len=12; .* at most 9 new tokens"):
        generate(MODEL, PROMPT, 10)


@pytest.mark.parametrize("options, message", [
    (dict(temperature=-0.5), r"temperature must be a finite number >= 0 \(0 = greedy\), got -0\.5"),
    (dict(temperature=float("nan")), "temperature must be a finite number"),
    (dict(temperature=True), "temperature must be a finite number"),
    (dict(top_p=0.0), r"top_p must be a number in \(0, 1\] .* got 0\.0"),
    (dict(top_p=1.5), r"top_p must be a number in \(0, 1\]"),
    (dict(top_k=0), "top_k must be a positive int, got 0"),
    (dict(top_k=-2), "top_k must be a positive int"),
    (dict(top_k=2.5), "top_k must be a positive int"),
    (dict(seed=-1), "seed must be None, an int >= 0 or a numpy Generator, got -1"),
    (dict(seed="abc"), "seed must be None"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        generate(MODEL, PROMPT, 2, **options)


def test_bad_max_new_tokens_and_model():
    with pytest.raises(ValueError, match="max_new_tokens must be a non-negative int, got -1"):
        generate(MODEL, PROMPT, -1)
    with pytest.raises(TypeError, match="causal language model .* Linear has no 'vocab_size'"):
        generate(tt.nn.Linear(3, 3), PROMPT, 1)


def test_bad_input_to_the_helpers():
    with pytest.raises(ValueError, match=r"top_k_filter: logits must be a floating \(batch, vocab\) array"):
        top_k_filter(np.zeros(4), 2)
    with pytest.raises(ValueError, match="top_p_filter: top_p must be a number in"):
        top_p_filter(np.zeros((1, 4)), 0)
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        sample_tokens(np.zeros((1, 4)), 0)
