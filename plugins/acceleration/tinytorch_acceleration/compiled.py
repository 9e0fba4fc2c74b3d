"""``compile(train_step)``: run a training step eagerly twice, then replay its kernels.

A compiled step keeps one program per *signature* of its call: the shape, dtype and
requires_grad of every Tensor or array argument, the identity of every other object (the model,
the optimizer), the value of every number, and grad mode. For a new signature:

1. call 1 runs eagerly under a ``Recorder`` (recorder.py) and writes a program;
2. call 2 runs eagerly and is recorded again: both programs must be the same (same ops, same
   wiring, same constants), otherwise the step depends on its data in a way a replay cannot
   follow (Python ``if`` on a value, a mask drawn outside an op) and ``CompileError`` says so;
3. every later call replays the program (program.py): the same kernels on the new arrays,
   with no Tensors, graph nodes, validation or engine work.

A program is recorded again (steps 1-2) when the call's signature is new, when any module's
parameters, buffers, sub-modules or training mode changed since (``MODULE_CLOCK``), or when a
parameter's array changed shape or dtype or its requires_grad changed. With anomaly detection
on, every call runs eagerly (a replay checks nothing).
"""

from __future__ import annotations

import functools

import numpy as np

from tinytorch_core import Tensor, is_grad_enabled, observing
from tinytorch_core.grad_mode import current_modes
from tinytorch_core.module import MODULE_CLOCK

from .errors import CompileError
from .recorder import Recorder

#: signatures kept per compiled step (a loop over many batch sizes records each, keeps the latest)
MAX_PROGRAMS = 8


def compile(train_step=None, *, verify: bool = True):  # noqa: A001 (PyTorch's name)
    """Return ``train_step`` compiled: same results, bitwise, with the per-op Python work gone.

    ``train_step(*args)`` does one step (forward, loss, ``backward()``, ``optimizer.step()``,
    ``zero_grad()``) and returns None, the loss tensor or ``loss.item()``. Usable as a decorator
    (``@compile``). ``verify=False`` replays from the second call (skips the second recording,
    and with it the check for data-dependent steps).
    """
    if train_step is None:
        return functools.partial(compile, verify=verify)
    if not callable(train_step):
        raise TypeError(f"compile: expected a function (the training step), got {type(train_step).__name__}")
    return CompiledStep(train_step, verify=verify)


class _Entry:
    """The program of one signature, the clock it was recorded at, and whether a second
    recording confirmed it."""

    __slots__ = ("program", "clock", "verified")

    def __init__(self, program, clock, verified):
        self.program, self.clock, self.verified = program, clock, verified


class CompiledStep:
    """A training step that records itself on its first calls and replays afterwards."""

    def __init__(self, train_step, verify: bool = True):
        self.train_step = train_step
        self.verify = verify
        self.programs: dict = {}  # signature -> _Entry
        self.recordings = 0  # eager, recorded calls so far (a test reads it)
        self.replays = 0
        functools.update_wrapper(self, train_step)

    def __call__(self, *args):
        if current_modes().anomaly:
            return self.train_step(*args)
        key = signature(args)
        entry = self.programs.get(key)
        if entry is not None and entry.verified and entry.clock == MODULE_CLOCK.now:
            slots = entry.program.bind(args)
            if slots is not None:
                self.replays += 1
                return entry.program.replay(slots)
            entry = None  # a parameter changed shape, dtype or requires_grad: record again
        if entry is not None and entry.clock != MODULE_CLOCK.now:
            entry = None
        return self._record(key, entry, args)

    def _record(self, key, entry, args):
        """An eager call under the recorder; the second for a signature confirms the first."""
        clock = MODULE_CLOCK.now
        recorder = Recorder(args)
        with observing(recorder):
            value = self.train_step(*args)
        program = recorder.program(value)
        self.recordings += 1
        if entry is not None and not _same(entry.program.description, program.description):
            raise CompileError(
                f"compile: two calls of {getattr(self.train_step, '__name__', 'the step')} with the same "
                "argument shapes ran different work (different ops, wiring or constants). The step "
                "depends on its data in a way a replay cannot follow (Python control flow on values, "
                "a dropout mask or other arrays computed outside ops); run it eagerly"
            )
        if len(self.programs) >= MAX_PROGRAMS and key not in self.programs:
            self.programs.pop(next(iter(self.programs)))
        self.programs[key] = _Entry(program, clock, verified=entry is not None or not self.verify)
        return value

    def __repr__(self) -> str:
        name = getattr(self.train_step, "__name__", repr(self.train_step))
        return f"<compiled {name}: {len(self.programs)} program(s), {self.recordings} recordings, {self.replays} replays>"


def signature(args: tuple) -> tuple:
    """What a program is valid for: grad mode, and per argument its shape/dtype/requires_grad
    (Tensors, arrays), its value (numbers, strings) or its identity (anything else)."""
    return (is_grad_enabled(), *map(_argument_key, args))


def _argument_key(arg):
    if isinstance(arg, Tensor):
        return arg.data.shape, arg.data.dtype, arg.requires_grad
    if isinstance(arg, np.ndarray):
        return "array", arg.shape, arg.dtype
    if arg is None or isinstance(arg, (bool, int, float, str)):
        return type(arg), arg
    return "object", id(arg)


def _same(a, b) -> bool:
    """Two descriptions are the same (``==``, but NaN constants equal themselves via bytes)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
