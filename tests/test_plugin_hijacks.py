"""No plugin can take over what a curriculum stage provides (issue 15, "No hijacks").

Each hostile plugin below is installed next to the real stages (their real entry points plus a
fake one) and must be refused with a warning naming it and what it tried, while every real
stage keeps working.
"""

from __future__ import annotations

import importlib.metadata as metadata
import warnings

import numpy as np
import pytest

from tinytorch_core import Function, Tensor
from tinytorch_core.host import hookspecs
from tinytorch_core.host.runtime import FAILED, LOADED, Runtime, use_runtime
from tinytorch_core.primitives import Add
from tinytorch_core.testing import FakeEntryPoint, plugin_module

REAL = sorted(metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _declaring(stage, requires=None):
    def declare(declare):
        declare(stage, requires=requires) if requires is not None else declare(stage)

    return declare


def stage_thief(entry_name="aaa_hijack"):
    """Declares the curriculum stage 'nn' without being its provider (named to load first)."""
    module = plugin_module(entry_name, tinytorch_declare_stage=_declaring("nn"))
    return FakeEntryPoint(entry_name, module, distribution="hijack-nn")


def layer_thief():
    """A third-party stage needing only core that registers a layer called Linear."""
    module = plugin_module("impostor", tinytorch_declare_stage=_declaring("impostor", ("core",)),
                           tinytorch_register_symbols=lambda registry: registry.layer("Linear", object))
    return FakeEntryPoint("impostor", module, distribution="impostor")


class _AdvancedRelu(Function):
    @staticmethod
    def forward(ctx, x):
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad):
        return grad


def short_name_twin():
    """A third-party op with the short name of nn's relu."""
    def register(registry):
        registry.op("advop::relu", _AdvancedRelu, differentiable=False)

    module = plugin_module("advop", tinytorch_declare_stage=_declaring("advop", ("core",)),
                           tinytorch_register_ops=register)
    return FakeEntryPoint("advop", module, distribution="advop")


def class_thief():
    """Registers core's Add class under its own name (which used to rename core::add)."""
    def register(registry):
        registry.op("thief::add", Add, samples=lambda rng: iter(()))

    module = plugin_module("thief", tinytorch_declare_stage=_declaring("thief", ("core",)),
                           tinytorch_register_ops=register)
    return FakeEntryPoint("thief", module, distribution="thief")


def tensor_patcher():
    """Replaces Tensor.__add__ with a version that drops the gradient."""
    def register(registry):
        Tensor.__add__ = lambda self, other: Tensor(self.data + getattr(other, "data", other))

    module = plugin_module("patcher", tinytorch_declare_stage=_declaring("patcher", ("core",)),
                           tinytorch_register_symbols=register)
    return FakeEntryPoint("patcher", module, distribution="patcher")


def _runtime(*extra, environ=None):
    return Runtime(REAL + list(extra), environ=environ or {})


def _loaded(runtime):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime.load()
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("entry_name", ["aaa_hijack", "zzz_hijack"])
def test_a_plugin_declaring_a_curriculum_stage_does_not_take_it_from_its_provider(entry_name):
    runtime = _runtime(stage_thief(entry_name))
    said = _loaded(runtime)
    thief = runtime.plugins[entry_name]
    assert thief.status == FAILED
    assert "provides stage 'nn', which plugin 'nn' (tinytorch-nn" in thief.reason
    assert "TINYTORCH_PROVIDERS=nn=" in thief.reason
    assert any(entry_name in message for message in said)
    status, record = runtime.stage_status("nn")
    assert status == LOADED and record.distribution == "tinytorch-nn"
    assert runtime.resolve("nn", "Linear").__module__.startswith("tinytorch_nn")
    assert all(runtime.stage_status(s)[0] == LOADED for s in ("spatial", "embeddings", "attention"))


def test_the_user_can_choose_another_provider_and_the_reference_then_steps_aside():
    runtime = _runtime(stage_thief(), environ={"TINYTORCH_PROVIDERS": "nn=hijack-nn"})
    _loaded(runtime)
    status, record = runtime.stage_status("nn")
    assert record.distribution == "hijack-nn"
    assert runtime.plugins["nn"].status == FAILED
    assert "TINYTORCH_PROVIDERS chooses 'hijack-nn'" in runtime.plugins["nn"].reason


@pytest.mark.parametrize("names", [("first", "second"), ("second", "first")])
def test_two_providers_and_no_choice_is_an_error_naming_both_in_either_order(names):
    candidates = [FakeEntryPoint(n, plugin_module(n, tinytorch_declare_stage=_declaring("spatial")),
                                 distribution=f"my-{n}") for n in names]
    runtime = Runtime(candidates, environ={})
    _loaded(runtime)
    for n in names:
        assert runtime.plugins[n].status == FAILED
        assert "also provides" in runtime.plugins[n].reason
    assert runtime.stage_status("spatial")[1].status == FAILED


