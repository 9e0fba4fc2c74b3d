"""The ``tinytorch`` program (and ``python -m tinytorch_core``): ``cli.main``, then exit."""

import os
import sys

from .cli import main
from .host.runtime import current_runtime


def run() -> None:
    """Run the command and exit with its status. After a plugin blocked past its time limit, exit
    at once: its thread, left behind, may hold what interpreter shutdown would wait for forever."""
    try:
        status = main()
    except SystemExit as exit_:  # argparse: --help, usage errors
        status = exit_.code if isinstance(exit_.code, int) else (exit_.code is not None)
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
    worker = getattr(current_runtime(), "plugin_worker", None)
    if worker is not None and worker.abandoned:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(status))
    sys.exit(status)


if __name__ == "__main__":
    run()
