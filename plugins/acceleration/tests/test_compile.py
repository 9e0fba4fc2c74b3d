"""compile(): bitwise equal to eager on the benchmark models, re-records when it must, refuses
what a replay cannot follow."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_acceleration import CompileError, CompiledStep

ROOT = Path(__file__).resolve().parents[3]
STEPS = 20


def _workloads():
    name = "tinytorch_bench_workloads"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "workloads.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def train_step(model, optimizer, x, y):
    """zero_grad first, so the gradients of the last step stay readable afterwards."""
    optimizer.zero_grad()
    loss = model.loss(x, y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _run(wid: str, compiled: bool, steps: int = STEPS):
    """``steps`` training steps of workload ``wid`` (batch 4: the models of W1-W8, kept fast)."""
    workloads = _workloads()
    fw, ref = workloads.FRAMEWORK_WORKLOADS[wid], workloads.load_reference().WORKLOADS[wid]
    rng = np.random.default_rng(0)
    params = ref.make_params(rng)
    x, y = ref.make_batch(rng, batch_size=4)
    try:
        model = fw.build()
    except tt.StageUnavailableError as exc:  # the stage ladder's rung has only core, nn and this stage
        pytest.skip(f"{wid} needs stages {fw.stages}: {exc}")
    fw.load_params(model, params)
    optimizer = fw.make_optimizer(model)
    step = tt.compile(train_step) if compiled else train_step
    xt, yt = fw.to_tensors(x, y)
    losses = [step(model, optimizer, xt, yt) for _ in range(steps)]
    return losses, model, step


@pytest.mark.parametrize("wid", ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"])
def test_compiled_steps_are_bitwise_equal_to_eager(wid):
    eager_losses, eager, _ = _run(wid, compiled=False)
    losses, model, step = _run(wid, compiled=True)
    assert step.replays == STEPS - 2 and step.recordings == 2
    assert losses == eager_losses  # floats compared exactly
    for (name, p), (_, q) in zip(model.named_parameters(), eager.named_parameters()):
        assert p.data.tobytes() == q.data.tobytes(), f"{wid} parameter {name}"
        assert p.grad.data.tobytes() == q.grad.data.tobytes(), f"{wid} gradient of {name}"


def _mlp(seed=0):
    model = tt.nn.Sequential(tt.nn.Linear(3, 5, generator=seed), tt.nn.Tanh(), tt.nn.Linear(5, 2, generator=seed + 1))
    return model, tt.optim.SGD(model.parameters(), lr=0.1)


def _mse_step(model, optimizer, x, y):
    loss = tt.nn.MSELoss()(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss


def _batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((n, 3))), Tensor(rng.standard_normal((n, 2)))


def test_a_shape_change_records_again_and_old_shapes_replay():
    model, optimizer = _mlp()
    step = tt.compile(_mse_step)
    for n in (4, 4, 4, 8, 8, 8, 4):
        step(model, optimizer, *_batch(n))
    assert (step.recordings, step.replays) == (4, 3)  # two per shape; then 4 replays from its program


def test_a_module_change_or_train_mode_records_again():
    model, optimizer = _mlp()
    step = tt.compile(_mse_step)
    for _ in range(3):
        step(model, optimizer, *_batch(4))
    model.eval()
    step(model, optimizer, *_batch(4))
    model[0].extra = tt.nn.Linear(1, 1)  # a new sub-module (unused): the structure changed
    step(model, optimizer, *_batch(4))
    assert step.recordings == 4 and step.replays == 1


def test_freezing_a_parameter_records_again():
    model, optimizer = _mlp()
    step = tt.compile(_mse_step)
    for _ in range(3):
        step(model, optimizer, *_batch(4))
    model[0].weight.requires_grad_(False)
    step(model, optimizer, *_batch(4))
    assert step.recordings == 3 and model[0].weight.grad is None


def test_returns_a_detached_loss_tensor_and_parameters_change_version():
    model, optimizer = _mlp()
    step = tt.compile(_mse_step)
    eager_model, eager_optimizer = _mlp()
    for call in range(4):
        before = model[0].weight._version
        loss = step(model, optimizer, *_batch(4))
        expected = _mse_step(eager_model, eager_optimizer, *_batch(4))
        assert isinstance(loss, Tensor) and (call < 2 or loss.grad_fn is None)  # replays: no graph
        assert loss.data.tobytes() == expected.data.tobytes()
        assert model[0].weight._version > before  # the replayed optimizer step bumps versions


@pytest.mark.parametrize("clip", [lambda ps: tt.optim.clip_grad_norm_(ps, max_norm=0.05),
                                  lambda ps: tt.optim.clip_grad_value_(ps, clip_value=0.01)], ids=["norm", "value"])
def test_adam_and_gradient_clipping_replay_bitwise(clip):
    def clipped_step(model, optimizer, x, y):
        optimizer.zero_grad()
        loss = tt.nn.MSELoss()(model(x), y)
        loss.backward()
        clip(model.parameters())
        optimizer.step()
        return loss.item()

    results = []
    for compiled in (False, True):
        model, _ = _mlp()
        optimizer = tt.optim.Adam(model.parameters(), lr=0.01)
        step = tt.compile(clipped_step) if compiled else clipped_step
        losses = [step(model, optimizer, *_batch(4, seed)) for seed in range(6)]  # a new batch each step
        results.append((losses, [p.data.tobytes() for p in model.parameters()]))
    assert results[0] == results[1]


@pytest.mark.parametrize("make", [
    lambda ps: tt.optim.RMSprop(ps, lr=0.01),
    lambda ps: tt.optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True, weight_decay=0.01, maximize=True),
    lambda ps: tt.optim.Adagrad(ps, lr=0.1),
    lambda ps: tt.optim.Adagrad(ps, lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1),
], ids=["rmsprop", "rmsprop-centered-momentum", "adagrad", "adagrad-decays"])
def test_rmsprop_and_adagrad_with_schedulers_replay_bitwise(make):
    """The replay calls each optimizer's update (its state arrays change in place, its step count
    grows) and the schedulers' steps: parameters, states and rates bitwise those of eager."""
    def scheduled_step(model, optimizer, schedulers, x, y):
        optimizer.zero_grad()
        loss = tt.nn.MSELoss()(model(x), y)
        loss.backward()
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
        return loss.item()

    results = []
    for compiled in (False, True):
        model, _ = _mlp()
        optimizer = make(model.parameters())
        schedulers = [tt.optim.ExponentialLR(optimizer, 0.9), tt.optim.MultiStepLR(optimizer, [3, 5], 0.5)]
        step = tt.compile(scheduled_step) if compiled else scheduled_step
        losses = [step(model, optimizer, schedulers, *_batch(4, seed)) for seed in range(8)]
        states = [(key, value.tobytes() if isinstance(value, np.ndarray) else value)
                  for p in model.parameters() for key, value in sorted(optimizer.state[p].items())]
        weights = [p.data.tobytes() for p in model.parameters()]
        results.append((losses, weights, states, optimizer.param_groups[0]["lr"]))
        if compiled:
            assert step.replays == 6
    assert results[0] == results[1]
    (_, _, states, rate), base = results[1], optimizer.param_groups[0]["initial_lr"]
    assert ("step", 8) in states and rate == pytest.approx(base * 0.9**8 * 0.5**2)  # every update and schedule ran


