"""Showing results: rich tables, progress bars, JSON and PNG curves."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .runner import ERROR, FAILED, LOCKED, PASSED

STATUS_STYLE = {PASSED: "bold green", FAILED: "bold red", ERROR: "bold red", LOCKED: "yellow"}


def make_console(quiet: bool = False) -> Console:
    """The console every milestones command prints to.

    Text from users and plugins (names, titles, reasons, errors, install commands such as
    ``pip install './milestones[plot]'``) goes through ``rich.markup.escape`` or ``markup=False``,
    so it prints literally; ``emoji=False`` keeps ``:name:`` literal too.
    """
    # soft_wrap: a line of prose is never cut into lines mid-sentence (the terminal wraps it)
    console = Console(highlight=False, emoji=False, soft_wrap=True)
    if not console.is_terminal:  # piped output: wide enough that tables do not wrap
        console = Console(highlight=False, emoji=False, soft_wrap=True, width=150)
    return console


def progress_factory(console: Console, enabled: bool):
    """``progress(label, total)`` context managers drawing a rich bar (or nothing)."""

    @contextlib.contextmanager
    def progress(label: str, total: int):
        if not enabled:
            yield _Silent()
            return
        columns = (
            TextColumn("  [cyan]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(escape(str(label)[:48]), total=total, loss="-")
            yield _Advance(bar, task)

    return progress


class _Silent:
    def advance(self, loss: float) -> None:
        pass


class _Advance:
    def __init__(self, bar: Progress, task):
        self.bar, self.task, self.count = bar, task, 0

    def advance(self, loss: float) -> None:
        self.count += 1
        if self.count % 5 == 0:  # redrawing every step would cost more than a small step
            self.bar.update(self.task, advance=5, loss=f"{loss:.4f}")


def _pct(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.2f}%"


def _loss(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _status(status: str) -> str:
    style = STATUS_STYLE.get(status)
    text = escape(str(status).upper())
    return f"[{style}]{text}[/]" if style else text


def _provided_by(result) -> str:
    """`` on my-spatial 0.1.0``: the providers of the stages a milestone ran on, where one is not
    the reference distribution (the report then says whose code was verified)."""
    from tinytorch_core import catalog

    own = [f"{provider}" for stage, provider in result.providers.items()
           if catalog.get(stage) is not None and not provider.startswith(catalog.get(stage).distribution + " ")]
    return f" on {', '.join(own)}" if own else ""


#: the columns of a milestone's table, each header saying what its number is
MILESTONE_COLUMNS = (
    ("model", "left"),
    ("params with a gradient", "right"),
    ("gradient entries checked by finite differences", "right"),
    ("params with zero gradient by design", "right"),
    ("params changed by training", "right"),
    ("training loss first -> last", "right"),
    ("loss drop", "right"),
    ("metric", "left"),
    ("value", "right"),
    ("time", "right"),
    ("verdict", "left"),
)


def milestone_table(result) -> Table:
    """One row per trained model: gradients, updates, loss, metric, time, verdict."""
    rows = [_part_row(part) for part in result.parts]
    table = Table(title=escape(f"{result.title} {result.year} ({result.name}){_provided_by(result)}"),
                  title_justify="left")
    for k, (header, justify) in enumerate(MILESTONE_COLUMNS):
        # a narrow table wraps the long headers, never a number or a name
        table.add_column(header, justify=justify, min_width=max((len(row[k]) for row in rows), default=1))
    for row in rows:
        table.add_row(*map(escape, row[:-1]), _status(row[-1]))
    return table


def _part_row(part) -> list[str]:
    """One trained model's cells as plain text, in the order of ``MILESTONE_COLUMNS``."""
    g = part.gradients
    return [
        str(part.label),
        "-" if g is None else f"{g.with_gradient}/{g.total}",
        "-" if g is None else str(g.coordinates),
        "-" if g is None else str(len(g.declared_zero)),
        f"{part.moved}/{part.movable}",
        f"{_loss(part.loss_first)} -> {_loss(part.loss_last)}",
        _pct(part.loss_drop),
        str(part.metric_name),
        _pct(part.metric),
        f"{part.time_s:.1f}s",
        PASSED if part.passed else FAILED,
    ]


def print_milestone(console: Console, result, verbose: bool = False) -> None:
    if result.status == LOCKED:
        console.print(f"[yellow]LOCKED[/] {escape(f'{result.title} {result.year} ({result.name}): {result.locked_reason}')}")
        if result.install:
            console.print(f"       install: [bold]{escape(str(result.install))}[/]")
        console.print()
        return
    if result.status == ERROR:
        console.print(f"[bold red]ERROR[/] {escape(f'{result.title} {result.year} ({result.name}):')}", end=" ")
        console.print(result.error, markup=False)
        console.print()
        return
    if result.parts:
        console.print(milestone_table(result))
    if result.data:
        console.print(f"  data: {result.data}", markup=False)
    for part in result.parts:
        if verbose and part.architecture:
            console.print(f"  {part.label}: {part.architecture}", markup=False)
    for label, check in result.all_checks():
        if verbose or not check.passed:
            mark = "[green]ok  [/]" if check.passed else "[bold red]FAIL[/]"
            console.print(f"  {mark} {escape(f'[{label}] {check.name}: {check.detail}')}")
    for part in result.parts:
        g = part.gradients
        if g is not None and g.declared_zero:
            console.print(f"  [{part.label}] zero gradient by design (checked to be 0, and against finite "
                          f"differences): {', '.join(g.declared_zero)}", markup=False)
        if verbose:
            for note in part.notes:
                console.print(f"  [{part.label}] {note}", markup=False)
    if result.figures:
        console.print(figures_table(result.figures))
    for sample in result.samples:
        console.print("  generated sample:")
        for line in sample.splitlines() or [""]:
            console.print(f"    | {line}", markup=False)
    console.print()


