"""``tinytorch milestones list | run NAME | verify [NAMES...]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tinytorch_core.cli import (
    input_directory_option,
    integer_option,
    output_directory_option,
    output_file_option,
    shown_value,
)

from tinytorch_core import StageUnavailableError

from . import profile_step
from .allocator import tune_malloc
from .blas import blas_threads
from .conformance.integrity import GraderSnapshot, patched_since_loading
from .runner import RUNNER, DEFAULT_SEED, LOCKED, RunOptions, lock_state, ordered_milestones, run_milestone

TIME_BAR_S = 60.0  # the whole default verify must stay under this on a 2-core machine
SEED_MAX = 2**32 - 1  # the widest seed every random source accepts
SEED_OPTION = integer_option("--seed", 0, SEED_MAX, high_text="2**32-1")


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="milestones_action", metavar="ACTION")
    p = sub.add_parser("list", help="every milestone, its year, the stages it needs, locked or not")
    p.add_argument("--json", action="store_true", help="print JSON")
    for name, help_text in (
        ("run", "train one milestone and show every check"),
        ("verify", "run milestones (all by default) with every check; non-zero exit if any fails"),
    ):
        p = sub.add_parser(name, help=help_text)
        if name == "run":
            p.add_argument("names", nargs=1, metavar="NAME", help="the milestone to run")
        else:
            p.add_argument("names", nargs="*", metavar="NAME",
                           help="milestones to verify (default: all but the extended ones)")
            p.add_argument("--all", action="store_true",
                           help="also the extended milestones, which train for minutes (tinygpt)")
        p.add_argument("--seed", type=SEED_OPTION, default=DEFAULT_SEED,
                       help=f"seed of every random source, 0 to 2**32-1 (default {DEFAULT_SEED})")
        p.add_argument("--json", metavar="PATH", type=output_file_option("--json"),
                       help="also write the results as JSON to PATH (checked before training)")
        p.add_argument("--plot", metavar="DIR", type=output_directory_option("--plot"),
                       help="write loss/accuracy curves as PNG into DIR (needs matplotlib; checked before training)")
        images = p.add_mutually_exclusive_group()
        images.add_argument("--mnist-dir", metavar="DIR", type=input_directory_option("--mnist-dir"),
                            help="MLP and CNN read MNIST from the IDX files in DIR instead of the bundled digits")
        images.add_argument("--cifar-dir", metavar="DIR", type=input_directory_option("--cifar-dir"),
                            help="MLP and CNN read CIFAR-10 from its binary files in DIR (CNN bar: 60 %% test accuracy)")
        p.add_argument("--quiet", action="store_true", help="no progress bars; only tables and failures")
        p.add_argument("--compile", action="store_true",
                       help="train through tinytorch_core.compile (needs stage acceleration): same results, faster")
    p = sub.add_parser("profile", help="profile one training step of a milestone's model (needs stage profiling)")
    profile_step.setup(p, SEED_OPTION, output_file_option, input_directory_option, integer_option)


def run(args, runtime) -> int:
    action = getattr(args, "milestones_action", None)
    if action == "list":
        return cmd_list(args, runtime)
    if action in ("run", "verify"):
        return cmd_verify(args, runtime, single=(action == "run"))
    if action == "profile":
        return profile_step.run(args, runtime)
    print("usage: tinytorch milestones {list,run NAME,verify [NAMES...],profile NAME}  (see --help)")
    return 2


def cmd_list(args, runtime) -> int:
    rows = []
    for m in ordered_milestones(runtime):
        reason, install = lock_state(m, runtime)
        rows.append({
            "name": m.name, "year": m.year, "title": m.title, "requires": list(m.requires),
            "status": "locked" if reason else "unlocked", "reason": reason, "install": install,
            "description": m.description, "extended": m.extended,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.markup import escape
    from rich.table import Table  # rich loads only when a milestones command runs

    from .report import make_console

    console = make_console()
    table = Table(title="Milestones (extended ones run with verify --all)", title_justify="left")
    for header in ("name", "year", "milestone", "needs", "status", "install (from the repository root)"):
        table.add_column(header)
    for r in rows:
        status = "[green]unlocked[/]" if r["status"] == "unlocked" else "[yellow]locked[/]"
        status += " (extended)" if r["extended"] else ""
        table.add_row(escape(str(r["name"])), str(r["year"]), escape(str(r["title"])),
                      escape(", ".join(map(str, r["requires"]))), status, escape(r["install"] or "-"))
    console.print(table)
    for r in rows:
        if r["reason"]:
            console.print(f"{r['name']}: {r['reason']}", markup=False)
    return 0


def cmd_verify(args, runtime, single: bool = False) -> int:
    tune_malloc()  # training reuses large temporaries: keep them in the heap (see allocator.py)
    with blas_threads() as blas_note:
        return _verify(args, runtime, single, blas_note)


def _verify(args, runtime, single: bool, blas_note: str) -> int:
    from rich.markup import escape

    from .report import make_console, print_milestone, progress_factory

    console = make_console()
    tampered = _tampered_with() + patched_since_loading(runtime)
    if tampered:  # a plugin changed the code that reports results: nothing it would report counts
        console.print(f"[bold red]milestones: the runner's code was replaced while plugins loaded "
                      f"({escape(', '.join(tampered))}); no result can be trusted[/]")
        return 1
    available = {m.name: m for m in ordered_milestones(runtime)}
    names = list(args.names) or [n for n, m in available.items() if getattr(args, "all", False) or not m.extended]
    refusal = _refusal(args, available, names, runtime)
    if refusal:  # said before any time is spent on training
        console.print(f"[bold red]{escape(refusal)}[/]")
        return 2
    options = RunOptions(
        seed=args.seed, mnist_dir=args.mnist_dir, cifar_dir=args.cifar_dir, runtime=runtime,
        progress=progress_factory(console, console.is_terminal and not args.quiet), compile=args.compile,
    )
    data_source = (f"MNIST from {args.mnist_dir}" if args.mnist_dir else
                   f"CIFAR-10 from {args.cifar_dir}" if args.cifar_dir else "bundled UCI 8x8 digits")
    console.print(f"[bold]TinyTorch milestones[/]: seed {args.seed}, image data: {escape(data_source)}")
    console.print(f"machine: {os.cpu_count()} CPU core(s), {escape(blas_note)}\n")
    results = []
    start = time.perf_counter()
    for name in names:
        result = run_milestone(available[name], options)
        results.append(result)
        print_milestone(console, result, verbose=not args.quiet)
    total = time.perf_counter() - start
    patched = patched_since_loading(runtime)
    if patched:  # a plugin replaced code while the milestones trained: their results cannot be trusted
        console.print(f"[bold red]milestones: code was replaced while they ran ({escape(', '.join(patched))}); "
                      "no result can be trusted[/]")
        return 1
    whole_suite = not (args.mnist_dir or args.cifar_dir or single or args.names or getattr(args, "all", False))
    failed = _print_verdict(console, results, total, whole_suite=whole_suite)
    written_ok = _write_outputs(console, args, results, total, data_source)
    return 1 if failed or not written_ok else 0


def _tampered_with() -> list[str]:
    """The runner's and this module's functions replaced since they were imported."""
    from . import runner

    changed = RUNNER.changed() + _CLI.changed()
    if run_milestone is not RUNNER.value(runner, "run_milestone"):
        changed.append(f"{__name__}.run_milestone")
    return sorted(set(changed))


def _refusal(args, available: dict, names: list, runtime) -> str:
    """Why the command cannot run as asked ('' if it can): unknown names, plots without
    matplotlib, ``--compile`` without the acceleration stage, ``--json`` and ``--plot`` in each
    other's way."""
    from .report import PlotUnavailable, require_matplotlib

    unknown = [n for n in names if n not in available]
    if unknown:
        return f"unknown milestone(s) {', '.join(map(shown_value, unknown))}; known: {', '.join(available)}"
    if getattr(args, "compile", False):
        try:
            runtime.resolve("acceleration", "compile")
        except StageUnavailableError as exc:
            return f"--compile needs the acceleration stage ({exc})"
    if args.plot:
        try:
            require_matplotlib()
        except PlotUnavailable as exc:
            return str(exc)
    # both options were checked alone at parse time; together they must not collide
    return _same_place(args.json, args.plot)


