"""``GPT.generate``, the plain reference, given careless options: a clear error or the right
answer, never a NumPy overflow warning or a raw comparison error."""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch_attention import GPT

MODEL = GPT(10, 8, 8, 2, 1, 16, generator=0)


@pytest.mark.parametrize("options, message", [
    (dict(temperature="1"), "temperature must be a finite number >= 0, got '1'"),  # before: '>=' not supported
    (dict(temperature=None), "temperature must be a finite number >= 0, got None"),
    (dict(temperature=float("inf")), "temperature must be a finite number >= 0, got inf"),
    (dict(top_k=True), "top_k must be a positive int, got True"),  # before: True silently meant top_k=1
])
def test_bad_options_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=f"GPT.generate: {message}"):
        MODEL.generate([1, 2], 2, **options)


def test_prompts_of_unequal_length_are_a_clear_error():
    with pytest.raises(ValueError, match="GPT.generate: prompt_ids must hold prompts of equal length"):
        MODEL.generate([[1, 2], [3]], 2)


@pytest.mark.parametrize("temperature", [5e-324, 1e-310])
def test_a_tiny_temperature_is_greedy_without_overflow(temperature):
    # before: RuntimeWarning "overflow encountered in divide", then NaN probabilities
    sampled = MODEL.generate([1, 2, 3], 4, temperature=temperature, generator=0)
    np.testing.assert_array_equal(sampled, MODEL.generate([1, 2, 3], 4, temperature=0))
