"""Hostile plugins: ``sys.exit()`` and other ``BaseException``s at import or in any hook, and strict
mode (``TINYTORCH_STRICT_PLUGINS=1``) telling the truth on every access, not only the first.

Each test builds its own Runtime from in-memory entry points; the real command in a subprocess
with a broken plugin installed is tested in ``test_plugin_edges_blocking.py``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import warnings

import pytest

import tinytorch_core as tt
from tinytorch_core import Function, Sample
from tinytorch_core.cli import main
from tinytorch_core.host.registry import Milestone
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint, plugin_module


class Double(Function):
    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad


class SwishLayer(tt.Module):
    def forward(self, x):
        return Double.apply(x)


def swish_plugin(stage="swish"):
    """A well-behaved plugin that must keep working next to a hostile one."""
    return plugin_module(
        f"plugin_{stage}",
        tinytorch_declare_stage=lambda declare: declare(stage, requires=("core",), title="Swish"),
        tinytorch_register_ops=lambda registry: registry.op(
            f"{stage}::swish", Double, samples=lambda rng: [Sample(rng.standard_normal(3))]),
        tinytorch_register_symbols=lambda registry: registry.layer("Swish", SwishLayer),
    )


class CustomBaseException(BaseException):
    """Not an Exception: ``except Exception`` lets it through."""


def _raiser(make_exc):
    def raise_it(*args, **kwargs):
        raise make_exc()

    return raise_it


BASE_EXCEPTIONS = {
    "sys.exit()": lambda: SystemExit(),
    "sys.exit(3)": lambda: SystemExit(3),
    "sys.exit(msg)": lambda: SystemExit("bye from the plugin"),
    "GeneratorExit": lambda: GeneratorExit("closed"),
    "custom-BaseException": lambda: CustomBaseException("custom"),
}

HOOKS = (
    "tinytorch_declare_stage", "tinytorch_register_ops", "tinytorch_register_symbols",
    "tinytorch_register_milestones", "tinytorch_cli_commands",
)


def _plugin_raising_in(hook: str, make_exc):
    """A spatial-stage impostor whose ``hook`` raises; the other hooks behave."""
    hooks = {name: (lambda *a, **k: None) for name in HOOKS}
    hooks["tinytorch_declare_stage"] = lambda declare: declare("evil", requires=("core",), title="Evil")
    hooks[hook] = _raiser(make_exc)
    return plugin_module("evil_plugin", **hooks)


def _broken_entry_point(where: str, make_exc, name="evil", distribution="tinytorch-evil", version="6.6.6"):
    if where == "import":
        return FakeEntryPoint(name, _raiser(make_exc), call=True, distribution=distribution, version=version)
    return FakeEntryPoint(name, _plugin_raising_in(where, make_exc), distribution=distribution, version=version)


def _load(runtime):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime.load()
    return [str(w.message) for w in caught]


# ---- BaseException is a plugin failure like any other -------------------------------------------------
@pytest.mark.parametrize("kind", sorted(BASE_EXCEPTIONS))
@pytest.mark.parametrize("where", ["import", *HOOKS])
def test_base_exceptions_from_a_plugin_are_isolated_and_named(where, kind):
    runtime = Runtime([_broken_entry_point(where, BASE_EXCEPTIONS[kind]), FakeEntryPoint("swish", swish_plugin())],
                      environ={})
    messages = _load(runtime)  # does not raise SystemExit & co.
    assert len(messages) == 1, messages
    assert "plugin 'evil' (tinytorch-evil 6.6.6) for stage 'evil'" in messages[0]
    assert type(BASE_EXCEPTIONS[kind]()).__name__ in messages[0]
    assert runtime.plugins["evil"].status == "failed"
    assert runtime.plugins["swish"].status == "loaded"
    with use_runtime(runtime):
        assert tt.nn.Swish is SwishLayer


def test_sys_exit_message_says_the_plugin_called_sys_exit():
    runtime = Runtime([_broken_entry_point("import", lambda: SystemExit(3))], environ={})
    (message,) = _load(runtime)
    assert "SystemExit(3) (the plugin called sys.exit)" in message


@pytest.mark.parametrize("where", ["import", *HOOKS])
def test_keyboard_interrupt_still_propagates_and_the_next_load_starts_afresh(where):
    """The user's Ctrl-C while a plugin's code runs (SIGINT, which Python delivers to the loading
    thread, waiting for the plugin's worker) stops the load; the next access loads afresh."""
    interrupt = {"on": True}

    def maybe_interrupt(*args, **kwargs):
        if interrupt["on"]:
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.5)  # still running when the loading thread takes the interrupt

    if where == "import":
        fine = plugin_module("evil_plugin", tinytorch_declare_stage=lambda declare: declare("evil", requires=("core",)))
        ep = FakeEntryPoint("evil", lambda: (maybe_interrupt(), fine)[1], call=True)
    else:
        hooks = {name: (lambda *a, **k: None) for name in HOOKS}
        hooks["tinytorch_declare_stage"] = lambda declare: declare("evil", requires=("core",))
        hooks[where] = maybe_interrupt
        ep = FakeEntryPoint("evil", plugin_module("evil_plugin", **hooks))
    runtime = Runtime([ep, FakeEntryPoint("swish", swish_plugin())], environ={})
    with pytest.raises(KeyboardInterrupt):
        runtime.load()
    interrupt["on"] = False
    assert _load(runtime) == []  # a complete load, not the half-done state of the interrupted one
    assert runtime.plugins["evil"].status == "loaded" and runtime.plugins["swish"].status == "loaded"


