"""The layers of a quantized model: int8 codes in, int8 codes out, integer arithmetic in between.

Between layers flows a ``QuantizedActivation``: int8 ``codes`` with the ``scale`` and
``zero_point`` they are read with (``real = scale * (code - zero_point)``). Images stay
channels-last, (N, H, W, C), so im2col reads contiguous channels and the GEMM's output rows are
already the next layer's layout.

A ``QuantizedLinear`` or ``QuantizedConv2d`` computes, for input codes x (zero point zx), weight
codes w (symmetric: zero point 0) and output channel o,

    acc[o] = sum_k x[k] * w[o, k]  -  zx * sum_k w[o, k]  +  bias_q[o]          (exact, int32)
    out[o] = clamp(round(acc[o] * sx * sw[o] / sy) + zy)                          (int8)

which is ``y = sx * sw[o] * sum_k (x[k] - zx) w[o, k] + b[o]`` read at the output's scale sy:
the first sum runs on float32 BLAS, exactly (``integer.exact_integer_matmul``), the zero-point
term and the bias (quantized to the accumulator's scale sx * sw[o]) are int32 additions, and the
one rounding is the requantization to the next layer's int8. A ReLU that follows is fused: the
clamp starts at zy, the code of the real 0. (A layer whose accumulators provably stay below
2**24 keeps them in float32, which holds those integers exactly: the same values, fewer passes.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch_core import Module, Tensor, no_grad
from tinytorch_core.checks import array_of

from .integer import (AFFINE_RANGE, EXACT_FLOAT32_INTEGER, SYMMETRIC_RANGE, exact_integer_matmul, k_block,
                      quantize_array, requantize)

_INT32_MAX = np.iinfo(np.int32).max
#: the largest size of an input code (-128): a bound on |sum_k x[k] w[o, k]| is this times sum_k |w[o, k]|
_LARGEST_INPUT_CODE = -AFFINE_RANGE[0]

__all__ = [
    "DeQuantize", "FloatStep", "IntegerFlatten", "IntegerMaxPool2d", "IntegerReLU", "Quantize",
    "QuantizedActivation", "QuantizedConv2d", "QuantizedLinear",
]

#: K per exact float32 GEMM block: products of an activation code (|x| <= 128) and a weight code (|w| <= 127)
_K_BLOCK = k_block(-AFFINE_RANGE[0], SYMMETRIC_RANGE[1])


class QuantizedActivation(NamedTuple):
    codes: np.ndarray  # int8; images channels-last (N, H, W, C)
    scale: float
    zero_point: int


def _qparams_buffers(module, prefix: str, scale, zero_point) -> None:
    module.register_buffer(f"{prefix}_scale", Tensor(np.asarray(scale, np.float32)))
    module.register_buffer(f"{prefix}_zero_point", Tensor(np.asarray(zero_point, np.int32)))


def _read_with(module, prefix: str) -> tuple[float, int]:
    """The scale and zero point of ``prefix`` codes, checked: a state dict may have set them to
    anything (a zero or NaN scale, a zero point no int8 code can hold)."""
    scale, zero_point = float(getattr(module, f"{prefix}_scale").data), int(getattr(module, f"{prefix}_zero_point").data)
    if not (math.isfinite(scale) and scale > 0) or not AFFINE_RANGE[0] <= zero_point <= AFFINE_RANGE[1]:
        raise ValueError(
            f"{type(module).__name__}: {prefix} scale {scale} and zero point {zero_point} cannot read int8 "
            f"codes: the scale must be finite and > 0, the zero point in {list(AFFINE_RANGE)} (a damaged "
            "or hand-edited state dict?)"
        )
    return scale, zero_point


def _fits_float32(k: int, offsets) -> bool:
    """Whether every accumulator of a K-term product is an integer of at most 2**24, which
    float32 holds exactly: K products of |x| <= 128 and |w| <= 127, plus the largest offset."""
    largest = k * -AFFINE_RANGE[0] * SYMMETRIC_RANGE[1] + int(np.abs(offsets).max(initial=0))
    return largest <= EXACT_FLOAT32_INTEGER


def accumulator_reach(weight, offsets):
    """Per output channel, the largest size its accumulator ``sum_k x[k] w[o, k] + offsets[o]`` can
    take over all int8 inputs x: ``128 sum_k |w[o, k]| + |offsets[o]|`` (int64, exact)."""
    products = _LARGEST_INPUT_CODE * np.abs(weight.astype(np.int64)).sum(axis=1)
    return products + np.abs(offsets)


def check_int32_accumulators(weight, offsets, where: str) -> None:
    """Refuse a layer one of whose accumulators could leave int32: an int32 addition would wrap
    around without a word. First a bound that takes no pass over the weights (every product at
    its largest, 128 x 127), which any layer of sensible size meets; only past it, channel by channel."""
    if weight.shape[1] * _LARGEST_INPUT_CODE * SYMMETRIC_RANGE[1] + int(np.abs(offsets).max(initial=0)) <= _INT32_MAX:
        return
    reach = accumulator_reach(weight, offsets)
    beyond = np.flatnonzero(reach > _INT32_MAX)
    if beyond.size:
        o = int(beyond[0])
        raise ValueError(
            f"{where}: output channel {o}'s accumulator could reach {int(reach[o]):,} (bias and zero-point term "
            f"{int(offsets[o]):,}, plus up to {int(reach[o] - abs(offsets[o])):,} from the int8 products), beyond "
            f"int32's {_INT32_MAX:,}: an int32 accumulator would wrap around ({beyond.size} channel(s) like this; "
            "a bias far larger than the weights' contribution, or a damaged state dict?)"
        )


def _accumulate_in_float32(columns, weight, offsets):
    """The accumulators left in float32, for a layer that ``_fits_float32``: one GEMM and the
    offsets, every partial sum an exact integer, so the values are those of the int32 path (and
    the requantization needs no conversion back to float32)."""
    accumulator = columns @ weight.T.astype(np.float32)
    accumulator += offsets.astype(np.float32)
    return accumulator


class Quantize(Module):
    """Float input -> int8 codes of the calibrated input scale (images become channels-last)."""

    def __init__(self, scale, zero_point):
        super().__init__()
        _qparams_buffers(self, "output", scale, zero_point)

    def forward(self, x):
        array = array_of(x)
        if array.dtype.kind != "f":
            raise TypeError(f"Quantize: expected a float input, got dtype {array.dtype}")
        if array.ndim == 4:
            array = array.transpose(0, 2, 3, 1)
        scale, zero_point = _read_with(self, "output")
        return QuantizedActivation(quantize_array(array, scale, zero_point, where="Quantize"), scale, zero_point)


class DeQuantize(Module):
    """int8 codes -> the float32 Tensor they stand for (images back to NCHW)."""

    def forward(self, act):
        real = (act.codes.astype(np.float32) - act.zero_point) * np.float32(act.scale)
        return Tensor(real.transpose(0, 3, 1, 2) if real.ndim == 4 else real)


class _IntegerWeighted(Module):
    """What the integer Linear and Conv2d share: int8 weights with per-output-channel scales, an
    int32 bias, the input's and output's qparams, the exact accumulation and the requantization."""

    def __init__(self, weight_codes, weight_scale, bias, input_qparams, output_qparams, relu: bool,
                 where: str = "quantize"):
        super().__init__()
        self.register_buffer("weight", Tensor(np.asarray(weight_codes, np.int8)))
        out_channels = len(weight_codes)
        self.register_buffer("weight_scale", Tensor(np.broadcast_to(weight_scale, (out_channels,)).astype(np.float32)))
        _qparams_buffers(self, "input", *input_qparams)
        _qparams_buffers(self, "output", *output_qparams)
        bias_q = None if bias is None else self._bias_codes(array_of(bias), where)
        self.register_buffer("bias", None if bias_q is None else Tensor(bias_q))
        self.relu = bool(relu)
        weight = self.weight_matrix()
        check_int32_accumulators(weight, self.offsets(weight), where)  # refused now, not wrapped later

    def _bias_codes(self, bias, where: str):
        """The bias at the accumulator's scale sx * sw[o], as int32: one integer addition. A bias
        int32 cannot hold there is refused, never clipped (a clipped bias is a wrong answer)."""
        accumulator_scale = self.input_scale.data.astype(np.float64) * self.weight_scale.data
        if not np.isfinite(bias).all():
            raise ValueError(f"{where}: the bias holds NaN or inf; an int32 bias needs finite values")
        codes = np.rint(bias.astype(np.float64) / accumulator_scale)
        beyond = np.flatnonzero(np.abs(codes) > _INT32_MAX)
        if beyond.size:
            o = int(beyond[0])
            raise ValueError(
                f"{where}: output channel {o}: the bias {bias[o]:.6g} is beyond int32 at the accumulator's scale: "
                f"{codes[o]:.4g} units of input scale {self.input_scale.data:.3g} x weight scale "
                f"{self.weight_scale.data[o]:.3g}, where an int32 accumulator holds at most {_INT32_MAX:,}. A channel "
                "whose weights are all near 0 gets a tiny weight scale: set such weights to exactly 0 (a row of "
                "zeros gets scale 1)"
            )
        return codes.astype(np.int32)

    def weight_matrix(self):
        """The int8 weight as (out, K), columns in im2col's (i, j, c) order for a convolution."""
        weight = self.weight.data
        if weight.ndim == 4:  # (O, C, kh, kw) -> (O, kh, kw, C)
            weight = weight.transpose(0, 2, 3, 1)
        return weight.reshape(len(weight), -1)

    def offsets(self, weight):
        """The per-channel constant of the accumulator, int64: ``bias_q - zx * sum_k w``."""
        _, input_zero_point = _read_with(self, "input")
        offsets = -input_zero_point * weight.sum(axis=1, dtype=np.int64)
        return offsets if self.bias is None else offsets + self.bias.data

    def accumulate(self, columns):
        """Float32 rows holding input codes (rows, K) -> the exact accumulators (rows, out):
        ``sum_k x w`` by exact float32 GEMMs, then the offsets, in int32."""
        weight = self.weight_matrix()
        offsets = self.offsets(weight)
        if _fits_float32(columns.shape[1], offsets):  # fast path: -3.4 % of the trained INT8 digits CNN, batch 256
            return _accumulate_in_float32(columns, weight, offsets)  # below 2**24: far inside int32 too
        # a loaded state dict may hold any int32 bias: make sure no sum below can wrap around
        check_int32_accumulators(weight, offsets, type(self).__name__)
        accumulator = exact_integer_matmul(columns, weight.T.astype(np.float32), _K_BLOCK)
        accumulator += offsets.astype(np.int32)  # exact: every |offset| <= its channel's reach <= int32's largest
        return accumulator

    def integer_forward(self, columns):
        return self.requantized(self.accumulate(columns))

    def requantized(self, accumulator):
        """Accumulators (int32, or float32 holding integers) -> int8 codes at the output's scale (ReLU
        fused: floor at its zero point)."""
        input_scale, _ = _read_with(self, "input")
        output_scale, output_zero_point = _read_with(self, "output")
        weight_scale = self.weight_scale.data.astype(np.float64)
        if not (np.isfinite(weight_scale).all() and (weight_scale > 0).all()):
            raise ValueError(f"{type(self).__name__}: every weight scale must be finite and > 0, got "
                             f"values in [{weight_scale.min()}, {weight_scale.max()}] (a damaged state dict?)")
        multiplier = input_scale * weight_scale / output_scale
        floor = output_zero_point if self.relu else AFFINE_RANGE[0]
        codes = requantize(accumulator, multiplier, output_zero_point, floor)
        return QuantizedActivation(codes, output_scale, output_zero_point)

    def _check_input(self, act, ndim: int):
        if not isinstance(act, QuantizedActivation) or act.codes.ndim != ndim:
            got = f"{act.codes.ndim}-D codes" if isinstance(act, QuantizedActivation) else type(act).__name__
            raise TypeError(f"{type(self).__name__}: expected a {ndim}-D QuantizedActivation, got {got}")
        features = self.weight.data.shape[1]  # Linear: in_features; Conv2d: in_channels (channels-last)
        if act.codes.shape[-1] != features:
            raise ValueError(f"{type(self).__name__}: input codes of shape {act.codes.shape} (channels-last) do not "
                             f"fit a weight of shape {self.weight.data.shape}: the last axis must be {features}")
        if (act.scale, act.zero_point) != _read_with(self, "input"):
            raise ValueError(f"{type(self).__name__}: input codes at scale {act.scale}, zero point "
                             f"{act.zero_point}; the layer was calibrated for {_read_with(self, 'input')}")

    @staticmethod
    def quantized_weight(weight, weight_observer):
        """The float weight's int8 codes and per-channel scales from a symmetric weight observer."""
        if not np.isfinite(weight).all():
            raise ValueError("quantize: a layer's weight holds NaN or inf; an int8 weight needs finite values")
        observer = weight_observer()
        if not observer.symmetric:
            raise ValueError("quantize: the weight observer must be symmetric (zero point 0): the integer "
                             "layers add no weight zero-point terms")
        observer(weight)
        scale, _ = observer.calculate_qparams()
        axis = None if np.ndim(scale) == 0 else observer.axis
        return quantize_array(array_of(weight), scale, 0, axis, SYMMETRIC_RANGE), scale


