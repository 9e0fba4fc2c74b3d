"""Cross-entropy against class probabilities ("soft" targets), as PyTorch defines it.

The target has the logits' shape, (N, C) or (N, C, d1, ...) (or (C,) for one sample), and holds
a distribution over the classes (axis 1) for each entry: a teacher's predictions, mixup labels,
hand-smoothed labels. Per entry the loss is

    -sum_c w_c t_c log softmax(x)_c

with class weights w (1 without them), and ``"mean"`` divides the sum by the number of entries
(N times the positions), not by the weights. Label smoothing eps first mixes the target with
the uniform distribution: ``t = (1 - eps) t + eps / C``. ``cross_entropy`` chooses this loss
for a floating-point target of the logits' shape.
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Function
from tinytorch_core.checks import array_of, not_floating, shape_of

from .elementwise_losses import check_probability_values
from .reduction import grad_scale, reduce_loss


def check_probability_target(op, logits, target, ignore_index) -> bool:
    """True when ``target`` holds class probabilities (floating point, the logits' shape), after
    checking what such a target must satisfy; False for anything else (class indices)."""
    t = array_of(target)
    if t.dtype.kind != "f" or t.shape != tuple(shape_of(logits)):
        return False
    if ignore_index is not None and ignore_index != -100:  # -100: the default, PyTorch's
        raise ValueError(
            f"{op}: ignore_index={ignore_index} names a class index, but the target holds class "
            "probabilities; leave ignore_index unset (give an entry zero probabilities to drop its loss)"
        )
    return True  # its values are checked by the op (SoftCrossEntropyFunction.forward)


class SoftCrossEntropyFunction(Function):
    """``-sum_c a_c log p_c`` per entry with ``a = w * t`` (t smoothed), ``p = softmax(x)``.

    Backward: to the logits ``p * sum_c(a_c) - a`` (as for class indices, where ``a`` is a
    one-hot row); to the target ``-(1 - eps) * w * log p``.
    """

    @staticmethod
    def forward(ctx, logits, target, weight=None, label_smoothing=0.0, reduction="mean"):
        if logits.dtype.kind != "f":
            raise not_floating(ctx, logits)
        target = np.asarray(target)  # a Tensor arrives as its array; a list of numbers becomes one
        check_probability_values(ctx, target, "class probabilities in the target must lie in [0, 1]")
        unbatched = logits.ndim == 1
        x, t = (logits[None], target[None]) if unbatched else (logits, target)
        dtype = np.result_type(x.dtype, t.dtype) if t.dtype.kind == "f" else x.dtype  # float64 targets promote
        x, t = x.astype(dtype, copy=False), t.astype(dtype, copy=False)  # (as every loss; the gradient is cast back)
        n_classes = x.shape[1]
        if label_smoothing:
            t = (1 - label_smoothing) * t + label_smoothing / n_classes
        class_weight = None if weight is None else weight.reshape((-1,) + (1,) * (x.ndim - 2))
        shares = t if class_weight is None else t * class_weight  # a: each class's share of the loss
        shifted = x - x.max(axis=1, keepdims=True)  # max-subtraction: exp never overflows
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -(shares * log_p).sum(axis=1)
        ctx.save_for_backward(log_p, shares, class_weight)
        ctx.label_smoothing, ctx.reduction, ctx.unbatched = label_smoothing, reduction, unbatched
        if reduction == "none" and unbatched:
            return loss[0]
        return reduce_loss(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        log_p, shares, class_weight = ctx.saved_tensors
        entries = log_p.shape[:1] + log_p.shape[2:]  # one loss per sample and position
        if ctx.reduction == "none":
            grad = grad.reshape(entries)
        scale = grad_scale(grad, ctx.reduction, int(np.prod(entries)))
        scale = np.expand_dims(scale, 1) if np.ndim(scale) else scale  # broadcast over the classes
        grad_logits = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_logits = (np.exp(log_p) * shares.sum(axis=1, keepdims=True) - shares) * scale
        if ctx.needs_input_grad[1]:
            weighted = log_p if class_weight is None else log_p * class_weight
            grad_target = weighted * (-(1 - ctx.label_smoothing) * scale)
        if ctx.unbatched:
            grad_logits, grad_target = (None if g is None else g[0] for g in (grad_logits, grad_target))
        return grad_logits, grad_target, None, None, None  # None: weight, label_smoothing, reduction