class Unprintable(Exception):
    def __str__(self):
        raise SystemExit("even printing me exits")


@pytest.mark.parametrize("where", ["import", *HOOKS])
def test_an_exception_that_cannot_be_printed_is_still_isolated(where):
    runtime = Runtime([_broken_entry_point(where, Unprintable), FakeEntryPoint("swish", swish_plugin())], environ={})
    (message,) = _load(runtime)
    assert "Unprintable (its message could not be shown: SystemExit)" in message
    assert runtime.plugins["swish"].status == "loaded"


def test_broken_distribution_metadata_still_gives_a_named_failure():
    class BadDist:
        version = "1.0"

        @property
        def metadata(self):
            raise SystemExit("metadata exploded")

    ep = FakeEntryPoint("evil", _raiser(lambda: ImportError("nope")), call=True)
    ep.dist = BadDist()
    runtime = Runtime([ep], environ={})
    (message,) = _load(runtime)
    assert "plugin 'evil' (unknown distribution ?)" in message


# ---- strict mode: the same PluginLoadError on every access -------------------------------------------
@pytest.mark.parametrize("kind", sorted(BASE_EXCEPTIONS))
@pytest.mark.parametrize("where", ["import", "tinytorch_declare_stage", "tinytorch_register_symbols"])
def test_strict_mode_raises_plugin_load_error_chained_from_the_base_exception(where, kind):
    runtime = Runtime([_broken_entry_point(where, BASE_EXCEPTIONS[kind])], environ={"TINYTORCH_STRICT_PLUGINS": "1"})
    with pytest.raises(tt.PluginLoadError) as info:
        runtime.load()
    assert type(info.value.__cause__) is type(BASE_EXCEPTIONS[kind]())
    assert "tinytorch-evil 6.6.6" in str(info.value) and info.value.record.name == "evil"


