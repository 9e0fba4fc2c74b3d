"""The pytest plugin that tinytorch-core installs (entry point pytest11) gives plugin authors fixtures."""

import numpy as np

import tinytorch_core as tt
from tinytorch_core.host.runtime import default_runtime


def test_runtime_fixture_is_fresh_and_installed_as_default(tinytorch_runtime):
    assert default_runtime() is tinytorch_runtime
    assert tinytorch_runtime.plugins["core"].status == "loaded"


def test_opcheck_fixture_checks_against_the_isolated_runtime(opcheck):
    assert opcheck("core::matmul").samples_checked >= 5


def test_gradcheck_fixture(gradcheck):
    assert gradcheck(lambda x: (x * x).sum(axis=0), np.random.default_rng(0).standard_normal((3, 2)))


def test_default_runtime_is_restored_after_the_fixture(tinytorch_runtime):
    assert tt.default_runtime() is tinytorch_runtime
