"""One rank of a ``tinytorch launch`` job: join the world, keep only rank 0's standard output,
then run the target as ``python script.py`` would.

    python -m tinytorch_distributed.rank train.py --epochs 3
    python -m tinytorch_distributed.rank tinytorch milestones run mlp

A target that is not a file is looked up on PATH: console scripts (``tinytorch``) are small
Python files. Errors go to standard error from every rank, each under its rank's name.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys

from .world import init


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m tinytorch_distributed.rank SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    script = python_script(argv[0])
    job = init()
    if job.rank != 0:
        keep_quiet()
    sys.argv = [script, *argv[1:]]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:  # sys.exit(code): a non-zero code on one rank ends the job too
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if code != 0 and job.size > 1:
            sys.stderr.write(f"[tinytorch.distributed] rank {job.rank} of {job.size} exited with status {code}: "
                             f"aborting all {job.size} ranks\n")
            sys.stderr.flush()
            job.comm.Abort(code)
        return code
    return 0


def python_script(target: str) -> str:
    """``target`` as the path of a Python file: a file, or a command that is one, looked up next
    to this Python first (an environment's console scripts, also when its bin is not on PATH)."""
    beside_python = os.path.join(os.path.dirname(sys.executable), target)
    path = next((p for p in (target, beside_python) if os.path.isfile(p)), None) or shutil.which(target)
    if path is None:
        raise SystemExit(f"tinytorch launch: {target!r} is neither a file nor a command on PATH")
    with open(path, "rb") as handle:
        first_line = handle.readline(200)
    if not (path.endswith(".py") or first_line.startswith(b"#!") and b"python" in first_line):
        raise SystemExit(f"tinytorch launch: {path} is not a Python script (a .py file, or a file "
                         "starting with a python #! line)")
    return path


def keep_quiet() -> None:
    """Send this process's standard output, Python's and the C library's, to /dev/null."""
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
