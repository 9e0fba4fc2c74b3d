"""The reading path stays readable in one sitting per file: no Python file over 500 lines outside
bench/, and no function in core over 50 lines (issue 16's rules, checked instead of hoped for)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 500
MAX_CORE_FUNCTION_LINES = 50


def _python_files():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in ("bench", ".venv", "build") or any(part.startswith(".") for part in parts):
            continue
        yield path


def test_no_file_is_over_500_lines_outside_bench():
    long_files = {str(path.relative_to(ROOT)): n for path in _python_files()
                  if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    assert long_files == {}, f"split these by topic: {long_files}"


def test_no_function_in_core_is_over_50_lines():
    long_functions = {}
    for path in sorted((ROOT / "tinytorch_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CORE_FUNCTION_LINES:
                    long_functions[f"{path.relative_to(ROOT)}::{node.name}"] = length
    assert long_functions == {}, f"split these into named steps: {long_functions}"
