"""Honest timings: many runs after a warm-up, the median with a bootstrap confidence interval,
and comparisons that interleave the two sides so machine noise hits both alike.

Why the median: a timing's noise is one-sided (a run is slowed by the machine, never sped up),
so the mean drifts with every hiccup while the median stays with the typical run. Why a
confidence interval: one median of noisy runs is itself noisy; resampling the runs (the
bootstrap) shows how far it could move, and a claim of "faster" must hold across that range.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass

import numpy as np

from tinytorch_core.checks import non_negative_int, positive_int

#: resamples of the bootstrap, and the most resampled indices held in memory at once
RESAMPLES, RESAMPLE_CHUNK = 2000, 1_000_000
#: the most timed runs one benchmark keeps (bounds its memory)
RUNS_LIMIT = 1_000_000
#: the most untimed warm-up runs (bounds the time: a warm-up has no deadline to stop it)
WARMUP_LIMIT = 1_000_000
#: rounds a comparison needs before it may call one side faster: with n rounds all favouring one
#: side, the sign test's two-sided p is 2 / 2**n, below 0.05 only from n = 6 on
MIN_ROUNDS_FOR_VERDICT = 6


@dataclass(frozen=True)
class BenchmarkResult:
    """The timed runs of one function, in seconds."""

    label: str
    times: np.ndarray
    ci95: tuple[float, float]  # bootstrap 95 % interval of the median

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def runs(self) -> int:
        return len(self.times)

    @property
    def spread(self) -> tuple[float, float]:
        """The middle half of the runs: the 25th and 75th percentiles."""
        low, high = np.percentile(self.times, [25, 75])
        return float(low), float(high)

    def __str__(self) -> str:
        low, high = self.ci95
        q1, q3 = self.spread
        return (f"{self.label}: median {_time(self.median)} (95 % CI {_time(low)} to {_time(high)}), "
                f"middle half {_time(q1)} to {_time(q3)}, {self.runs} runs")


@dataclass(frozen=True)
class Comparison:
    """``b`` against ``a``: the ratio of medians b / a (below 1: b is faster) and its interval."""

    a: BenchmarkResult
    b: BenchmarkResult
    ratio: float
    ci95: tuple[float, float]

    @property
    def b_is_faster(self) -> bool | None:
        """True or False when the whole interval says so; None when it straddles 1, or when too
        few rounds ran for any interval to exclude chance (``MIN_ROUNDS_FOR_VERDICT``)."""
        if self.a.runs < MIN_ROUNDS_FOR_VERDICT:
            return None
        low, high = self.ci95
        return True if high < 1 else False if low > 1 else None

    def __str__(self) -> str:
        low, high = self.ci95
        verdict = {True: f"{self.b.label} is faster ({1 / self.ratio:.2f}x)",
                   False: f"{self.b.label} is slower ({self.ratio:.2f}x the time)",
                   None: "no difference beyond the noise"}[self.b_is_faster]
        if self.a.runs < MIN_ROUNDS_FOR_VERDICT:
            verdict = f"too few rounds ({self.a.runs}) to tell; at least {MIN_ROUNDS_FOR_VERDICT} are needed"
        return (f"{self.b.label} / {self.a.label} = {self.ratio:.3f} (95 % CI {low:.3f} to {high:.3f}): {verdict}\n"
                f"  {self.a}\n  {self.b}")


def benchmark(fn, *, warmup: int = 3, min_time: float = 1.0, min_runs: int = 10, max_runs: int = 10_000,
              label: str | None = None, seed: int = 0) -> BenchmarkResult:
    """Call ``fn()`` ``warmup`` times untimed, then time it until both ``min_runs`` runs and
    ``min_time`` seconds are done (at most ``max_runs`` runs). ``warmup`` and ``max_runs`` are
    at most ``WARMUP_LIMIT`` and ``RUNS_LIMIT``: neither has a deadline that would stop it."""
    _check_plan("benchmark", fn, warmup, min_time, min_runs, max_runs, seed)
    if label is not None and not isinstance(label, str):
        raise TypeError(f"benchmark(): label must be a str, got {type(label).__name__}")
    for _ in range(warmup):
        fn()
    times, deadline = [], time.perf_counter() + min_time
    while len(times) < min_runs or (len(times) < max_runs and time.perf_counter() < deadline):
        times.append(_timed(fn))
    times = np.array(times)
    rng = np.random.default_rng(seed)
    return BenchmarkResult(label or getattr(fn, "__name__", "fn"), times, _interval(_bootstrap(times, rng)))


def compare(a, b, *, warmup: int = 3, min_time: float = 2.0, min_runs: int = 10, max_runs: int = 10_000,
            labels: tuple[str, str] = ("a", "b"), seed: int = 0) -> Comparison:
    """Time ``a()`` and ``b()`` in interleaved rounds (a b, then b a, ...) so that a slow moment
    of the machine hits both; the ratio's interval resamples whole rounds."""
    _check_plan("compare", a, warmup, min_time, min_runs, max_runs, seed)
    _check_plan("compare", b, warmup, min_time, min_runs, max_runs, seed)
    if not (isinstance(labels, (tuple, list)) and len(labels) == 2 and all(isinstance(x, str) for x in labels)):
        raise TypeError(f"compare(): labels must be two strings, got {labels!r}")
    for _ in range(warmup):
        a(), b()
    times_a, times_b, deadline = [], [], time.perf_counter() + min_time
    while len(times_a) < min_runs or (len(times_a) < max_runs and time.perf_counter() < deadline):
        if len(times_a) % 2 == 0:
            times_a.append(_timed(a))
            times_b.append(_timed(b))
        else:  # every other round b goes first: a drift in speed does not favour one side
            times_b.append(_timed(b))
            times_a.append(_timed(a))
    times_a, times_b = np.array(times_a), np.array(times_b)
    rng = np.random.default_rng(seed)
    medians_a, medians_b = _bootstrap_paired(times_a, times_b, rng)
    result_a = BenchmarkResult(labels[0], times_a, _interval(medians_a))
    result_b = BenchmarkResult(labels[1], times_b, _interval(medians_b))
    return Comparison(result_a, result_b, result_b.median / result_a.median, _interval(medians_b / medians_a))


