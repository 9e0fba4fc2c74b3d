"""Per-thread modes: gradient recording (``no_grad()``, ``enable_grad()``), anomaly checks, and
the observer (a profiler) watching the thread's ops (``observers.py``).

Modes belong to a thread, as in PyTorch: ``no_grad()`` in one thread never turns recording off
in another, so two threads can each train their own model. Each thread gets its own ``Modes``
object the first time it asks (a ``threading.local`` holds it); ``Function.apply`` fetches it
once per op and then reads and flips plain attributes, which costs far less than going through
the thread-local on every access.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading


class Modes:
    """The switches of one thread: ``grad`` (record the graph), ``anomaly`` (check every op's
    outputs for NaN/Inf; starts from ``TINYTORCH_DETECT_ANOMALY``) and ``observer`` (None, or
    the object told about every op and module call: see ``observers.py``), and, during a backward
    pass, ``pass_callbacks``: what runs when the pass ends (``engine.queue_callback``)."""

    __slots__ = ("grad", "anomaly", "observer", "pass_callbacks")

    def __init__(self):
        self.grad = True
        self.anomaly = os.environ.get("TINYTORCH_DETECT_ANOMALY", "") not in ("", "0")
        self.observer = None
        self.pass_callbacks = None  # a list while a backward pass runs


class _PerThread(threading.local):
    def __init__(self):  # runs once in every thread that touches it
        self.modes = Modes()


_per_thread = _PerThread()


def current_modes() -> Modes:
    """The calling thread's modes."""
    return _per_thread.modes


class _ModeSwitch:
    """A context manager (and decorator) that sets one mode of the calling thread and restores
    it on exit."""

    _mode: str  # the Modes attribute it sets
    _target: bool

    def __new__(cls, function=None):
        switch = super().__new__(cls)
        return switch if function is None else switch(function)  # @no_grad without parentheses, as in PyTorch

    def __enter__(self):
        modes = _per_thread.modes
        self._previous = getattr(modes, self._mode)
        setattr(modes, self._mode, self._target)
        return self

    def __exit__(self, *exc_info):
        setattr(_per_thread.modes, self._mode, self._previous)
        return False

    def __call__(self, fn):
        switch = type(self)
        if inspect.isgeneratorfunction(fn):
            return _switched_generator(fn, switch)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with switch():  # a fresh switch per call keeps nested/recursive use correct
                return fn(*args, **kwargs)

        return wrapper


def _switched_generator(fn, switch):
    """A generator function whose body runs under ``switch()`` each time it resumes, and the
    caller's mode in between (calling a generator function runs none of its body yet)."""

    @functools.wraps(fn)
    def generator(*args, **kwargs):
        inner = fn(*args, **kwargs)
        try:
            with switch():
                value = inner.send(None)
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    with switch():
                        inner.close()
                    raise
                except BaseException as exc:  # thrown in by the caller: into the body, under the mode
                    with switch():
                        value = inner.throw(exc)
                else:
                    with switch():
                        value = inner.send(sent)
        except StopIteration as stop:
            return stop.value

    return generator


class no_grad(_ModeSwitch):
    """Results computed inside record no graph and never require grad."""

    _mode = "grad"
    _target = False


class enable_grad(_ModeSwitch):
    """Turn recording back on inside a ``no_grad`` region."""

    _mode = "grad"
    _target = True


class set_grad_enabled(_ModeSwitch):
    """``set_grad_enabled(False)`` is ``no_grad()``, ``True`` is ``enable_grad()`` (``with
    set_grad_enabled(training):``). As in PyTorch, the mode is set at once, so a plain call
    ``set_grad_enabled(False)`` switches recording off until switched back."""

    _mode = "grad"

    def __new__(cls, mode):
        if not isinstance(mode, bool):  # "False" would read as True
            raise TypeError(f"set_grad_enabled: mode must be True or False, got {mode!r}")
        switch = object.__new__(cls)
        switch._target, switch._previous = mode, _per_thread.modes.grad
        _per_thread.modes.grad = mode
        return switch

    def __enter__(self):
        return self  # the mode is already set

    def __call__(self, fn):
        _per_thread.modes.grad = self._previous  # decorating: the mode applies inside calls only
        return (enable_grad() if self._target else no_grad())(fn)


def is_grad_enabled() -> bool:
    return _per_thread.modes.grad