def figures_table(rows: list) -> Table:
    """A milestone's measured figures, one technique per row, side by side with its baseline."""
    table = Table(title="each technique against the float32 baseline", title_justify="left")
    for header in ("technique", "size on disk", "latency", "test accuracy", "note"):
        table.add_column(header, justify="left" if header in ("technique", "note") else "right")
    for row in rows:
        size, latency, accuracy = row.get("size_bytes"), row.get("latency_ms"), row.get("accuracy_pct")
        table.add_row(escape(str(row.get("technique", ""))), "-" if size is None else f"{size:,} B",
                      "-" if latency is None else f"{latency:.2f} ms", "-" if accuracy is None else f"{accuracy:.2f} %",
                      escape(str(row.get("note", ""))))
    return table


def headline(result) -> str:
    """The milestone's main number, saying which model and which metric it is
    ("sequence reversal: held-out token acc 100.00%"): one part of a milestone may train several models."""
    if result.status in (LOCKED, ERROR) or not result.parts:
        return "-"
    part = result.parts[result.headline]
    return f"{part.label}: {part.metric_name} {_pct(result.headline_metric())}"


def summary_table(results, total_s: float) -> Table:
    table = Table(title="Milestones", title_justify="left", caption=f"total {total_s:.1f} s",
                  caption_justify="left")
    for header, justify in (("milestone", "left"), ("year", "right"), ("status", "left"),
                            ("headline result (model: metric)", "left"), ("checks passed", "right"),
                            ("time", "right"), ("note", "left")):
        table.add_column(header, justify=justify)
    for r in results:
        checks = r.all_checks()
        passed = sum(1 for _, c in checks if c.passed)
        note = r.install if r.status == LOCKED else (r.error.splitlines()[0] if r.error else "")
        table.add_row(
            escape(str(r.title)), str(r.year), _status(r.status), escape(headline(r)),
            "-" if not checks else f"{passed}/{len(checks)}",
            f"{r.time_s:.1f}s", escape(str(note)),
        )
    return table


def results_json(results, *, seed: int, total_s: float, data_source: str) -> dict:
    return {
        "seed": seed,
        "data": data_source,
        "total_time_s": round(total_s, 3),
        "passed": not any(r.failed for r in results),
        "counts": {s: sum(1 for r in results if r.status == s) for s in (PASSED, FAILED, ERROR, LOCKED)},
        "milestones": [r.to_dict() for r in results],
    }


def write_json(path, payload: dict) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


class PlotUnavailable(RuntimeError):
    pass


def require_matplotlib():
    """Import matplotlib (only when --plot is given), with a clear message if it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable(
            "--plot needs matplotlib, which is not installed; install the extra with: "
            "pip install './milestones[plot]'  (or: pip install matplotlib)"
        ) from exc
    return plt


def write_plots(results, directory) -> list:
    """One PNG per milestone: training loss (per step) and the metric (per evaluation)."""
    plt = require_matplotlib()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        if not r.parts:
            continue
        fig, axes = plt.subplots(len(r.parts), 2, figsize=(10, 3.2 * len(r.parts)), squeeze=False)
        for row, part in zip(axes, r.parts):
            steps, losses = part.curves.get("step", []), part.curves.get("loss", [])
            row[0].plot(steps, losses, linewidth=0.8)
            row[0].set_yscale("log")
            row[0].set_xlabel("step")
            row[0].set_ylabel("training loss (batch)")
            row[0].set_title(part.label, fontsize=9)
            for key, text in (("final_loss_max", "final loss bar"), ("final_loss_min", "loss floor")):
                if part.bars.get(key) is not None:
                    row[0].axhline(part.bars[key], color="red", linestyle="--", linewidth=0.8, label=text)
                    row[0].legend(loc="upper right", fontsize=8)
            row[1].plot(part.curves.get("eval_step", []), [100 * v for v in part.curves.get("metric", [])],
                        marker="o", markersize=3)
            for key, text in (("metric_min", "bar >= {:g}%"), ("metric_max", "bar <= {:g}%")):
                bar = part.bars.get(key)
                if bar is not None:
                    row[1].axhline(100 * bar, color="red", linestyle="--", linewidth=0.8, label=text.format(100 * bar))
                    row[1].legend(loc="lower right", fontsize=8)
            row[1].set_xlabel("step")
            row[1].set_ylabel(f"{part.metric_name} (%)")
        fig.suptitle(f"{r.title} {r.year}: {r.status}")
        fig.tight_layout()
        path = directory / f"{r.name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
