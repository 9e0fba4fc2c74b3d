"""docs/plugin-authoring.md, run the way a reader runs it.

The tutorial's code blocks are its script:

- ```` ```bash ````: shell commands, one per line (lines starting with ``#`` are comments), run
  in order in one simulated terminal session: ``cd``, ``export`` and ``source .venv/bin/activate``
  carry over from one command to the next, as they do for a reader;
- ```` ```text output ````: what the last command printed, line by line in order (``sample_matches``):
  runs of spaces count as one, blank lines and versions (``0.1.0``) do not count, a table's rule
  of dashes matches one of any width, a line ``...`` stands for lines left out and a line ending in
  ``...`` for the rest of that line;
- ```` ```LANG file=PATH ```` / ```` append=PATH ````: a file the reader writes / adds to, written
  into the work folder;
- ```` ```LANG excerpt=PATH ````: an extract of a generated file, checked to be in it;
- ```` ```text ```` without attributes: illustration only.

The work folder is a fresh temporary directory, ``$TINYTORCH`` is this repository, and the
reader's ``uv`` and ``python`` are the ones running this test. Building the environment takes a
few seconds (uv caches the wheels).
"""

from __future__ import annotations

import functools
import math
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "docs" / "plugin-authoring.md"
_FENCE = re.compile(r"^```(.*)$")
_ATTRIBUTE = re.compile(r"(file|append|excerpt)=(\S+)")


@dataclass
class Step:
    kind: str  # run | output | write | append | excerpt
    text: str
    path: str | None = None
    line: int = 0  # where the block starts in the tutorial, for messages


@dataclass
class Block:
    info: str
    body: str
    line: int
    attributes: dict = field(default_factory=dict)


def code_blocks(markdown: str) -> list[Block]:
    blocks, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"plugin-authoring.md:{start}: code block is never closed")
        info = match.group(1).strip()
        attributes = dict(_ATTRIBUTE.findall(info))
        blocks.append(Block(info, "\n".join(body) + "\n", start, attributes))
        i += 1
    return blocks


def tutorial_steps(markdown: str) -> list[Step]:
    steps = []
    for block in code_blocks(markdown):
        words = block.info.split()
        language = words[0] if words else ""
        where = f"plugin-authoring.md:{block.line}"
        if language == "bash":
            for offset, command in enumerate(block.body.splitlines(), start=1):
                if not command.strip() or command.lstrip().startswith("#"):
                    continue
                assert not command.rstrip().endswith("\\"), f"{where}: one command per line, no continuations"
                steps.append(Step("run", command.strip(), line=block.line + offset))
        elif words[1:] == ["output"]:
            steps.append(Step("output", block.body, line=block.line))
        elif block.attributes:
            ((kind, path),) = block.attributes.items()
            steps.append(Step({"file": "write"}.get(kind, kind), block.body, path=path, line=block.line))
        else:
            # anything else would be code the reader sees but the test never runs
            assert language == "text", f"{where}: a ```{block.info} block must be bash, have file=, append= or " \
                                       "excerpt=, or be ```text"
    return steps


def test_tutorial_blocks_parse_into_the_promised_steps():
    steps = tutorial_steps(TUTORIAL.read_text(encoding="utf-8"))
    commands = [s.text for s in steps if s.kind == "run"]
    expected_order = ["uv venv", "tinytorch new-plugin mish", "uv pip install ./tinytorch-mish",
                      "pytest tinytorch-mish", "tinytorch check mish", "tinytorch plugins"]
    positions = [next(i for i, c in enumerate(commands) if c.startswith(prefix)) for prefix in expected_order]
    assert positions == sorted(positions), commands
    written = {s.path for s in steps if s.kind in ("write", "append")}
    assert "tinytorch-mish/tinytorch_mish/ops.py" in written and "tinytorch-mish/tinytorch_mish/plugin.py" in written
    assert any(p.startswith("tinytorch-mish/tests/test_") for p in written)
    assert all(steps[i - 1].kind == "run" for i, s in enumerate(steps) if s.kind == "output")


