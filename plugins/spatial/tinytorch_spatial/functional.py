"""Spatial ops: 2-D convolution, max/average pooling and 2-D batch normalisation.

Every op is a ``Function`` with a vectorised forward and backward. Inputs are NCHW.

Layout note (why outputs are often transposed views): the convolution computes its
output as one GEMM of the im2col matrix, whose rows are output pixels ``(n, y, x)``
and whose columns are ``(ky, kx, c)``. The result is therefore stored channels-last
(NHWC) and handed out as an NCHW *view* of that buffer: no transpose copy. Pooling
and element-wise ops keep whatever memory order they receive, so in a conv-relu-pool
stack the data stays channels-last, the next convolution gathers its windows with
contiguous channel reads, and its backward gets the output gradient as a free reshape.

Large temporaries are plain allocations: core tunes glibc's allocator at import so that
freed memory is reused by the next step instead of being page-faulted back in.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinytorch_core import Function, Tensor, array_module, no_grad
from tinytorch_core.dtypes import not_floating



def memory_order(a) -> tuple:
    """The axes of ``a`` from the largest stride to the smallest: its layout in memory."""
    return tuple(sorted(range(a.ndim), key=lambda k: -abs(a.strides[k])))


def inverse_permutation(order) -> tuple:
    """The axes that undo ``transpose(order)``."""
    inverse = [0] * len(order)
    for position, axis in enumerate(order):
        inverse[axis] = position
    return tuple(inverse)

__all__ = [
    "Conv2dFunction",
    "MaxPool2dFunction",
    "AvgPool2dFunction",
    "BatchNorm2dFunction",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "batch_norm2d",
    "output_size",
]


# --------------------------------------------------------------------------------------------
# argument checking (shared by the functions and the layers, which pass their own name)
# --------------------------------------------------------------------------------------------
def _pair(value, name: str, who: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum``, as a tuple of two ints."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        pair = value  # the common case (layers pass normalised pairs): no conversion
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{who}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        need = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{who}: {name} must be {need}, got {value!r}")
    return pair


def _shape(value) -> tuple:
    shape = getattr(value, "shape", None)
    if shape is None:
        raise TypeError(f"expected a Tensor or an array, got {type(value).__name__}")
    return tuple(shape)


def _check_nchw(x, who: str) -> tuple:
    try:
        shape = _shape(x)
    except TypeError as exc:
        raise TypeError(f"{who}: input: {exc}") from None
    if len(shape) != 4:
        raise ValueError(
            f"{who}: expected a 4-D input (N, C, H, W), got shape {shape} ({len(shape)}-D); "
            "add a batch axis with x.unsqueeze(0) for a single image"
        )
    return shape


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length along one axis (floor mode, as PyTorch)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_fits(shape, kernel, padding, dilation, who: str) -> None:
    _, _, h, w = shape
    ph, pw = padding
    reach = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if reach[0] > h + 2 * ph or reach[1] > w + 2 * pw:
        extent = f"{kernel[0]}x{kernel[1]}"
        if dilation != (1, 1):
            extent += f" with dilation {dilation} (spans {reach[0]}x{reach[1]})"
        raise ValueError(
            f"{who}: kernel {extent} is larger than the padded input {h + 2 * ph}x{w + 2 * pw} "
            f"(input shape {tuple(shape)}, padding {padding})"
        )


# --------------------------------------------------------------------------------------------
# array helpers
# --------------------------------------------------------------------------------------------
def _padded(x, ph: int, pw: int, fill):
    """``x`` with ``ph``/``pw`` rows/columns of ``fill`` on each side, in ``x``'s memory order."""
    if not ph and not pw:
        return x
    n, c, h, w = x.shape
    out = array_module(x).empty_like(x, shape=(n, c, h + 2 * ph, w + 2 * pw))  # order "K": same layout as x
    out.fill(fill)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _tap_slice(offset: int, stride: int, count: int) -> slice:
    """Positions ``offset, offset + stride, ...`` (``count`` of them) along one axis."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _pixel_rows(grad):
    """(N, O, Ho, Wo) -> (N*Ho*Wo, O): free when ``grad`` is channels-last in memory."""
    n, o, ho, wo = grad.shape
    nhwc = grad.transpose(0, 2, 3, 1)
    if not nhwc.flags.c_contiguous:
        nhwc = _copy(nhwc)
    return nhwc.reshape(n * ho * wo, o)


def _strided_view(a, shape, strides):
    """A read-only view of ``a``'s memory with the given shape and byte strides, starting at
    ``a``'s first element (all strides here are positive).

    Built directly on the buffer when ``a`` is contiguous in NCHW or channels-last order:
    ``as_strided`` costs 3 us of Python per call, more than some of the kernels it serves.
    """
    for memory in (a, a.transpose(0, 2, 3, 1)):
        if memory.flags.c_contiguous:
            view = np.ndarray(shape, a.dtype, buffer=memory, strides=strides)
            view.flags.writeable = False
            return view
    return as_strided(a, shape, strides, writeable=False)


def _copy(a):
    out = array_module(a).empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out


def _lowest(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    return False


# --------------------------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------------------------
class Conv2dFunction(Function):
    """2-D cross-correlation of NCHW ``x`` with (O, C, kh, kw) ``weight``, optional bias (O,).

    Forward: im2col by a strided window view gathered once into one matrix, then one
    GEMM. The matrix holds one row per output pixel, (N*Ho*Wo, kh*kw*C), when the input is
    channels-last in memory (the gather then reads contiguous channel runs) or its output
    rows are short; for a row-major (NCHW) input with one channel or wide rows it is stored
    transposed, (kh*kw*C, N*Ho*Wo), so the gather copies whole image-row runs instead of
    kh*kw-element scraps. Backward: the weight gradient is one GEMM with the saved
    matrix; the input gradient is one small GEMM per kernel tap, each added into a
    strided slice of the padded gradient (col2im), through one reused tap buffer.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
        xp = array_module(x)
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        ph, pw = padding
        ho = output_size(h, kh, stride[0], ph, dilation[0])
        wo = output_size(w, kw, stride[1], pw, dilation[1])
        dtype = np.result_type(x.dtype, weight.dtype)

        xpad = _padded(x, ph, pw, 0)
        s_n, s_c, s_h, s_w = xpad.strides
        pixels_major = c > 1 and (s_c < s_w or wo < 16)
        if pixels_major:  # (N, Ho, Wo, kh, kw, C): one row per output pixel
            shape = (n, ho, wo, kh, kw, c)
            strides = (s_n, s_h * stride[0], s_w * stride[1], s_h * dilation[0], s_w * dilation[1], s_c)
        else:  # (kh, kw, C, N, Ho, Wo): one row per (tap, channel)
            shape = (kh, kw, c, n, ho, wo)
            strides = (s_h * dilation[0], s_w * dilation[1], s_c, s_n, s_h * stride[0], s_w * stride[1])
        m, k = n * ho * wo, kh * kw * c
        # weight columns in the same (ky, kx, c) order as the im2col matrix
        wmat = weight.transpose(0, 2, 3, 1).reshape(o, k)
        # The bias rides in the GEMM as one extra row (or column) of ones in the im2col matrix:
        # adding it to a narrow (m, o) output afterwards costs more than the product itself,
        # and in backward its gradient comes out of the weight gradient's product.
        fold_bias = bias is not None
        itemsize = np.dtype(dtype).itemsize
        if pixels_major:  # (m, k [+ 1]): the window block of each row, then the ones column
            cols = xp.empty((m, k + fold_bias), dtype)
            row = (k + fold_bias) * itemsize
            target = np.ndarray(shape, dtype, buffer=cols, strides=(
                ho * wo * row, wo * row, row, kw * c * itemsize, c * itemsize, itemsize))
        else:  # (k [+ 1], m): the window rows, then the ones row
            cols = xp.empty((k + fold_bias, m), dtype)
            target = cols[:k].reshape(shape)
        np.copyto(target, _strided_view(xpad, shape, strides))
        w_used = wmat
        if fold_bias:
            if pixels_major:
                cols[:, k] = 1
            else:
                cols[k] = 1
            w_used = np.concatenate([wmat, bias.astype(dtype, copy=False)[:, None]], axis=1)
        z = np.matmul(cols if pixels_major else cols.T, w_used.T, out=xp.empty((m, o), dtype))

        needs = ctx.needs_input_grad
        keep_cols = needs[1] or fold_bias and needs[2]
        ctx.save_for_backward(cols if keep_cols else None, wmat if needs and needs[0] else None)
        ctx.fold_bias = fold_bias
        ctx.pixels_major = pixels_major
        ctx.geometry = (x.shape, weight.shape, (ho, wo), stride, padding, dilation)
        return z.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        cols, wmat = ctx.saved_tensors
        (n, c, h, w), (o, _, kh, kw), (ho, wo), stride, (ph, pw), dilation = ctx.geometry
        needs = ctx.needs_input_grad
        m = n * ho * wo
        gmat = _pixel_rows(grad)
        xp = array_module(grad)

        grad_x = grad_w = grad_b = None
        k = kh * kw * c
        if needs[1] or (needs[2]):
            # the weight gradient, plus the bias gradient from the ones row/column when folded
            if ctx.pixels_major:
                full = gmat.T @ cols  # (o, k [+ 1])
                if needs[1]:
                    grad_w = full[:, :k].reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
                bias_grad = full[:, k] if ctx.fold_bias else None
            else:
                full = cols @ gmat  # (k [+ 1], o)
                if needs[1]:
                    grad_w = full[:k].reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
                bias_grad = full[k] if ctx.fold_bias else None
            if needs[2]:
                grad_b = bias_grad
        if needs[0]:
            dtype = np.result_type(gmat.dtype, wmat.dtype)
            n_taps = kh * kw
            small = m * c * n_taps <= _SMALL_TAPS
            if small and stride == (1, 1) and dilation == (1, 1) and ph < kh and pw < kw:
                grad_x = _input_grad_by_transposed_conv(gmat, wmat, (n, c, h, w), (o, kh, kw), (ho, wo),
                                                        (ph, pw), dtype)
                return grad_x, grad_w, grad_b
            w_taps = wmat.reshape(o, kh * kw, c)
            # gradient of the padded input, channels-last like the tap blocks
            dpad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype)
            if small:
                # small problem: one batched GEMM for all taps costs fewer calls
                all_taps = np.matmul(gmat, w_taps.transpose(1, 0, 2)).reshape(n_taps, n, ho, wo, c)
                tap_images = (all_taps[t] for t in range(n_taps))
            else:
                # large problem: one GEMM per tap into one reused, cache-sized buffer
                tap = xp.empty((m, c), dtype)
                tap_images = (np.matmul(gmat, w_taps[:, t, :], out=tap).reshape(n, ho, wo, c)
                              for t in range(n_taps))
            for i in range(kh):
                rows = _tap_slice(i * dilation[0], stride[0], ho)
                for j in range(kw):
                    dpad[:, rows, _tap_slice(j * dilation[1], stride[1], wo), :] += next(tap_images)
            grad_x = dpad[:, ph : ph + h, pw : pw + w, :].transpose(0, 3, 1, 2)
        return grad_x, grad_w, grad_b


