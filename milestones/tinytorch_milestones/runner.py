"""Running milestones: options, lazy access to later stages, locked detection, results."""

from __future__ import annotations

import json
import math
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tinytorch_core import StageUnavailableError, catalog, manual_seed
from tinytorch_core.host.runtime import LOADED, default_runtime

from .conformance.integrity import GraderSnapshot
from .datasets import DataError, DataMissing
from .harness import compiling
from .idx import IDXError
from .results import Check, PartResult, finite_or_none

PASSED, FAILED, LOCKED, ERROR = "passed", "failed", "locked", "error"
DEFAULT_SEED = 0


@dataclass
class RunOptions:
    """What a milestone's ``run(options)`` receives."""

    seed: int = DEFAULT_SEED
    mnist_dir: str | None = None
    cifar_dir: str | None = None
    runtime: object = None  # a tinytorch Runtime; None: the default one
    progress: Callable | None = None  # progress(label, total) -> context manager with .advance(loss)
    shared: dict = field(default_factory=dict)  # results one milestone leaves for another (MLP -> CNN)
    compile: bool = False  # train through tinytorch_core.compile (acceleration stage): harness.compiling

    def symbols(self) -> "Symbols":
        return Symbols(self.runtime or default_runtime())


class Symbols:
    """``tt.nn.Linear``, ``tt.optim.Adam``, ``tt.ops.cross_entropy``: resolved through the registry
    when a milestone runs (never at import), so a missing stage makes the milestone locked."""

    def __init__(self, runtime):
        self.runtime = runtime
        for namespace in catalog.NAMESPACES:
            setattr(self, namespace, runtime.namespace(namespace))


@dataclass
class MilestoneOutcome:
    """What a milestone's ``run`` returns: its trained parts and any milestone-level checks."""

    parts: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    data: str = ""
    samples: list = field(default_factory=list)  # generated text to show
    headline: int = -1  # index of the part whose metric is the milestone's headline number
    figures: list = field(default_factory=list)  # rows (dicts) of a table of measured figures


@dataclass
class MilestoneResult:
    name: str
    year: int
    title: str
    requires: tuple
    status: str
    time_s: float = 0.0
    parts: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    data: str = ""
    samples: list = field(default_factory=list)
    locked_reason: str = ""
    install: str = ""
    error: str = ""
    headline: int = -1
    figures: list = field(default_factory=list)
    #: "distribution version" of the plugin that provided each stage the milestone ran on
    providers: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in (FAILED, ERROR)

    def all_checks(self) -> list:
        out = [(part.label, c) for part in self.parts for c in part.checks]
        out += [("milestone", c) for c in self.checks]
        return out

    def headline_metric(self):
        """The milestone's main number: the metric of its headline part (the last by default)."""
        return self.parts[self.headline].metric if self.parts else math.nan

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "year": self.year,
            "title": self.title,
            "requires": list(self.requires),
            "status": self.status,
            "headline_metric": finite_or_none(self.headline_metric()) if self.parts else None,
            "time_s": round(self.time_s, 3),
            "data": self.data,
            "parts": [p.to_dict() for p in self.parts],
            "checks": [c.to_dict() for c in self.checks],
            "samples": list(self.samples),
            "figures": [dict(row) for row in self.figures],
            "locked_reason": self.locked_reason,
            "install": self.install,
            "error": self.error,
            "providers": dict(self.providers),
        }


def lock_state(milestone, runtime) -> tuple[str, str]:
    """("", "") if every stage the milestone needs is loaded, else (reason, install command).

    The install command installs every missing stage with its prerequisites.
    """
    missing = []
    for stage in milestone.requires:
        for pkg in catalog.prerequisites(stage):
            if pkg.name == "core" or not pkg.is_stage:
                continue
            status, record = runtime.stage_status(pkg.name)
            if status != LOADED and pkg not in [m[0] for m in missing]:
                missing.append((pkg, status, record.reason if record is not None else ""))
    if not missing:
        return "", ""
    missing.sort(key=lambda m: m[0].order)
    reason = "; ".join(
        f"stage '{pkg.name}' is {status}" + (f" ({why})" if why else "") for pkg, status, why in missing
    )
    return reason, catalog.install_command(*(pkg.name for pkg, _, _ in missing))


