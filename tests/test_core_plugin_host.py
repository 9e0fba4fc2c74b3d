"""The plugin host: discovery, failure isolation, registration rules, and stage errors.

Every test builds its own Runtime from in-memory entry points, so nothing leaks between tests.
"""

import importlib.metadata
import warnings

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Function, Sample
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint, OpCheckError, opcheck, plugin_module


class Swish(Function):
    @staticmethod
    def forward(ctx, x):
        s = 1 / (1 + np.exp(-x))
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        return grad * (s + x * s * (1 - s))


class SwishWrongBackward(Swish):
    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        return grad * s  # forgets the x * s' term


class NoBackward(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2


class SwishLayer(tt.Module):
    def forward(self, x):
        return Swish.apply(x)


def swish_samples(rng):
    yield Sample(rng.standard_normal((3, 4)))


def swish_plugin(stage="swish", function=Swish, samples=swish_samples, requires=("core",)):
    return plugin_module(
        f"plugin_{stage}",
        tinytorch_declare_stage=lambda declare: declare(stage, requires=requires, title="Swish activation"),
        tinytorch_register_ops=lambda registry: registry.op(f"{stage}::swish", function, samples=samples),
        tinytorch_register_symbols=lambda registry: registry.layer("Swish", SwishLayer),
    )


def spatial_impostor():
    """A plugin that claims the catalog stage 'spatial' (prerequisite: nn)."""
    return plugin_module("fake_spatial", tinytorch_declare_stage=lambda declare: declare("spatial"))


def raise_on_import():
    raise ImportError("simulated broken install")


def make_runtime(*entry_points, **environ):
    return Runtime(list(entry_points), environ=environ)


def load_quietly(runtime):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime.load()
    return [str(w.message) for w in caught]


def test_core_alone_reports_later_stage_symbols_as_missing_with_install_command():
    with use_runtime(make_runtime()):
        with pytest.raises(tt.MissingStageError) as info:
            tt.nn.Conv2d
        message = str(info.value)
        assert "stage 2 'spatial'" in message
        assert "pip install . ./plugins/nn ./plugins/spatial" in message
        with pytest.raises(ImportError, match="pip install . ./plugins/nn$"):
            from tinytorch_core.nn import Linear  # noqa: F401
        with pytest.raises(tt.MissingStageError, match="attention"):
            tt.ops.scaled_dot_product_attention


def test_unknown_name_gets_a_did_you_mean():
    with use_runtime(make_runtime()):
        with pytest.raises(AttributeError, match="did you mean Linear"):
            tt.nn.Linaer


def test_a_plugin_registers_ops_and_layers_and_they_resolve():
    runtime = make_runtime(FakeEntryPoint("swish", swish_plugin()))
    with use_runtime(runtime):
        assert tt.nn.Swish is SwishLayer
        assert tt.ops.swish.__self__ is Swish  # the op's call defaults to Function.apply
        assert runtime.plugins["swish"].status == "loaded"
        assert Swish.name == "swish::swish"
        assert opcheck("swish::swish", runtime=runtime).samples_checked == 1


def test_plugin_that_fails_to_import_is_isolated_and_named():
    broken = FakeEntryPoint("spatial", raise_on_import, call=True, distribution="tinytorch-spatial", version="9.9")
    runtime = make_runtime(broken, FakeEntryPoint("swish", swish_plugin()))
    messages = load_quietly(runtime)
    assert len(messages) == 1
    assert "'spatial'" in messages[0] and "tinytorch-spatial 9.9" in messages[0]
    assert "simulated broken install" in messages[0]
    assert runtime.plugins["swish"].status == "loaded"
    with use_runtime(runtime):
        assert tt.nn.Swish is SwishLayer
        with pytest.raises(tt.BrokenStageError, match="installed \\(tinytorch-spatial 9.9\\) but broken"):
            tt.nn.Conv2d


def test_strict_mode_turns_a_broken_plugin_into_an_exception():
    broken = FakeEntryPoint("spatial", raise_on_import, call=True)
    with pytest.raises(tt.PluginLoadError, match="simulated broken install"):
        make_runtime(broken, TINYTORCH_STRICT_PLUGINS="1").load()


def test_entry_point_that_points_nowhere():
    ghost = importlib.metadata.EntryPoint(name="ghost", value="no_such_module_anywhere:plugin", group="tinytorch.stages")
    runtime = make_runtime(ghost, FakeEntryPoint("swish", swish_plugin()))
    messages = load_quietly(runtime)
    assert "no_such_module_anywhere" in messages[0] and "ModuleNotFoundError" in messages[0]
    assert runtime.plugins["swish"].status == "loaded"


def test_two_plugins_claiming_one_stage_name_both_with_versions():
    first = FakeEntryPoint("swish", swish_plugin(), distribution="swish-a", version="1.0")
    second = FakeEntryPoint("swish2", swish_plugin(), distribution="swish-b", version="2.0")
    runtime = make_runtime(first, second)
    messages = load_quietly(runtime)
    assert any("swish-a 1.0" in m and "swish-b 2.0" in m for m in messages)
    assert runtime.plugins["swish"].status == "loaded"
    assert runtime.plugins["swish2"].status == "failed"


def test_duplicate_op_name_names_both_plugins_and_rolls_back_the_second():
    # stages register before extensions: the stage 'swish' owns swish::swish, then an
    # extension plugin that happens to be called 'swish' tries to register the same name
    extension = plugin_module(
        "ext",
        tinytorch_register_ops=lambda registry: registry.op("swish::swish", Swish, samples=swish_samples),
        tinytorch_register_symbols=lambda registry: registry.layer("SwishTwo", SwishLayer),
    )
    runtime = make_runtime(
        FakeEntryPoint("swish", extension, distribution="ext-dist", version="0.1"),
        FakeEntryPoint("zz", swish_plugin(), distribution="stage-dist", version="0.2"),
    )
    messages = load_quietly(runtime)
    assert len(messages) == 1
    assert "registered twice" in messages[0] and "ext-dist 0.1" in messages[0] and "stage-dist 0.2" in messages[0]
    assert runtime.plugins["zz"].status == "loaded"
    assert runtime.plugins["swish"].status == "failed"
    assert "SwishTwo" not in runtime.symbols["nn"]  # the refused plugin left no trace


@pytest.mark.parametrize(
    "plugin, message",
    [
        (swish_plugin(function=NoBackward), "defines no backward"),
        (swish_plugin(samples=None), "needs samples"),
        (plugin_module("typo", tinytorch_register_op=lambda registry: None), "did you mean tinytorch_register_ops"),
        (  # the hook's old name: it registered optimizers, data, init and io too, not only layers
            plugin_module("old", tinytorch_register_layers=lambda registry: None),
            "it was renamed: did you mean tinytorch_register_symbols",
        ),
        (
            plugin_module(
                "old_method",
                tinytorch_declare_stage=lambda declare: declare("mine", requires=("core",)),
                tinytorch_register_ops=lambda registry: registry.function("mine::swish", Swish, samples=swish_samples),
            ),
            "is now registry.op",
        ),
        (
            plugin_module(
                "wrong_prefix",
                tinytorch_declare_stage=lambda declare: declare("mine", requires=("core",)),
                tinytorch_register_ops=lambda registry: registry.op("nn::swish", Swish, samples=swish_samples),
            ),
            "must be named after its stage",
        ),
    ],
)
def test_refused_registrations_give_their_own_message_and_leave_the_rest_working(plugin, message):
    runtime = make_runtime(FakeEntryPoint("bad", plugin), FakeEntryPoint("swish", swish_plugin(stage="good")))
    messages = load_quietly(runtime)
    assert len(messages) == 1 and message in messages[0]
    assert runtime.plugins["bad"].status == "failed"
    assert runtime.plugins["swish"].status == "loaded"
    with pytest.raises(tt.PluginLoadError, match=message):
        make_runtime(FakeEntryPoint("bad", plugin), TINYTORCH_STRICT_PLUGINS="1").load()


def test_stage_with_missing_prerequisite_is_inactive_with_the_reason():
    runtime = make_runtime(FakeEntryPoint("spatial", spatial_impostor(), distribution="tinytorch-spatial"))
    assert not load_quietly(runtime)
    status, record = runtime.stage_status("spatial")
    assert status == "inactive"
    assert "requires stage 'nn', which is not installed (install: pip install . ./plugins/nn)" in record.reason
    with use_runtime(runtime), pytest.raises(tt.InactiveStageError, match="inactive"):
        tt.nn.MaxPool2d


def test_custom_stage_requiring_a_broken_stage_is_inactive():
    broken = FakeEntryPoint("swish", raise_on_import, call=True)
    dependent = FakeEntryPoint("fancy", swish_plugin(stage="fancy", requires=("swish",)))
    runtime = make_runtime(broken, dependent)
    load_quietly(runtime)
    assert runtime.plugins["fancy"].status == "inactive"
    assert "requires stage 'swish', which is failed" in runtime.plugins["fancy"].reason


def test_disable_and_allow_lists():
    runtime = make_runtime(
        FakeEntryPoint("spatial", spatial_impostor(), distribution="tinytorch-spatial"),
        FakeEntryPoint("swish", swish_plugin()),
        TINYTORCH_DISABLE_PLUGINS="tinytorch-spatial",
    )
    runtime.load()
    assert runtime.plugins["spatial"].status == "blocked"
    assert runtime.plugins["swish"].status == "loaded"
    with use_runtime(runtime), pytest.raises(tt.BlockedStageError, match="TINYTORCH_DISABLE_PLUGINS"):
        tt.nn.Conv2d

    nothing = make_runtime(FakeEntryPoint("swish", swish_plugin()), TINYTORCH_LOAD_PLUGINS="")
    nothing.load()
    assert nothing.plugins["swish"].status == "blocked" and nothing.plugins["core"].status == "loaded"
    only = make_runtime(FakeEntryPoint("swish", swish_plugin()), TINYTORCH_LOAD_PLUGINS="swish")
    assert only.load().plugins["swish"].status == "loaded"


def test_deliberately_wrong_backward_fails_opcheck_naming_op_and_input():
    runtime = make_runtime(FakeEntryPoint("swish", swish_plugin(function=SwishWrongBackward)))
    runtime.load()
    with pytest.raises(OpCheckError, match=r"swish::swish sample 0 .*gradient of input 0"):
        opcheck("swish::swish", runtime=runtime)


def test_registrations_do_not_leak_between_runtimes():
    make_runtime(FakeEntryPoint("swish", swish_plugin())).load()
    assert "swish::swish" not in make_runtime().load().ops


def test_core_registers_its_own_ops_through_the_same_hooks():
    runtime = make_runtime().load()
    assert runtime.plugins["core"].status == "loaded"
    assert set(runtime.plugins["core"].ops) == {f"core::{n}" for n in tt.catalog.stage("core").symbols["ops"]}


def test_unknown_symbol_mentions_installed_plugins_that_are_not_loaded():
    dependent = FakeEntryPoint("fancy", swish_plugin(stage="fancy", requires=("nn",)))
    runtime = make_runtime(dependent)
    runtime.load()
    with use_runtime(runtime), pytest.raises(AttributeError, match=r"not loaded.*fancy \(inactive: requires stage 'nn'"):
        tt.nn.Swish


def test_an_entry_point_named_after_a_curriculum_stage_provides_it_without_declaring():
    tinytorch_nn = pytest.importorskip("tinytorch_nn", reason="stage nn is not installed (core-only rung)")

    plugin = plugin_module("nn_by_name", tinytorch_register_symbols=lambda registry: registry.symbols_from(tinytorch_nn))
    runtime = make_runtime(FakeEntryPoint("nn", plugin))
    assert load_quietly(runtime) == []
    record = runtime.plugins["nn"]
    assert (record.status, record.stage, record.requires) == ("loaded", "nn", ("core",))
    assert runtime.resolve("optim", "SGD") is tinytorch_nn.SGD  # symbols_from: every catalog name of nn
    assert set(record.symbols) == {f"{ns}.{name}" for ns, name in tt.catalog.stage("nn").symbol_names()}


@pytest.mark.parametrize(
    "stage, source, message",
    [
        ("nn", object(), "the catalog lists nn.Linear for stage 'nn', but"),
        ("mine", object(), "'mine' is not a curriculum stage; register with registry.symbol"),
    ],
)
def test_symbols_from_refuses_a_missing_name_or_a_stage_outside_the_catalog(stage, source, message):
    plugin = plugin_module(
        "partial",
        tinytorch_declare_stage=lambda declare: declare(stage, **({} if stage == "nn" else {"requires": ("core",)})),
        tinytorch_register_symbols=lambda registry: registry.symbols_from(source),
    )
    runtime = make_runtime(FakeEntryPoint("partial", plugin))
    messages = load_quietly(runtime)
    assert len(messages) == 1 and message in messages[0]
    assert runtime.plugins["partial"].status == "failed"
    assert runtime.symbols["nn"] == {}  # nothing of the refused plugin was committed


def test_short_op_names_are_looked_up_once_and_follow_what_is_loaded():
    runtime = make_runtime(FakeEntryPoint("swish", swish_plugin()))
    assert runtime.op("swish").name == "swish::swish" and runtime.op("add").name == "core::add"
    assert runtime.op("swish") is runtime.op("swish::swish")
    other = plugin_module(  # a second 'swish' op, in a stage of its own
        "other",
        tinytorch_declare_stage=lambda declare: declare("other", requires=("core",)),
        tinytorch_register_ops=lambda registry: registry.op("other::swish", SwishWrongBackward, samples=swish_samples),
    )
    both = make_runtime(FakeEntryPoint("swish", swish_plugin()), FakeEntryPoint("other", other))
    with pytest.raises(AttributeError, match=r"op 'swish' is ambiguous: \['other::swish', 'swish::swish'\]"):
        both.op("swish")
    assert both.op("other::swish").function is SwishWrongBackward
