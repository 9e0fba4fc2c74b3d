"""Grading stage ``spatial`` on whatever provides it: the reference scores 100 %, a stub scores 0
without a traceback, and a planted wrong gradient is named by the op it is in."""

from __future__ import annotations

import importlib.metadata as metadata
import warnings

import pytest

from tinytorch_core import Function
from tinytorch_core.cli import main
from tinytorch_core.host import hookspecs
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint, plugin_module
from tinytorch_milestones.conformance import FAILED, NOT_IMPLEMENTED, PASSED, SUITES, grade

OPS = ("conv2d", "max_pool2d", "avg_pool2d", "batch_norm2d")
LAYERS = ("Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "BatchNorm2d")


class _Negate(Function):
    """Identity forward, negated gradient: a planted backward bug."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _provider(name, op_call, layer, function_base=None):
    """A fake provider of 'spatial' whose ops are ``op_call(op)`` and whose layers ``layer(name)``;
    its op classes derive from the reference's, or from ``function_base``."""

    def declare(declare):
        declare("spatial")

    def register_ops(registry):
        from tinytorch_spatial import functional

        for op in OPS:
            # a subclass per provider: a Function class has one op name only
            function = type(f"{name}_{op}", (function_base or getattr(functional, _FUNCTIONS[op]),), {})
            registry.op(f"spatial::{op}", function, call=op_call(op), differentiable=False)

    def register_layers(registry):
        for layer_name in LAYERS:
            registry.layer(layer_name, layer(layer_name))

    module = plugin_module(name, tinytorch_declare_stage=declare, tinytorch_register_ops=register_ops,
                           tinytorch_register_symbols=register_layers)
    return FakeEntryPoint(name, module, distribution=name.replace("_", "-"), version="0.1.0")


_FUNCTIONS = {"conv2d": "Conv2dFunction", "max_pool2d": "MaxPool2dFunction",
              "avg_pool2d": "AvgPool2dFunction", "batch_norm2d": "BatchNorm2dFunction"}


def _runtime_with(provider):
    others = [ep for ep in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name != "spatial"]
    runtime = Runtime(others + [provider], environ={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime.load()
    return runtime


def _reference_layer(name):
    from tinytorch_spatial import layers

    return getattr(layers, name)


def test_the_reference_provider_scores_everything():
    report = grade("spatial")
    assert report.provider.startswith("tinytorch-spatial ")
    assert [o.detail for o in report.outcomes if o.status != PASSED] == []
    assert report.complete and report.score == 1.0


def test_grade_command_prints_the_score_and_exits_zero_when_everything_passes(capsys):
    assert main(["grade", "spatial"]) == 0
    out = capsys.readouterr().out
    assert "score: 14/14 (100%) for stage spatial on tinytorch-spatial" in out


def test_grade_of_a_stage_without_a_suite_says_which_exist(capsys):
    assert main(["grade", "nosuch"]) == 2
    assert f"suites exist for: {', '.join(sorted(SUITES))}" in capsys.readouterr().err


@pytest.mark.parametrize("planted", OPS)
def test_a_planted_wrong_gradient_is_named_by_its_op(planted):
    from tinytorch_spatial import functional

    def op_call(op):
        reference = getattr(functional, op)
        if op != planted:
            return reference
        return lambda *args, **kwargs: _Negate.apply(reference(*args, **kwargs))

    runtime = _runtime_with(_provider("planted_spatial", op_call, _reference_layer))
    with use_runtime(runtime):
        report = grade("spatial", runtime)
    assert report.provider == "planted-spatial 0.1.0"
    failed = {(o.check.symbol, o.check.aspect) for o in report.outcomes if o.status == FAILED}
    assert ("spatial", "provenance") in failed  # it borrows the reference's code to plant one bug
    failed.discard(("spatial", "provenance"))
    assert (f"ops.{planted}", "backward") in failed
    assert all(symbol == f"ops.{planted}" for symbol, _ in failed), failed
    detail = next(o.detail for o in report.outcomes if (o.check.symbol, o.check.aspect) == (f"ops.{planted}", "backward"))
    assert detail.startswith("grad of x off by")


def test_a_stub_provider_scores_zero_and_fails_cleanly(capsys):
    def op_call(op):
        def stub(*args, **kwargs):
            raise NotImplementedError(f"TODO: {op}")
        return stub

    def layer(name):
        def stub(*args, **kwargs):
            raise NotImplementedError(f"TODO: {name}")
        return stub

    runtime = _runtime_with(_provider("stub_spatial", op_call, layer, function_base=_Negate))
    with use_runtime(runtime):
        report = grade("spatial", runtime)
        code = main(["grade", "spatial"])
    out = capsys.readouterr().out
    assert report.passed == 0 and report.score == 0.0
    assert {o.status for o in report.outcomes} == {NOT_IMPLEMENTED}
    assert code == 1 and "score: 0/14 (0%) for stage spatial on stub-spatial 0.1.0" in out
    assert "Traceback" not in out


# ---- learner mode: the generated skeleton ----------------------------------------------------------------
def _skeleton_runtime(tmp_path, monkeypatch, name="my_spatial"):
    import importlib

    from tinytorch_milestones.skeleton import write

    root = write("spatial", name, tmp_path / name)
    monkeypatch.syspath_prepend(str(root))
    plugin = importlib.import_module(f"{name}.plugin")
    return _runtime_with(FakeEntryPoint(name, plugin, distribution=name.replace("_", "-"), version="0.1.0")), root


def test_the_generated_skeleton_provides_the_stage_and_scores_zero_cleanly(tmp_path, monkeypatch, capsys):
    runtime, root = _skeleton_runtime(tmp_path, monkeypatch)
    status, record = runtime.stage_status("spatial")
    assert (status, record.distribution) == ("loaded", "my-spatial")
    assert runtime.missing_symbols("spatial") == []  # every contract name is there, as a stub
    with use_runtime(runtime):
        report = grade("spatial", runtime)
        code = main(["grade", "spatial"])
    out = capsys.readouterr().out
    assert report.passed == 0 and {o.status for o in report.outcomes} == {NOT_IMPLEMENTED}
    assert code == 1 and "score: 0/14 (0%) for stage spatial on my-spatial 0.1.0" in out
    assert "TODO: conv2d forward" in out and "Traceback" not in out
    text = (root / "my_spatial" / "functional.py").read_text()
    assert "Ho = (H + 2 padding - dilation (kh - 1) - 1) // stride + 1" in text  # the contract, as docstring
    assert "TINYTORCH_PROVIDERS=spatial=my-spatial" in (root / "README.md").read_text()


def test_a_filled_in_stub_turns_its_checks_green(tmp_path, monkeypatch):
    runtime, root = _skeleton_runtime(tmp_path, monkeypatch, name="learner_spatial")
    layers = root / "learner_spatial" / "layers.py"
    text = layers.read_text()
    stub = ('    def __init__(self, start_axis=1):\n        super().__init__()\n'
            '        raise NotImplementedError("TODO: Flatten.__init__")\n\n'
            '    def forward(self, x):\n        raise NotImplementedError("TODO: Flatten.forward")\n')
    assert stub in text
    layers.write_text(text.replace(stub, '    def __init__(self, start_axis=1):\n        super().__init__()\n'
                                         '        self.start_axis = start_axis\n\n'
                                         '    def forward(self, x):\n'
                                         '        return x.reshape(*x.shape[: self.start_axis], -1)\n'))
    import importlib
    import sys

    for module in [m for m in sys.modules if m.startswith("learner_spatial")]:
        del sys.modules[module]
    plugin = importlib.import_module("learner_spatial.plugin")
    runtime = _runtime_with(FakeEntryPoint("learner_spatial", plugin, distribution="learner-spatial"))
    with use_runtime(runtime):
        report = grade("spatial", runtime)
    assert [(o.check.symbol, o.status) for o in report.outcomes if o.status == PASSED] == [("nn.Flatten", PASSED)]
