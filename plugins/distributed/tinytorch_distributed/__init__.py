"""TinyTorch stage: data-parallel training on MPI.

Reach it as ``tinytorch_core.distributed``: ``init`` (rank and world size from the MPI launcher;
a world of 1 without one), ``DistributedDataParallel`` (gradients averaged over ranks in
buckets, overlapping backward), ``DistributedSampler`` (each rank its shard of every epoch),
the collectives ``barrier`` and ``all_reduce`` (of metrics), and the rank-0 helpers ``save``,
``log`` and ``progress``. ``tinytorch launch -n N script.py`` starts N ranks.
"""

from .buckets import Bucket, assign_buckets
from .collectives import all_reduce, barrier
from .ddp import DistributedDataParallel
from .rank_zero import log, progress, save
from .sampler import DistributedSampler
from .world import DistributedError, World, get_rank, get_world_size, init, is_main_process

__all__ = ["Bucket", "DistributedDataParallel", "DistributedError", "DistributedSampler", "World", "all_reduce",
           "assign_buckets", "barrier", "get_rank", "get_world_size", "init", "is_main_process", "log", "progress",
           "save"]
