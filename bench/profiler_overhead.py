"""What the profiler costs: one training step of W1..W8 with the profiler off and on, side by side.

Run from the repository root::

    uv run python bench/profiler_overhead.py                 # every workload
    uv run python bench/profiler_overhead.py --workloads W3  # one

Each workload's step runs bare and inside ``tt.profiler.profile()`` in interleaved rounds
(``tt.profiler.compare``), so machine noise hits both sides; the table gives the median of
each and their ratio with its bootstrap 95 % interval. The profiler's aim: at most 3x on W3.
(Whether the profiler *off* costs anything is a before/after question of the code: compare two
trees with ``bench/run.py``.)
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

import tinytorch_core as tt

HERE = Path(__file__).resolve().parent


def _load(name: str, filename: str):
    spec = importlib.util.spec_from_file_location(name, HERE / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def workload_step(wid: str, seed: int = 0):
    """One training step of workload ``wid``, built as bench/run.py builds it."""
    reference = _load("tinytorch_bench_numpy_reference", "numpy_reference.py")
    workloads = _load("tinytorch_bench_workloads", "workloads.py")
    spec, framework = reference.WORKLOADS[wid], workloads.FRAMEWORK_WORKLOADS[wid]
    rng = np.random.default_rng(seed)
    params = spec.make_params(rng)
    x, y = spec.make_batch(rng)
    model = framework.build()
    framework.load_params(model, params)
    optimizer = framework.make_optimizer(model)
    xt, yt = framework.to_tensors(x, y)
    return lambda: framework.step(model, optimizer, xt, yt)


def profiled(step):
    def run():
        with tt.profiler.profile():
            step()
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7,W8")
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds per workload (default 3)")
    args = parser.parse_args(argv)
    print(f"{'workload':<9}{'off (median)':>14}{'on (median)':>14}{'on / off':>10}   95 % interval")
    for wid in args.workloads.split(","):
        step = workload_step(wid)
        result = tt.profiler.compare(step, profiled(step), warmup=5, min_time=args.min_time, min_runs=10,
                                     labels=("off", "on"))
        low, high = result.ci95
        print(f"{wid:<9}{result.a.median * 1e3:>11.3f} ms{result.b.median * 1e3:>11.3f} ms"
              f"{result.ratio:>9.2f}x   {low:.2f} to {high:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
