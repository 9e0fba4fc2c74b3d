"""The ``tinytorch`` command: the curriculum, the installed plugins, op checks, and plugin commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from . import catalog
from .host.errors import PluginLoadError, PluginWarning
from .host.runtime import LOADED, Runtime, current_runtime


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table (core keeps its runtime dependencies to numpy and pluggy)."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stages_rows(runtime: Runtime) -> list[dict]:
    rows = []
    for pkg in catalog.STAGES:
        status, record = runtime.stage_status(pkg.name)
        rows.append(
            {
                "order": pkg.order,
                "stage": pkg.name,
                "distribution": pkg.distribution,
                "version": record.version if record else "",
                "status": status,
                "reason": record.reason if record else "",
                "introduces": pkg.introduces,
                "install": catalog.install_command(pkg.name),
            }
        )
    for name, record in runtime.stages.items():
        if catalog.get(name) is None:  # a third-party stage
            rows.append(
                {
                    "order": runtime._stage_rank(record),
                    "stage": name,
                    "distribution": record.distribution,
                    "version": record.version,
                    "status": record.status,
                    "reason": record.reason,
                    "introduces": record.title,
                    "install": f"pip install <{record.distribution}>",
                }
            )
    return rows


def cmd_stages(args, runtime: Runtime) -> int:
    rows = stages_rows(runtime)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        format_table(
            ["#", "stage", "distribution", "version", "status", "introduces", "install (from the repo root)"],
            [
                [r["order"], r["stage"], r["distribution"], r["version"] or "-", r["status"], r["introduces"],
                 "installed" if r["status"] == LOADED else r["install"]]
                for r in rows
            ],
        )
    )
    problems = [r for r in rows if r["reason"]]
    for r in problems:
        print(f"\n{r['stage']}: {r['status']}: {r['reason']}")
    return 0


def cmd_plugins(args, runtime: Runtime) -> int:
    records = list(runtime.plugins.values())
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "distribution": r.distribution,
                        "version": r.version,
                        "stage": r.stage,
                        "status": r.status,
                        "reason": r.reason,
                        "ops": r.ops,
                        "symbols": r.symbols,
                        "milestones": r.milestones,
                        "commands": r.commands,
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return 0
    print(
        format_table(
            ["plugin", "distribution", "version", "stage", "status", "ops", "layers & symbols"],
            [[r.name, r.distribution, r.version, r.stage or "-", r.status, len(r.ops), len(r.symbols)]
             for r in records],
        )
    )
    for r in records:
        if r.reason:
            print(f"\n{r.name}: {r.status}: {r.reason}")
        elif r.ops or r.symbols:
            print(f"\n{r.name}:")
            if r.ops:
                print("  ops:    " + ", ".join(r.ops))
            if r.symbols:
                print("  layers: " + ", ".join(r.symbols))
    return 0


def cmd_check(args, runtime: Runtime) -> int:
    from .testing import opcheck

    failures = 0
    if args.stage:
        status, record = runtime.stage_status(args.stage)
        if status != LOADED:
            detail = record.reason if record and record.reason else (
                catalog.install_command(args.stage) if catalog.get(args.stage) else "")
            print(f"stage '{args.stage}' is {status}" + (f": {detail}" if detail else ""))
            return 1
        names = [n for n, e in runtime.ops.items() if e.stage == args.stage]
    else:
        names = list(runtime.ops)
        for r in runtime.plugins.values():
            if r.status not in (LOADED, "blocked"):
                print(f"FAIL  plugin {r.name}: {r.status}: {r.reason}")
                failures += 1
    for name in names:
        try:
            report = opcheck(name, runtime=runtime)
        except BaseException as exc:  # report every op, not just the first failure (sys.exit in a plugin too)
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures += 1
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}")
        else:
            print(f"ok    {name}  ({report.samples_checked} samples)")
    print(f"\n{len(names)} op(s) checked, {failures} failure(s)")
    return 1 if failures else 0


def cmd_new_plugin(args, runtime: Runtime) -> int:
    from . import scaffold

    try:
        created = scaffold.create_plugin(args.name, directory=args.dir, requires=args.requires)
    except scaffold.ScaffoldError as exc:
        print(f"tinytorch new-plugin: error: {exc}", file=sys.stderr)
        return 2
    print(scaffold.next_steps(created))
    installed = runtime.stages.get(args.name) or runtime.plugins.get(args.name)
    if installed is not None:  # legal, but installing the new one next to it would clash
        print(f"\nnote: {installed.describe()} already provides '{args.name}' in this environment; "
              "uninstall it before installing the new one", file=sys.stderr)
    return 0


def build_parser(runtime: Runtime) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinytorch", description="TinyTorch, plugin edition")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("stages", help="the curriculum: every stage, its status and install command")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_stages)
    p = sub.add_parser("plugins", help="installed plugins with their ops and layers")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_plugins)
    p = sub.add_parser("check", help="gradient-check every registered op (non-zero exit on failure)")
    p.add_argument("stage", nargs="?", help="only the ops of this stage")
    p.set_defaults(handler=cmd_check)
    p = sub.add_parser("new-plugin", help="create a new plugin project: pyproject, example op and layer, tests")
    p.add_argument("name", help="the new stage's name, a lower-case Python identifier (e.g. swish)")
    p.add_argument("--dir", metavar="PATH", help="the folder to create (default: ./tinytorch-NAME)")
    p.add_argument("--requires", nargs="+", action="extend", metavar="STAGE",
                   help="the stages it builds on (default: nn)")
    p.set_defaults(handler=cmd_new_plugin)
    for command in runtime.commands.values():
        p = sub.add_parser(command.name, help=command.help)
        try:
            command.setup(p)
        except BaseException as exc:  # a broken plugin command (even one calling sys.exit) must not take the CLI down
            if isinstance(exc, KeyboardInterrupt):
                raise
            print(f"tinytorch: command '{command.name}' from plugin '{command.plugin}' is broken: {exc}",
                  file=sys.stderr)
            continue
        p.set_defaults(handler=command.run)
    return parser


#: commands that show the plugins' state: in strict mode they still print it, then exit 1
_DIAGNOSTIC_COMMANDS = {"stages", "plugins"}


def main(argv=None) -> int:
    runtime = current_runtime()
    load_error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        try:
            runtime.load()
        except PluginLoadError as exc:  # TINYTORCH_STRICT_PLUGINS=1 and a plugin failed
            load_error = exc
    for w in caught:  # one line per broken plugin, then carry on
        print(str(w.message), file=sys.stderr)
    if load_error is not None:
        print(f"tinytorch: error: {load_error}", file=sys.stderr)
    parser = build_parser(runtime)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1 if load_error is not None else 0
    try:
        if load_error is not None:
            if args.command in _DIAGNOSTIC_COMMANDS:
                with runtime.inspecting():
                    args.handler(args, runtime)
            return 1
        return int(args.handler(args, runtime) or 0)
    except BrokenPipeError:  # `tinytorch plugins | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


__all__ = ["build_parser", "format_table", "main"]
