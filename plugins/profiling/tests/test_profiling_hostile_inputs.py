"""Hostile paths, results read too early, odd arguments and comparisons of too few runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor


@pytest.fixture(scope="module")
def prof():
    model = tt.nn.Sequential(tt.nn.Linear(4, 3, generator=0), tt.nn.ReLU())
    with tt.profiler.profile() as profiler:
        model(Tensor(np.ones((2, 4), np.float32))).sum().backward()
    return profiler


def test_a_trace_is_written_to_a_regular_file_and_replaces_a_longer_one(prof, tmp_path):
    path = tmp_path / "trace.json"
    path.write_text("x" * 100_000)
    prof.export_chrome_trace(path)
    assert json.loads(path.read_text())["traceEvents"]


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "link-to-device"])
def test_a_trace_path_that_is_no_regular_file_is_refused_at_once(prof, tmp_path, kind):
    path = tmp_path / "target"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # before: open() waited forever for a reader
    elif kind == "device":
        path = "/dev/full"  # before: OSError "No space left on device" (as root: /dev/null swallowed it)
    else:
        path.symlink_to("/dev/null")
    with pytest.raises(ValueError, match="export_chrome_trace: .* is (a directory|a FIFO|a device)"):
        prof.export_chrome_trace(path)


@pytest.mark.parametrize("path, error, excerpt", [
    (None, TypeError, "expected a file path"), ("", TypeError, "expected a file path"),
    ("no/such/folder/t.json", FileNotFoundError, "export_chrome_trace: cannot write the trace to"),
], ids=["none", "empty", "missing-folder"])
def test_bad_trace_paths_name_the_function(prof, path, error, excerpt):
    with pytest.raises(error, match=excerpt):
        prof.export_chrome_trace(path)


@pytest.mark.parametrize("read", ["table", "key_averages", "by_module", "export_chrome_trace"])
def test_results_of_a_profile_that_never_ran_are_refused(read, tmp_path):
    unused = tt.profiler.profile()
    args = (tmp_path / "t.json",) if read == "export_chrome_trace" else ()
    with pytest.raises(RuntimeError, match="has no results yet"):  # before: a wall time of hours
        getattr(unused, read)(*args)


def test_sort_by_of_the_wrong_type_is_a_clear_error(prof):
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.table(sort_by=["self_time"])


@pytest.mark.parametrize("seed", [-1, "a", 1.5])
def test_a_bad_seed_is_refused_before_anything_runs(seed):
    with pytest.raises(ValueError, match=r"benchmark\(\): seed must be a non-negative int"):
        tt.profiler.benchmark(lambda: None, min_time=0, seed=seed)


def test_plan_errors_name_the_function_once():
    with pytest.raises(ValueError, match=r"^benchmark\(\): min_time"):
        tt.profiler.benchmark(lambda: None, min_time=float("nan"))


def test_a_comparison_of_too_few_rounds_calls_no_side_faster():
    comparison = tt.profiler.compare(lambda: None, lambda: sum(range(2000)), min_time=0, min_runs=1, max_runs=1)
    assert comparison.b_is_faster is None  # before: "a is faster" from one round
    assert "too few rounds (1)" in str(comparison)


def test_profiles_do_not_nest():
    """An inner profile() took every op away from the outer one, which said nothing."""
    with tt.profiler.profile() as outer:
        with pytest.raises(RuntimeError, match="profiles do not nest"):
            with tt.profiler.profile():
                pass
        Tensor(np.ones(2, np.float32)) * 2
    assert any(event.name == "core::mul" for event in outer.events)


def test_by_module_iterates_its_rows(prof):
    """Iterating raised KeyError: no module path 0 (Python fell back to indexing by number)."""
    rows = list(prof.by_module())
    assert rows == prof.by_module().rows and len(prof.by_module()) == len(rows) > 0
