"""``tinytorch launch -n N script.py [args]``: run a script (or a command) as N MPI ranks.

It wraps ``mpiexec``, MPI's own launcher: the one next to the running Python (the ``mpich``
wheel installs it into the environment's ``bin``), else the first on ``PATH``. Each rank runs
``python -m tinytorch_distributed.rank TARGET ...`` (``rank.py``), which joins the world, keeps
only rank 0's standard output, and runs the target. ``mpiexec``'s exit status is the job's:
non-zero when any rank failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tinytorch_core.cli import integer_option


def find_mpiexec() -> str | None:
    """The ``mpiexec`` of this environment (next to ``sys.executable``), else the one on PATH."""
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        candidate = folder / "mpiexec"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("mpiexec")


def command_line(mpiexec: str, processes: int, target: list) -> list:
    """The command that starts ``processes`` ranks of ``target`` (a script and its arguments)."""
    return [mpiexec, "-n", str(processes), sys.executable, "-m", "tinytorch_distributed.rank", *target]


#: ranks one launch may start: MPI runs oversubscribed past the CPU count, but 100,000 ranks on
#: one machine only exhaust it
MAX_PROCESSES = max(64, 4 * (os.cpu_count() or 1))


def setup(parser) -> None:
    parser.add_argument("-n", "--processes", type=integer_option("-n", 1, MAX_PROCESSES), default=2,
                        help=f"how many ranks to start (default 2, at most {MAX_PROCESSES})")
    parser.add_argument("target", nargs=1, metavar="SCRIPT",
                        help="a Python script, or a command installed in this environment (tinytorch)")
    parser.add_argument("arguments", nargs="...", metavar="ARGS", help="passed to the script")


def run(args, runtime) -> int:
    from .rank import python_script  # the target is checked once here, not once per rank

    try:
        python_script(args.target[0])
    except SystemExit as refused:
        print(refused.code, file=sys.stderr)
        return 2
    mpiexec = find_mpiexec()
    if mpiexec is None:
        print("tinytorch launch: no mpiexec found next to this Python or on PATH; install the MPI wheel "
              "(pip install mpich) or load your site's MPI", file=sys.stderr)
        return 1
    command = command_line(mpiexec, args.processes, [*args.target, *args.arguments])
    return subprocess.call(command)
