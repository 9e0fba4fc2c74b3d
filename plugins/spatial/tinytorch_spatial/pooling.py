"""Max and average pooling, one kernel offset at a time.

For a kernel offset (i, j), the pixels it sees in every window form one strided block of the
padded input (``WindowGeometry.offsets``, or all of them at once through ``windows``). Pooling
reduces over these kh*kw blocks with whole-array operations, and its backward adds each block's
gradient back where it came from (fast path: when the windows tile the input, one copy).

Max pooling works channels-last, the layout ``conv2d`` hands out: each block is then read in
runs of contiguous channels.

``ceil_mode`` (as PyTorch) keeps a last window that runs past the padded input: max pooling
fills its overhang with the lowest value, and average pooling divides such a window by the
entries it covers inside the padded input only.
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Function, squeeze, unsqueeze
from tinytorch_core.flops import OpCall
from tinytorch_core.checks import accumulator_dtype, not_floating, true_or_false

from .geometry import WindowGeometry, check_fits, check_nchw, one_image, pair

__all__ = ["MaxPool2dFunction", "AvgPool2dFunction", "max_pool2d", "avg_pool2d"]


def lowest(dtype):
    """The value that never wins a maximum: -inf for floats, the minimum for integers."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    return False


def pool2d_flops(call: OpCall) -> int:
    """One FLOP per window element read (a comparison for max, an add for average)."""
    kernel = call.options.get("kernel_size", call.inputs[1] if len(call.inputs) > 1 else (2, 2))
    return call.output_size() * kernel[0] * kernel[1]

class MaxPool2dFunction(Function):
    """Max over each window; the gradient goes to the window's first maximum.

    Padding is filled with the lowest value, so it never beats a real entry; a window whose real
    entries are all -inf sends its gradient to its first real entry (as PyTorch does). Ties go
    to the first maximum in row-major window order, so the routing is deterministic. A window
    holding NaN has a NaN maximum, and its gradient goes to its first NaN (PyTorch's choice when
    the window holds one NaN; with several, PyTorch's scan keeps the last).
    """

    flops = staticmethod(pool2d_flops)

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False):
        geo = WindowGeometry.of(x.shape, kernel_size, stride, padding, ceil_mode=ceil_mode)
        (kh, kw), (n, c, ho, wo) = geo.kernel, geo.output_shape
        windows = geo.windows(geo.pad(x, lowest(x.dtype)))  # (N, C, Ho, Wo, kh, kw), a view
        # every window's entries, one block per kernel offset, channels-last: (kh*kw, N, Ho, Wo, C)
        taps = windows.transpose(4, 5, 0, 2, 3, 1).reshape(kh * kw, n, ho, wo, c)
        best = taps.max(axis=0)
        ctx.save_for_backward(_first_maximum(taps, best, geo))
        ctx.geometry = geo
        return best.transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        (winner,) = ctx.saved_tensors
        geo = ctx.geometry
        n, c, hp, wp = geo.padded_shape
        grad = grad.transpose(0, 2, 3, 1)  # channels-last, like winner
        if _windows_tile_the_input(geo):  # fast path: one copy scatters all offsets, -10 % of a W4 step
            return _scatter_tiles(winner * grad, geo).transpose(0, 3, 1, 2)
        padded = np.zeros((n, hp, wp, c), grad.dtype)
        for t, rows, cols in geo.offsets():  # each window's gradient goes to the offset that won
            padded[:, rows, cols, :] += winner[t] * grad
        return geo.unpad(padded.transpose(0, 3, 1, 2))


def _windows_tile_the_input(geo: WindowGeometry) -> bool:
    """The windows cover the input exactly once: side by side, no padding, nothing left over
    (and nothing past the end: a ceil_mode overhang makes ``ho * kh`` exceed ``h``)."""
    (_, _, h, w), (kh, kw), (ho, wo) = geo.input_shape, geo.kernel, geo.out_hw
    return geo.stride == geo.kernel and geo.padding == (0, 0) and (ho * kh, wo * kw) == (h, w)


def _scatter_tiles(per_offset, geo: WindowGeometry):
    """(kh*kw, N, Ho, Wo, C) blocks, one per kernel offset, -> (N, H, W, C), when the windows
    tile the input: every pixel then lies in exactly one window, so the blocks only need
    interleaving, as H splits into (Ho, kh) and W into (Wo, kw); nothing adds up."""
    n, c, h, w = geo.input_shape
    (kh, kw), (ho, wo) = geo.kernel, geo.out_hw
    tiles = per_offset.reshape(kh, kw, n, ho, wo, c).transpose(2, 3, 0, 4, 1, 5)
    return tiles.reshape(n, h, w, c)


