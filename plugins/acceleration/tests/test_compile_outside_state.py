"""State a step reads from outside its arguments: a tensor held by a loss (class weights), a
module's settings, and an observer watching the step. A change between calls records again (the
replay kept the recorded copy: silently other losses), and a profiler sees the eager ops (it saw
nothing)."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor


def _data(rows=8):
    rng = np.random.default_rng(0)
    return Tensor(rng.standard_normal((rows, 6)).astype(np.float32)), Tensor(rng.integers(0, 3, rows))


def _losses(compiled: bool, change, calls=6):
    """Six training steps of a small classifier, eager or compiled, with ``change(loss, model,
    scale)`` made before call 4 (``scale``: a 0-d tensor the step reads through its closure); the
    losses, and the compiled step (None when eager)."""
    model = tt.nn.Sequential(tt.nn.Linear(6, 8, generator=0), tt.nn.LeakyReLU(0.01), tt.nn.Linear(8, 3, generator=1))
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = tt.nn.CrossEntropyLoss(weight=Tensor(np.ones(3, np.float32)))
    scale = tt.tensor(np.float32(1.0))

    def step(x, y):
        loss = loss_fn(model(x) * scale, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    run = tt.compile(step) if compiled else step
    losses = []
    for call in range(calls):
        if call == 4:
            change(loss_fn, model, scale)
        losses.append(run(*_data()))
    return losses, (run if compiled else None)


def _same_as_eager(change):
    eager, _ = _losses(False, change)
    compiled, step = _losses(True, change)
    assert compiled == eager, (compiled, eager)
    assert step.replays >= 2  # it still replays before the change (and after it, once recorded again)
    return step


def test_class_weights_changed_in_place_between_calls_record_again():
    _same_as_eager(lambda loss_fn, model, scale: loss_fn.weight.mul_(Tensor(np.array([5.0, 0.1, 1.0], np.float32))))
    _same_as_eager(lambda loss_fn, model, scale: loss_fn.weight.__setitem__(0, 7.0))


def test_class_weights_replaced_between_calls_record_again():
    _same_as_eager(lambda loss_fn, model, scale: setattr(loss_fn, "weight", Tensor(np.array([3.0, 1.0, 0.5], np.float32))))


def test_a_module_setting_changed_between_calls_records_again():
    def change(loss_fn, model, scale):
        loss_fn.reduction = "sum"
        model[1].negative_slope = 0.5

    step = _same_as_eager(change)
    assert step.recordings == 4  # two before the change, two after


def test_setting_the_same_value_again_keeps_replaying():
    step = _same_as_eager(lambda loss_fn, model, scale: setattr(loss_fn, "reduction", "mean"))
    assert step.recordings == 2 and step.replays == 4


def test_a_profiler_around_a_compiled_step_sees_the_eager_ops():
    """The replay bypassed the profiler's observer: 'Profile: 0 events'."""
    _, step = _losses(True, lambda loss_fn, model, scale: None, calls=3)
    replays = step.replays
    x, y = _data()
    with tt.profiler.profile() as prof:
        step(x, y)
    assert step.replays == replays  # ran eagerly
    names = {row.name for row in prof.key_averages()}
    assert {"nn::linear", "nn::cross_entropy"} <= names, names


def test_a_tensor_read_through_a_closure_and_changed_in_place_records_again():
    """The replay kept the recorded value of a closure's tensor after mul_ changed it."""
    _same_as_eager(lambda loss_fn, model, scale: scale.mul_(0.125))


def test_a_scheduler_stepped_inside_the_step_is_replayed():
    def losses(compiled):
        model = tt.nn.Linear(6, 3, generator=0)
        optimizer = tt.optim.SGD(model.parameters(), lr=0.5)
        scheduler = tt.optim.StepLR(optimizer, step_size=1, gamma=0.5)

        def step(x, y):
            loss = tt.nn.CrossEntropyLoss()(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
            return loss.item()

        run = tt.compile(step) if compiled else step
        return [run(*_data()) for _ in range(7)], optimizer.param_groups[0]["lr"]

    assert losses(True) == losses(False)  # the rate stayed at its recorded value


def test_distillation_under_compile_follows_each_batch():
    """The teacher's soft targets were computed in NumPy: replays reused the recorded ones."""
    teacher = tt.nn.Linear(6, 3, generator=1)

    def losses(compiled):
        model = tt.nn.Linear(6, 3, generator=0)
        optimizer = tt.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            with tt.no_grad():
                soft = teacher(x)
            loss = tt.compression.distillation_loss(model(x), soft, y, temperature=2.0, alpha=0.5)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.item()

        run = tt.compile(step) if compiled else step
        rng = np.random.default_rng(3)
        batches = [_data()] * 2 + [(Tensor(rng.standard_normal((8, 6)).astype(np.float32)), _data()[1])
                                   for _ in range(5)]
        return [run(x, y) for x, y in batches]

    assert losses(True) == losses(False)


def _classifier_step(model, compiled: bool):
    """One SGD step of ``model`` on (x, y) under cross-entropy, compiled or eager; returns the loss."""
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        loss = tt.nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return tt.compile(step) if compiled else step


def test_the_same_call_fast_path_still_sees_what_the_signature_reads():
    """A call with the very same objects reuses the last signature; a new array and shape behind
    the same tensors, and another grad mode, must still be seen (bitwise the eager losses)."""

    def run(compiled: bool):
        call = _classifier_step(tt.nn.Linear(6, 3, generator=0), compiled)
        x, y = _data()
        losses = [call(x, y) for _ in range(3)]
        x.data = np.random.default_rng(5).standard_normal((5, 6)).astype(np.float32)  # new array, new shape
        y.data = y.data[:5].copy()
        losses += [call(x, y) for _ in range(3)]
        with tt.no_grad(), pytest.raises(tt.GraphError, match="does not require grad"):
            call(x, y)  # another grad mode: recorded again, so backward refuses as in eager
        return losses, call

    eager, _ = run(False)
    compiled, step = run(True)
    assert compiled == eager and len(step.programs) == 2 and step.replays >= 2  # the no_grad call raised while recording


def test_parameters_used_with_operators_still_replay():
    """Operators read their operands' dtypes for their checks; that must not count as a read of a
    parameter's values (the optimizer changes them every call: the step would record again at
    every call)."""

    class Centered(tt.Module):
        def __init__(self):
            super().__init__()
            self.w = tt.nn.Parameter(np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32))
            self.mu = tt.nn.Parameter(np.zeros(6, np.float32))

        def forward(self, x):
            return (x - self.mu) @ self.w

    eager_step, compiled_step = _classifier_step(Centered(), False), _classifier_step(Centered(), True)
    eager = [eager_step(*_data()) for _ in range(6)]
    compiled = [compiled_step(*_data()) for _ in range(6)]
    assert compiled == eager and compiled_step.recordings == 2 and compiled_step.replays == 4
