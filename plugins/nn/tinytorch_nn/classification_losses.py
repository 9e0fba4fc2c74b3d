"""Losses against integer class targets: softmax cross-entropy and negative log-likelihood.

The class axis is axis 1: inputs are (N, C) or (N, C, d1, ...) with targets (N,) or
(N, d1, ...), or one unbatched sample (C,) with a 0-d target. Targets equal to
``ignore_index`` count for nothing and are left out of the mean. A class ``weight`` (C,)
multiplies each entry's loss by the weight of its target class; the mean then divides by the
sum of those weights instead of the number of entries (PyTorch's definition).

``cross_entropy`` also takes class probabilities of the logits' shape as its target; that
loss lives in ``soft_cross_entropy.py``.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from tinytorch_core import Function, is_grad_enabled
from tinytorch_core import flops as count  # FLOP formulas
from tinytorch_core.checks import array_of, computed_in_float32, dtype_of, not_floating, shape_of

from .reduction import check_reduction, grad_scale, reduce_loss
from .soft_cross_entropy import SoftCrossEntropyFunction, check_probability_target


class ClassTargets(NamedTuple):
    """Integer class targets in batched form, as the class-loss kernels use them."""

    index: np.ndarray  # (N, ...) the class of each entry; ignored entries hold class 0
    valid: np.ndarray | None  # bool mask of the entries that count; None when all count
    weight: np.ndarray | None  # (N, ...) each entry's class weight, weight[index]; None: unweighted
    count: float  # the divisor of the mean: how many entries count, or the sum of their weights
    unbatched: bool  # the input was one sample (C,): results drop the batch axis again
    flat: np.ndarray | None  # (N, C) inputs: where each target sits in the flattened array (fast path)


def _batched(input, target, ignore_index, class_weight=None):
    """``input`` with a batch axis and its ``ClassTargets`` (an unbatched (C,) sample becomes (1, C)).

    The entries equal to ``ignore_index`` are found here, inside the op, so that a replay of a
    compiled step finds them in each new batch."""
    target = np.asarray(target)  # a Python int for one sample
    unbatched = input.ndim == 1
    if unbatched:
        input, target = input[None], target.reshape(1)
    valid = None
    if ignore_index is not None and (target == ignore_index).any():
        valid = target != ignore_index
        target = np.where(valid, target, 0)  # a class each ignored entry can be read at (then zeroed)
    weight = None if class_weight is None else class_weight[target]
    if weight is not None:
        count = float(weight.sum() if valid is None else weight[valid].sum())
    else:
        count = target.size if valid is None else int(np.count_nonzero(valid))
    return input, ClassTargets(target, valid, weight, count, unbatched, _flat_positions(input, target))


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
    """``a[n, target[n, ...], ...] -= values`` in place (each position is hit once)."""
    if targets.flat is not None and a.flags.c_contiguous:  # fast path (_flat_positions); only then is a.reshape(-1) a view
        a.reshape(-1)[targets.flat] -= values
        return
    index = np.expand_dims(targets.index, 1)
    picked = np.take_along_axis(a, index, axis=1)
    picked -= np.expand_dims(values, 1) if np.ndim(values) else values
    np.put_along_axis(a, index, picked, axis=1)


def _reduced(loss, reduction, targets: ClassTargets):
    """The per-entry ``loss`` with ignored entries zeroed, reduced over the counted entries."""
    if targets.valid is not None:
        loss = np.where(targets.valid, loss, 0)  # an ignored entry counts 0, even with NaN logits
    if reduction == "none" and targets.unbatched:
        return loss[0]
    return reduce_loss(loss, reduction, targets.count)


def _per_entry_scale(grad, reduction, targets: ClassTargets):
    """What each entry's gradient is multiplied by: the reduction's scale, zero where ignored."""
    if reduction == "none":
        grad = grad.reshape(targets.index.shape)
    scale = grad_scale(grad, reduction, targets.count)
    return scale if targets.valid is None else np.where(targets.valid, scale, 0)  # NaN scale: ignored ones stay 0


def _unbatch(g, targets: ClassTargets):
    return g[0] if targets.unbatched else g


def _per_class(values):
    """Per-entry ``values`` (N, d1, ...) broadcast over the class axis (axis 1); a 0-d value as it is."""
    return np.expand_dims(values, 1) if np.ndim(values) else values


def _class_column(class_weight, ndim):
    """The (C,) class weights shaped to broadcast along axis 1 of an ``ndim``-dimensional input."""
    return class_weight.reshape((-1,) + (1,) * (ndim - 2))


# ---- target validation -----------------------------------------------------------------------
def _expected_target_shape(op, shape):
    """The target shape that fits an input of ``shape``, and the number of classes."""
    if len(shape) == 0:
        raise ValueError(f"{op}: input must have a class axis, shape (C,) or (N, C, ...), got a scalar")
    if len(shape) == 1:
        return (), shape[0]
    return (shape[0],) + tuple(shape[2:]), shape[1]


def _check_integer_targets(op, t, shape) -> None:
    if t.dtype.kind == "f":
        probabilities = (
            f"class probabilities as targets must have the input's shape {tuple(shape)}" if op == "cross_entropy"
            else f"{op} takes no class probabilities (cross_entropy does, on logits)"
        )
        raise TypeError(
            f"{op}: target must hold integer class indices, got floating-point dtype {t.dtype} of shape "
            f"{t.shape}; convert it with .astype(np.int64) ({probabilities})"
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
        note = "" if ignore_index is None else f" (ignore_index={ignore_index} marks an entry to skip)"
        raise IndexError(
            f"{op}: target holds class index {int(bad)}, but the input has C={n_classes} classes "
            f"(valid indices 0..{n_classes - 1}){note}"
        )


def _check_class_targets(op, input, target, ignore_index) -> None:
    """Validate integer class targets against ``input`` (N, C, d1, ...) or (C,): integers, of the
    expected shape, each a class index or ``ignore_index``."""
    shape = shape_of(input)
    t = array_of(target)
    _check_integer_targets(op, t, shape)
    expected, n_classes = _expected_target_shape(op, shape)
    if n_classes == 0:
        raise ValueError(f"{op}: the input {tuple(shape)} has no classes (C = 0 on axis {min(len(shape) - 1, 1)}); "
                         "a class target needs at least one")
    _check_target_shape(op, t, shape, expected)
    if t.size and not (t.min() >= 0 and t.max() < n_classes):  # out of range, unless they are ignore_index
        _check_class_range(op, t if ignore_index is None else t[t != ignore_index], n_classes, ignore_index)


def class_weight_of(op, weight, input):
    """``weight`` as a (C,) array of the input's float dtype, or None; a clear error for any
    other shape, a non-float dtype, or a negative or non-finite weight."""
    if weight is None:
        return None
    if getattr(weight, "requires_grad", False) and is_grad_enabled():  # its gradient would be dropped
        raise TypeError(f"{op}: the class weights require grad; they are constants of the loss here "
                        "(pass weight.detach())")
    w = array_of(weight)
    shape = shape_of(input)
    _, n_classes = _expected_target_shape(op, shape)
    if w.dtype.kind != "f":
        raise TypeError(f"{op}: weight must be a floating-point array, one weight per class, got dtype {w.dtype}")
    if w.shape != (n_classes,):
        raise ValueError(f"{op}: weight must have shape (C,) = ({n_classes},), one weight per class of the "
                         f"input {tuple(shape)}, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"{op}: class weights must be finite and non-negative, got {w}")
    dtype = dtype_of(input)
    dtype = dtype if dtype is not None and dtype.kind == "f" else w.dtype
    return np.array(w, dtype=dtype)  # a copy: the backward reads it after the caller may have moved on


# ---- cross-entropy ---------------------------------------------------------------------------
class CrossEntropyFunction(Function):
    """Softmax cross-entropy of logits (N, C, ...) against integer targets (N, ...), fused:
    forward ``logsumexp(x) - x[target]`` (max-subtracted), backward ``softmax - onehot``.

    With class weights w each entry's loss is multiplied by ``w[target]``. With label smoothing
    eps the target is ``(1 - eps) * onehot + eps / C`` (PyTorch's definition): the loss adds
    ``eps * mean over classes of -w_c log p_c``. In general the loss is ``-sum_c a_c log p_c``
    for a per-class share ``a``, and its gradient is ``p * sum(a) - a``.
    """

    flops = staticmethod(count.per_input_element_times(6))  # log-softmax's five, the sum

    @staticmethod
    def forward(ctx, logits, target=None, ignore_index=-100, weight=None, label_smoothing=0.0, reduction="mean"):
        if logits.dtype.kind != "f":
            raise not_floating(ctx, logits)
        x, targets = _batched(computed_in_float32(logits), target, ignore_index, weight)
        shifted = x - x.max(axis=1, keepdims=True)  # max-subtraction: exp never overflows
        exp = np.exp(shifted)
        sums = exp.sum(axis=1, keepdims=True)
        log_sum = np.log(sums).squeeze(1)  # logsumexp of the shifted logits
        loss = log_sum - _pick(shifted, targets)  # -log p[target]
        if targets.weight is not None:
            loss = loss * targets.weight
        if label_smoothing:
            loss = (1 - label_smoothing) * loss + label_smoothing * _mean_neg_log_p(shifted, log_sum, weight)
        ctx.save_for_backward(exp / sums)  # the softmax
        ctx.targets, ctx.weight, ctx.label_smoothing, ctx.reduction = targets, weight, label_smoothing, reduction
        loss = _reduced(loss, reduction, targets)
        return loss.astype(logits.dtype) if logits.dtype.char == "e" else loss  # float16 computed in float32

    @staticmethod
    def backward(ctx, grad):
        (probs,) = ctx.saved_tensors
        targets = ctx.targets
        scale = _per_entry_scale(grad, ctx.reduction, targets)
        target_scale = scale if targets.weight is None else scale * targets.weight  # a's share at the target
        if ctx.label_smoothing:
            g = _smoothed_gradient(probs, targets, scale, target_scale, ctx.label_smoothing, ctx.weight)
        else:  # a is w[target] * onehot: the gradient is w[target] * (p - onehot)
            g = probs * _per_class(target_scale)
            _subtract_at(g, targets, target_scale)
        if targets.valid is not None:  # an ignored entry passes 0, even with NaN logits (0 * NaN is NaN)
            g = np.where(_per_class(targets.valid), g, 0)
        return _unbatch(g, targets), None, None, None, None, None  # None: the targets and the options


def _mean_neg_log_p(shifted, log_sum, weight):
    """``mean over classes of -w_c log p_c`` per entry (w = 1 without class weights)."""
    if weight is None:
        return log_sum - shifted.mean(axis=1)
    neg_log_p = np.expand_dims(log_sum, 1) - shifted
    return (neg_log_p * _class_column(weight, shifted.ndim)).mean(axis=1)


def _smoothed_gradient(probs, targets: ClassTargets, scale, target_scale, eps, weight):
    """``p * sum(a) - a`` with ``a = (1 - eps) w[target] onehot + eps / C * w``, times the
    reduction's scale (already inside ``target_scale``)."""
    n_classes = probs.shape[1]
    weight_sum = n_classes if weight is None else float(weight.sum())
    uniform_share = eps / n_classes  # each class's part of the smoothed target
    g = probs * _per_class((1 - eps) * target_scale + (uniform_share * weight_sum) * scale)
    _subtract_at(g, targets, (1 - eps) * target_scale)
    class_share = uniform_share if weight is None else uniform_share * _class_column(weight, probs.ndim)
    g -= _per_class(scale) * class_share
    return g


def check_ignore_index(where, ignore_index):
    """None, or the int class index whose targets are left out; class weights have their own
    argument (``weight=``), a common slip for PyTorch's positional ``weight``."""
    if ignore_index is not None and (not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool)):
        raise TypeError(
            f"{where}: ignore_index must be an int or None, got {type(ignore_index).__name__}; "
            "pass class weights as weight=..."
        )
    return ignore_index


