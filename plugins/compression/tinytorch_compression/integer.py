"""Integer arithmetic: int8 values, their scales and zero points, and an exact int8 matrix product.

A real number ``r`` is stored as an 8-bit integer ``q`` with ``r ~ scale * (q - zero_point)``.
*Affine* quantization (activations) uses the whole range -128..127 and a zero point that puts
the real 0 on an integer; *symmetric* quantization (weights) uses -127..127 and zero point 0.

NumPy has no fast int8 matrix product: ``a @ b`` on integer arrays runs a plain loop, far from
BLAS. But a float32 holds every integer up to 2**24 exactly, and a sum of integers whose partial
sums all stay within 2**24 is computed exactly in float32, in any order and with fused
multiply-adds, because every intermediate value is such an integer. An int8 x int8 product is at
most 128 * 128 = 2**14 in size, so a dot product of up to 2**24 / 2**14 = 1024 terms is exact in a
float32 GEMM. ``exact_integer_matmul`` splits a longer K into blocks of that length, runs one
float32 BLAS GEMM per block, and adds the blocks' (exact) results in int32.
"""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_core import Tensor
from tinytorch_core.checks import array_of

__all__ = [
    "AFFINE_RANGE", "SMALLEST_SCALE", "SYMMETRIC_RANGE", "EXACT_FLOAT32_INTEGER", "channel_axis", "checked_scale",
    "checked_zero_point", "dequantize_tensor", "exact_integer_matmul", "int8_matmul", "k_block",
    "qparams_from_range", "quantize_array", "quantize_tensor", "requantize",
]

AFFINE_RANGE = (-128, 127)  # activations: all 256 codes
SYMMETRIC_RANGE = (-127, 127)  # weights: zero point 0 and a range that mirrors around it
EXACT_FLOAT32_INTEGER = 2**24  # every integer of at most this size is exact in float32
_INT32_MAX = 2**31 - 1
#: the smallest scale an observer gives (PyTorch's eps): a narrower range would underflow float32
SMALLEST_SCALE = float(np.finfo(np.float32).eps)


def qparams_from_range(low, high, symmetric: bool):
    """Scale (float32) and zero point (int32) that map [low, high] (arrays: one per channel) onto
    the int8 codes. The range is widened to contain 0, so that the real 0 (padding, ReLU's floor)
    is exactly a code; a range of width 0 gets scale 1 rather than a division by zero."""
    low = np.minimum(np.asarray(low, np.float64), 0.0)
    high = np.maximum(np.asarray(high, np.float64), 0.0)
    if symmetric:
        qmin, qmax = SYMMETRIC_RANGE
        scale = np.maximum(-low, high) / qmax
        zero_point = np.zeros_like(scale, dtype=np.int32)
    else:
        qmin, qmax = AFFINE_RANGE
        scale = (high - low) / (qmax - qmin)
    scale = np.where(scale > 0, np.maximum(scale, SMALLEST_SCALE), 1.0)
    if not symmetric:
        zero_point = np.clip(qmin - np.rint(low / scale), qmin, qmax).astype(np.int32)
    return scale.astype(np.float32), zero_point


def _along(values, ndim: int, axis):
    """Per-tensor values as they are; per-channel values shaped to broadcast along ``axis``."""
    values = np.asarray(values)
    if axis is None or values.ndim == 0:
        return values
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def quantize_array(x, scale, zero_point, axis=None, quant_range=AFFINE_RANGE, where="quantize"):
    """``clamp(round(x / scale) + zero_point)`` as int8 (plain arrays in and out). NaN has no code
    (inf saturates, as a large value does)."""
    if np.isnan(x).any():
        raise ValueError(f"{where}: the values hold NaN, which has no int8 code")
    scale, zero_point = _along(scale, x.ndim, axis), _along(zero_point, x.ndim, axis)
    codes = np.rint(x / scale) + zero_point
    return np.clip(codes, *quant_range).astype(np.int8)


def quantize_tensor(x, scale, zero_point=0, axis=None, symmetric=False):
    """``x`` (a float Tensor or array) as an int8 Tensor: ``clamp(round(x / scale) + zero_point)``.

    ``scale`` and ``zero_point`` are numbers (per tensor) or 1-D arrays with one entry per index
    of ``axis`` (per channel). ``symmetric=True`` clamps to -127..127, else to -128..127."""
    array = array_of(x)
    if array.dtype.kind != "f":
        raise TypeError(f"quantize_tensor: expected a floating-point tensor, got dtype {array.dtype}")
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"quantize_tensor: symmetric must be True or False, got {symmetric!r}")
    quant_range = SYMMETRIC_RANGE if symmetric else AFFINE_RANGE
    scale, zero_point, axis = _checked_qparams(scale, zero_point, array, axis, quant_range, "quantize_tensor")
    return Tensor(quantize_array(array, scale, zero_point, axis, quant_range, "quantize_tensor"))


def dequantize_tensor(q, scale, zero_point=0, axis=None):
    """The real values an int8 tensor stands for, as float32: ``scale * (q - zero_point)``."""
    array = array_of(q)
    if array.dtype != np.int8:
        raise TypeError(f"dequantize_tensor: expected an int8 tensor, got dtype {array.dtype}")
    scale, zero_point, axis = _checked_qparams(scale, zero_point, array, axis, AFFINE_RANGE, "dequantize_tensor")
    scale, zero_point = _along(scale, array.ndim, axis), _along(zero_point, array.ndim, axis)
    with np.errstate(over="ignore"):  # beyond float32's range is inf, as IEEE says
        return Tensor(((array.astype(np.int32) - zero_point) * scale).astype(np.float32))


