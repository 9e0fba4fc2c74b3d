"""Running sums and products: ``cumsum`` along an axis, and ``prod``, whose gradient is built
from running products.

Integer and bool tensors add and multiply up in int64, as in PyTorch (NumPy would keep uint8 and
overflow at 256); float16 adds up in float32 (``checks.computed_in_float32``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import flops as count  # FLOP formulas
from ..checks import computed_in_float32, normalize_axis, shape_of
from ..function import Function
from ..host.samples import Sample, randn


def _accumulating(a: np.ndarray) -> np.ndarray:
    """``a`` in the dtype its sums and products run in: int64 for integers and bools."""
    return a.astype(np.int64) if a.dtype.kind in "biu" else computed_in_float32(a)


class CumSum(Function):
    """``out[i] = a[0] + ... + a[i]`` along ``axis``. Backward: ``a[j]`` is part of every
    ``out[i]`` with ``i >= j``, so its gradient is ``grad[j] + ... + grad[n-1]``: the running sum
    of the gradient taken from the end (flip, cumsum, flip)."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis, scalar = axis, a.ndim == 0
        out = np.cumsum(_accumulating(a).reshape(1) if scalar else _accumulating(a), axis=axis)
        out = out.reshape(()) if scalar else out  # PyTorch's 0-d rule: the scalar itself
        return out.astype(a.dtype) if a.dtype.kind == "f" else out

    @staticmethod
    def backward(ctx, grad):
        if grad.ndim == 0:
            return grad, None
        summed = np.cumsum(np.flip(computed_in_float32(grad), ctx.axis), axis=ctx.axis)  # float16: in float32
        return np.flip(summed, ctx.axis).astype(grad.dtype, copy=False), None


class Prod(Function):
    """The product of the entries along ``axis`` (a tuple, or None for all of them).

    Backward: d(x0 x1 ... xn-1)/dxi is the product of every other entry, which is computed as
    (product of the entries before i) x (product of the entries after i): two running products,
    no division, so a zero entry gives the right gradient (``out / xi`` would be 0/0 there)."""

    flops = staticmethod(count.per_input_element)

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.save_for_backward(a)
        ctx.axis, ctx.keepdims = axis, keepdims
        out = np.prod(_accumulating(a), axis=axis, keepdims=keepdims)
        return out.astype(a.dtype) if a.dtype.kind == "f" else out

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        axes = tuple(range(a.ndim)) if ctx.axis is None else ctx.axis
        others = _products_of_the_others(computed_in_float32(a), axes)  # float16 running products overflow
        kept = grad if ctx.keepdims or not axes else np.expand_dims(grad, axes)
        return (kept * others).astype(a.dtype, copy=False), None, None


def _products_of_the_others(a: np.ndarray, axes: tuple) -> np.ndarray:
    """For every entry of ``a``, the product of the other entries of its reduction over ``axes``."""
    # 1. line the reduced entries up on one last axis: (kept axes..., n)
    rest = [d for d in range(a.ndim) if d not in axes]
    moved = np.transpose(a, rest + list(axes))
    lined = moved.reshape(moved.shape[:len(rest)] + (math.prod(a.shape[d] for d in axes),))
    # 2. before[..., i] = x0 ... xi-1 and after[..., i] = xi+1 ... xn-1 (1 for none)
    before, after = np.ones_like(lined), np.ones_like(lined)
    np.cumprod(lined[..., :-1], axis=-1, out=before[..., 1:])
    after[..., :-1] = np.cumprod(lined[..., :0:-1], axis=-1)[..., ::-1]
    # 3. their product, back in a's layout
    others = (before * after).reshape(moved.shape)
    return np.transpose(others, np.argsort(rest + list(axes)))


# ---- front-ends -------------------------------------------------------------------------------------
def cumsum(x, dim: int):
    """The running sum of ``x`` along ``dim``."""
    return CumSum.apply(x, normalize_axis(dim, len(shape_of(x)), "cumsum"))


# ---- sample inputs ----------------------------------------------------------------------------------
def cumsum_samples(rng):
    yield Sample(randn(rng, 3, 4), 1)
    yield Sample(randn(rng, 2, 3, 4), -3)
    yield Sample(randn(rng, 5), 0)


def prod_samples(rng):
    yield Sample(randn(rng, 3, 4))
    yield Sample(randn(rng, 3, 4), dim=1)
    yield Sample(randn(rng, 2, 3, 4), dim=-1, keepdim=True)
    with_zeros = randn(rng, 3, 4)
    with_zeros[0, 1] = with_zeros[2, 0] = with_zeros[2, 3] = 0.0  # one zero, and two in one reduction
    yield Sample(with_zeros, dim=1)
    yield Sample(with_zeros, axis=(0, 1))
