"""Every registered op of every installed stage passes opcheck: a plugin gets this coverage
just by registering samples. Collected from the default runtime at collection time."""

import pytest

from tinytorch_core import default_runtime
from tinytorch_core.testing import opcheck

OPS = sorted(default_runtime().ops)


def test_core_ops_are_all_registered():
    assert sum(1 for name in OPS if name.startswith("core::")) >= 28


@pytest.mark.parametrize("name", OPS)
def test_registered_op_passes_opcheck(name):
    report = opcheck(name)
    if default_runtime().ops[name].differentiable:
        assert report.samples_checked >= 1
