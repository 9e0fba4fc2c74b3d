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


_SCALARS: dict = {}


def scalar(value, dtype):
    """``value`` as a cached read-only 0-d array of ``dtype``.

    An operation between an array and a 0-d array of its own dtype skips NumPy's conversion
    and promotion of a Python number, about 0.3 us per operation: most of the cost of an
    element-wise operation on the small arrays of small models.
    """
    key = (value, dtype)
    constant = _SCALARS.get(key)
    if constant is None:
        if len(_SCALARS) > 256:  # learning-rate schedules make new values; stay bounded
            _SCALARS.clear()
        constant = _SCALARS[key] = numpy.array(value, dtype)
        constant.setflags(write=False)
    return constant


_CONSTANT_VECTORS: dict = {}


def _filled(n: int, dtype, value: float):
    """A cached read-only vector of ``n`` copies of ``value``."""
    key = (n, dtype, value)
    vector = _CONSTANT_VECTORS.get(key)
    if vector is None:
        if len(_CONSTANT_VECTORS) > 64:  # a handful of sizes in practice; stay bounded anyway
            _CONSTANT_VECTORS.clear()
        vector = _CONSTANT_VECTORS[key] = numpy.full(n, value, dtype)
        vector.setflags(write=False)
    return vector


def extremes(array):
    """``(min, max)`` of a non-empty array as Python numbers (NaN when it holds a NaN).

    ``argmin``/``argmax`` skip the ufunc-reduction machinery: about a third of the cost of
    ``array.min()`` on the small arrays that argument checks look at, and on par for big ones.
    """
    return array.item(array.argmin()), array.item(array.argmax())


def sum_all(array):
    """The sum of every element of a float array, as one BLAS dot product with a cached vector
    of ones (~0.5 us, against ~0.85 us for ``np.add.reduce`` on a small array)."""
    return numpy.vdot(array, _filled(array.size, array.dtype, 1.0))


def column_sums(matrix):
    """``matrix.sum(axis=0)`` for a 2-D array, as one matrix-vector product.

    BLAS's GEMV beats NumPy's reduction over the leading axis by 1.5-3.5x on the
    (rows, features) gradients that bias and normalisation backwards reduce.
    """
    return _filled(matrix.shape[0], matrix.dtype, 1.0) @ matrix


def row_sums(array):
    """``array.sum(axis=-1)`` as one matrix-vector product (see ``column_sums``)."""
    return array @ _filled(array.shape[-1], array.dtype, 1.0)


def row_means(array):
    """``array.mean(axis=-1)`` as one matrix-vector product with a vector of ``1/n``."""
    n = array.shape[-1]
    return array @ _filled(n, array.dtype, 1.0 / n)


# ---- floating-point warnings -----------------------------------------------------------------
# Ops follow IEEE arithmetic silently, as PyTorch does: log(0) is -inf and inf - inf is NaN,
# with no RuntimeWarning (finding the first NaN is anomaly mode's job). apply() runs every
# forward, and the engine every backward pass, with NumPy's floating-point errors ignored:
#     token = set_errstate(IGNORE_FLOATING_POINT_ERRORS) ... reset_errstate(token)
try:  # NumPy 2: the error state is a context variable; setting it directly costs ~0.1 us, where
    # ``with np.errstate(all="ignore")`` costs ~1 us, more than many small ops
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    IGNORE_FLOATING_POINT_ERRORS = _make_extobj(all="ignore")
    set_errstate = _extobj_contextvar.set
    reset_errstate = _extobj_contextvar.reset
except ImportError:  # NumPy 1.x: the public per-thread setting
    IGNORE_FLOATING_POINT_ERRORS = {"all": "ignore"}

    def set_errstate(settings):
        """Apply ``settings``; returns the previous ones, for ``reset_errstate``."""
        return numpy.seterr(**settings)

    def reset_errstate(previous) -> None:
        numpy.seterr(**previous)
