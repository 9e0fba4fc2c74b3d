"""The two ops of this plugin, each one ``Function`` with a hand-written backward.

- ``swish(x, beta)``: ``x * sigmoid(beta * x)``. ``beta`` is a number, or a tensor that
  broadcasts against ``x`` (a learnable slope, one per channel if you like) and then gets a
  gradient of its own.
- ``depthwise_conv2d(x, weight, bias)``: every input channel convolved with its own
  ``multiplier`` filters, as a grouped convolution with ``groups == in_channels``. The kernel
  works on strided windows (``sliding_window_view``): no Python loop over the batch, the
  channels, the pixels or the kernel taps.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch_core import Function, Tensor
from tinytorch_core.checks import dtype_of, not_floating, shape_of

__all__ = ["DepthwiseConv2dFunction", "SwishFunction", "depthwise_conv2d", "swish"]


# ---- swish ----------------------------------------------------------------------------------------
class SwishFunction(Function):
    """``y = x * s`` with ``s = sigmoid(beta * x)``.

    ``dy/dx = s + beta * x * s * (1 - s)`` and ``dy/dbeta = x * x * s * (1 - s)``; the beta
    gradient comes back in the broadcast shape and the engine sums it down to beta's shape.
    """

    @staticmethod
    def forward(ctx, x, beta):
        for operand in (x, np.asarray(beta)):
            if operand.dtype.kind != "f":
                raise not_floating(ctx, operand)
        # sigmoid through tanh: no overflow and no warning for any input
        t = np.tanh(0.5 * (beta * x))
        y = x * (0.5 + 0.5 * t)
        ctx.save_for_backward(x, beta, t)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, beta, t = ctx.saved_tensors
        need_x, need_beta = ctx.needs_input_grad
        s = 0.5 + 0.5 * t
        slope = s * (0.5 - 0.5 * t)  # sigmoid'(z) = s * (1 - s), with 1 - s computed without cancellation
        grad_x = grad * (s + beta * x * slope) if need_x else None
        grad_beta = grad * (x * x * slope) if need_beta else None
        return grad_x, grad_beta


def _array_shape(value, where: str) -> tuple:
    """The shape of a Tensor or an array; anything else (a list, a number) is refused."""
    if dtype_of(value) is None:
        raise TypeError(f"{where}: expected a Tensor or an array, got {type(value).__name__}")
    return shape_of(value)


def swish(x, beta=1.0):
    """``x * sigmoid(beta * x)`` elementwise (SiLU for ``beta = 1``).

    ``beta``: a finite number, or a Tensor/array broadcastable to ``x`` (differentiable when it
    requires grad).
    """
    x_shape = _array_shape(x, "swish: input")
    if isinstance(beta, (Tensor, np.ndarray)):
        try:
            np.broadcast_shapes(shape_of(beta), x_shape)
        except ValueError:
            raise ValueError(
                f"swish: beta of shape {shape_of(beta)} does not broadcast to the input's shape {x_shape}"
            ) from None
        return SwishFunction.apply(x, beta)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"swish: beta must be a number or a Tensor, got {type(beta).__name__}")
    if not math.isfinite(beta):
        raise ValueError(f"swish: beta must be finite, got {beta}")
    # a number becomes a 0-d array of the input's dtype, so float32 stays float32
    dtype = dtype_of(x)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return SwishFunction.apply(x, np.asarray(beta, dtype=dtype))


# ---- depthwise convolution ------------------------------------------------------------------------
def _pair(value, name: str, who: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{who}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{who}: {name} must be {'positive' if minimum else 'non-negative'}, got {value!r}")
    return pair


def _zero_padded(x, ph: int, pw: int):
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _windows(a, kernel, stride, dilation):
    """A view of ``a`` (..., H, W) as (..., OH, OW, kh, kw): the values under each kernel tap
    at each output position. No copy: strides only."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = sliding_window_view(a, span, axis=(-2, -1))  # every position at stride 1, full span
    return view[..., ::sh, ::sw, ::dh, ::dw]


