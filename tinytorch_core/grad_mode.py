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

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with switch():  # a fresh switch per call keeps nested/recursive use correct
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_ModeSwitch):
    """Results computed inside record no graph and never require grad."""

    _mode = "grad"
    _target = False


class enable_grad(_ModeSwitch):
    """Turn recording back on inside a ``no_grad`` region."""

    _mode = "grad"
    _target = True


def is_grad_enabled() -> bool:
    return _per_thread.modes.grad
