"""``DistributedSampler``: which samples each rank reads in an epoch.

Every rank draws the *same* permutation (seeded by ``seed`` and the epoch), then takes every
N-th index starting at its rank: the shards are disjoint and together cover the epoch. Step k
of rank r then reads positions k*B + r, k*B + r + N, ... of the permutation, so the N ranks'
batches of B / N samples together are exactly the batch of B samples one process would read
from the same permutation: data-parallel training sees the same global batches.

Equal length matters: a rank with one batch more would wait in an all-reduce no one else joins.
By default the epoch is *padded* by repeating its first indices until N divides it (PyTorch's
default; a few samples count twice); ``drop_last=True`` *drops* the tail instead.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinytorch_core.checks import non_negative_int, positive_int, true_or_false

from .world import world


class DistributedSampler:
    """An iterable of sample indices for ``DataLoader(dataset, batch_size, sampler=...)``.

    ``dataset``: a dataset (anything with ``len``) or its length. ``num_replicas`` and ``rank``
    default to the world's; ``shuffle`` with ``seed`` draws a new permutation each epoch: call
    ``set_epoch(epoch)`` before each one."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        where = "DistributedSampler"
        # the flags are checked, not converted: bool("False") is True, so drop_last="False" would
        # drop samples and shuffle="no" would shuffle
        self.shuffle = true_or_false(shuffle, "shuffle", where)
        self.drop_last = true_or_false(drop_last, "drop_last", where)
        self.seed = non_negative_int(seed, "seed", where)
        self.length = _length_of(dataset)
        if num_replicas is None or rank is None:  # asking the world starts MPI: only when needed
            num_replicas = world().size if num_replicas is None else num_replicas
            rank = world().rank if rank is None else rank
        self.num_replicas = positive_int(num_replicas, "num_replicas", where)
        self.rank = non_negative_int(rank, "rank", where)
        if self.rank >= self.num_replicas:
            raise ValueError(f"{where}: rank must be below num_replicas ({self.num_replicas}), got {self.rank}")
        self.epoch = 0
        rounded = math.floor if self.drop_last else math.ceil
        self.per_rank = rounded(self.length / self.num_replicas)  # indices each rank reads per epoch
        if self.per_rank == 0:
            raise ValueError(f"{where}: {self.length} samples cannot give each of {self.num_replicas} ranks "
                             "one sample with drop_last=True")

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's permutation (the same on every rank)."""
        self.epoch = non_negative_int(epoch, "epoch", "DistributedSampler.set_epoch")

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch."""
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
                 if self.shuffle else np.arange(self.length))
        total = self.per_rank * self.num_replicas
        if total > self.length:  # pad: repeat the first indices (wrapping if the epoch is tiny)
            order = np.resize(order, total)
        return order[:total][self.rank :: self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.per_rank


def _length_of(dataset) -> int:
    if isinstance(dataset, numbers.Integral) and not isinstance(dataset, bool):
        return positive_int(dataset, "the dataset length", "DistributedSampler")
    if not hasattr(dataset, "__len__"):
        raise TypeError(f"DistributedSampler: expected a dataset (with len()) or its length, got {type(dataset).__name__}")
    return positive_int(len(dataset), "the dataset's length", "DistributedSampler")
