"""Losses that compare a prediction with a target element by element: mean squared error and
three forms of binary cross-entropy (on probabilities, on logits, and the sigmoid-BCE pair).

Each is one ``Function`` that computes the per-element loss and reduces it (see
``reduction.py``); the functional wrappers check the operands first.
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Function, Tensor, is_grad_enabled
from tinytorch_core import flops as count  # FLOP formulas
from tinytorch_core.checks import array_of, broadcasts_to, not_floating

from .activations import exp_neg_abs, stable_sigmoid
from .reduction import check_reduction, grad_scale, reduce_loss


def _loss_operands(op, input, target):
    """The target as an array: integer or bool labels in the input's float dtype, float targets
    (and a tensor that requires grad) as they are. (A target of probabilities is checked by the
    op itself, ``check_probability_values``: a compiled step replays ops, not this function.)"""
    data = array_of(input)
    t = array_of(target)
    if t.dtype.kind not in "biuf":  # complex would lose its imaginary part, text has no arithmetic
        raise TypeError(f"{op}: target must hold numbers, got {t.dtype} data")
    if t.shape != data.shape:
        raise ValueError(f"{op}: input shape {data.shape} and target shape {t.shape} must be equal")
    if isinstance(target, Tensor) and target.requires_grad:
        return target
    if t.dtype.kind != "f" and data.dtype.kind == "f":
        t = t.astype(data.dtype)  # integer 0/1 labels: computed in the input's precision
    return t  # a float target of another width promotes the loss, as in PyTorch (float32 and float64: float64)


# ---- mean squared error ----------------------------------------------------------------------
class MSELossFunction(Function):
    """``(input - target)**2``, reduced; backward ``2 (input - target)`` times the reduction's scale."""

    flops = staticmethod(count.per_input_element_times(3))  # subtract, square, sum

    @staticmethod
    def forward(ctx, input, target, reduction="mean"):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        diff = input - target
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        return reduce_loss(diff * diff, reduction)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        g = 2 * diff * grad_scale(grad, ctx.reduction, diff.size)
        need_input, need_target = ctx.needs_input_grad[:2]
        return (g if need_input else None), (-g if need_target else None), None  # None: reduction


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target)**2``, reduced by ``reduction`` (mean/sum/none)."""
    check_reduction("mse_loss", reduction)
    target = _loss_operands("mse_loss", input, target)
    return MSELossFunction.apply(input, target, reduction)


# ---- binary cross-entropy on probabilities ---------------------------------------------------
#: PyTorch's floor under BCE's logarithms: an element's loss is at most 100, never infinite
BCE_LOG_FLOOR = -100.0
#: PyTorch's floor under ``p (1 - p)`` in BCE's gradient: at most ``1e12`` per element
BCE_GRAD_EPS = 1e-12


def _check_probabilities(p) -> None:
    """BCE's input must lie in [0, 1]; the registered op checks it itself, so that it is safe
    to call without the functional wrapper."""
    if p.size and not (np.minimum.reduce(p, axis=None) >= 0 and np.maximum.reduce(p, axis=None) <= 1):  # and NaN
        raise ValueError(
            f"binary_cross_entropy: input must be probabilities in [0, 1], found values in "
            f"[{p.min()}, {p.max()}] (apply sigmoid first, or use "
            "binary_cross_entropy_with_logits on raw scores)"
        )


def check_probability_values(op, target, what: str = "target must be probabilities in [0, 1]") -> None:
    """A target of probabilities lies in [0, 1] (NaN does not); checked inside the op's forward,
    so that a replay of a compiled step checks each new batch too."""
    if target.size:
        lo, hi = np.minimum.reduce(target, axis=None), np.maximum.reduce(target, axis=None)
        if not (lo >= 0 and hi <= 1):  # also catches NaN
            name = op if isinstance(op, str) else op.display_name()
            raise ValueError(f"{name}: {what}, found values in [{lo}, {hi}]")


def _logs(p) -> tuple:
    """``log p`` and ``log(1 - p)``, each floored at ``BCE_LOG_FLOOR`` (``log 0`` is -inf)."""
    return np.maximum(np.log(p), BCE_LOG_FLOOR), np.maximum(np.log1p(-p), BCE_LOG_FLOOR)


def _bce(p, target):
    """The per-element loss ``-(t log p + (1 - t) log(1 - p))`` with floored logarithms. (The
    form with one product, ``-(t (log p - log(1 - p)) + log(1 - p))``, cancels: at p = 1 - 6e-8
    in float32 it gave 0 for a loss of 6e-8.)"""
    log_p, log_q = _logs(p)
    return -(target * log_p + (1 - target) * log_q)


def _bce_target_grad(p, scale):
    """d(loss)/d(target) = ``log(1 - p) - log p`` (floored logarithms), times the reduction's scale."""
    log_p, log_q = _logs(p)
    return (log_q - log_p) * scale