# ---- running it -------------------------------------------------------------------------------------
def reader_environment(tmp: Path, uv: str) -> dict:
    """The environment of a reader's fresh terminal: no active venv, this repo's .venv off PATH,
    ``uv`` and this test's Python interpreter found first, ``$TINYTORCH`` set."""
    tools = tmp / "tools"
    tools.mkdir()
    base_python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    for name in ("python3", "python"):
        (tools / name).symlink_to(base_python)
    (tools / "uv").symlink_to(os.path.realpath(uv))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TINYTORCH_", "PYTEST_", "PYTHON", "CONDA"))
           and k not in ("VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "UV_PYTHON", "UV_SYSTEM_PYTHON",
                         "UV_PROJECT_ENVIRONMENT")}  # each of these would point pip or python elsewhere
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(REPO)]
    env["PATH"] = os.pathsep.join([str(tools)] + path)
    env["TINYTORCH"] = str(REPO)
    env["UV_PYTHON_DOWNLOADS"] = "never"  # use the interpreter found, never fetch one
    return env


class Terminal:
    """Runs one command at a time in bash, keeping the working directory and the exported
    environment between commands, as an interactive shell would."""

    def __init__(self, cwd: Path, env: dict, state: Path):
        self.cwd, self.env, self.state = cwd, env, state
        state.mkdir()
        self.transcript: list[str] = []

    def run(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
        cwd_file, env_file = self.state / "cwd", self.state / "env"
        script = (
            f"cd {shlex.quote(str(self.cwd))} || exit 97\n"
            f"{command}\n"
            "__status=$?\n"
            f"pwd > {shlex.quote(str(cwd_file))}\n"
            f"env -0 > {shlex.quote(str(env_file))}\n"
            "exit $__status\n"
        )
        result = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], env=self.env,
                                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.transcript.append(f"$ {command}\n{result.stdout}{result.stderr}[exit {result.returncode}]")
        if cwd_file.exists():
            self.cwd = Path(cwd_file.read_text().strip())
            pairs = (item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
            self.env = {k: v for k, v in pairs if not k.startswith("BASH_FUNC_")}
        return result

    def log(self) -> str:
        return "\n\n".join(self.transcript)


_VERSION = re.compile(r"\b\d+\.\d+\.\d+\S*")  # x.y.z versions; a number such as 1.94 is kept
_RULE = re.compile(r"[- ]*-[- ]*")  # a table's rule of dashes under its header


def _comparable_lines(text: str) -> list[str]:
    """The non-blank lines of ``text``, spaces collapsed, versions and table rules made alike."""
    lines = []
    for line in text.splitlines():
        line = _VERSION.sub("<version>", re.sub(r"[ \t]+", " ", line).strip())
        if line:
            lines.append("---" if _RULE.fullmatch(line) else line)
    return lines


def sample_matches(sample: str, printed: str) -> bool:
    """Whether a documented sample is what was printed: every line, in order, nothing missing
    except where the sample says ``...`` (whole lines) or ends a line with ``...`` (its rest)."""
    expected, actual = _comparable_lines(sample), _comparable_lines(printed)

    @functools.cache
    def match(i: int, j: int) -> bool:  # expected[i:] against actual[j:]
        if i == len(expected):
            return j == len(actual)
        if expected[i] == "...":
            return match(i + 1, j) or (j < len(actual) and match(i, j + 1))
        if j == len(actual):
            return False
        line, want = actual[j], expected[i]
        same = line.startswith(want[:-3].rstrip()) if want.endswith("...") else line == want
        return same and match(i + 1, j + 1)

    return match(0, 0)


@pytest.mark.parametrize("sample, printed, same", [
    ("a  b\n---  -\nc 0.1.0", "a b\n-----  --\n\nc 2.10.3", True),
    ("a\n...\nd", "a\nb\nc\nd", True),
    ("a\n...", "a", True),
    ("ops: x, ...", "ops: x, y, z", True),
    ("a\nc", "a\nb\nc", False),  # a line left out without "..."
    ("b\na", "a\nb", False),  # order counts
    ("a", "a\nb", False),  # output the sample does not show
    ("tensor([1.94])", "tensor([1.95])", False),  # numbers are not versions
])
def test_sample_matching(sample, printed, same):
    assert sample_matches(sample, printed) is same


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory, uv):
    """Every step of the tutorial, in order; returns the terminal and each command's result."""
    tmp = tmp_path_factory.mktemp("tutorial")
    work = tmp / "work"
    work.mkdir()
    terminal = Terminal(work, reader_environment(tmp, uv), tmp / "shell-state")
    results: list[tuple[str, subprocess.CompletedProcess]] = []
    for step in tutorial_steps(TUTORIAL.read_text(encoding="utf-8")):
        where = f"plugin-authoring.md:{step.line}"
        if step.kind == "run":
            result = terminal.run(step.text)
            assert result.returncode == 0, f"{where}: `{step.text}` failed\n\n{terminal.log()}"
            results.append((step.text, result))
        elif step.kind == "output":
            command, result = results[-1]
            printed = result.stdout + result.stderr
            assert sample_matches(step.text, printed), (
                f"{where}: `{command}` printed something else than the tutorial shows:\n{printed}\n\n{terminal.log()}"
            )
        else:
            target = terminal.cwd / step.path
            if step.kind == "excerpt":
                assert step.text in target.read_text(encoding="utf-8"), (
                    f"{where}: the excerpt of {step.path} is not in the generated file"
                )
            else:
                assert step.kind == "write" or target.exists(), f"{where}: append to {step.path}, which is missing"
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "w" if step.kind == "write" else "a", encoding="utf-8") as f:
                    f.write(step.text)
    return terminal, results


