"""The contract of stage ``distributed``, checked in one process (a world of 1) through the public
API: the sampler's shards for any rank and world, one all-reduce per bucket, data-parallel
training in a world of 1 equal to plain training, no_sync, metrics, rank-0 saving and logging.
What only several processes show (2-rank training equals 1 process, a failing rank ends the job)
is tested by the stage's own MPI tests."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import Check, ConformanceError, expect_close
from .contract import Helper, Layer


def _expect(what: str, actual, expected) -> None:
    if actual != expected:
        raise ConformanceError(f"{what}: got {actual!r}, expected {expected!r}")


def init_world_of_one():
    job = tt.distributed.init()
    _expect("init() without a launcher: (rank, size)", (job.rank, job.size), (0, 1))
    _expect("get_rank(), get_world_size(), is_main_process()",
            (tt.distributed.get_rank(), tt.distributed.get_world_size(), tt.distributed.is_main_process()),
            (0, 1, True))


def sampler_shards():
    shards = [tt.distributed.DistributedSampler(10, num_replicas=3, rank=r, shuffle=False) for r in range(3)]
    _expect("padded shards of 10 samples over 3 ranks (no shuffle)", [list(s) for s in shards],
            [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]])
    dropped = [list(tt.distributed.DistributedSampler(10, num_replicas=3, rank=r, shuffle=False, drop_last=True))
               for r in range(3)]
    _expect("shards with drop_last=True", dropped, [[0, 3, 6], [1, 4, 7], [2, 5, 8]])
    _expect("len() of a padded shard", len(shards[1]), 4)


def sampler_epochs():
    ranks = [tt.distributed.DistributedSampler(20, num_replicas=2, rank=r, seed=7) for r in range(2)]
    first = [list(s) for s in ranks]
    if sorted(first[0] + first[1]) != list(range(20)):
        raise ConformanceError(f"the two ranks' shuffled shards must cover the 20 samples once, got {first}")
    for sampler in ranks:
        sampler.set_epoch(1)
    if [list(s) for s in ranks] == first:
        raise ConformanceError("set_epoch(1) must draw a new permutation")
    again = tt.distributed.DistributedSampler(20, num_replicas=2, rank=0, seed=7)
    _expect("the epoch-0 shard of a new sampler with the same seed", list(again), first[0])


class _CountingWorld:
    """The world of ``init()`` whose communicator counts its all-reduce calls."""

    def __init__(self, job):
        self._job, self.rank, self.size, self.timeout, self.allreduces = job, job.rank, job.size, job.timeout, 0
        self.comm = self

    def Iallreduce(self, *args, **kwargs):
        self.allreduces += 1
        return self._job.comm.Iallreduce(*args, **kwargs)

    def wait(self, request, what):
        return self._job.wait(request, what)

    def __getattr__(self, name):  # every other MPI call goes to the real communicator
        return getattr(self._job.comm, name)


def _mlp():
    return tt.nn.Sequential(tt.nn.Linear(6, 5, generator=0), tt.nn.ReLU(), tt.nn.Linear(5, 3, generator=1))


def _batches():
    rng = np.random.default_rng(0)
    return [(Tensor(rng.standard_normal((8, 6)).astype(np.float32)), Tensor(rng.integers(0, 3, 8))) for _ in range(3)]


def buckets_and_all_reduces():
    world = _CountingWorld(tt.distributed.init())
    ddp = tt.distributed.DistributedDataParallel(_mlp(), bucket_size=80, world=world)
    sizes = [[tuple(p.shape) for p in bucket.parameters] for bucket in ddp.buckets]
    _expect("buckets of 80 bytes, last parameter first", sizes, [[(3,), (3, 5)], [(5,)], [(5, 6)]])
    x, y = _batches()[0]
    tt.ops.cross_entropy(ddp(x), y).backward()
    _expect("all-reduce calls in one backward", world.allreduces, len(ddp.buckets))


def world_of_one_is_plain_training():
    plain, ddp = _mlp(), tt.distributed.DistributedDataParallel(_mlp(), bucket_size=64)
    for model in (plain, ddp):
        optimizer = tt.optim.SGD(model.parameters(), lr=0.5)
        for x, y in _batches():
            optimizer.zero_grad()
            tt.ops.cross_entropy(model(x), y).backward()
            optimizer.step()
    for (name, a), b in zip(plain.named_parameters(), ddp.parameters()):
        expect_close(f"{name} after 3 steps with DDP in a world of 1", b, a.data, rtol=0, atol=0)


def no_sync_accumulates():
    world = _CountingWorld(tt.distributed.init())
    ddp, reference = tt.distributed.DistributedDataParallel(_mlp(), world=world), _mlp()
    (x1, y1), (x2, y2) = _batches()[:2]
    with ddp.no_sync():
        tt.ops.cross_entropy(ddp(x1), y1).backward()
    _expect("all-reduce calls of a backward inside no_sync()", world.allreduces, 0)
    tt.ops.cross_entropy(ddp(x2), y2).backward()
    for x, y in ((x1, y1), (x2, y2)):
        tt.ops.cross_entropy(reference(x), y).backward()
    for (name, a), b in zip(reference.named_parameters(), ddp.parameters()):
        expect_close(f"grad of {name} after no_sync() and one synchronized backward", b.grad, a.grad.data)


def metrics_and_barrier():
    tt.distributed.barrier()
    _expect("all_reduce(2.5) in a world of 1", tt.distributed.all_reduce(2.5), 2.5)
    expect_close("all_reduce(array, op='sum')", tt.distributed.all_reduce(np.array([1.0, 3.0]), op="sum"), [1.0, 3.0])


def rank_zero_save_and_log():
    model = tt.nn.Linear(2, 2, generator=0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        tt.distributed.save(model.state_dict(), path)
        expect_close("the saved weight", tt.io.load(path)["weight"], model.weight.data)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tt.distributed.log("loss", 0.5)
    _expect("log('loss', 0.5) on rank 0", out.getvalue(), "loss 0.5\n")
    _expect("progress() yields the items", list(tt.distributed.progress(range(3), file=io.StringIO())), [0, 1, 2])


CHECKS = [
    Check("distributed.init", "contract", init_world_of_one),
    Check("distributed.DistributedSampler", "contract", sampler_shards),
    Check("distributed.DistributedSampler", "contract", sampler_epochs),
    Check("distributed.DistributedDataParallel", "contract", buckets_and_all_reduces),
    Check("distributed.DistributedDataParallel", "training", world_of_one_is_plain_training),
    Check("distributed.DistributedDataParallel", "contract", no_sync_accumulates),
    Check("distributed.all_reduce, distributed.barrier", "contract", metrics_and_barrier),
    Check("distributed.save, distributed.log, distributed.progress", "contract", rank_zero_save_and_log),
]

CONTRACT = [
    Helper("distributed", "init", "timeout=None", """Join the MPI job (``from mpi4py import MPI``; ``MPI.COMM_WORLD``);
    a world of 1 without a launcher. Return the same world object on every call: ``comm``, ``rank``, ``size``,
    ``timeout`` and ``wait(request, what)`` (poll ``request.Test()``; raise after ``timeout`` seconds). Install a
    ``sys.excepthook`` that prints the traceback, then calls ``comm.Abort(1)`` when size > 1."""),
    Helper("distributed", "get_rank", "", """The rank of this process in ``init()``'s world."""),
    Helper("distributed", "get_world_size", "", """The size of ``init()``'s world."""),
    Helper("distributed", "is_main_process", "", """True on rank 0."""),
    Helper("distributed", "barrier", "", """Return when every rank reached it (``Ibarrier`` and ``wait``)."""),
    Helper("distributed", "all_reduce", "value, op='mean'", """Combine a number, array or Tensor over the ranks
    (op: mean, sum, max, min) in float64; return the same kind of value."""),
    Layer("DistributedDataParallel", "module, bucket_size=1 << 20, world=None", namespace="distributed",
          doc="""Broadcast rank 0's parameters and buffers; ``buckets``: objects with ``parameters``, the trained
    parameters last-first, grouped up to ``bucket_size`` bytes (a new bucket when the next would not fit).
    Each parameter gets ``register_post_accumulate_grad_hook``: when a bucket's gradients are all final, start
    ``world.comm.Iallreduce`` of its flattened gradients (buckets in index order); on the first hook of a pass
    ``tinytorch_core.engine.queue_callback`` a function that starts what is left (zeros for unused parameters),
    waits for all, and stores sum / size as each ``.grad``. One all-reduce per bucket per backward. ``no_sync()``:
    a context manager (``contextlib.contextmanager``) inside which hooks send nothing.""",
          methods=("def forward(self, *args, **kwargs)", "def no_sync(self)")),
    Layer("DistributedSampler", "dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False",
          namespace="distributed", base="object", doc="""Indices of this rank: one permutation of the dataset's
    length seeded by (seed, epoch) (``np.random.default_rng([seed, epoch])``), padded by repeating its first
    indices to a multiple of num_replicas (or cut, with drop_last), then every num_replicas-th from rank.""",
          methods=("def set_epoch(self, epoch)", "def __iter__(self)", "def __len__(self)")),
    Helper("distributed", "save", "state, path", """Rank 0 writes ``tt.io.save(state, path)``; then a barrier."""),
    Helper("distributed", "log", "*values, sep=' ', file=None", """``print`` on rank 0 only, flushed."""),
    Helper("distributed", "progress", "iterable, description='', total=None, file=None", """Yield the items; rank 0
    draws a progress line on ``file`` (stderr by default)."""),
]
