"""The verification every milestone shares: gradient flow, parameter movement, loss and accuracy bars.

A milestone describes each model it trains as an ``Experiment``; ``run_experiment`` trains it
and turns every claim into a ``Check`` that can fail:

- at the first step every parameter has a gradient that is not all zero, and for a random
  sample of coordinates of every parameter the gradient matches central finite differences
  of the full model loss, computed on a float64 copy of the model. Coordinates a model
  declares mathematically zero (``declared_zero``) are checked to be zero, never skipped;
- every parameter moved by the end of training;
- the loss fell by the bar, the final loss and the held-out metric are within their bars.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from tinytorch_core import Module, Tensor, no_grad
from tinytorch_core.testing import central_difference


# ---- results ----------------------------------------------------------------------------------
@dataclass
class Check:
    """One verifiable claim and whether it held."""

    name: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class ParameterGradient:
    """What the gradient-flow check found for one parameter."""

    name: str
    shape: tuple
    has_gradient: bool
    nonzero: bool
    declared_zero: str  # "", "all" or "part": coordinates the model declares mathematically zero
    coordinates: int  # finite-difference coordinates compared
    max_error: float  # worst |analytic - numeric| / (atol + rtol * scale) over the coordinates; <= 1 passes
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "has_gradient": self.has_gradient,
            "nonzero": self.nonzero,
            "declared_zero": self.declared_zero,
            "coordinates_checked": self.coordinates,
            "max_error_ratio": _finite(self.max_error),
            "ok": self.ok,
            "problems": list(self.problems),
        }


@dataclass
class GradientReport:
    """Gradient flow at the first step, parameter by parameter."""

    parameters: list
    loss32: float
    loss64: float
    problems: list = field(default_factory=list)  # model-level problems (loss mismatch ...)

    @property
    def total(self) -> int:
        return len(self.parameters)

    @property
    def with_gradient(self) -> int:
        """Parameters that received a gradient that is not all zero (declared-zero ones: verified zero)."""
        return sum(1 for p in self.parameters if p.has_gradient and (p.nonzero or p.declared_zero == "all"))

    @property
    def verified(self) -> int:
        return sum(1 for p in self.parameters if p.ok)

    @property
    def coordinates(self) -> int:
        return sum(p.coordinates for p in self.parameters)

    @property
    def declared_zero(self) -> list:
        return [f"{p.name} ({p.declared_zero})" for p in self.parameters if p.declared_zero]

    @property
    def ok(self) -> bool:
        return not self.problems and all(p.ok for p in self.parameters)

    def failures(self) -> list:
        out = list(self.problems)
        out += [f"{p.name}: {'; '.join(p.problems)}" for p in self.parameters if p.problems]
        return out

    def to_dict(self) -> dict:
        return {
            "with_gradient": self.with_gradient,
            "verified": self.verified,
            "total": self.total,
            "coordinates_checked": self.coordinates,
            "declared_zero": self.declared_zero,
            "loss_float32": _finite(self.loss32),
            "loss_float64": _finite(self.loss64),
            "problems": list(self.problems),
            "parameters": [p.to_dict() for p in self.parameters],
        }


@dataclass
class PartResult:
    """One trained model of a milestone (XOR trains two, the Transformer milestone two)."""

    label: str
    metric_name: str
    architecture: str = ""
    gradients: GradientReport | None = None
    moved: int = 0
    movable: int = 0
    not_moved: list = field(default_factory=list)
    loss_first: float = math.nan
    loss_last: float = math.nan
    metric: float = math.nan
    bars: dict = field(default_factory=dict)
    checks: list = field(default_factory=list)
    curves: dict = field(default_factory=dict)
    steps: int = 0
    time_s: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def loss_drop(self) -> float:
        if not (np.isfinite(self.loss_first) and np.isfinite(self.loss_last)) or self.loss_first == 0:
            return math.nan
        return 1.0 - self.loss_last / self.loss_first

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "architecture": self.architecture,
            "passed": self.passed,
            "gradients": self.gradients.to_dict() if self.gradients else None,
            "updated": {"moved": self.moved, "total": self.movable, "not_moved": list(self.not_moved)},
            "loss": {
                "first": _finite(self.loss_first),
                "last": _finite(self.loss_last),
                "drop": _finite(self.loss_drop),
            },
            "metric": {"name": self.metric_name, "value": _finite(self.metric)},
            "bars": dict(self.bars),
            "steps": self.steps,
            "time_s": round(self.time_s, 3),
            "checks": [c.to_dict() for c in self.checks],
            "curves": {k: [_finite(v) for v in vs] for k, vs in self.curves.items()},
            "notes": list(self.notes),
        }


def _finite(value):
    """JSON has no NaN: NaN/inf become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ---- tensors -------------------------------------------------------------------------------------
