"""The ``tinytorch`` command: the curriculum, the installed plugins, op checks, and plugin commands."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import stat
import sys
import tempfile
import warnings
from pathlib import Path

from . import catalog, files
from .host.errors import PluginLoadError, PluginWarning
from .host.records import NOT_INSTALLED
from .host.runtime import LOADED, Runtime, current_runtime, describe_exception


# ---- checks of option values, shared by every subcommand (plugins' commands too) -----------------------
class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser; a check whose message starts with the option's name is not prefixed again
    ("argument --seed: --seed must be ..." reads "--seed must be ...")."""

    def error(self, message):
        match = re.match(r"argument (\S+): (.*)\Z", message, re.S)
        if match and any(match.group(2).startswith(name + " ") for name in match.group(1).split("/")):
            message = match.group(2)
        super().error(message)


def shown_value(text, limit: int = 60) -> str:
    """A user's value as a message quotes it: short and printable as is, anything else as a cut repr."""
    text = str(text)
    if text and text.isprintable() and len(text) <= limit and text.strip() == text:
        return text
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def integer_option(option: str, low: int, high: int | None = None, *, high_text: str | None = None):
    """An argparse ``type=``: an integer from ``low`` to ``high``, else a message saying what is allowed."""
    allowed = f"from {low} to {high_text or high}" if high is not None else f"of at least {low}"

    def parse(text):
        try:
            value = int(str(text), 10)
        except ValueError:  # not an integer, or too many digits to convert
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{option} must be an integer {allowed}, got {shown_value(text)}")
        return value

    parse.__name__ = "integer"
    return parse


def _probe_directory(directory: Path) -> str:
    """'' if a new file can be created in ``directory`` (tried, then removed), else why not."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".tinytorch-probe-")
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return ""


class _Unwritable(Exception):
    """Why a path cannot be written; ``check_output_path`` adds what the option expected."""


def check_output_path(path, *, directory: bool = False, option: str = "the output path",
                      regular_only: bool = False) -> Path:
    """``path`` as a ``Path`` if a file (``directory=False``) or a directory of files could be written
    there; else ``ValueError`` saying why. Missing parent folders are fine (they are created) as long
    as the nearest existing one is a writable directory. A character device (``/dev/null``) is a
    file that can be written, unless ``regular_only`` (for writers that refuse devices). Nothing is
    left behind by the check."""
    what = "a directory that can be written" if directory else "a file that can be written"
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    try:
        target = _absolute_path(text)
        existing = _nearest_existing(target)
        _check_new_names(target, existing)
        if existing != target:
            _check_creatable(text, existing)
        elif directory:
            _check_existing_directory(text, target)
        else:
            _check_existing_file(text, target, regular_only)
    except _Unwritable as why:
        raise ValueError(f"{option} must name {what}: {why}") from None
    return Path(text)


def _absolute_path(text: str) -> str:
    """The absolute form of a path the operating system could accept at all."""
    if not text:
        raise _Unwritable("got an empty path")
    if "\0" in text:
        raise _Unwritable(f"{shown_value(text)} contains a NUL character")
    target = os.path.abspath(text)
    if len(os.fsencode(target)) >= 4096:
        raise _Unwritable(f"{shown_value(text)} is longer than the 4096 bytes a path may have")
    return target


def _nearest_existing(target: str) -> str:
    """``target`` itself if it exists (a broken link counts), else its nearest existing parent."""
    # os.path's exists/isdir/islink answer False on any OSError (a name too long, a loop, ...)
    existing = target
    while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    return existing


def _check_new_names(target: str, existing: str) -> None:
    """Every folder or file name still to be created fits the file system's name limit."""
    to_create = Path(target).relative_to(existing).parts if existing != target else ()
    name_max = files.name_max(existing if os.path.isdir(existing) else os.path.dirname(existing))
    for part in to_create:
        if len(os.fsencode(part)) > name_max:
            raise _Unwritable(f"the name {shown_value(part)} is longer than the {name_max} bytes the file system allows")


def _check_creatable(text: str, existing: str) -> None:
    """A missing path can be created: its nearest existing parent is a writable directory."""
    _require_writable_directory(
        existing,
        not_a_directory=f"{shown_value(existing)} is not a directory, so {shown_value(text)} cannot be created",
        not_writable=f"cannot create {shown_value(text)}: the directory {shown_value(existing)} is not writable",
    )


