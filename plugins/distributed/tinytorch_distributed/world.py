"""The process group: which process am I (rank), how many are we (world size), and how a job
fails: loudly, all at once, and never by hanging.

MPI is the engine. ``mpiexec -n 4 python train.py`` starts four copies of the script; each calls
``init()`` and learns its rank from MPI. A script run without a launcher is a world of one, so
the same script runs on a laptop, under ``tinytorch launch -n 2`` and on a cluster.

Two rules keep a failing job from hanging: an uncaught exception on any rank prints that rank's
traceback and calls ``MPI_Abort``, which ends every rank (``mpiexec`` exits non-zero); and every
collective waits with a deadline (``timeout``), so a rank that silently left makes the others
fail instead of waiting forever.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import time
from dataclasses import dataclass

#: seconds a collective may wait for the other ranks before the job is declared stuck
DEFAULT_TIMEOUT = 300.0
TIMEOUT_VARIABLE = "TINYTORCH_DISTRIBUTED_TIMEOUT"
SPIN = 0.05  # seconds a wait polls without pausing


class DistributedError(RuntimeError):
    """A distributed operation cannot go on: misuse, or a collective that timed out."""


@dataclass
class World:
    """The ranks of one job: ``comm`` (an MPI communicator), this process's ``rank``, the
    ``size`` of the world, and the ``timeout`` of every wait."""

    comm: object
    rank: int
    size: int
    timeout: float

    def wait(self, request, what: str) -> None:
        """Wait for a non-blocking MPI operation, at most ``timeout`` seconds.

        MPI's own ``Wait`` never gives up; polling with ``Test`` does. Each ``Test`` also moves
        MPI's messages along, so the first ``SPIN`` seconds poll without pausing (a pause on
        one rank delays every rank); after that the pause grows to a millisecond, which costs
        little CPU while a slow rank is awaited."""
        start = time.monotonic()
        deadline, spin_until = start + self.timeout, start + SPIN
        pause = 0.0
        while not request.Test():
            now = time.monotonic()
            if now < spin_until:
                continue
            if now > deadline:
                raise DistributedError(
                    f"rank {self.rank} of {self.size}: {what} did not complete within {self.timeout:g} s; "
                    f"another rank failed or never reached it (set the timeout with init(timeout=...) "
                    f"or {TIMEOUT_VARIABLE})"
                )
            time.sleep(pause)
            pause = min(2 * pause + 1e-5, 1e-3)


_world: World | None = None


def init(timeout: float | None = None) -> World:
    """Join the job: rank and world size come from the MPI launcher; without one, a world of 1.

    Call it once at the top of a training script (later calls return the same world). It also
    makes an uncaught exception on any rank end the whole job (``MPI_Abort``)."""
    global _world
    if _world is None:
        seconds = _timeout(timeout)
        from mpi4py import MPI  # importing mpi4py.MPI initializes MPI: only when asked to

        comm = MPI.COMM_WORLD
        _world = World(comm, comm.Get_rank(), comm.Get_size(), seconds)
        _abort_on_uncaught_exception(_world)
    elif timeout is not None:
        _world.timeout = _seconds(timeout, "timeout")
    return _world


def _timeout(timeout) -> float:
    if timeout is not None:
        return _seconds(timeout, "timeout")
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        return _seconds(float(text), TIMEOUT_VARIABLE)
    except ValueError:
        raise ValueError(f"init: {TIMEOUT_VARIABLE} must be a positive number of seconds, got {text!r}") from None


def _seconds(value, what: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"init: {what} must be a positive number of seconds, got {value!r}")
    return float(value)


def world() -> World:
    """The world ``init()`` joined (``init()`` is called if no one has yet)."""
    return _world if _world is not None else init()


def get_rank() -> int:
    """This process's rank: 0 .. world size - 1."""
    return world().rank


def get_world_size() -> int:
    """How many processes the job runs."""
    return world().size


def is_main_process() -> bool:
    """True on rank 0, the rank that saves, logs and shows progress."""
    return world().rank == 0


#: seconds a failing rank waits, after printing its error, before it aborts the job
ABORT_GRACE_S = 0.5


def _abort_on_uncaught_exception(job: World) -> None:
    """An exception that ends one rank ends the job: the others would otherwise wait forever in
    their next collective. The failing rank's traceback is printed first, under its name."""
    previous = sys.excepthook

    def abort_the_job(kind, value, traceback) -> None:
        if job.size > 1:
            sys.stderr.write(f"[tinytorch.distributed] rank {job.rank} of {job.size} failed:\n")
        previous(kind, value, traceback)
        if job.size > 1:
            sys.stderr.write(f"[tinytorch.distributed] rank {job.rank}: aborting all {job.size} ranks\n")
            sys.stderr.flush()
            time.sleep(ABORT_GRACE_S)  # let mpiexec forward the message before the abort tears the job down
            job.comm.Abort(1)

    sys.excepthook = abort_the_job
