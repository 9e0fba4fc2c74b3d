"""The walk-throughs in docs/architecture.md name code as ``path::qualified.name``; every one
of them must exist, so the walk cannot drift from the code without a failing test."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"`([\w./-]+\.py)::([\w.]+)`")


def defined_names(path: Path) -> set[str]:
    """Every qualified name a module defines: ``f``, ``Class``, ``Class.method``, ``CONSTANT``."""
    names: set[str] = set()

    def visit(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(prefix + child.name)
                visit(child, prefix + child.name + ".")
            elif isinstance(child, (ast.Assign, ast.AnnAssign)) and not prefix:
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(child, (ast.If, ast.Try, ast.ExceptHandler)):  # try: ... except ImportError
                visit(child, prefix)

    visit(ast.parse(path.read_text()), "")
    return names


def references() -> list[tuple[str, str]]:
    return REFERENCE.findall((ROOT / "docs" / "architecture.md").read_text())


def test_the_walkthroughs_name_code():
    refs = references()
    assert len(refs) >= 20, "docs/architecture.md walks through the code by path::name"


@pytest.mark.parametrize("path, name", references())
def test_every_named_function_exists(path, name):
    file = ROOT / path
    assert file.is_file(), f"docs/architecture.md names {path}, which does not exist"
    assert name in defined_names(file), f"docs/architecture.md names {path}::{name}, which is not defined there"


def test_a_wrong_reference_is_caught(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("class A:\n    def f(self):\n        pass\n\ndef g():\n    pass\n")
    assert {"A", "A.f", "g"} <= defined_names(module)
    assert "A.h" not in defined_names(module) and "f" not in defined_names(module)
