"""A replay runs the grad hooks and pass callbacks an eager backward runs, at the same moments:
a parameter's post-accumulate-grad hooks after its last gradient of the pass, ``queue_callback``
functions at the pass's end (data-parallel training sends and averages gradients there)."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.engine import queue_callback
from tinytorch_core.grad_mode import current_modes


class TiedTwice(tt.nn.Module):
    """fc1 is applied twice: its weight's gradient is a sum of two deliveries in one pass."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = tt.nn.Linear(4, 4, generator=0), tt.nn.Linear(4, 3, generator=1)

    def forward(self, x):
        return self.fc2(tt.ops.relu(self.fc1(tt.ops.tanh(self.fc1(x)))))


def _setup():
    model = TiedTwice()
    return model, tt.optim.SGD(model.parameters(), lr=0.1)


def _batch(seed):
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((6, 4)).astype(np.float32)), Tensor(rng.integers(0, 3, 6))


def _step(model, optimizer, x, y):
    """zero_grad first: the hooked gradients stay readable after the call."""
    optimizer.zero_grad()
    loss = tt.nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def _hooked(model, log):
    """Hooks on every parameter: log (name, bytes of .grad) and halve the gradient in place; the
    first hook of a pass queues a callback that logs the pass's end."""
    passes = {"open": False}

    def close():
        log.append(("pass", "end"))
        passes["open"] = False

    for name, parameter in model.named_parameters():
        def hook(p, name=name):
            if not passes["open"]:
                passes["open"] = True
                queue_callback(close)
            log.append((name, p.grad.data.tobytes()))
            p.grad.data *= 0.5
        parameter.register_post_accumulate_grad_hook(hook)


def _run(compiled, steps=6, hook_after=None):
    model, optimizer = _setup()
    log = []
    if hook_after is None:
        _hooked(model, log)
    step = tt.compile(_step) if compiled else _step
    losses = []
    for k in range(steps):
        if k == hook_after:
            _hooked(model, log)
        losses.append(step(model, optimizer, *_batch(k)).item())
    state = [(p.data.tobytes(), p.grad.data.tobytes()) for p in model.parameters()]
    return losses, log, state, step


def test_hooks_and_callbacks_run_on_every_replay_as_in_eager():
    eager = _run(compiled=False)
    compiled = _run(compiled=True)
    assert compiled[3].replays == 4
    assert compiled[:3] == eager[:3]  # losses, the hook log (order, final sums), parameters and grads, bitwise
    assert sum(entry == ("pass", "end") for entry in compiled[1]) == 6


def test_a_hook_registered_after_the_recordings_runs_on_replays():
    eager = _run(compiled=False, hook_after=4)
    compiled = _run(compiled=True, hook_after=4)
    assert compiled[3].replays == 4
    assert compiled[:3] == eager[:3] and len(compiled[1]) == 2 * (4 + 1)  # two passes: 4 params, an end


def test_a_hook_that_raises_leaves_no_pass_state_behind():
    model, optimizer = _setup()
    step = tt.compile(_step)
    for k in range(3):
        step(model, optimizer, *_batch(k))

    def failing(p):
        queue_callback(lambda: None)
        raise RuntimeError("hook failed")

    model.fc2.bias.register_post_accumulate_grad_hook(failing)
    with pytest.raises(RuntimeError, match="hook failed"):
        step(model, optimizer, *_batch(3))
    assert current_modes().pass_callbacks is None and tt.is_grad_enabled()


def test_backward_of_a_leaf_is_refused_not_skipped():
    """Such a pass runs no op, so a replay would silently drop its gradient."""
    weight = tt.nn.Parameter(np.ones(3, np.float32))
    optimizer = tt.optim.SGD([weight], lr=0.1)

    def step():
        weight.backward(np.full(3, 2.0, np.float32))
        optimizer.step()
        optimizer.zero_grad()

    with pytest.raises(tt.acceleration.CompileError, match="backward\\(\\) on a leaf tensor"):
        tt.compile(step)()