class DepthwiseConv2dFunction(Function):
    """Depthwise 2-D cross-correlation. ``x`` (N, C, H, W), ``weight`` (C * m, 1, kh, kw),
    ``bias`` (C * m,) or None; output channel ``c * m + j`` is input channel ``c`` correlated
    with filter ``c * m + j``."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, *, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
        for operand in (x, weight):
            if operand.dtype.kind != "f":
                raise not_floating(ctx, operand)
        n, c = x.shape[:2]
        out_channels, _, kh, kw = weight.shape
        filters = weight.reshape(c, out_channels // c, kh, kw)
        x_padded = _zero_padded(x, *padding)
        taps = _windows(x_padded, (kh, kw), stride, dilation)  # (N, C, OH, OW, kh, kw)
        out = np.einsum("nchwij,cmij->ncmhw", taps, filters, optimize=True)
        out = out.reshape(n, out_channels, *out.shape[-2:])
        if bias is not None:
            out = out + bias.reshape(out_channels, 1, 1)
        ctx.save_for_backward(x_padded, weight)
        ctx.stride, ctx.padding, ctx.dilation = stride, padding, dilation
        ctx.input_hw = x.shape[2:]
        return out

    @staticmethod
    def backward(ctx, grad):
        x_padded, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        n, c, hp, wp = x_padded.shape
        out_channels, _, kh, kw = weight.shape
        m = out_channels // c
        g = grad.reshape(n, c, m, *grad.shape[2:])  # (N, C, m, OH, OW)
        grad_x = grad_weight = grad_bias = None
        if need_weight:
            taps = _windows(x_padded, (kh, kw), ctx.stride, ctx.dilation)
            grad_weight = np.einsum("nchwij,ncmhw->cmij", taps, g, optimize=True).reshape(weight.shape)
        if need_bias:
            grad_bias = grad.sum(axis=(0, 2, 3))
        if need_x:
            grad_x = _input_gradient(g, weight.reshape(c, m, kh, kw), (hp, wp), ctx)
        return grad_x, grad_weight, grad_bias


def _input_gradient(g, filters, padded_hw, ctx):
    """d(loss)/d(x): a stride-1 correlation of the output gradient, spread out by the stride,
    with the flipped filters (a transposed convolution), cropped back to the unpadded input.

    ``grad_padded[p] = sum over o, i with o * stride + i * dilation = p of g[o] * w[i]``.
    """
    n, c, m, oh, ow = g.shape
    kh, kw = filters.shape[-2:]
    (sh, sw), (dh, dw), (ph, pw) = ctx.stride, ctx.dilation, ctx.padding
    hp, wp = padded_hw
    lead_h, lead_w = dh * (kh - 1), dw * (kw - 1)
    # zeros between (stride) and before (kernel span - 1) the gradient values; trailing zeros up to the
    # padded size stand for input rows and columns no window reached
    spread = np.zeros((n, c, m, hp + lead_h, wp + lead_w), dtype=g.dtype)
    spread[..., lead_h : lead_h + sh * (oh - 1) + 1 : sh, lead_w : lead_w + sw * (ow - 1) + 1 : sw] = g
    taps = _windows(spread, (kh, kw), (1, 1), (dh, dw))  # (N, C, m, Hp, Wp, kh, kw)
    grad_padded = np.einsum("ncmhwij,cmij->nchw", taps, filters[:, :, ::-1, ::-1], optimize=True)
    h, w = ctx.input_hw
    return grad_padded[:, :, ph : ph + h, pw : pw + w]


def depthwise_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, *, _who: str = "depthwise_conv2d"):
    """Depthwise 2-D convolution of NCHW ``x`` with ``weight`` (C * multiplier, 1, kh, kw).

    ``stride``, ``padding`` (zeros) and ``dilation`` are ints or (h, w) pairs. Returns
    (N, C * multiplier, OH, OW), like a PyTorch ``conv2d`` with ``groups = C``.
    """
    who = _who
    xs, ws = _array_shape(x, who), _array_shape(weight, who)
    if len(xs) != 4:
        raise ValueError(f"{who}: expected a 4-D input (N, C, H, W), got shape {xs}")
    if len(ws) != 4 or ws[1] != 1 or ws[0] == 0 or ws[0] % xs[1]:
        raise ValueError(
            f"{who}: weight must have shape (C * multiplier, 1, kh, kw) with C = {xs[1]} input channels, "
            f"got {ws}"
        )
    if min(ws[2:]) < 1:
        raise ValueError(f"{who}: the weight {ws} has an empty kernel")
    if bias is not None:
        bs = _array_shape(bias, who)
        if bs != (ws[0],):
            raise ValueError(f"{who}: bias must have shape ({ws[0]},) for weight {ws}, got {bs}")
    stride = _pair(stride, "stride", who, 1)
    padding = _pair(padding, "padding", who, 0)
    dilation = _pair(dilation, "dilation", who, 1)
    for size, k, p, d in zip(xs[2:], ws[2:], padding, dilation):
        if d * (k - 1) + 1 > size + 2 * p:
            raise ValueError(
                f"{who}: kernel {ws[2]}x{ws[3]} (dilation {dilation}) spans more than the padded input "
                f"{xs[2] + 2 * padding[0]}x{xs[3] + 2 * padding[1]} (input shape {xs}, padding {padding})"
            )
    return DepthwiseConv2dFunction.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
