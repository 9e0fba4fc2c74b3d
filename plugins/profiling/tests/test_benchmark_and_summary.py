"""benchmark, compare and summary: statistics that mean what they say, and a model described
exactly."""

from __future__ import annotations

import time

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor


def sleeper(seconds):
    def run():
        time.sleep(seconds)
    return run


def test_benchmark_warms_up_then_times_at_least_min_runs():
    calls = []
    result = tt.profiler.benchmark(lambda: calls.append(1), warmup=4, min_time=0, min_runs=25, label="append")
    assert len(calls) == 4 + 25 and result.runs == 25
    assert result.label == "append" and "append: median" in str(result)


def test_the_median_lies_in_its_interval_and_the_spread_brackets_it():
    result = tt.profiler.benchmark(sleeper(0.001), warmup=1, min_time=0, min_runs=30)
    low, high = result.ci95
    q1, q3 = result.spread
    assert low <= result.median <= high and q1 <= result.median <= q3
    assert result.median >= 0.001  # a sleep is never shorter than asked
    assert result.times.min() <= low and high <= result.times.max()


def test_the_bootstrap_is_seeded():
    times = np.random.default_rng(0).lognormal(size=50)
    from tinytorch_profiling.benchmark import _bootstrap, _interval

    first = _interval(_bootstrap(times, np.random.default_rng(3)))
    assert first == _interval(_bootstrap(times, np.random.default_rng(3)))


def test_compare_tells_a_clearly_slower_function_from_a_faster_one():
    slower = tt.profiler.compare(sleeper(0.0005), sleeper(0.004), warmup=1, min_time=0, min_runs=12,
                                 labels=("short", "long"))
    assert slower.ratio > 2 and slower.ci95[0] > 1 and slower.b_is_faster is False
    assert "long is slower" in str(slower)
    faster = tt.profiler.compare(sleeper(0.004), sleeper(0.0005), warmup=1, min_time=0, min_runs=12)
    assert faster.b_is_faster is True and faster.ci95[1] < 1


def test_compare_interleaves_the_two_sides():
    order = []
    tt.profiler.compare(lambda: order.append("a"), lambda: order.append("b"), warmup=0, min_time=0, min_runs=4)
    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]


@pytest.mark.parametrize("kwargs, message", [
    ({"warmup": -1}, "warmup must be a non-negative int"),
    ({"min_runs": 0}, "min_runs must be a positive int"),
    ({"min_runs": 5, "max_runs": 2}, "must be at least min_runs"),
    ({"max_runs": 10**9}, "max_runs must be at most"),
    ({"min_time": float("nan")}, "min_time must be a finite number"),
    ({"min_time": True}, "min_time must be a finite number"),
])
def test_bad_benchmark_plans_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tt.profiler.benchmark(lambda: None, **kwargs)
    with pytest.raises(TypeError, match="expected a function to time"):
        tt.profiler.benchmark(42)


def test_summary_of_a_known_model():
    model = tt.nn.Sequential(tt.nn.Linear(8, 4, generator=0), tt.nn.ReLU(), tt.nn.Linear(4, 3, generator=1))
    model.train()
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    info = tt.profiler.summary(model, x)
    assert [(r.path, r.type, r.output_shapes, r.parameters) for r in info.rows] == [
        ("(Sequential)", "Sequential", ((5, 3),), 0),
        ("0", "Linear", ((5, 4),), 8 * 4 + 4),
        ("1", "ReLU", ((5, 4),), 0),
        ("2", "Linear", ((5, 3),), 4 * 3 + 3),
    ]
    flops = {r.path: r.flops for r in info.rows}
    assert flops == {"(Sequential)": 340 + 20 + 135, "0": 2 * 5 * 4 * 8 + 20, "1": 20, "2": 2 * 5 * 3 * 4 + 15}
    assert (info.parameters, info.trainable_parameters, info.parameter_bytes) == (51, 51, 51 * 4)
    assert info.flops == 495 and info.activation_bytes == (20 + 20 + 15) * 4
    assert model.training  # the mode is restored
    text = str(info)
    assert "Linear" in text and "parameters: 51" in text


def test_summary_of_a_layer_whose_bias_was_set_to_none():
    """The name stays a parameter holding None (PyTorch's registry), which the count tripped over."""
    model = tt.nn.Sequential(tt.nn.Linear(8, 4, generator=0))
    model[0].bias = None
    info = tt.profiler.summary(model, np.zeros((2, 8), np.float32))
    assert [r.parameters for r in info.rows] == [0, 8 * 4] and info.parameters == 32


def test_summary_lists_each_call_of_a_layer_used_twice():
    """Only the first call had a row (its FLOPs covering both) and the activations missed the second."""
    shared = tt.nn.Linear(8, 8, generator=0)
    model = tt.nn.Sequential(shared, tt.nn.ReLU(), shared)
    info = tt.profiler.summary(model, np.zeros((3, 8), np.float32))
    assert [(r.path, r.parameters, r.flops) for r in info.rows] == [
        ("(Sequential)", 0, 2 * 408 + 24), ("0", 72, 408), ("1", 0, 24), ("0", 0, 408)]
    assert info.parameters == 72 and info.activation_bytes == 3 * 3 * 8 * 4


def test_summary_refuses_what_it_cannot_run():
    with pytest.raises(TypeError, match="expected a Module"):
        tt.profiler.summary(lambda x: x, np.ones(3))
    with pytest.raises(TypeError, match="give the input"):
        tt.profiler.summary(tt.nn.ReLU())


def test_bad_labels_and_flags_are_refused():
    with pytest.raises(TypeError, match="labels must be two strings"):
        tt.profiler.compare(lambda: None, lambda: None, min_time=0, min_runs=1, labels=("only one",))
    with pytest.raises(TypeError, match="label must be a str"):
        tt.profiler.benchmark(lambda: None, min_time=0, min_runs=1, label=3)
    with pytest.raises(TypeError, match="record_shapes must be True or False"):
        tt.profiler.profile(record_shapes="yes")
    with tt.profiler.profile() as prof:
        pass
    with pytest.raises(ValueError, match="row_limit must be a positive int"):
        prof.table(row_limit=0)