def test_a_third_party_stage_cannot_register_a_curriculum_layer():
    runtime = _runtime(layer_thief())
    said = _loaded(runtime)
    impostor = runtime.plugins["impostor"]
    assert impostor.status == FAILED
    assert "registers nn.Linear, which belongs to curriculum stage 'nn'" in impostor.reason
    assert any("impostor" in message for message in said)
    assert runtime.resolve("nn", "Linear").__module__.startswith("tinytorch_nn")
    assert all(runtime.stage_status(s)[0] == LOADED for s in ("nn", "spatial", "embeddings", "attention"))


def test_a_short_op_name_always_means_the_curriculum_op():
    runtime = _runtime(short_name_twin())
    _loaded(runtime)
    assert runtime.plugins["advop"].status == LOADED
    assert runtime.op("relu").name == "nn::relu"
    assert runtime.op("advop::relu").function is _AdvancedRelu


def test_a_function_class_is_registered_under_one_name_only():
    runtime = _runtime(class_thief())
    _loaded(runtime)
    thief = runtime.plugins["thief"]
    assert thief.status == FAILED
    assert "already op 'core::add'" in thief.reason
    assert Add.name == "core::add" and runtime.op("add").function is Add


def test_a_plugin_that_patches_tensor_is_refused_and_the_patch_undone():
    original = Tensor.__add__
    try:
        runtime = _runtime(tensor_patcher())
        said = _loaded(runtime)
    finally:
        patched_left = Tensor.__add__ is not original
        Tensor.__add__ = original
    assert not patched_left
    patcher = runtime.plugins["patcher"]
    assert patcher.status == FAILED
    assert "changed code it does not own while registering (Tensor.__add__)" in patcher.reason
    assert any("patcher" in message for message in said)
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x + 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_verify_passes_every_milestone_with_all_the_hijackers_installed(capsys):
    from tinytorch_core.cli import main

    runtime = _runtime(stage_thief(), layer_thief(), short_name_twin(), class_thief(), tensor_patcher())
    original = Tensor.__add__
    try:
        with use_runtime(runtime), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(["milestones", "verify"])
    finally:
        Tensor.__add__ = original
    out = capsys.readouterr().out
    assert code == 0, out
    default_set = [m for m in runtime.milestones.values() if not m.extended]
    assert f"{len(default_set)} passed, 0 failed, 0 locked" in out, out


# ---- who provides what, as the stages table and the milestone report say ---------------------------------
def learner_nn():
    """A learner's own provider of stage 'nn' that has only built Linear so far."""
    from tinytorch_nn.layers import Linear

    module = plugin_module("my_nn", tinytorch_declare_stage=_declaring("nn"),
                           tinytorch_register_symbols=lambda registry: registry.layer("Linear", Linear))
    return FakeEntryPoint("my_nn", module, distribution="my-nn", version="0.1.0")


def test_stages_name_the_active_provider_other_candidates_and_what_is_missing(capsys):
    from tinytorch_core.cli import main, stages_rows

    runtime = _runtime(learner_nn(), environ={"TINYTORCH_PROVIDERS": "nn=my-nn"})
    _loaded(runtime)
    row = next(r for r in stages_rows(runtime) if r["stage"] == "nn")
    assert (row["provider"], row["distribution"], row["candidates"]) == ("my-nn", "tinytorch-nn", ["tinytorch-nn"])
    assert "nn.Linear" not in row["missing"] and "nn.ReLU" in row["missing"] and "ops.relu" in row["missing"]
    with use_runtime(runtime), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["stages"]) == 0
    out = capsys.readouterr().out
    assert "nn: also installed, not active: tinytorch-nn" in out
    assert "nn: my-nn does not provide" in out and "nn.ReLU" in out


def test_a_milestone_report_names_a_provider_that_is_not_the_reference(capsys):
    from tinytorch_core import Milestone
    from tinytorch_milestones.runner import MilestoneOutcome, RunOptions, run_milestone

    runtime = _runtime(learner_nn(), environ={"TINYTORCH_PROVIDERS": "nn=my-nn"})
    _loaded(runtime)
    milestone = Milestone(name="tiny", year=1, title="Tiny", requires=("nn",),
                          run=lambda options: MilestoneOutcome(parts=[], checks=[]))
    result = run_milestone(milestone, RunOptions(runtime=runtime))
    assert result.providers == {"nn": "my-nn 0.1.0"}
    from tinytorch_milestones.report import milestone_table

    assert milestone_table(result).title.endswith("on my-nn 0.1.0")


def name_squatter(claims):
    """A third-party plugin that claims the distributed stage's command or a milestone's name."""
    from tinytorch_core import Milestone

    def commands(commands):
        commands.add("launch", help="mine", setup=lambda parser: None, run=lambda args: 0)

    def milestones(register):
        register(Milestone(name="perceptron", year=2000, title="Mine", requires=("nn",), run=lambda: None))

    hooks = {"command": {"tinytorch_cli_commands": commands},
             "milestone": {"tinytorch_register_milestones": milestones}}[claims]
    module = plugin_module("aaa_squatter", tinytorch_declare_stage=_declaring("aaa_squatter", ("core",)), **hooks)
    return FakeEntryPoint("aaa_squatter", module, distribution="aaa-squatter")


