"""The shared verification can fail: broken gradients, missing gradients, frozen parameters,
undeclared zero gradients and missed bars are all caught. Core-only models, so these tests
run in any environment."""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch_core import Function, Module, Parameter, Tensor, no_grad
from tinytorch_milestones.harness import Bars, Experiment, check_gradient_flow, run_experiment


class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class WrongSquare(Square):
    @staticmethod
    def backward(ctx, grad):  # deliberately wrong: forgets the factor 2
        (x,) = ctx.saved_tensors
        return x * grad


class TwoLayer(Module):
    """x -> square(x W1 + b1) W2 + b2 (+ shift - shift when asked), all from core ops."""

    def __init__(self, square=Square, unused=False, cancel=False, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w1 = Parameter(rng.standard_normal((3, 4)) * 0.5)
        self.b1 = Parameter(rng.standard_normal(4) * 0.1)
        self.w2 = Parameter(rng.standard_normal((4, 2)) * 0.5)
        self.b2 = Parameter(np.zeros(2))
        self.square = square
        self.cancel = cancel
        if unused:
            self.spare = Parameter(np.ones(2))  # never used in forward: gets no gradient
        if cancel:
            self.shift = Parameter(np.full(2, 0.3))  # added and subtracted: gradient exactly zero

    def forward(self, x):
        h = self.square.apply(x @ self.w1 + self.b1)
        out = h @ self.w2 + self.b2
        if self.cancel:
            out = out + self.shift - self.shift
        return out


def mse(model, x, y):
    diff = model(x) - y
    return (diff * diff).mean()


def first_step(model, batch):
    x, y = batch
    model.zero_grad()
    mse(model, Tensor(x), Tensor(y)).backward()
    return check_gradient_flow(model, mse, batch, seed=0)


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    return rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)


def test_a_correct_model_passes(batch):
    report = first_step(TwoLayer(), batch)
    assert report.ok, report.failures()
    assert report.total == 4 and report.with_gradient == 4 and report.verified == 4
    # 6 coordinates of each parameter against finite differences (b1 has only 4, b2 only 2)
    assert [p.coordinates for p in report.parameters] == [6, 4, 6, 2]
    assert abs(report.loss32 - report.loss64) < 1e-4


def test_a_wrong_backward_is_caught(batch):
    report = first_step(TwoLayer(square=WrongSquare), batch)
    assert not report.ok
    failing = {p.name for p in report.parameters if not p.ok}
    # everything upstream of the wrong backward is wrong; what is downstream stays right
    assert {"w1", "b1"} <= failing
    assert "b2" not in failing
    assert any("finite differences give" in f for f in report.failures())


def test_a_parameter_without_gradient_is_caught(batch):
    report = first_step(TwoLayer(unused=True), batch)
    assert not report.ok
    (spare,) = [p for p in report.parameters if p.name == "spare"]
    assert not spare.has_gradient and "received no gradient" in spare.problems
    assert report.with_gradient == 4 and report.total == 5


def test_an_undeclared_zero_gradient_is_caught_and_a_declared_one_is_verified(batch):
    report = first_step(TwoLayer(cancel=True), batch)
    assert not report.ok
    assert any("all zero" in f for f in report.failures())

    model = TwoLayer(cancel=True)
    x, y = batch
    mse(model, Tensor(x), Tensor(y)).backward()
    report = check_gradient_flow(model, mse, batch, declared_zero={"shift": None})
    assert report.ok, report.failures()
    (shift,) = [p for p in report.parameters if p.name == "shift"]
    assert shift.declared_zero == "all" and shift.coordinates == 2  # checked, not skipped
    assert report.declared_zero == ["shift (all)"]


def test_declaring_a_live_parameter_zero_is_caught(batch):
    model = TwoLayer()
    x, y = batch
    mse(model, Tensor(x), Tensor(y)).backward()
    report = check_gradient_flow(model, mse, batch, declared_zero={"b2": slice(0, 1)})
    assert not report.ok
    assert any("declared zero, but |gradient| reaches" in f for f in report.failures())
    report = check_gradient_flow(model, mse, batch, declared_zero={"nonexistent": None})
    assert any("unknown parameters" in f for f in report.failures())


class PlainSGD:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        with no_grad():
            for p in self.params:
                if p.grad is not None:
                    p.sub_(p.grad, alpha=self.lr)


def regression_experiment(lr, bars, model=None, steps=60):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    teacher = TwoLayer(seed=9)
    with no_grad():
        y = teacher(Tensor(x)).data
    model = model or TwoLayer(seed=1)

    def loss_of(m):
        with no_grad():
            return float(mse(m, Tensor(x), Tensor(y)).item())

    return Experiment(
        label="regression",
        model=model,
        optimizer=PlainSGD(model.parameters(), lr),
        loss_fn=mse,
        batches=((x[i % 4 * 16:(i % 4 + 1) * 16], y[i % 4 * 16:(i % 4 + 1) * 16]) for i in range(steps)),
        steps=steps,
        evaluate=lambda m: 1.0 - min(loss_of(m), 1.0),
        train_loss=loss_of,
        bars=bars,
        metric_name="1 - mse",
    )


def test_run_experiment_passes_when_the_model_learns():
    result = run_experiment(regression_experiment(0.05, Bars(loss_drop_min=0.3)))
    assert result.passed, [c for c in result.checks if not c.passed]
    assert result.moved == result.movable == 4
    assert result.loss_last < result.loss_first
    assert result.steps == 60 and len(result.curves["loss"]) == 60


def test_run_experiment_fails_when_nothing_moves():
    result = run_experiment(regression_experiment(0.0, Bars(loss_drop_min=0.3)))
    assert not result.passed
    failed = {c.name for c in result.checks if not c.passed}
    assert failed == {"parameters updated", "loss fell by >= 30%"}
    assert result.moved == 0


def test_run_experiment_fails_on_a_missed_bar_or_a_broken_gradient():
    result = run_experiment(regression_experiment(0.05, Bars(metric_min=1.0, final_loss_max=1e-9)))
    failed = {c.name for c in result.checks if not c.passed}
    assert failed == {"1 - mse >= 100.00%", "final loss < 1e-09"}
    broken = regression_experiment(0.05, Bars(loss_drop_min=0.0), model=TwoLayer(square=WrongSquare, seed=1))
    result = run_experiment(broken)
    failed = {c.name for c in result.checks if not c.passed}
    assert failed == {"gradient flow"}
    assert not result.passed


def test_run_experiment_stops_on_a_diverging_loss():
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point here
        result = run_experiment(regression_experiment(1e6, Bars()))
    assert not result.passed
    assert any(c.name == "training" and "became" in c.detail for c in result.checks)
