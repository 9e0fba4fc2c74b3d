"""Import contracts, generated from the stage catalog: a package may import only core and the
stages it requires (transitively). import-linter checks the real import graph, including
imports inside functions."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinytorch_core import catalog

ALL = [p for p in catalog.PACKAGES]


def allowed_packages(pkg) -> set[str]:
    return {p.package for p in catalog.prerequisites(pkg.name)}


def contracts_ini(extra_forbidden: dict[str, list[str]] | None = None) -> str:
    lines = ["[importlinter]", "root_packages ="]
    lines += [f"    {p.package}" for p in ALL]
    for pkg in ALL:
        forbidden = sorted({p.package for p in ALL} - allowed_packages(pkg))
        forbidden += (extra_forbidden or {}).get(pkg.package, [])
        if not forbidden:
            continue
        lines += [
            "",
            f"[importlinter:contract:{pkg.name}]",
            f"name = {pkg.package} imports only what its stage requires",
            "type = forbidden",
            "source_modules =",
            f"    {pkg.package}",
            "forbidden_modules =",
        ]
        lines += [f"    {m}" for m in forbidden]
    return "\n".join(lines) + "\n"


def lint(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    config = tmp_path / "contracts.ini"
    config.write_text(text)
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run(command + [str(config), "--no-cache"], capture_output=True, text=True)


def test_every_package_imports_only_its_prerequisites(tmp_path):
    for pkg in ALL:
        pytest.importorskip(pkg.package, reason=f"{pkg.distribution} not installed")
    result = lint(tmp_path, contracts_ini())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_the_contract_check_can_fail(tmp_path):
    # nn really imports core: forbidding it must be reported, or the check above proves nothing
    pytest.importorskip("tinytorch_nn")
    result = lint(tmp_path, contracts_ini({"tinytorch_nn": ["tinytorch_core"]}))
    assert result.returncode != 0
    assert "tinytorch_nn" in result.stdout and "tinytorch_core" in result.stdout
