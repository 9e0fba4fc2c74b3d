"""TinyTorch stage 5, profiling: measure before you optimize.

Reach it as ``tinytorch_core.profiler``: ``profile`` (time, FLOPs and memory of every op call,
forward and backward), ``record`` (named ranges), ``summary`` (a model's layers, parameters,
FLOPs and activation memory), ``benchmark`` and ``compare`` (timings with confidence intervals).
"""

from .benchmark import BenchmarkResult, Comparison, benchmark, compare
from .profiler import Event, Profiler, profile, record
from .summary import ModelSummary, summary

__all__ = ["BenchmarkResult", "Comparison", "Event", "ModelSummary", "Profiler", "benchmark", "compare",
           "profile", "record", "summary"]