class QuantizedLinear(_IntegerWeighted):
    """An int8 ``Linear``: (N, in) codes -> (N, out) codes."""

    @classmethod
    def from_float(cls, linear, input_qparams, output_qparams, weight_observer, relu=False, where="quantize"):
        codes, scale = cls.quantized_weight(linear.weight.data, weight_observer)
        bias = None if linear.bias is None else linear.bias.data
        return cls(codes, scale, bias, input_qparams, output_qparams, relu, where)

    def forward(self, act):
        self._check_input(act, 2)
        return self.integer_forward(act.codes.astype(np.float32))


class QuantizedConv2d(_IntegerWeighted):
    """An int8 ``Conv2d`` (groups=1): (N, H, W, C) codes -> (N, Ho, Wo, O) codes, via im2col."""

    @classmethod
    def from_float(cls, conv, input_qparams, output_qparams, weight_observer, relu=False, where="quantize"):
        if conv.groups != 1:
            raise ValueError(f"quantize: Conv2d with groups={conv.groups} has no integer version here (groups=1 only)")
        codes, scale = cls.quantized_weight(conv.weight.data, weight_observer)
        bias = None if conv.bias is None else conv.bias.data
        layer = cls(codes, scale, bias, input_qparams, output_qparams, relu, where)
        layer.stride, layer.padding, layer.dilation = conv.stride, _padding_pair(conv, where), conv.dilation
        return layer


    def forward(self, act):
        self._check_input(act, 4)
        columns, (ho, wo) = integer_im2col(act.codes, self.weight.data.shape[2:], self.stride, self.padding,
                                           self.dilation, act.zero_point)
        out = self.integer_forward(columns)
        return out._replace(codes=out.codes.reshape(len(act.codes), ho, wo, len(self.weight.data)))


