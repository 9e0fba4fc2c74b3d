"""The stage as the host sees it: registered names, opcheck of every op, and what happens
when the stage is blocked or its prerequisite is missing."""

import numpy as np
import pytest

from tinytorch_core.testing import assert_registers_catalog

import tinytorch_core
import tinytorch_spatial as spatial
from tinytorch_core import BlockedStageError, InactiveStageError, StageUnavailableError, catalog
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import opcheck

OPS = catalog.stage("spatial").symbols["ops"]


def test_core_namespaces_resolve_to_this_plugin():
    assert tinytorch_core.nn.Conv2d is spatial.Conv2d
    assert tinytorch_core.nn.MaxPool2d is spatial.MaxPool2d
    assert tinytorch_core.nn.AvgPool2d is spatial.AvgPool2d
    assert tinytorch_core.nn.Flatten is spatial.Flatten
    assert tinytorch_core.nn.BatchNorm2d is spatial.BatchNorm2d
    assert tinytorch_core.ops.conv2d is spatial.conv2d
    assert tinytorch_core.ops.max_pool2d is spatial.max_pool2d
    assert tinytorch_core.ops.avg_pool2d is spatial.avg_pool2d
    assert tinytorch_core.ops.batch_norm2d is spatial.batch_norm2d


def test_registers_exactly_the_catalog_names(tinytorch_runtime):
    assert_registers_catalog("spatial", tinytorch_runtime)


@pytest.mark.parametrize("name", OPS)
def test_opcheck_with_the_default_runtime(name):
    report = opcheck(f"spatial::{name}")
    assert report.plugin == "spatial"
    assert report.samples_checked >= 3


@pytest.mark.parametrize("name", OPS)
def test_opcheck_fixture_on_a_fresh_runtime(name, opcheck):
    assert opcheck(f"spatial::{name}").samples_checked >= 3


def test_samples_cover_the_hard_cases():
    """stride > 1, padding, dilation, non-square kernels, a batch of one and odd sizes."""
    rt = tinytorch_core.default_runtime()
    conv = list(rt.op("spatial::conv2d").samples(np.random.default_rng(0)))
    kwargs = [s.kwargs for s in conv]
    assert any(np.max(k.get("stride", 1)) > 1 for k in kwargs)
    assert any(np.max(k.get("padding", 0)) > 0 for k in kwargs)
    assert any(np.max(k.get("dilation", 1)) > 1 for k in kwargs)
    assert any(s.args[1].shape[2] != s.args[1].shape[3] for s in conv)
    for name in OPS:
        samples = list(rt.op(f"spatial::{name}").samples(np.random.default_rng(0)))
        shapes = [s.args[0].shape for s in samples]
        assert any(shape[0] == 1 for shape in shapes), name
        assert any(shape[2] % 2 or shape[3] % 2 for shape in shapes), name


def test_a_failing_kernel_is_caught_by_opcheck(monkeypatch):
    # the check is not vacuous: a wrong weight gradient must be reported
    original = spatial.Conv2dFunction.backward

    def broken(ctx, grad):
        gx, gw, gb = original(ctx, grad)
        return gx, None if gw is None else gw * 1.01, gb

    monkeypatch.setattr(spatial.Conv2dFunction, "backward", staticmethod(broken))
    with pytest.raises(AssertionError, match="spatial::conv2d"):
        opcheck("spatial::conv2d")


@pytest.mark.parametrize(
    "environ, error, words",
    [
        ({"TINYTORCH_DISABLE_PLUGINS": "spatial"}, BlockedStageError, "TINYTORCH_DISABLE_PLUGINS"),
        ({"TINYTORCH_DISABLE_PLUGINS": "tinytorch-spatial"}, BlockedStageError, "TINYTORCH_DISABLE_PLUGINS"),
        ({"TINYTORCH_LOAD_PLUGINS": "nn"}, BlockedStageError, "TINYTORCH_LOAD_PLUGINS"),
        ({"TINYTORCH_DISABLE_PLUGINS": "nn"}, InactiveStageError, "requires stage 'nn'"),
    ],
)
def test_blocked_or_inactive_stage_raises_its_own_error(environ, error, words):
    runtime = Runtime(environ=environ)
    with use_runtime(runtime):
        for namespace, name in (("nn", "Conv2d"), ("nn", "BatchNorm2d"), ("ops", "conv2d")):
            with pytest.raises(error, match=words) as info:
                getattr(getattr(tinytorch_core, namespace), name)
            assert isinstance(info.value, StageUnavailableError)
            assert info.value.stage == "spatial"
        # the stage's own package still imports and works directly: only the registry is blocked
        assert spatial.Conv2d(1, 1, 1) is not None
    assert tinytorch_core.nn.Conv2d is spatial.Conv2d  # the default runtime is back
