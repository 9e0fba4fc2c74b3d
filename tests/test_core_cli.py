"""The tinytorch command: stages, plugins, check, and resilience to broken plugins."""

import json
import subprocess
import sys

import numpy as np

from tinytorch_core import Function, Sample, catalog
from tinytorch_core.cli import main
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint, plugin_module


def explode():
    raise RuntimeError("plugin import exploded")


def test_stages_lists_the_curriculum_with_install_commands(capsys):
    with use_runtime(Runtime([])):
        assert main(["stages"]) == 0
    out = capsys.readouterr().out
    for name in ("core", "nn", "spatial", "embeddings", "attention"):
        assert name in out
    assert "pip install . ./plugins/nn ./plugins/spatial" in out
    assert "not installed" in out


def test_stages_survives_a_plugin_that_raises_on_import_and_names_it(capsys):
    broken = FakeEntryPoint("spatial", explode, call=True, distribution="tinytorch-spatial", version="0.1.0")
    with use_runtime(Runtime([broken], environ={})):
        assert main(["stages"]) == 0
    captured = capsys.readouterr()
    assert "tinytorch-spatial 0.1.0" in captured.err and "plugin import exploded" in captured.err
    assert "failed" in captured.out and "spatial" in captured.out


def test_plugins_json_lists_core_ops(capsys):
    with use_runtime(Runtime([])):
        assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    core = next(p for p in data if p["name"] == "core")
    assert core["status"] == "loaded" and "core::matmul" in core["ops"]


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x * x  # wrong: should be 3 x^2


def test_check_fails_with_non_zero_exit_on_a_wrong_backward(capsys):
    plugin = plugin_module(
        "cube",
        tinytorch_declare_stage=lambda declare: declare("cube", requires=("core",)),
        tinytorch_register_ops=lambda registry: registry.op(
            "cube::cube", Cube, samples=lambda rng: [Sample(rng.standard_normal(3))]
        ),
    )
    with use_runtime(Runtime([FakeEntryPoint("cube", plugin)], environ={})):
        assert main(["check", "cube"]) == 1
        out = capsys.readouterr().out
        assert "FAIL  cube::cube" in out and "input 0" in out
        assert main(["check", "core"]) == 0
        assert main(["check", "nope"]) == 1


def test_console_entry_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "tinytorch_core", "stages", "--json"], capture_output=True, text=True, check=True
    )
    rows = json.loads(result.stdout)

    stages = [s.name for s in catalog.STAGES]  # core, nn, spatial, ...: the curriculum comes first
    assert [r["stage"] for r in rows][: len(stages)] == stages
    curriculum, third_party = rows[: len(stages)], rows[len(stages) :]  # a third-party stage has no place in the curriculum
    assert np.all([isinstance(r["order"], int) for r in curriculum])
    assert all(r["order"] is None for r in third_party)


def test_check_of_an_empty_stage_name_is_refused_not_read_as_every_stage(capsys):
    assert main(["check", ""]) == 1
    assert "stage '' is not installed" in capsys.readouterr().out
