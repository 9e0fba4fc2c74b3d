"""``tinytorch new-plugin``: name checks, the generated project, and that project installed in a
fresh environment, where its own tests and ``tinytorch check`` pass."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tinytorch_core import catalog, scaffold
from tinytorch_core.cli import main
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint, plugin_module

REPO = Path(__file__).resolve().parents[1]


# ---- names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, message",
    [
        ("", "the plugin name is empty"),
        ("My-Ops", r"'My-Ops' is not a valid plugin name: .* lower-case Python identifier.*; try 'my_ops'"),
        ("Swish", r"'Swish' is not a valid plugin name: .*; try 'swish'"),
        ("2fast", r"'2fast' is not a valid plugin name: .*starting with a letter"),
        ("_private", "is not a valid plugin name"),
        ("with space", r"try 'with_space'"),
        ("class", "'class' is a Python keyword"),
        ("spatial", r"'spatial' is a stage of the TinyTorch curriculum \(tinytorch-spatial\)"),
        ("core", "'core' is a stage of the TinyTorch curriculum"),
        ("milestones", r"'milestones' is a TinyTorch package \(tinytorch-milestones\)"),
    ],
)
def test_invalid_names_are_refused_with_the_reason(name, message):
    with pytest.raises(scaffold.ScaffoldError, match=message):
        scaffold.validate_name(name)


@pytest.mark.parametrize("name", ["swish", "my_ops", "conv3d", "a"])
def test_valid_names(name):
    assert scaffold.validate_name(name) == name


def test_requires_must_be_catalog_stages_and_come_out_in_curriculum_order():
    assert scaffold.validate_requires(None) == ("nn",)
    assert scaffold.validate_requires(["attention", "nn", "attention"]) == ("nn", "attention")
    with pytest.raises(scaffold.ScaffoldError, match="unknown stage 'vision'; the stages are core, nn, spatial"):
        scaffold.validate_requires(["vision"])
    with pytest.raises(scaffold.ScaffoldError, match="unknown stage 'milestones'"):
        scaffold.validate_requires(["milestones"])
    with pytest.raises(scaffold.ScaffoldError, match="at least one stage"):
        scaffold.validate_requires([])


# ---- the generated project ----------------------------------------------------------------------------
def test_generated_project_has_every_file_and_they_compile(tmp_path):
    created = scaffold.create_plugin("demo_ops", directory=tmp_path / "out", requires=["spatial"])
    assert created.spec.distribution == "tinytorch-demo-ops" and created.spec.package == "tinytorch_demo_ops"
    files = sorted(str(p.relative_to(created.path)) for p in created.path.rglob("*") if p.is_file())
    assert files == sorted(created.files) == sorted([
        "README.md", "pyproject.toml", "tests/test_demo_ops_layers.py", "tests/test_demo_ops_ops.py",
        "tinytorch_demo_ops/__init__.py", "tinytorch_demo_ops/layers.py", "tinytorch_demo_ops/ops.py",
        "tinytorch_demo_ops/plugin.py",
    ])
    for path in created.path.rglob("*"):
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        assert "{{" not in text and "}}" not in text, f"unfilled placeholder in {path.name}"
        if path.suffix == ".py":
            compile(text, str(path), "exec")
    plugin = (created.path / "tinytorch_demo_ops" / "plugin.py").read_text()
    assert 'declare("demo_ops", requires=("spatial",)' in plugin
    assert '"demo_ops::scaled_softplus"' in plugin and 'registry.layer("ScaledSoftplus"' in plugin
    readme = (created.path / "README.md").read_text()
    assert catalog.install_command("spatial") in readme and "pip install ./out" in readme


def test_pyproject_has_the_entry_point_and_the_stage_dependencies(tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    created = scaffold.create_plugin("demo_ops", directory=tmp_path / "p", requires=["attention", "spatial"])
    project = tomllib.loads((created.path / "pyproject.toml").read_text())
    assert project["project"]["name"] == "tinytorch-demo-ops"
    assert project["project"]["dependencies"] == [
        "tinytorch-core>=0.1.0", "tinytorch-spatial>=0.1.0", "tinytorch-attention>=0.1.0"
    ]
    assert project["project"]["entry-points"]["tinytorch.stages"] == {"demo_ops": "tinytorch_demo_ops.plugin"}
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["tinytorch_demo_ops"]
    only_core = scaffold.create_plugin("tiny", directory=tmp_path / "q", requires=["core"])
    assert tomllib.loads((only_core.path / "pyproject.toml").read_text())["project"]["dependencies"] == [
        "tinytorch-core>=0.1.0"
    ]


# ---- the command ------------------------------------------------------------------------------------
def test_cli_creates_the_default_folder_and_prints_next_steps(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with use_runtime(Runtime([])):
        assert main(["new-plugin", "swishy"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "tinytorch-swishy" / "tinytorch_swishy" / "plugin.py").is_file()
    assert "Created plugin 'swishy' in tinytorch-swishy/" in out
    assert "pip install ./tinytorch-swishy" in out and "tinytorch check swishy" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["new-plugin", "Bad-Name"], "not a valid plugin name"),
        (["new-plugin", "nn"], "'nn' is a stage of the TinyTorch curriculum"),
        (["new-plugin", "fine", "--requires", "nn", "vision"], "unknown stage 'vision'"),
    ],
)
def test_cli_errors_exit_non_zero_and_create_nothing(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with use_runtime(Runtime([])):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinytorch new-plugin: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_an_existing_folder_and_leaves_it_alone(tmp_path, capsys):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with use_runtime(Runtime([])):
        assert main(["new-plugin", "fresh", "--dir", str(target)]) == 2
    assert f"'{target}' already exists" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_cli_notes_a_plugin_of_the_same_name_already_installed(tmp_path, capsys):
    installed = plugin_module("dup", tinytorch_declare_stage=lambda declare: declare("dup", requires=("core",)))
    with use_runtime(Runtime([FakeEntryPoint("dup", installed, distribution="tinytorch-dup")], environ={})):
        assert main(["new-plugin", "dup", "--dir", str(tmp_path / "dup")]) == 0
    err = capsys.readouterr().err
    assert "plugin 'dup' (tinytorch-dup 0.0.test) already provides 'dup'" in err
    assert (tmp_path / "dup" / "pyproject.toml").is_file()


# ---- installed in a fresh environment ---------------------------------------------------------------
@pytest.fixture(scope="module")
def scaffold_venv(tmp_path_factory, uv, clean_environ, make_venv):
    """A fresh venv with tinytorch-core and tinytorch-nn built from this repository, and pytest."""
    root = tmp_path_factory.mktemp("scaffold-venv")
    env = clean_environ()
    bin_dir = make_venv(root / "venv", REPO, REPO / "plugins" / "nn", "pytest", env=env)
    where = run([str(bin_dir / "python"), "-c", "import tinytorch_core; print(tinytorch_core.__file__)"],
                cwd=root, env=env)
    assert "site-packages" in where.stdout, f"tinytorch-core is not an installed copy: {where.stdout}"
    return uv, root / "venv", env


def run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, **kwargs)


def test_scaffolded_plugin_installs_passes_its_tests_and_its_check(scaffold_venv, tmp_path):
    uv, venv, env = scaffold_venv
    bin_dir = venv / "bin"
    # the installed (not editable) tinytorch scaffolds, so the templates are part of the built wheel
    made = run([str(bin_dir / "tinytorch"), "new-plugin", "demo_ops"], cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "tinytorch-demo-ops"
    installed = run([uv, "pip", "install", "--python", str(bin_dir / "python"), str(project)], env=env)
    assert installed.returncode == 0, installed.stderr

    tests = run([str(bin_dir / "pytest"), "-q", "-p", "no:cacheprovider", str(project)], cwd=tmp_path, env=env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed.group(1)) >= 10 and "failed" not in tests.stdout, tests.stdout

    check = run([str(bin_dir / "tinytorch"), "check", "demo_ops"], cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok    demo_ops::scaled_softplus  (3 samples)" in check.stdout
    assert "1 op(s) checked, 0 failure(s)" in check.stdout

    listed = run([str(bin_dir / "tinytorch"), "plugins", "--json"], cwd=tmp_path, env=env)
    record = next(p for p in json.loads(listed.stdout) if p["name"] == "demo_ops")
    assert (record["status"], record["distribution"], record["stage"]) == ("loaded", "tinytorch-demo-ops", "demo_ops")
    assert record["ops"] == ["demo_ops::scaled_softplus"] and record["symbols"] == ["nn.ScaledSoftplus"]
