"""pytest plugin (entry point ``pytest11``): the fixtures plugin authors test with.

- ``tinytorch_runtime``: a fresh, isolated ``Runtime`` installed as the default for one test,
  so ``tinytorch_core.nn.X`` resolves against it and nothing leaks between tests.
- ``gradcheck`` / ``opcheck``: the checking functions of ``tinytorch_core.testing``.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def tinytorch_runtime():
    from tinytorch_core.host.runtime import Runtime, use_runtime

    runtime = Runtime()
    with use_runtime(runtime):
        yield runtime.load()


@pytest.fixture
def gradcheck():
    from tinytorch_core.testing import gradcheck as check

    return check


@pytest.fixture
def opcheck(tinytorch_runtime):
    from tinytorch_core.testing import opcheck as check

    def run(name, **kwargs):
        return check(name, runtime=tinytorch_runtime, **kwargs)

    return run
