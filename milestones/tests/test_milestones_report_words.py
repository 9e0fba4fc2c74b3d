"""verify's output reads without a glossary: every column says what its number is, the headline
result names its model and metric, and no line of prose is cut mid-sentence."""

from __future__ import annotations

import pytest
from rich.console import Console

from tinytorch_core.cli import main
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_milestones.harness import Check
from tinytorch_milestones.report import MILESTONE_COLUMNS, milestone_table, summary_table
from tinytorch_milestones.results import GradientReport, ParameterGradient, PartResult
from tinytorch_milestones.runner import PASSED, MilestoneResult


def _part(label, metric_name, metric, declared_zero=""):
    grads = GradientReport(
        [ParameterGradient("w", (2,), True, not declared_zero, declared_zero, 7, 0.1),
         ParameterGradient("b", (2,), True, True, "", 3, 0.1)],
        loss32=1.0, loss64=1.0,
    )
    return PartResult(label, metric_name, gradients=grads, moved=2, movable=2, loss_first=2.0, loss_last=0.5,
                      metric=metric, checks=[Check("ok", True)], time_s=1.25)


def _transformer_like() -> MilestoneResult:
    """Two models, the first (index 0) giving the headline number, as the Transformer milestone does."""
    return MilestoneResult(
        "transformer", 2017, "Transformer", ("attention",), PASSED, time_s=3.0, headline=0,
        parts=[_part("sequence reversal", "held-out token acc", 1.0, declared_zero="all"),
               _part("char GPT, Zen of Python", "next-char acc (text)", 0.9123)],
    )


def _render(renderable, width=150) -> str:
    console = Console(width=width, record=True, highlight=False, emoji=False)
    console.print(renderable)
    return console.export_text()


def test_milestone_table_headers_say_what_each_number_is():
    headers = [header for header, _ in MILESTONE_COLUMNS]
    assert "zero-grad" not in headers and "" not in headers
    assert "params with zero gradient by design" in headers
    assert "gradient entries checked by finite differences" in headers
    text = _render(milestone_table(_transformer_like()))
    assert "zero-grad" not in text and "FD" not in text
    rows = [line for line in text.splitlines() if "sequence reversal" in line or "char GPT" in line]
    assert len(rows) == 2  # one line each: names and numbers are never wrapped
    reversal = rows[0].split("│")
    assert [c.strip() for c in reversal[2:5]] == ["2/2", "10", "1"]  # with gradient, FD entries, zero by design


def test_summary_names_the_model_and_metric_behind_the_headline_number():
    text = _render(summary_table([_transformer_like()], 3.0))
    assert "sequence reversal: held-out token acc 100.00%" in text
    assert "headline result (model: metric)" in text


def test_the_header_is_not_cut_mid_sentence(capsys):
    runtime = Runtime()
    with use_runtime(runtime):
        if runtime.stage_status("nn")[0] != "loaded":
            pytest.skip("stage nn is not installed")
        assert main(["milestones", "verify", "perceptron", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "TinyTorch milestones: seed 0, image data: bundled UCI 8x8 digits"
    machine = lines[1]
    assert machine.startswith("machine: ") and "CPU core(s)" in machine
    assert machine.count("(") == machine.count(")")  # the BLAS note is whole on its line
    assert lines[2] == ""
    assert any("perceptron: test acc 100.00%" in line for line in lines)


def test_long_notes_are_one_line_each(capsys):
    from tinytorch_milestones.report import make_console, print_milestone

    result = _transformer_like()
    result.parts[0].gradients.parameters[0].name = "blocks.0.attn.k_proj.bias." + "x" * 150
    print_milestone(make_console(), result)
    lines = capsys.readouterr().out.splitlines()
    note = [line for line in lines if "zero gradient by design" in line]
    assert len(note) == 1 and note[0].endswith("(all)")