def check_label_smoothing(op, label_smoothing) -> float:
    if (not isinstance(label_smoothing, numbers.Real) or isinstance(label_smoothing, bool)
            or not 0.0 <= label_smoothing <= 1.0):
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return float(label_smoothing)


def cross_entropy(logits, target, ignore_index=-100, label_smoothing=0.0, reduction="mean", *, weight=None):
    """Cross-entropy of raw ``logits`` against integer class ``target`` or class probabilities.

    ``logits`` (N, C) or (N, C, d1, ...) (or (C,) for one sample), ``target`` (N,) or (N, d1, ...)
    of integer classes in ``0..C-1``. Entries equal to ``ignore_index`` (-100 unless given, as in
    PyTorch) contribute nothing and are left out of the mean. ``weight`` (C,) multiplies each entry's loss by its target class's weight
    (the mean divides by the sum of those weights). ``label_smoothing`` eps mixes the one-hot target
    with the uniform distribution: ``(1 - eps) * nll + eps * mean_c(-w_c log p_c)``, as PyTorch
    defines it.

    A floating-point ``target`` of the logits' shape holds class probabilities: the loss is
    ``-sum_c w_c t_c log p_c`` per entry, averaged over the entries (see ``soft_cross_entropy.py``).
    """
    op = "cross_entropy"
    check_reduction(op, reduction)
    check_ignore_index(op, ignore_index)
    label_smoothing = check_label_smoothing(op, label_smoothing)
    class_weight = class_weight_of(op, weight, logits)
    if check_probability_target(op, logits, target, ignore_index):
        return SoftCrossEntropyFunction.apply(logits, target, class_weight, label_smoothing, reduction)
    _check_class_targets(op, logits, target, ignore_index)
    return CrossEntropyFunction.apply(logits, target, ignore_index, class_weight, label_smoothing, reduction)


