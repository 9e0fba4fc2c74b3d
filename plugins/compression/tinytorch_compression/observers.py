"""Observers: watch a tensor's values during calibration and choose its scale and zero point.

Each observer reduces what it sees to a range [low, high], per tensor or, with ``axis``, per
channel along that axis; ``calculate_qparams()`` turns the range into (scale, zero_point)
(``integer.qparams_from_range``). They differ in how the range follows the batches:

- ``MinMaxObserver``: the smallest and largest value ever seen;
- ``MovingAverageMinMaxObserver``: each batch's min and max, averaged with weight
  ``averaging_constant`` (a few outliers in one batch move the range little);
- ``PercentileObserver``: each batch's ``percentile`` (and ``100 - percentile``), averaged over
  the batches: the rare extreme values are clipped, so the common ones get finer steps.

The range seen so far is the observer's state, kept in buffers (PyTorch's names): ``min_val`` and
``max_val``, +inf and -inf until the first batch (per channel: no channel until then), and the
percentile observer's ``num_batches``. A ``FakeQuantize`` layer's calibration therefore travels
with the model's state dict: a quantization-aware checkpoint evaluates the same after loading.
"""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_core import Module, Tensor
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
        # the empty range: nothing is below +inf or above -inf; per channel, the channels are not known yet
        empty = () if axis is None else (0,)
        self.register_buffer("min_val", Tensor(np.full(empty, np.inf), dtype=np.float64))
        self.register_buffer("max_val", Tensor(np.full(empty, -np.inf), dtype=np.float64))

    @property
    def low(self):
        """The low end of the range seen so far (per channel: one per channel), None before any batch."""
        observed = self._observed_range()
        return None if observed is None else observed[0]

    @property
    def high(self):
        """The high end of the range seen so far, None before any batch."""
        observed = self._observed_range()
        return None if observed is None else observed[1]

    def _observed_range(self):
        """(low, high) as float64 arrays, or None while the range is empty. A state dict may have set
        the buffers to anything: a range with NaN, inf or its low end above its high end is refused."""
        low, high = self.min_val.data, self.max_val.data
        if low.size == 0 or (np.all(low == np.inf) and np.all(high == -np.inf)):
            return None
        if low.shape != high.shape or not (np.isfinite(low).all() and np.isfinite(high).all() and np.all(low <= high)):
            raise ValueError(
                f"{type(self).__name__}: the stored range min_val {low} / max_val {high} is no range of observed "
                "values (expected finite values, min_val <= max_val, one shape): a damaged or hand-edited state dict?"
            )
        return low.astype(np.float64), high.astype(np.float64)

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
        observed = self._observed_range()
        if observed is not None and np.shape(low) != observed[0].shape:
            raise ValueError(f"{type(self).__name__}: observed {observed[0].shape} channels before, "
                             f"now {np.shape(low)}")
        self._store(*self._merged(observed, low, high))

    def _merged(self, observed, low, high):
        """The new range from the one ``observed`` so far (None: nothing yet) and this batch's."""
        raise NotImplementedError

    def _store(self, low, high) -> None:
        """Write the range into the buffers: in place where the shape stays (an optimizer or a
        compiled step holding them sees the change), a new buffer when the channels first appear."""
        for name, value in (("min_val", low), ("max_val", high)):
            buffer = getattr(self, name)
            if buffer.shape == np.shape(value):
                buffer.copy_(np.asarray(value, dtype=buffer.dtype))
            else:
                setattr(self, name, Tensor(np.asarray(value, np.float64), dtype=np.float64))

    def calculate_qparams(self):
        """(scale, zero_point): float32 and int32, scalars per tensor, 1-D arrays per channel."""
        observed = self._observed_range()
        if observed is None:
            raise RuntimeError(f"{type(self).__name__}: no values observed yet; call it on calibration data first "
                               "(a checkpoint holds the range as min_val / max_val; one loaded with strict=False "
                               "may have had none)")
        scale, zero_point = qparams_from_range(*observed, self.symmetric)
        if self.axis is None:
            return float(scale), int(zero_point)
        return scale, zero_point

    def extra_repr(self) -> str:
        return f"symmetric={self.symmetric}, axis={self.axis}"


class MinMaxObserver(_Observer):
    """The range is the smallest and the largest value seen in every batch so far."""

    def _merged(self, observed, low, high):
        if observed is None:
            return low, high
        return np.minimum(observed[0], low), np.maximum(observed[1], high)


class MovingAverageMinMaxObserver(_Observer):
    """The range follows each batch's min and max: ``low += c * (batch_min - low)`` (same for high)."""

    def __init__(self, averaging_constant: float = 0.01, symmetric: bool = False, axis=None):
        super().__init__(symmetric, axis)
        if not 0.0 < _real(averaging_constant, "averaging_constant", type(self).__name__) <= 1.0:
            raise ValueError(f"MovingAverageMinMaxObserver: averaging_constant must be in (0, 1], "
                             f"got {averaging_constant!r}")
        self.averaging_constant = float(averaging_constant)

    def _merged(self, observed, low, high):
        if observed is None:  # the first batch sets the range
            return low, high
        (old_low, old_high), c = observed, self.averaging_constant
        return old_low + c * (low - old_low), old_high + c * (high - old_high)


class PercentileObserver(_Observer):
    """The range is the mean over batches of each batch's ``100 - percentile`` and ``percentile``
    percentiles: values beyond are clipped when quantized."""

    def __init__(self, percentile: float = 99.99, symmetric: bool = False, axis=None):
        super().__init__(symmetric, axis)
        if not 50.0 < _real(percentile, "percentile", type(self).__name__) <= 100.0:
            raise ValueError(f"PercentileObserver: percentile must be in (50, 100], got {percentile!r}")
        self.percentile = float(percentile)
        self.register_buffer("num_batches", Tensor(np.array(0, np.int64)))  # the running mean's count

    @property
    def batches(self) -> int:
        """How many batches the running mean holds."""
        return int(self.num_batches.data)

    def _batch_range(self, array, axes):
        low, high = np.percentile(array, [100.0 - self.percentile, self.percentile], axis=axes)
        return low, high

    def _merged(self, observed, low, high):
        if observed is not None and self.batches < 1:
            raise ValueError(f"PercentileObserver: a range observed over {self.batches} batches (num_batches); "
                             "expected at least 1: a damaged or hand-edited state dict?")
        batches = 1 if observed is None else self.batches + 1  # a count without a range starts over
        self.num_batches.copy_(np.array(batches, np.int64))
        if observed is None:
            return low, high
        (old_low, old_high), weight = observed, 1.0 / batches  # running mean over the batches
        return old_low + weight * (low - old_low), old_high + weight * (high - old_high)


def _real(value, what: str, where: str) -> float:
    """``value`` as a float, if it is a real number (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)
