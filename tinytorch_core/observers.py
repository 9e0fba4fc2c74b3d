"""The seam a profiler uses to watch the engine work.

An *observer* is told when each op runs (its forward in ``Function.apply``, its backward in the
engine), when each ``Module`` is called, when a backward pass starts and ends, and when an
optimizer changes tensors outside the graph, in the thread that installed it (``with observing(observer): ...``). Core only reports; what to measure is
the observer's business: the profiling stage's profiler records times, FLOPs and memory.

With no observer installed, the usual case, each seam costs one attribute read and a comparison
with None. Every ``*_started`` returns a token that the matching ``*_finished`` gets back, also
when a forward raises (with no outputs). A backward that raises ends its whole pass, and an op
refused before its forward runs (a bad keyword argument) reports nothing more: an observer
closes such an op when it closes the module or pass around it.
"""

from __future__ import annotations

import contextlib

from .grad_mode import current_modes

#: the two phases an op runs in
FORWARD, BACKWARD = "forward", "backward"


class Observer:
    """Base class of observers: override what you watch; the rest does nothing."""

    def op_started(self, function: type, phase: str):
        """``function`` (a ``Function`` subclass) starts its ``phase``: FORWARD or BACKWARD."""

    def forward_finished(self, token, ctx, inputs: list, options: dict, outputs) -> None:
        """The forward of ``op_started`` returned. ``ctx`` is the call's context (its graph node
        if recorded), ``inputs`` the arrays and values forward ran on, ``options`` its keyword
        arguments, ``outputs`` the Tensor or tuple of Tensors the op returns (None: forward raised)."""

    def backward_finished(self, token, node, output_grads: list, input_grads: tuple) -> None:
        """The backward of ``op_started`` returned: ``output_grads`` are the gradients of the
        node's outputs, ``input_grads`` what it returned (None where no gradient is needed)."""

    def module_started(self, module):
        """``module`` is called; ``module_finished`` follows even if its forward raises."""

    def module_finished(self, token, output) -> None:
        """The module of ``module_started`` returned ``output`` (None if it raised)."""

    def pass_started(self, name: str):
        """A backward pass (``name`` is "backward") starts."""

    def pass_finished(self, token) -> None:
        """The pass of ``pass_started`` ended (also when it raised)."""

    def update_called(self, function, args: tuple) -> None:
        """``function(*args)`` is about to change tensors outside the graph (an optimizer's
        ``step`` or ``zero_grad``, ``clip_grad_norm_``, ``Module.zero_grad``): a recorder of
        training steps (the acceleration stage) replays the call; a profiler may ignore it."""

    def update_finished(self) -> None:
        """The call of the last ``update_called`` returned (not called when it raised)."""

    def value_read(self, tensor) -> None:
        """Python read ``tensor``'s values (``item()``, ``bool()``, ``tolist()``, ``numpy()``): a
        recorder of training steps cannot follow a decision made on them."""

    def data_read(self, tensor) -> None:
        """Code outside ops took ``tensor``'s array (``checks.array_of``: a loss's class weights,
        say) to compute an op's argument: a recorder keeps such an argument as a constant, valid
        while the tensor is unchanged."""


def report_value_read(tensor) -> None:
    """Tell the calling thread's observer, if any, that Python read ``tensor``'s values."""
    observer = current_modes().observer
    if observer is not None:
        observer.value_read(tensor)


def report_data_read(tensor) -> None:
    """Tell the calling thread's observer, if any, that code outside ops took ``tensor``'s array."""
    observer = current_modes().observer
    if observer is not None:
        observer.data_read(tensor)


@contextlib.contextmanager
def observing(observer: Observer):
    """Install ``observer`` for the calling thread inside the ``with`` block; the one it replaces
    (None, or an outer observer) comes back on exit."""
    if not isinstance(observer, Observer):
        raise TypeError(f"observing() expects an Observer, got {type(observer).__name__}")
    modes = current_modes()
    previous, modes.observer = modes.observer, observer
    try:
        yield observer
    finally:
        modes.observer = previous