class BinaryCrossEntropyFunction(Function):
    """``-(t log p + (1 - t) log(1 - p))`` on probabilities ``p``, each logarithm floored at -100.

    Backward ``(p - t) / max(p (1 - p), 1e-12)``: a saturated wrong prediction still gets a
    (large) push back. Both floors are PyTorch's, so the two agree at 0 and 1 too.
    """

    flops = staticmethod(count.per_input_element_times(5))  # two logs, two products, sum

    @staticmethod
    def forward(ctx, input, target, reduction="mean", weight=None):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        _check_probabilities(input)
        check_probability_values(ctx, target)
        ctx.save_for_backward(input, target)
        ctx.reduction, ctx.weight = reduction, weight
        return reduce_loss(_weighted(_bce(input, target), weight), reduction)

    @staticmethod
    def backward(ctx, grad):
        p, target = ctx.saved_tensors
        scale = _weighted(grad_scale(grad, ctx.reduction, p.size), ctx.weight)
        need_input, need_target = ctx.needs_input_grad[:2]
        grad_input = (p - target) / np.maximum(p * (1 - p), BCE_GRAD_EPS) * scale if need_input else None
        grad_target = _bce_target_grad(p, scale) if need_target else None
        return grad_input, grad_target, None  # None: reduction


def binary_cross_entropy(input, target, reduction="mean", *, weight=None):
    """Binary cross-entropy on probabilities ``input`` in [0, 1] (e.g. after ``sigmoid``).

    Each logarithm is floored at -100 (``BCE_LOG_FLOOR``), as in PyTorch, so each element's loss
    is at most 100 and never infinite, also at exactly 0 or 1. ``weight`` (broadcastable to the
    input) multiplies each element's loss before the reduction. On raw scores use
    ``binary_cross_entropy_with_logits`` (exact where the probability saturates) or
    ``sigmoid_binary_cross_entropy`` (this clamped loss of ``sigmoid(logits)``, as one node).
    """
    op = "binary_cross_entropy"
    check_reduction(op, reduction)
    target = _loss_operands(op, input, target)
    return BinaryCrossEntropyFunction.apply(input, target, reduction, weight=_loss_weight(op, "weight", weight, input))


# ---- binary cross-entropy on logits ----------------------------------------------------------
class BinaryCrossEntropyWithLogitsFunction(Function):
    """``max(x, 0) - x t + log(1 + exp(-|x|))``: BCE of ``sigmoid(x)``, stable for any ``x``.

    Backward ``sigmoid(x) - t`` (and ``-x`` for the target), times the reduction's scale.
    PyTorch's ``pos_weight`` p scales the positive term: the loss is ``(1 - t) x + l softplus(-x)``
    with ``l = 1 + (p - 1) t``, and the gradient ``(1 - t) + l (sigmoid(x) - 1)`` (and
    ``-x + (p - 1) softplus(-x)`` for the target). ``weight`` multiplies each element's loss.
    """

    flops = staticmethod(count.per_input_element_times(5))  # softplus, product, subtract, sum

    @staticmethod
    def forward(ctx, input, target, reduction="mean", weight=None, pos_weight=None):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        check_probability_values(ctx, target)
        if pos_weight is None:
            loss = np.maximum(input, 0) - input * target + np.log1p(exp_neg_abs(input))
        else:
            log_weight = 1 + (pos_weight - 1) * target
            loss = (1 - target) * input + log_weight * _softplus_of_negative(input)
        ctx.save_for_backward(input, target)
        ctx.reduction, ctx.weight, ctx.pos_weight = reduction, weight, pos_weight
        return reduce_loss(_weighted(loss, weight), reduction)

    @staticmethod
    def backward(ctx, grad):
        x, target = ctx.saved_tensors
        scale = _weighted(grad_scale(grad, ctx.reduction, x.size), ctx.weight)
        need_input, need_target = ctx.needs_input_grad[:2]
        pos_weight, grad_input, grad_target = ctx.pos_weight, None, None
        if need_input and pos_weight is None:
            grad_input = (stable_sigmoid(x) - target) * scale
        elif need_input:
            grad_input = ((1 - target) + (1 + (pos_weight - 1) * target) * (stable_sigmoid(x) - 1)) * scale
        if need_target:
            slope = -x if pos_weight is None else -x + (pos_weight - 1) * _softplus_of_negative(x)
            grad_target = slope * scale
        return grad_input, grad_target, None, None, None  # None: reduction, weight, pos_weight


