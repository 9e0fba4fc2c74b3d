"""The real command with a broken plugin installed, and plugins that block while they load,
reach other stages too early, or are chosen with a malformed TINYTORCH_PROVIDERS: each is
refused or said, and every command still finishes."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest

import tinytorch_core as tt
from tinytorch_core.cli import main
from tinytorch_core.host import hookspecs
from tinytorch_core.host.errors import PluginWarning
from tinytorch_core.host.runtime import FAILED, LOADED, Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint, plugin_module


def _blocking_plugins():
    """One plugin whose import blocks, one whose registration hook blocks (a sleep, a wait on
    input or a lock): each hung every tinytorch command, `stages` and `plugins` included."""
    never = threading.Event()

    def blocks_at_import():
        never.wait()

    def blocks_at_registration(registry):
        never.wait()

    importing = FakeEntryPoint("hangs_importing", blocks_at_import, call=True)
    registering = FakeEntryPoint("hangs_registering", plugin_module(
        "hangs_registering", tinytorch_declare_stage=lambda declare: declare("hangs_registering", requires=("core",)),
        tinytorch_register_symbols=blocks_at_registration))
    return [importing, registering]


def test_a_plugin_that_blocks_is_refused_after_the_timeout_and_the_rest_loads(capsys):
    entry_points = sorted(metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    runtime = Runtime(entry_points + _blocking_plugins(), environ={"TINYTORCH_PLUGIN_TIMEOUT": "0.3"})
    started = time.perf_counter()
    with use_runtime(runtime):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(["stages"]) == 0
    assert time.perf_counter() - started < 10
    for name, what in (("hangs_importing", "its import"), ("hangs_registering", "its registration hooks")):
        assert runtime.plugins[name].status == FAILED
        assert f"{what} did not finish within 0.3 s (TINYTORCH_PLUGIN_TIMEOUT)" in runtime.plugins[name].reason
    assert all(runtime.stage_status(s)[0] == LOADED for s in ("nn", "spatial", "attention"))


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan", "1e10"])
def test_a_plugin_timeout_that_is_not_a_positive_number_warns_and_keeps_the_default(value):
    runtime = Runtime([], environ={"TINYTORCH_PLUGIN_TIMEOUT": value})
    with pytest.warns(PluginWarning, match="TINYTORCH_PLUGIN_TIMEOUT=.* is not a number of seconds > 0"):
        assert runtime.plugin_timeout == 15.0


@pytest.mark.parametrize("body", [
    "import time\ntime.sleep(3600)\n",
    # an executor thread that never ends, then a block: interpreter shutdown joins executor threads
    "import threading\nfrom concurrent.futures import ThreadPoolExecutor\n"
    "ThreadPoolExecutor(1).submit(threading.Event().wait)\nthreading.Event().wait()\n",
    "from tinytorch_core import hookimpl\nimport threading\n\n@hookimpl\ndef tinytorch_register_ops(registry):\n"
    "    threading.Event().wait()\n",
], ids=["sleeps-at-import", "leaves-an-executor-and-blocks", "waits-in-a-hook"])
def test_real_cli_with_an_installed_plugin_that_blocks_finishes(tmp_path, body):
    _install_broken_plugin(tmp_path, body)
    started = time.perf_counter()
    result = _run_cli(tmp_path, "plugins", TINYTORCH_PLUGIN_TIMEOUT="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.perf_counter() - started < 60
    assert "did not finish within 1 s" in result.stderr and "Traceback" not in result.stderr
    assert "nn" in result.stdout


_COMMANDS = """
from tinytorch_core import hookimpl
import threading

@hookimpl
def tinytorch_cli_commands(commands):
    commands.add("evil-block", help="blocks", setup=lambda parser: threading.Event().wait(), run=lambda a, r: 0)
    commands.add("evil-percent", help="100% better, %(prog)s", setup=lambda parser: None, run=lambda a, r: 0)
