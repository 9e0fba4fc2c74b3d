"""The ``tinytorch milestones`` command: listing, locked reporting, JSON shape, exit codes."""

from __future__ import annotations

import json

import pytest

from tinytorch_core import Milestone, MissingStageError, catalog
from tinytorch_core.cli import main
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_milestones.harness import Check
from tinytorch_milestones.runner import MilestoneOutcome, RunOptions, run_milestone

NAMES = ["perceptron", "xor", "mlp", "cnn", "transformer", "mlperf", "tinygpt"]


@pytest.fixture
def blocked_runtime():
    """A runtime in which the spatial and attention stages are installed but disabled."""
    runtime = Runtime(environ={"TINYTORCH_DISABLE_PLUGINS": "spatial,attention"})
    with use_runtime(runtime):
        yield runtime


def test_every_milestone_is_registered():
    runtime = Runtime()
    runtime.load()
    assert [m.name for m in sorted(runtime.milestones.values(), key=lambda m: m.order)] == NAMES
    years = {m.name: m.year for m in runtime.milestones.values()}
    assert years == {"perceptron": 1957, "xor": 1969, "mlp": 1986, "cnn": 1998, "transformer": 2017, "mlperf": 2018,
                     "tinygpt": 2020}
    requires = {m.name: m.requires for m in runtime.milestones.values()}
    assert requires["cnn"] == ("spatial",) and requires["transformer"] == ("attention",)
    assert requires["mlperf"] == ("spatial", "profiling", "compression", "generation")
    assert [m.name for m in runtime.milestones.values() if m.extended] == ["tinygpt"]


def test_list_reports_locked_milestones_with_install_commands(blocked_runtime, capsys):
    assert main(["milestones", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["cnn"]["status"] == "locked"
    assert rows["cnn"]["install"] == catalog.install_command("spatial")
    assert "disabled by TINYTORCH_DISABLE_PLUGINS" in rows["cnn"]["reason"]
    assert rows["transformer"]["status"] == "locked"
    assert rows["transformer"]["install"] == catalog.install_command("attention")
    nn_status, _ = blocked_runtime.stage_status("nn")
    expected = "unlocked" if nn_status == "loaded" else "locked"
    assert {rows[n]["status"] for n in ("perceptron", "xor", "mlp")} == {expected}


def test_verify_reports_locked_never_passed_and_exits_zero(blocked_runtime, tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["milestones", "verify", "cnn", "transformer", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "LOCKED CNN 1998" in text and catalog.install_command("spatial") in text
    payload = json.loads(out.read_text())
    assert payload["passed"] is True
    assert payload["counts"] == {"passed": 0, "failed": 0, "error": 0, "locked": 2}
    for entry in payload["milestones"]:
        assert entry["status"] == "locked"
        assert entry["parts"] == [] and entry["checks"] == []
    assert [e["install"] for e in payload["milestones"]] == [
        catalog.install_command("spatial"), catalog.install_command("attention")]


def test_with_only_core_and_nn_verify_runs_three_and_locks_two(tmp_path, capsys):
    """The issue's "only core and nn" environment: every other stage is left out by the allow list."""
    runtime = Runtime(environ={"TINYTORCH_LOAD_PLUGINS": "nn,milestones"})
    with use_runtime(runtime):
        if runtime.stage_status("nn")[0] != "loaded":
            pytest.skip("stage nn is not installed")
        out = tmp_path / "results.json"
        assert main(["milestones", "verify", "--all", "--quiet", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    statuses = {m["name"]: m["status"] for m in payload["milestones"]}
    assert statuses == {"perceptron": "passed", "xor": "passed", "mlp": "passed", "cnn": "locked",
                        "transformer": "locked", "mlperf": "locked", "tinygpt": "locked"}
    installs = {m["name"]: m["install"] for m in payload["milestones"] if m["status"] == "locked"}
    assert installs == {
        "cnn": catalog.install_command("spatial"), "transformer": catalog.install_command("attention"),
        "mlperf": "pip install . ./plugins/nn ./plugins/spatial ./plugins/embeddings ./plugins/attention "
                  "./plugins/profiling ./plugins/compression ./plugins/acceleration ./plugins/generation",
        "tinygpt": catalog.install_command("attention"),
    }
    assert payload["counts"] == {"passed": 3, "failed": 0, "error": 0, "locked": 4}
    assert "OK: 3 passed, 0 failed, 4 locked" in capsys.readouterr().out


def test_unknown_milestone_is_a_usage_error(blocked_runtime, capsys):
    assert main(["milestones", "verify", "lenet"]) == 2
    assert "unknown milestone(s) lenet" in capsys.readouterr().out


def test_json_shape_of_a_trained_milestone(tmp_path, capsys):
    runtime = Runtime()
    with use_runtime(runtime):
        if runtime.stage_status("nn")[0] != "loaded":
            pytest.skip("stage nn is not installed")
        out = tmp_path / "perceptron.json"
        assert main(["milestones", "verify", "perceptron", "--quiet", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert set(payload) == {"seed", "data", "total_time_s", "passed", "counts", "milestones"}
    assert payload["seed"] == 0 and payload["passed"] is True
    (entry,) = payload["milestones"]
    assert entry["name"] == "perceptron" and entry["status"] == "passed"
    (part,) = entry["parts"]
    assert set(part) >= {"label", "passed", "gradients", "updated", "loss", "metric", "bars", "checks", "curves"}
    grads = part["gradients"]
    assert grads["with_gradient"] == grads["total"] == grads["verified"] == 2
    assert grads["coordinates_checked"] >= 2
    assert part["updated"] == {"moved": 2, "total": 2, "not_moved": []}
    assert part["loss"]["drop"] >= 0.9 and part["metric"]["value"] == 1.0
    assert all(c["passed"] for c in part["checks"])
    assert len(part["curves"]["loss"]) == part["steps"]


def _milestone(run, requires=("nn",)):
    return Milestone(name="fake", year=2000, title="Fake", requires=requires, run=run)


def test_a_crashing_milestone_is_an_error_and_a_missing_symbol_is_locked():
    runtime = Runtime()
    runtime.load()
    options = RunOptions(runtime=runtime)
    if runtime.stage_status("nn")[0] != "loaded":
        pytest.skip("stage nn is not installed")

    def crash(options):
        raise ValueError("boom")

    result = run_milestone(_milestone(crash), options)
    assert result.status == "error" and result.failed and "ValueError: boom" in result.error

    def missing(options):
        raise MissingStageError.for_symbol("tinytorch_core.nn.Conv2d", "spatial")

    result = run_milestone(_milestone(missing), options)
    assert result.status == "locked" and not result.failed
    assert result.install == catalog.install_command("spatial")

    def no_parts(options):
        return MilestoneOutcome(parts=[], checks=[Check("x", True)])

    assert run_milestone(_milestone(no_parts), options).status == "failed"  # nothing trained: no pass
