"""The profiler: every op call, forward and backward, with its time, FLOPs and memory.

``with tt.profiler.profile() as prof:`` installs a ``Profiler`` as the observer of the calling
thread (``tinytorch_core.observers``): core then tells it when each op starts and finishes, when
each ``Module`` is called, and when a backward pass runs. Each of those becomes an ``Event``;
events nest (an op inside a module inside a ``record("name")`` range), and an event's *self time*
is its duration minus that of the events directly inside it, so the self times of all events add
up to the time they cover.

What one op event holds: the qualified op name (``spatial::conv2d``) and the plugin that
registered it, its phase (forward or backward), self and total time, its FLOPs (from the op's
FLOP formula; None where the op states none), the bytes of new memory its outputs hold, the
input shapes (with ``record_shapes=True``), and the module it ran in. A backward event belongs
to the module whose forward recorded its node, and counts towards the backward time of every
module around that forward (``by_module``).

The profiler watches only the thread that entered ``profile()``; an inner ``profile()`` hides
the ops it records from an outer one.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from tinytorch_core import Observer, Tensor, observing
from tinytorch_core.flops import OpCall
from tinytorch_core.grad_mode import current_modes

from .memory import LiveMemory

#: event kinds: an op's two phases, a module call, a backward pass, a ``record`` range
FORWARD, BACKWARD, MODULE, PASS, RANGE = "forward", "backward", "module", "pass", "range"

_clock = time.perf_counter_ns


@dataclass(slots=True)
class Event:
    """One timed thing that happened inside the profiled region."""

    name: str  # op name, module path, "backward" for a pass, or a range's name
    kind: str  # FORWARD, BACKWARD, MODULE, PASS or RANGE
    start_ns: int
    end_ns: int = 0
    child_ns: int = 0  # time covered by the events directly inside this one
    plugin: str = ""  # for ops: the plugin that registered the op
    module_type: str = ""  # for module calls: the module's class name
    module: str = ""  # the module path the event belongs to ("" outside any module)
    modules: tuple = ()  # for a backward op: every module around its forward, outermost first
    flops: int | None = None  # None: the op states no FLOP formula
    allocated_bytes: int = 0  # new memory held by the outputs (views of old memory count 0)
    output_bytes: int = 0  # the outputs' size, views included
    input_shapes: tuple = ()  # with record_shapes=True
    output_shapes: tuple = ()  # modules and ops: the shapes returned
    depth: int = 0  # how many events enclose this one

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def self_ns(self) -> int:
        return self.duration_ns - self.child_ns


@dataclass
class _ForwardRecord:
    """What a backward event needs from the forward that recorded the node."""

    call: OpCall
    module: str
    modules: tuple  # every module path around the forward, outermost first: who owns the backward


@dataclass
class _ModuleFrame:
    module: object
    path: str  # "" for a root module, else "blocks.0.attn"
    root: str  # the root module's class name


class Profiler(Observer):
    """Records events while installed (``with profiler:``); see the module docstring."""

    def __init__(self, record_shapes: bool = False, profile_memory: bool = True, with_flops: bool = True):
        for name, flag in (("record_shapes", record_shapes), ("profile_memory", profile_memory),
                           ("with_flops", with_flops)):
            if not isinstance(flag, bool):
                raise TypeError(f"profile(): {name} must be True or False, got {flag!r}")
        self.record_shapes, self.profile_memory, self.with_flops = record_shapes, profile_memory, with_flops
        self.events: list[Event] = []
        self.memory = LiveMemory()
        self.start_ns = self.end_ns = 0
        self.overhead_ns = 0  # time spent in the profiler's own bookkeeping
        self._open: list[Event] = []  # the events that have started and not finished, outermost first
        self._modules: list[_ModuleFrame] = []
        self._forwards = weakref.WeakKeyDictionary()  # graph node -> _ForwardRecord
        self._names: dict[tuple[int, int], str] = {}  # (id of parent, id of child) -> the child's path in it
        self._ops: dict[type, tuple[str, str]] = {}  # Function class -> (its name, the plugin that registered it)
        self._module_now = ""  # the module path new events belong to
        self._module_chain: tuple = ()  # the paths of every open module call, outermost first
        self._observing = None
        self._thread = None

    # ---- the region ------------------------------------------------------------------------
    def __enter__(self) -> "Profiler":
        if self._thread is not None:
            raise RuntimeError("profile(): this profiler already ran; start a new profile() for a new region")
        watching = current_modes().observer
        if watching is not None:  # one observer per thread: the outer one would silently miss these ops
            raise RuntimeError(f"profile(): this thread is already watched by {type(watching).__name__} (an outer "
                               "profile() or a compiled step's recording); profiles do not nest: profile the "
                               "whole region once and read the part you need from its events")
        self._thread = threading.get_ident()
        self._observing = observing(self)
        self._observing.__enter__()
        self.start_ns = _clock()
        return self

    def __exit__(self, *exc_info) -> bool:
        self.end_ns = _clock()
        self._observing.__exit__(*exc_info)
        self._close_until(None, self.end_ns)  # ops that raised, modules still open
        return False

    @property
    def wall_ns(self) -> int:
        """The duration of the profiled region."""
        return (self.end_ns or _clock()) - self.start_ns

    # ---- opening and closing events --------------------------------------------------------
    def _open_event(self, name: str, kind: str, **details) -> Event:
        event = Event(name, kind, _clock(), module=self._module_now, depth=len(self._open), **details)
        self._open.append(event)
        return event

    def _close_until(self, event: Event | None, end_ns: int) -> None:
        """Close open events, innermost first, up to and including ``event`` (all if None). Events
        above it were left open by an op that raised: they end with it."""
        while self._open:
            closing = self._open.pop()
            closing.end_ns = end_ns
            if self._open:
                self._open[-1].child_ns += closing.duration_ns
            self.events.append(closing)
            if closing is event:
                return

    # ---- the observer seam: ops ------------------------------------------------------------
    def op_started(self, function: type, phase: str) -> Event:
        if function not in self._ops:
            entry = function.registration
            self._ops[function] = (function.display_name(), entry.plugin if entry else "")
        name, plugin = self._ops[function]
        return self._open_event(name, phase, plugin=plugin)

    def forward_finished(self, event: Event, ctx, inputs: list, options: dict, outputs) -> None:
        end_ns = _clock()
        if outputs is None:  # the forward raised
            self._close_until(event, end_ns)
            return
        outputs = outputs if type(outputs) is tuple else (outputs,)
        arrays = [t.data for t in outputs if isinstance(t, Tensor)]
        call = OpCall(
            inputs=tuple(a.shape if isinstance(a, np.ndarray) else a for a in inputs),
            outputs=tuple(a.shape for a in arrays),
            options=options,
            needs_input_grad=getattr(ctx, "needs_input_grad", ()),
        )
        self._finish_op(event, end_ns, call, type(ctx).flops, arrays)
        if ctx._parents:  # recorded: its backward will want the call and the module
            self._forwards[ctx] = _ForwardRecord(call, event.module, self._module_chain)

    def backward_finished(self, event: Event, node, output_grads: list, input_grads: tuple) -> None:
        end_ns = _clock()
        record = self._forwards.get(node)
        if record is not None:  # the backward belongs to the modules its forward ran in
            event.module, event.modules = record.module, record.modules
        arrays = [g for g in input_grads if isinstance(g, np.ndarray)]
        self._finish_op(event, end_ns, record.call if record else None, type(node).backward_flops, arrays)

    def _finish_op(self, event: Event, end_ns: int, call: OpCall | None, formula, arrays: list) -> None:
        self._close_until(event, end_ns)
        if self.with_flops and formula is not None and call is not None:
            event.flops = int(formula(call))
        if self.record_shapes and call is not None:
            event.input_shapes = tuple(s for s in call.inputs if isinstance(s, tuple))
        event.output_shapes = tuple(a.shape for a in arrays)
        event.output_bytes = sum(a.nbytes for a in arrays)
        if self.profile_memory:
            event.allocated_bytes = sum(self.memory.seen(a) for a in arrays)
        self.overhead_ns += _clock() - end_ns

    # ---- the observer seam: modules and passes ---------------------------------------------
    def module_started(self, module) -> Event:
        frame = self._module_frame(module)
        self._modules.append(frame)
        self._module_now = _module_key(frame)
        self._module_chain += (self._module_now,)
        return self._open_event(self._module_now, MODULE, module_type=type(module).__name__)

    def module_finished(self, event: Event, output) -> None:
        self._close_until(event, _clock())
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        arrays = [t.data for t in outputs if isinstance(t, Tensor)]
        event.output_shapes = tuple(a.shape for a in arrays)
        event.output_bytes = sum(a.nbytes for a in arrays)
        self._modules.pop()
        self._module_chain = self._module_chain[:-1]
        self._module_now = _module_key(self._modules[-1]) if self._modules else ""

    def pass_started(self, name: str) -> Event:
        return self._open_event(name, PASS)

    def pass_finished(self, event: Event) -> None:
        self._close_until(event, _clock())

    def _module_frame(self, module) -> _ModuleFrame:
        """Where ``module`` sits: its path below the module it is called from."""
        if not self._modules:
            return _ModuleFrame(module, "", type(module).__name__)
        parent = self._modules[-1]
        key = (id(parent.module), id(module))
        if key not in self._names:
            self._names[key] = _name_below(parent.module, module)
        name = self._names[key]
        path = name if not parent.path else f"{parent.path}.{name}"
        return _ModuleFrame(module, path, parent.root)

    # ---- named ranges ----------------------------------------------------------------------
    def range_started(self, name: str) -> Event:
        return self._open_event(name, RANGE)

    def range_finished(self, event: Event) -> None:
        self._close_until(event, _clock())

    # ---- results (see report.py and trace.py) ----------------------------------------------
    def _ran(self, what: str) -> None:
        """Results exist once the profiled region has run (its wall time is the table's 100 %)."""
        if self._thread is None:
            raise RuntimeError(f"profile(): {what} has no results yet; profile a region first: "
                               "with tt.profiler.profile() as prof: ..., then read prof after the block")

    def key_averages(self, group_by_input_shape: bool = False):
        from .report import key_averages

        self._ran("key_averages()")
        return key_averages(self, group_by_input_shape)

    def table(self, sort_by: str = "self_time", row_limit: int = 20, width: int = 160) -> str:
        from .report import table

        self._ran("table()")
        return table(self, sort_by=sort_by, row_limit=row_limit, width=width)

    def by_module(self):
        from .report import by_module

        self._ran("by_module()")
        return by_module(self)

    def export_chrome_trace(self, path) -> None:
        from .trace import export_chrome_trace

        self._ran("export_chrome_trace()")
        export_chrome_trace(self, path)


def _module_key(frame: _ModuleFrame | None) -> str:
    """The module path an event belongs to: "" outside modules, "(GPT)" for a root module
    itself, "blocks.0.attn" below it."""
    if frame is None:
        return ""
    return frame.path or f"({frame.root})"


def _name_below(parent, module) -> str:
    """``module``'s attribute path inside ``parent`` ("0", "blocks.1"), or ``<Type>`` if the
    parent does not hold it (a module created on the fly)."""
    for name, child in parent.named_modules():
        if child is module and name:
            return name
    return f"<{type(module).__name__}>"


def profile(record_shapes: bool = False, profile_memory: bool = True, with_flops: bool = True) -> Profiler:
    """A profiler for a ``with`` block: ``with tt.profiler.profile() as prof: ...``, then
    ``print(prof.table())``, ``prof.by_module()``, ``prof.export_chrome_trace("trace.json")``."""
    return Profiler(record_shapes=record_shapes, profile_memory=profile_memory, with_flops=with_flops)


@contextlib.contextmanager
def record(name: str):
    """A named range inside a profile (``with tt.profiler.record("data"): ...``); does nothing
    when no profiler watches the thread."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"record(): the range needs a non-empty str name, got {name!r}")
    profiler = current_modes().observer
    if not isinstance(profiler, Profiler):
        yield
        return
    event = profiler.range_started(name)
    try:
        yield
    finally:
        profiler.range_finished(event)
