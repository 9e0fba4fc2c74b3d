"""TinyTorch stage 6, acceleration: capture a training step once, replay it at NumPy speed.

Reach it as ``tinytorch_core.compile`` (or ``tinytorch_core.acceleration.compile``):
``step = tt.compile(train_step)`` runs the step eagerly on its first two calls while recording
the kernels of its forward, backward and optimizer update, then replays those kernels on later
calls with no Tensor objects, graph nodes, validation or engine work. Results are bitwise those
of the eager step. ``compiled.py`` is where to start reading; ``recorder.py`` writes a program,
``program.py`` runs it.
"""

from .compiled import CompiledStep, compile
from .errors import CompileError

__all__ = ["CompileError", "CompiledStep", "compile"]