def test_strict_mode_keeps_raising_on_every_access():
    broken = FakeEntryPoint("spatial", _raiser(lambda: SystemExit(1)), call=True,
                            distribution="tinytorch-spatial", version="9.9")
    runtime = Runtime([broken, FakeEntryPoint("swish", swish_plugin())], environ={"TINYTORCH_STRICT_PLUGINS": "1"})
    with pytest.raises(tt.PluginLoadError, match="TINYTORCH_STRICT_PLUGINS=1 makes this an error") as first:
        runtime.load()
    assert isinstance(first.value.__cause__, SystemExit)
    for _ in range(3):
        with pytest.raises(tt.PluginLoadError) as again:
            runtime.load()
        assert again.value is first.value
        with pytest.raises(tt.PluginLoadError):
            runtime.stage_status("spatial")
    with use_runtime(runtime):
        for _ in range(2):  # symbols of the broken stage, of a working plugin, and ops: never "not installed"
            for access in (lambda: tt.nn.Conv2d, lambda: tt.nn.Swish, lambda: tt.ops.conv2d, lambda: tt.ops.swish):
                with pytest.raises(tt.PluginLoadError, match="tinytorch-spatial 9.9"):
                    access()
    # the loading went to the end: every plugin's state is recorded, and tells the truth
    with runtime.inspecting():
        assert runtime.stage_status("spatial")[0] == "failed"
        assert runtime.plugins["swish"].status == "loaded"
    # a runtime reloaded in the same process fails the same way
    with pytest.raises(tt.PluginLoadError, match="tinytorch-spatial 9.9"):
        Runtime([broken], environ={"TINYTORCH_STRICT_PLUGINS": "1"}).load()


def test_strict_mode_turned_on_after_a_lenient_load_raises_too():
    environ = {}
    broken = FakeEntryPoint("spatial", _raiser(lambda: SystemExit(1)), call=True, distribution="tinytorch-spatial")
    runtime = Runtime([broken], environ=environ)
    assert len(_load(runtime)) == 1
    environ["TINYTORCH_STRICT_PLUGINS"] = "1"
    with pytest.raises(tt.PluginLoadError, match="TINYTORCH_STRICT_PLUGINS=1 makes this an error"):
        runtime.load()


def test_strict_error_names_every_failed_plugin():
    runtime = Runtime([_broken_entry_point("import", lambda: SystemExit(1)),
                       _broken_entry_point("tinytorch_register_ops", lambda: ValueError("x"), name="evil2",
                                           distribution="tinytorch-evil2")],
                      environ={"TINYTORCH_STRICT_PLUGINS": "1"})
    with pytest.raises(tt.PluginLoadError, match=r"1 more plugin\(s\) failed too: plugin 'evil2'") as info:
        runtime.load()
    assert [r.name for r in info.value.records] == ["evil", "evil2"]


def test_a_stage_whose_entry_point_has_another_name_is_broken_not_missing():
    """The stage was never declared (its import failed); its distribution says which stage it is."""
    broken = FakeEntryPoint("my_spatial_fork", _raiser(lambda: SystemExit(2)), call=True,
                            distribution="tinytorch_Spatial", version="0.3")
    runtime = Runtime([broken], environ={})
    (message,) = _load(runtime)
    assert "for stage 'spatial'" in message
    assert runtime.stage_status("spatial")[0] == "failed"
    with use_runtime(runtime), pytest.raises(tt.BrokenStageError, match="installed \\(tinytorch_Spatial 0.3\\)"):
        tt.nn.Conv2d


def test_a_failed_declaration_reads_failed_not_missing():
    def declare_then_exit(declare):
        declare("spatial")
        raise SystemExit(1)

    plugin = plugin_module("half", tinytorch_declare_stage=declare_then_exit)
    runtime = Runtime([FakeEntryPoint("half", plugin, distribution="tinytorch-half")], environ={})
    _load(runtime)
    assert runtime.stage_status("spatial")[0] == "failed"
    assert "spatial" not in runtime.stages  # no active provider left behind


# ---- the command line ----------------------------------------------------------------------------------
def test_cli_keeps_working_with_a_plugin_that_exits_in_a_hook(capsys):
    broken = _broken_entry_point("tinytorch_register_ops", lambda: SystemExit(0))
    with use_runtime(Runtime([broken], environ={})):
        assert main(["stages"]) == 0
        assert main(["plugins", "--json"]) == 0
    captured = capsys.readouterr()
    assert "tinytorch-evil 6.6.6" in captured.err and "SystemExit" in captured.err


def _stage_plugin(stage: str, **hooks) -> FakeEntryPoint:
    """A third-party stage built on core alone, with ``hooks``."""
    def declare_stage(declare):
        declare(stage, requires=("core",))

    return FakeEntryPoint(stage, plugin_module(f"{stage}_plugin", tinytorch_declare_stage=declare_stage, **hooks))


