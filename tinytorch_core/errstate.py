"""Floating-point warnings off inside ops: IEEE results, as PyTorch gives them.

``log(0)`` is ``-inf`` and ``inf - inf`` is NaN, with no ``RuntimeWarning`` (finding the first
NaN is anomaly mode's job). ``Function.apply`` runs every forward, the engine every backward
pass and the optimizers every step between::

    token = set_errstate(IGNORE_FLOATING_POINT_ERRORS)
    try:
        ...
    finally:
        reset_errstate(token)
"""

from __future__ import annotations

import numpy

try:  # NumPy 2: the error state is a context variable, set directly (``with np.errstate(...)``
    # is the same thing wrapped in a context manager, at ten times the cost of a small op)
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    IGNORE_FLOATING_POINT_ERRORS = _make_extobj(all="ignore")
    set_errstate = _extobj_contextvar.set
    reset_errstate = _extobj_contextvar.reset
    current_errstate = _extobj_contextvar.get  # IGNORE_FLOATING_POINT_ERRORS itself inside an op or a step
except ImportError:  # NumPy 1.x: the public per-thread setting
    IGNORE_FLOATING_POINT_ERRORS = {"all": "ignore"}

    def set_errstate(settings):
        """Apply ``settings``; returns the previous ones, for ``reset_errstate``."""
        return numpy.seterr(**settings)

    def reset_errstate(previous) -> None:
        numpy.seterr(**previous)

    def current_errstate():
        return numpy.geterr()