def _check_existing_directory(text: str, target: str) -> None:
    _require_writable_directory(
        target,
        not_a_directory=f"{shown_value(text)} exists and is not a directory",
        not_writable=f"cannot create files in {shown_value(text)}",
    )


def _require_writable_directory(path: str, *, not_a_directory: str, not_writable: str) -> None:
    if not os.path.isdir(path):
        raise _Unwritable(not_a_directory)
    why = _probe_directory(path)
    if why:
        raise _Unwritable(f"{not_writable} ({why})")


def _check_existing_file(text: str, target: str, regular_only: bool = False) -> None:
    if os.path.isdir(target):
        raise _Unwritable(f"{shown_value(text)} is a directory; give the path of a file")
    if not os.path.exists(target):
        raise _Unwritable(f"{shown_value(text)} is a broken symbolic link")
    mode = os.stat(target).st_mode
    if not (stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not regular_only)):  # a FIFO would block
        raise _Unwritable(f"{shown_value(text)} is not a regular file")
    try:
        with open(target, "ab"):  # opening to append changes nothing
            pass
    except OSError as exc:
        raise _Unwritable(f"{shown_value(text)} cannot be written ({exc.strerror or type(exc).__name__})") from None


def output_file_option(option: str, regular_only: bool = False):
    """An argparse ``type=`` for an output file (``--json PATH``), checked before any work starts."""
    return _path_type(option, directory=False, regular_only=regular_only)


def output_directory_option(option: str):
    """An argparse ``type=`` for an output directory (``--plot DIR``), checked before any work starts."""
    return _path_type(option, directory=True)


def _path_type(option: str, directory: bool, regular_only: bool = False):
    def parse(text):
        try:
            check_output_path(text, directory=directory, option=option, regular_only=regular_only)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    parse.__name__ = "directory" if directory else "path"
    return parse


def input_directory_option(option: str):
    """An argparse ``type=`` for a directory to read (``--mnist-dir DIR``): it must exist."""

    def parse(text):
        if not text:
            raise argparse.ArgumentTypeError(f"{option} must name an existing directory: got an empty path")
        if not os.path.isdir(text):
            why = "is not a directory" if os.path.exists(text) else "does not exist"
            raise argparse.ArgumentTypeError(f"{option} must name an existing directory: {shown_value(text)} {why}")
        return text

    parse.__name__ = "directory"
    return parse


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table (core keeps its runtime dependencies to numpy and pluggy)."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stages_rows(runtime: Runtime) -> list[dict]:
    """The curriculum's stages in order, then the third-party stages (which have no place in it)."""
    rows = [_curriculum_row(runtime, pkg) for pkg in catalog.STAGES]
    third_party = [(name, r) for name, r in runtime.stages.items() if catalog.get(name) is None]
    rows += [_third_party_row(name, record) for name, record in sorted(third_party)]
    return rows


def _curriculum_row(runtime: Runtime, pkg) -> dict:
    status, record = runtime.stage_status(pkg.name)
    active = record if status == LOADED else None
    return {
        "order": pkg.order,
        "stage": pkg.name,
        "requires": list(pkg.requires),
        "distribution": pkg.distribution,  # the reference provider: what to install
        "provider": active.distribution if active else "",
        "version": record.version if record else "",
        "status": status,
        "reason": record.reason if record else "",
        "candidates": [r.distribution for r in runtime.candidates.get(pkg.name, []) if r is not active],
        "missing": runtime.missing_symbols(pkg.name) if active else [],
        "introduces": pkg.introduces,
        "install": catalog.install_command(pkg.name),
    }


def _third_party_row(name: str, record) -> dict:
    """A stage from outside the curriculum: no order (``None``), listed after the curriculum."""
    return {
        "order": None,
        "stage": name,
        "requires": list(record.requires),
        "distribution": record.distribution,
        "provider": record.distribution if record.status == LOADED else "",
        "version": record.version,
        "status": record.status,
        "reason": record.reason,
        "candidates": [],
        "missing": [],
        "introduces": record.title,
        "install": f"pip install <{record.distribution}>",
    }


def _install_cell(row: dict) -> str:
    """What to do about a stage: nothing, the install command, or (installed but unusable) the reason below."""
    if row["status"] == LOADED:
        return "installed"
    if row["status"] == NOT_INSTALLED:
        return row["install"]
    return f"installed but {row['status']}: see below"


