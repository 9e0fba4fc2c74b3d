"""Observers: watch a tensor's values during calibration and choose its scale and zero point.

Each observer reduces what it sees to a range [low, high], per tensor or, with ``axis``, per
channel along that axis; ``calculate_qparams()`` turns the range into (scale, zero_point)
(``integer.qparams_from_range``). They differ in how the range follows the batches:

- ``MinMaxObserver``: the smallest and largest value ever seen;
- ``MovingAverageMinMaxObserver``: each batch's min and max, averaged with weight
  ``averaging_constant`` (a few outliers in one batch move the range little);
- ``PercentileObserver``: each batch's ``percentile`` (and ``100 - percentile``), averaged over
  the batches: the rare extreme values are clipped, so the common ones get finer steps.
"""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_core import Module
from tinytorch_core.checks import array_of, normalize_axis

from .integer import qparams_from_range

__all__ = ["MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver"]


class _Observer(Module):
    """What the observers share: per-tensor or per-channel reduction, and the qparams."""

    def __init__(self, symmetric: bool = False, axis=None):
        super().__init__()
        if not isinstance(symmetric, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: symmetric must be True or False, got {symmetric!r}")
        if axis is not None and (not isinstance(axis, (int, np.integer)) or isinstance(axis, bool)):
            raise TypeError(f"{type(self).__name__}: axis must be None (per tensor) or an int, got {axis!r}")
        self.symmetric, self.axis = bool(symmetric), axis
        self.low = self.high = None  # the range seen so far (None until the first batch)

    def forward(self, x):
        """Observe ``x`` (a Tensor or array) and return it unchanged."""
        array = array_of(x)
        if array.dtype.kind != "f" or array.size == 0:
            raise TypeError(f"{type(self).__name__}: expected a non-empty float tensor, got "
                            f"dtype {array.dtype}, shape {array.shape}")
        if not np.isfinite(array).all():  # an infinite range has no finite scale; NaN has no place in one
            raise ValueError(f"{type(self).__name__}: the observed tensor of shape {array.shape} holds NaN or "
                             "inf; a quantization range needs finite values")
        self._update(*self._batch_range(array.astype(np.float64, copy=False), self._reduced_axes(array)))
        return x

    def _reduced_axes(self, array):
        """Every axis but the channel axis (per channel), or all of them (per tensor)."""
        if self.axis is None:
            return None
        keep = normalize_axis(self.axis, array.ndim, type(self).__name__)
        return tuple(a for a in range(array.ndim) if a != keep)

    def _batch_range(self, array, axes):
        return array.min(axis=axes), array.max(axis=axes)

    def _update(self, low, high):
        if self.low is not None and np.shape(low) != np.shape(self.low):
            raise ValueError(f"{type(self).__name__}: observed {np.shape(self.low)} channels before, "
                             f"now {np.shape(low)}")
        self.low, self.high = self._merged(low, high)

    def _merged(self, low, high):
        raise NotImplementedError

    def calculate_qparams(self):
        """(scale, zero_point): float32 and int32, scalars per tensor, 1-D arrays per channel."""
        if self.low is None:
            raise RuntimeError(f"{type(self).__name__}: no values observed yet; call it on calibration data first")
        scale, zero_point = qparams_from_range(self.low, self.high, self.symmetric)
        if self.axis is None:
            return float(scale), int(zero_point)
        return scale, zero_point

    def extra_repr(self) -> str:
        return f"symmetric={self.symmetric}, axis={self.axis}"


class MinMaxObserver(_Observer):
    """The range is the smallest and the largest value seen in every batch so far."""

    def _merged(self, low, high):
        if self.low is None:
            return low, high
        return np.minimum(self.low, low), np.maximum(self.high, high)


class MovingAverageMinMaxObserver(_Observer):
    """The range follows each batch's min and max: ``low += c * (batch_min - low)`` (same for high)."""

    def __init__(self, averaging_constant: float = 0.01, symmetric: bool = False, axis=None):
        super().__init__(symmetric, axis)
        if not 0.0 < _real(averaging_constant, "averaging_constant", type(self).__name__) <= 1.0:
            raise ValueError(f"MovingAverageMinMaxObserver: averaging_constant must be in (0, 1], "
                             f"got {averaging_constant!r}")
        self.averaging_constant = float(averaging_constant)

    def _merged(self, low, high):
        if self.low is None:  # the first batch sets the range
            return low, high
        c = self.averaging_constant
        return self.low + c * (low - self.low), self.high + c * (high - self.high)


class PercentileObserver(_Observer):
    """The range is the mean over batches of each batch's ``100 - percentile`` and ``percentile``
    percentiles: values beyond are clipped when quantized."""

    def __init__(self, percentile: float = 99.99, symmetric: bool = False, axis=None):
        super().__init__(symmetric, axis)
        if not 50.0 < _real(percentile, "percentile", type(self).__name__) <= 100.0:
            raise ValueError(f"PercentileObserver: percentile must be in (50, 100], got {percentile!r}")
        self.percentile = float(percentile)
        self.batches = 0

    def _batch_range(self, array, axes):
        low, high = np.percentile(array, [100.0 - self.percentile, self.percentile], axis=axes)
        return low, high

    def _merged(self, low, high):
        self.batches += 1
        if self.low is None:
            return low, high
        weight = 1.0 / self.batches  # running mean over the batches
        return self.low + weight * (low - self.low), self.high + weight * (high - self.high)


def _real(value, what: str, where: str) -> float:
    """``value`` as a float, if it is a real number (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)
