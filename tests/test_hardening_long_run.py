"""A long run: 20,000 training steps of the tiny transformer keep memory flat, free each step's
graph, and emit no warning.

Model (the W6 size): vocabulary 20, sequence 8, batch 16, embedding 32, 4 heads, 1 block, FFN 64,
trained with Adam to reverse its input (bidirectional attention). Resident memory is measured
after 1,000 warm-up steps (allocator pools, optimizer state and caches have settled by then) and
at the end; it may not grow by more than 8 MB, and the number of live tensors and graph nodes
must be the same. The cyclic garbage collector is off during the run, so every step's graph must
be freed by reference counting alone (weak references to a step's nodes are dead one step later);
a graph leaked at every step would add gigabytes.
"""

from __future__ import annotations

import gc
import math
import os
import warnings
import weakref

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Function, Tensor

STEPS = 20_000
WARMUP = 1_000
MAX_GROWTH_KB = 8 * 1024
VOCAB, SEQ, BATCH = 20, 8, 16


def resident_kb() -> int:
    """Current resident set size (Linux /proc); elsewhere the peak from ``resource``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes


def live_graph_objects() -> int:
    # type(), not isinstance(): isinstance may read a foreign object's __class__ property, and
    # some libraries' deprecated objects warn when that happens
    return sum(1 for o in gc.get_objects() if issubclass(type(o), (Tensor, Function)))


def test_twenty_thousand_steps_keep_memory_flat_free_every_graph_and_emit_no_warning():
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, VOCAB, size=(64, BATCH, SEQ))
    targets = inputs[:, :, ::-1].reshape(64, BATCH * SEQ).copy()
    model = tt.nn.GPT(VOCAB, SEQ, embed_dim=32, num_heads=4, num_layers=1, ff_dim=64, causal=False, generator=0)
    optimizer = tt.optim.Adam(model.parameters(), lr=1e-3)
    criterion = tt.nn.CrossEntropyLoss()

    gc.collect()  # finalize earlier tests' garbage now, so its warnings are not counted as this run's
    previous_graph = None  # weak references to one step's loss node and logits
    freed_checks = 0
    first_loss = last_loss = None
    gc_was_enabled = gc.isenabled()
    gc.disable()  # graphs must be freed by reference counting alone; cyclic garbage would pile up
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for step in range(STEPS):
                batch = step % 64
                logits = model(inputs[batch])
                loss = criterion(logits.reshape(BATCH * SEQ, VOCAB), targets[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if previous_graph is not None:
                    # the names were rebound this step: the last step's graph must be gone
                    assert all(ref() is None for ref in previous_graph), f"step {step - 1}'s graph is still alive"
                    previous_graph = None
                    freed_checks += 1
                if step % 500 == 0:
                    previous_graph = (weakref.ref(loss.grad_fn), weakref.ref(logits), weakref.ref(logits.grad_fn))
                if step == 0:
                    first_loss = float(loss)
                if step == WARMUP:
                    start_kb, start_objects = resident_kb(), live_graph_objects()
            last_loss = float(loss)
        end_kb, end_objects = resident_kb(), live_graph_objects()
    finally:
        if gc_was_enabled:
            gc.enable()

    assert caught == [], [f"{w.category.__name__}: {w.message}" for w in caught[:5]]
    assert freed_checks == STEPS // 500
    assert math.isfinite(last_loss) and last_loss < first_loss / 10  # it really trained
    assert end_objects == start_objects, (start_objects, end_objects)  # same step shape, same live objects
    growth = end_kb - start_kb
    assert growth < MAX_GROWTH_KB, (
        f"resident memory grew by {growth} KB between step {WARMUP} ({start_kb} KB) and step {STEPS} "
        f"({end_kb} KB); the bound is {MAX_GROWTH_KB} KB"
    )
    if os.environ.get("TINYTORCH_REPORT_LONG_RUN"):
        print(f"\nlong run: RSS {start_kb} KB at step {WARMUP}, {end_kb} KB at step {STEPS} (growth {growth} KB); "
              f"live tensors+nodes {start_objects} -> {end_objects}; loss {first_loss:.3f} -> {last_loss:.2e}")