def run_milestone(milestone, options: RunOptions) -> MilestoneResult:
    """Run one milestone with every check; a locked milestone is reported, never passed."""
    runtime = options.runtime or default_runtime()
    result = MilestoneResult(milestone.name, milestone.year, milestone.title, tuple(milestone.requires), LOCKED)
    reason, install = lock_state(milestone, runtime)
    if reason:
        result.locked_reason, result.install = reason, install
        return result
    for stage in milestone.requires:  # whatever provides the stage: the reference, or a learner's own
        _, record = runtime.stage_status(stage)
        result.providers[stage] = f"{record.distribution} {record.version}"
    start = time.perf_counter()
    manual_seed(options.seed)  # any random source a stage draws without an explicit generator
    try:
        with compiling(options.compile):
            outcome = milestone.run(options)
    except StageUnavailableError as exc:  # a stage vanished or lacks a symbol: locked, not passed
        result.status = LOCKED
        result.locked_reason = str(exc)
        stage = getattr(exc, "stage", None)
        result.install = catalog.install_command(stage) if stage and catalog.get(stage) else ""
        result.time_s = time.perf_counter() - start
        return result
    except DataMissing as exc:  # data this machine lacks: locked with the reason, like a missing stage
        result.status, result.locked_reason = LOCKED, str(exc)
        result.time_s = time.perf_counter() - start
        return result
    except (DataError, IDXError) as exc:
        result.status, result.error = ERROR, f"{type(exc).__name__}: {exc}"
        result.time_s = time.perf_counter() - start
        return result
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a crash (even a plugin's sys.exit()) is a failure with its traceback, never a pass
        result.status = ERROR
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        result.time_s = time.perf_counter() - start
        return result
    result.time_s = time.perf_counter() - start
    _record_outcome(result, outcome, milestone.name)
    return result


def _record_outcome(result: MilestoneResult, outcome, name: str) -> None:
    """Copy what a milestone's run returned into its result and judge it; a malformed outcome (a
    plugin's milestone, say) is an error row, and the other milestones still run and report."""
    if not isinstance(outcome, MilestoneOutcome):
        result.status = ERROR
        result.error = f"TypeError: milestone '{name}' returned {type(outcome).__name__}; its run must return a MilestoneOutcome"
        return
    try:
        parts, checks, samples, figures = (list(outcome.parts), list(outcome.checks), list(outcome.samples),
                                           list(outcome.figures))
        problem = _outcome_problem(parts, checks, samples, figures, outcome)
    except Exception as exc:  # an iterable that raises, a part whose checks are not Checks ...
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        result.status = ERROR
        result.error = f"TypeError: milestone '{name}' returned a malformed MilestoneOutcome: {problem}"
        return
    result.parts, result.checks, result.samples, result.figures = parts, checks, samples, figures
    result.data, result.headline = outcome.data, outcome.headline
    ok = bool(parts) and all(p.passed for p in parts) and all(c.passed for c in checks)
    result.status = PASSED if ok else FAILED


def _outcome_problem(parts: list, checks: list, samples: list, figures: list, outcome) -> str:
    """What is malformed in an outcome, or "" (every field of the type the report and JSON read)."""
    if not all(isinstance(part, PartResult) for part in parts):
        return "parts must be PartResult objects"
    if not all(isinstance(check, Check) for part in parts for check in [*checks, *part.checks]):
        return "checks must be Check objects"
    if not all(isinstance(check.passed, (bool, np.bool_)) for part in parts for check in [*checks, *part.checks]):
        return "each Check's passed must be True or False"
    if not isinstance(outcome.data, str) or not all(isinstance(sample, str) for sample in samples):
        return "data and samples must be text"
    if not all(isinstance(row, dict) for row in figures):
        return "figures must be rows of a table (dicts)"
    if type(outcome.headline) is not int or not -1 <= outcome.headline < max(len(parts), 1):
        return f"headline must be the index of a part or -1, got {outcome.headline!r}"
    json.dumps([part.to_dict() for part in parts] + [check.to_dict() for check in checks] + figures)  # the --json report
    return ""


def ordered_milestones(runtime) -> list:
    return sorted(runtime.milestones.values(), key=lambda m: (m.order, m.year, m.name))


#: the runner as written, taken when it is first imported, before a plugin can wrap its functions
#: (``milestones run``/``verify`` refuse to report results when it changed since; see conformance.integrity)
RUNNER = GraderSnapshot(sys.modules[__name__])