# ---- the steps -----------------------------------------------------------------------------------
def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _bootstrap(times: np.ndarray, rng) -> np.ndarray:
    """The medians of ``RESAMPLES`` resamples (with replacement) of ``times``."""
    return _bootstrap_paired(times, times, rng)[0]


def _bootstrap_paired(times_a: np.ndarray, times_b: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Medians of resampled rounds: each resample draws round indices once for both sides.
    Resamples are drawn in chunks so memory stays bounded whatever the number of runs."""
    n = len(times_a)
    per_chunk = max(1, RESAMPLE_CHUNK // n)
    medians_a, medians_b = [], []
    for start in range(0, RESAMPLES, per_chunk):
        rounds = rng.integers(0, n, size=(min(per_chunk, RESAMPLES - start), n))
        medians_a.append(np.median(times_a[rounds], axis=1))
        medians_b.append(np.median(times_b[rounds], axis=1))
    return np.concatenate(medians_a), np.concatenate(medians_b)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def _check_plan(where: str, fn, warmup, min_time, min_runs, max_runs, seed) -> None:
    where = f"{where}()"
    if not callable(fn):
        raise TypeError(f"{where}: expected a function to time, got {type(fn).__name__}")
    non_negative_int(warmup, "warmup", where)
    positive_int(min_runs, "min_runs", where)
    positive_int(max_runs, "max_runs", where)
    if seed is not None:  # the bootstrap's resampling; None draws fresh entropy
        non_negative_int(seed, "seed", where)
    if warmup > WARMUP_LIMIT:
        raise ValueError(f"{where}: warmup must be at most {WARMUP_LIMIT:,}, got {warmup:,}")
    if max_runs > RUNS_LIMIT:
        raise ValueError(f"{where}: max_runs must be at most {RUNS_LIMIT:,}, got {max_runs:,}")
    if max_runs < min_runs:
        raise ValueError(f"{where}: max_runs ({max_runs}) must be at least min_runs ({min_runs})")
    if isinstance(min_time, bool) or not isinstance(min_time, numbers.Real) or not 0 <= min_time < float("inf"):
        raise ValueError(f"{where}: min_time must be a finite number of seconds >= 0, got {min_time!r}")


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.0f} ns"
