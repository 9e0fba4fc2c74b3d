"""``by_module()``'s Total is forward *and* backward, as the README says, and ``benchmark``'s
warm-up is bounded like its timed runs."""

from __future__ import annotations

import time

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor


def profiled_training_step():
    """One forward and backward of an MLP and its loss, profiled."""
    model = tt.nn.Sequential(tt.nn.Linear(64, 64, generator=0), tt.nn.ReLU(), tt.nn.Linear(64, 10, generator=1))
    x = Tensor(np.random.default_rng(0).standard_normal((128, 64)).astype(np.float32))
    y = Tensor(np.zeros(128, np.int64))
    with tt.profiler.profile() as prof:
        tt.nn.CrossEntropyLoss()(model(x), y).backward()
    return prof.by_module()


# ---- by_module: Total includes backward ------------------------------------------------------------------
def test_a_modules_total_is_its_forward_calls_plus_its_backward():
    """Before: Total was the forward calls alone, so a leaf layer's Total was below its own
    forward plus its own backward (a ReLU's backward often exceeds its whole forward)."""
    modules = profiled_training_step()
    for row in modules.rows:
        assert row.total_ns == row.forward_total_ns + row.backward_total_ns
        assert row.total_ns >= row.forward_ns + row.backward_ns, row.path
        assert row.backward_total_ns >= row.backward_ns, row.path
    for leaf in ("0", "1", "2", "(CrossEntropyLoss)"):
        assert modules[leaf].backward_total_ns == modules[leaf].backward_ns > 0  # a leaf's ops are its own


def test_a_layers_backward_counts_towards_every_module_around_it():
    modules = profiled_training_step()
    children = sum(modules[path].backward_total_ns for path in ("0", "1", "2"))
    assert modules["(Sequential)"].backward_ns == 0  # no op of its own
    assert modules["(Sequential)"].backward_total_ns == children > 0


def test_the_table_names_its_columns_for_what_they_hold():
    table = str(profiled_training_step())
    assert "Total = Forward + Backward" in table
    for header in ("Total", "Forward", "Backward", "Own forward", "Own backward", "Own FLOPs"):
        assert header in table


# ---- benchmark: warmup is bounded --------------------------------------------------------------------------
@pytest.mark.parametrize("run", ["benchmark", "compare"])
def test_a_warmup_beyond_the_limit_is_refused_before_any_run(run):
    """Before: warmup=10**9 was accepted and ran a billion untimed calls."""
    calls = []
    functions = (lambda: calls.append(1),) * (1 if run == "benchmark" else 2)
    started = time.perf_counter()
    with pytest.raises(ValueError, match=rf"^{run}\(\): warmup must be at most 1,000,000, got 1,000,000,000$"):
        getattr(tt.profiler, run)(*functions, warmup=10**9, min_time=0)
    assert calls == [] and time.perf_counter() - started < 1.0


def test_a_warmup_at_the_limit_is_accepted():
    from tinytorch_profiling.benchmark import WARMUP_LIMIT, _check_plan

    _check_plan("benchmark", lambda: None, WARMUP_LIMIT, 0, 1, 1, 0)  # no error: the bound is inclusive
