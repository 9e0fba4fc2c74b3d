"""What a replay does not run must not happen silently: in-place changes outside ops, backward
passes and optimizer calls are refused; a nested compiled step, an optimizer stepped from a grad
hook, one array passed twice, an explicit backward seed, ``Module.zero_grad`` and a parameter
frozen for one call give the eager step's results, bitwise."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_acceleration import CompileError


def _batch(seed, rows=4):
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((rows, 4)).astype(np.float32)), Tensor(rng.integers(0, 3, rows))


def _update(loss, optimizer) -> float:
    """The end of a training step: backward, the optimizer's step, zero_grad; the loss as a float."""
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _twins(build, calls=6):
    """``build()`` -> (step, parameters); the step run eagerly and compiled on the same batches:
    the returned values and the parameters after each call, as bytes."""
    runs = []
    for compiled in (False, True):
        step, parameters = build()
        step = tt.compile(step) if compiled else step
        history = []
        for k in range(calls):
            value = step(*_batch(k))
            history.append((value, [p.data.tobytes() for p in parameters]))
        runs.append(history)
    return runs


def _expect_replays_equal_to_eager(build) -> None:
    eager, compiled = _twins(build)
    assert compiled == eager


def _model(seed=0):
    model = tt.nn.Sequential(tt.nn.Linear(4, 5, generator=seed), tt.nn.ReLU(), tt.nn.Linear(5, 3, generator=seed + 1))
    return model, tt.optim.SGD(model.parameters(), lr=0.1)


@pytest.mark.parametrize("where", ["input", "gradient", "weights after step", "intermediate"])
def test_an_in_place_change_outside_ops_is_refused(where):
    model, optimizer = _model()

    def step(x, y):
        if where == "input":
            x /= 2.0
        hidden = model[0](x)
        if where == "intermediate":
            with tt.no_grad():
                hidden.detach().mul_(0.0)
        loss = tt.ops.cross_entropy(model[2](model[1](hidden)), y)
        loss.backward()
        if where == "gradient":
            model[0].weight.grad.mul_(0.5)
        optimizer.step()
        optimizer.zero_grad()
        if where == "weights after step":
            with tt.no_grad():
                model[0].weight.mul_(0.9)
        return loss.item()

    with pytest.raises(CompileError, match="changed a tensor in place outside ops"):
        tt.compile(step)(*_batch(0))


def test_a_compiled_step_inside_a_compiled_step_runs_eagerly_while_the_outer_records():
    def build():
        model, optimizer = _model()

        @tt.compile
        def inner(x, y):
            optimizer.zero_grad()
            loss = tt.ops.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        def outer(x, y):
            return inner(x, y)

        return outer, list(model.parameters())

    eager, compiled = _twins(build)
    assert compiled == eager  # the parameters moved on every call, replays included


def test_an_optimizer_stepped_by_a_grad_hook_steps_once_per_replay():
    def build():
        model, _ = _model()
        optimizers = {id(p): tt.optim.SGD([p], lr=0.1) for p in model.parameters()}
        for p in model.parameters():
            p.register_post_accumulate_grad_hook(lambda p: (optimizers[id(p)].step(), optimizers[id(p)].zero_grad()))

        def step(x, y):
            loss = tt.ops.cross_entropy(model(x), y)
            loss.backward()
            return loss.item()

        return step, list(model.parameters())

    _expect_replays_equal_to_eager(build)


def test_one_array_passed_twice_is_wired_by_the_call():
    def build():
        model = tt.nn.Linear(4, 4, generator=0)
        optimizer = tt.optim.SGD(model.parameters(), lr=0.1)

        def step(x, target):
            loss = ((model(x) - target) ** 2).mean()
            return _update(loss, optimizer)

        return step, list(model.parameters())

    x, zeros = _batch(0)[0], Tensor(np.zeros((4, 4), np.float32))
    results = []
    for compiled in (False, True):
        step, parameters = build()
        step = tt.compile(step) if compiled else step
        results.append([step(x, x), step(x, x), step(x, zeros), step(x, zeros), step(x, x), step(x, x)])
    assert results[0] == results[1]


def test_an_explicit_backward_seed_is_not_changed_by_a_hook():
    def build():
        model, optimizer = _model()
        model[2].bias.register_post_accumulate_grad_hook(lambda p: p.grad.mul_(0.5))

        def step(x, y):
            out = model(x)
            out.backward(np.ones(out.shape, np.float32))
            optimizer.step()
            optimizer.zero_grad()
            return out

        return step, list(model.parameters())

    eager, compiled = _twins(build)
    assert [[v.data.tobytes(), p] for v, p in compiled] == [[v.data.tobytes(), p] for v, p in eager]


def test_module_zero_grad_in_the_step_is_replayed():
    def build():
        model, optimizer = _model()

        def step(x, y):
            model.zero_grad()
            loss = tt.ops.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        return step, list(model.parameters())

    _expect_replays_equal_to_eager(build)


