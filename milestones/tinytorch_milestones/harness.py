"""The verification every milestone shares: gradient flow, parameter movement, loss and accuracy bars.

A milestone describes each model it trains as an ``Experiment``; ``run_experiment`` trains it
and turns every claim into a ``Check`` that can fail:

- at the first step every parameter has a gradient that matches finite differences
  (``check_gradient_flow``, in gradient_flow.py);
- every parameter moved by the end of training;
- the loss fell by the bar, the final loss and the held-out metric are within their bars.

The results (``Check``, ``GradientReport``, ``PartResult``) live in results.py; they are
importable from here too.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

import tinytorch_core
from tinytorch_core import Module, no_grad

from .gradient_flow import as_arrays, check_gradient_flow, declared_mask, to_tensors
from .results import Check, GradientReport, ParameterGradient, PartResult, finite_or_none

#: examples of the first batch whose gradients are checked against finite differences
GRADIENT_CHECK_EXAMPLES = 8

__all__ = [
    "Bars", "Check", "Experiment", "GradientReport", "ParameterGradient", "PartResult", "as_arrays",
    "check_gradient_flow", "epochs_of", "finite_or_none", "run_experiment", "to_tensors",
]


# ---- training ---------------------------------------------------------------------------------------
@dataclass
class Bars:
    """The numbers an experiment must reach; None means no bar of that kind."""

    loss_drop_min: float | None = None  # fraction: 0.9 means the loss fell by >= 90 %
    final_loss_max: float | None = None
    final_loss_min: float | None = None  # for a model that is shown to fail
    metric_min: float | None = None
    metric_max: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Experiment:
    """One model, how to train it, and what it must reach.

    ``batches`` yields ``steps`` training batches (tuples of arrays or Tensors); ``loss_fn(model,
    *tensors)`` returns the scalar loss; ``train_loss(model)`` is the loss on a fixed training set
    (measured before and after training); ``evaluate(model)`` the held-out metric.
    """

    label: str  # short name of the model in tables
    model: Module
    optimizer: object
    loss_fn: Callable
    batches: Iterable
    steps: int
    evaluate: Callable
    train_loss: Callable
    bars: Bars
    metric_name: str = "accuracy"
    eval_every: int = 0  # steps between metric evaluations for the curves (0: only at the end)
    declared_zero: dict = field(default_factory=dict)
    grad_coordinates: int = 6
    seed: int = 0
    scheduler: object = None
    architecture: str = ""  # the model spelled out


#: whether training loops step through ``tinytorch_core.compile`` (``milestones verify --compile``)
_COMPILE = contextvars.ContextVar("tinytorch_milestones_compile", default=False)


@contextlib.contextmanager
def compiling(enabled: bool = True):
    """Inside the block, ``run_experiment`` computes each step's loss and gradients through a
    compiled step (acceleration stage): the same numbers, bitwise, with the per-op work gone."""
    token = _COMPILE.set(enabled)
    try:
        yield
    finally:
        _COMPILE.reset(token)


def _loss_and_gradients(exp: Experiment):
    """``(*tensors) -> loss``: zero_grad, the loss, backward; compiled when asked (the optimizer
    step stays outside, so a non-finite loss still stops training before it)."""
    def loss_and_gradients(*tensors):
        exp.optimizer.zero_grad()
        loss = exp.loss_fn(exp.model, *tensors)
        loss.backward()
        return loss

    return tinytorch_core.compile(loss_and_gradients) if _COMPILE.get() else loss_and_gradients


class _NoProgress:
    def advance(self, loss: float) -> None:
        pass


@contextlib.contextmanager
def _silent(label: str, total: int):
    yield _NoProgress()


def run_experiment(exp: Experiment, progress=None) -> PartResult:
    """Train ``exp`` and return its result with every check filled in."""
    start = time.perf_counter()
    result = PartResult(exp.label, exp.metric_name, exp.architecture, bars=exp.bars.to_dict())
    model = exp.model
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    result.loss_first, first_metric = _evaluate(exp, exp.train_loss, exp.evaluate)
    result.curves = {"step": [], "loss": [], "eval_step": [0], "metric": [first_metric]}
    model.train()
    diverged = _train(exp, result, progress or _silent)
    result.loss_last, result.metric = _evaluate(exp, exp.train_loss, exp.evaluate)  # the model stays in eval mode
    result.curves["eval_step"].append(result.steps)
    result.curves["metric"].append(result.metric)
    _count_moved(exp, before, result)
    result.checks = _checks(exp, result, diverged)
    result.time_s = time.perf_counter() - start
    return result


def _evaluate(exp: Experiment, *measures) -> list[float]:
    """Each of ``measures`` (``train_loss``, ``evaluate``) of the model, in eval mode and without
    a graph; the model is left in eval mode."""
    exp.model.eval()
    with no_grad():
        return [float(measure(exp.model)) for measure in measures]


def _train(exp: Experiment, result: PartResult, progress) -> str | None:
    """The training loop: ``exp.steps`` optimizer steps, the gradient-flow check at the first,
    the loss curve (and the metric every ``eval_every`` steps) into ``result``. Returns why
    training stopped early (a non-finite loss), or None."""
    model, curves = exp.model, result.curves
    loss_and_gradients = _loss_and_gradients(exp)
    with progress(exp.label, exp.steps) as bar:
        for step, batch in enumerate(exp.batches):
            if step >= exp.steps:
                break
            arrays = as_arrays(batch)
            loss = loss_and_gradients(*to_tensors(arrays))
            value = float(loss.item())
            if step == 0:
                result.gradients = _check_first_gradients(exp, arrays)
            if not math.isfinite(value):
                return f"the training loss became {value} at step {step}"
            exp.optimizer.step()
            if exp.scheduler is not None:
                exp.scheduler.step()
            result.steps = step + 1
            curves["step"].append(step + 1)
            curves["loss"].append(value)
            if exp.eval_every and (step + 1) % exp.eval_every == 0 and step + 1 < exp.steps:
                curves["eval_step"].append(step + 1)
                curves["metric"].extend(_evaluate(exp, exp.evaluate))
                model.train()
            bar.advance(value)
    return None


def _check_first_gradients(exp: Experiment, arrays: tuple) -> GradientReport:
    """The gradient-flow check, on the first ``GRADIENT_CHECK_EXAMPLES`` examples of the first
    batch: every parameter is still checked, at a fraction of the cost of finite differences
    over the whole batch. Their gradients are computed apart; the batch's are kept for the step."""
    model = exp.model
    kept = [(p, p.grad) for p in model.parameters()]
    sample = tuple(a[:GRADIENT_CHECK_EXAMPLES] for a in arrays)
    model.zero_grad()
    exp.loss_fn(model, *to_tensors(sample)).backward()
    try:
        return check_gradient_flow(model, exp.loss_fn, sample, declared_zero=exp.declared_zero,
                                   coordinates=exp.grad_coordinates, seed=exp.seed)
    finally:
        for p, grad in kept:
            p.grad = grad


