"""Where the sliding windows of a convolution or a pooling lie, and the checks of its arguments.

A 2-D window op slides a ``kernel`` over an NCHW input padded by ``padding`` on each side, moving
``stride`` pixels between windows and looking at every ``dilation``-th pixel inside one. All of
that, with the input's shape and the output size it gives, is one ``WindowGeometry``: the ops
build it in forward and keep it on ``ctx`` for backward.

Pooling's ``ceil_mode`` counts one more window along an axis where the last stride leaves a few
pixels uncovered: that last window runs past the padded input (its ``overhang``), which ``pad``
fills like the padding and which no window size counts.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinytorch_core.checks import dtype_of, shape_of


class WindowGeometry(NamedTuple):
    """The windows of one conv or pooling call over an (N, C, H, W) input (all pairs are (h, w))."""

    input_shape: tuple  # (N, C, H, W)
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_hw: tuple  # (Ho, Wo): how many windows fit down and across
    overhang: tuple = (0, 0)  # rows, columns the last windows reach past the padded input (ceil_mode)

    @classmethod
    def of(cls, input_shape, kernel, stride, padding, dilation=(1, 1), ceil_mode=False) -> WindowGeometry:
        _, _, h, w = input_shape
        out_hw = (output_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
                  output_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode))
        # where the last window ends, past the end of the padded input or not
        ends = [(out - 1) * s + d * (k - 1) + 1 for out, s, d, k in zip(out_hw, stride, dilation, kernel)]
        overhang = (max(0, ends[0] - h - 2 * padding[0]), max(0, ends[1] - w - 2 * padding[1]))
        return cls(tuple(input_shape), tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), out_hw,
                   overhang)

    @property
    def padded_shape(self) -> tuple:
        """The input with its padding on all sides and the overhang at the bottom and right."""
        n, c, h, w = self.input_shape
        (ph, pw), (oh, ow) = self.padding, self.overhang
        return (n, c, h + 2 * ph + oh, w + 2 * pw + ow)

    @property
    def output_shape(self) -> tuple:
        """(N, C, Ho, Wo): one value per window and channel (a pooling's output)."""
        return self.input_shape[:2] + self.out_hw

    def offsets(self):
        """For each kernel offset (i, j), row-major: ``(t, rows, cols)`` where ``t = i * kw + j``
        and ``padded[:, :, rows, cols]`` is the (N, C, Ho, Wo) block of pixels that this offset
        sees in every window."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        ho, wo = self.out_hw
        for i in range(kh):
            rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
            for j in range(kw):
                yield i * kw + j, rows, slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)

    def windows(self, padded):
        """Every window of the padded (N, C, Hp, Wp) input as an (N, C, Ho, Wo, kh, kw) view,
        nothing copied: ``[n, c, y, x, i, j]`` is the pixel at row ``y * stride + i * dilation``,
        column ``x * stride + j * dilation``, so each axis steps a fixed number of bytes."""
        n, c, _, _ = padded.shape
        s_n, s_c, s_h, s_w = padded.strides
        (sh, sw), (dh, dw) = self.stride, self.dilation
        shape = (n, c) + self.out_hw + self.kernel
        return as_strided(padded, shape, (s_n, s_c, s_h * sh, s_w * sw, s_h * dh, s_w * dw), writeable=False)

    def pad(self, x, fill):
        """``x`` (its last two axes H, W) with ``padding`` rows and columns of ``fill`` on each side
        (and the ``overhang`` more at the bottom and right).

        The padded copy keeps ``x``'s memory order (``np.pad`` would make it C-ordered), so the
        windows of a channels-last input are still read along its contiguous channels.
        """
        (ph, pw), (oh, ow) = self.padding, self.overhang
        if not (ph or pw or oh or ow):
            return x
        *lead, h, w = x.shape
        padded = np.empty_like(x, shape=(*lead, h + 2 * ph + oh, w + 2 * pw + ow))
        padded.fill(fill)
        padded[..., ph : ph + h, pw : pw + w] = x
        return padded

    def unpad(self, padded):
        """The inverse of ``pad``: the part of a padded array that lies on the input."""
        (ph, pw), (_, _, h, w) = self.padding, self.input_shape
        return padded[..., ph : ph + h, pw : pw + w]


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                ceil_mode: bool = False) -> int:
    """Output length along one axis, as PyTorch: how many strides fit after the first window,
    plus that window; ``ceil_mode`` counts a last, partial stride too, as long as the window it
    starts begins inside the input or its left padding (not in the right padding)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1  # room left after the first window
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1  # ceil(span / stride) + 1
    if (out - 1) * stride >= size + padding:  # the last window would start in the right padding
        out -= 1
    return out


# --------------------------------------------------------------------------------------------
# argument checks (shared by the functions and the layers, which pass their own name as ``where``)
# --------------------------------------------------------------------------------------------
def pair(value, what: str, where: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum``, as a tuple of two ints."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not (_is_int(values[0]) and _is_int(values[1])):
        raise TypeError(f"{where}: {what} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        need = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{where}: {what} must be {need}, got {value!r}")
    return (int(values[0]), int(values[1]))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def array_shape(value, what: str, where: str) -> tuple:
    """The shape of a Tensor or an ndarray of numbers; a TypeError for anything else (a list,
    None, an array of strings)."""
    dtype = dtype_of(value)
    if dtype is None:
        raise TypeError(f"{where}: {what}: expected a Tensor or an array, got {type(value).__name__}")
    if dtype.kind not in "biuf":
        raise TypeError(f"{where}: {what}: expected float, int or bool data, got {dtype}")
    return tuple(shape_of(value))


def check_nchw(x, where: str) -> tuple:
    """The shape of a 4-D (N, C, H, W) input."""
    shape = array_shape(x, "input", where)
    if len(shape) != 4:
        raise ValueError(
            f"{where}: expected a 4-D input (N, C, H, W) or one 3-D image (C, H, W), got shape {shape} "
            f"({len(shape)}-D)"
        )
    return shape


def one_image(x, where: str) -> bool:
    """Whether ``x`` is one unbatched (C, H, W) image, which PyTorch's conv and pooling take too:
    the caller runs it as a batch of one and removes the batch axis again."""
    return len(array_shape(x, "input", where)) == 3


def check_fits(shape, kernel, padding, dilation, where: str) -> None:
    """The (dilated) kernel must fit inside the padded input."""
    _, _, h, w = shape
    ph, pw = padding
    reach = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if reach[0] > h + 2 * ph or reach[1] > w + 2 * pw:
        extent = f"{kernel[0]}x{kernel[1]}"
        if dilation != (1, 1):
            extent += f" with dilation {dilation} (spans {reach[0]}x{reach[1]})"
        raise ValueError(
            f"{where}: kernel {extent} is larger than the padded input {h + 2 * ph}x{w + 2 * pw} "
            f"(input shape {tuple(shape)}, padding {padding})"
        )