@pytest.mark.parametrize("claims, message", [
    ("command", "registers command 'launch', which belongs to 'distributed' (tinytorch-distributed)"),
    ("milestone", "registers milestone 'perceptron', which belongs to 'milestones' (tinytorch-milestones)"),
])
def test_a_plugin_claiming_a_curriculum_command_or_milestone_is_refused_not_the_owner(claims, message):
    """First come used to win: the squatter (loaded first) took 'launch' and the distributed
    stage failed; 'perceptron' took the milestone suite down."""
    runtime = _runtime(name_squatter(claims))
    _loaded(runtime)
    squatter = runtime.plugins["aaa_squatter"]
    assert squatter.status == FAILED and message in squatter.reason
    assert runtime.stage_status("distributed")[0] == LOADED and runtime.plugins["milestones"].status == LOADED
    assert runtime.commands["launch"].plugin == "distributed"
    assert runtime.milestones["perceptron"].title == "Perceptron"


def test_a_milestone_requiring_an_unknown_stage_is_refused_at_registration():
    from tinytorch_core import Milestone

    def milestones(register):
        register(Milestone(name="mine", year=2000, title="Mine", requires=("nonexistent",), run=lambda: None))

    module = plugin_module("ghost", tinytorch_declare_stage=_declaring("ghost", ("core",)),
                           tinytorch_register_milestones=milestones)
    runtime = _runtime(FakeEntryPoint("ghost", module, distribution="ghost"))
    _loaded(runtime)
    assert runtime.plugins["ghost"].status == FAILED
    assert "milestone 'mine' requires ['nonexistent'], which are not stages" in runtime.plugins["ghost"].reason
    assert "mine" not in runtime.milestones


@pytest.mark.parametrize("short", ["items", "read", "keys"])
def test_an_op_named_like_a_dict_or_file_method_is_refused(short):
    """Every op is a Tensor method: an op 'items' made hasattr(tensor, 'items') True, and
    tt.io.save(tensor, path) then took the tensor for a dict."""
    def register(registry):
        registry.op(f"probe::{short}", _AdvancedRelu, differentiable=False)

    module = plugin_module("probe", tinytorch_declare_stage=_declaring("probe", ("core",)),
                           tinytorch_register_ops=register)
    runtime = _runtime(FakeEntryPoint("probe", module, distribution="probe"))
    _loaded(runtime)
    assert runtime.plugins["probe"].status == FAILED
    assert f"would make every tensor answer hasattr(x, '{short}')" in runtime.plugins["probe"].reason


@pytest.mark.parametrize("squatter_first", [True, False])
def test_an_entry_point_named_like_a_stage_from_another_distribution_never_takes_it(squatter_first):
    """A second entry point named 'nn' shut the nn stage off whichever came first: found first it
    took the name; found second, refusing it unregistered the real nn from pluggy."""
    squatter = FakeEntryPoint("nn", plugin_module("squat"), distribution="squat")
    runtime = Runtime(([squatter] + REAL) if squatter_first else (REAL + [squatter]), environ={})
    _loaded(runtime)
    status, record = runtime.stage_status("nn")
    assert status == LOADED and record.distribution == "tinytorch-nn"
    assert runtime.resolve("nn", "Linear").__module__.startswith("tinytorch_nn")
    refused = runtime.plugins["nn@squat"]
    assert refused.status == FAILED and "entry-point name 'nn'" in refused.reason


@pytest.mark.parametrize("target", ["core op", "engine", "other plugin's op", "Tensor's value reads"])
def test_a_plugin_that_patches_a_core_op_the_engine_or_another_plugins_op_is_refused_and_undone(target):
    """Only Tensor, Function, Module and Parameter were guarded: Add.backward or engine.backward
    replaced at registration dropped every gradient, and so did nn's ReLU backward. Tensor's
    bases are guarded with it (a patched ``__bool__`` would pass every ``if loss > limit:``)."""
    import tinytorch_core.engine as engine
    from tinytorch_core.values import ValueReads
    from tinytorch_nn.activations import ReLUFunction

    owner, name = {"core op": (Add, "backward"), "engine": (engine, "backward"),
                   "other plugin's op": (ReLUFunction, "backward"), "Tensor's value reads": (ValueReads, "__bool__")}[target]
    original = vars(owner)[name]  # as stored: a staticmethod object, not the function it wraps

    def register(registry):
        setattr(owner, name, staticmethod(lambda *a, **k: None) if isinstance(owner, type) else (lambda *a, **k: None))

    module = plugin_module("zz_patcher", tinytorch_declare_stage=_declaring("zz_patcher", ("nn",)),
                           tinytorch_register_symbols=register)
    try:
        runtime = _runtime(FakeEntryPoint("zz_patcher", module, distribution="zz-patcher"))
        _loaded(runtime)
    finally:
        patched_left = vars(owner)[name] is not original
        setattr(owner, name, original)
    assert not patched_left
    assert runtime.plugins["zz_patcher"].status == FAILED
    shown = getattr(owner, '__name__', '').rsplit('.', 1)[-1]
    assert f"changed code it does not own while registering ({shown}.{name})" \
        in runtime.plugins["zz_patcher"].reason
