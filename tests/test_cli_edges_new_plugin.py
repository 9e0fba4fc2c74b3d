"""``tinytorch new-plugin`` edges: names that are not valid as a stage, a package, a file name and a
distribution name at once; target folders that cannot be created. Every refusal is a
``ScaffoldError`` (exit 2 from the command, one line, no traceback) and leaves nothing behind."""

from __future__ import annotations

import os
import random
import re
import string
import subprocess
import sys

import pytest

from tinytorch_core import scaffold
from tinytorch_core.cli import main
from tinytorch_core.host.runtime import Runtime, use_runtime

PEP_508_NAME = re.compile(r"([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE)


def _valid_everywhere(name: str) -> None:
    spec = scaffold.PluginSpec(name, ("nn",))
    assert PEP_508_NAME.match(spec.distribution), spec.distribution
    assert spec.package.isidentifier() and spec.package.isascii()
    for relative in scaffold.render(spec):
        for part in relative.split("/"):
            assert len(part.encode()) < 255 and "\\" not in part and part not in (".", "..")


# ---- names ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, message",
    [
        ("a_", r"'a_' is not a valid plugin name: .*ending with a letter or digit.*; try 'a'"),
        ("a__b", r"words joined by single '_'.*; try 'a_b'"),
        ("_a", "is not a valid plugin name"),
        ("a-", r"; try 'a'"),
        ("a" * 65, "it is 65 characters long; give a lower-case Python identifier of at most 64 characters"),
        ("a" * 300, r"'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\.\.\.' is not a valid plugin name: it is 300 characters"),
        ("x/y", r"is not a valid plugin name.*; try 'x_y'"),
        ("../evil", r"is not a valid plugin name.*; try 'evil'"),
        ("a\\b", "is not a valid plugin name"),
        ("swish\n", r"'swish\\n' is not a valid plugin name"),
        ("ünï", "is not a valid plugin name"),
        ("a.b", "is not a valid plugin name"),
        ("1abc", "starting with a letter"),
        ("", "the plugin name is empty"),
        ("core", "is a stage of the TinyTorch curriculum"),
        ("attention", "is a stage of the TinyTorch curriculum"),
        ("milestones", "is a TinyTorch package"),
    ],
)
def test_names_that_cannot_be_a_package_file_and_distribution_are_refused(name, message):
    with pytest.raises(scaffold.ScaffoldError, match=message):
        scaffold.validate_name(name)


@pytest.mark.parametrize("name", ["a", "a1", "a_b", "x2_y3", "a" * 64, "conv3d_fast"])
def test_accepted_names_are_valid_everywhere(name):
    assert scaffold.validate_name(name) == name
    _valid_everywhere(name)


def test_every_name_the_check_accepts_is_valid_everywhere():
    rng = random.Random(0)
    alphabet = string.ascii_lowercase[:4] + "019_-." + "A/"
    accepted = 0
    for _ in range(3000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        try:
            scaffold.validate_name(name)
        except scaffold.ScaffoldError:
            continue
        accepted += 1
        _valid_everywhere(name)
    assert accepted > 100


@pytest.mark.parametrize("name", ["a_", "a" * 300, "x/y", "../evil", "1abc"])
def test_cli_refuses_bad_names_with_exit_2_and_creates_nothing(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    with use_runtime(Runtime([], environ={})):
        assert main(["new-plugin", name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinytorch new-plugin: error: ") and err.count("\n") == 1 and len(err) < 800
    assert list(tmp_path.iterdir()) == []


def test_real_command_with_a_300_character_name_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tinytorch_core", "new-plugin", "a" * 300], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a valid plugin name: it is 300 characters long" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---- target folders --------------------------------------------------------------------------------------------
def _targets(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    return {
        "existing-empty-folder": (str(tmp_path / "empty"), "already exists"),
        "existing-file": (str(a_file), "already exists"),
        "dangling-link": (str(tmp_path / "dangling"), "already exists"),
        "dot-dot-back-to-an-existing-folder": (str(tmp_path / "new" / ".."), "already exists"),
        "under-a-file": (str(a_file / "sub"), "is not a folder"),
        "deep-under-a-file": (str(a_file / "a" / "b"), "is not a folder"),
        "name-too-long": (str(tmp_path / ("b" * 300)), "File name too long"),
        "empty": ("", "--dir is empty"),
        "nul": ("a\0b", "NUL character"),
    }


@pytest.mark.parametrize("case", [
    "existing-empty-folder", "existing-file", "dangling-link", "dot-dot-back-to-an-existing-folder", "under-a-file",
    "deep-under-a-file", "name-too-long", "empty", "nul",
])
def test_target_folders_that_cannot_be_created_are_refused_and_left_alone(tmp_path, capsys, case):
    target, message = _targets(tmp_path)[case]
    before = sorted(os.listdir(tmp_path))
    with use_runtime(Runtime([], environ={})):
        assert main(["new-plugin", "fresh", "--dir", target]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinytorch new-plugin: error: ") and message in err, err
    assert sorted(os.listdir(tmp_path)) == before
    assert (tmp_path / "file.txt").read_text() == "x"


def test_an_unwritable_place_is_an_error_not_a_traceback(capsys):
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    with use_runtime(Runtime([], environ={})):
        assert main(["new-plugin", "fresh", "--dir", "/proc/tinytorch-fresh"]) == 2
    assert "tinytorch new-plugin: error: cannot create '/proc/tinytorch-fresh'" in capsys.readouterr().err


def test_a_failure_half_way_removes_the_folders_it_created(tmp_path, monkeypatch):
    real_render = scaffold.render

    def render_then_break(spec, folder=None):
        files = real_render(spec, folder)
        files["tests/" + "z" * 300 + ".py"] = "# too long a name: the write fails after others succeeded\n"
        return files

    monkeypatch.setattr(scaffold, "render", render_then_break)
    with pytest.raises(scaffold.ScaffoldError, match="cannot create .*File name too long"):
        scaffold.create_plugin("fresh", directory=tmp_path / "new" / "deeper" / "plugin")
    assert list(tmp_path.iterdir()) == []  # "new" and "deeper" were created by the call: gone again


def test_folder_names_are_quoted_in_the_commands_shown(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with use_runtime(Runtime([], environ={})):
        assert main(["new-plugin", "spaced", "--dir", "my plugin"]) == 0
    out = capsys.readouterr().out
    assert "pip install './my plugin'" in out and "pytest './my plugin'" in out
    assert "pip install ./'my plugin'" in (tmp_path / "my plugin" / "README.md").read_text()


def test_a_new_plugin_never_overwrites_a_file(tmp_path, monkeypatch):
    """Two files of the project rendered to one path (a template bug) fail instead of overwriting."""
    real_render = scaffold.render
    monkeypatch.setattr(scaffold, "render", lambda spec, folder=None: {**real_render(spec, folder), "./README.md": "x"})
    with pytest.raises(scaffold.ScaffoldError, match="File exists"):
        scaffold.create_plugin("fresh", directory=tmp_path / "p")
    assert list(tmp_path.iterdir()) == []
