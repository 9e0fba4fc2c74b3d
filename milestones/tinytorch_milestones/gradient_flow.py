"""The gradient-flow check of a milestone's first training step.

At the first step every parameter has a gradient that is not all zero, and for a random sample
of coordinates of every parameter the gradient matches central finite differences of the full
model loss, computed on a float64 copy of the model. Coordinates a model declares
mathematically zero (``declared_zero``) are checked to be zero, never skipped.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinytorch_core import Module, Tensor, no_grad
from tinytorch_core.checks import array_of
from tinytorch_core.testing import central_difference

from .results import GradientReport, ParameterGradient


# ---- batches as arrays and as tensors ----------------------------------------------------------
def as_arrays(batch) -> tuple:
    """A batch (tuple of arrays or Tensors) as a tuple of NumPy arrays."""
    if isinstance(batch, (np.ndarray, Tensor)):
        batch = (batch,)
    return tuple(array_of(b) for b in batch)


def to_tensors(arrays, dtype=np.float32) -> tuple:
    """Float arrays become Tensors of ``dtype``; integer (index, class) arrays stay integer."""
    return tuple(Tensor(a, dtype=dtype) if a.dtype.kind == "f" else Tensor(a) for a in arrays)


def declared_mask(spec, shape) -> np.ndarray | None:
    """``declared_zero`` values: None/True (the whole parameter), an index expression, or a bool
    mask; False (nothing declared) gives None."""
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


@dataclass(frozen=True)
class Tolerances:
    """How closely the gradients must agree (see ``check_gradient_flow``)."""

    eps: float = 1e-6  # finite-difference step
    rtol: float = 1e-4
    atol: float = 1e-7
    zero_tol: float = 1e-9  # |gradient| allowed at coordinates declared zero
    agreement: float = 1e-2  # relative norm error allowed between float32 and float64 gradients


# ---- the check ---------------------------------------------------------------------------------------
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
    tolerances = Tolerances(eps, rtol, atol, zero_tol, agreement)
    rng = np.random.default_rng(seed)
    arrays = as_arrays(batch)
    named = list(model.named_parameters())
    unknown = set(declared_zero) - {n for n, _ in named}
    problems = [f"declared_zero names unknown parameters {sorted(unknown)}"] if unknown else []
    grads32 = {n: (None if p.grad is None else np.array(p.grad.data, dtype=np.float64)) for n, p in named}

    # the float64 copy: its loss must agree with the float32 one, then it computes its own gradients
    model64 = copy.deepcopy(model)
    model64.zero_grad()
    model64.to(np.float64)
    inputs64 = to_tensors(arrays, np.float64)
    loss32, loss64, loss_problems = _float64_loss_and_backward(model, model64, loss_fn, arrays, inputs64)
    problems += loss_problems

    def objective() -> float:
        with no_grad():
            return float(loss_fn(model64, *inputs64).item())

    params64 = dict(model64.named_parameters())
    reports = []
    for name, p32 in named:
        mask = declared_mask(declared_zero.get(name, False), p32.data.shape)
        reports.append(_check_parameter(name, grads32[name], params64[name], mask, objective, rng, coordinates,
                                        tolerances))
    return GradientReport(reports, loss32, loss64, problems)


def _float64_loss_and_backward(model, model64, loss_fn, arrays, inputs64) -> tuple[float, float, list]:
    """The float32 loss (no graph), the float64 loss (then its backward), and what is wrong
    with the two."""
    with no_grad():
        loss32 = float(loss_fn(model, *to_tensors(arrays, np.float32)).item())
    loss64_t = loss_fn(model64, *inputs64)
    loss64 = float(loss64_t.item())
    problems = []
    if loss64_t.data.dtype != np.float64:
        problems.append(f"the float64 copy of the model computed a {loss64_t.data.dtype} loss")
    if not np.isfinite(loss64):
        problems.append(f"the float64 loss is {loss64}")
    if not abs(loss32 - loss64) <= 1e-3 * max(1.0, abs(loss64)):
        problems.append(f"float32 loss {loss32:.6g} and float64 loss {loss64:.6g} disagree")
    loss64_t.backward()
    return loss32, loss64, problems


def _check_parameter(name, g32, p64, mask, objective, rng, coordinates, tol: Tolerances) -> ParameterGradient:
    """Everything the check says about one parameter: its gradient exists, is not all zero
    where it is free, is zero where declared, and matches finite differences."""
    shape = p64.data.shape
    free = np.ones(shape, dtype=bool) if mask is None else ~mask
    g64 = None if p64.grad is None else p64.grad.data
    issues, nonzero = _gradient_problems(g32, g64, free, mask, tol)
    worst_ratio, checked = 0.0, 0
    if g64 is not None:
        picks = _pick_coordinates(g64, free, mask, rng, coordinates)
        fd_issues, checked, worst_ratio = _compare_with_finite_differences(picks, g64, p64.data, objective, tol)
        issues += fd_issues
    declared = "" if mask is None else ("all" if mask.all() else "part")
    return ParameterGradient(name, tuple(shape), g32 is not None, nonzero, declared, checked, worst_ratio, issues)


def _gradient_problems(g32, g64, free, mask, tol: Tolerances) -> tuple[list, bool]:
    """What is wrong with a parameter's two gradients, and whether the float32 one is non-zero
    where the parameter is free."""
    issues = []
    if g32 is None:
        issues.append("received no gradient")
    if g64 is None and g32 is not None:
        issues.append("received no gradient in the float64 copy")
    nonzero = bool(g32 is not None and free.any() and np.any(g32[free] != 0))
    if g32 is not None and free.any() and not nonzero:
        issues.append("its gradient is all zero (declare it if that is mathematically so)")
    if mask is not None and g64 is not None:
        worst = float(np.abs(g64[mask]).max())
        if worst > tol.zero_tol:
            issues.append(f"declared zero, but |gradient| reaches {worst:.3g}")
    if g32 is not None and g64 is not None:
        norm = float(np.linalg.norm(g64))
        diff = float(np.linalg.norm(g32 - g64))
        if diff > tol.agreement * norm + 1e-6:
            issues.append(f"float32 and float64 gradients disagree (relative error {diff / max(norm, 1e-30):.3g})")
    return issues, nonzero


def _pick_coordinates(g64, free, mask, rng, coordinates: int) -> list:
    """Flat indices to check: half where the gradient is non-zero, the rest at random among the
    free coordinates, plus two declared-zero ones (checked too, never skipped)."""
    flat_free = np.flatnonzero(free)
    flat_live = np.flatnonzero(free & (g64 != 0))
    picks = []
    if flat_live.size:
        picks += list(rng.choice(flat_live, size=min(flat_live.size, (coordinates + 1) // 2), replace=False))
    if flat_free.size:
        rest = np.setdiff1d(flat_free, picks)
        picks += list(rng.choice(rest, size=min(rest.size, coordinates - len(picks)), replace=False))
    if mask is not None:
        flat_zero = np.flatnonzero(mask)
        picks += list(rng.choice(flat_zero, size=min(flat_zero.size, 2), replace=False))
    return picks


def _compare_with_finite_differences(picks, g64, data64, objective, tol: Tolerances) -> tuple[list, int, float]:
    """(issues, coordinates checked, worst error ratio) of the float64 gradient against central
    differences; a mismatch is measured again at a tenth of the step before it counts."""
    issues, worst_ratio = [], 0.0
    for flat_index in picks:
        index = np.unravel_index(int(flat_index), g64.shape)
        analytic = float(g64[index])
        ratio = math.inf
        for step in (tol.eps, tol.eps / 10):
            estimate = central_difference(objective, data64, index, step)
            ratio = abs(analytic - estimate) / (tol.atol + tol.rtol * max(abs(analytic), abs(estimate)))
            if ratio <= 1.0:
                break
        worst_ratio = max(worst_ratio, ratio)
        if ratio > 1.0:
            issues.append(
                f"gradient at {tuple(int(i) for i in index)} is {analytic:.6g} but finite differences "
                f"give {estimate:.6g}"
            )
    return issues, len(picks), worst_ratio