def cmd_stages(args, runtime: Runtime) -> int:
    rows = stages_rows(runtime)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        format_table(
            ["#", "stage", "needs", "provider", "version", "status", "introduces", "install (from the repo root)"],
            [
                ["plugin" if r["order"] is None else r["order"], r["stage"], ", ".join(r["requires"]) or "-",
                 r["provider"] or r["distribution"], r["version"] or "-", r["status"], r["introduces"],
                 _install_cell(r)]
                for r in rows
            ],
        )
    )
    problems = [r for r in rows if r["reason"]]
    for r in problems:
        print(f"\n{r['stage']}: {r['status']}: {r['reason']}")
    for r in rows:
        if r["candidates"]:
            print(f"\n{r['stage']}: also installed, not active: {', '.join(r['candidates'])} "
                  f"(choose with TINYTORCH_PROVIDERS={r['stage']}=<distribution>)")
        if r["missing"]:
            print(f"\n{r['stage']}: {r['provider']} does not provide {', '.join(r['missing'])}")
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
    if args.stage is not None:  # "" names no stage: refused below, not read as "every stage"
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
            print(f"FAIL  {name}: {describe_exception(exc)}")
        else:
            samples = report.samples_checked
            print(f"ok    {name}  ({samples} sample{'' if samples == 1 else 's'})")
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
    parser = ArgumentParser(prog="tinytorch", description="TinyTorch, plugin edition")
    parser.broken_commands = []  # what plugin commands failed to set up
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
        p = None
        try:
            p = sub.add_parser(command.name, help=command.help.replace("%", "%%"))  # argparse formats help with %
            runtime.plugin_worker.run(f"the setup of command '{command.name}'", lambda parser=p: command.setup(parser))
        except BaseException as exc:  # a broken plugin command (even one calling sys.exit) must not take the CLI down
            if isinstance(exc, KeyboardInterrupt):
                raise
            problem = (f"tinytorch: command '{command.name}' from plugin '{command.plugin}' is broken: "
                       f"{describe_exception(exc)}")
            print(problem, file=sys.stderr)
            parser.broken_commands.append(problem)  # under TINYTORCH_STRICT_PLUGINS=1: an error (main)
            if p is not None:  # running it says why instead of doing nothing
                p.set_defaults(handler=lambda args, runtime, problem=problem: print(problem, file=sys.stderr) or 1)
            continue
        p.set_defaults(handler=command.run)
    if catalog.MILESTONES.name not in runtime.commands:  # say how to get it, not "invalid choice"
        _add_unavailable_suite(sub, runtime)
    return parser


def _add_unavailable_suite(sub, runtime: Runtime) -> None:
    """``tinytorch milestones ...`` while the suite cannot run: any arguments, one message, exit 1."""
    why = _why_suite_unavailable(runtime)
    problem = f"tinytorch {catalog.MILESTONES.name}: error: {why}"
    p = sub.add_parser(catalog.MILESTONES.name, description=why, formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="the milestone verification suite (not available here: run it to see why)")
    p.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(handler=lambda args, runtime: print(problem, file=sys.stderr) or 1)


def _why_suite_unavailable(runtime: Runtime) -> str:
    suite = catalog.MILESTONES
    record = runtime.plugins.get(suite.name)
    if record is None:
        return (f"the milestone suite ({suite.distribution}) is not installed; install it from the "
                f"repository root with: {catalog.install_command(suite.name)}")
    if record.status == LOADED:
        return f"{record.describe()} is loaded but registered no '{suite.name}' command"
    return f"{record.describe()} is installed but {record.status}: {record.reason}"


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
    load_error = load_error or (parser.broken_commands[0] if runtime.strict and parser.broken_commands else None)
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
        status = args.handler(args, runtime)
        if status is None or (isinstance(status, int) and not isinstance(status, bool) and 0 <= status <= 255):
            return int(status or 0)  # 256 would reach the shell as 0: success
        print(f"tinytorch {args.command}: the command returned {status!r:.80}, not an exit status", file=sys.stderr)
        return 1  # a plugin command's run returned text, say
    except BrokenPipeError:  # `tinytorch plugins | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


__all__ = ["ArgumentParser", "build_parser", "check_output_path", "format_table", "input_directory_option",
           "integer_option", "main", "output_directory_option", "output_file_option", "shown_value"]
