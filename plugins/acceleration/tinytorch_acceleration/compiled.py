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
parameter's array changed shape or dtype or its requires_grad changed, a module's setting
changed (``loss.reduction``), or a tensor whose array code outside ops read (a loss's class
weights) changed. With anomaly detection on, or an observer installed (a profiler), every call
runs eagerly: a replay checks nothing and reports nothing.

Arguments may be nested in tuples, lists and dicts (``step(batch)`` with ``batch = (x, y)``) and
passed by keyword: the Tensors and arrays inside are the call's inputs, the structure is part of
the signature. A replay skips the checks the step's functions make on values (a class index out
of range, a token id past the vocabulary), so integer inputs replay only while their values stay
within the range the recorded calls saw; any other value runs the step eagerly, which checks it
(and, if it passes, widens the range). A step whose integer inputs are valid over a known
range (token ids below the vocabulary size, positions below the context) declares it with
``integer_ranges``: values inside it replay from the first recording on.
"""

from __future__ import annotations

import functools
import inspect
import numbers

import numpy as np

from tinytorch_core import Tensor, is_grad_enabled, observing
from tinytorch_core.grad_mode import current_modes
from tinytorch_core.module import MODULE_CLOCK
from tinytorch_core.module_hooks import FORWARD_HOOK_CLOCK

from .errors import CompileError
from .recorder import Recorder

#: signatures kept per compiled step (a loop over many batch sizes records each, keeps the latest)
MAX_PROGRAMS = 8


def compile(train_step=None, *, verify: bool = True, integer_ranges=None):  # noqa: A001 (PyTorch's name)
    """Return ``train_step`` compiled: same results, bitwise, with the per-op Python work gone.

    ``train_step(*args)`` does one step (forward, loss, ``backward()``, ``optimizer.step()``,
    ``zero_grad()``) and returns None, the loss tensor or ``loss.item()``. Usable as a decorator
    (``@compile``). ``verify=False`` replays from the second call (skips the second recording,
    and with it the check for data-dependent steps).

    ``integer_ranges``: ``{parameter name: (low, high)}``, the values for which the step's
    integer inputs in that argument pass every check the step makes (``{"token_ids": (0,
    vocab_size - 1)}``). Such inputs replay whenever their values lie in that range, instead of
    only within the values the recordings saw. Declaring a range the step does not accept lets
    a replay skip a check it needed: declare only what the step's own checks allow.
    """
    if not isinstance(verify, bool):
        raise TypeError(f"compile: verify must be True or False, got {verify!r}")
    if train_step is None:
        return functools.partial(compile, verify=verify, integer_ranges=integer_ranges)
    if not callable(train_step):
        raise TypeError(f"compile: expected a function (the training step), got {type(train_step).__name__}")
    return CompiledStep(train_step, verify=verify, integer_ranges=integer_ranges)


class _Entry:
    """The program of one signature, the module clock after its last call, the forward-hook clock
    before its recording, whether a second recording confirmed it, and the range of values of
    each integer input its recordings saw."""

    __slots__ = ("program", "clock", "hooks_clock", "verified", "bounds")

    def __init__(self, program, clock, hooks_clock, verified, bounds):
        self.program, self.clock, self.hooks_clock = program, clock, hooks_clock
        self.verified, self.bounds = verified, bounds

    def current(self) -> bool:
        """No module changed since the last call, and no forward hook came or went since the
        recording (a hook added while a replay ran, or by the recorded call itself, included)."""
        return self.clock == MODULE_CLOCK.now and self.hooks_clock == FORWARD_HOOK_CLOCK.now

    def covers(self, inputs: list) -> bool:
        """Whether every integer input lies within the values recorded (so the step's checks passed)."""
        for index, (low, high) in self.bounds.items():
            array = _array(inputs[index])
            if array.size and (low is None or array.min() < low or array.max() > high):
                return False
        return True


class CompiledStep:
    """A training step that records itself on its first calls and replays afterwards."""

    def __init__(self, train_step, verify: bool = True, integer_ranges=None):
        self.train_step = train_step
        self.verify = verify
        self.integer_ranges = _check_integer_ranges(integer_ranges, train_step)
        self.programs: dict = {}  # signature -> _Entry
        self.recordings = 0  # eager, recorded calls so far (a test reads it)
        self.replays = 0
        self._last_call = None  # (args, inputs, what each input was, key) of the last call: see _same_call
        functools.update_wrapper(self, train_step)

    def __call__(self, *args, **kwargs):
        modes = current_modes()
        if modes.anomaly or modes.observer is not None:  # checked, watched (a profiler) or inside a recording
            return self.train_step(*args, **kwargs)  # eager: the checks run and the observer sees every op
        key, inputs = self._same_call(args) if not kwargs else (None, None)
        if key is None:
            key, inputs = signature(args, kwargs)
            self._remember(args, kwargs, inputs, key)
        entry = self.programs.get(key)
        if entry is not None and entry.verified and entry.current():
            if not entry.covers(inputs):  # a value the recordings never saw: run (and check) it eagerly
                return self._record(key, entry, args, kwargs, inputs)
            slots = entry.program.bind(inputs)
            if slots is not None:
                self.replays += 1
                value = entry.program.replay(slots)
                entry.clock = MODULE_CLOCK.now  # hooks that ran (a module's own bookkeeping) are part of the step
                return value
            entry = None  # a parameter changed shape, dtype or requires_grad: record again
        if entry is not None and (not entry.current() or entry.program.bind(inputs) is None):
            entry = None  # the first recording no longer fits (a parameter frozen or unfrozen since): start again
        return self._record(key, entry, args, kwargs, inputs)

    def _remember(self, args: tuple, kwargs: dict, inputs: list, key) -> None:
        """Keep this call for ``_same_call``; its inputs' state only when it repeated the last
        call's objects (a loop over new batch tensors never pays for it)."""
        last = self._last_call
        flat = not kwargs and not any(isinstance(a, (list, tuple, dict)) for a in args)  # containers may change inside
        repeated = (flat and last is not None and len(args) == len(last[0])
                    and all(a is b for a, b in zip(args, last[0])))
        self._last_call = (args, inputs, [_input_state(i) for i in inputs] if repeated else None, key) if flat else None

    def _same_call(self, args: tuple):
        """The last call's ``(key, inputs)`` when this one passes the very same objects (no lists,
        tuples or dicts, whose items may change), each input with the same array, shape, dtype and
        requires_grad, in the same grad mode (fast path: -8 % of a compiled W1 step, -4 % of W3);
        ``(None, None)`` otherwise."""
        last = self._last_call
        if last is None or len(args) != len(last[0]) or any(a is not b for a, b in zip(args, last[0])):
            return None, None
        _, inputs, states, key = last
        if states is None or key[0] != is_grad_enabled() \
                or any(_input_state(i) != state for i, state in zip(inputs, states)):
            return None, None
        return key, inputs

    def _record(self, key, entry, args, kwargs, inputs):
        """An eager call under the recorder; the second for a signature confirms the first."""
        recorder, hooks_clock = Recorder(inputs), FORWARD_HOOK_CLOCK.now
        with observing(recorder):
            value = self.train_step(*args, **kwargs)
        program = recorder.program(value)
        self.recordings += 1
        if entry is not None and not _same(entry.program.description, program.description):
            raise CompileError(
                f"compile: two calls of {getattr(self.train_step, '__name__', 'the step')} with the same "
                "argument shapes ran different work (different ops, wiring or constants). The step "
                "depends on its data in a way a replay cannot follow (Python control flow on values, "
                "a dropout mask or other arrays computed outside ops); run it eagerly. This call ran "
                "eagerly to the end: its update is applied, do not repeat it"
            )
        if len(self.programs) >= MAX_PROGRAMS and key not in self.programs:
            self.programs.pop(next(iter(self.programs)))
        bounds = _integer_bounds(inputs, entry.bounds if entry is not None else {})
        if self.integer_ranges:
            bounds.update(self._declared_bounds(args, kwargs, inputs))
        # the clock after the call: only a change between calls records again, not what the step itself did
        self.programs[key] = _Entry(program, MODULE_CLOCK.now, hooks_clock, entry is not None or not self.verify, bounds)
        return value

    def _declared_bounds(self, args: tuple, kwargs: dict, inputs: list) -> dict:
        """input index -> the declared (low, high) of each integer input inside an argument named
        in ``integer_ranges`` (inputs are numbered in the order ``signature`` collects them)."""
        names = _parameter_names(self.train_step, len(args)) + list(kwargs)
        declared, index = {}, 0
        for name, value in zip(names, (*args, *kwargs.values())):
            found: list = []
            _argument_key(value, found)
            if name in self.integer_ranges:
                for position in range(index, index + len(found)):
                    if _array(inputs[position]).dtype.kind in "iu":
                        declared[position] = self.integer_ranges[name]
            index += len(found)
        return declared

    def __repr__(self) -> str:
        name = getattr(self.train_step, "__name__", repr(self.train_step))
        return f"<compiled {name}: {len(self.programs)} program(s), {self.recordings} recordings, {self.replays} replays>"


def signature(args: tuple, kwargs: dict) -> tuple[tuple, list]:
    """What a program is valid for, and the call's inputs, in one walk over the arguments.

    The key: grad mode, and per argument its shape/dtype/requires_grad (Tensors, arrays), its
    value (numbers, strings), its items (tuples, lists, dicts) or its identity (anything else:
    the model, the optimizer). The inputs: the Tensors and arrays met on the way, in order."""
    inputs: list = []
    key = (is_grad_enabled(), *[_argument_key(arg, inputs) for arg in args],
           tuple((name, _argument_key(value, inputs)) for name, value in kwargs.items()))
    return key, inputs


def _argument_key(arg, inputs: list):
    if isinstance(arg, Tensor):
        inputs.append(arg)
        return arg.data.shape, arg.data.dtype, arg.requires_grad
    if isinstance(arg, np.ndarray):
        inputs.append(arg)
        return "array", arg.shape, arg.dtype
    if arg is None or isinstance(arg, (bool, int, float, str, np.generic)):
        return type(arg), arg
    if isinstance(arg, (tuple, list)):  # a new (x, y) batch each call: its items count, not its identity
        return type(arg), tuple([_argument_key(item, inputs) for item in arg])
    if isinstance(arg, dict):
        return dict, tuple([(name, _argument_key(value, inputs)) for name, value in arg.items()])
    return "object", id(arg)


def _input_state(value) -> tuple:
    """What the signature reads of one input: its array's identity, shape, dtype, requires_grad."""
    array = value.data if isinstance(value, Tensor) else value
    return id(array), array.shape, array.dtype, getattr(value, "requires_grad", False)


def _array(value) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else value


def _check_integer_ranges(integer_ranges, train_step) -> dict:
    """``integer_ranges`` as ``{name: (low, high)}`` of Python ints, after checking it."""
    if integer_ranges is None:
        return {}
    if not isinstance(integer_ranges, dict):
        raise TypeError(f"compile: integer_ranges must be a dict {{parameter name: (low, high)}}, got "
                        f"{type(integer_ranges).__name__}")
    try:
        parameters = inspect.signature(train_step).parameters
    except (TypeError, ValueError):  # a builtin or C function: names cannot be checked
        parameters = None
    if parameters is not None and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        parameters = None  # **kwargs takes any name
    checked = {}
    for name, bounds in integer_ranges.items():
        if parameters is not None and name not in parameters:
            raise ValueError(f"compile: integer_ranges names {name!r}, which is not a parameter of the step "
                             f"(its parameters: {list(parameters)})")
        if not (isinstance(bounds, tuple) and len(bounds) == 2
                and all(isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in bounds)
                and bounds[0] <= bounds[1]):
            raise ValueError(f"compile: integer_ranges[{name!r}] must be a tuple (low, high) of ints with "
                             f"low <= high, got {bounds!r}")
        checked[name] = (int(bounds[0]), int(bounds[1]))
    return checked


def _parameter_names(train_step, count: int) -> list:
    """The names of the step's first ``count`` positional parameters (``*args`` repeats its name)."""
    try:
        parameters = list(inspect.signature(train_step).parameters.values())
    except (TypeError, ValueError):
        return [None] * count
    names = []
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return names + [parameter.name] * (count - len(names))
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.append(parameter.name)
    return (names + [None] * count)[:count]


def _integer_bounds(inputs: list, before: dict) -> dict:
    """input index -> (lowest, highest) value of each integer input, widened by this call's
    (None while only empty arrays came)."""
    bounds = {}
    for index, value in enumerate(inputs):
        array = _array(value)
        if array.dtype.kind not in "iu":
            continue
        low, high = before.get(index, (None, None))
        if array.size:  # as Python ints: compared on every replay
            low = int(array.min()) if low is None else min(low, int(array.min()))
            high = int(array.max()) if high is None else max(high, int(array.max()))
        bounds[index] = (low, high)
    return bounds


def _same(a, b) -> bool:
    """Two descriptions are the same (``==``, but NaN constants equal themselves via bytes)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
