"""The stage ladder: one fresh environment per rung, installed from the stage folders the way a
learner does it, proves that each stage works with only its predecessors and that the next
stage is reported missing with the right install command. Also runs the README's plain-pip path.

These tests build virtual environments with uv (slow: minutes). Deselect them locally with
``-m "not ladder"``; CI runs them through the README's test command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinytorch_core import catalog

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.ladder


def run(command, cwd=None, env=None, check=True, timeout=900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        pytest.fail(f"command failed ({result.returncode}): {' '.join(map(str, command))}\n"
                    f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}")
    return result


RUNGS = [stage.name for stage in catalog.STAGES]


def folders_up_to(index: int) -> list[str]:
    return [str(REPO / s.folder) for s in catalog.STAGES[: index + 1]]


def stage_test_paths(stage: catalog.Package) -> list[str]:
    if stage.name == "core":
        return sorted(str(p) for p in (REPO / "tests").glob("test_core_*.py"))
    return [str(REPO / stage.folder / "tests")]


SYMBOL_PROBE = textwrap.dedent(
    """
    import json, sys
    import tinytorch_core
    from tinytorch_core import catalog, MissingStageError
    stage = catalog.stage(sys.argv[1])
    report = {"core_file": tinytorch_core.__file__, "missing": [], "wrong": []}
    for namespace, names in stage.symbols.items():
        for name in names:
            try:
                getattr(getattr(tinytorch_core, namespace), name)
            except MissingStageError as exc:
                if catalog.install_command(stage.name) in str(exc) and stage.name in str(exc):
                    report["missing"].append(f"{namespace}.{name}")
                else:
                    report["wrong"].append(f"{namespace}.{name}: {exc}")
            except Exception as exc:
                report["wrong"].append(f"{namespace}.{name}: {type(exc).__name__}: {exc}")
            else:
                report["wrong"].append(f"{namespace}.{name}: resolved although the stage is not installed")
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def ladder_root(tmp_path_factory):
    return tmp_path_factory.mktemp("ladder")


@pytest.mark.parametrize("index", range(len(RUNGS)), ids=RUNGS)
def test_rung(index, ladder_root, clean_environ, make_venv):
    stage = catalog.STAGES[index]
    env = clean_environ()
    bin_dir = make_venv(ladder_root / f"rung-{index}-{stage.name}", "pytest", "hypothesis", *folders_up_to(index),
                        REPO / catalog.MILESTONES.folder, env=env)

    # the stage's own tests pass, against the installed packages (not the source tree)
    run([bin_dir / "pytest", "-q", "-p", "no:cacheprovider", "-m", "not ladder", *stage_test_paths(stage)],
        cwd=REPO, env=env)

    # every symbol of the next stage is reported missing, with that stage's install command
    if index + 1 < len(RUNGS):
        probe = run([bin_dir / "python", "-c", SYMBOL_PROBE, RUNGS[index + 1]], cwd=ladder_root, env=env)
        report = json.loads(probe.stdout)
        assert "site-packages" in report["core_file"], report["core_file"]
        assert not report["wrong"], report["wrong"]
        assert report["missing"], "the next stage introduces no symbols?"

    # milestones: the ones this rung unlocks verify, later ones report locked with install commands
    check_milestones(bin_dir, index, env, ladder_root)


def check_milestones(bin_dir: Path, index: int, env: dict, workdir: Path) -> None:
    installed = set(RUNGS[: index + 1])
    listing = json.loads(run([bin_dir / "tinytorch", "milestones", "list", "--json"], cwd=workdir, env=env).stdout)
    newly_unlocked = []
    for m in listing:
        needed = {p.name for pkg in m["requires"] for p in catalog.prerequisites(pkg)}
        if needed <= installed:
            assert m["status"] == "unlocked", m
            if any(r == RUNGS[index] for r in m["requires"]) and not m["extended"]:  # extended: minutes of training
                newly_unlocked.append(m["name"])
        else:
            assert m["status"] == "locked", m
            assert m["install"] == catalog.install_command(*sorted(needed - installed)), m
    if not newly_unlocked and index > 0:
        return  # nothing new to verify at this rung; the earlier rungs verified the rest
    result_file = workdir / f"verify-{index}.json"
    verify = run([bin_dir / "tinytorch", "milestones", "verify", *newly_unlocked, "--json", result_file],
                 cwd=workdir, env=env, check=False)
    assert verify.returncode == 0, verify.stdout[-4000:] + verify.stderr[-4000:]
    if newly_unlocked:
        results = json.loads(result_file.read_text())
        statuses = {r["name"]: r["status"] for r in results["milestones"]}
        assert all(statuses[n] == "passed" for n in newly_unlocked), statuses


def readme_pip_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Stage by stage with plain pip", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [c for c in commands if c]


def test_readme_plain_pip_path(tmp_path, clean_environ):
    commands = readme_pip_commands()
    assert commands[0].startswith("python -m venv") and commands[1].startswith(". ")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    bin_dir = venv / "bin"
    env = clean_environ()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    outputs = {}
    for command in commands[2:]:
        argv = command.split()
        if argv[0] == "pip":
            argv = [bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *argv[2:]]
        elif argv[0] == "tinytorch":
            argv = [bin_dir / "tinytorch", *argv[1:]]
        outputs[command] = run(argv, cwd=REPO, env=env).stdout
    stages_output = next(v for k, v in outputs.items() if k.startswith("tinytorch stages"))
    assert "pip install . ./plugins/nn" in stages_output
    verify_output = next(v for k, v in outputs.items() if k.startswith("tinytorch milestones verify"))
    assert "locked" in verify_output.lower()
