"""Conformance suites: grade whatever provides a stage, through the public API only.

A curriculum stage is a contract: its catalog names, and what each must do. A suite checks the
contract against the *active provider* of the stage (the reference plugin, or a learner's own),
reaching it only as ``tinytorch_core.nn.X`` and ``tinytorch_core.ops.x``, never by importing the
reference package. Each check names the symbol and the aspect it verifies:

- ``forward``: known answers, against an independent reference computed in the suite (loops and
  formulas, float64);
- ``backward``: every differentiable input's gradient against central differences;
- ``contract``: shapes, dtypes, parameters and the errors bad input must raise;
- ``training``: a small model built from the stage learns.

``grade(stage)`` runs a stage's suite and returns a ``Report``; ``tinytorch grade STAGE`` prints it.
A check passes, fails with what went wrong (``grad of weight off by 0.62``), or reads "not
implemented" when the provider's code raised ``NotImplementedError`` (a skeleton scores 0).
"""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.testing import central_difference

from .integrity import GraderSnapshot, patched_since_loading, reference_code_in, reference_hidden

PASSED, FAILED, NOT_IMPLEMENTED = "ok", "FAIL", "not implemented"

#: the stages with a suite, and the module that holds each (``CHECKS``: a list of ``Check``)
SUITES = {
    "core": "tinytorch_milestones.conformance.core",
    "spatial": "tinytorch_milestones.conformance.spatial",
    "embeddings": "tinytorch_milestones.conformance.embeddings",
    "attention": "tinytorch_milestones.conformance.attention",
    "nn": "tinytorch_milestones.conformance.nn",
    "profiling": "tinytorch_milestones.conformance.profiling",
    "compression": "tinytorch_milestones.conformance.compression",
    "generation": "tinytorch_milestones.conformance.generation",
    "distributed": "tinytorch_milestones.conformance.distributed",
    "acceleration": "tinytorch_milestones.conformance.acceleration",
}


class ConformanceError(AssertionError):
    """A provider's result disagrees with the contract; the message says how."""


@dataclass(frozen=True)
class Check:
    symbol: str  # "nn.Conv2d" or "ops.conv2d"
    aspect: str  # forward | backward | contract | training
    run: Callable[[], None]  # raises ConformanceError (or anything) when the contract is not met


@dataclass
class Outcome:
    check: Check
    status: str
    detail: str = ""


@dataclass
class Report:
    stage: str
    provider: str
    outcomes: list = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.status == PASSED)

    @property
    def score(self) -> float:
        return self.passed / len(self.outcomes) if self.outcomes else 0.0

    @property
    def complete(self) -> bool:
        return bool(self.outcomes) and self.passed == len(self.outcomes)

    def failures(self) -> list:
        return [o for o in self.outcomes if o.status != PASSED]


def grade(stage: str, runtime=None) -> Report:
    """Run ``stage``'s suite against the stage's active provider."""
    if stage not in SUITES:
        raise KeyError(f"no conformance suite for stage {stage!r}; suites exist for {sorted(SUITES)}")
    from tinytorch_core.host.runtime import default_runtime

    runtime = runtime or default_runtime()
    _, record = runtime.stage_status(stage)
    provider = f"{record.distribution} {record.version}" if record is not None else "not installed"
    report = Report(stage, provider)
    changed = _GRADER.changed() + patched_since_loading(runtime)
    if changed:  # a plugin replaced the grader's code while it loaded: nothing it reports counts
        report.outcomes.append(Outcome(Check(stage, "integrity", _no_check), FAILED,
                                       f"the grader's own code was replaced while plugins loaded: {', '.join(changed)}"))
        return report
    borrowed = reference_code_in(stage, record)
    if borrowed:
        report.outcomes.append(Outcome(Check(stage, "provenance", _no_check), FAILED,
                                       "the provider uses the reference implementation instead of its own code: "
                                       + ", ".join(borrowed[:8]) + (" ..." if len(borrowed) > 8 else "")))
    with reference_hidden(stage, record):
        for check in importlib.import_module(SUITES[stage]).CHECKS:
            report.outcomes.append(_run(check))
    patched = patched_since_loading(runtime)  # code replaced while the checks ran: their results do not count
    if patched:
        report.outcomes = [Outcome(Check(stage, "integrity", _no_check), FAILED,
                                   f"code was replaced while the checks ran: {', '.join(patched)}")]
    return report


def _no_check() -> None:
    """The run of the integrity and provenance rows, which ``grade`` decides itself."""


def _run(check: Check) -> Outcome:
    np.random.seed(0)  # a provider that draws from NumPy's global generator is graded reproducibly
    tt.manual_seed(0)
    try:
        check.run()
    except NotImplementedError as exc:
        return Outcome(check, NOT_IMPLEMENTED, str(exc))
    except ConformanceError as exc:
        return Outcome(check, FAILED, str(exc))
    except Exception as exc:  # a crash in the provider's code: a failure that says where
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome(check, FAILED, f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})")
    except (SystemExit, GeneratorExit) as exc:  # sys.exit(0) in the provider's code is no pass
        return Outcome(check, FAILED, f"the provider's code raised {type(exc).__name__}({exc}) during the check")
    return Outcome(check, PASSED)


