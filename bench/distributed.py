"""Data-parallel training measured: does communication hide behind backward, and what do two
processes give on this machine?

Run from the repository root::

    uv run python bench/distributed.py                # both parts
    uv run python bench/distributed.py --part overlap
    uv run python bench/distributed.py --part scaling

*Overlap* (one process): an MLP's gradients go through a simulated slow network, a link that
carries one all-reduce at a time and takes ``--delay`` ms for each (one bucket per layer).
Three things are timed in interleaved rounds: ``compute`` (a DDP step over an instant link:
forward, backward and DDP's own copies), ``communication`` (the step's all-reduces over the
slow link, alone) and ``DDP (overlapped)`` (the step over the slow link: buckets start during
backward). Overlap means the last is less than compute + communication.

*Scaling*: the digits MLP trained by ``tinytorch launch -n 1`` and ``-n 2`` with the same global
batch; the time of a step (median over the steps after a warm-up, max over ranks).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# one BLAS thread per process (the ranks inherit it): two ranks then use two cores, as one
# process with two BLAS threads would, and a busy machine's threads do not wait for each other
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after choosing BLAS threads)

import tinytorch_core as tt  # noqa: E402

HERE = Path(__file__).resolve()


# ---- the simulated slow network ----------------------------------------------------------------------
class SlowLink:
    """A communicator whose all-reduces travel over one slow link: each takes ``delay`` seconds
    of the link, one after another, and completes when its time on the link is over (and the
    real all-reduce is done). The link is a clock, not a thread: nothing waits for Python's GIL."""

    def __init__(self, comm, delay: float):
        self.comm, self.delay, self.free_at = comm, delay, 0.0

    def Iallreduce(self, send, result):
        self.free_at = max(time.perf_counter(), self.free_at) + self.delay  # queued behind earlier messages
        return _SlowRequest(self.comm.Iallreduce(send, result), self.free_at)

    def __getattr__(self, name):
        return getattr(self.comm, name)


class _SlowRequest:
    def __init__(self, real, arrives_at: float):
        self.real, self.arrives_at = real, arrives_at

    def Test(self):
        return time.perf_counter() >= self.arrives_at and self.real.Test()


def _mlp(width: int, layers: int):
    blocks = []
    for k in range(layers):
        blocks += [tt.nn.Linear(width, width, generator=k), tt.nn.ReLU()]
    return tt.nn.Sequential(*blocks, tt.nn.Linear(width, 10, generator=layers))


def overlap(delay_ms: float, rounds: int, width: int = 256, layers: int = 8, batch: int = 256) -> None:
    job = tt.distributed.init()
    rng = np.random.default_rng(0)
    x = tt.Tensor(rng.standard_normal((batch, width)).astype(np.float32))
    y = tt.Tensor(rng.integers(0, 10, batch))
    bucket_size = width * width * 4 + width * 4  # about one Linear layer's weight and bias per bucket

    def over(link):
        return tt.distributed.DistributedDataParallel(_mlp(width, layers), bucket_size=bucket_size,
                                                      world=type(job)(link, job.rank, job.size, job.timeout))

    instant, slow = SlowLink(job.comm, 0.0), SlowLink(job.comm, delay_ms / 1000)
    computing, overlapping = over(instant), over(slow)
    buckets = len(overlapping.buckets)

    def step(model):
        model.zero_grad()
        tt.ops.cross_entropy(model(x), y).backward()

    def communication():  # the all-reduces of one step over the slow link, nothing else
        requests = [slow.Iallreduce(np.zeros(1, np.float32), np.empty(1, np.float32)) for _ in range(buckets)]
        for request in requests:
            job.wait(request, "simulated all-reduce")

    runs = {"compute": lambda: step(computing), "communication": communication,
            "DDP (overlapped)": lambda: step(overlapping)}
    times = {name: [] for name in runs}
    for _ in range(rounds):  # interleaved: machine noise hits every variant alike
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    median = {name: 1000 * float(np.median(t[1:])) for name, t in times.items()}
    print(f"overlap: MLP {layers} x Linear({width},{width}) + Linear({width},10), batch {batch}; "
          f"{buckets} buckets over a simulated link, {delay_ms:g} ms per all-reduce, one at a time; "
          f"median of {rounds - 1} interleaved rounds")
    print(f"  {'step':<22}{'ms':>9}")
    for name, ms in median.items():
        print(f"  {name:<22}{ms:>9.1f}")
    budget = median["compute"] + median["communication"]
    print(f"  {'compute + comm':<22}{budget:>9.1f}")
    print(f"  DDP step < compute + communication: {median['DDP (overlapped)'] < budget} "
          f"({budget - median['DDP (overlapped)']:.1f} ms of communication hidden behind backward)")


# ---- scaling: 1 vs 2 processes ----------------------------------------------------------------------
def worker(steps: int, batch: int) -> None:
    """One rank of the scaling run: train the digits MLP; rank 0 prints the step times (JSON)."""
    from tinytorch_milestones.datasets import load_digits

    job = tt.distributed.init()
    data = load_digits()
    x, y = data.x_train.reshape(len(data.x_train), -1).astype(np.float32), data.y_train
    model = tt.nn.Sequential(tt.nn.Linear(64, 128, generator=0), tt.nn.ReLU(), tt.nn.Linear(128, 10, generator=1))
    ddp = tt.distributed.DistributedDataParallel(model)
    optimizer = tt.optim.SGD(ddp.parameters(), lr=0.05)
    sampler = tt.distributed.DistributedSampler(len(x), seed=0)
    loader = tt.data.DataLoader(tt.data.TensorDataset(x, y), batch_size=batch // job.size, sampler=sampler)
    times, epoch = [], 0
    while len(times) < steps:
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            start = time.perf_counter()
            optimizer.zero_grad()
            tt.ops.cross_entropy(ddp(xb), yb).backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
            if len(times) == steps:
                break
        epoch += 1
    slowest = tt.distributed.all_reduce(np.array(times), op="max")  # a step ends when its slowest rank does
    tt.distributed.log(json.dumps({"ranks": job.size, "step_ms": 1000 * float(np.median(slowest[steps // 5:]))}))


def scaling(batches: list, steps: int) -> None:
    print(f"\nscaling: digits MLP Linear(64,128)+ReLU+Linear(128,10), SGD; global batch split over the ranks; "
          f"median step of {steps - steps // 5} steps (slowest rank)")
    print(f"  {'global batch':>12}{'processes':>11}{'step ms':>10}{'samples/s':>11}{'speed-up':>10}")
    for batch in batches:
        one = None
        for processes in (1, 2):
            command = [sys.executable, "-m", "tinytorch_core", "launch", "-n", str(processes), str(HERE),
                       "--worker", "--steps", str(steps), "--batch", str(batch)]
            out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True).stdout
            step_ms = json.loads(out.strip().splitlines()[-1])["step_ms"]
            one = one or step_ms
            print(f"  {batch:>12}{processes:>11}{step_ms:>10.2f}{batch / step_ms * 1000:>11.0f}{one / step_ms:>9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("overlap", "scaling", "both"), default="both")
    parser.add_argument("--delay", type=float, default=3.0, help="ms per simulated all-reduce (default 3)")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--steps", type=int, default=100, help="steps per scaling run")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.steps, args.batch)
    if args.part in ("overlap", "both"):
        overlap(args.delay, args.rounds)
    if args.part in ("scaling", "both"):
        scaling(args.batches, args.steps)


if __name__ == "__main__":
    main()
