"""Reductions over an axis tuple (or everything), with or without kept dimensions."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..checks import computed_in_float32, not_floating
from .. import flops as count  # FLOP formulas
from ..function import Function
from ..host.samples import Sample, randn


def _expand(grad, axis, keepdims):
    """Reinsert reduced axes so ``grad`` broadcasts against the input."""
    if keepdims or axis is None:
        return grad
    return np.expand_dims(grad, axis)


class Sum(Function):
    flops = staticmethod(count.per_input_element)

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        if a.dtype.kind == "u":  # NumPy sums unsigned integers as uint64, PyTorch as int64
            return a.sum(axis=axis, keepdims=keepdims, dtype=np.int64)
        if a.dtype.char == "e":  # float16 adds up in float32 (see checks.computed_in_float32)
            return a.sum(axis=axis, keepdims=keepdims, dtype=np.float32).astype(a.dtype)
        return a.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return np.broadcast_to(_expand(grad, ctx.axis, ctx.keepdims), ctx.shape)


class Mean(Function):
    flops = staticmethod(count.per_input_element)

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        if a.dtype.kind != "f":
            raise not_floating(ctx, a)
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        ctx.count = a.size if axis is None else math.prod(a.shape[i] for i in axis)
        if ctx.count == 0:  # NumPy would warn "Mean of empty slice" and give NaN
            raise ValueError(
                f"{Mean.display_name()}: the mean over 0 elements is undefined (input shape {a.shape}, "
                f"axis {axis}); skip empty batches, or use sum"
            )
        return a.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        g = _expand(grad, ctx.axis, ctx.keepdims) * (1.0 / ctx.count)
        return np.broadcast_to(g, ctx.shape)


class _Extreme(Function):
    """Max/min: the gradient is shared evenly among the positions that attain the extreme (a NaN
    is the extreme of its reduction: the NaN positions share it)."""

    reduce = staticmethod(np.max)

    @classmethod
    def _forward(cls, ctx, a, axis, keepdims):
        if a.size == 0 and (axis is None or any(a.shape[i] == 0 for i in axis)):  # (0, 3) over axis 1: (0,)
            raise ValueError(f"{cls.display_name()}: reduction over an empty axis of shape {a.shape}")
        kept = cls.reduce(a, axis=axis, keepdims=True)
        ctx.save_for_backward(a, kept)
        ctx.axis, ctx.keepdims = axis, keepdims
        if keepdims:
            return kept
        return kept.reshape(()) if axis is None else np.squeeze(kept, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        a, kept = ctx.saved_tensors
        hit = (a == kept) | ((a != a) & (kept != kept))  # x != x: x is NaN (NaN == NaN is False)
        count = hit.sum(axis=ctx.axis, keepdims=True)
        g = grad.reshape(kept.shape) if not ctx.keepdims else grad
        return hit * (g / count)


class Max(_Extreme):
    flops = staticmethod(count.per_input_element)

    reduce = staticmethod(np.max)

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        return Max._forward(ctx, a, axis, keepdims)


class Min(_Extreme):
    flops = staticmethod(count.per_input_element)

    reduce = staticmethod(np.min)

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        return Min._forward(ctx, a, axis, keepdims)


class ValuesAndIndices(NamedTuple):
    """What ``x.max(dim)`` and ``x.min(dim)`` return, as in PyTorch: ``values, indices = x.max(1)``."""

    values: object
    indices: object


class ExtremeAlong(Function):
    """PyTorch's ``x.max(dim)``/``x.min(dim)``: the extreme along one axis and its index (the
    first one on ties; a NaN is the extreme). The gradient goes to that index alone, where
    ``max(axis=...)`` shares it among ties."""

    flops = staticmethod(count.per_input_element)

    @staticmethod
    def forward(ctx, a, axis, keepdims, largest):
        if a.shape[axis] == 0:
            raise ValueError(f"{'max' if largest else 'min'}: axis {axis} of shape {a.shape} is empty")
        find = np.argmax if largest else np.argmin  # both stop at the first NaN, as PyTorch does
        index = np.expand_dims(find(a, axis=axis), axis)
        values = np.take_along_axis(a, index, axis=axis)
        ctx.shape, ctx.axis, ctx.index = a.shape, axis, index
        if keepdims:
            return values, index.copy()  # a copy: the caller may change the indices it gets
        return np.squeeze(values, axis), np.squeeze(index, axis).copy()

    @staticmethod
    def backward(ctx, grad, index_grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        np.put_along_axis(full, ctx.index, grad.reshape(ctx.index.shape), axis=ctx.axis)
        return full, None, None, None


class Var(Function):
    """Variance with ``ddof`` (0 = biased, the LayerNorm/BatchNorm convention)."""

    flops = staticmethod(count.variance)

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, ddof=0):
        if a.dtype.kind != "f":
            raise not_floating(ctx, a)
        if not isinstance(ddof, int) or isinstance(ddof, bool) or ddof < 0:  # True would read as 1
            raise TypeError(f"var: ddof must be an int >= 0, got {ddof!r}")
        n = a.size if axis is None else int(np.prod([a.shape[i] for i in axis]))
        work = computed_in_float32(a)
        centered = work - work.sum(axis=axis, keepdims=True) / max(n, 1)
        if n - ddof <= 0:
            raise ValueError(f"var: {n} element(s) per reduction is too few for ddof={ddof}")
        ctx.save_for_backward(centered)
        ctx.axis, ctx.keepdims, ctx.denominator = axis, keepdims, n - ddof
        return ((centered * centered).sum(axis=axis, keepdims=keepdims) / (n - ddof)).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        g = _expand(grad, ctx.axis, ctx.keepdims)
        return g * centered * (2.0 / ctx.denominator)


def reduction_samples(rng):
    yield Sample(randn(rng, 3, 4))
    yield Sample(randn(rng, 3, 4), axis=(1,))
    yield Sample(randn(rng, 2, 3, 4), axis=(0, 2), keepdims=True)
    yield Sample(randn(rng, 2, 3, 4), axis=(1,), keepdims=False)


def var_samples(rng):
    yield from reduction_samples(rng)
    yield Sample(randn(rng, 4, 5), axis=(0,), ddof=1)


def extreme_samples(rng):
    # distinct values, so the extreme is unique and finite differences are valid
    for shape, kwargs in (((3, 4), {}), ((3, 4), {"axis": (1,)}), ((2, 3, 4), {"axis": (0, 2), "keepdims": True})):
        values = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + randn(rng, *shape) * 0.01
        yield Sample(values, **kwargs)
