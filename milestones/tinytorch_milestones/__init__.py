"""TinyTorch milestone suite: Perceptron 1957, XOR 1969, MLP 1986, CNN 1998, Transformer 2017.

``tinytorch milestones verify`` trains each milestone whose stages are installed and checks that
every parameter gets a correct gradient, every parameter moves, the loss falls and the accuracy
bar holds. This package depends on core only; later stages are reached through the registry.
"""

from .harness import Bars, Check, Experiment, GradientReport, check_gradient_flow, run_experiment
from .idx import IDXError, load_mnist, read_idx, write_idx
from .runner import MilestoneResult, RunOptions, run_milestone

__all__ = [
    "Bars", "Check", "Experiment", "GradientReport", "IDXError", "MilestoneResult", "RunOptions",
    "check_gradient_flow", "load_mnist", "read_idx", "run_experiment", "run_milestone", "write_idx",
]
