"""The engine's two seams for acting during a backward pass (what data-parallel training needs):
a leaf's post-accumulate-grad hook runs once, when its ``.grad`` holds every contribution of the
pass, while later nodes are still to run; ``queue_callback`` runs when the pass has delivered
every gradient, and never after a pass that raised."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import GraphError, Observer, Tensor, observing
from tinytorch_core.engine import queue_callback


def test_the_hook_runs_once_with_every_contribution_summed():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.data.copy()))
    (w * 3.0 + w * w + w.exp()).sum().backward()  # three edges lead into w
    expected = 3.0 + 2 * w.data + np.exp(w.data)
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], expected.astype(np.float32), rtol=1e-6)


def test_a_hook_runs_as_soon_as_its_leaf_is_final_before_earlier_layers():
    """Leaves near the loss are final first: their hooks run before the backward of the
    nodes below them (the overlap data-parallel training relies on)."""
    x = Tensor(np.ones((2, 3)))
    w1, w2 = Tensor(np.ones((3, 3)), requires_grad=True), Tensor(np.ones((3, 1)), requires_grad=True)
    order = []

    class Watch(Observer):
        def op_started(self, function, phase):
            order.append(f"{phase} {function.__name__}")

    w1.register_post_accumulate_grad_hook(lambda t: order.append("w1 final"))
    w2.register_post_accumulate_grad_hook(lambda t: order.append("w2 final"))
    loss = (((x @ w1).exp()) @ w2).sum()
    with observing(Watch()):
        loss.backward()
    assert order.index("w2 final") < order.index("backward Exp") < order.index("w1 final")


def test_hooks_run_again_on_every_pass_and_can_be_removed():
    w = Tensor(np.ones(2), requires_grad=True)
    calls = []
    remove = w.register_post_accumulate_grad_hook(lambda t: calls.append(float(t.grad.data.sum())))
    (w * 2.0).sum().backward()
    (w * 2.0).sum().backward()
    assert calls == [4.0, 8.0]  # the second pass sees the accumulated .grad
    remove()
    (w * 2.0).sum().backward()
    assert calls == [4.0, 8.0] and w._grad_hooks is None


def test_a_leaf_root_runs_its_hook():
    w = Tensor(np.ones(()), requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(calls.append)
    w.backward()
    assert calls == [w]


def test_only_leaves_that_require_grad_take_hooks():
    with pytest.raises(RuntimeError, match="only a leaf tensor that requires grad"):
        Tensor(np.ones(2)).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="only a leaf"):
        (Tensor(np.ones(2), requires_grad=True) * 2.0).register_post_accumulate_grad_hook(print)
    with pytest.raises(TypeError, match="expects a callable, got int"):
        Tensor(np.ones(2), requires_grad=True).register_post_accumulate_grad_hook(3)


def test_queued_callbacks_run_after_every_gradient_is_delivered():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    events = []

    def hook(t):
        events.append("a final")
        queue_callback(lambda: events.append(("end", a.grad is not None, b.grad is not None)))

    a.register_post_accumulate_grad_hook(hook)
    (a * 2.0 * b).sum().backward()
    assert events == ["a final", ("end", True, True)]


def test_callbacks_do_not_run_when_the_pass_raises_and_do_not_leak_into_the_next():
    class Broken(tt.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            raise ValueError("broken backward")

    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    events = []
    a.register_post_accumulate_grad_hook(lambda t: queue_callback(lambda: events.append("end")))
    with pytest.raises(ValueError, match="broken backward"):
        (a * 2.0 + Broken.apply(b)).sum().backward()
    assert events == []
    (b * 1.0).sum().backward()  # a later pass that never reaches a
    assert events == []


def test_queue_callback_outside_a_pass_is_refused():
    with pytest.raises(GraphError, match="during a backward pass"):
        queue_callback(print)


def test_a_model_without_hooks_takes_the_unhooked_path():
    w = Tensor(np.ones(3), requires_grad=True)
    (w * w).sum().backward()
    assert w._grad_hooks is None
    np.testing.assert_array_equal(w.grad.data, 2 * np.ones(3, np.float32))