def _softplus_of_negative(x):
    """``log(1 + exp(-x))``, that is ``-log sigmoid(x)``, without overflow."""
    return np.maximum(-x, 0) + np.log1p(exp_neg_abs(x))


def _weighted(values, weight):
    return values if weight is None else values * weight


def _loss_weight(op: str, name: str, weight, input):
    """An elementwise loss's ``weight`` or ``pos_weight`` as an array of the input's dtype that
    broadcasts to the input's shape: a constant of the loss (one that requires grad is refused,
    as its gradient would be dropped), finite."""
    if weight is None:
        return None
    if getattr(weight, "requires_grad", False) and is_grad_enabled():
        raise TypeError(f"{op}: {name} requires grad; it is a constant of the loss here (pass {name}.detach())")
    w, shape = array_of(weight), array_of(input).shape
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must hold numbers, got {w.dtype} data")
    if not broadcasts_to(w.shape, shape):
        raise ValueError(f"{op}: {name} of shape {w.shape} does not broadcast to the input's shape {shape}")
    if not np.isfinite(w).all():
        raise ValueError(f"{op}: {name} must be finite, found values in [{w.min()}, {w.max()}]")
    return w.astype(array_of(input).dtype, copy=False) if array_of(input).dtype.kind == "f" else w


def binary_cross_entropy_with_logits(input, target, reduction="mean", *, weight=None, pos_weight=None):
    """Binary cross-entropy of ``sigmoid(input)`` against ``target`` in [0, 1], computed from
    the raw scores in the overflow-free form. ``weight`` multiplies each element's loss;
    ``pos_weight`` the positive term (PyTorch's, e.g. ``negatives / positives`` per class, the
    last axis), both broadcastable to the input."""
    op = "binary_cross_entropy_with_logits"
    check_reduction(op, reduction)
    target = _loss_operands(op, input, target)
    weight, pos_weight = _loss_weight(op, "weight", weight, input), _loss_weight(op, "pos_weight", pos_weight, input)
    return BinaryCrossEntropyWithLogitsFunction.apply(input, target, reduction, weight=weight, pos_weight=pos_weight)


# ---- sigmoid and clamped binary cross-entropy, fused -----------------------------------------
class SigmoidBinaryCrossEntropyFunction(Function):
    """``binary_cross_entropy(sigmoid(logits), target)`` as one node: the same floored value,
    with the gradient ``s - t`` (``s = sigmoid(logits)``) times the reduction's scale.

    That is the chain rule's gradient wherever BCE's floors are inactive, in one array operation
    instead of the separate backwards of sigmoid and BCE. Where a floor is active (s rounds to 0
    or 1) the gradient goes straight through it, as BCE's own does: a confident wrong
    prediction keeps a push back of about 1 per element, where the two-node chain multiplies
    BCE's push back by the sigmoid's vanishing slope.
    """

    flops = staticmethod(count.per_input_element_times(5))  # as with logits

    @staticmethod
    def forward(ctx, logits, target, reduction="mean"):
        if logits.dtype.kind != "f":
            raise not_floating(ctx, logits)
        check_probability_values(ctx, target)
        s = stable_sigmoid(logits)
        ctx.save_for_backward(s, target)
        ctx.reduction = reduction
        return reduce_loss(_bce(s, target), reduction)

    @staticmethod
    def backward(ctx, grad):
        s, target = ctx.saved_tensors
        scale = grad_scale(grad, ctx.reduction, s.size)
        need_logits, need_target = ctx.needs_input_grad[:2]
        grad_logits = (s - target) * scale if need_logits else None
        grad_target = _bce_target_grad(s, scale) if need_target else None
        return grad_logits, grad_target, None  # None: reduction


def sigmoid_binary_cross_entropy(logits, target, reduction="mean"):
    """Binary cross-entropy of ``sigmoid(logits)`` against ``target`` in [0, 1], as one node.

    The value is exactly ``binary_cross_entropy(sigmoid(logits), target)`` (logarithms floored
    at -100); the gradient to the logits is ``s - t``, also where the floor is active (see ``SigmoidBinaryCrossEntropyFunction``). Like
    ``binary_cross_entropy_with_logits`` it is chosen explicitly: ``binary_cross_entropy``
    never turns itself into this op.
    """
    check_reduction("sigmoid_binary_cross_entropy", reduction)
    target = _loss_operands("sigmoid_binary_cross_entropy", logits, target)
    return SigmoidBinaryCrossEntropyFunction.apply(logits, target, reduction)
