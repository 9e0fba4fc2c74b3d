"""The allocator tuning: opt-in (importing TinyTorch leaves the allocator alone), and its opt-out."""

import platform
import subprocess
import sys

import pytest

ON_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def run_python(code: str, **environ) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PATH": "", **environ})
    return result.stdout.strip()


def test_importing_and_loading_tinytorch_leaves_the_allocator_alone():
    code = ("import sys, tinytorch_core; tinytorch_core.default_runtime().load(); import tinytorch_milestones; "
            "print(hasattr(tinytorch_core, 'tune_malloc'), "
            "getattr(sys.modules.get('tinytorch_milestones.allocator'), 'tuned', False))")
    assert run_python(code) == "False False"


@pytest.mark.skipif(not ON_GLIBC, reason="the tuning applies on glibc only")
def test_tune_malloc_applies_the_thresholds_on_glibc():
    code = "import tinytorch_milestones.allocator as a; print(a.tune_malloc(), a.tuned)"
    assert run_python(code) == "True True"


def test_environment_variable_leaves_the_allocator_alone():
    code = "import tinytorch_milestones.allocator as a; print(a.tune_malloc(), a.tuned)"
    assert run_python(code, TINYTORCH_MALLOC_TUNING="0") == "False False"
