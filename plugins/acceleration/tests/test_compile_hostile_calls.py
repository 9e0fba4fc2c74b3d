"""Careless and hostile calls of a compiled step: keyword arguments, (x, y) batches, NumPy
scalars, values the step's checks would refuse, and odd settings. A replay is bitwise the eager
result or the step runs eagerly; never a silently different answer."""

from __future__ import annotations

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


def eager_losses(batches):
    model, optimizer = setup()
    losses = []
    for x, y in batches:
        loss = tt.ops.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def compiled_step():
    model, optimizer = setup()

    def step(x, y):
        loss = tt.ops.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return tt.compile(step)


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
