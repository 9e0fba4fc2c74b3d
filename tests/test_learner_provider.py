"""A learner's own provider of stage ``spatial``, in a fresh environment where the reference
``tinytorch-spatial`` is not installed: it is graded on its own code, and the CNN milestone runs on
it and names it.

The learner's work is simulated: the generated skeleton's stubs are replaced by an implementation
(here the reference's source, renamed into the learner's package, as a learner who got every check
right would have written it).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.ladder


def _run(bin_dir, *args, env):
    return subprocess.run([str(bin_dir / "tinytorch"), *args], capture_output=True, text=True, env=env,
                          timeout=600, stdin=subprocess.DEVNULL)


def test_a_learner_provider_is_graded_and_runs_the_cnn_milestone(tmp_path, uv, clean_environ, make_venv):
    env = clean_environ()
    bin_dir = make_venv(tmp_path / "venv", REPO, REPO / "plugins" / "nn", REPO / "milestones", env=env)

    written = _run(bin_dir, "implement", "spatial", "my_spatial", "--dir", str(tmp_path / "my_spatial"), env=env)
    assert written.returncode == 0, written.stderr
    package = tmp_path / "my_spatial" / "my_spatial"
    reference = REPO / "plugins" / "spatial" / "tinytorch_spatial"
    for module in reference.glob("*.py"):  # the learner's implementation replaces the stubs
        if module.name in ("plugin.py", "__init__.py"):  # the skeleton's own: they stay
            continue
        source = module.read_text(encoding="utf-8")
        (package / module.name).write_text(re.sub(r"\btinytorch_spatial\b", "my_spatial", source), encoding="utf-8")
    installed = subprocess.run([uv, "pip", "install", "--quiet", "--no-sources", "--python",
                                str(bin_dir / "python"), str(tmp_path / "my_spatial")],
                               capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert installed.returncode == 0, installed.stderr

    stages = _run(bin_dir, "stages", "--json", env=env)
    assert '"provider": "my-spatial"' in stages.stdout, stages.stdout

    graded = _run(bin_dir, "grade", "spatial", env=env)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert "score: 14/14 (100%) for stage spatial on my-spatial 0.1.0" in graded.stdout

    cnn = _run(bin_dir, "milestones", "run", "cnn", env=env)
    assert cnn.returncode == 0, cnn.stdout[-3000:] + cnn.stderr[-3000:]
    assert "on my-spatial 0.1.0" in cnn.stdout