_SMALL_TAPS = 1 << 16  # elements of all tap blocks together below which one batched GEMM wins


def _input_grad_by_transposed_conv(gmat, wmat, x_shape, w_shape, out_hw, padding, dtype):
    """Input gradient of a stride-1 convolution as one more convolution: the output gradient,
    padded by ``k - 1 - p``, correlated with the flipped kernel. One im2col gather and one GEMM
    replace the per-tap products and strided scatter-adds, which cost more on small problems.
    """
    n, c, h, w = x_shape
    o, kh, kw = w_shape
    ho, wo = out_hw
    ph, pw = padding
    xp = array_module(gmat)
    ah, aw = kh - 1 - ph, kw - 1 - pw
    gpad = xp.zeros((n, ho + 2 * ah, wo + 2 * aw, o), dtype)  # channels-last, like gmat's rows
    gpad[:, ah : ah + ho, aw : aw + wo, :] = gmat.reshape(n, ho, wo, o)
    s_n, s_h, s_w, s_o = gpad.strides
    shape = (n, h, w, kh, kw, o)
    cols = xp.empty(shape, dtype)
    np.copyto(cols, _strided_view(gpad.transpose(0, 3, 1, 2), shape, (s_n, s_h, s_w, s_h, s_w, s_o)))
    # flipped kernel, rows in the gather's (ky, kx, o) order: (kh*kw*o, c)
    flipped = wmat.reshape(o, kh, kw, c)[:, ::-1, ::-1, :].transpose(1, 2, 0, 3).reshape(kh * kw * o, c)
    dx = cols.reshape(n * h * w, kh * kw * o) @ flipped
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _conv2d_geometry(x, weight, bias, stride, padding, dilation, who):
    xs = _check_nchw(x, who)
    try:
        ws = _shape(weight)
    except TypeError as exc:
        raise TypeError(f"{who}: weight: {exc}") from None
    if len(ws) != 4:
        raise ValueError(f"{who}: expected a 4-D weight (out_channels, in_channels, kh, kw), got shape {ws}")
    if ws[1] != xs[1]:
        raise ValueError(
            f"{who}: input has {xs[1]} channel(s) (shape {xs}) but the weight {ws} expects "
            f"{ws[1]} input channel(s) (weight shape is (out_channels, in_channels, kh, kw))"
        )
    if bias is not None:
        bs = _shape(bias)
        if bs != (ws[0],):
            raise ValueError(f"{who}: bias must have shape ({ws[0]},) for weight {ws}, got {bs}")
    stride = _pair(stride, "stride", who, 1)
    padding = _pair(padding, "padding", who, 0)
    dilation = _pair(dilation, "dilation", who, 1)
    if min(ws[2:]) < 1:
        raise ValueError(f"{who}: the weight {ws} has an empty kernel")
    _check_fits(xs, ws[2:], padding, dilation, who)
    return stride, padding, dilation


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D convolution (cross-correlation, as PyTorch) of NCHW ``x`` with ``weight`` (O, C, kh, kw).

    ``stride``, ``padding`` (zeros) and ``dilation`` are ints or (h, w) pairs.
    Returns an (N, O, Ho, Wo) tensor.
    """
    return _conv2d(x, weight, bias, stride, padding, dilation, "conv2d")


def _conv2d(x, weight, bias, stride, padding, dilation, who: str):
    """``conv2d`` whose errors name ``who`` (the layer that called it, say)."""
    stride, padding, dilation = _conv2d_geometry(x, weight, bias, stride, padding, dilation, who)
    return Conv2dFunction.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


# --------------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------------
def _pool_geometry(x, kernel_size, stride, padding, who):
    xs = _check_nchw(x, who)
    kernel = _pair(kernel_size, "kernel_size", who, 1)
    stride = kernel if stride is None else _pair(stride, "stride", who, 1)
    padding = _pair(padding, "padding", who, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{who}: padding {padding} must be at most half the kernel size {kernel} "
            "(otherwise a window could lie entirely in the padding)"
        )
    _check_fits(xs, kernel, padding, (1, 1), who)
    return kernel, stride, padding


def _pool_out_hw(shape, kernel, stride, padding):
    return (
        output_size(shape[2], kernel[0], stride[0], padding[0]),
        output_size(shape[3], kernel[1], stride[1], padding[1]),
    )


def _taps(kernel, stride, out_hw):
    """(tap number, row slice, column slice) of every kernel offset, row-major."""
    for i in range(kernel[0]):
        rows = _tap_slice(i, stride[0], out_hw[0])
        for j in range(kernel[1]):
            yield i * kernel[1] + j, rows, _tap_slice(j, stride[1], out_hw[1])


class MaxPool2dFunction(Function):
    """Max over each window; the gradient goes to the saved arg-max.

    The kh*kw taps (one strided slice of the input per kernel offset) are gathered once
    into a contiguous (kh*kw, L) block laid out in the input's own memory order, so the
    reduction and its backward are whole-array operations on contiguous rows, with a
    loop over the taps only. Ties: the first maximum in row-major window order wins (a
    later tap replaces the running maximum only when strictly greater), so the routing
    is deterministic. Padding is filled with the lowest value, so it never wins.
    """

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)):
        xp = array_module(x)
        kh, kw = kernel_size
        n_taps = kh * kw
        xpad = _padded(x, padding[0], padding[1], _lowest(x.dtype))
        ho, wo = _pool_out_hw(x.shape, kernel_size, stride, padding)
        order = memory_order(xpad)
        s_n, s_c, s_h, s_w = xpad.strides
        out_shape = (x.shape[0], x.shape[1], ho, wo)
        out_strides = (s_n, s_c, s_h * stride[0], s_w * stride[1])
        stored_shape = tuple(out_shape[k] for k in order)  # the output in the input's memory order
        windows = _strided_view(xpad, (kh, kw) + stored_shape,
                             (s_h, s_w) + tuple(out_strides[k] for k in order))
        taps = xp.empty(windows.shape, x.dtype)
        np.copyto(taps, windows)
        taps = taps.reshape(n_taps, -1)
        size = taps.shape[1]

        index_dtype = np.int8 if n_taps <= 127 else np.int32
        out = xp.empty((size,), x.dtype)
        np.copyto(out, taps[0])
        arg = xp.zeros((size,), index_dtype)
        better = xp.empty((size,), bool)
        candidate = xp.empty((size,), index_dtype)
        for t in range(1, n_taps):
            np.greater(taps[t], out, out=better)
            np.maximum(out, taps[t], out=out)
            # taps come in increasing order, so arg = where(better, t, arg) = max(arg, better * t);
            # integer arithmetic is several times faster than copyto(where=) or np.where
            np.multiply(better, t, out=candidate, dtype=index_dtype)
            np.maximum(arg, candidate, out=arg)
        if padding[0] or padding[1]:
            _route_padded_ties_to_real_entries(arg, out, xpad, padding, x.shape, windows.shape, windows.strides)
        ctx.save_for_backward(arg)
        ctx.geometry = (x.shape, xpad.shape, kernel_size, stride, padding, (ho, wo), order)
        return out.reshape(stored_shape).transpose(inverse_permutation(order))

    @staticmethod
    def backward(ctx, grad):
        (arg,) = ctx.saved_tensors
        shape, padded_shape, kernel, stride, (ph, pw), out_hw, order = ctx.geometry
        xp = array_module(grad)
        inverse = inverse_permutation(order)
        stored = grad.transpose(order)  # the forward's memory order
        if not stored.flags.c_contiguous:
            stored = _copy(stored)
        stored_shape = stored.shape
        flat_grad = stored.reshape(-1)

        stored_dpad = xp.empty(tuple(padded_shape[k] for k in order), grad.dtype)
        dpad = stored_dpad.transpose(inverse)
        disjoint = stride[0] >= kernel[0] and stride[1] >= kernel[1]
        covers_all = (tuple(stride) == tuple(kernel) and out_hw[0] * kernel[0] == padded_shape[2]
                      and out_hw[1] * kernel[1] == padded_shape[3])
        if covers_all and not (ph or pw):
            return _route_tiling_windows(arg, flat_grad, stored_dpad, dpad, kernel, out_hw, order)
        if not covers_all:  # when every position is written exactly once, clearing is wasted
            dpad.fill(0)
        hit = xp.empty(arg.shape, bool)
        routed = xp.empty(arg.shape, grad.dtype)
        routed_image = routed.reshape(stored_shape).transpose(inverse)
        for t, rows, cols in _taps(kernel, stride, out_hw):
            np.equal(arg, t, out=hit)
            np.multiply(flat_grad, hit, out=routed)
            if disjoint:  # each input position is in at most one window: write, don't add
                dpad[:, :, rows, cols] = routed_image
            else:
                dpad[:, :, rows, cols] += routed_image
        if ph or pw:
            dpad = dpad[:, :, ph : ph + shape[2], pw : pw + shape[3]]
        return dpad


def _route_padded_ties_to_real_entries(arg, out, xpad, padding, shape, window_shape, window_strides):
    """A window whose real entries are all -inf ties with its padding (filled with -inf), and the
    first tap may be padding: point such a window's arg-max at its first real entry instead (as
    PyTorch does), so its gradient is not routed into the padding and dropped. The padding is
    at most half the kernel, so every window holds a real entry. Costs one comparison unless
    such a window exists."""
    tied = np.flatnonzero(out == xpad.dtype.type(_lowest(xpad.dtype)))
    if not tied.size:
        return
    # a mask of real positions laid out like the padded input, gathered into the same taps
    real = np.empty_like(xpad, dtype=np.uint8)  # same memory order as xpad, one byte an element
    real.fill(0)
    real[:, :, padding[0] : padding[0] + shape[2], padding[1] : padding[1] + shape[3]] = 1
    scale = xpad.itemsize
    real_windows = _strided_view(real, window_shape, tuple(s // scale for s in window_strides))
    real_taps = np.ascontiguousarray(real_windows).reshape(window_shape[0] * window_shape[1], -1)[:, tied]
    on_padding = real_taps[arg[tied], np.arange(tied.size)] == 0
    arg[tied[on_padding]] = real_taps[:, on_padding].argmax(axis=0)  # the first real tap


def _route_tiling_windows(arg, flat_grad, stored_dpad, dpad, kernel, out_hw, order):
    """Max-pool backward when the windows tile the input exactly (stride == kernel, no padding):
    every tap's routed gradient in one broadcast comparison and one product, then a single
    strided copy into the input gradient, instead of three operations per tap."""
    kh, kw = kernel
    routed = (arg == np.arange(kh * kw, dtype=arg.dtype)[:, None]) * flat_grad  # (taps, L)
    out_stored = tuple((dpad.shape[0], dpad.shape[1], out_hw[0], out_hw[1])[k] for k in order)
    routed = routed.reshape((kh, kw) + out_stored)
    # split H into (Ho, kh) and W into (Wo, kw) in memory order; pair each with routed's axes
    split_shape, perm = [], []
    for position, axis in enumerate(order):
        if axis == 2:
            split_shape += [out_hw[0], kh]
            perm += [2 + position, 0]
        elif axis == 3:
            split_shape += [out_hw[1], kw]
            perm += [2 + position, 1]
        else:
            split_shape.append(stored_dpad.shape[position])
            perm.append(2 + position)
    np.copyto(stored_dpad.reshape(split_shape), routed.transpose(perm))
    return dpad


class AvgPool2dFunction(Function):
    """Mean over each window; zero padding counts in the average (count_include_pad=True)."""

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        xpad = _padded(x, padding[0], padding[1], 0)
        out_hw = _pool_out_hw(x.shape, kernel_size, stride, padding)
        taps = _taps(kernel_size, stride, out_hw)
        _, rows, cols = next(taps)
        first = xpad[:, :, rows, cols]
        out = array_module(x).empty_like(x, np.result_type(x.dtype, np.float32), shape=first.shape)
        np.copyto(out, first)
        for _, rows, cols in taps:
            out += xpad[:, :, rows, cols]
        out *= 1.0 / (kernel_size[0] * kernel_size[1])
        ctx.geometry = (x.shape, xpad.shape, kernel_size, stride, padding, out_hw)
        return out

    @staticmethod
    def backward(ctx, grad):
        shape, padded_shape, kernel, stride, (ph, pw), out_hw = ctx.geometry
        share = grad * (1.0 / (kernel[0] * kernel[1]))
        disjoint = stride[0] >= kernel[0] and stride[1] >= kernel[1]
        covers_all = (stride == kernel and out_hw[0] * kernel[0] == padded_shape[2]
                      and out_hw[1] * kernel[1] == padded_shape[3])
        dpad = array_module(share).empty_like(share, shape=padded_shape)
        if not covers_all:
            dpad.fill(0)
        for _, rows, cols in _taps(kernel, stride, out_hw):
            if disjoint:
                dpad[:, :, rows, cols] = share
            else:
                dpad[:, :, rows, cols] += share
        if ph or pw:
            dpad = dpad[:, :, ph : ph + shape[2], pw : pw + shape[3]]
        return dpad


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling of NCHW ``x``; ``stride`` defaults to ``kernel_size``, padding counts as -inf.

    The gradient goes to each window's arg-max; a tie goes to the first maximum in
    row-major window order.
    """
    return _pool2d(MaxPool2dFunction, x, kernel_size, stride, padding, "max_pool2d")


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling of NCHW ``x``; zero padding is included in every average."""
    return _pool2d(AvgPool2dFunction, x, kernel_size, stride, padding, "avg_pool2d")


def _pool2d(function, x, kernel_size, stride, padding, who: str):
    kernel, stride, padding = _pool_geometry(x, kernel_size, stride, padding, who)
    return function.apply(x, kernel_size=kernel, stride=stride, padding=padding)


# --------------------------------------------------------------------------------------------
# batch_norm2d
# --------------------------------------------------------------------------------------------
_BN_AXES = (0, 2, 3)


def _per_channel(values):
    return values.reshape(1, -1, 1, 1)


class BatchNorm2dFunction(Function):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` with per-channel statistics.

    ``batch_stats=True`` (training): ``mean``/``var`` are the batch statistics of ``x`` over
    (N, H, W), biased variance; they are computed here when not passed in, and the backward
    accounts for their dependence on ``x``. ``batch_stats=False`` (eval): ``mean``/``var`` are
    constants (the running statistics). ``weight``/``bias`` may be None (no affine part).
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, mean=None, var=None, batch_stats=True, eps=1e-5):
        if batch_stats and mean is None:
            mean = x.mean(axis=_BN_AXES)
        if batch_stats and var is None:
            var = x.var(axis=_BN_AXES)
        dtype = x.dtype
        rstd = 1.0 / np.sqrt(np.asarray(var, dtype) + dtype.type(eps))
        xhat = x - _per_channel(np.asarray(mean, dtype))
        xhat *= _per_channel(rstd)
        if weight is not None:
            y = xhat * _per_channel(weight)
        else:
            y = xhat.copy()
        if bias is not None:
            y += _per_channel(bias)
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.batch_stats = batch_stats
        return y

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_b = grad.sum(axis=_BN_AXES)
        grad_w = np.einsum("nchw,nchw->c", grad, xhat)
        grad_x = None
        if needs[0]:
            scale = rstd if weight is None else rstd * weight
            if ctx.batch_stats:
                count = grad.size // grad.shape[1]
                # d/dx of the normalised value, with mean and variance depending on x
                grad_x = grad - _per_channel(grad_b / count)
                grad_x -= xhat * _per_channel(grad_w / count)
                grad_x *= _per_channel(scale)
            else:
                grad_x = grad * _per_channel(scale)
        return (
            grad_x,
            grad_w if needs[1] else None,
            grad_b if needs[2] else None,
        )


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _data(value):
    return value.data if isinstance(value, Tensor) else value


def _update_running(buffer, batch_value, momentum: float) -> None:
    """``buffer = (1 - momentum) * buffer + momentum * batch_value``, in place."""
    if isinstance(buffer, Tensor):
        with no_grad():
            buffer.mul_(1.0 - momentum)
            buffer.add_(batch_value, alpha=momentum)
    else:
        buffer *= 1.0 - momentum
        buffer += momentum * batch_value


def batch_norm2d(x, running_mean=None, running_var=None, weight=None, bias=None, training=True,
                 momentum=0.1, eps=1e-5):
    """Batch normalisation of NCHW ``x`` over (N, H, W) per channel.

    Training: normalises with the batch mean and biased variance, and updates the running
    buffers in place (when given) with the unbiased variance:
    ``running = (1 - momentum) * running + momentum * batch``. Eval: uses the running buffers.
    """
    return _batch_norm2d(x, running_mean, running_var, weight, bias, training, momentum, eps, "batch_norm2d")


def _batch_norm2d(x, running_mean, running_var, weight, bias, training, momentum, eps, _who: str):
    shape = _check_nchw(x, _who)
    channels = shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        if value is not None and _shape(value) != (channels,):
            raise ValueError(
                f"{_who}: input has {channels} channel(s) (shape {shape}) but {name} has shape "
                f"{_shape(value)}; expected ({channels},)"
            )
    if not _is_real(momentum) or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{_who}: momentum must be a number in [0, 1], got {momentum!r}")
    if not _is_real(eps) or not eps > 0:
        raise ValueError(f"{_who}: eps must be positive, got {eps!r}")
    if training:
        count = shape[0] * shape[2] * shape[3]
        if count < 2:
            raise ValueError(
                f"{_who}: training needs more than one value per channel to compute batch statistics, "
                f"got input shape {shape}"
            )
        xd = _data(x)
        with np.errstate(all="ignore"):  # outside apply: inf input gives inf/NaN stats silently, as in the op
            mean = xd.mean(axis=_BN_AXES)
            var = xd.var(axis=_BN_AXES)
        if running_mean is not None:
            _update_running(running_mean, mean, momentum)
        if running_var is not None:
            _update_running(running_var, var * (count / (count - 1)), momentum)
        return BatchNorm2dFunction.apply(x, weight, bias, mean=mean, var=var, batch_stats=True, eps=eps)
    if running_mean is None or running_var is None:
        raise ValueError(f"{_who}: evaluation mode needs running_mean and running_var, got None")
    return BatchNorm2dFunction.apply(
        x, weight, bias, mean=_data(running_mean), var=_data(running_var), batch_stats=False, eps=eps
    )
