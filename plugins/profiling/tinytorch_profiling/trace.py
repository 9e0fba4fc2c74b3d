"""Chrome's Trace Event Format: the file chrome://tracing and https://ui.perfetto.dev open.

Every event becomes one *complete* event (``"ph": "X"``) with its start (``ts``) and duration
(``dur``) in microseconds from the start of the profile; ``cat`` is its kind (forward, backward,
module, pass, range), so a viewer can filter op calls from the modules and ranges around them.
"""

from __future__ import annotations

import json
import os
import stat
import threading

from .profiler import Profiler


def trace_events(profiler: Profiler) -> list[dict]:
    pid, tid = os.getpid(), profiler._thread or threading.get_ident()
    events = []
    for event in sorted(profiler.events, key=lambda e: (e.start_ns, e.depth)):
        args = {"module": event.module, "self_us": event.self_ns / 1e3}
        if event.plugin:
            args["plugin"] = event.plugin
        if event.flops is not None:
            args["flops"] = event.flops
        if event.allocated_bytes:
            args["new_memory_bytes"] = event.allocated_bytes
        if event.input_shapes:
            args["input_shapes"] = [list(s) for s in event.input_shapes]
        events.append({
            "name": event.name or event.module_type,
            "cat": event.kind,
            "ph": "X",
            "ts": (event.start_ns - profiler.start_ns) / 1e3,
            "dur": event.duration_ns / 1e3,
            "pid": pid,
            "tid": tid,
            "args": args,
        })
    return events


def export_chrome_trace(profiler: Profiler, path) -> None:
    """Write the profile as Trace Event JSON to ``path``, a regular file (created or replaced)."""
    document = {"traceEvents": trace_events(profiler), "displayTimeUnit": "ms"}
    with os.fdopen(_open_regular_for_writing(path), "w") as handle:
        handle.write(json.dumps(document))


#: O_NONBLOCK: opening a FIFO never waits for a reader; O_NOCTTY: a terminal never becomes ours
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def _open_regular_for_writing(path) -> int:
    """A descriptor of ``path`` opened for writing, if it is (or becomes) a regular file. A
    directory, a FIFO (which would block), a device such as /dev/full or a socket is refused,
    asked of the opened descriptor so nothing can swap the path in between."""
    where = "export_chrome_trace"
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(f"{where}: expected a file path (a non-empty str or os.PathLike), got {path!r}")
    try:
        descriptor = os.open(path, _WRITE_FLAGS, 0o644)
    except OSError as exc:  # a directory (EISDIR), a FIFO without a reader (ENXIO), no permission, ...
        _refuse_if_special(path, _mode_of(path))
        raise type(exc)(exc.errno, f"{where}: cannot write the trace to {os.fspath(path)!r}: {exc.strerror}") from None
    try:
        _refuse_if_special(path, os.fstat(descriptor).st_mode)
    except ValueError:
        os.close(descriptor)
        raise
    os.set_blocking(descriptor, True)
    os.ftruncate(descriptor, 0)  # truncated only now that it is known to be a regular file
    return descriptor


def _mode_of(path):
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def _refuse_if_special(path, mode) -> None:
    """A ValueError naming what ``path`` is, unless it is a regular file (or nothing yet)."""
    if mode is None or stat.S_ISREG(mode):
        return
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    raise ValueError(f"export_chrome_trace: {os.fspath(path)!r} is {kind}; give a path for the trace file")
