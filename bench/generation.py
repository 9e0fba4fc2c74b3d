"""Text generation with and without the key/value cache: total wall time and time per token.

A GPT of 4 blocks, d=128, 4 heads, context 256 generates 200 tokens (greedy) after a 56-token
prompt, batch 1 (``--batch B``: B prompts at once), three ways, interleaved in one process so a
busy machine slows all alike (the figures are medians):

- without the cache: every step recomputes every position so far (its time grows with the length);
- with the cache, eager steps (``compiled=False``): one new position a step, op by op;
- with the cache, compiled (the default): the same one-position step, recorded twice by the
  acceleration stage and replayed.

The time of each step is read from ``generate``'s ``on_token`` callback (one call per new token),
so the per-token profile covers the model call and the choice of the token. Last, the profiling
stage's ``compare`` times the uncached and the compiled cached run once more, interleaved, and
gives the speed-up with its 95 % interval.

Run: uv run python bench/generation.py [--repeats 3] [--batch 1]   (prints figures; not a test)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tinytorch_core as tt
from tinytorch_generation import generate
from tinytorch_milestones.allocator import tune_malloc
from tinytorch_milestones.blas import blas_threads

VOCAB, CONTEXT, PROMPT, NEW = 96, 256, 56, 200
WINDOW = 20  # steps averaged at the start and at the end of generation
WAYS = {  # label -> generate's options
    "without the cache": dict(use_cache=False),
    "cache, eager steps": dict(use_cache=True, compiled=False),
    "cache, compiled": dict(use_cache=True, compiled=True),
}


def build_model():
    model = tt.nn.GPT(VOCAB, CONTEXT, embed_dim=128, num_heads=4, num_layers=4, ff_dim=512, generator=0)
    return model.eval()


def measure(model, prompt, repeats: int) -> tuple[dict, dict, dict, bool]:
    """Per way: wall and CPU seconds of each ``generate`` run, and each step's seconds (median
    over the runs); and whether every run produced the same tokens. (CPU time: this process's
    own, which other processes on a shared machine inflate less than wall time.)"""
    wall, cpu, steps = ({way: [] for way in WAYS} for _ in range(3))
    outputs = []
    for _ in range(repeats):
        for way, options in WAYS.items():
            stamps = []
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            stamps.append(start_wall)
            outputs.append(generate(model, prompt, NEW, temperature=0, **options,
                                    on_token=lambda position, tokens: stamps.append(time.perf_counter())))
            wall[way].append(time.perf_counter() - start_wall)
            cpu[way].append(time.process_time() - start_cpu)
            steps[way].append(np.diff(stamps))
    per_step = {way: np.median(np.array(runs), axis=0) for way, runs in steps.items()}
    return wall, cpu, per_step, all(np.array_equal(outputs[0], out) for out in outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way (default 3)")
    parser.add_argument("--batch", type=int, default=1, help="prompts generated together (default 1)")
    args = parser.parse_args()
    malloc = "glibc tuned" if tune_malloc() else "allocator as is"  # as bench/run.py: every way alike
    model = build_model()
    prompt = np.random.default_rng(0).integers(0, VOCAB, (args.batch, PROMPT))
    with blas_threads() as blas:
        wall, cpu, profiles, identical = measure(model, prompt, args.repeats)
    print(f"GPT: 4 blocks, d=128, 4 heads, context {CONTEXT}, vocab {VOCAB}; prompt {PROMPT}, {NEW} new tokens "
          f"(greedy), batch {args.batch}; {blas}; {malloc}; medians of {args.repeats} interleaved runs")
    print(f"{'':22s}{'wall (s)':>9s}{'CPU (s)':>9s}{'speed-up':>10s}{'steps 2-' + str(WINDOW + 1):>14s}"
          f"{'last ' + str(WINDOW) + ' steps':>16s}{'end / start':>13s}")
    baseline = statistics.median(wall["without the cache"])
    for way in WAYS:
        steps = profiles[way]
        # step 0 is the prompt; with the compiled step, steps 1 and 2 are its two recordings
        start, end = np.median(steps[3 : WINDOW + 3]), np.median(steps[-WINDOW:])
        seconds = statistics.median(wall[way])
        print(f"{way:22s}{seconds:9.3f}{statistics.median(cpu[way]):9.3f}{baseline / seconds:9.1f}x"
              f"{start * 1e3:11.2f} ms{end * 1e3:13.2f} ms{end / start:12.2f}x")
    compiled = profiles["cache, compiled"]
    print(f"compiled: prompt step {compiled[0] * 1e3:.2f} ms, its two recorded steps {compiled[1] * 1e3:.2f} and "
          f"{compiled[2] * 1e3:.2f} ms")
    print(f"identical tokens in every run of every way: {identical}")
    with blas_threads():
        result = tt.profiler.compare(
            lambda: generate(model, prompt, NEW, temperature=0, **WAYS["without the cache"]),
            lambda: generate(model, prompt, NEW, temperature=0, **WAYS["cache, compiled"]),
            warmup=1, min_time=0, min_runs=args.repeats, labels=("uncached", "cached, compiled"))
    low, high = result.ci95
    print(f"tt.profiler.compare, {args.repeats} interleaved rounds: cached (compiled) / uncached time {result.ratio:.4f} "
          f"(95 % interval {low:.4f} to {high:.4f}): {1 / result.ratio:.1f}x faster ({1 / high:.1f}x to {1 / low:.1f}x)")


if __name__ == "__main__":
    main()
