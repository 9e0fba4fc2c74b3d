"""Fixtures for the tests that install TinyTorch into fresh environments the way a user does
(the stage ladder, the learner's provider, the scaffolded plugin, the plugin-authoring tutorial).

They are fixtures rather than importable helpers because pytest runs with
``--import-mode=importlib``, where test folders are not on ``sys.path``. ``clean_environ`` and
``make_venv`` are factories: call them as the functions they return.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: variables that would point a fresh environment back at this one
LEAKING_VARIABLES = ("VIRTUAL_ENV", "UV_PYTHON", "UV_SYSTEM_PYTHON", "UV_PROJECT_ENVIRONMENT")
LEAKING_PREFIXES = ("TINYTORCH_", "PYTEST_", "PYTHON")


@pytest.fixture(scope="session")
def uv() -> str:
    """The uv binary: ``$UV`` (``uv run`` sets it for its children) or ``uv`` on PATH.

    Without one, a test that needs it fails when ``CI`` is set (CI must run it) and is
    skipped elsewhere.
    """
    found = os.environ.get("UV") or shutil.which("uv")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("uv not found, and CI is set: this test builds a fresh environment with uv")
    pytest.skip("uv not found (neither $UV nor uv on PATH): this test builds a fresh environment with uv")


def _clean_environ() -> dict:
    """The calling environment minus an active virtualenv, Python path tweaks, uv project
    settings and TinyTorch plugin switches: what would leak into a fresh environment."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(LEAKING_PREFIXES) and k not in LEAKING_VARIABLES}


@pytest.fixture(scope="session")
def clean_environ():
    """A factory: ``clean_environ()`` is a new dict of the environment a fresh one should see."""
    return _clean_environ


def _run_or_raise(command: list[str], env: dict) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def make_venv(uv):
    """A factory: ``make_venv(path, *install, env=None)`` creates a virtualenv at ``path`` with
    uv, installs ``install`` (folders or requirements) into it as pip would, and returns its
    ``bin`` folder. ``--no-sources`` ignores ``[tool.uv.sources]``, which would otherwise link
    workspace members editable."""

    def make(path, *install, env: dict | None = None) -> Path:
        env = _clean_environ() if env is None else env
        path = Path(path)
        _run_or_raise([uv, "venv", "--quiet", "--python", sys.executable, str(path)], env)
        if install:
            _run_or_raise([uv, "pip", "install", "--quiet", "--no-sources", "--python",
                           str(path / "bin" / "python"), *map(str, install)], env)
        return path / "bin"

    return make


@pytest.fixture
def race():
    """``race(*functions)``: run each in its own thread at once, with Python switching threads as
    often as it can (a read-modify-write without a lock then loses updates within a few hundred)."""

    def run_together(*functions) -> None:
        import threading

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            threads = [threading.Thread(target=function) for function in functions]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(interval)

    return run_together