def test_cli_survives_a_plugin_command_whose_setup_exits(capsys):
    def commands(commands):
        commands.add("boom", help="exits in setup", setup=_raiser(lambda: SystemExit(4)), run=lambda a, r: 0)

    plugin = _stage_plugin("cmdp", tinytorch_cli_commands=commands)
    with use_runtime(Runtime([plugin], environ={})):
        assert main(["stages"]) == 0
    assert "command 'boom' from plugin 'cmdp' is broken" in capsys.readouterr().err
    # strict mode: a broken command is an error, as a broken plugin is (it was one warning line, exit 0)
    with use_runtime(Runtime([plugin], environ={"TINYTORCH_STRICT_PLUGINS": "1"})):
        assert main(["stages"]) == 1
    captured = capsys.readouterr()
    assert "command 'boom' from plugin 'cmdp' is broken" in captured.err and "cmdp" in captured.out


@pytest.mark.parametrize("returned", ["notint", 256, -1, True])
def test_a_plugin_command_returning_no_exit_status_is_reported_not_a_traceback(capsys, returned):
    """``run`` returning text crashed the CLI in ``int(...)``; 256 reached the shell as 0, success."""
    def commands(commands):
        commands.add("say", help="returns text", setup=lambda parser: None, run=lambda a, r: returned)

    with use_runtime(Runtime([_stage_plugin("sayp", tinytorch_cli_commands=commands)], environ={})):
        assert main(["say"]) == 1
    assert f"tinytorch say: the command returned {returned!r}, not an exit status" in capsys.readouterr().err


def test_cli_check_survives_samples_that_exit(capsys):
    plugin = _stage_plugin("exits", tinytorch_register_ops=lambda registry: registry.op(
        "exits::twice", Double, samples=_raiser(lambda: SystemExit(0))))
    with use_runtime(Runtime([plugin], environ={})):
        assert main(["check", "exits"]) == 1
    assert "FAIL  exits::twice: SystemExit" in capsys.readouterr().out


def test_cli_check_names_a_sample_that_is_not_a_sample(capsys):
    """``check`` reported AttributeError: 'int' object has no attribute 'describe'."""
    plugin = _stage_plugin("oddsamples", tinytorch_register_ops=lambda registry: registry.op(
        "oddsamples::twice", Double, samples=lambda rng: iter([3])))
    with use_runtime(Runtime([plugin], environ={})):
        assert main(["check", "oddsamples"]) == 1
    assert "its samples callable yielded int 3 as sample 0, not a Sample" in capsys.readouterr().out


def test_cli_in_strict_mode_reports_the_broken_stage_on_every_call(capsys):
    broken = FakeEntryPoint("spatial", _raiser(lambda: SystemExit(1)), call=True,
                            distribution="tinytorch-spatial", version="9.9")
    with use_runtime(Runtime([broken], environ={"TINYTORCH_STRICT_PLUGINS": "1"})):
        for _ in range(2):
            assert main(["stages", "--json"]) == 1
            captured = capsys.readouterr()
            assert "tinytorch: error: tinytorch: plugin 'spatial' (tinytorch-spatial 9.9)" in captured.err
            rows = {r["stage"]: r for r in json.loads(captured.out)}
            assert rows["spatial"]["status"] == "failed" and "SystemExit" in rows["spatial"]["reason"]
            assert main(["plugins"]) == 1
            captured = capsys.readouterr()
            assert "spatial: failed: failed to load" in captured.out and "PluginLoadError" not in captured.out
            assert main(["check", "core"]) == 1  # any other command: the error, then a non-zero exit
            assert "tinytorch-spatial 9.9" in capsys.readouterr().err


# ---- registrations that would break everyone else's lookups ------------------------------------------------
def _registering(**hooks):
    hooks.setdefault("tinytorch_declare_stage", lambda declare: declare("odd", requires=("core",)))
    return plugin_module("odd_plugin", **hooks)


