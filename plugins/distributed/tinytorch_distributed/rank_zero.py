"""What only one rank should do: save checkpoints, log, draw progress bars.

N ranks writing the same file race; N ranks printing the same line say it N times. Rank 0 does
it for everyone. ``save`` also makes the others wait until the file is complete, so that any
rank may read it right after.
"""

from __future__ import annotations

import sys

import tinytorch_core as tt

from .collectives import barrier
from .world import is_main_process


def save(state, path) -> None:
    """Rank 0 writes ``state`` to ``path`` with ``tt.io.save`` (atomic: a temporary file renamed
    into place, never a half-written checkpoint); every rank returns once the file is there."""
    if is_main_process():
        tt.io.save(state, path)
    barrier()


def log(*values, sep: str = " ", file=None) -> None:
    """``print`` on rank 0 only, flushed at once (ranks' outputs interleave otherwise)."""
    if is_main_process():
        print(*values, sep=sep, file=file if file is not None else sys.stdout, flush=True)


def progress(iterable, description: str = "", total: int | None = None, file=None):
    """Iterate over ``iterable``; rank 0 draws a one-line progress bar on stderr."""
    if not is_main_process():
        yield from iterable
        return
    out = file if file is not None else sys.stderr
    total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    done = 0
    for done, item in enumerate(iterable, start=1):
        yield item
        _draw(out, description, done, total)
    out.write("\n")
    out.flush()


def _draw(out, description: str, done: int, total: int | None, width: int = 30) -> None:
    if total:
        filled = min(width, width * done // total)
        out.write(f"\r{description} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    else:
        out.write(f"\r{description} {done}")
    out.flush()
