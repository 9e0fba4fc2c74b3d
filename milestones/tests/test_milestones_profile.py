"""``tinytorch milestones profile NAME``: the table, time by module and a trace of a milestone's
training steps; clear refusals for unknown or locked milestones and a missing profiling stage."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from tinytorch_core.cli import main
from tinytorch_core.host import hookspecs
from tinytorch_core.host.runtime import Runtime, default_runtime, use_runtime

pytestmark = pytest.mark.skipif(default_runtime().stage_status("profiling")[0] != "loaded",
                                reason="needs the profiling stage")


def test_profile_prints_the_table_and_modules_and_writes_a_trace(tmp_path, capsys):
    trace = tmp_path / "xor.json"
    assert main(["milestones", "profile", "xor", "--steps", "2", "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "2 training step(s) of 2-layer MLP" in out
    assert "nn::linear" in out and "backward" in out and "optimizer.step" in out
    assert "Time by module" in out and "Tanh" in out
    events = json.loads(trace.read_text())["traceEvents"]
    linear_forwards = [e for e in events if e["name"] == "nn::linear" and e["cat"] == "forward"]
    assert len(linear_forwards) == 2 * 2  # two layers, two steps


def test_an_unknown_milestone_is_refused(capsys):
    assert main(["milestones", "profile", "nope"]) == 2
    assert "unknown milestone 'nope'" in capsys.readouterr().out


def test_without_the_profiling_stage_it_says_how_to_install_it(capsys):
    without = [ep for ep in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name != "profiling"]
    runtime = Runtime(without, environ={})
    with use_runtime(runtime):
        assert main(["milestones", "profile", "xor"]) == 1
    out = capsys.readouterr().out
    assert "profiling" in out and "pip install . ./plugins/nn ./plugins/profiling" in out


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps"),
    (["--rows", "0"], "--rows"),
    (["--sort", "speed"], "invalid choice"),
])
def test_bad_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["milestones", "profile", "xor", *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_a_trace_path_the_exporter_would_refuse_is_refused_before_the_run(capsys):
    """/dev/full passed the check up front (devices may take --json), and the profile ended in
    the exporter's traceback after the run."""
    import os

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with pytest.raises(SystemExit) as refused:
        main(["milestones", "profile", "xor", "--steps", "1", "--trace", "/dev/full"])
    assert refused.value.code == 2
    assert "--trace must name a file that can be written: /dev/full is not a regular file" in capsys.readouterr().err


def test_a_trace_in_a_folder_that_does_not_exist_yet_is_written_there_as_json_is(tmp_path, capsys):
    """The check up front allowed a new folder (as for --json), then the exporter failed after the run."""
    trace = tmp_path / "new" / "deeper" / "xor.json"
    assert main(["milestones", "profile", "xor", "--steps", "1", "--trace", str(trace)]) == 0
    assert json.loads(trace.read_text())["traceEvents"]
