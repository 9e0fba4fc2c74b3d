"""The allocator tuning applied at import, and its opt-out."""

import subprocess
import sys

import pytest

from tinytorch_core import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tuning applies on Linux only")
def test_tuned_at_import_on_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert allocator.tuned


def test_environment_variable_leaves_the_allocator_alone():
    code = "import tinytorch_core.allocator as a, tinytorch_core; print(a.tuned)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"TINYTORCH_MALLOC_TUNING": "0", "PATH": ""})
    assert result.stdout.strip() == "False"