"""


def test_real_cli_with_a_plugin_command_whose_setup_blocks_or_whose_help_holds_percent(tmp_path):
    """Setup ran on the main thread with no limit: every command hung. A % in the help crashed
    ``tinytorch --help`` (argparse formats help text with %)."""
    _install_broken_plugin(tmp_path, _COMMANDS)
    result = _run_cli(tmp_path, "stages", TINYTORCH_PLUGIN_TIMEOUT="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "command 'evil-block' from plugin 'evilplugin' is broken" in result.stderr
    assert "did not finish within 1 s" in result.stderr and "nn" in result.stdout
    helped = _run_cli(tmp_path, "--help", TINYTORCH_PLUGIN_TIMEOUT="1")
    assert helped.returncode == 0 and "100% better, %(prog)s" in " ".join(helped.stdout.split())
    assert "Traceback" not in result.stderr + helped.stderr


@pytest.mark.parametrize("entry_name", ["aaa_eager", "zzz_eager"])
def test_a_plugin_reaching_a_stage_at_import_is_told_plugins_are_still_loading(entry_name):
    """It was told nn 'is not installed' (nn not imported yet) or 'did not register it'."""
    def import_uses_nn():
        tt.nn.Linear  # noqa: B018 - the access is the point
        return plugin_module(entry_name)

    entry_points = sorted(metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    runtime = Runtime(entry_points + [FakeEntryPoint(entry_name, import_uses_nn, call=True)], environ={})
    with use_runtime(runtime), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime.load()
        assert tt.nn.Linear is not None  # nn itself loaded
    reason = runtime.plugins[entry_name].reason
    assert "StageStillLoadingError" in reason and "stage 'nn', which is not loaded yet" in reason
    assert "not installed" not in reason


@pytest.mark.parametrize("value", ["garbage", "=tinytorch-nn", "nn="])
def test_a_provider_choice_that_is_not_stage_equals_distribution_is_said_not_ignored_silently(value):
    with pytest.warns(PluginWarning, match=f"TINYTORCH_PROVIDERS: '{value}' is not stage=distribution"):
        Runtime([], environ={"TINYTORCH_PROVIDERS": f"{value},spatial=tinytorch-spatial"}).load()


# ---- the real command, with a broken plugin installed ----------------------------------------------------
def _install_broken_plugin(root, body: str, name="evilplugin", version="1.0"):
    (root / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[tinytorch.stages]\n{name} = {name}\n", encoding="utf-8")


def _run_cli(root, *args, **extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTORCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra_env)
    return subprocess.run([sys.executable, "-m", "tinytorch_core", *args], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("body", [
    "import sys\nsys.exit(3)\n",
    "raise SystemExit('plugin says bye')\n",
    "from tinytorch_core import hookimpl\n\n@hookimpl\ndef tinytorch_register_ops(registry):\n    raise SystemExit(5)\n",
], ids=["sys.exit-at-import", "SystemExit-at-import", "SystemExit-in-a-hook"])
def test_real_cli_with_an_installed_plugin_that_calls_sys_exit(tmp_path, body):
    _install_broken_plugin(tmp_path, body)
    result = _run_cli(tmp_path, "stages")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plugin 'evilplugin' (evilplugin 1.0)" in result.stderr and "SystemExit" in result.stderr
    assert "Traceback" not in result.stderr
    assert "core" in result.stdout and "nn" in result.stdout

    strict = _run_cli(tmp_path, "stages", TINYTORCH_STRICT_PLUGINS="1")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "tinytorch: error:" in strict.stderr and "plugin 'evilplugin' (evilplugin 1.0)" in strict.stderr
    assert "Traceback" not in strict.stderr

    listed = _run_cli(tmp_path, "plugins", "--json")
    assert listed.returncode == 0
    record = next(p for p in json.loads(listed.stdout) if p["name"] == "evilplugin")
    assert record["status"] == "failed" and "SystemExit" in record["reason"]


def test_real_python_import_in_strict_mode_raises_plugin_load_error_not_system_exit(tmp_path):
    _install_broken_plugin(tmp_path, "import sys\nsys.exit(3)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTORCH_")}
    env.update(PYTHONPATH=str(tmp_path), TINYTORCH_STRICT_PLUGINS="1")
    code = textwrap.dedent("""
        import importlib
        import tinytorch_core as tt
        import tinytorch_core.host.runtime as host_runtime

        def attempt(access):
            try:
                access()
            except tt.PluginLoadError as exc:
                print("PluginLoadError", type(exc.__cause__).__name__, exc.__cause__.code)
            else:
                print("no error")

        attempt(lambda: tt.nn.Linear)
        attempt(lambda: tt.nn.Linear)
        attempt(lambda: tt.ops.relu)
        importlib.reload(host_runtime)  # a runtime reloaded in the same process
        attempt(lambda: tt.nn.Linear)
        attempt(lambda: host_runtime.Runtime().load())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["PluginLoadError SystemExit 3"] * 5


def test_a_plugin_raising_keyboard_interrupt_itself_is_its_failure_not_the_users():
    """A real Ctrl-C reaches the loading thread; one raised by a plugin's own code in the worker
    took down every command and every later access (each retried the load)."""
    def interrupts():
        raise KeyboardInterrupt("plugin")

    entry_points = sorted(metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    runtime = Runtime(entry_points + [FakeEntryPoint("interrupter", interrupts, call=True)], environ={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime.load()
    record = runtime.plugins["interrupter"]
    assert record.status == FAILED and "raised KeyboardInterrupt(plugin) itself" in record.reason
    assert runtime.stage_status("nn")[0] == LOADED


def test_a_declaration_made_after_the_hook_timed_out_is_refused():
    """A declare() from the thread left behind wrote the stage into the runtime after the load."""
    finished = threading.Event()

    def declares_late(declare):
        time.sleep(0.6)
        try:
            declare("latestage", requires=("core",))
        finally:
            finished.set()

    late = FakeEntryPoint("late", plugin_module("late", tinytorch_declare_stage=declares_late))
    runtime = Runtime([late], environ={"TINYTORCH_PLUGIN_TIMEOUT": "0.2"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime.load()
    assert finished.wait(5)
    assert "latestage" not in runtime.stages and runtime.plugins["late"].status == FAILED

