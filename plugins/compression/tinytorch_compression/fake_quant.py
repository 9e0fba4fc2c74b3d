"""Fake quantization for quantization-aware training: round to the int8 grid, stay in float.

``fake_quantize(x, scale, zero_point)`` is ``scale * (clamp(round(x / scale) + zero_point) - zero_point)``:
the value the int8 model will compute with, as a float, so training sees the rounding error.

Its gradients:

- ``x``: rounding is flat almost everywhere, so its true derivative is 0 and would stop all
  learning. The *straight-through estimator* passes the gradient through unchanged where ``x``
  lands inside the int8 range, and blocks it where the clamp cuts ``x`` off: the derivative of
  ``clamp(x, scale * (qmin - zero_point), scale * (qmax - zero_point))``, the function that fake
  quantization rounds.
- ``scale``: between two rounding steps the code ``q`` is constant, so the output
  ``scale * (q - zero_point)`` has the exact derivative ``q - zero_point``, which finite
  differences confirm (gradient-checked on samples away from the rounding steps).
"""

from __future__ import annotations

import numpy as np

import numbers

from tinytorch_core import Function, Module, Sample, Tensor
from tinytorch_core.checks import array_of

from .integer import AFFINE_RANGE, SYMMETRIC_RANGE, _along, channel_axis, checked_scale, checked_zero_point
from .observers import MovingAverageMinMaxObserver, _Observer

__all__ = ["FakeQuantize", "FakeQuantizeFunction", "fake_quantize", "fake_quantize_samples"]


class FakeQuantizeFunction(Function):
    """Round ``x`` to the int8 grid of ``scale`` and ``zero_point`` (per tensor, or per channel along ``axis``)."""

    @staticmethod
    def forward(ctx, x, scale, zero_point=0, quant_min=-128, quant_max=127, axis=None):
        dtype = x.dtype  # the scale never changes x's dtype (a float64 0-d scale included)
        step, offset = _along(scale, x.ndim, axis), _along(zero_point, x.ndim, axis)
        unclamped = np.rint(x / step) + offset
        codes = np.clip(unclamped, quant_min, quant_max)
        ctx.save_for_backward(codes - offset, (unclamped >= quant_min) & (unclamped <= quant_max))
        ctx.scale_shape, ctx.axis = np.shape(scale), axis
        return ((codes - offset) * step).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        steps, inside = ctx.saved_tensors
        need_x, need_scale = ctx.needs_input_grad[:2]
        grad_x = grad * inside if need_x else None  # straight through, inside the range
        grad_scale = None
        if need_scale:
            per_entry = grad * steps  # d out / d scale = q - zero_point
            if ctx.axis is None:
                grad_scale = per_entry.sum().reshape(ctx.scale_shape)
            else:
                axis = ctx.axis % grad.ndim
                grad_scale = per_entry.sum(axis=tuple(a for a in range(grad.ndim) if a != axis))
        return grad_x, grad_scale, None  # zero_point: an integer, no gradient


def fake_quantize(x, scale, zero_point=0, quant_min=-128, quant_max=127, axis=None):
    """``scale * (clamp(round(x / scale) + zero_point, quant_min, quant_max) - zero_point)``, in
    ``x``'s float dtype, differentiable (see the module docstring). ``scale`` (positive) and
    ``zero_point`` (integer) are numbers, or 1-D with one entry per index of ``axis``."""
    where = "fake_quantize"
    array = array_of(x)
    if array.dtype.kind != "f":
        raise TypeError(f"{where}: expected a floating-point x, got dtype {array.dtype}")
    for name, bound in (("quant_min", quant_min), ("quant_max", quant_max)):
        if isinstance(bound, bool) or not isinstance(bound, numbers.Integral):
            raise TypeError(f"{where}: {name} must be an int (a code), got {bound!r}")
    if not quant_min < quant_max:
        raise ValueError(f"{where}: quant_min ({quant_min}) must be below quant_max ({quant_max})")
    checked_scale(scale, where)
    checked_zero_point(zero_point, (quant_min, quant_max), where)
    axis = channel_axis(axis, array.ndim, where)
    for name, value in (("scale", scale), ("zero_point", zero_point)):
        _check_qparam_shape(name, np.shape(array_of(value)), array.shape, axis)
    x = x if isinstance(x, Tensor) else array  # a list becomes the array it stands for
    return FakeQuantizeFunction.apply(x, scale, zero_point, quant_min=int(quant_min), quant_max=int(quant_max),
                                      axis=axis)


def _check_qparam_shape(name: str, shape: tuple, x_shape: tuple, axis) -> None:
    """Per tensor: one value; per channel: one value, or one per index of ``axis``."""
    if axis is None and shape != ():
        raise ValueError(f"fake_quantize: per-tensor {name} must be one number, got shape {shape} "
                         "(pass axis= for per channel)")
    if axis is not None and shape not in ((), (x_shape[axis],)):
        raise ValueError(f"fake_quantize: per-channel {name} along axis {axis} must have shape "
                         f"({x_shape[axis]},), got {shape}")


def fake_quantize_samples(rng):
    """Where both gradients are the true ones: ``x`` clamped on both sides (flat: gradient 0 by
    either rule), and ``x`` inside the range a quarter step from any rounding boundary (finite
    differences of 1e-6 cross none), passed as a constant Tensor: there only the scale's gradient
    is a true derivative; the straight-through one of ``x`` is tested against its definition."""
    codes = rng.integers(-100, 100, size=(3, 4)).astype(np.float64)
    yield Sample(np.sign(codes + 0.5) * 40.0 + codes, np.array(0.1), 3)  # |x / scale| >= 300: clamped
    yield Sample(Tensor((codes + 0.25) * 0.1, dtype=np.float64), np.array(0.1), 3)
    scales = np.array([0.1, 0.2, 0.05])  # per row (axis 0)
    yield Sample(Tensor((codes + 0.25) * scales[:, None], dtype=np.float64), scales, np.array([0, 5, -3]), axis=0)


class FakeQuantize(Module):
    """A layer for quantization-aware training: in training mode it observes its input
    (``observer``, a moving-average min-max by default) and fake-quantizes it with the observed
    scale and zero point; in eval mode it uses the last ones without observing."""

    def __init__(self, observer=None):
        super().__init__()
        self.observer = observer if observer is not None else MovingAverageMinMaxObserver()
        if not isinstance(self.observer, _Observer):
            kind = f"the class {observer.__name__}" if isinstance(observer, type) else type(observer).__name__
            raise TypeError(f"FakeQuantize: observer must be an observer instance (e.g. MinMaxObserver()), "
                            f"got {kind}")

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"FakeQuantize: expected a Tensor, got {type(x).__name__}")
        if self.training:
            self.observer(x)
        scale, zero_point = self.observer.calculate_qparams()
        quant_min, quant_max = SYMMETRIC_RANGE if self.observer.symmetric else AFFINE_RANGE
        step = Tensor(np.asarray(scale, dtype=x.dtype))  # a constant: the observer, not SGD, sets it
        return fake_quantize(x, step, zero_point, quant_min, quant_max, self.observer.axis)
