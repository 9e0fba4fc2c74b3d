"""Text generation with and without the key/value cache: total wall time and time per token.

A GPT of 4 blocks, d=128, 4 heads, context 256 generates 200 tokens (greedy) after a 56-token
prompt, batch 1 (``--batch B``: B prompts at once). Both ways run interleaved in one process (cached, uncached, cached, ...), so a
busy machine slows both alike; the figures are medians. The per-token profile times each model
call of the same runs (one call per step): without the cache a step recomputes every position so
far (its time grows with the length), with the cache it computes one position (it stays flat).

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


def build_model():
    model = tt.nn.GPT(VOCAB, CONTEXT, embed_dim=128, num_heads=4, num_layers=4, ff_dim=512, generator=0)
    return model.eval()


class TimedModel:
    """The model as ``generate`` sees it, timing each call: one call is one generation step."""

    def __init__(self, model):
        self.model, self.step_seconds = model, []
        self.vocab_size, self.max_len, self.num_layers = model.vocab_size, model.max_len, model.num_layers

    @property
    def training(self):
        return self.model.training

    def train(self, mode=True):
        self.model.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, idx, **kwargs):
        start = time.perf_counter()
        logits = self.model(idx, **kwargs)
        self.step_seconds.append(time.perf_counter() - start)
        return logits


def measure(model, prompt, repeats: int) -> tuple[dict, dict, dict, bool]:
    """Wall and CPU seconds of ``generate`` with and without the cache, and each step's seconds
    (median over the runs), interleaved; and whether every run produced the same tokens. (CPU time:
    this process's own, which other processes on a shared machine inflate less than wall time.)"""
    wall, cpu, steps, outputs = {True: [], False: []}, {True: [], False: []}, {True: [], False: []}, []
    for _ in range(repeats):
        for use_cache in (True, False):
            timed = TimedModel(model)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            outputs.append(generate(timed, prompt, NEW, temperature=0, use_cache=use_cache))
            wall[use_cache].append(time.perf_counter() - start_wall)
            cpu[use_cache].append(time.process_time() - start_cpu)
            steps[use_cache].append(timed.step_seconds)
    per_step = {use_cache: np.median(np.array(runs), axis=0) for use_cache, runs in steps.items()}
    return wall, cpu, per_step, all(np.array_equal(outputs[0], out) for out in outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way (default 3)")
    parser.add_argument("--batch", type=int, default=1, help="prompts generated together (default 1)")
    args = parser.parse_args()
    malloc = "glibc tuned" if tune_malloc() else "allocator as is"  # as bench/run.py: both ways alike
    model = build_model()
    prompt = np.random.default_rng(0).integers(0, VOCAB, (args.batch, PROMPT))
    with blas_threads() as blas:
        wall, cpu, profiles, identical = measure(model, prompt, args.repeats)
    print(f"GPT: 4 blocks, d=128, 4 heads, context {CONTEXT}, vocab {VOCAB}; prompt {PROMPT}, {NEW} new tokens "
          f"(greedy), batch {args.batch}; {blas}; {malloc}; medians of {args.repeats} interleaved runs")
    print(f"{'':26s}{'wall (s)':>9s}{'CPU (s)':>9s}{'steps 1-' + str(WINDOW):>14s}{'last ' + str(WINDOW) + ' steps':>16s}"
          f"{'end / start':>13s}")
    for use_cache in (True, False):
        steps = profiles[use_cache]
        start, end = np.median(steps[1 : WINDOW + 1]), np.median(steps[-WINDOW:])  # step 0: the prompt
        label = "with the KV cache" if use_cache else "without (full recompute)"
        print(f"{label:26s}{statistics.median(wall[use_cache]):9.3f}{statistics.median(cpu[use_cache]):9.3f}"
              f"{start * 1e3:11.2f} ms{end * 1e3:13.2f} ms{end / start:12.2f}x")
    print(f"prompt step with the cache: {profiles[True][0] * 1e3:.2f} ms")
    ratio = {name: statistics.median(times[False]) / statistics.median(times[True])
             for name, times in (("wall", wall), ("CPU", cpu))}
    print(f"speed-up of the cache: {ratio['wall']:.1f}x wall time, {ratio['CPU']:.1f}x CPU time (medians); "
          f"identical tokens in every run: {identical}")


if __name__ == "__main__":
    main()