def _first_maximum(taps, best, geo: WindowGeometry):
    """(kh*kw, N, Ho, Wo, C) bools: True at the kernel offset where each window's maximum first
    occurs, among the window's real (not padding) entries."""
    winner = taps == best
    if np.isnan(best).any():  # NaN == NaN is False: a NaN maximum wins where it stands
        winner |= np.isnan(taps)
    if geo.padding != (0, 0) or geo.overhang != (0, 0):
        # padding equals the maximum only in a window of all -inf: leave its padding out
        real = geo.pad(np.ones(geo.input_shape[2:], bool), False)  # (Hp, Wp): True on the input
        winner &= np.stack([real[rows, cols] for _, rows, cols in geo.offsets()])[:, None, :, :, None]
    seen = np.zeros(best.shape, bool)  # a maximum was found at an earlier offset
    for t in range(len(winner)):
        winner[t] &= ~seen
        seen |= winner[t]
    return winner


class AvgPool2dFunction(Function):
    """Mean over each window. Zero padding counts in the average (``count_include_pad=True``, as in
    PyTorch) or not (``False``: the mean of the window's input pixels); a ceil_mode window's
    overhang past the padded input never counts."""

    flops = staticmethod(pool2d_flops)

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False, count_include_pad=True):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        geo = WindowGeometry.of(x.shape, kernel_size, stride, padding, ceil_mode=ceil_mode)
        padded = geo.pad(x, 0)
        total = np.zeros(geo.output_shape, accumulator_dtype(x.dtype))  # float16 adds up in float32
        for _, rows, cols in geo.offsets():
            total += padded[:, :, rows, cols]
        ctx.geometry, ctx.count_include_pad = geo, count_include_pad
        return (total / window_sizes(geo, total.dtype, count_include_pad)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        geo = ctx.geometry
        share = grad / window_sizes(geo, grad.dtype, ctx.count_include_pad)  # each pixel of a window: an equal share
        padded = np.zeros(geo.padded_shape, grad.dtype)
        for _, rows, cols in geo.offsets():
            padded[:, :, rows, cols] += share
        return geo.unpad(padded)


def window_sizes(geo: WindowGeometry, dtype, count_include_pad: bool = True):
    """(Ho, Wo): the average's divisor per window. With the padding counted, how many entries of
    the padded input each window covers: kh*kw, except for a ceil_mode window that runs past the
    padded input's end; without, how many of the input's own pixels it covers."""
    (kh, kw), (ho, wo), (_, _, hp, wp), (oh, ow) = geo.kernel, geo.out_hw, geo.padded_shape, geo.overhang
    if count_include_pad and (oh, ow) == (0, 0):
        return kh * kw
    top, left = np.arange(ho) * geo.stride[0], np.arange(wo) * geo.stride[1]  # where windows start
    if count_include_pad:
        first, ends = (0, 0), (hp - oh, wp - ow)  # the padded input's rows and columns
    else:
        (ph, pw), (_, _, h, w) = geo.padding, geo.input_shape
        first, ends = (ph, pw), (ph + h, pw + w)  # the input's own rows and columns
    rows = np.minimum(top + kh, ends[0]) - np.maximum(top, first[0])
    cols = np.minimum(left + kw, ends[1]) - np.maximum(left, first[1])
    return np.outer(rows, cols).astype(dtype)


def max_pool2d(x, kernel_size, stride=None, padding=0, *, ceil_mode=False):
    """Max pooling of NCHW ``x``; ``stride`` defaults to ``kernel_size``, padding counts as -inf.
    ``ceil_mode`` keeps a last window that runs past the input (PyTorch's output size rule).

    The gradient goes to each window's arg-max; a tie goes to the first maximum in
    row-major window order.
    """
    return checked_pool2d(MaxPool2dFunction, x, kernel_size, stride, padding, "max_pool2d", ceil_mode)


def avg_pool2d(x, kernel_size, stride=None, padding=0, *, ceil_mode=False, count_include_pad=True):
    """Average pooling of NCHW ``x``; zero padding is included in every average unless
    ``count_include_pad=False``. ``ceil_mode`` keeps a last window that runs past the input,
    averaged over its entries inside the padded input."""
    return checked_pool2d(AvgPool2dFunction, x, kernel_size, stride, padding, "avg_pool2d", ceil_mode,
                          count_include_pad=true_or_false(count_include_pad, "count_include_pad", "avg_pool2d"))


def checked_pool2d(function, x, kernel_size, stride, padding, where: str, ceil_mode=False, **options):
    """Pooling by ``function`` whose errors name ``where`` (the layer that called it, say);
    ``options`` go to ``function`` as they are."""
    if one_image(x, where):
        batch = checked_pool2d(function, unsqueeze(x, 0), kernel_size, stride, padding, where, ceil_mode, **options)
        return squeeze(batch, 0)
    shape = check_nchw(x, where)
    kernel = pair(kernel_size, "kernel_size", where, 1)
    stride = kernel if stride is None else pair(stride, "stride", where, 1)
    padding = pair(padding, "padding", where, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{where}: padding {padding} must be at most half the kernel size {kernel} "
            "(otherwise a window could lie entirely in the padding)"
        )
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{where}: ceil_mode must be True or False, got {ceil_mode!r}")
    check_fits(shape, kernel, padding, (1, 1), where)
    return function.apply(x, kernel_size=kernel, stride=stride, padding=padding, ceil_mode=bool(ceil_mode), **options)
