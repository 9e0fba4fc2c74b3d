"""Real 2-rank MPI jobs, started the way a user starts them (``tinytorch launch -n 2``), each
with a timeout: data-parallel training equals one process on the same global batches, one
all-reduce per bucket per step, and a failing or stuck rank ends the job in seconds."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

JOBS = Path(__file__).parent / "jobs"  # the scripts the jobs run (not collected as tests)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


digits_training = _load("digits_training")
pytestmark = pytest.mark.skipif(
    __import__("tinytorch_distributed.launch", fromlist=["find_mpiexec"]).find_mpiexec() is None,
    reason="no mpiexec (install the mpich wheel)",
)


def launch(script: str, *arguments, processes: int = 2, timeout: float = 60, environ=None):
    target = str(JOBS / script) if script.endswith(".py") else script  # a job script, or a command
    command = [sys.executable, "-m", "tinytorch_core", "launch", "-n", str(processes), target, *arguments]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=JOBS,
                          env={**os.environ, **(environ or {})})
    return done, time.monotonic() - start


def test_two_ranks_train_the_mlp_to_the_parameters_of_one_process(tmp_path):
    """Float tolerance, not bitwise: each rank's matmul sums its half of the batch, and the two
    halves are added by the all-reduce; one process sums the whole batch in another order."""
    out = tmp_path / "two_ranks.npz"
    done, _ = launch("digits_training.py", str(out), "--steps", "50", "--batch", "32", "--bucket-size", "2048")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("trained 50 steps on 2 ranks") == 1  # rank 0 logs, rank 1 does not
    two = np.load(out)
    one, one_calls, buckets = digits_training.train(steps=50, batch=32, bucket_size=2048)
    assert int(two["buckets"]) == buckets == 2  # 2 KiB buckets: [fc2 weight+bias, fc1 bias], [fc1 weight]
    assert two["calls"].tolist() == [buckets] * 50 and one_calls == [buckets] * 50
    start = digits_training.train(steps=0)[0]
    for name, value in one.items():
        np.testing.assert_allclose(two[name], value, rtol=0, atol=1e-5, err_msg=name)
        assert np.abs(two[name] - start[name]).max() > 1e-2, name  # it trained


def test_a_rank_that_raises_ends_the_job_within_seconds_naming_it():
    done, seconds = launch("failing_rank.py", timeout=30)
    assert done.returncode != 0
    assert seconds < 15
    assert "rank 1 of 2 failed" in done.stderr and "ValueError: rank one ran out of luck" in done.stderr


def test_a_stuck_rank_makes_the_collective_time_out_instead_of_hanging():
    done, seconds = launch("stuck_rank.py", timeout=30, environ={"TINYTORCH_DISTRIBUTED_TIMEOUT": "1"})
    assert done.returncode != 0 and seconds < 20
    assert "rank 0 of 2: barrier() did not complete within 1 s" in done.stderr


def test_the_milestones_run_under_the_launcher_and_only_rank_0_prints():
    done, _ = launch("tinytorch", "milestones", "run", "mlp", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("OK: 1 passed, 0 failed") == 1


def test_all_reduce_of_different_shapes_is_refused_on_every_rank():
    """MPI reduced the first three values and left rank 1's last two as they were: two ranks,
    two different results, no error."""
    done, _ = launch("uneven_all_reduce.py", timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reduced without an error" not in done.stdout + done.stderr
    for rank in (0, 1):
        assert f"rank {rank}: all_reduce(op='sum'): the ranks passed values of different shapes" in done.stdout + done.stderr


def test_data_parallel_models_that_differ_between_ranks_are_refused_by_name():
    """The first broadcast failed with a bare "Other MPI error" stack."""
    done, _ = launch("mismatched_models.py", timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank, width in ((0, 4), (1, 5)):
        assert (f"rank {rank}: DistributedDataParallel: the ranks' models differ (names, shapes or dtypes of their "
                f"parameters and buffers); this rank's: weight ({width}, 3), bias ({width},)") in done.stderr