def test_a_layer_frozen_for_one_call_records_again_instead_of_refusing():
    results = []
    for compiled in (False, True):
        model, optimizer = _model()

        def step(x, y):
            loss = tt.ops.cross_entropy(model(x), y)
            return _update(loss, optimizer)

        step = tt.compile(step) if compiled else step
        losses = []
        for k in range(7):
            model[0].requires_grad_(k != 2)  # frozen for the third call only
            losses.append(step(*_batch(k)))
        results.append((losses, [p.data.tobytes() for p in model.parameters()]))
    assert results[0] == results[1]


def test_a_copy_of_a_numpy_argument_is_refused_and_as_tensor_replays():
    """``Tensor(x)`` copies: with the same batch twice, the copy looked like a constant and every
    replay trained on that first batch."""
    first = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32), np.array([0, 1, 2, 1])

    def build(wrap):
        model, optimizer = _model()

        def step(x, y):
            loss = tt.ops.cross_entropy(model(wrap(x)), wrap(y))
            return _update(loss, optimizer)

        return step

    with pytest.raises(CompileError, match="copied one of its arguments"):
        tt.compile(build(Tensor))(*first)
    batches = [first, first] + [(b[0].data, b[1].data) for b in (_batch(k) for k in range(3))]
    eager, compiled = build(tt.as_tensor), tt.compile(build(tt.as_tensor))
    assert [compiled(*b) for b in batches] == [eager(*b) for b in batches]
    assert compiled.replays == 3


def test_integers_cast_from_floats_inside_the_step_are_refused():
    """A replay checks the range of integer inputs only; -1.0 cast to a class index wrapped around."""
    model, optimizer = _model()

    def step(x, y):
        loss = tt.ops.cross_entropy(model(x), y.to(np.int64))
        loss.backward()
        optimizer.step()
        return loss.item()

    with pytest.raises(CompileError, match="casts floating-point data to integers"):
        tt.compile(step)(_batch(0)[0], Tensor(np.array([0.0, 1.0, 2.0, 1.0])))


def test_a_mask_argument_equal_to_a_mask_the_step_builds_is_not_taken_for_a_copy():
    """Attention combines a causal mask passed in with its own lower triangle: equal arrays, no copy."""
    model, optimizer = _model()
    mask = np.tril(np.ones((4, 3), bool))

    def step(x, y, mask):
        allowed = np.logical_and(mask, np.tril(np.ones((4, 3), bool)))  # built from the argument, equal to it
        logits = tt.ops.where(allowed, model(x), -1e9)
        loss = tt.ops.cross_entropy(logits, y)
        return _update(loss, optimizer)

    compiled = tt.compile(step)
    for k in range(4):
        compiled(*_batch(k), mask)
    assert compiled.replays == 2


@pytest.mark.parametrize("ignored", [0, 2])
def test_ignored_targets_that_first_appear_after_the_recordings_are_ignored_by_replays(ignored):
    """Which entries are ignored was decided outside the op: a replay of batches without them counted them."""
    rng = np.random.default_rng(0)
    targets = [rng.integers(0, 3, 8) for _ in range(6)]
    for t in targets[:2]:
        t[t == ignored] = (ignored + 1) % 3  # none ignored while recording
    for t in targets[2:]:
        t[-3:] = ignored
    results = []
    for compiled in (False, True):
        model, optimizer = _model()

        def step(x, y):
            loss = tt.nn.CrossEntropyLoss(ignore_index=ignored)(model(x), y)
            return _update(loss, optimizer)

        step = tt.compile(step) if compiled else step
        results.append([step(_batch(k, rows=8)[0], Tensor(t)) for k, t in enumerate(targets)])
    assert results[0] == results[1]


def test_an_accuracy_computed_in_the_step_follows_every_batch():
    """Comparisons and argmax were NumPy results outside ops: replays kept the recorded accuracy."""
    results = []
    for compiled in (False, True):
        model, optimizer = _model()

        def step(x, y):
            logits = model(x)
            loss = tt.ops.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.item(), (logits.argmax(axis=1) == y).float().mean().item()

        step = tt.compile(step) if compiled else step
        batches = [_batch(0), _batch(0)] + [_batch(k) for k in range(1, 6)]  # the same batch while recording
        results.append([step(*b) for b in batches])
    assert results[0] == results[1]
    assert len({accuracy for _, accuracy in results[1]}) > 1


def test_model_train_each_call_keeps_replaying_and_eval_records_again():
    """model.train() before every call moved the module clock although nothing changed: the step
    recorded on every call (3x slower than eager) and never replayed."""
    model, optimizer = _model()
    criterion = tt.nn.CrossEntropyLoss()

    @tt.compile
    def step(x, y):
        return _update(criterion(model(x), y), optimizer)

    for k in range(5):
        model.train()
        step(*_batch(k))
    assert (step.recordings, step.replays) == (2, 3)
    model.eval()
    model.train()  # a real switch, and back: the modules may have changed, so the step records again
    step(*_batch(5))
    assert step.recordings == 3
