"""Loss modules: thin wrappers that hold the options of the functional losses."""

from __future__ import annotations

from tinytorch_core import Module

from . import functional as F
from .reduction import check_reduction

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "NLLLoss"]


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error; ``input`` and ``target`` must have the same shape."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities; see ``functional.binary_cross_entropy`` for the clamp."""

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on raw scores (sigmoid folded in, stable for any score)."""

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C, ...) against integer class targets (N, ...)."""

    def __init__(self, ignore_index=None, label_smoothing=0.0, reduction="mean"):
        super().__init__(reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(
            input, target, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        extra = [f"reduction={self.reduction!r}"]
        if self.ignore_index is not None:
            extra.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            extra.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(extra)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C, ...) against integer class targets."""

    def __init__(self, ignore_index=None, reduction="mean"):
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, ignore_index=self.ignore_index, reduction=self.reduction)
