"""Collectives every rank calls together: a barrier, an all-reduce of metrics, a broadcast.

Each one is MPI's non-blocking form (``Ibarrier``, ``Iallreduce``, ``Ibcast``) followed by
``World.wait``, which gives up after the world's timeout instead of hanging.
"""

from __future__ import annotations

import numbers
import zlib

import numpy as np

from tinytorch_core import Tensor, as_tensor

from .world import world

#: the reductions ``all_reduce`` knows, by name
REDUCTIONS = ("mean", "sum", "max", "min")


def barrier() -> None:
    """Return once every rank has reached its barrier."""
    job = world()
    if job.size > 1:
        job.wait(job.comm.Ibarrier(), "barrier()")


def all_reduce(value, op: str = "mean"):
    """Combine a metric over all ranks: ``all_reduce(loss.item())`` is the mean loss of the job.

    ``value`` is a number, a NumPy array or a Tensor (its value, never its graph); ``op`` is
    "mean", "sum", "max" or "min". Every rank gets the same result, as the type it passed
    (a float for a number). Computed in float64, so a sum of counts stays exact."""
    if op not in REDUCTIONS:
        raise ValueError(f"all_reduce: op must be one of {REDUCTIONS}, got {op!r}")
    local = _as_float64(value)
    job = world()
    total = local.copy()
    if job.size > 1:
        from mpi4py import MPI

        mpi_op = {"mean": MPI.SUM, "sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
        _check_one_shape(job, local.shape, op)
        job.wait(job.comm.Iallreduce(local, total, op=mpi_op), f"all_reduce(op={op!r})")
    if op == "mean":
        total /= job.size
    if isinstance(value, Tensor):
        return as_tensor(total.astype(value.data.dtype))
    if isinstance(value, np.ndarray):
        return total.astype(value.dtype) if value.dtype.kind == "f" else total
    return float(total)


def _check_one_shape(job, shape: tuple, op: str) -> None:
    """Every rank passed the same shape: MPI would reduce the shortest prefix and leave the rest,
    a different result on each rank."""
    if not same_on_every_rank(job, repr(shape), f"all_reduce(op={op!r})"):
        raise ValueError(f"all_reduce(op={op!r}): the ranks passed values of different shapes (this rank's: {shape}); "
                         "pass one shape on every rank (for an uneven last batch: reduce each rank's sum and count)")


def same_on_every_rank(job, description: str, what: str) -> bool:
    """Whether every rank's ``description`` is the same: one small all-reduce of a checksum of it
    (largest and smallest, in one call). Every rank gets the same answer, so all can raise together."""
    from mpi4py import MPI

    code = float(zlib.crc32(description.encode()))  # the same in every process (hash() of text is not)
    extremes = np.empty(2)
    job.wait(job.comm.Iallreduce(np.array([code, -code]), extremes, op=MPI.MAX), what)
    return extremes[0] == -extremes[1]


def _as_float64(value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise TypeError(f"all_reduce: expected a number, a NumPy array or a Tensor, got {type(value).__name__}")
    return np.array(value, dtype=np.float64)  # a fresh buffer: MPI reads it while we wait


def broadcast_(array: np.ndarray, what: str, root: int = 0) -> None:
    """Overwrite ``array`` on every rank with rank ``root``'s values, in place."""
    job = world()
    if job.size > 1:
        buffer = np.ascontiguousarray(array)
        job.wait(job.comm.Ibcast(buffer, root=root), f"broadcast of {what}")
        if buffer is not array:
            array[...] = buffer