def as_arrays(batch) -> tuple:
    """A batch (tuple of arrays or Tensors) as a tuple of NumPy arrays."""
    if isinstance(batch, (np.ndarray, Tensor)):
        batch = (batch,)
    return tuple(b.data if isinstance(b, Tensor) else np.asarray(b) for b in batch)


def to_tensors(arrays, dtype=np.float32) -> tuple:
    """Float arrays become Tensors of ``dtype``; integer (index, class) arrays stay integer."""
    return tuple(Tensor(a, dtype=dtype) if a.dtype.kind == "f" else Tensor(a) for a in arrays)


# ---- gradient flow -------------------------------------------------------------------------------
def _declared_mask(spec, shape) -> np.ndarray | None:
    """``declared_zero`` values: None/True (the whole parameter), an index expression, or a bool mask."""
    if spec is False:
        return None
    mask = np.zeros(shape, dtype=bool)
    if spec is None or spec is True:
        mask[...] = True
    elif isinstance(spec, np.ndarray) and spec.dtype == bool:
        mask[...] = spec
    else:
        mask[spec] = True
    return mask


def check_gradient_flow(
    model: Module,
    loss_fn: Callable,
    batch,
    *,
    declared_zero: dict | None = None,
    coordinates: int = 6,
    seed: int = 0,
    eps: float = 1e-6,
    rtol: float = 1e-4,
    atol: float = 1e-7,
    zero_tol: float = 1e-9,
    agreement: float = 1e-2,
) -> GradientReport:
    """Verify the gradients that ``loss_fn(model, *batch)`` produced in ``model``'s ``.grad``.

    Call it right after the first ``backward()`` (before the optimizer step). A float64 deep copy
    of the model recomputes the loss and its gradients; for ``coordinates`` coordinates of every
    parameter (half where the gradient is non-zero, half uniformly at random) the float64 gradient
    must match central differences ``(L(w + eps) - L(w - eps)) / (2 eps)`` within
    ``atol + rtol * max(|analytic|, |numeric|)``. A mismatch is re-measured at ``eps / 10`` before it
    is reported, so a finite difference that straddles a ReLU kink is not mistaken for a wrong
    backward (a wrong backward is wrong at every step size). The float32 gradients that training
    uses must agree with the float64 ones (relative norm error below ``agreement``).
    """
    declared_zero = dict(declared_zero or {})
    rng = np.random.default_rng(seed)
    arrays = as_arrays(batch)
    named = list(model.named_parameters())
    unknown = set(declared_zero) - {n for n, _ in named}
    grads32 = {n: (None if p.grad is None else np.array(p.grad.data, dtype=np.float64)) for n, p in named}

    model64 = copy.deepcopy(model)
    model64.zero_grad()
    model64.to(np.float64)
    inputs64 = to_tensors(arrays, np.float64)
    params64 = dict(model64.named_parameters())
    with no_grad():
        loss32 = float(loss_fn(model, *to_tensors(arrays, np.float32)).item())
    loss64_t = loss_fn(model64, *inputs64)
    loss64 = float(loss64_t.item())
    problems = [f"declared_zero names unknown parameters {sorted(unknown)}"] if unknown else []
    if loss64_t.data.dtype != np.float64:
        problems.append(f"the float64 copy of the model computed a {loss64_t.data.dtype} loss")
    if not np.isfinite(loss64):
        problems.append(f"the float64 loss is {loss64}")
    if not abs(loss32 - loss64) <= 1e-3 * max(1.0, abs(loss64)):
        problems.append(f"float32 loss {loss32:.6g} and float64 loss {loss64:.6g} disagree")
    loss64_t.backward()

    def objective() -> float:
        with no_grad():
            return float(loss_fn(model64, *inputs64).item())

    reports = []
    for name, p32 in named:
        p64 = params64[name]
        shape = p32.data.shape
        mask = _declared_mask(declared_zero[name], shape) if name in declared_zero else None
        free = np.ones(shape, dtype=bool) if mask is None else ~mask
        g32 = grads32[name]
        g64 = None if p64.grad is None else p64.grad.data
        issues = []
        if g32 is None:
            issues.append("received no gradient")
        if g64 is None and g32 is not None:
            issues.append("received no gradient in the float64 copy")
        nonzero = bool(g32 is not None and free.any() and np.any(g32[free] != 0))
        if g32 is not None and free.any() and not nonzero:
            issues.append("its gradient is all zero (declare it if that is mathematically so)")
        declared = "" if mask is None else ("all" if mask.all() else "part")
        if mask is not None and g64 is not None:
            worst = float(np.abs(g64[mask]).max())
            if worst > zero_tol:
                issues.append(f"declared zero, but |gradient| reaches {worst:.3g}")
        if g32 is not None and g64 is not None:
            norm = float(np.linalg.norm(g64))
            diff = float(np.linalg.norm(g32 - g64))
            if diff > agreement * norm + 1e-6:
                issues.append(f"float32 and float64 gradients disagree (relative error {diff / max(norm, 1e-30):.3g})")
        worst_ratio, checked = 0.0, 0
        if g64 is not None:
            flat_free = np.flatnonzero(free)
            flat_live = np.flatnonzero(free & (g64 != 0))
            picks = []
            if flat_live.size:
                picks += list(rng.choice(flat_live, size=min(flat_live.size, (coordinates + 1) // 2), replace=False))
            if flat_free.size:
                rest = np.setdiff1d(flat_free, picks)
                picks += list(rng.choice(rest, size=min(rest.size, coordinates - len(picks)), replace=False))
            if mask is not None:  # declared-zero coordinates are checked too, never skipped
                flat_zero = np.flatnonzero(mask)
                picks += list(rng.choice(flat_zero, size=min(flat_zero.size, 2), replace=False))
            for flat_index in picks:
                index = np.unravel_index(int(flat_index), shape)
                analytic = float(g64[index])
                ratio = math.inf
                for step in (eps, eps / 10):
                    estimate = central_difference(objective, p64.data, index, step)
                    ratio = abs(analytic - estimate) / (atol + rtol * max(abs(analytic), abs(estimate)))
                    if ratio <= 1.0:
                        break
                checked += 1
                worst_ratio = max(worst_ratio, ratio)
                if ratio > 1.0:
                    issues.append(
                        f"gradient at {tuple(int(i) for i in index)} is {analytic:.6g} but finite differences "
                        f"give {estimate:.6g}"
                    )
        reports.append(ParameterGradient(name, tuple(shape), g32 is not None, nonzero, declared, checked,
                                         worst_ratio, issues))
    return GradientReport(reports, loss32, loss64, problems)


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
    named = list(model.named_parameters())
    before = {n: p.data.copy() for n, p in named}
    model.eval()
    with no_grad():
        result.loss_first = float(exp.train_loss(model))
        first_metric = float(exp.evaluate(model))
    model.train()
    curves = {"step": [], "loss": [], "eval_step": [0], "metric": [first_metric]}
    progress = progress or _silent
    diverged = None
    with progress(exp.label, exp.steps) as bar:
        for step, batch in enumerate(exp.batches):
            if step >= exp.steps:
                break
            arrays = as_arrays(batch)
            exp.optimizer.zero_grad()
            loss = exp.loss_fn(model, *to_tensors(arrays))
            loss.backward()
            value = float(loss.item())
            if step == 0:
                result.gradients = check_gradient_flow(
                    model, exp.loss_fn, arrays, declared_zero=exp.declared_zero,
                    coordinates=exp.grad_coordinates, seed=exp.seed,
                )
            if not math.isfinite(value):
                diverged = f"the training loss became {value} at step {step}"
                break
            exp.optimizer.step()
            if exp.scheduler is not None:
                exp.scheduler.step()
            result.steps = step + 1
            curves["step"].append(step + 1)
            curves["loss"].append(value)
            if exp.eval_every and (step + 1) % exp.eval_every == 0 and step + 1 < exp.steps:
                model.eval()
                with no_grad():
                    curves["eval_step"].append(step + 1)
                    curves["metric"].append(float(exp.evaluate(model)))
                model.train()
            bar.advance(value)
    model.eval()
    with no_grad():
        result.loss_last = float(exp.train_loss(model))
        result.metric = float(exp.evaluate(model))
    curves["eval_step"].append(result.steps)
    curves["metric"].append(result.metric)
    result.curves = curves

    # every parameter moved (coordinates declared mathematically zero are not expected to)
    for name, p in named:
        spec = exp.declared_zero.get(name, False) if name in exp.declared_zero else False
        mask = _declared_mask(spec, p.data.shape)
        free = np.ones(p.data.shape, dtype=bool) if mask is None else ~mask
        if not free.any():
            continue
        result.movable += 1
        if np.any(p.data[free] != before[name][free]):
            result.moved += 1
        else:
            result.not_moved.append(name)

    checks = result.checks
    grads = result.gradients
    if grads is None:
        checks.append(Check("gradient flow", False, "no training step ran"))
    else:
        checks.append(Check(
            "gradient flow",
            grads.ok,
            (f"{grads.with_gradient}/{grads.total} parameters got a gradient"
             + (f" ({len(grads.declared_zero)} zero by design, verified zero)" if grads.declared_zero else "")
             + f"; {grads.coordinates} coordinates match finite differences (float64)")
            if grads.ok else "; ".join(grads.failures()),
        ))
    if diverged:
        checks.append(Check("training", False, diverged))
    checks.append(Check(
        "parameters updated",
        result.movable > 0 and result.moved == result.movable,
        f"{result.moved}/{result.movable} moved" + (f"; unchanged: {', '.join(result.not_moved)}"
                                                     if result.not_moved else ""),
    ))
    bars = exp.bars
    if bars.loss_drop_min is not None:
        drop = result.loss_drop
        checks.append(Check(
            f"loss fell by >= {bars.loss_drop_min:.0%}",
            bool(np.isfinite(drop) and drop >= bars.loss_drop_min),
            f"{result.loss_first:.4f} -> {result.loss_last:.4f} ({_pct(drop)})",
        ))
    if bars.final_loss_max is not None:
        checks.append(Check(
            f"final loss < {bars.final_loss_max:g}",
            bool(np.isfinite(result.loss_last) and result.loss_last < bars.final_loss_max),
            f"{result.loss_last:.4f}",
        ))
    if bars.final_loss_min is not None:
        checks.append(Check(
            f"final loss stays >= {bars.final_loss_min:g}",
            bool(np.isfinite(result.loss_last) and result.loss_last >= bars.final_loss_min),
            f"{result.loss_last:.4f}",
        ))
    if bars.metric_min is not None:
        checks.append(Check(
            f"{exp.metric_name} >= {_pct(bars.metric_min)}",
            bool(np.isfinite(result.metric) and result.metric >= bars.metric_min),
            _pct(result.metric),
        ))
    if bars.metric_max is not None:
        checks.append(Check(
            f"{exp.metric_name} <= {_pct(bars.metric_max)}",
            bool(np.isfinite(result.metric) and result.metric <= bars.metric_max),
            _pct(result.metric),
        ))
    result.time_s = time.perf_counter() - start
    return result


def _pct(value) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{100 * value:.2f}%"


# ---- helpers milestones share -------------------------------------------------------------------
def epochs_of(loader, epochs: int):
    """Batches of ``epochs`` passes over a data loader, one after another."""
    for _ in range(epochs):
        yield from loader


def batched_predict(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Model outputs (as arrays) for ``x``, in chunks, without recording a graph."""
    outs = []
    with no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(model(Tensor(x[i:i + batch_size])).data)
    return np.concatenate(outs)
