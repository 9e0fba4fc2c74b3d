"""Gradient recording switch: ``no_grad()`` and ``enable_grad()``.

Grad mode belongs to a thread, as in PyTorch: ``no_grad()`` in one thread never turns recording
off in another, so two threads can each train their own model. ``GradMode`` is a
``threading.local``: every thread that reads ``GradMode.enabled`` sees its own flag, which starts
out True. Both managers work as context managers and as decorators.
"""

from __future__ import annotations

import functools
import threading


class _GradMode(threading.local):
    """The recording switch of the calling thread (``__init__`` runs once in every thread that
    touches it, so each thread starts with recording on)."""

    def __init__(self):
        self.enabled = True


GradMode = _GradMode()


class _ModeSwitch:
    """A context manager (and decorator) that sets one per-thread flag and restores it after."""

    _mode = GradMode
    _target: bool

    def __enter__(self):
        self._previous = self._mode.enabled
        self._mode.enabled = self._target
        return self

    def __exit__(self, *exc_info):
        self._mode.enabled = self._previous
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

    _target = False


class enable_grad(_ModeSwitch):
    """Turn recording back on inside a ``no_grad`` region."""

    _target = True


def is_grad_enabled() -> bool:
    return GradMode.enabled
