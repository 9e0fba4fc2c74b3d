"""Careless and hostile calls of a compiled step: keyword arguments, (x, y) batches, NumPy
scalars, values the step's checks would refuse, and odd settings. A replay is bitwise the eager
result or the step runs eagerly; never a silently different answer."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor

rng = np.random.default_rng(0)
XS = [Tensor(rng.standard_normal((5, 4)).astype(np.float32)) for _ in range(5)]
YS = [Tensor(np.array([0, 1, 2, 1, 0])) for _ in range(5)]


def setup():
    model = tt.nn.Sequential(tt.nn.Linear(4, 8, generator=0), tt.nn.ReLU(), tt.nn.Linear(8, 3, generator=0))
    return model, tt.optim.SGD(model.parameters(), lr=0.1)


def train_on(model, optimizer, x, y) -> float:
    """One training step on (x, y); returns the loss."""
    loss = tt.ops.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def eager_losses(batches):
    model, optimizer = setup()
    return [train_on(model, optimizer, x, y) for x, y in batches]


def compiled_step(**options):
    model, optimizer = setup()

    def step(x, y):
        return train_on(model, optimizer, x, y)

    return tt.compile(step, **options)


def test_keyword_arguments_are_inputs_like_positional_ones():
    step = compiled_step()
    losses = [step(x, y=y) for x, y in zip(XS, YS)]
    assert losses == eager_losses(zip(XS, YS)) and step.replays == 3


@pytest.mark.parametrize("container", [tuple, list])
def test_a_batch_passed_as_one_tuple_or_list_is_bound_per_call(container):
    model, optimizer = setup()

    def step(batch):
        x, y = batch
        loss = tt.ops.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    compiled = tt.compile(step)
    reused = container([XS[0], YS[0]]) if container is list else None
    batches = [(XS[0], YS[0])] * 3 + [(XS[1], YS[1])]
    losses = []
    for x, y in batches:  # before: the first batch's arrays were replayed as constants
        if reused is not None:
            reused[0], reused[1] = x, y
        losses.append(compiled(reused if reused is not None else (x, y)))
    assert losses == eager_losses(batches) and compiled.replays == 2


def test_numpy_scalars_are_keyed_by_value_not_by_identity():
    model, optimizer = setup()

    def step(x, y, scale):
        loss = tt.ops.cross_entropy(model(x) * scale, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    compiled = tt.compile(step)
    # a fresh scalar per call, freed after it: before, a reused id matched another value's program
    losses = [compiled(x, y, np.float32(1.0 + i)) for i, (x, y) in enumerate(zip(XS, YS))]
    model2, optimizer2 = setup()
    expected = []
    for i, (x, y) in enumerate(zip(XS, YS)):
        loss = tt.ops.cross_entropy(model2(x) * np.float32(1.0 + i), y)
        loss.backward()
        optimizer2.step()
        optimizer2.zero_grad()
        expected.append(loss.item())
    assert losses == expected


@pytest.mark.parametrize("bad", [3, -1])
def test_a_replay_never_skips_the_check_of_an_integer_input(bad):
    step = compiled_step()
    for x, y in zip(XS[:3], YS[:3]):
        step(x, y)
    assert step.replays == 1
    with pytest.raises(IndexError, match=f"class index {bad}"):  # before: a wrong loss (-1 wrapped around)
        step(XS[3], Tensor(np.array([0, 1, 2, bad, 0])))


def test_a_new_valid_integer_value_runs_eagerly_once_and_then_replays():
    step = compiled_step()
    ys = [Tensor(np.array([0, 1, 0, 1, 0]))] * 3 + [Tensor(np.array([2, 1, 0, 1, 2]))] * 2
    losses = [step(x, y) for x, y in zip(XS, ys)]
    assert losses == eager_losses(zip(XS, ys))
    assert (step.recordings, step.replays) == (3, 2)


def test_verify_must_be_a_bool():
    with pytest.raises(TypeError, match="verify must be True or False"):
        tt.compile(lambda: None, verify="no")


def test_a_declared_integer_range_replays_values_the_recordings_never_saw():
    step = compiled_step(integer_ranges={"y": (0, 2)})
    ys = [Tensor(np.array([0, 1, 0, 1, 0]))] * 2 + [Tensor(np.array([2, 2, 0, 1, 2]))] * 3
    losses = [step(x, y) for x, y in zip(XS, ys)]
    assert losses == eager_losses(zip(XS, ys))
    assert (step.recordings, step.replays) == (2, 3)  # class 2 was never recorded, yet replays


@pytest.mark.parametrize("bad", [3, -1])
def test_a_value_outside_the_declared_range_still_runs_eagerly_and_is_checked(bad):
    step = compiled_step(integer_ranges={"y": (0, 2)})
    for x, y in zip(XS[:3], YS[:3]):
        step(x, y)
    with pytest.raises(IndexError, match=f"class index {bad}"):
        step(XS[3], Tensor(np.array([0, 1, 2, bad, 0])))


def _nested_batch(model, optimizer):
    def step(batch, scale=1.0):  # called by keyword, (x, y) nested in one argument
        return train_on(model, optimizer, *batch)

    return step, {"batch": (0, 2)}, lambda compiled, x, y: compiled(batch=(x, y))


def _any_keyword(model, optimizer):
    def step(x, **batch):  # **kwargs: the declared name is any keyword
        return train_on(model, optimizer, x, batch["y"])

    return step, {"y": (0, 2)}, lambda compiled, x, y: compiled(x, y=y)


@pytest.mark.parametrize("call_style", [_nested_batch, _any_keyword])
def test_a_declared_range_covers_keyword_and_nested_arguments(call_style):
    step, ranges, call = call_style(*setup())
    compiled = tt.compile(step, integer_ranges=ranges)
    ys = [Tensor(np.array([0, 1, 0, 1, 0]))] * 2 + [Tensor(np.array([2, 2, 2, 2, 2]))] * 2
    losses = [call(compiled, x, y) for x, y in zip(XS, ys)]
    assert losses == eager_losses(zip(XS, ys)) and compiled.replays == 2


@pytest.mark.parametrize("ranges, error, message", [
    ([("y", (0, 2))], TypeError, "must be a dict"),
    ({"z": (0, 2)}, ValueError, "names 'z', which is not a parameter"),
    ({"y": (2, 0)}, ValueError, "low <= high"),
    ({"y": (0.0, 2)}, ValueError, "tuple \\(low, high\\) of ints"),
    ({"y": (True, 2)}, ValueError, "tuple \\(low, high\\) of ints"),
    ({"y": [0, 2]}, ValueError, "tuple \\(low, high\\) of ints"),
])
def test_integer_ranges_are_checked(ranges, error, message):
    with pytest.raises(error, match=message):
        compiled_step(integer_ranges=ranges)


def test_a_step_that_slices_a_parameter_verifies_and_replays():
    # x[:T] passes a slice to an op; slices are unhashable before Python 3.12, and the check that
    # two recordings are the same used to compare them by identity: every such step was refused
    table = tt.nn.Parameter(np.arange(12.0).reshape(6, 2))
    optimizer = tt.optim.SGD([table], lr=0.1)

    def step(x):
        loss = (table[:3] * x).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    compiled = tt.compile(step)
    for _ in range(4):
        compiled(np.ones((3, 2)))
    assert (compiled.recordings, compiled.replays) == (2, 2)


@pytest.mark.parametrize("loss", [
    lambda z, t: tt.ops.binary_cross_entropy_with_logits(z, t),
    lambda z, t: tt.ops.binary_cross_entropy(tt.ops.sigmoid(z), t),
    lambda z, t: tt.ops.sigmoid_binary_cross_entropy(z, t),
    lambda z, t: tt.ops.cross_entropy(z, t),
])
@pytest.mark.parametrize("bad", [3.0, -0.5, float("nan")])
def test_a_replay_checks_probability_targets_as_eager_does(loss, bad):
    """The range check ran in the functional wrapper, which a replay skips: a target of 3 or NaN
    updated the weights (NaN weights after one replay) instead of raising."""
    model = tt.nn.Linear(4, 2, generator=0)
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)

    @tt.compile
    def step(x, t):
        value = loss(model(x), t)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        return value

    rng = np.random.default_rng(0)
    for _ in range(3):
        step(Tensor(rng.standard_normal((8, 4)).astype(np.float32)), Tensor(rng.uniform(0, 1, (8, 2)).astype(np.float32)))
    assert step.replays == 1
    before = model.weight.data.copy()
    target = rng.uniform(0, 1, (8, 2)).astype(np.float32)
    target[0, 0] = bad
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        step(Tensor(rng.standard_normal((8, 4)).astype(np.float32)), Tensor(target))
    np.testing.assert_array_equal(model.weight.data, before)


def test_a_step_that_retains_a_computed_gradient_is_refused():
    """A replay runs kernels, not the engine: it would leave the retained .grad stale."""
    model = tt.nn.Linear(4, 2, generator=0)
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)

    @tt.compile
    def step(x):
        hidden = model(x)
        hidden.retain_grad()
        loss = (hidden * hidden).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    with pytest.raises(tt.acceleration.CompileError, match="retain_grad\\(\\) on a computed tensor"):
        step(Tensor(np.ones((3, 4), np.float32)))


def _square_loss_step(model, optimizer, before_backward=lambda hidden: None, backward=None):
    """A compiled step on ``model``; ``before_backward(hidden)`` runs on the model's output, and
    ``backward(loss)`` replaces ``loss.backward()``."""

    @tt.compile
    def step(x):
        hidden = model(x)
        before_backward(hidden)
        loss = (hidden * hidden).sum()
        optimizer.zero_grad()
        (backward or (lambda value: value.backward()))(loss)
        optimizer.step()
        return loss

    return step


def test_a_step_with_a_hook_on_a_computed_tensor_is_refused():
    """A replay runs kernels, not the engine: the hook would not run and its change be lost."""
    model = tt.nn.Linear(4, 2, generator=0)
    step = _square_loss_step(model, tt.optim.SGD(model.parameters(), lr=0.1),
                             before_backward=lambda hidden: hidden.register_hook(lambda g: g * 0))
    with pytest.raises(tt.acceleration.CompileError, match="hook on a computed tensor"):
        step(Tensor(np.ones((3, 4), np.float32)))


def test_a_hook_put_on_a_parameter_after_the_recording_makes_the_next_call_refuse():
    model = tt.nn.Linear(4, 2, generator=0)
    step = _square_loss_step(model, tt.optim.SGD(model.parameters(), lr=0.1))
    x = Tensor(np.ones((3, 4), np.float32))
    for _ in range(3):  # recorded and replayed
        step(x)
    model.weight.register_hook(lambda g: g * 0)
    before = model.weight.data.copy()
    with pytest.raises(tt.acceleration.CompileError, match="parameter with a tensor hook"):
        step(x)
    np.testing.assert_array_equal(model.weight.data, before)  # the hook ran eagerly: a zero gradient


def test_a_step_that_calls_autograd_grad_is_refused():
    model = tt.nn.Linear(4, 2, generator=0)
    step = _square_loss_step(model, tt.optim.SGD(model.parameters(), lr=0.1),
                             backward=lambda loss: tt.autograd.grad(loss, model.weight))
    with pytest.raises(tt.acceleration.CompileError, match="autograd.grad"):
        step(Tensor(np.ones((3, 4), np.float32)))


def test_a_module_with_forward_hooks_is_refused_also_when_the_hook_comes_after_the_recording():
    model = tt.nn.Linear(4, 2, generator=0)
    step = _square_loss_step(model, tt.optim.SGD(model.parameters(), lr=0.1))
    x = Tensor(np.ones((3, 4), np.float32))
    for _ in range(3):  # recorded and replayed
        step(x)
    activations = []
    model.register_forward_hook(lambda module, args, output: activations.append(output))
    with pytest.raises(tt.acceleration.CompileError, match="whose forward hooks"):
        step(x)
    assert len(activations) == 1  # the call ran eagerly, hook included


def test_a_forward_hook_added_while_a_replay_runs_makes_the_next_call_refuse():
    """A grad hook (or another thread) adding a forward hook during a replay: the replay's own
    module-clock bookkeeping must not absorb that change."""
    model = tt.nn.Linear(4, 2, generator=0)
    step = _square_loss_step(model, tt.optim.SGD(model.parameters(), lr=0.1))
    x = Tensor(np.ones((3, 4), np.float32))
    calls = [0]

    def attach_once(parameter):
        calls[0] += 1
        if calls[0] == 4:  # during the second replay
            model.register_forward_hook(lambda module, args, output: output * 0.5)

    model.bias.register_post_accumulate_grad_hook(attach_once)
    with pytest.raises(tt.acceleration.CompileError, match="whose forward hooks"):
        for _ in range(6):
            step(x)
    assert calls[0] == 5  # two recordings, two replays, then the refused call


def test_a_forward_hook_the_recorded_call_itself_adds_is_not_replayed_away():
    model = tt.nn.Linear(4, 2, generator=0)
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)
    added = []

    @functools.partial(tt.compile, verify=False)  # the first recording is trusted at once
    def step(x):
        loss = (model(x) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not added:
            added.append(model.register_forward_hook(lambda module, args, output: output * 0.5))
        return loss

    step(Tensor(np.ones((3, 4), np.float32)))
    with pytest.raises(tt.acceleration.CompileError, match="whose forward hooks"):
        step(Tensor(np.ones((3, 4), np.float32)))
