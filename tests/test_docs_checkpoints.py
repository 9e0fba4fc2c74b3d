"""The README's "Train, save, resume" example runs as written, and docs/checkpoints.md names
tests and files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_train_save_resume_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("tinytorch_milestones")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Train, save, resume"):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "run.safetensors").is_file()
    assert set(namespace["state"]) == {"model", "optimizer"}


def test_the_checkpoints_page_names_files_that_exist():
    page = (REPO / "docs" / "checkpoints.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:plugins|tests)/[\w/.-]+\.py)`", page))
    assert len(paths) >= 4
    for path in paths:
        assert (REPO / path).is_file(), path
    for part in re.findall(r"`checkpoint/(\w+\.py)`", page):
        assert (REPO / "plugins/nn/tinytorch_nn/checkpoint" / part).is_file(), part
