"""``tinytorch grade STAGE``: run a stage's conformance suite against its active provider."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .conformance import NOT_IMPLEMENTED, PASSED, SUITES, grade


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", help=f"the stage to grade ({', '.join(sorted(SUITES))})")


def run(args, runtime) -> int:
    if args.stage not in SUITES:
        print(f"tinytorch grade: no conformance suite for stage {args.stage!r}; "
              f"suites exist for: {', '.join(sorted(SUITES))}", file=sys.stderr)
        return 2
    console = Console(emoji=False, highlight=False)
    status, _ = runtime.stage_status(args.stage)
    report = grade(args.stage, runtime)
    table = Table(title=escape(f"stage {report.stage} on {report.provider} ({status})"), title_justify="left")
    for header in ("symbol", "checks", "result", "detail"):
        table.add_column(header)
    style = {PASSED: "green", NOT_IMPLEMENTED: "yellow"}
    for outcome in report.outcomes:
        result = f"[{style.get(outcome.status, 'bold red')}]{escape(outcome.status)}[/]"
        table.add_row(escape(outcome.check.symbol), escape(outcome.check.aspect), result,
                      escape(outcome.detail.splitlines()[0] if outcome.detail else ""))
    console.print(table)
    console.print(escape(f"score: {report.passed}/{len(report.outcomes)} ({report.score:.0%}) for stage "
                         f"{report.stage} on {report.provider}"), markup=False)
    return 0 if report.complete else 1
