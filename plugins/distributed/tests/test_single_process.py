"""The stage in one process (a world of 1): sampler arithmetic for any rank and world, bucket
assignment, DDP equal to plain training, no_sync, and the helpers' contracts and errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_distributed import DistributedError, DistributedSampler, World, assign_buckets
from tinytorch_distributed.launch import command_line, find_mpiexec
from tinytorch_distributed.rank import python_script


# ---- DistributedSampler ------------------------------------------------------------------------------
@pytest.mark.parametrize("length, world", [(10, 2), (10, 3), (7, 4), (3, 5)])
def test_padded_shards_are_equal_and_cover_every_sample(length, world):
    shards = [DistributedSampler(length, num_replicas=world, rank=r, seed=3).indices() for r in range(world)]
    per_rank = -(-length // world)
    assert all(len(s) == per_rank for s in shards)
    together = np.concatenate(shards)
    assert set(together.tolist()) == set(range(length))
    assert len(together) - length == per_rank * world - length  # only the padding repeats


def test_dropping_gives_disjoint_equal_shards():
    shards = [DistributedSampler(10, num_replicas=3, rank=r, drop_last=True).indices() for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert len(set(np.concatenate(shards).tolist())) == 9


def test_the_ranks_batches_together_are_one_process_batches():
    one = DistributedSampler(12, num_replicas=1, rank=0, seed=5).indices()
    halves = [DistributedSampler(12, num_replicas=2, rank=r, seed=5).indices() for r in range(2)]
    for step in range(3):  # global batch 4 = 2 per rank
        together = np.concatenate([h[2 * step : 2 * step + 2] for h in halves])
        assert sorted(together.tolist()) == sorted(one[4 * step : 4 * step + 4].tolist())


def test_each_epoch_draws_its_own_permutation_reproducibly():
    sampler = DistributedSampler(50, num_replicas=2, rank=1, seed=0)
    first = sampler.indices()
    sampler.set_epoch(1)
    assert not np.array_equal(first, sampler.indices())
    sampler.set_epoch(0)
    np.testing.assert_array_equal(first, sampler.indices())
    assert list(DistributedSampler(5, num_replicas=2, rank=1, shuffle=False)) == [1, 3, 0]  # padded with index 0


def test_the_data_loader_reads_the_ranks_shard():
    dataset = tt.data.TensorDataset(np.arange(10.0).reshape(10, 1))
    sampler = DistributedSampler(dataset, num_replicas=2, rank=1, shuffle=False)
    loader = tt.data.DataLoader(dataset, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert np.concatenate([b[0].data[:, 0] for b in loader]).tolist() == [1, 3, 5, 7, 9]


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset=10, num_replicas=2, rank=2), "rank must be below num_replicas"),
    (dict(dataset=10, num_replicas=0, rank=0), "num_replicas must be a positive int"),
    (dict(dataset=3, num_replicas=4, rank=0, drop_last=True), "cannot give each of 4 ranks"),
    (dict(dataset=object(), num_replicas=1, rank=0), "expected a dataset .* got object"),
])
def test_sampler_refuses_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        DistributedSampler(**kwargs)


# ---- buckets ---------------------------------------------------------------------------------------------
def test_buckets_take_parameters_last_first_up_to_the_size():
    model = tt.nn.Sequential(tt.nn.Linear(4, 8), tt.nn.ReLU(), tt.nn.Linear(8, 2))  # 128, 32, 64, 8 bytes
    buckets = assign_buckets(list(model.parameters()), bucket_size=100)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [[names[id(p)] for p in b.parameters] for b in buckets] == [["2.bias", "2.weight"], ["0.bias"], ["0.weight"]]
    assert [b.nbytes for b in buckets] == [72, 32, 128]  # 0.weight is larger than a bucket: alone


def test_a_new_dtype_starts_a_new_bucket():
    a, b = tt.nn.Linear(2, 2), tt.nn.Linear(2, 2)
    b.to(np.float64)
    buckets = assign_buckets([*a.parameters(), *b.parameters()], bucket_size=1 << 20)
    assert [b.dtype for b in buckets] == [np.float64, np.float32]


# ---- DistributedDataParallel in a world of 1 -------------------------------------------------------------
def _job_module(name: str):
    """A job script of ``jobs/`` as a module (its ``__main__`` part does not run)."""
    path = Path(__file__).with_name("jobs") / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tinytorch_distributed_test_job_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CountingComm = _job_module("digits_training").CountingComm  # the communicator the 2-rank job counts with


def _counting_world():
    job = tt.distributed.init()
    return World(CountingComm(job.comm), job.rank, job.size, job.timeout)


def _mlp(seed=0):
    return tt.nn.Sequential(tt.nn.Linear(6, 5, generator=seed), tt.nn.ReLU(), tt.nn.Linear(5, 3, generator=seed + 1))


def _batches(n=4):
    rng = np.random.default_rng(0)
    return [(Tensor(rng.standard_normal((8, 6)).astype(np.float32)), Tensor(rng.integers(0, 3, 8))) for _ in range(n)]


def _train(model, forward):
    optimizer = tt.optim.SGD(model.parameters(), lr=0.5)
    for x, y in _batches():
        optimizer.zero_grad()
        tt.ops.cross_entropy(forward(x), y).backward()
        optimizer.step()
    return [p.data.copy() for p in model.parameters()]


def test_ddp_in_a_world_of_one_is_plain_training_bitwise():
    plain = _mlp()
    wrapped = tt.distributed.DistributedDataParallel(_mlp(), bucket_size=64, world=_counting_world())
    for a, b in zip(_train(plain, plain), _train(wrapped, wrapped)):
        np.testing.assert_array_equal(a, b)


def test_one_all_reduce_per_bucket_per_backward():
    world = _counting_world()
    ddp = tt.distributed.DistributedDataParallel(_mlp(), bucket_size=80, world=world)
    assert [b.nbytes for b in ddp.buckets] == [12 + 60, 20, 120]  # 2.bias + 2.weight, 0.bias, 0.weight
    x, y = _batches(1)[0]
    for step in range(1, 3):
        tt.ops.cross_entropy(ddp(x), y).backward()
        assert world.comm.allreduces == 3 * step


def test_a_compiled_ddp_step_all_reduces_on_every_replay():
    try:
        compile_step = tt.compile
    except tt.StageUnavailableError:  # the stage ladder's rung for this stage has only core and nn
        pytest.skip("the acceleration stage is not installed")
    world = _counting_world()
    ddp = tt.distributed.DistributedDataParallel(_mlp(), bucket_size=80, world=world)
    plain = _mlp()
    optimizers = [tt.optim.SGD(m.parameters(), lr=0.5) for m in (ddp, plain)]

    def step(model, optimizer, x, y):
        optimizer.zero_grad()
        loss = tt.ops.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    compiled = compile_step(step)
    for x, y in _batches(5):
        assert compiled(ddp, optimizers[0], x, y) == step(plain, optimizers[1], x, y)
    assert compiled.replays == 3 and world.comm.allreduces == 3 * 5  # 3 buckets, every step
    for a, b in zip(ddp.parameters(), plain.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_no_sync_accumulates_locally_then_reduces_everything():
    world = _counting_world()
    ddp = tt.distributed.DistributedDataParallel(_mlp(), bucket_size=1 << 20, world=world)
    reference = _mlp()
    (x1, y1), (x2, y2) = _batches(2)
    with ddp.no_sync():
        tt.ops.cross_entropy(ddp(x1), y1).backward()
    assert world.comm.allreduces == 0
    tt.ops.cross_entropy(ddp(x2), y2).backward()
    assert world.comm.allreduces == 1
    for x, y in ((x1, y1), (x2, y2)):
        tt.ops.cross_entropy(reference(x), y).backward()
    for a, b in zip(ddp.parameters(), reference.parameters()):
        np.testing.assert_allclose(a.grad.data, b.grad.data, rtol=1e-6)


def test_a_parameter_no_rank_used_keeps_no_gradient_as_without_ddp():
    class TwoHeads(tt.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = tt.nn.Linear(3, 2, generator=0), tt.nn.Linear(3, 2, generator=1)

        def forward(self, x):
            return self.used(x)

    ddp = tt.distributed.DistributedDataParallel(TwoHeads(), bucket_size=1 << 20, world=_counting_world())
    ddp(Tensor(np.ones((2, 3), np.float32))).sum().backward()
    # it had a zero .grad: Adam's moments and weight decay then moved a parameter plain training leaves alone
    assert ddp.module.unused.weight.grad is None and np.any(ddp.module.used.weight.grad.data != 0)


def test_a_backward_that_raised_mid_reduction_is_refused_at_the_next_forward():
    class Broken(tt.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            raise ValueError("broken backward")

    ddp = tt.distributed.DistributedDataParallel(tt.nn.Linear(3, 2), bucket_size=1, world=_counting_world())
    x = Tensor(np.ones((1, 3), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="broken backward"):  # after the layer's buckets started
        ddp(Broken.apply(x)).sum().backward()
    with pytest.raises(DistributedError, match="previous backward pass raised"):
        ddp(Tensor(np.ones((1, 3), np.float32)))


def test_ddp_refuses_what_is_not_a_module_and_bad_bucket_sizes():
    with pytest.raises(TypeError, match="expected a Module to wrap, got list"):
        tt.distributed.DistributedDataParallel([])
    with pytest.raises(ValueError, match="bucket_size .* must be a positive int, got 0"):
        tt.distributed.DistributedDataParallel(tt.nn.Linear(2, 2), bucket_size=0)


# ---- collectives and rank-0 helpers -------------------------------------------------------------------
def test_all_reduce_in_a_world_of_one_returns_the_value_as_its_type():
    assert tt.distributed.all_reduce(2.5) == 2.5 and isinstance(tt.distributed.all_reduce(3), float)
    assert tt.distributed.all_reduce(np.array([1.0, 4.0], np.float32), op="max").dtype == np.float32
    reduced = tt.distributed.all_reduce(Tensor(np.array([1.0, 2.0])), op="sum")
    assert isinstance(reduced, Tensor) and reduced.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="op must be one of .* got 'avg'"):
        tt.distributed.all_reduce(1.0, op="avg")
    with pytest.raises(TypeError, match="expected a number, a NumPy array or a Tensor, got str"):
        tt.distributed.all_reduce("1.0")


def test_rank_zero_saves_logs_and_shows_progress(tmp_path, capsys):
    model = tt.nn.Linear(2, 2, generator=0)
    tt.distributed.save(model.state_dict(), tmp_path / "model.safetensors")
    np.testing.assert_array_equal(tt.io.load(tmp_path / "model.safetensors")["weight"], model.weight.data)
    tt.distributed.log("epoch", 1)
    assert list(tt.distributed.progress(range(3), "train")) == [0, 1, 2]
    tt.distributed.barrier()
    out, err = capsys.readouterr()
    assert out == "epoch 1\n" and err.endswith("train [" + "#" * 30 + "] 3/3\n")
    assert (tt.distributed.get_rank(), tt.distributed.get_world_size(), tt.distributed.is_main_process()) == (0, 1, True)


def test_init_refuses_a_bad_timeout():
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got -1"):
        tt.distributed.init(timeout=-1)


# ---- the launcher ----------------------------------------------------------------------------------------
def test_the_launcher_finds_this_environments_mpiexec_and_wraps_the_target():
    mpiexec = find_mpiexec()
    assert mpiexec is not None and mpiexec.endswith("mpiexec")
    command = command_line(mpiexec, 3, ["train.py", "--epochs", "2"])
    assert command[:3] == [mpiexec, "-n", "3"] and command[-5:] == [
        "-m", "tinytorch_distributed.rank", "train.py", "--epochs", "2"]


def test_the_rank_runner_takes_python_scripts_only(tmp_path):
    with pytest.raises(SystemExit, match="neither a file nor a command on PATH"):
        python_script("no-such-command-anywhere")
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF...")
    with pytest.raises(SystemExit, match="is not a Python script"):
        python_script(str(binary))
    assert python_script("tinytorch").endswith("tinytorch")  # the console script, a Python file


def test_launch_checks_the_script_and_the_rank_count_before_starting_mpi(capsys):
    """A missing script was found by every rank (100,000 of them, with -n 100000), after mpiexec."""
    from tinytorch_core.cli import main

    assert main(["launch", "-n", "2", "no-such-script-anywhere.py"]) == 2
    assert capsys.readouterr().err.count("is neither a file nor a command on PATH") == 1
    with pytest.raises(SystemExit) as refused:
        main(["launch", "-n", "100000", "train.py"])
    assert refused.value.code == 2 and "-n must be an integer from 1 to" in capsys.readouterr().err


def test_a_parameter_unfrozen_after_wrapping_is_reduced_and_one_frozen_is_left_alone():
    """The buckets were fixed at wrap time: an unfrozen layer was never all-reduced (ranks drifted
    apart), and a frozen one got a zero .grad that momentum and weight decay then acted on."""
    model = tt.nn.Sequential(tt.nn.Linear(3, 4, generator=0), tt.nn.ReLU(), tt.nn.Linear(4, 2, generator=1))
    model[0].requires_grad_(False)
    ddp = tt.distributed.DistributedDataParallel(model, world=_counting_world())
    covered = lambda: {id(p) for bucket in ddp.buckets for p in bucket.parameters}  # noqa: E731
    assert id(model[0].weight) not in covered()
    model[0].requires_grad_(True)
    model[2].requires_grad_(False)
    ddp(Tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert id(model[0].weight) in covered() and id(model[2].weight) not in covered()
    assert model[0].weight.grad is not None and model[2].weight.grad is None
