"""What only one rank should do: save checkpoints, log, draw progress bars.

N ranks writing the same file race; N ranks printing the same line say it N times. Rank 0 does
it for everyone. ``save`` also makes the others wait until the file is complete, so that any
rank may read it right after.
"""

from __future__ import annotations

import sys

import tinytorch_core as tt
from tinytorch_core.checks import non_negative_int

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
    """Iterate over ``iterable``; rank 0 draws a one-line progress bar on stderr (or ``file``).

    The arguments are checked on every rank when ``progress`` is called, not at the first step of
    the loop: a mistake then reads the same on every rank, and names this call."""
    items, total = _checked_progress(iterable, description, total, file)
    if not is_main_process():
        return items
    return _drawn(items, description, total, file if file is not None else sys.stderr)


def _checked_progress(iterable, description, total, file):
    """An iterator over ``iterable`` and the bar's length (None: unknown), after checking the
    arguments of ``progress``."""
    where = "progress"
    if not isinstance(description, str):
        raise TypeError(f"{where}: description must be a str, got {type(description).__name__}")
    if total is not None:
        total = non_negative_int(total, "total", where)
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"{where}: file must be None (stderr) or a text stream with write(), got "
                        f"{type(file).__name__}")
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # taken before iter(): a generator made from it has no length
    try:
        items = iter(iterable)
    except TypeError:  # Python's own words ("'int' object is not iterable") name no call
        raise TypeError(f"{where}: expected an iterable to go through (a DataLoader, a range, a list), got "
                        f"{type(iterable).__name__} {iterable!r:.40}") from None
    return items, total


def _drawn(items, description: str, total: int | None, out):
    """Yield ``items``, redrawing the bar after each one and ending its line at the end."""
    done = 0
    for done, item in enumerate(items, start=1):
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
