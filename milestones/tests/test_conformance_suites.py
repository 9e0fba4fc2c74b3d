"""Every stage with a conformance suite: the reference provider scores 100 %, and the generated
skeleton provides every contract name, scores 0 and fails cleanly (every check "not implemented")."""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import warnings

import pytest

from tinytorch_core.host import hookspecs
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint
from tinytorch_milestones.conformance import NOT_IMPLEMENTED, SUITES, grade
from tinytorch_milestones.skeleton import write

STAGES = sorted(SUITES)


@pytest.mark.parametrize("stage", STAGES)
def test_the_reference_provider_scores_everything(stage):
    report = grade(stage)
    assert report.provider.startswith(f"tinytorch-{stage} ")
    assert [(o.check.symbol, o.check.aspect, o.detail) for o in report.outcomes if o.status != "ok"] == []
    assert report.complete


def test_every_curriculum_stage_has_a_suite():
    from tinytorch_core import catalog

    assert STAGES == sorted(s.name for s in catalog.STAGES)


def test_core_has_no_skeleton():
    from tinytorch_milestones.skeleton import SkeletonError

    with pytest.raises(SkeletonError, match="the framework itself"):
        write("core", "my_core")


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "core"])
def test_the_skeleton_provides_every_name_and_scores_zero(stage, tmp_path, monkeypatch):
    name = f"skeleton_{stage}"
    root = write(stage, name, tmp_path / name)
    monkeypatch.syspath_prepend(str(root))
    plugin = importlib.import_module(f"{name}.plugin")
    others = [ep for ep in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name != stage]
    runtime = Runtime(others + [FakeEntryPoint(name, plugin, distribution=name.replace("_", "-"))], environ={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime.load()
    status, record = runtime.stage_status(stage)
    assert (status, record.name) == ("loaded", name), record.reason if record else None
    assert runtime.missing_symbols(stage) == []
    with use_runtime(runtime):
        report = grade(stage, runtime)
    assert report.passed == 0
    assert {o.status for o in report.outcomes} == {NOT_IMPLEMENTED}, [(o.check.symbol, o.detail) for o in report.outcomes]
