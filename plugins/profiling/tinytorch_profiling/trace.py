"""Chrome's Trace Event Format: the file chrome://tracing and https://ui.perfetto.dev open.

Every event becomes one *complete* event (``"ph": "X"``) with its start (``ts``) and duration
(``dur``) in microseconds from the start of the profile; ``cat`` is its kind (forward, backward,
module, pass, range), so a viewer can filter op calls from the modules and ranges around them.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

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
    """Write the profile as Trace Event JSON to ``path``."""
    document = {"traceEvents": trace_events(profiler), "displayTimeUnit": "ms"}
    Path(path).write_text(json.dumps(document))