def _padding_pair(conv, where: str) -> tuple:
    """The Conv2d's padding as (rows, columns) on both sides; PyTorch's names "valid" and "same"
    as numbers ("same" with an even kernel pads one side more, which the integer im2col does not)."""
    if not isinstance(conv.padding, str):
        return conv.padding
    if conv.padding == "valid":
        return (0, 0)
    kernel = conv.weight.data.shape[2:]
    totals = [d * (k - 1) for d, k in zip(conv.dilation, kernel)]
    if any(total % 2 for total in totals):
        raise ValueError(f"{where}: Conv2d(padding='same') with kernel {tuple(kernel)} pads one side more than the "
                         "other; its integer version pads both sides alike: use an odd kernel or explicit padding")
    return (totals[0] // 2, totals[1] // 2)


def integer_im2col(codes, kernel, stride, padding, dilation, pad_code: int):
    """(N, H, W, C) int8 codes -> float32 columns (N*Ho*Wo, kh*kw*C), one row per output pixel,
    columns in (i, j, c) order; the padding is the code of the real 0. One copy, which also
    widens the codes to float32 for the GEMM."""
    n, h, w, c = codes.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    if h + 2 * ph < span[0] or w + 2 * pw < span[1]:
        raise ValueError(f"QuantizedConv2d: a {kh}x{kw} kernel (dilation {dilation}) does not fit a "
                         f"{h}x{w} input with padding {padding}")
    padded = codes
    if ph or pw:
        padded = np.full((n, h + 2 * ph, w + 2 * pw, c), pad_code, np.int8)
        padded[:, ph : ph + h, pw : pw + w] = codes
    windows = sliding_window_view(padded, span, axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]  # (N, Ho, Wo, C, kh, kw)
    ho, wo = windows.shape[1:3]
    if c == 1:  # one channel: stored column-major, the copy reads whole image rows (2.6 -> 2.0 ms, first digits conv)
        columns = np.empty((kh * kw * c, n * ho * wo), np.float32).T
    else:
        columns = np.empty((n * ho * wo, kh * kw * c), np.float32)
    columns.reshape(n, ho, wo, kh, kw, c)[...] = windows.transpose(0, 1, 2, 4, 5, 3)
    return columns, (ho, wo)


class IntegerReLU(Module):
    """ReLU on codes: the real 0 is the code ``zero_point``, so ``max(code, zero_point)``."""

    def forward(self, act):
        return act._replace(codes=np.maximum(act.codes, np.int8(act.zero_point)))


class IntegerMaxPool2d(Module):
    """Max pooling on channels-last codes: the order of the codes is the order of the reals
    (the scale is positive), so the maximum code is the code of the maximum."""

    def __init__(self, kernel_size, stride):
        super().__init__()
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)

    def forward(self, act):
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        n, h, w, c = act.codes.shape
        if h < kh or w < kw:
            raise ValueError(f"IntegerMaxPool2d: kernel {kh}x{kw} is larger than the input {h}x{w}")
        ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
        pooled = None
        for i in range(kh):  # one pass per kernel offset, each over every window at once
            for j in range(kw):
                tap = act.codes[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
                pooled = tap.copy() if pooled is None else np.maximum(pooled, tap, out=pooled)
        return act._replace(codes=pooled)


class IntegerFlatten(Module):
    """``Flatten()`` of an image batch in the float model's (C, H, W) order, on codes."""

    def forward(self, act):
        codes = act.codes
        if codes.ndim == 4:  # channels-last back to the (C, H, W) order the next Linear was trained on
            codes = codes.transpose(0, 3, 1, 2)
        return act._replace(codes=codes.reshape(len(codes), int(np.prod(codes.shape[1:]))))  # also for 0 images


class FloatStep(Module):
    """A layer with no integer version: dequantize, run the float layer, quantize again at the
    scale calibrated for its output ("float ops stay float")."""

    def __init__(self, layer, output_qparams):
        super().__init__()
        self.layer = layer
        _qparams_buffers(self, "output", *output_qparams)

    def forward(self, act):
        real = DeQuantize()(act)
        with no_grad():
            out = array_of(self.layer(real))
        if out.ndim == 4:
            out = out.transpose(0, 2, 3, 1)
        scale, zero_point = _read_with(self, "output")
        codes = quantize_array(out, scale, zero_point, where=f"FloatStep({type(self.layer).__name__})")
        return QuantizedActivation(codes, scale, zero_point)
