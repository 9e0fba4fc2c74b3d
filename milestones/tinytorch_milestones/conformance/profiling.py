"""The contract of stage ``profiling`` (profile, record, summary, benchmark, compare), checked through
the public API against counts done by hand: calls and FLOPs of a known model, time that adds up,
a valid trace, known memory, and statistics that tell a slow function from a fast one."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import Check, ConformanceError
from .contract import Helper

LINEAR_1 = 2 * 5 * 4 * 8 + 5 * 4  # Linear(8, 4) on 5 rows: the products and the bias
LINEAR_2 = 2 * 5 * 3 * 4 + 5 * 3  # Linear(4, 3)


def _model_and_batch():
    model = tt.nn.Sequential(tt.nn.Linear(8, 4, generator=0), tt.nn.ReLU(), tt.nn.Linear(4, 3, generator=1))
    return model, Tensor(np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32))


def _expect(what: str, actual, expected) -> None:
    if actual != expected:
        raise ConformanceError(f"{what}: got {actual!r}, expected {expected!r}")


def profile_counts():
    model, x = _model_and_batch()
    with tt.profiler.profile() as prof:
        model(x).sum().backward()
    rows = {(r.name, r.kind): r for r in prof.key_averages()}
    for key, calls, flops in ((("nn::linear", "forward"), 2, LINEAR_1 + LINEAR_2),
                              (("nn::relu", "forward"), 1, 20), (("core::sum", "forward"), 1, 15),
                              (("nn::linear", "backward"), 2, LINEAR_1 + 2 * (LINEAR_2 - 15) + 15)):
        if key not in rows:
            raise ConformanceError(f"key_averages() has no row {key}; rows: {sorted(rows)}")
        _expect(f"calls of {key}", rows[key].calls, calls)
        _expect(f"FLOPs of {key}", rows[key].flops, flops)


def profile_time_and_trace():
    rng = np.random.default_rng(1)
    a = Tensor(rng.standard_normal((250, 250)).astype(np.float32), requires_grad=True)
    for _ in range(3):  # wall-clock times: a pause of a busy machine between two events is nobody's self time
        with tt.profiler.profile() as prof:
            for _ in range(4):
                (a @ a).sum().backward()
        covered = sum(event.self_ns for event in prof.events)
        if abs(covered - prof.wall_ns) <= 0.10 * prof.wall_ns:
            break
    else:
        raise ConformanceError(f"the events' self times add up to {covered} ns, the region took {prof.wall_ns} ns "
                               "(in each of 3 runs)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        prof.export_chrome_trace(path)
        events = json.loads(path.read_text())["traceEvents"]
    ops = [e for e in events if e.get("cat") in ("forward", "backward")]
    _expect("complete events of op calls in the trace", len(ops), 4 * 4)  # matmul and sum, both phases, 4 times
    if not all(e.get("ph") == "X" and e.get("dur", -1) >= 0 for e in ops):
        raise ConformanceError("every op call must be one complete event ('ph': 'X') with a duration")


def profile_memory():
    x = Tensor(np.ones(1000, np.float32))
    with tt.profiler.profile() as prof:
        y = x * 2.0
        z = y * 3.0
        del y
        w = z * 4.0
    _expect("peak live tensor memory (bytes) of y = x*2, z = y*3, del y, w = z*4", prof.memory.peak, 8000)
    del z, w


def record_ranges():
    with tt.profiler.profile() as prof:
        with tt.profiler.record("outer"):
            Tensor(np.ones(3)) + 1.0
    names = [(e.name, e.kind) for e in prof.events]
    if ("outer", "range") not in names or ("core::add", "forward") not in names:
        raise ConformanceError(f"a record('outer') range around an add gives events {names}")


def summary_of_a_model():
    model, x = _model_and_batch()
    info = tt.profiler.summary(model, x)
    _expect("summary parameters", info.parameters, 8 * 4 + 4 + 4 * 3 + 3)
    _expect("summary forward FLOPs", info.flops, LINEAR_1 + 20 + LINEAR_2)
    _expect("summary rows (path, output shapes, own parameters)",
            [(r.path, r.output_shapes, r.parameters) for r in info.rows],
            [("(Sequential)", ((5, 3),), 0), ("0", ((5, 4),), 36), ("1", ((5, 4),), 0), ("2", ((5, 3),), 15)])


def benchmark_statistics():
    result = tt.profiler.benchmark(lambda: time.sleep(0.001), warmup=1, min_time=0, min_runs=15)
    low, high = result.ci95
    if not (result.runs >= 15 and low <= result.median <= high and result.median >= 0.001):
        raise ConformanceError(f"benchmark of a 1 ms sleep: median {result.median}, interval {result.ci95}, "
                               f"{result.runs} runs")


def compare_verdict():
    short, long = (lambda: time.sleep(0.0005)), (lambda: time.sleep(0.004))
    slower = tt.profiler.compare(short, long, warmup=1, min_time=0, min_runs=12)
    if slower.b_is_faster is not False or not slower.ci95[0] > 1:
        raise ConformanceError(f"compare(0.5 ms sleep, 4 ms sleep): ratio {slower.ratio}, interval {slower.ci95}, "
                               f"b_is_faster {slower.b_is_faster} (expected False)")


CHECKS = [
    Check("profiler.profile", "contract", profile_counts),
    Check("profiler.profile", "contract", profile_time_and_trace),
    Check("profiler.profile", "contract", profile_memory),
    Check("profiler.record", "contract", record_ranges),
    Check("profiler.summary", "contract", summary_of_a_model),
    Check("profiler.benchmark", "contract", benchmark_statistics),
    Check("profiler.compare", "contract", compare_verdict),
]

CONTRACT = [
    Helper("profiler", "profile", "record_shapes=False, profile_memory=True, with_flops=True", """A profiler for a
    ``with`` block that watches the calling thread through ``tinytorch_core.observing`` (an ``Observer``).
    It keeps ``events`` (each with ``name``, ``kind`` in forward/backward/module/pass/range, ``self_ns``,
    ``flops`` from the op's ``Function.flops`` / ``backward_flops`` formula on a ``tinytorch_core.flops.OpCall``,
    None without one), ``wall_ns`` (the region's duration; the events' self times add up to it within
    10 %), ``memory.peak`` (most bytes of op outputs alive at once, a view counting 0), and gives
    ``key_averages()`` (rows with ``name``, ``kind``, ``calls``, ``self_ns``, ``flops``), ``table()``,
    ``by_module()`` and ``export_chrome_trace(path)`` (Trace Event JSON, one complete event per op call)."""),
    Helper("profiler", "record", "name", """A context manager: a named range event (kind "range") inside a
    profile; does nothing when no profiler watches the thread."""),
    Helper("profiler", "summary", "model, *inputs", """Run model(*inputs) once without a graph; return an
    object with ``rows`` (per module called: ``path`` "(Type)" for the model, "0", "blocks.0.attn" below,
    ``output_shapes``, ``parameters`` held by the module itself, ``flops``), ``parameters`` and ``flops``
    (totals of one forward pass)."""),
    Helper("profiler", "benchmark", "fn, *, warmup=3, min_time=1.0, min_runs=10, max_runs=10_000, label=None, seed=0",
           """Time fn() after warm-up runs until min_runs and min_time are both reached; return ``runs``,
    ``times``, ``median`` and ``ci95``, a bootstrap 95 % interval of the median."""),
    Helper("profiler", "compare", "a, b, *, warmup=3, min_time=2.0, min_runs=10, max_runs=10_000, "
           "labels=('a', 'b'), seed=0", """Time a and b in interleaved rounds; return ``ratio`` (median of b
    over median of a), its bootstrap ``ci95`` resampling whole rounds, and ``b_is_faster``: True or False
    when the whole interval is below or above 1, else None."""),
]
