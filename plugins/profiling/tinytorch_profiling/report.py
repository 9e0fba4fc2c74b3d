"""What a profile says: rows per op (``key_averages``, ``table``) and per module (``by_module``).

A row sums the events of one op in one phase: calls, self time (the op's own work), total time
(its work and the events inside it), FLOPs and new memory. Module calls are not op rows: the
time a module spends outside its ops (Python glue), and the region's time outside every event,
make the ``[other Python]`` row, less the profiler's own bookkeeping, which gets a row of its
own; so the self times of the table add up to the wall time.

A module row's total is forward *and* backward: the module's calls plus the backward of every op
they recorded, children included (the backward pass runs after the call has returned, so the
call's own duration would leave it out).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from tinytorch_core.checks import positive_int

from .profiler import BACKWARD, FORWARD, MODULE, Event, Profiler

OTHER = "[other Python]"
BOOKKEEPING = "[profiler bookkeeping]"

SORT_KEYS = {
    "self_time": lambda r: r.self_ns,
    "total_time": lambda r: r.total_ns,
    "calls": lambda r: r.calls,
    "flops": lambda r: r.flops or 0,
    "memory": lambda r: r.allocated_bytes,
    "name": lambda r: r.name,
}


@dataclass
class OpRow:
    """One op in one phase (or a range, a backward pass, or ``[other Python]``)."""

    name: str
    kind: str
    plugin: str
    calls: int = 0
    self_ns: int = 0
    total_ns: int = 0
    flops: int | None = None
    allocated_bytes: int = 0
    input_shapes: tuple = ()

    def add(self, event: Event) -> None:
        self.calls += 1
        self.self_ns += event.self_ns
        self.total_ns += event.duration_ns
        if event.flops is not None:
            self.flops = (self.flops or 0) + event.flops
        self.allocated_bytes += event.allocated_bytes


def key_averages(profiler: Profiler, group_by_input_shape: bool = False) -> list[OpRow]:
    """One row per (name, kind) (and input shapes if asked), in order of first appearance, then
    ``[other Python]``: module glue plus the region's time outside every event."""
    rows: dict[tuple, OpRow] = {}
    glue_ns = covered_ns = 0
    for event in profiler.events:
        if event.depth == 0:
            covered_ns += event.duration_ns
        if event.kind == MODULE:
            glue_ns += event.self_ns
            continue
        key = (event.name, event.kind, event.input_shapes if group_by_input_shape else ())
        if key not in rows:
            rows[key] = OpRow(event.name, event.kind, event.plugin, input_shapes=key[2])
        rows[key].add(event)
    bookkeeping = min(profiler.overhead_ns, glue_ns + max(profiler.wall_ns - covered_ns, 0))
    other = glue_ns + max(profiler.wall_ns - covered_ns, 0) - bookkeeping
    return list(rows.values()) + [OpRow(OTHER, "python", "", self_ns=other, total_ns=other),
                                  OpRow(BOOKKEEPING, "profiler", "", self_ns=bookkeeping, total_ns=bookkeeping)]