# ---- negative log-likelihood -----------------------------------------------------------------
def nll_loss_flops(call) -> int:
    """Two FLOPs per target: its weight's product and the sum."""
    shape = call.inputs[0]
    return 2 * (call.size(shape) // shape[1] if len(shape) > 1 else 1)


class NLLLossFunction(Function):
    """Negative log-likelihood ``-w[target] * input[n, target[n]]`` of log-probabilities (N, C, ...)
    (w = 1 without class weights); backward ``-w[target]`` at each target's class, zero elsewhere."""

    flops = staticmethod(nll_loss_flops)

    @staticmethod
    def forward(ctx, input, target=None, ignore_index=-100, weight=None, reduction="mean"):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        x, targets = _batched(input, target, ignore_index, weight)
        ctx.targets, ctx.reduction = targets, reduction
        ctx.batched_shape, ctx.input_dtype = x.shape, x.dtype
        loss = -_pick(x, targets)
        if targets.weight is not None:
            loss = loss * targets.weight
        return _reduced(loss, reduction, targets)

    @staticmethod
    def backward(ctx, grad):
        targets = ctx.targets
        g = np.zeros(ctx.batched_shape, dtype=ctx.input_dtype)
        scale = _per_entry_scale(grad, ctx.reduction, targets)
        _subtract_at(g, targets, scale if targets.weight is None else scale * targets.weight)
        return _unbatch(g, targets), None, None, None, None  # None: target, ignore_index, weight, reduction


def nll_loss(input, target, ignore_index=-100, reduction="mean", *, weight=None):
    """Negative log-likelihood of log-probabilities ``input`` (e.g. from ``log_softmax``),
    with the same shapes, ``weight``, ``ignore_index`` and ``reduction`` as ``cross_entropy``."""
    op = "nll_loss"
    check_reduction(op, reduction)
    check_ignore_index(op, ignore_index)
    class_weight = class_weight_of(op, weight, input)
    _check_class_targets(op, input, target, ignore_index)
    return NLLLossFunction.apply(input, target, ignore_index, class_weight, reduction)