HOSTILE_REGISTRATIONS = {
    "symbol-name-not-a-string": dict(tinytorch_register_symbols=lambda registry: registry.layer(123, SwishLayer)),
    "symbol-name-dunder": dict(tinytorch_register_symbols=lambda registry: registry.layer("__class__", SwishLayer)),
    "stage-name-not-a-string": dict(tinytorch_declare_stage=lambda declare: declare(7, requires=("core",))),
    "stage-name-with-colons": dict(tinytorch_declare_stage=lambda declare: declare("a::b", requires=("core",))),
    "stage-requires-a-string": dict(tinytorch_declare_stage=lambda declare: declare("odd", requires="core")),
    "milestone-order-not-an-int": dict(tinytorch_register_milestones=lambda register: register(
        Milestone(name="m", year=1, title="t", requires=(), run=print, order="first"))),
    "milestone-name-not-a-string": dict(tinytorch_register_milestones=lambda register: register(
        Milestone(name=None, year=1, title="t", requires=(), run=print))),
    "command-name-with-spaces": dict(tinytorch_cli_commands=lambda commands: commands.add(
        "two words", help="h", setup=print, run=print)),
    "command-help-not-a-string": dict(tinytorch_cli_commands=lambda commands: commands.add(
        "fine", help=42, setup=print, run=print)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_REGISTRATIONS))
def test_registrations_that_would_break_other_lookups_are_refused(case, capsys):
    plugin = _registering(**HOSTILE_REGISTRATIONS[case])
    runtime = Runtime([FakeEntryPoint("odd", plugin), FakeEntryPoint("swish", swish_plugin())], environ={})
    (message,) = _load(runtime)
    assert "RegistrationError" in message
    assert runtime.plugins["odd"].status == "failed" and runtime.plugins["swish"].status == "loaded"
    with use_runtime(runtime):
        assert "Swish" in dir(tt.nn)
        with pytest.raises(AttributeError, match="did you mean Swish"):
            tt.nn.Swissh
        assert main(["stages"]) == 0 and main(["plugins", "--json"]) == 0
    sorted(runtime.milestones.values(), key=lambda m: (m.order, m.year, m.name))  # as `milestones list` sorts
    capsys.readouterr()


def test_running_a_plugin_command_whose_setup_failed_says_why(capsys):
    plugin = plugin_module(
        "cmd_plugin",
        tinytorch_declare_stage=lambda declare: declare("cmdp", requires=("core",)),
        tinytorch_cli_commands=lambda commands: commands.add(
            "boom", help="exits in setup", setup=_raiser(lambda: SystemExit(4)), run=lambda a, r: 0),
    )
    with use_runtime(Runtime([FakeEntryPoint("cmdp", plugin)], environ={})):
        assert main(["boom"]) == 1
    assert "command 'boom' from plugin 'cmdp' is broken: SystemExit(4)" in capsys.readouterr().err


def test_core_commands_print_plugin_text_with_markup_literally(capsys):
    markup = "[red]T[/] [/]"
    plugin = plugin_module(
        "markup",
        tinytorch_declare_stage=lambda declare: declare("markup", requires=("core",), title=markup),
        tinytorch_register_symbols=_raiser(lambda: RuntimeError(markup)),
    )
    with use_runtime(Runtime([FakeEntryPoint("markup", plugin)], environ={})):
        assert main(["stages"]) == 0 and main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert markup in captured.out and f"RuntimeError: {markup}" in captured.err


def test_a_stage_that_requires_itself_says_so_and_a_generator_of_requirements_counts():
    """``requires=('x',)`` on stage x said "which is pending"; a generator was used up by the type
    check, and the stage then required nothing."""
    itself = plugin_module("selfish", tinytorch_declare_stage=lambda declare: declare("selfish", requires=("selfish",)))
    runtime = Runtime([FakeEntryPoint("selfish", itself)], environ={})
    runtime.load()
    assert "requires stage 'selfish', which is itself" in runtime.plugins["selfish"].reason
    lazy = plugin_module("lazy", tinytorch_declare_stage=lambda declare: declare(
        "lazy", requires=(name for name in ("no-such-stage",))))
    runtime = Runtime([FakeEntryPoint("lazy", lazy)], environ={})
    runtime.load()
    assert runtime.plugins["lazy"].status != "loaded"
    assert "requires stage 'no-such-stage'" in runtime.plugins["lazy"].reason