def table(profiler: Profiler, sort_by: str = "self_time", row_limit: int = 20, width: int = 160) -> str:
    """The rows of ``key_averages`` as a table (like PyTorch's ``key_averages().table()``)."""
    if not isinstance(sort_by, str) or sort_by not in SORT_KEYS:
        raise ValueError(f"table(): sort_by must be one of {sorted(SORT_KEYS)}, got {sort_by!r}")
    row_limit = positive_int(row_limit, "row_limit", "table()")
    width = positive_int(width, "width", "table()")
    from rich.table import Table

    rows = key_averages(profiler, group_by_input_shape=profiler.record_shapes)
    wall = max(profiler.wall_ns, 1)
    shown = sorted(rows, key=SORT_KEYS[sort_by], reverse=sort_by != "name")[:row_limit]
    grid = Table(title=f"Profile: {len(profiler.events)} events in {format_time(profiler.wall_ns)}",
                 caption=_caption(profiler, rows), caption_justify="left")
    for header in ("Name", "Phase", "Plugin", "Calls", "Self", "Self %", "Total", "Self avg", "FLOPs",
                   "FLOP/s", "New memory"):
        grid.add_column(header, justify="left" if header in ("Name", "Phase", "Plugin") else "right", no_wrap=True)
    if profiler.record_shapes:
        grid.add_column("Input shapes")
    for row in shown:
        cells = [escape(row.name), row.kind, row.plugin, str(row.calls) if row.calls else "", format_time(row.self_ns),
                 f"{100 * row.self_ns / wall:.1f}", format_time(row.total_ns),
                 format_time(row.self_ns // row.calls) if row.calls else "", format_count(row.flops),
                 format_count(row.flops * 1e9 / row.self_ns) if row.flops and row.self_ns else "-",
                 format_bytes(row.allocated_bytes)]
        if profiler.record_shapes:
            cells.append(format_shapes(row.input_shapes))
        grid.add_row(*cells)
    return render(grid, width)


def _caption(profiler: Profiler, rows: list[OpRow]) -> str:
    ops = [r for r in rows if r.kind in (FORWARD, BACKWARD)]
    op_ns = sum(r.self_ns for r in ops)
    flops = sum(r.flops or 0 for r in ops)
    lines = [f"ops: {sum(r.calls for r in ops)} calls, {format_time(op_ns)} self "
             f"({100 * op_ns / max(profiler.wall_ns, 1):.1f} % of the wall time), {format_count(flops)} FLOPs "
             f"counted; '-': the op states no FLOP formula"]
    if profiler.profile_memory:
        lines.append(f"peak live tensor memory of the profiled ops: {format_bytes(profiler.memory.peak)}")
    return "\n".join(lines)


@dataclass
class ModuleRow:
    """One module path: its calls, their time forward and backward, and the ops called directly
    in it (not in its children): their forward and backward self time and FLOPs.

    ``total_ns`` is the module's whole share of the profile: ``forward_total_ns`` (its calls,
    children included) plus ``backward_total_ns`` (the backward of every op those calls recorded,
    children included). So for every module ``total_ns >= forward_ns + backward_ns``."""

    path: str
    type: str
    calls: int = 0
    forward_total_ns: int = 0  # the module's calls, children included
    backward_total_ns: int = 0  # the backward of the ops its calls recorded, children included
    forward_ns: int = 0  # self time of its own ops' forwards
    backward_ns: int = 0  # self time of its own ops' backwards
    flops: int = 0  # its own ops, forward and backward

    @property
    def total_ns(self) -> int:
        """Forward and backward, children included: what the module costs a training step."""
        return self.forward_total_ns + self.backward_total_ns


class ModuleBreakdown:
    """``prof.by_module()``: one ``ModuleRow`` per module path, in call order; ``str()`` is a table."""

    TITLE = "Time by module (Total = Forward + Backward, children included; Own: its own ops, not its children's)"
    HEADERS = ("Module", "Type", "Calls", "Total", "Forward", "Backward", "Own forward", "Own backward", "Own FLOPs")

    def __init__(self, rows: list[ModuleRow], wall_ns: int):
        self.rows, self.wall_ns = rows, wall_ns

    def __getitem__(self, path: str) -> ModuleRow:
        for row in self.rows:
            if row.path == path:
                return row
        raise KeyError(f"by_module(): no module path {path!r}; the paths are {[r.path for r in self.rows]}")

    def __iter__(self):
        """The rows, in call order (``for row in prof.by_module()``; indexing is by path)."""
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        from rich.table import Table

        grid = Table(title=self.TITLE)
        for header in self.HEADERS:
            grid.add_column(header, justify="left" if header in ("Module", "Type") else "right")
        for r in self.rows:
            times = (r.total_ns, r.forward_total_ns, r.backward_total_ns, r.forward_ns, r.backward_ns)
            grid.add_row(escape(r.path), r.type, str(r.calls), *map(format_time, times), format_count(r.flops))
        return render(grid, 160)


def by_module(profiler: Profiler) -> ModuleBreakdown:
    """Module calls give each path its calls and forward time; an op event adds to its own
    module's forward or backward; a backward op adds its time to every module around the forward
    that recorded it (a layer's backward is part of its block's and of the model's)."""
    rows: dict[str, ModuleRow] = {}
    for event in sorted(profiler.events, key=lambda e: e.start_ns):
        if event.kind == MODULE:
            row = rows.setdefault(event.module, ModuleRow(event.module, event.module_type))
            row.calls += 1
            row.forward_total_ns += event.duration_ns
        elif event.kind in (FORWARD, BACKWARD) and event.module:
            _add_op(rows, event)
    return ModuleBreakdown(list(rows.values()), profiler.wall_ns)


def _add_op(rows: dict[str, ModuleRow], event: Event) -> None:
    """Count one op event towards its own module and, for a backward, towards every module
    around its forward (each once, even if a path repeats in the chain)."""
    row = rows.setdefault(event.module, ModuleRow(event.module, ""))  # its type comes with its call
    if event.kind == FORWARD:
        row.forward_ns += event.self_ns
    else:
        row.backward_ns += event.self_ns
        for path in dict.fromkeys(event.modules or (event.module,)):
            rows.setdefault(path, ModuleRow(path, "")).backward_total_ns += event.duration_ns
    row.flops += event.flops or 0


# ---- formatting ----------------------------------------------------------------------------------
def escape(text: str) -> str:
    """``text`` shown as written: rich would read ``[other Python]`` as markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def format_shapes(shapes) -> str:
    return ", ".join("x".join(map(str, shape)) or "scalar" for shape in shapes)


def render(renderable, width: int) -> str:
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, color_system=None, highlight=False).print(renderable)
    return out.getvalue()


def format_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.0f} ns"


def format_count(value) -> str:
    if value is None:
        return "-"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def format_bytes(value: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value} B"
