"""The full verification of every milestone whose stages are installed: exactly what
``tinytorch milestones verify`` runs (same function, same default seed, same bars).

These are the heavy tests (about 15 s in all on 2 cores). A milestone whose stages are
missing is skipped here, and its locked reporting is tested in test_milestones_cli.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch_core.host.runtime import Runtime
from tinytorch_milestones.allocator import tune_malloc
from tinytorch_milestones.blas import blas_threads
from tinytorch_milestones.runner import DEFAULT_SEED, RunOptions, lock_state, run_milestone

NAMES = ["perceptron", "xor", "mlp", "cnn", "transformer"]


@pytest.fixture(scope="module")
def runtime():
    rt = Runtime()
    rt.load()
    return rt


@pytest.fixture(scope="module")
def shared():
    """What one milestone leaves for the next, as in one ``verify`` run (the MLP's accuracy for the CNN)."""
    return {}


@pytest.fixture(scope="module", autouse=True)
def set_up_as_the_cli_does():
    tune_malloc()  # speed only: the numbers depend on neither
    with blas_threads():
        yield


def verified(runtime, shared, name):
    milestone = runtime.milestones[name]
    reason, install = lock_state(milestone, runtime)
    if reason:
        pytest.skip(f"{name} is locked: {reason} (install: {install})")
    return run_milestone(milestone, RunOptions(seed=DEFAULT_SEED, runtime=runtime, shared=shared))


def assert_all_checks_pass(result):
    assert result.error == "", result.error
    failed = [f"[{label}] {c.name}: {c.detail}" for label, c in result.all_checks() if not c.passed]
    assert failed == []
    assert result.status == "passed"
    for part in result.parts:
        g = part.gradients
        assert g is not None and g.ok and g.with_gradient == g.total
        assert all(p.coordinates >= 1 for p in g.parameters)  # every parameter was finite-differenced
        assert part.moved == part.movable and part.movable >= 1


@pytest.mark.parametrize("name", NAMES)
def test_milestone_verifies(runtime, shared, name):
    result = verified(runtime, shared, name)
    assert_all_checks_pass(result)
    parts = {p.label: p for p in result.parts}
    if name == "perceptron":
        (part,) = result.parts
        assert part.metric == 1.0 and part.loss_drop >= 0.90
    elif name == "xor":
        single, mlp = result.parts
        assert single.metric <= 0.75 and single.loss_last >= 0.69  # shown to fail
        assert mlp.metric == 1.0 and mlp.loss_last < 0.05
    elif name == "mlp":
        assert parts["MLP"].metric >= 0.95
    elif name == "cnn":
        cnn = parts["CNN"]
        assert cnn.metric >= 0.97
        (beats,) = result.checks
        assert beats.passed and "CNN" in beats.detail
        mlp_accuracy = next(v for k, v in shared.items() if k[0] == "mlp accuracy")
        assert cnn.metric > mlp_accuracy
    elif name == "transformer":
        reversal, zen = result.parts
        assert reversal.metric >= 0.99
        assert zen.loss_last <= 0.5 * zen.loss_first
        # the key-projection biases are declared, checked to be zero, and never silently skipped
        declared = [p for p in reversal.gradients.parameters if p.declared_zero]
        assert declared and all(p.name.endswith("k_proj.bias") and p.coordinates >= 1 for p in declared)
        (sample,) = result.samples
        assert sample.startswith("Beautiful is") and len(sample) > len("Beautiful is") + 100


def test_the_default_seed_gives_the_same_numbers_every_run(runtime):
    for name in ("perceptron", "xor"):
        milestone = runtime.milestones[name]
        if lock_state(milestone, runtime)[0]:
            pytest.skip(f"{name} is locked")
        first = run_milestone(milestone, RunOptions(runtime=runtime)).to_dict()
        second = run_milestone(milestone, RunOptions(runtime=runtime)).to_dict()
        for a, b in zip(first["parts"], second["parts"]):
            assert a["loss"] == b["loss"] and a["metric"] == b["metric"]
            np.testing.assert_array_equal(a["curves"]["loss"], b["curves"]["loss"])
        other = run_milestone(milestone, RunOptions(seed=7, runtime=runtime)).to_dict()
        assert other["parts"][0]["loss"] != first["parts"][0]["loss"]  # the seed is really used