def test_python_control_flow_on_values_is_refused():
    def branchy(model, optimizer, x, y):
        out = model(x)
        if x.sum().item() > 0:  # a decision on the data: a replay could not follow it
            out = out * 2.0
        loss = ((out - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    model, optimizer = _mlp()
    step = tt.compile(branchy)
    x, y = _batch(4)
    with pytest.raises(CompileError, match="read a tensor's value .* and then ran backward"):
        step(model, optimizer, Tensor(np.abs(x.data)), y)  # refused at the first recording


@pytest.mark.parametrize("decide", [
    lambda loss: not np.isfinite(loss.item()),
    lambda loss: bool(loss > 1e6),
    lambda loss: (loss != loss).any(),
])
def test_a_branch_the_recordings_never_took_is_refused_before_any_replay(decide):
    """Every recording skipped nothing; a replay could not skip the NaN batch that comes later."""
    def skip_bad_batches(model, optimizer, x, y):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        if decide(loss):
            return None
        loss.backward()
        optimizer.step()
        return loss.item()

    model, optimizer = _mlp()
    step = tt.compile(skip_bad_batches)
    with pytest.raises(CompileError, match="read a tensor's value"):
        step(model, optimizer, *_batch(4))
    assert step.replays == 0


def test_writes_outside_ops_are_refused():
    try:
        bn = tt.nn.BatchNorm2d(2)
    except tt.StageUnavailableError:
        pytest.skip("BatchNorm2d comes with stage spatial")
    optimizer = tt.optim.SGD(bn.parameters(), lr=0.1)

    def step(x):
        loss = bn(x).sum()
        loss.backward()
        optimizer.step()
        return loss

    with pytest.raises(CompileError, match="running statistics"):
        tt.compile(step)(Tensor(np.ones((2, 2, 3, 3), np.float32)))


def test_bad_arguments_and_returns_are_refused():
    with pytest.raises(TypeError, match="expected a function"):
        tt.compile(42)
    model, optimizer = _mlp()
    step = tt.compile(lambda x: {"loss": model(x).sum()})
    with pytest.raises(CompileError, match="returned dict"):
        step(_batch(4)[0])
    assert isinstance(tt.acceleration.compile(_mse_step), CompiledStep)


def test_a_replay_holds_no_more_memory_than_an_eager_step():
    # activations of 256 x 512 float32 (512 KiB each): a replay that kept every op's output and
    # saved arrays to the end would hold all of them at once; the eager engine frees each after
    # its last use, and so must the replay
    import tracemalloc

    def build():
        layers = []
        for index in range(6):
            layers += [tt.nn.Linear(512, 512, generator=index), tt.nn.ReLU()]
        model = tt.nn.Sequential(*layers)
        return model, tt.optim.SGD(model.parameters(), lr=0.01)

    def step(model, optimizer, x):
        loss = (model(x) * model(x)).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    def peak(run) -> int:
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    x = Tensor(np.random.default_rng(0).standard_normal((256, 512)).astype(np.float32))
    eager_model, eager_optimizer = build()
    compiled_model, compiled_optimizer = build()
    compiled = tt.compile(step)
    for _ in range(2):
        assert compiled(compiled_model, compiled_optimizer, x) == step(eager_model, eager_optimizer, x)
    eager_peak = peak(lambda: step(eager_model, eager_optimizer, x))
    replay_peak = peak(lambda: compiled(compiled_model, compiled_optimizer, x))
    assert compiled.replays == 1
    assert replay_peak <= 1.1 * eager_peak, (replay_peak, eager_peak)


def test_a_replay_runs_the_optimizers_update_and_a_subclass_own_step():
    # the replay calls Optimizer.update (step's arithmetic without its setup), unless a subclass
    # overrides step: then its own step runs, whatever it adds
    class CountingSGD(tt.optim.SGD):
        calls = 0

        def step(self, closure=None):
            CountingSGD.calls += 1
            return super().step(closure)

    for optimizer_class, expected_calls in ((tt.optim.SGD, 0), (CountingSGD, 5)):
        model = tt.nn.Linear(3, 2, generator=0)
        optimizer = optimizer_class(model.parameters(), lr=0.1)
        reference = tt.nn.Linear(3, 2, generator=0)
        reference_optimizer = tt.optim.SGD(reference.parameters(), lr=0.1)

        def step(model, optimizer, x):
            loss = (model(x) ** 2).sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.item()

        compiled = tt.compile(step)
        x = Tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
        for _ in range(5):
            assert compiled(model, optimizer, x) == step(reference, reference_optimizer, x)
        assert compiled.replays == 3 and CountingSGD.calls == expected_calls
        assert np.array_equal(model.weight.data, reference.weight.data)
