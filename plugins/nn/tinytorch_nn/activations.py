"""Activation ops: ReLU, LeakyReLU, sigmoid, tanh, GELU, softmax and log-softmax.

Each is one ``Function`` whose backward differentiates its own forward formula. The formulas
are the numerically stable ones: nothing overflows or warns for inputs of +-1000, and
float32 stays float32.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinytorch_core import Function
from tinytorch_core import flops as count  # FLOP formulas
from tinytorch_core.checks import axis_or_dim, computed_in_float32, normalize_axis, not_floating, shape_of

from .special import erfc


def softmax_flops(call) -> int:
    """Five FLOPs per element: the max, subtracting it, exp, the sum, and the divide (or log)."""
    return 5 * call.output_size()

# ---- ReLU and LeakyReLU ----------------------------------------------------------------------
class ReLUFunction(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * ~(out <= 0)  # not (out > 0): a NaN passes its gradient on, as in PyTorch


def relu(x):
    """``max(x, 0)``; the gradient at exactly 0 is taken as 0."""
    return ReLUFunction.apply(x)


class LeakyReLUFunction(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.negative_slope = negative_slope
        return np.where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad, grad * ctx.negative_slope), None  # None: negative_slope


def leaky_relu(x, negative_slope=0.01):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    if not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {type(negative_slope).__name__}")
    return LeakyReLUFunction.apply(x, float(negative_slope))


# ---- sigmoid and tanh ------------------------------------------------------------------------
def exp_neg_abs(x):
    """``exp(-|x|)``: in (0, 1] for every x, so it never overflows."""
    return np.exp(-np.abs(x))


def stable_sigmoid(x):
    """``1 / (1 + exp(-x))`` as ``exp(min(x, 0)) / (1 + exp(-|x|))``: that is ``1 / (1 + e)``
    for x >= 0 and ``e / (1 + e)`` for x < 0 (``e = exp(-|x|)``). Neither exp can overflow
    (their arguments are <= 0) and neither form subtracts nearly equal numbers, so both tails
    keep their relative precision, down to subnormal results."""
    return np.exp(np.minimum(x, 0)) / (1 + exp_neg_abs(x))


class SigmoidFunction(Function):
    """``1 / (1 + exp(-x))`` in the overflow-free form of ``stable_sigmoid``.

    Backward ``s (1 - s)``, as in PyTorch: zero where s rounds to 1 (x above about 17 in
    float32, 37 in float64).
    """

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        s = stable_sigmoid(x)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved_tensors
        return grad * s * (1 - s)


def sigmoid(x):
    return SigmoidFunction.apply(x)


class TanhFunction(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


def tanh(x):
    return TanhFunction.apply(x)


# ---- GELU ------------------------------------------------------------------------------------
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


class GELUFunction(Function):
    """GELU, ``x * Phi(x)``. ``approximate='none'``: the exact normal CDF via erfc;
    ``'tanh'``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``. Each backward
    differentiates its own forward formula."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, x, approximate="none"):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        ctx.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        # Phi(x) = erfc(-x / sqrt 2) / 2 keeps full relative precision in the left tail
        cdf = 0.5 * erfc(-_SQRT_HALF * x)
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, grad):
        if ctx.approximate == "tanh":
            x, t = ctx.saved_tensors
            # d/dx [0.5 x (1 + t)] = 0.5 (1 + t) + 0.5 x (1 - t^2) * sqrt(2/pi) (1 + 3 c x^2)
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner), None  # None: approximate
        x, cdf = ctx.saved_tensors
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        return grad * (cdf + x * pdf), None


def gelu(x, approximate="none"):
    """Gaussian error linear unit; ``approximate`` is ``'none'`` (exact erf form) or ``'tanh'``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELUFunction.apply(x, approximate)


# ---- softmax and log-softmax -----------------------------------------------------------------
class SoftmaxFunction(Function):
    """``exp(x) / sum(exp(x))`` along ``axis``; backward ``y * (g - sum(g * y))``."""

    flops = staticmethod(softmax_flops)

    @staticmethod
    def forward(ctx, x, axis=-1):
        e = np.exp(_shifted_by_max(ctx, x, axis))
        y = (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype, copy=False)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True)), None  # None: axis


def _shifted_by_max(ctx, x, axis):
    """``x`` minus its maximum along ``axis`` (floating point only): ``exp`` of it never
    overflows, and softmax and log-softmax are unchanged by the shift."""
    if x.dtype.kind != "f":
        raise not_floating(ctx, x)
    x = computed_in_float32(x)  # float16: the sum of exps works in float32
    return x - x.max(axis=axis, keepdims=True, initial=-np.inf)  # initial: an empty axis has max -inf, not an error


def class_axis(x, axis, dim, where: str) -> int:
    """The one axis softmax-like ops normalise over: ``axis`` or its PyTorch name ``dim``. Without
    one, the last axis up to 2-D (PyTorch's implicit choice too); from 3-D on PyTorch's implicit
    choice is another axis (0 for 3-D, 1 for 4-D), so the axis must be given."""
    axis, ndim = axis_or_dim(axis, dim, where), len(shape_of(x))
    if axis is None and ndim >= 3:
        raise ValueError(f"{where}: give the axis (dim=...) for an input of {ndim} dimensions; without one, "
                         "PyTorch would pick dim 0 for 3-D and dim 1 from 4-D on, not the last axis")
    return normalize_axis(-1 if axis is None else axis, ndim, where)


def softmax(x, axis=None, dim=None):
    """``exp(x) / sum(exp(x))`` along ``axis`` (or ``dim``, PyTorch's name; see ``class_axis`` for
    the default), computed after subtracting the maximum."""
    return SoftmaxFunction.apply(x, class_axis(x, axis, dim, "softmax"))


class LogSoftmaxFunction(Function):
    """``x - logsumexp(x)`` along ``axis``; backward ``g - softmax(x) * sum(g)``."""

    flops = staticmethod(softmax_flops)

    @staticmethod
    def forward(ctx, x, axis=-1):
        shifted = _shifted_by_max(ctx, x, axis)
        out = (shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(x.dtype, copy=False)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - np.exp(out) * grad.sum(axis=ctx.axis, keepdims=True), None  # None: axis


def log_softmax(x, axis=None, dim=None):
    """``x - logsumexp(x)`` along ``axis`` (or ``dim``; see ``class_axis`` for the default), stable
    for very negative or very large logits."""
    return LogSoftmaxFunction.apply(x, class_axis(x, axis, dim, "log_softmax"))
