"""What a milestone's verification reports: one ``Check`` per claim, a ``GradientReport`` of the
gradient-flow check, and a ``PartResult`` per trained model. Each has ``to_dict()`` for JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


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
            "max_error_ratio": finite_or_none(self.max_error),
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
            "loss_float32": finite_or_none(self.loss32),
            "loss_float64": finite_or_none(self.loss64),
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
                "first": finite_or_none(self.loss_first),
                "last": finite_or_none(self.loss_last),
                "drop": finite_or_none(self.loss_drop),
            },
            "metric": {"name": self.metric_name, "value": finite_or_none(self.metric)},
            "bars": dict(self.bars),
            "steps": self.steps,
            "time_s": round(self.time_s, 3),
            "checks": [c.to_dict() for c in self.checks],
            "curves": {k: [finite_or_none(v) for v in vs] for k, vs in self.curves.items()},
            "notes": list(self.notes),
        }


def finite_or_none(value):
    """JSON has no NaN: NaN/inf become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