def _result_of(results, prefix: str) -> subprocess.CompletedProcess:
    return next(r for command, r in results if command.startswith(prefix))


def test_every_tutorial_command_runs(tutorial_run):
    terminal, results = tutorial_run
    assert len(results) >= 8
    assert all(r.returncode == 0 for _, r in results), terminal.log()


def test_tutorial_environment_holds_installed_copies_not_the_source_tree(tutorial_run):
    terminal, _ = tutorial_run
    probe = "import tinytorch_core, tinytorch_nn, tinytorch_mish as m; print(tinytorch_core.__file__, m.__file__)"
    result = terminal.run(f"python -c {shlex.quote(probe)}")
    assert result.returncode == 0, terminal.log()
    core_file, plugin_file = result.stdout.split()
    assert "site-packages" in core_file and "site-packages" in plugin_file, result.stdout


def test_tutorial_plugin_tests_pass(tutorial_run):
    terminal, results = tutorial_run
    out = _result_of(results, "pytest tinytorch-mish").stdout
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 15 and "failed" not in out and "error" not in out, terminal.log()


def test_tutorial_check_verifies_both_ops(tutorial_run):
    terminal, results = tutorial_run
    result = _result_of(results, "tinytorch check mish")
    assert result.returncode == 0
    assert "ok    mish::mish  (3 samples)" in result.stdout
    assert "2 op(s) checked, 0 failure(s)" in result.stdout


def test_tutorial_plugins_lists_the_new_plugin_as_loaded(tutorial_run):
    terminal, results = tutorial_run
    out = _result_of(results, "tinytorch plugins").stdout
    row = next(line for line in out.splitlines() if line.startswith("mish "))
    assert row.split() == ["mish", "tinytorch-mish", "0.1.0", "mish", "loaded", "2", "2"]
    assert "ops:    mish::scaled_softplus, mish::mish" in out
    assert "layers: nn.ScaledSoftplus, nn.Mish" in out


def test_tutorial_layer_is_reachable_through_tinytorch(tutorial_run):
    terminal, results = tutorial_run
    out = _result_of(results, "python -c").stdout
    values = [float(v) for v in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?", out)]
    expected = [v * math.tanh(math.log1p(math.exp(v))) for v in (-1.0, 0.0, 2.0)]
    assert len(values) >= 3 and all(abs(a - b) < 1e-4 for a, b in zip(values[:3], expected)), out
