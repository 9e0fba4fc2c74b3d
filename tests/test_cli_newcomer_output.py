"""What a newcomer reads: a disabled stage says how to enable it (never "install it"), the
milestones command says how to install the suite, third-party stages have no curriculum order,
and counts agree with their nouns.

Every test builds its own Runtime from in-memory entry points, so nothing leaks between tests.
"""

import json

import pytest

import tinytorch_core as tt
from tinytorch_core import Function, Sample, catalog
from tinytorch_core.cli import main
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint, plugin_module


def fake_spatial():
    """Stage 'spatial' as its reference distribution would declare it (registers nothing)."""
    return FakeEntryPoint("spatial", plugin_module("fake_spatial", tinytorch_declare_stage=lambda declare: declare("spatial")),
                          distribution="tinytorch-spatial", version="0.1.0")


def fake_nn():
    return FakeEntryPoint("nn", plugin_module("fake_nn", tinytorch_declare_stage=lambda declare: declare("nn")),
                          distribution="tinytorch-nn", version="0.1.0")


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


def cube_plugin(requires=("core",), samples=1):
    return FakeEntryPoint("cube", plugin_module(
        "cube",
        tinytorch_declare_stage=lambda declare: declare("cube", requires=requires, title="Cubes"),
        tinytorch_register_ops=lambda registry: registry.op(
            "cube::cube", Cube, samples=lambda rng: [Sample(rng.standard_normal(3)) for _ in range(samples)]
        ),
    ), distribution="tinytorch-cube", version="0.2.0")


# ---- a disabled stage is told how to enable it ----------------------------------------------------
@pytest.mark.parametrize("listed", ["spatial", "tinytorch-spatial"])
def test_a_stage_disabled_by_the_variable_says_how_to_enable_it(listed):
    runtime = Runtime([fake_nn(), fake_spatial()], environ={"TINYTORCH_DISABLE_PLUGINS": f"attention,{listed}"})
    with use_runtime(runtime), pytest.raises(tt.BlockedStageError) as info:
        tt.nn.Conv2d
    message = str(info.value)
    assert "disabled by TINYTORCH_DISABLE_PLUGINS" in message
    assert f"remove '{listed}' from TINYTORCH_DISABLE_PLUGINS or unset that variable" in message
    assert "pip install" not in message


def test_a_stage_left_out_of_the_allow_list_says_how_to_enable_it():
    runtime = Runtime([fake_nn(), fake_spatial()], environ={"TINYTORCH_LOAD_PLUGINS": "nn"})
    with use_runtime(runtime), pytest.raises(tt.BlockedStageError) as info:
        tt.nn.Conv2d
    message = str(info.value)
    assert "not listed in TINYTORCH_LOAD_PLUGINS" in message
    assert "add 'spatial' to TINYTORCH_LOAD_PLUGINS or unset that variable" in message
    assert "pip install" not in message


def test_stages_does_not_tell_an_installed_stage_to_install_itself(capsys):
    runtime = Runtime([fake_nn(), fake_spatial()], environ={"TINYTORCH_DISABLE_PLUGINS": "spatial"})
    with use_runtime(runtime):
        assert main(["stages"]) == 0
    out = capsys.readouterr().out
    spatial_row = next(line for line in out.splitlines() if line.split()[1:2] == ["spatial"])
    assert "pip install" not in spatial_row and "installed but blocked" in spatial_row
    assert "spatial: blocked: disabled by TINYTORCH_DISABLE_PLUGINS; to enable it, remove 'spatial'" in out
    embeddings_row = next(line for line in out.splitlines() if line.split()[1:2] == ["embeddings"])
    assert catalog.install_command("embeddings") in embeddings_row  # not installed: the command stays


def test_check_of_a_disabled_stage_says_how_to_enable_it(capsys):
    runtime = Runtime([cube_plugin()], environ={"TINYTORCH_DISABLE_PLUGINS": "cube"})
    with use_runtime(runtime):
        assert main(["check", "cube"]) == 1
    assert "remove 'cube' from TINYTORCH_DISABLE_PLUGINS" in capsys.readouterr().out


# ---- the milestones command before the suite is installed -------------------------------------------
@pytest.mark.parametrize("argv", [["milestones", "verify"], ["milestones"], ["milestones", "verify", "--seed", "3"]])
def test_milestones_without_the_suite_says_how_to_install_it(argv, capsys):
    with use_runtime(Runtime([])):
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "invalid choice" not in err
    assert "not installed" in err and catalog.install_command("milestones") in err


def test_milestones_help_without_the_suite_says_how_to_install_it(capsys):
    with use_runtime(Runtime([])), pytest.raises(SystemExit) as info:
        main(["milestones", "--help"])
    assert info.value.code == 0
    assert catalog.install_command("milestones") in capsys.readouterr().out


def test_milestones_when_the_suite_is_disabled_says_how_to_enable_it(capsys):
    suite = FakeEntryPoint("milestones", plugin_module("fake_suite"), distribution="tinytorch-milestones")
    with use_runtime(Runtime([suite], environ={"TINYTORCH_DISABLE_PLUGINS": "milestones"})):
        assert main(["milestones", "verify"]) == 1
    err = capsys.readouterr().err
    assert "blocked" in err and "remove 'milestones' from TINYTORCH_DISABLE_PLUGINS" in err
    assert "pip install" not in err


# ---- third-party stages: no curriculum order, listed after it with their prerequisites ---------------
def test_a_third_party_stage_has_no_curriculum_order(capsys):
    with use_runtime(Runtime([fake_nn(), cube_plugin(requires=("nn",))], environ={})):
        assert main(["stages", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert main(["stages"]) == 0
        lines = capsys.readouterr().out.splitlines()
    assert [r["stage"] for r in rows] == [s.name for s in catalog.STAGES] + ["cube"]
    assert [r["order"] for r in rows] == [s.order for s in catalog.STAGES] + [None]
    assert rows[-1]["requires"] == ["nn"] and rows[1]["requires"] == ["core"]
    cube_row = next(line for line in lines if " cube " in line)
    assert cube_row.split()[:3] == ["plugin", "cube", "nn"]
    assert lines.index(cube_row) > max(i for i, line in enumerate(lines) if line.split()[1:2] == ["attention"])


# ---- counts agree with their nouns ---------------------------------------------------------------------
@pytest.mark.parametrize("samples, words", [(1, "(1 sample)"), (2, "(2 samples)")])
def test_check_counts_samples_in_good_english(samples, words, capsys):
    with use_runtime(Runtime([cube_plugin(samples=samples)], environ={})):
        assert main(["check", "cube"]) == 0
    assert f"ok    cube::cube  {words}" in capsys.readouterr().out.splitlines()
