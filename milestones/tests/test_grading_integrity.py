"""A grade is of the provider's own code, by the grader as written: a provider that re-exports
the reference, replaces the grader's functions, exits the process from a kernel, never compiles,
or trains with a parameter's gradient dropped does not pass. Each of these passed before."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_milestones import conformance
from tinytorch_milestones.conformance import FAILED, Check, ConformanceError, _run, grade, train
from tinytorch_milestones.conformance.integrity import GraderSnapshot, reference_code_in, reference_hidden


def test_a_replaced_grader_function_is_reported_and_nothing_else_counts(monkeypatch):
    monkeypatch.setattr(conformance, "_run", lambda check: None)  # what a plugin did at import
    report = grade("nn")
    assert [(o.check.aspect, o.status) for o in report.outcomes] == [("integrity", FAILED)]
    assert "tinytorch_milestones.conformance._run" in report.outcomes[0].detail


def test_sys_exit_in_the_providers_code_is_a_failed_check():
    def exits():
        raise SystemExit(0)

    outcome = _run(Check("ops.x", "forward", exits))
    assert outcome.status == FAILED and "SystemExit" in outcome.detail


class _Record:
    """The parts of a plugin record the provenance check reads."""

    def __init__(self, ops=(), symbols=(), target="not_a_loaded_package.plugin:Plugin"):
        from tinytorch_core.host.registry import Registrations

        self.distribution, self.target = "my-spatial", target
        self.registered = Registrations(ops=list(ops), symbols=list(symbols))


def test_a_provider_that_re_exports_or_derives_from_the_reference_is_named():
    pytest.importorskip("tinytorch_spatial")
    from tinytorch_core.host.registry import SymbolEntry
    from tinytorch_spatial import layers

    class MyConv(layers.Conv2d):  # the reference with a new name
        pass

    record = _Record(symbols=[SymbolEntry("nn", "Conv2d", MyConv, "p", "my-spatial", "0.1"),
                              SymbolEntry("nn", "Flatten", layers.Flatten, "p", "my-spatial", "0.1")])
    borrowed = reference_code_in("spatial", record)
    assert any("nn.Conv2d" in b for b in borrowed) and any("nn.Flatten" in b for b in borrowed)
    assert reference_code_in("spatial", _Record()) == []


def test_the_reference_cannot_be_imported_while_a_provider_is_graded():
    pytest.importorskip("tinytorch_spatial")
    import importlib
    import sys

    with reference_hidden("spatial", _Record()):
        with pytest.raises(ImportError, match="reference implementation of stage spatial"):
            importlib.import_module("tinytorch_spatial.conv")
    assert "tinytorch_spatial.conv" in sys.modules  # back afterwards


def test_grader_snapshot_names_what_changed():
    import types

    module = types.ModuleType("grader_like")
    module.check = lambda: None
    snapshot = GraderSnapshot(module)
    assert snapshot.changed() == []
    module.check = lambda: True
    assert snapshot.changed() == ["grader_like.check"]


def test_training_checks_need_a_gradient_in_every_parameter():
    model = tt.nn.Sequential(tt.nn.Linear(2, 3, generator=0), tt.nn.ReLU(), tt.nn.Linear(3, 1, generator=1))
    frozen_out = tt.nn.Linear(2, 1, generator=2)  # optimized but never used: its gradient is dropped
    optimizer = tt.optim.SGD(list(model.parameters()) + list(frozen_out.parameters()), lr=0.1)
    x = Tensor(np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32))
    with pytest.raises(ConformanceError, match="2 parameter\\(s\\) never got a nonzero gradient"):
        train(lambda: (model(x) ** 2).mean(), optimizer, 3)
    train(lambda: (model(x) ** 2).mean(), optimizer, 3, every_parameter=False)


def test_a_compile_that_never_replays_fails_its_check(monkeypatch):
    pytest.importorskip("tinytorch_acceleration")
    from tinytorch_milestones.conformance import acceleration

    monkeypatch.setattr(tt, "compile", lambda step, **options: step, raising=False)
    with pytest.raises(ConformanceError, match="ran its Python body 8 times"):
        acceleration.replays_without_running_the_step()


def test_milestones_refuse_to_report_when_the_runner_was_replaced(monkeypatch, capsys):
    from tinytorch_core.cli import main
    from tinytorch_milestones import runner

    monkeypatch.setattr(runner, "run_milestone", lambda milestone, options: None)
    assert main(["milestones", "verify", "xor"]) == 1
    assert "the runner's code was replaced" in capsys.readouterr().out


def test_op_code_a_plugin_replaced_after_loading_is_reported_and_put_back():
    """A hostile plugin's op, once called, replaced nn's ReLU backward: grading and the milestones
    then ran on the patched code. Both now report it, and the host's code is restored."""
    from tinytorch_core.host.runtime import default_runtime
    from tinytorch_nn.activations import ReLUFunction

    runtime = default_runtime().load()
    original = ReLUFunction.__dict__["backward"]
    ReLUFunction.backward = staticmethod(lambda ctx, grad: grad * 0)  # what the plugin did at call time
    try:
        report = grade("nn")
    finally:
        restored = ReLUFunction.__dict__["backward"] is original
        ReLUFunction.backward = original
    assert restored and runtime.core_classes.undo_changes(code_only=True) == []
    assert [(o.check.aspect, o.status) for o in report.outcomes] == [("integrity", FAILED)]
    assert "ReLUFunction.backward" in report.outcomes[0].detail
