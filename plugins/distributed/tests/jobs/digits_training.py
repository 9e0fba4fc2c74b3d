"""Data-parallel training of a small MLP on the digits, the job the MPI tests launch.

    tinytorch launch -n 2 digits_training.py OUT.npz [--steps 50 --batch 32 --bucket-size 2048]

Every rank trains on its shard of each global batch (``DistributedSampler``); rank 0 writes the
final parameters and the number of all-reduce calls of every step to OUT.npz. ``train()`` run in
one process (a world of 1) is the reference the test compares with.
"""

from __future__ import annotations

import argparse

import numpy as np

import tinytorch_core as tt
from tinytorch_milestones.datasets import load_digits

HIDDEN = 32


class CountingComm:
    """An MPI communicator that counts its all-reduce calls (everything else goes through)."""

    def __init__(self, comm):
        self.comm, self.allreduces = comm, 0

    def Iallreduce(self, *args, **kwargs):
        self.allreduces += 1
        return self.comm.Iallreduce(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.comm, name)


def digits():
    data = load_digits()
    return data.x_train.reshape(len(data.x_train), -1).astype(np.float32), data.y_train


def train(steps: int = 50, batch: int = 32, bucket_size: int = 2048, seed: int = 0):
    """Train for ``steps`` global batches of ``batch`` samples, split over the world's ranks.
    Returns the final parameters (name -> array), the all-reduce calls of each step, the buckets."""
    job = tt.distributed.init()
    counting = CountingComm(job.comm)
    world = type(job)(counting, job.rank, job.size, job.timeout)
    model = tt.nn.Sequential(tt.nn.Linear(64, HIDDEN, generator=seed + job.rank),  # ranks start different:
                             tt.nn.ReLU(), tt.nn.Linear(HIDDEN, 10, generator=seed + 1))  # DDP broadcasts rank 0's
    ddp = tt.distributed.DistributedDataParallel(model, bucket_size=bucket_size, world=world)
    optimizer = tt.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    x, y = digits()
    sampler = tt.distributed.DistributedSampler(len(x), seed=seed)
    loader = tt.data.DataLoader(tt.data.TensorDataset(x, y), batch_size=batch // job.size, sampler=sampler)
    calls, epoch = [], 0
    while len(calls) < steps:
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            before = counting.allreduces
            loss = tt.ops.cross_entropy(ddp(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            calls.append(counting.allreduces - before)
            if len(calls) == steps:
                break
        epoch += 1
    parameters = {name: p.data.copy() for name, p in model.named_parameters()}
    return parameters, calls, len(ddp.buckets)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--bucket-size", type=int, default=2048)
    args = parser.parse_args()
    parameters, calls, buckets = train(args.steps, args.batch, args.bucket_size)
    if tt.distributed.is_main_process():
        np.savez(args.out, calls=np.array(calls), buckets=buckets, **parameters)
    tt.distributed.log(f"trained {args.steps} steps on {tt.distributed.get_world_size()} ranks")


if __name__ == "__main__":
    main()
