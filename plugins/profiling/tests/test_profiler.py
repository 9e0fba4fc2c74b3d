"""The profiler against answers computed by hand: call counts, FLOPs, memory, time accounting,
the trace file, modules and ranges."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor

FORWARD_OPS = ("forward", "backward")


def small_mlp():
    return tt.nn.Sequential(tt.nn.Linear(8, 4, generator=0), tt.nn.ReLU(), tt.nn.Linear(4, 3, generator=1))


def batch(shape=(5, 8), seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def rows_by_key(prof):
    return {(r.name, r.kind): r for r in prof.key_averages()}


def test_calls_and_flops_of_a_known_model_match_the_hand_count():
    model, x = small_mlp(), batch()
    with tt.profiler.profile() as prof:
        model(x).sum().backward()
    rows = rows_by_key(prof)
    # Linear(8, 4) on 5 rows: 2*5*4*8 products + 5*4 bias adds; Linear(4, 3): 2*5*3*4 + 5*3
    assert rows["nn::linear", "forward"].calls == 2
    assert rows["nn::linear", "forward"].flops == (2 * 5 * 4 * 8 + 20) + (2 * 5 * 3 * 4 + 15)
    assert (rows["nn::relu", "forward"].calls, rows["nn::relu", "forward"].flops) == (1, 5 * 4)
    assert (rows["core::sum", "forward"].calls, rows["core::sum", "forward"].flops) == (1, 5 * 3)
    # backward: the first layer's input needs no gradient (dweight and dbias only), the second's does
    assert rows["nn::linear", "backward"].calls == 2
    assert rows["nn::linear", "backward"].flops == (2 * 5 * 4 * 8 + 20) + (2 * 2 * 5 * 3 * 4 + 15)
    assert rows["nn::relu", "backward"].flops is None  # no backward formula: "-", not a guess
    assert rows["backward", "pass"].calls == 1
    assert {r.plugin for r in prof.key_averages() if r.kind in FORWARD_OPS} == {"nn", "core"}


def test_self_times_add_up_to_the_wall_time_of_the_region():
    rng = np.random.default_rng(1)
    a = Tensor(rng.standard_normal((300, 300)).astype(np.float32), requires_grad=True)
    b = Tensor(rng.standard_normal((300, 300)).astype(np.float32), requires_grad=True)
    runs = []
    for _ in range(3):  # wall-clock times: a pause of a busy machine between two events is nobody's self time
        with tt.profiler.profile() as prof:
            for _ in range(5):
                (a @ b @ b).sum().backward()
        runs.append((sum(event.self_ns for event in prof.events), prof.wall_ns))
        if abs(runs[-1][0] - prof.wall_ns) <= 0.10 * prof.wall_ns:
            break
    else:
        raise AssertionError(f"(self time, wall time) in ns of each run: {runs}")
    ops = [e for e in prof.events if e.kind in FORWARD_OPS]
    assert len(ops) == 5 * (3 + 3)  # two matmuls and a sum, forward and backward, five times
    table_self = sum(r.self_ns for r in prof.key_averages())  # with [other Python]: the whole wall time
    assert table_self == pytest.approx(prof.wall_ns, rel=1e-9)


def test_the_trace_is_valid_trace_event_json_with_one_complete_event_per_op_call(tmp_path):
    model, x = small_mlp(), batch()
    with tt.profiler.profile() as prof:
        with tt.profiler.record("step"):
            model(x).sum().backward()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    document = json.loads(path.read_text())
    events = document["traceEvents"]
    assert all(e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0 for e in events)
    assert all({"name", "cat", "ts", "dur", "pid", "tid", "args"} <= e.keys() for e in events)
    op_calls = sum(r.calls for r in prof.key_averages() if r.kind in FORWARD_OPS)
    assert len([e for e in events if e["cat"] in FORWARD_OPS]) == op_calls == 8  # 4 ops, forward and backward
    assert [e["name"] for e in events if e["cat"] == "range"] == ["step"]
    linear = next(e for e in events if e["name"] == "nn::linear")
    assert linear["args"]["flops"] == 2 * 5 * 4 * 8 + 20 and linear["args"]["plugin"] == "nn"


def test_peak_memory_counts_live_outputs_once():
    x = Tensor(np.ones(1000, np.float32))  # made before the region: not counted
    with tt.profiler.profile() as prof:
        y = x * 2.0  # 4000 bytes live
        z = y * 3.0  # 8000
        view = z.reshape(10, 100)  # a view: no new memory
        del y  # 4000
        w = z * 4.0  # 8000 again
    assert prof.memory.peak == 8000
    assert rows_by_key(prof)["core::reshape", "forward"].allocated_bytes == 0
    assert rows_by_key(prof)["core::mul", "forward"].allocated_bytes == 12000
    del view, w


def test_time_by_module_follows_the_module_paths_and_backward_goes_to_the_forwards_module():
    model, x = small_mlp(), batch()
    with tt.profiler.profile() as prof:
        model(x).sum().backward()
    modules = prof.by_module()
    assert [r.path for r in modules.rows] == ["(Sequential)", "0", "1", "2"]
    assert modules["0"].type == "Linear" and modules["0"].calls == 1
    assert modules["0"].flops == (2 * 5 * 4 * 8 + 20) * 2  # forward and the backward formula (dW, db)
    assert modules["0"].backward_ns > 0 and modules["1"].backward_ns > 0
    assert modules["(Sequential)"].total_ns >= modules["0"].total_ns + modules["2"].total_ns
    assert "Linear" in str(modules)
    with pytest.raises(KeyError, match="no module path 'blocks'"):
        modules["blocks"]


def test_nested_modules_get_dotted_paths():
    class Block(tt.Module):
        def __init__(self):
            super().__init__()
            self.inner = tt.nn.Sequential(tt.nn.Linear(3, 3, generator=0), tt.nn.Tanh())

        def forward(self, x):
            return self.inner(x)

    class Net(tt.Module):
        def __init__(self):
            super().__init__()
            self.blocks = tt.ModuleList([Block(), Block()])

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    with tt.profiler.profile() as prof:
        Net()(batch((2, 3)))
    paths = [r.path for r in prof.by_module().rows]
    assert paths == ["(Net)", "blocks.0", "blocks.0.inner", "blocks.0.inner.0", "blocks.0.inner.1",
                     "blocks.1", "blocks.1.inner", "blocks.1.inner.0", "blocks.1.inner.1"]


def test_ranges_nest_and_record_outside_a_profile_does_nothing():
    with tt.profiler.record("nobody listens"):
        pass
    with tt.profiler.profile() as prof:
        with tt.profiler.record("outer"):
            with tt.profiler.record("inner"):
                Tensor(np.ones(3)) + 1.0
    by_name = {e.name: e for e in prof.events}
    assert by_name["outer"].depth == 0 and by_name["inner"].depth == 1 and by_name["core::add"].depth == 2
    assert by_name["outer"].child_ns == by_name["inner"].duration_ns
    with pytest.raises(TypeError, match="non-empty str"):
        with tt.profiler.record(""):
            pass


def test_an_op_that_raises_leaves_the_profile_consistent():
    with tt.profiler.profile() as prof:
        with pytest.raises(ValueError):
            Tensor(np.ones((0,))).mean()  # refused inside Mean's forward
        Tensor(np.ones(2)) + 1.0
    assert all(e.end_ns >= e.start_ns for e in prof.events)
    assert [(e.name, e.depth) for e in prof.events if e.kind == "forward"] == [("core::mean", 0), ("core::add", 0)]
    assert sum(e.self_ns for e in prof.events) <= prof.wall_ns


def test_the_profiler_watches_only_its_own_thread_and_is_off_afterwards():
    def other_thread():
        Tensor(np.ones(4)) * 3.0

    with tt.profiler.profile() as prof:
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        Tensor(np.ones(4)) - 1.0
    Tensor(np.ones(4)) / 2.0  # after the region
    assert [e.name for e in prof.events if e.kind == "forward"] == ["core::sub"]
    assert tt.grad_mode.current_modes().observer is None


def test_table_shows_every_op_and_sorts_as_asked():
    model, x = small_mlp(), batch()
    with tt.profiler.profile(record_shapes=True) as prof:
        model(x).sum().backward()
    text = prof.table(sort_by="flops", row_limit=3)
    lines = [line for line in text.splitlines() if "nn::" in line or "core::" in line]
    assert len(lines) == 3 and "nn::linear" in lines[0]  # the most FLOPs first
    assert "[other Python]" in prof.table()
    assert "5x8" in prof.table()  # the input shapes column
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.table(sort_by="speed")


def test_a_profiler_runs_once():
    prof = tt.profiler.profile()
    with prof:
        pass
    with pytest.raises(RuntimeError, match="already ran"):
        with prof:
            pass
