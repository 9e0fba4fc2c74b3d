"""Losses against integer class targets: softmax cross-entropy and negative log-likelihood.

The class axis is axis 1: inputs are (N, C) or (N, C, d1, ...) with targets (N,) or
(N, d1, ...), or one unbatched sample (C,) with a 0-d target. Targets equal to
``ignore_index`` count for nothing and are left out of the mean.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from tinytorch_core import Function
from tinytorch_core.checks import array_of, not_floating, shape_of

from .reduction import check_reduction, grad_scale, reduce_loss


class ClassTargets(NamedTuple):
    """Integer class targets in batched form, as the class-loss kernels use them."""

    index: np.ndarray  # (N, ...) the class of each entry; ignored entries hold class 0
    valid: np.ndarray | None  # bool mask of the entries that count; None when all count
    count: int  # how many entries count: the divisor of the mean
    unbatched: bool  # the input was one sample (C,): results drop the batch axis again
    flat: np.ndarray | None  # (N, C) inputs: where each target sits in the flattened array (fast path)


def _batched(input, target, valid):
    """``input`` with a batch axis and its ``ClassTargets`` (an unbatched (C,) sample becomes (1, C))."""
    unbatched = input.ndim == 1
    if unbatched:
        input, target = input[None], target.reshape(1)
        valid = None if valid is None else valid.reshape(1)
    count = target.size if valid is None else int(np.count_nonzero(valid))
    return input, ClassTargets(target, valid, count, unbatched, _flat_positions(input, target))


def _flat_positions(x, target):
    """For (N, C) logits, ``n * C + target[n]``: where each target's entry sits in the flattened
    array, so that picking and subtracting are one flat index each (fast path: -6 % of a W3
    step); None for other shapes, which take the plain path of ``_pick`` and ``_subtract_at``."""
    if x.ndim != 2:
        return None
    row_starts = np.arange(0, x.size, x.shape[1])
    return row_starts + target.astype(np.intp, copy=False)  # uint64 + int64 would be float64


def _pick(a, targets: ClassTargets):
    """``a[n, target[n, ...], ...]``: the class-axis (axis 1) entry each target names."""
    if targets.flat is not None:  # fast path: see _flat_positions
        return a.reshape(-1)[targets.flat]
    return np.take_along_axis(a, np.expand_dims(targets.index, 1), axis=1).squeeze(1)


def _subtract_at(a, targets: ClassTargets, values) -> None:
    """``a[n, target[n, ...], ...] -= values`` in place (each position is hit once); ``a`` is a
    fresh C-contiguous array, so that its flattened form is a view."""
    if targets.flat is not None:  # fast path: see _flat_positions
        a.reshape(-1)[targets.flat] -= values
        return
    index = np.expand_dims(targets.index, 1)
    picked = np.take_along_axis(a, index, axis=1)
    picked -= np.expand_dims(values, 1) if np.ndim(values) else values
    np.put_along_axis(a, index, picked, axis=1)


def _reduced(loss, reduction, targets: ClassTargets):
    """The per-entry ``loss`` with ignored entries zeroed, reduced over the counted entries."""
    if targets.valid is not None:
        loss = loss * targets.valid
    if reduction == "none" and targets.unbatched:
        return loss[0]
    return reduce_loss(loss, reduction, targets.count)


def _per_entry_scale(grad, reduction, targets: ClassTargets):
    """What each entry's gradient is multiplied by: the reduction's scale, zero where ignored."""
    if reduction == "none":
        grad = grad.reshape(targets.index.shape)
    scale = grad_scale(grad, reduction, targets.count)
    return scale if targets.valid is None else scale * targets.valid


def _unbatch(g, targets: ClassTargets):
    return g[0] if targets.unbatched else g


# ---- target validation -----------------------------------------------------------------------
def _expected_target_shape(op, shape):
    """The target shape that fits an input of ``shape``, and the number of classes."""
    if len(shape) == 0:
        raise ValueError(f"{op}: input must have a class axis, shape (C,) or (N, C, ...), got a scalar")
    if len(shape) == 1:
        return (), shape[0]
    return (shape[0],) + tuple(shape[2:]), shape[1]


def _check_integer_targets(op, t) -> None:
    if t.dtype.kind == "f":
        raise TypeError(
            f"{op}: target must hold integer class indices, got floating-point dtype {t.dtype}; "
            "convert it with .astype(np.int64) (class probabilities are not supported as targets)"
        )
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")


def _check_target_shape(op, t, shape, expected) -> None:
    if t.shape != expected:
        layout = "(N, C)" if len(shape) == 2 else "(N, C, d1, ...)" if len(shape) > 2 else "(C,)"
        raise ValueError(
            f"{op}: target shape {t.shape} does not fit input shape {shape} {layout}; expected target "
            f"shape {expected}, one class index per {'sample' if len(shape) <= 2 else 'sample and position'}"
        )


def _check_class_range(op, t, n_classes, ignore_index) -> None:
    if t.size and (t.min() < 0 or t.max() >= n_classes):
        bad = t.min() if t.min() < 0 else t.max()
        note = "" if ignore_index is None else f" (ignore_index={ignore_index})"
        raise IndexError(
            f"{op}: target holds class index {int(bad)}, but the input has C={n_classes} classes "
            f"(valid indices 0..{n_classes - 1}){note}"
        )


def _class_targets(op, input, target, ignore_index):
    """Validate integer class targets against ``input`` (N, C, d1, ...) or (C,).

    Returns ``(safe_target, valid)``: ``safe_target`` has ignored entries replaced by class 0,
    ``valid`` is the bool mask of counted entries, or None when every entry counts.
    """
    shape = shape_of(input)
    t = array_of(target)
    _check_integer_targets(op, t)
    expected, n_classes = _expected_target_shape(op, shape)
    _check_target_shape(op, t, shape, expected)
    valid = None
    if ignore_index is not None and (t == ignore_index).any():
        valid = t != ignore_index
        t = np.where(valid, t, 0)
    _check_class_range(op, t, n_classes, ignore_index)
    return t, valid


# ---- cross-entropy ---------------------------------------------------------------------------
class CrossEntropyFunction(Function):
    """Softmax cross-entropy of logits (N, C, ...) against integer targets (N, ...), fused:
    forward ``logsumexp(x) - x[target]`` (max-subtracted), backward ``softmax - onehot``.

    With label smoothing eps the target is ``(1 - eps) * onehot + eps / C`` (PyTorch's
    definition): the loss adds ``eps * mean over classes of -log p``, the backward subtracts
    ``eps / C`` from every class as well.
    """

    @staticmethod
    def forward(ctx, logits, target=None, valid=None, label_smoothing=0.0, reduction="mean"):
        if logits.dtype.kind != "f":
            raise not_floating(ctx, logits)
        x, targets = _batched(logits, target, valid)
        shifted = x - x.max(axis=1, keepdims=True)  # max-subtraction: exp never overflows
        exp = np.exp(shifted)
        sums = exp.sum(axis=1, keepdims=True)
        log_sum = np.log(sums).squeeze(1)  # logsumexp of the shifted logits
        loss = log_sum - _pick(shifted, targets)  # -log p[target]
        if label_smoothing:
            mean_neg_log_p = log_sum - shifted.mean(axis=1)
            loss = (1 - label_smoothing) * loss + label_smoothing * mean_neg_log_p
        ctx.save_for_backward(exp / sums)  # the softmax
        ctx.targets, ctx.label_smoothing, ctx.reduction = targets, label_smoothing, reduction
        return _reduced(loss, reduction, targets)

    @staticmethod
    def backward(ctx, grad):
        (probs,) = ctx.saved_tensors
        targets, smoothing = ctx.targets, ctx.label_smoothing
        scale = _per_entry_scale(grad, ctx.reduction, targets)
        class_scale = scale[:, None] if scale.ndim else scale  # broadcast over the classes (axis 1)
        g = probs * class_scale
        if smoothing:
            _subtract_at(g, targets, scale * (1 - smoothing))
            g -= class_scale * (smoothing / probs.shape[1])
        else:
            _subtract_at(g, targets, scale)
        return _unbatch(g, targets), None, None, None, None  # None: target, valid, label_smoothing, reduction


def cross_entropy(logits, target, ignore_index=None, label_smoothing=0.0, reduction="mean"):
    """Cross-entropy of raw ``logits`` against integer class ``target``.

    ``logits`` (N, C) or (N, C, d1, ...) (or (C,) for one sample), ``target`` (N,) or (N, d1, ...)
    of integer classes in ``0..C-1``. Entries equal to ``ignore_index`` contribute nothing and are
    left out of the mean. ``label_smoothing`` eps mixes the one-hot target with the uniform
    distribution: ``(1 - eps) * nll + eps * mean_c(-log p_c)``, as PyTorch defines it.
    """
    op = "cross_entropy"
    check_reduction(op, reduction)
    if not isinstance(label_smoothing, numbers.Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    t, valid = _class_targets(op, logits, target, ignore_index)
    return CrossEntropyFunction.apply(logits, t, valid, float(label_smoothing), reduction)


# ---- negative log-likelihood -----------------------------------------------------------------
class NLLLossFunction(Function):
    """Negative log-likelihood ``-input[n, target[n]]`` of log-probabilities (N, C, ...);
    backward ``-1`` at each target's class, zero elsewhere."""

    @staticmethod
    def forward(ctx, input, target=None, valid=None, reduction="mean"):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        x, targets = _batched(input, target, valid)
        ctx.targets, ctx.reduction = targets, reduction
        ctx.batched_shape, ctx.input_dtype = x.shape, x.dtype
        return _reduced(-_pick(x, targets), reduction, targets)

    @staticmethod
    def backward(ctx, grad):
        targets = ctx.targets
        g = np.zeros(ctx.batched_shape, dtype=ctx.input_dtype)
        _subtract_at(g, targets, _per_entry_scale(grad, ctx.reduction, targets))
        return _unbatch(g, targets), None, None, None  # None: target, valid, reduction


def nll_loss(input, target, ignore_index=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (e.g. from ``log_softmax``),
    with the same shapes, ``ignore_index`` and ``reduction`` as ``cross_entropy``."""
    op = "nll_loss"
    check_reduction(op, reduction)
    t, valid = _class_targets(op, input, target, ignore_index)
    return NLLLossFunction.apply(input, t, valid, reduction)
