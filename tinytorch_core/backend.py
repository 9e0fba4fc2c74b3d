"""The one place kernels get their array module from.

Kernels call ``array_module(x)`` instead of importing ``numpy`` where they create
arrays, so that a GPU array backend (CuPy-like) can be added later as a plugin
without rewriting kernels. Today every array is a NumPy array.
"""

from __future__ import annotations

import numpy

ndarray = numpy.ndarray


def array_module(*arrays):
    """Return the array module that owns ``arrays`` (NumPy for now)."""
    return numpy


def is_floating(dtype) -> bool:
    return numpy.issubdtype(dtype, numpy.floating)