# ---- what checks are built from ------------------------------------------------------------------------
def expect_close(name: str, actual, expected, *, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    actual = np.asarray(actual.data if isinstance(actual, Tensor) else actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ConformanceError(f"{name} has shape {actual.shape}, expected {expected.shape}")
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        worst = np.abs(actual - expected).max()
        raise ConformanceError(f"{name} off by {worst:.3g} (largest difference from the reference)")


def expect_error(error, call: Callable, what: str) -> None:
    """``call()`` raises ``error`` (an exception class, or a tuple of them)."""
    expected = " or ".join(e.__name__ for e in (error if isinstance(error, tuple) else (error,)))
    try:
        call()
    except error:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise ConformanceError(f"{what}: expected {expected}, got {type(exc).__name__}: {exc}") from None
    raise ConformanceError(f"{what}: expected {expected}, nothing was raised")


def check_gradients(function: Callable, inputs: dict, *, coordinates: int = 6, seed: int = 0,
                    atol: float = 1e-5, rtol: float = 1e-3) -> None:
    """Each named float64 input's gradient of ``sum(function(**inputs) * W)`` (fixed random W)
    against central differences at a few coordinates; a wrong one is named: ``grad of weight
    off by 0.62``."""
    rng = np.random.default_rng(seed)
    arrays = {name: np.array(value, dtype=np.float64) for name, value in inputs.items()}
    tensors = {name: Tensor(a, requires_grad=True, dtype=np.float64) for name, a in arrays.items()}
    out = function(**tensors)
    weights = rng.standard_normal(out.shape)
    (out * Tensor(weights, dtype=np.float64)).sum().backward()

    def objective():
        with tt.no_grad():
            value = function(**{n: Tensor(a, dtype=np.float64) for n, a in arrays.items()})
        return float(np.sum(value.data * weights))

    for name, array in arrays.items():
        grad = tensors[name].grad
        if grad is None:
            raise ConformanceError(f"grad of {name} is missing: the op dropped it")
        flat = array.reshape(-1)
        for k in rng.choice(flat.size, size=min(coordinates, flat.size), replace=False):
            index = np.unravel_index(k, array.shape)
            numeric = central_difference(objective, array, index)
            analytic = float(grad.data[index])
            if abs(analytic - numeric) > atol + rtol * abs(numeric):
                raise ConformanceError(
                    f"grad of {name} off by {abs(analytic - numeric):.3g} at {tuple(int(i) for i in index)} "
                    f"(backward {analytic:.6g}, finite differences {numeric:.6g})"
                )


def check_parameter_gradients(module, forward: Callable, *, coordinates: int = 3, seed: int = 0,
                              atol: float = 1e-5, rtol: float = 1e-3) -> None:
    """Every parameter's gradient of ``sum(forward() * W)`` against central differences at a few
    entries, with the module in float64 (``forward`` builds its own float64 input). Checks a
    layer without knowing how it is built inside; a wrong one is named by its parameter."""
    rng = np.random.default_rng(seed)
    module.to(np.float64)
    out = forward()
    weights = rng.standard_normal(out.shape)
    for p in module.parameters():
        p.grad = None
    (out * Tensor(weights, dtype=np.float64)).sum().backward()

    def objective():
        with tt.no_grad():
            return float(np.sum(forward().data * weights))

    for name, parameter in module.named_parameters():
        if parameter.grad is None:
            raise ConformanceError(f"grad of {name} is missing: it takes no part in the output")
        array = parameter.data
        for k in rng.choice(array.size, size=min(coordinates, array.size), replace=False):
            index = np.unravel_index(k, array.shape)
            numeric = central_difference(objective, array, index)
            analytic = float(parameter.grad.data[index])
            if abs(analytic - numeric) > atol + rtol * abs(numeric):
                raise ConformanceError(f"grad of {name} off by {abs(analytic - numeric):.3g} at "
                                       f"{tuple(int(i) for i in index)} (backward {analytic:.6g}, "
                                       f"finite differences {numeric:.6g})")


def train(loss_of_step: Callable, optimizer, steps: int, *, every_parameter: bool = True) -> tuple[float, float]:
    """``steps`` optimizer steps on ``loss_of_step()``; returns the first and the last loss.
    ``every_parameter``: each parameter must get a nonzero gradient in some step (a model that
    learns with a layer's gradient dropped is not the contract)."""
    losses, reached = [], set()
    for _ in range(steps):
        loss = loss_of_step()
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        reached.update(id(p) for p in _parameters(optimizer) if p.grad is not None and p.grad.data.any())
        optimizer.step()
    unreached = [tuple(p.shape) for p in _parameters(optimizer) if id(p) not in reached]
    if unreached and every_parameter:  # learning with some parameters stuck is not the contract: each must take part
        raise ConformanceError(f"{len(unreached)} parameter(s) never got a nonzero gradient in {steps} steps "
                               f"(shapes {unreached[:4]}): their gradients are dropped or zero")
    return losses[0], losses[-1]


def _parameters(optimizer) -> list:
    return [p for group in optimizer.param_groups for p in group["params"]]


def expect_learned(what: str, first: float, last: float, *, loss_ratio: float, accuracy: float,
                   min_accuracy: float) -> None:
    """The bar of every "it learns" check: the loss fell below ``loss_ratio`` of its first value
    and the accuracy reached ``min_accuracy``."""
    if not (last < loss_ratio * first and accuracy >= min_accuracy):
        raise ConformanceError(
            f"{what} did not learn: loss {first:.3f} -> {last:.3f} (needs below {loss_ratio:.0%} of the "
            f"first), accuracy {accuracy:.0%} (needs {min_accuracy:.0%})"
        )


# The grader as this package wrote it, taken before any provider can change it (suites included).
_GRADER = GraderSnapshot(sys.modules[__name__], *(importlib.import_module(module) for module in SUITES.values()))
