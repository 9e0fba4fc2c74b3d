"""Gradient recording switch: ``no_grad()`` and ``enable_grad()``.

A single process-wide flag keeps the check in ``Function.apply`` to one attribute
read. Both managers work as context managers and as decorators.
"""

from __future__ import annotations

import functools


class _GradMode:
    """The process-wide recording switch. An attribute of one instance, not of a class:
    ``apply`` flips it around every forward, and assigning a class attribute costs more (it
    invalidates the interpreter's caches of everything looked up on that class)."""

    __slots__ = ("enabled",)

    def __init__(self):
        self.enabled = True


GradMode = _GradMode()


class _GradModeSwitch:
    _target: bool

    def __enter__(self):
        self._previous = GradMode.enabled
        GradMode.enabled = self._target
        return self

    def __exit__(self, *exc_info):
        GradMode.enabled = self._previous
        return False

    def __call__(self, fn):
        switch = type(self)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with switch():  # a fresh switch per call keeps nested/recursive use correct
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeSwitch):
    """Results computed inside record no graph and never require grad."""

    _target = False


class enable_grad(_GradModeSwitch):
    """Turn recording back on inside a ``no_grad`` region."""

    _target = True


def is_grad_enabled() -> bool:
    return GradMode.enabled
