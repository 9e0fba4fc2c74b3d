"""``tinytorch milestones`` edges: numeric options and output paths checked at parse time (exit 2,
no traceback, nothing trained), results that cannot be written, and text from users and plugins
printed literally by rich (no markup read into it, no MarkupError)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tinytorch_core import Milestone
from tinytorch_core.cli import build_parser, main
from tinytorch_core.host.runtime import Runtime, use_runtime
from tinytorch_core.testing import FakeEntryPoint, plugin_module
from tinytorch_milestones import plugin as milestones_plugin
from tinytorch_milestones import report
from tinytorch_milestones.harness import Check, PartResult
from tinytorch_milestones.runner import MilestoneOutcome

MARKUP = "[red]Title[/] [/] [bold"  # a stray [/] makes rich raise MarkupError when read as markup


def _trained(options):
    part = PartResult(label=f"model {MARKUP}", metric_name=f"acc {MARKUP}", architecture=f"arch {MARKUP}",
                      moved=1, movable=1, loss_first=1.0, loss_last=0.1, metric=1.0,
                      checks=[Check(f"check {MARKUP}", False, f"detail {MARKUP}")], notes=[f"note {MARKUP}"])
    return MilestoneOutcome(parts=[part], checks=[Check(f"m {MARKUP}", True, f"d {MARKUP}")],
                            data=f"data {MARKUP}", samples=[f"sample {MARKUP}"])


def _crash(options):
    raise ValueError(f"error {MARKUP}")


def _hostile_runtime(ran=None):
    """The real milestones command, plus a plugin whose milestones and texts are full of markup, plus a
    broken 'spatial' whose error message is markup too (so a milestone needing it is locked with it)."""

    def register(register):
        def recorded(run):
            def wrapper(options):
                if ran is not None:
                    ran.append(True)
                return run(options)
            return wrapper

        register(Milestone(name="trained", year=1, title=f"T {MARKUP}", requires=(), run=recorded(_trained)))
        register(Milestone(name="crash", year=2, title=f"C {MARKUP}", requires=(), run=recorded(_crash)))
        register(Milestone(name="locked", year=3, title=f"L {MARKUP}", requires=("spatial",), run=recorded(_crash)))

    hostile = plugin_module("hostile", tinytorch_register_milestones=register)

    def broken_spatial():
        raise RuntimeError(f"spatial {MARKUP}")

    return Runtime([
        FakeEntryPoint("milestones", milestones_plugin),
        FakeEntryPoint("hostile", hostile),
        FakeEntryPoint("spatial", broken_spatial, call=True, distribution="tinytorch-spatial"),
    ], environ={})


@pytest.fixture
def hostile():
    ran: list = []
    runtime = _hostile_runtime(ran)
    with use_runtime(runtime):
        yield ran


# ---- numbers ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-1", "4294967296", "abc", "1.5", "0x10", "", "1e3", "9" * 5000])
@pytest.mark.parametrize("action", ["verify", "run perceptron"])
def test_a_bad_seed_is_a_usage_error_saying_what_is_allowed(hostile, capsys, action, value):
    with pytest.raises(SystemExit) as info:
        main(["milestones", *action.split(), "--seed", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--seed must be an integer from 0 to 2**32-1, got " in err
    assert "argument --seed: --seed" not in err and len(err) < 2000
    assert not hostile  # nothing ran


@pytest.mark.parametrize("value, expected", [("0", 0), ("4294967295", 2**32 - 1), ("+7", 7), (" 12 ", 12)])
def test_seeds_in_range_are_accepted(hostile, value, expected):
    parser = build_parser(Runtime([FakeEntryPoint("milestones", milestones_plugin)], environ={}).load())
    assert parser.parse_args(["milestones", "verify", "--seed", value]).seed == expected


def test_bad_seed_from_the_real_command_has_no_traceback():
    result = subprocess.run([sys.executable, "-m", "tinytorch_core", "milestones", "verify", "--seed", "-1"],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert "--seed must be an integer from 0 to 2**32-1, got -1" in result.stderr
    assert "Traceback" not in result.stderr


# ---- output paths -------------------------------------------------------------------------------------------
def _bad_paths(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    a_dir = tmp_path / "dir"
    a_dir.mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {
        "json-is-a-directory": (["--json", str(a_dir)], "is a directory"),
        "json-under-a-file": (["--json", str(a_file / "out.json")], "is not a directory, so"),
        "json-deep-under-a-file": (["--json", str(a_file / "a" / "b.json")], "is not a directory, so"),
        "json-name-too-long": (["--json", str(tmp_path / ("x" * 300 + ".json"))], "longer than the"),
        "json-path-too-long": (["--json", str(tmp_path / "/".join(["abcdefgh"] * 600))], "longer than the 4096"),
        "json-empty": (["--json", ""], "got an empty path"),
        "json-nul": (["--json", "a\0b"], "contains a NUL character"),
        "json-fifo": (["--json", str(fifo)], "is not a regular file"),
        "json-unwritable-dir": (["--json", "/proc/tinytorch-results.json"], "is not writable"),
        "plot-is-a-file": (["--plot", str(a_file)], "exists and is not a directory"),
        "plot-under-a-file": (["--plot", str(a_file / "curves")], "is not a directory, so"),
        "plot-unwritable": (["--plot", "/proc/tinytorch-curves"], "is not writable"),
        "mnist-dir-missing": (["--mnist-dir", str(tmp_path / "nope")], "does not exist"),
        "mnist-dir-is-a-file": (["--mnist-dir", str(a_file)], "is not a directory"),
    }


CASES = sorted([
    "json-is-a-directory", "json-under-a-file", "json-deep-under-a-file", "json-name-too-long",
    "json-path-too-long", "json-empty", "json-nul", "json-fifo", "json-unwritable-dir", "plot-is-a-file",
    "plot-under-a-file", "plot-unwritable", "mnist-dir-missing", "mnist-dir-is-a-file",
])


@pytest.mark.parametrize("case", CASES)
def test_bad_output_paths_are_refused_before_anything_trains(hostile, tmp_path, capsys, case):
    if case.endswith("unwritable-dir") or case == "plot-unwritable":
        if not os.path.isdir("/proc"):
            pytest.skip("needs /proc")
    argv, message = _bad_paths(tmp_path)[case]
    option = argv[0]
    with pytest.raises(SystemExit) as info:
        main(["milestones", "verify", "trained", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {option} must name" in err and message in err, err
    assert not hostile  # refused before training
    assert "Traceback" not in err


def test_json_and_plot_in_the_same_place_are_refused_before_training(hostile, tmp_path, capsys):
    spot = str(tmp_path / "results")
    assert main(["milestones", "verify", "trained", "--json", spot, "--plot", spot]) == 2
    assert "the JSON file would be where the curves' directory goes" in capsys.readouterr().out
    assert not hostile


def test_missing_parent_folders_of_an_output_are_created(hostile, tmp_path):
    out = tmp_path / "new" / "deeper" / "results.json"
    assert main(["milestones", "verify", "trained", "--quiet", "--json", str(out)]) == 1  # its check fails
    assert json.loads(out.read_text())["milestones"][0]["name"] == "trained"
    assert [p.name for p in (tmp_path / "new" / "deeper").iterdir()] == ["results.json"]


def test_checking_a_path_leaves_nothing_behind(tmp_path):
    from tinytorch_core.cli import check_output_path

    existing = tmp_path / "old.json"
    existing.write_text("keep")
    check_output_path(existing)
    check_output_path(tmp_path / "new.json")
    check_output_path(tmp_path / "plots", directory=True)
    check_output_path(tmp_path, directory=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"] and existing.read_text() == "keep"


def test_results_that_cannot_be_written_after_the_run_are_an_error_not_a_traceback(hostile, tmp_path, capsys,
                                                                                     monkeypatch):
    def disk_full(path, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_json", disk_full)
    code = main(["milestones", "verify", "crash", "--quiet", "--json", str(tmp_path / "r.json")])
    assert code == 1
    out = capsys.readouterr().out
    assert "could not write the results to" in out and "No space left on device" in out


# ---- rich markup --------------------------------------------------------------------------------------------
def test_matplotlib_hint_keeps_the_extra_in_brackets(hostile, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["milestones", "verify", "trained", "--plot", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "pip install './milestones[plot]'" in out
    assert not hostile


def test_plugin_texts_with_markup_print_literally_in_list(hostile, capsys):
    assert main(["milestones", "list"]) == 0
    out = capsys.readouterr().out
    assert f"T {MARKUP}"[:20] in out.replace("\n", "")
    assert f"spatial {MARKUP}" in out  # the locked milestone's reason


def test_plugin_texts_with_markup_print_literally_in_verify(hostile, capsys):
    assert main(["milestones", "verify", "trained", "crash", "locked"]) == 1
    out = capsys.readouterr().out
    for text in (f"T {MARKUP} 1 (trained)", f"[model {MARKUP}] check {MARKUP}: detail {MARKUP}",
                 f"error {MARKUP}", f"L {MARKUP} 3 (locked)", f"spatial {MARKUP}"):
        assert text in out, text


def test_user_text_in_unknown_names_prints_literally(hostile, capsys):
    assert main(["milestones", "verify", "[/]", "[red]x"]) == 2
    assert "unknown milestone(s) [/], [red]x" in capsys.readouterr().out


def test_emoji_codes_stay_literal(hostile, capsys):
    console = report.make_console()
    console.print(report.escape(":smile: [plot]"))
    assert ":smile: [plot]" in capsys.readouterr().out


def test_verify_output_does_not_wrap_markup_into_json(hostile, tmp_path):
    out = tmp_path / "r.json"
    main(["milestones", "verify", "trained", "--quiet", "--json", str(out)])
    payload = json.loads(out.read_text())
    assert payload["milestones"][0]["title"] == f"T {MARKUP}"


def test_progress_bar_labels_with_markup_do_not_crash():
    import io

    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, emoji=False)
    progress = report.progress_factory(console, enabled=True)
    with progress("model [/][/][plot]", total=10) as bar:  # more closing tags than the column opens
        for _ in range(10):
            bar.advance(0.5)
    assert "model [/][/][plot]" in out.getvalue()


def _raising_parts():
    yield from ()
    raise ValueError("half a part")


def _exits(options):
    raise SystemExit(3)


@pytest.mark.parametrize("run, said", [
    (_exits, "SystemExit"),
    # a run returning no MilestoneOutcome crashed `milestones verify` (AttributeError: no .parts)
    (lambda options: None, "returned NoneType; its run must return a MilestoneOutcome"),
    (lambda options: "done", "returned str; its run must return a MilestoneOutcome"),
    (lambda options: 1.0, "returned float; its run must return a MilestoneOutcome"),
    # a MilestoneOutcome holding the wrong things crashed the run or the report with a traceback
    (lambda options: MilestoneOutcome(parts=[object()]), "malformed MilestoneOutcome: parts must be PartResult"),
    (lambda options: MilestoneOutcome(parts=None), "malformed MilestoneOutcome: TypeError"),
    (lambda options: MilestoneOutcome(parts=_raising_parts()), "malformed MilestoneOutcome: ValueError: half a part"),
    (lambda options: MilestoneOutcome(parts=_trained(options).parts, samples=5), "malformed MilestoneOutcome: TypeError"),
    (lambda options: MilestoneOutcome(parts=_trained(options).parts, headline=7), "headline must be the index of a part"),
    (lambda options: MilestoneOutcome(parts=_trained(options).parts, checks=[Check("c", "yes")]),
     "each Check's passed must be True or False"),
], ids=["sys-exit", "none", "text", "number", "part-object", "parts-none", "parts-raise", "samples-int",
        "headline-out-of-range", "passed-text"])
def test_a_broken_plugin_milestone_is_an_error_and_the_others_still_run(capsys, run, said):
    def register(register):
        register(Milestone(name="broken", year=1, title="Broken", requires=(), run=run))
        register(Milestone(name="trained", year=2, title="Trained", requires=(), run=_trained))

    runtime = Runtime([FakeEntryPoint("milestones", milestones_plugin),
                       FakeEntryPoint("broken", plugin_module("broken", tinytorch_register_milestones=register))],
                      environ={})
    with use_runtime(runtime):
        code = main(["milestones", "verify"])
    out = capsys.readouterr().out
    assert code == 1
    assert said in " ".join(out.split()) and "Trained" in out