def _print_verdict(console, results: list, total: float, whole_suite: bool) -> bool:
    """The summary table and the one-line verdict; returns whether any milestone failed."""
    from .report import summary_table

    console.print(summary_table(results, total))
    failed = [r for r in results if r.failed]
    locked = [r for r in results if r.status == LOCKED]
    verdict = "[bold red]FAILED[/]" if failed else "[bold green]OK[/]"
    console.print(
        f"{verdict}: {sum(r.status == 'passed' for r in results)} passed, {len(failed)} failed, "
        f"{len(locked)} locked; total time {total:.1f} s"
        + (f" (bar for the whole default verify: {TIME_BAR_S:.0f} s)" if whole_suite else "")
    )
    if whole_suite and total > TIME_BAR_S:
        console.print(f"[yellow]note: slower than the {TIME_BAR_S:.0f} s this suite is sized for "
                      "(a busy machine, or BLAS threads left on: see TINYTORCH_BLAS_THREADS)[/]")
    return bool(failed)


def _write_outputs(console, args, results: list, total: float, data_source: str) -> bool:
    """The ``--json`` file and the ``--plot`` curves, if asked for; returns whether all were written
    (both were checked before training, but the disk may have changed since)."""
    from rich.markup import escape

    from .report import results_json, write_json, write_plots

    written_ok = True
    if args.json:
        try:
            path = write_json(args.json, results_json(results, seed=args.seed, total_s=total, data_source=data_source))
        except OSError as exc:
            console.print(f"[bold red]could not write the results to {escape(str(args.json))}:[/] {escape(str(exc))}")
            written_ok = False
        else:
            console.print(f"results written to {path}", markup=False)
    if args.plot:
        try:
            for path in write_plots(results, args.plot):
                console.print(f"curves written to {path}", markup=False)
        except OSError as exc:
            console.print(f"[bold red]could not write the curves to {escape(str(args.plot))}:[/] {escape(str(exc))}")
            written_ok = False
    return written_ok


def _same_place(json_path, plot_dir) -> str:
    """Why ``--json PATH`` and ``--plot DIR`` collide ('' if they do not)."""
    if not (json_path and plot_dir):
        return ""
    json_at, plot_at = os.path.abspath(json_path), os.path.abspath(plot_dir)
    if json_at == plot_at or plot_at.startswith(json_at + os.sep):
        return f"--json {json_path} and --plot {plot_dir}: the JSON file would be where the curves' directory goes"
    return ""


_CLI = GraderSnapshot(sys.modules[__name__])  # this module as written (see _tampered_with)
