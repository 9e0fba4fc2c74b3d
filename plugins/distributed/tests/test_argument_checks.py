"""Arguments the stage's helpers used to read loosely: the sampler's flags and ``progress``'s
iterable. Each is refused when the call is made, with what was expected and what came."""

from __future__ import annotations

import io

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_distributed import DistributedSampler


# ---- DistributedSampler's flags ---------------------------------------------------------------------------
@pytest.mark.parametrize("flag, value", [
    ("drop_last", "False"),  # bool("False") is True: a sample of 10 over 3 ranks was dropped
    ("drop_last", 1),
    ("shuffle", "no"),  # bool("no") is True: the epoch was shuffled
    ("shuffle", None),
])
def test_the_samplers_flags_must_be_true_or_false(flag, value):
    with pytest.raises(TypeError, match=f"DistributedSampler: {flag} must be True or False, got {value!r}"):
        DistributedSampler(10, num_replicas=3, rank=0, **{flag: value})


def test_numpy_bools_are_flags_too_and_keep_their_meaning():
    shards = [DistributedSampler(10, num_replicas=3, rank=r, drop_last=np.False_).indices() for r in range(3)]
    assert sum(len(s) for s in shards) == 12  # padded, nothing dropped
    ordered = DistributedSampler(10, num_replicas=1, rank=0, shuffle=np.False_)
    assert list(ordered) == list(range(10))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(seed=-1), ValueError, "seed must be a non-negative int, got -1"),
    (dict(seed=1.5), ValueError, "seed must be a non-negative int, got 1.5"),
    (dict(rank=-1), ValueError, "rank must be a non-negative int, got -1"),
    (dict(num_replicas=2.0), ValueError, "num_replicas must be a positive int, got 2.0"),
    (dict(dataset=None), TypeError, "expected a dataset .* got NoneType"),
], ids=["negative-seed", "float-seed", "negative-rank", "float-replicas", "no-dataset"])
def test_the_samplers_other_arguments_are_checked(kwargs, error, message):
    arguments = dict(dataset=10, num_replicas=2, rank=0) | kwargs
    with pytest.raises(error, match=message):
        DistributedSampler(**arguments)


# ---- progress --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("iterable, name", [(5, "int"), (None, "NoneType"), (2.5, "float")])
def test_progress_of_something_that_is_not_iterable_says_what_it_expects(iterable, name):
    """Before: Python's bare "'int' object is not iterable", and only at the loop's first step."""
    with pytest.raises(TypeError, match=f"progress: expected an iterable to go through .* got {name}"):
        tt.distributed.progress(iterable)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(description=3), TypeError, "progress: description must be a str, got int"),
    (dict(total=-1), ValueError, "progress: total must be a non-negative int, got -1"),
    (dict(total="3"), ValueError, "progress: total must be a non-negative int, got '3'"),
    (dict(file="log.txt"), TypeError, "progress: file must be None .* a text stream with write"),
], ids=["description", "negative-total", "str-total", "file"])
def test_progress_checks_its_other_arguments_when_called(kwargs, error, message):
    with pytest.raises(error, match=message):
        tt.distributed.progress(range(3), **kwargs)


def test_progress_of_a_generator_draws_a_bar_without_a_total_or_with_the_one_given():
    out = io.StringIO()
    assert list(tt.distributed.progress((i * i for i in range(3)), "squares", file=out)) == [0, 1, 4]
    assert out.getvalue().endswith("squares 3\n")
    out = io.StringIO()
    assert list(tt.distributed.progress(iter(range(4)), "four", total=4, file=out)) == [0, 1, 2, 3]
    assert out.getvalue().endswith("four [" + "#" * 30 + "] 4/4\n")