def _count_moved(exp: Experiment, before: dict, result: PartResult) -> None:
    """Which parameters moved during training (coordinates declared mathematically zero are
    not expected to)."""
    for name, p in exp.model.named_parameters():
        mask = declared_mask(exp.declared_zero.get(name, False), p.data.shape)
        free = np.ones(p.data.shape, dtype=bool) if mask is None else ~mask
        if not free.any():
            continue
        result.movable += 1
        if np.any(p.data[free] != before[name][free]):
            result.moved += 1
        else:
            result.not_moved.append(name)


def _checks(exp: Experiment, result: PartResult, diverged: str | None) -> list:
    checks = [_gradient_flow_check(result.gradients)]
    if diverged:
        checks.append(Check("training", False, diverged))
    checks.append(Check(
        "parameters updated",
        result.movable > 0 and result.moved == result.movable,
        f"{result.moved}/{result.movable} moved" + (f"; unchanged: {', '.join(result.not_moved)}"
                                                     if result.not_moved else ""),
    ))
    return checks + _bar_checks(exp, result)


def _gradient_flow_check(grads: GradientReport | None) -> Check:
    if grads is None:
        return Check("gradient flow", False, "no training step ran")
    if not grads.ok:
        return Check("gradient flow", False, "; ".join(grads.failures()))
    by_design = f" ({len(grads.declared_zero)} zero by design, verified zero)" if grads.declared_zero else ""
    return Check("gradient flow", True,
                 f"{grads.with_gradient}/{grads.total} parameters got a gradient{by_design}; "
                 f"{grads.coordinates} coordinates match finite differences (float64)")


def _bar_checks(exp: Experiment, result: PartResult) -> list:
    """One check per bar the experiment sets."""
    bars, checks = exp.bars, []
    if bars.loss_drop_min is not None:
        drop = result.loss_drop
        checks.append(Check(
            f"loss fell by >= {bars.loss_drop_min:.0%}",
            bool(np.isfinite(drop) and drop >= bars.loss_drop_min),
            f"{result.loss_first:.4f} -> {result.loss_last:.4f} ({_pct(drop)})",
        ))
    loss_is = np.isfinite(result.loss_last)
    if bars.final_loss_max is not None:
        checks.append(Check(f"final loss < {bars.final_loss_max:g}",
                            bool(loss_is and result.loss_last < bars.final_loss_max), f"{result.loss_last:.4f}"))
    if bars.final_loss_min is not None:
        checks.append(Check(f"final loss stays >= {bars.final_loss_min:g}",
                            bool(loss_is and result.loss_last >= bars.final_loss_min), f"{result.loss_last:.4f}"))
    metric_is = np.isfinite(result.metric)
    if bars.metric_min is not None:
        checks.append(Check(f"{exp.metric_name} >= {_pct(bars.metric_min)}",
                            bool(metric_is and result.metric >= bars.metric_min), _pct(result.metric)))
    if bars.metric_max is not None:
        checks.append(Check(f"{exp.metric_name} <= {_pct(bars.metric_max)}",
                            bool(metric_is and result.metric <= bars.metric_max), _pct(result.metric)))
    return checks


def _pct(value) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{100 * value:.2f}%"


# ---- helpers milestones share -------------------------------------------------------------------
def epochs_of(loader, epochs: int):
    """Batches of ``epochs`` passes over a data loader, one after another."""
    for _ in range(epochs):
        yield from loader
