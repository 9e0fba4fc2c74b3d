"""Reductions of sizes: the vector p-norm ``norm`` and ``logsumexp``, a smooth maximum.

Both have a point where the textbook derivative divides by zero or overflows; each backward says
what it does there: the norm of a zero vector has gradient 0 (PyTorch's subgradient), and
``logsumexp`` subtracts the maximum before ``exp`` (so ``exp`` never overflows).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import flops as count  # FLOP formulas
from ..checks import computed_in_float32, normalize_axes, not_floating, shape_of, true_or_false
from ..function import Function
from ..host.samples import Sample, rand_away_from, randn


def _kept(out: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """A result computed with ``keepdims=True``, in the shape the caller asked for."""
    if keepdims:
        return out
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def _as_kept(grad: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """``grad`` with the reduced axes back in place (size 1), to broadcast against the input."""
    return grad if keepdims or axis is None else np.expand_dims(grad, axis)


class Norm(Function):
    """``||a||_p = (sum |a_i|^p)^(1/p)`` over ``axis`` (a tuple, or None: every entry); ``p`` is a
    number >= 1 or ``inf`` (``max |a_i|``).

    Backward, by p:

    - ``p = 1``: d sum|a_i| / da_i = sign(a_i) (0 at 0, as ``abs``);
    - ``p = inf``: sign(a_i) at the entries whose size is the maximum, shared evenly among ties
      (as ``max``);
    - otherwise: d||a||/da_i = sign(a_i) |a_i|^(p-1) / ||a||^(p-1) (``a_i / ||a||`` for p = 2);
      0 where the norm is 0, PyTorch's subgradient at the zero vector (the formula gives 0/0).
    """

    flops = staticmethod(count.per_input_element)

    @staticmethod
    def forward(ctx, a, p, axis=None, keepdims=False):
        if a.dtype.kind != "f":
            raise not_floating(ctx, a)
        dtype, a = a.dtype, computed_in_float32(a)  # float16 squares overflow at 256
        size = np.abs(a)
        if p == math.inf:
            if a.size == 0 and (axis is None or any(a.shape[i] == 0 for i in axis)):
                raise ValueError(f"{Norm.display_name()}: the inf-norm over an empty axis of shape {a.shape} "
                                 "has no value (the maximum of nothing)")
            out = size.max(axis=axis, keepdims=True)
        elif p == 1:
            out = size.sum(axis=axis, keepdims=True)
        else:  # scaled by the largest size: |a|^p neither underflows (1e-30) nor overflows (20^50)
            peak = size.max(axis=axis, keepdims=True, initial=0)
            scale = np.where((peak > 0) & np.isfinite(peak), peak, 1)  # an inf entry: the norm is inf
            out = scale * ((size / scale) ** p).sum(axis=axis, keepdims=True) ** (1 / p)
        ctx.save_for_backward(a, out)
        ctx.p, ctx.axis, ctx.keepdims = p, axis, keepdims
        return _kept(out, axis, keepdims).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        g, p = _as_kept(grad, ctx.axis, ctx.keepdims), ctx.p
        sign = (a > 0).astype(a.dtype) - (a < 0)  # 0 at 0
        if p == 1:
            return g * sign, None, None, None
        if p == math.inf:
            hit = np.abs(a) == out  # the entries that attain the maximum
            return g * sign * hit / hit.sum(axis=ctx.axis, keepdims=True), None, None, None
        safe = np.where(out == 0, 1, out)  # the zero vector: every a_i is 0, so its gradient is 0
        slope = a / safe if p == 2 else sign * (np.abs(a) / safe) ** (p - 1)  # a ratio: no |a|^p to underflow
        return g * slope, None, None, None


class LogSumExp(Function):
    """``log(sum(exp(a)))`` over ``axis`` (a tuple), computed as ``m + log(sum(exp(a - m)))`` with
    ``m`` the maximum, so that no ``exp`` overflows (``m`` is 0 where it is infinite, as in
    PyTorch: ``inf - inf`` would be NaN). Over no entries it is ``log(0) = -inf``.

    Backward: d/da_i log(sum_j exp(a_j)) = exp(a_i) / sum_j exp(a_j) = exp(a_i - out), the softmax.
    """

    flops = staticmethod(count.per_input_element)

    @staticmethod
    def forward(ctx, a, axis, keepdims=False):
        if a.dtype.kind != "f":
            raise not_floating(ctx, a)
        work = computed_in_float32(a)
        peak = work.max(axis=axis, keepdims=True, initial=-np.inf)
        shift = np.where(np.isfinite(peak), peak, 0)
        out = (np.log(np.exp(work - shift).sum(axis=axis, keepdims=True)) + shift).astype(a.dtype)
        ctx.save_for_backward(a, out)
        ctx.axis, ctx.keepdims = axis, keepdims
        return _kept(out, axis, keepdims)

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        return _as_kept(grad, ctx.axis, ctx.keepdims) * np.exp(a - out), None, None


# ---- front-ends -------------------------------------------------------------------------------------
def norm(x, p="fro", dim=None, keepdim: bool = False):
    """The p-norm of ``x`` over ``dim`` (an int, a tuple, or None: every entry). ``p``: ``"fro"``
    (the default; the 2-norm of the entries), ``inf``, or a number >= 1 (1, 2, 3, ...)."""
    order = _norm_order(p)
    every_axis = isinstance(dim, (tuple, list)) and len(dim) == 0  # () or []: every axis, as in PyTorch
    axes = normalize_axes(None if every_axis else dim, len(shape_of(x)), "norm")
    return Norm.apply(x, order, axes, true_or_false(keepdim, "keepdim", "norm"))


def _norm_order(p):
    """``p`` as the number the kernel reads: ``"fro"`` is 2."""
    if p == "fro":
        return 2
    if isinstance(p, numbers.Real) and not isinstance(p, bool) and (p >= 1 or p == math.inf):
        return math.inf if p == math.inf else p
    raise ValueError(f"norm: p must be 'fro', inf or a number >= 1, got {p!r}")


def logsumexp(x, dim, keepdim: bool = False):
    """``log(sum(exp(x)))`` over ``dim`` (an int or a tuple), without overflow."""
    if dim is None:
        raise TypeError("logsumexp: dim is required (an int or a tuple of ints), as in PyTorch")
    axes = normalize_axes(dim, len(shape_of(x)), "logsumexp")
    return LogSumExp.apply(x, axes, true_or_false(keepdim, "keepdim", "logsumexp"))


# ---- sample inputs ----------------------------------------------------------------------------------
def norm_samples(rng):
    yield Sample(randn(rng, 3, 4))  # "fro": every entry
    yield Sample(randn(rng, 3, 4), 2, 1)
    yield Sample(rand_away_from(rng, (3, 4), low=0.1), 1, -1, True)  # away from abs's kink at 0
    yield Sample(rng.permutation(12).reshape(3, 4) * 0.1 + 0.05, np.inf, 0)  # one largest entry per column
    yield Sample(randn(rng, 2, 3, 4), 3, (0, 2))


def logsumexp_samples(rng):
    yield Sample(randn(rng, 3, 4), 1)
    yield Sample(randn(rng, 2, 3, 4) * 30, (0, 2), True)  # exp(90) would overflow float32; the shift keeps it exact
    yield Sample(randn(rng, 5), -1)