def checked_scale(scale, where: str) -> np.ndarray:
    """``scale`` (a number, or one per channel) as float64, each a finite positive number."""
    values = np.asarray(array_of(scale))
    if values.dtype.kind not in "iuf":
        raise TypeError(f"{where}: scale must be a positive number (or one per channel), got {scale!r}")
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(f"{where}: scale must be positive and finite, got {values}")
    return values


def checked_zero_point(zero_point, quant_range, where: str) -> np.ndarray:
    """``zero_point`` (an int, or one per channel): integer codes inside ``quant_range``."""
    values = np.asarray(array_of(zero_point))
    low, high = quant_range
    if values.dtype.kind not in "iu":
        raise TypeError(f"{where}: zero_point must be an integer code in {low}..{high}, got {zero_point!r}")
    if values.size and (values.min() < low or values.max() > high):
        raise ValueError(f"{where}: zero_point must be a code in {low}..{high}, got {values}")
    return values


def channel_axis(axis, ndim: int, where: str):
    """None (per tensor) or ``axis`` as an index into ``ndim`` dimensions (per channel)."""
    if axis is None:
        return None
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise TypeError(f"{where}: axis must be None (per tensor) or an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{where}: axis {axis} is out of range for a {ndim}-D tensor")
    return int(axis) % ndim


def _checked_qparams(scale, zero_point, array, axis, quant_range, where):
    """Positive scales; integer zero points in range; per channel, one of each per index of ``axis``."""
    scale, zero_point = checked_scale(scale, where), checked_zero_point(zero_point, quant_range, where)
    axis = channel_axis(axis, array.ndim, where)
    if axis is None:
        if scale.ndim or zero_point.ndim:
            raise ValueError(f"{where}: per-tensor quantization takes one scale and zero point; "
                             f"got shapes {scale.shape} and {zero_point.shape} (pass axis= for per channel)")
        return scale, zero_point, axis
    channels = array.shape[axis]
    for name, values in (("scale", scale), ("zero_point", zero_point)):
        if values.ndim and values.shape != (channels,):
            raise ValueError(f"{where}: per-channel {name} along axis {axis} must have shape ({channels},), "
                             f"got {values.shape}")
    return scale, zero_point, axis


def k_block(a_bound: int, b_bound: int) -> int:
    """How many products of integers of size at most ``a_bound`` and ``b_bound`` one float32 dot
    product may add up exactly: every partial sum stays within 2**24."""
    return max(1, EXACT_FLOAT32_INTEGER // (a_bound * b_bound))


def exact_integer_matmul(a, b, block: int):
    """``a @ b`` of float32 matrices holding integers, exactly, as int32: one float32 GEMM per
    block of ``block`` columns of ``a`` (rows of ``b``), the blocks added in int32.

    ``block`` comes from ``k_block``: within a block every partial sum is an integer below 2**24,
    which float32 holds exactly, so BLAS's result is the integer result."""
    k = a.shape[1]
    if k * EXACT_FLOAT32_INTEGER // block > _INT32_MAX:
        raise ValueError(f"exact_integer_matmul: K={k} products could overflow an int32 accumulator")
    if k <= block:
        return (a @ b).astype(np.int32)
    total = np.zeros((a.shape[0], b.shape[1]), np.int32)
    for start in range(0, k, block):  # a handful of blocks, each one BLAS call
        total += (a[:, start : start + block] @ b[start : start + block]).astype(np.int32)
    return total


def int8_matmul(a, b):
    """``a @ b`` of int8 matrices (M, K) and (K, N), exactly, as int32 (M, N), through float32 BLAS."""
    a, b = array_of(a), array_of(b)
    for name, m in (("a", a), ("b", b)):
        if m.dtype != np.int8 or m.ndim != 2:
            raise TypeError(f"int8_matmul: {name} must be a 2-D int8 matrix, got {m.ndim}-D {m.dtype}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"int8_matmul: shapes {a.shape} and {b.shape} do not fit (K must agree)")
    return exact_integer_matmul(a.astype(np.float32), b.astype(np.float32), k_block(128, 128))


def requantize(accumulator, multiplier, zero_point: int, floor: int = AFFINE_RANGE[0]):
    """Accumulators (rows, channels), int32 or float32 holding integers -> int8 codes at the next
    layer's scale: ``clamp(round(acc * multiplier) + zero_point, floor, 127)``, ``multiplier`` one
    per channel. In float32, as ONNX Runtime requantizes: this is the one rounding of the layer,
    and float32's relative error of 2**-24 moves a code only when acc * multiplier lies within
    that of a half-integer. A ReLU fused into the layer is ``floor = zero_point``: the code of
    the real 0 is the smallest it lets through. A float32 ``accumulator`` is used up (overwritten)."""
    scaled = accumulator.astype(np.float32, copy=False)  # the steps below work in place
    scaled *= multiplier.astype(np.float32)
    scaled += zero_point  # an integer: rint(a) + z == rint(a + z)
    np.rint(scaled, out=scaled)
    np.clip(scaled, floor, AFFINE_RANGE[1], out=scaled)
    return scaled.astype(np.int8)
