"""Loss modules: thin wrappers that hold the options of the functional losses."""

from __future__ import annotations

import numpy as np

from tinytorch_core import Module, Tensor
from tinytorch_core.checks import array_of

from . import functional as F
from .classification_losses import check_label_smoothing, check_ignore_index
from .reduction import check_reduction

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "NLLLoss"]


class _Loss(Module):
    #: checkpoints saved before loss weights were buffers lack these keys: such a state still loads
    optional_state_keys = ("weight", "pos_weight")

    def __init__(self, reduction="mean"):
        super().__init__()
        check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

    def _weight_buffer(self, name: str, value) -> None:
        """Loss weights as a buffer, as in PyTorch: in the state dict, cast by ``model.to()``,
        never trained. A Tensor is kept as it is (a change to it is seen); arrays and lists are
        copied into one."""
        if value is not None and not isinstance(value, Tensor):
            array = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple)) else None
            if array is None or array.dtype.kind not in "biuf":
                raise TypeError(f"{type(self).__name__}: {name} must be a Tensor or an array of numbers, got "
                                f"{type(value).__name__}" + ("" if array is None else f" of {array.dtype}"))
            value = Tensor(array.astype(np.float32) if array.dtype.kind in "biu" else array)
        self.register_buffer(name, value)


class MSELoss(_Loss):
    """Mean squared error; ``input`` and ``target`` must have the same shape."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities; see ``functional.binary_cross_entropy`` for the clamp.
    ``weight`` (keyword) multiplies each element's loss."""

    def __init__(self, reduction="mean", *, weight=None):
        super().__init__(reduction)
        self._weight_buffer("weight", weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, reduction=self.reduction, weight=self.weight)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on raw scores (sigmoid folded in, stable for any score); ``weight``
    and ``pos_weight`` (keywords) as in ``functional.binary_cross_entropy_with_logits``."""

    def __init__(self, reduction="mean", *, weight=None, pos_weight=None):
        super().__init__(reduction)
        self._weight_buffer("weight", weight)
        self._weight_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction, weight=self.weight,
                                                  pos_weight=self.pos_weight)


class _ClassLoss(_Loss):
    """The options the class-target losses share: ``ignore_index`` and the class ``weight`` (C,),
    a keyword argument (PyTorch's third positional one; here the options keep their order)."""

    def __init__(self, ignore_index=-100, reduction="mean", weight=None):
        super().__init__(reduction)
        self.ignore_index = check_ignore_index(type(self).__name__, ignore_index)
        self._weight_buffer("weight", weight)

    def extra_repr(self) -> str:
        extra = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            extra.append("weight=(" + ", ".join(f"{w:g}" for w in array_of(self.weight)) + ")")
        if self.ignore_index != -100:  # the default is not shown, as in PyTorch
            extra.append(f"ignore_index={self.ignore_index}")
        return ", ".join(extra)


class CrossEntropyLoss(_ClassLoss):
    """Softmax cross-entropy of logits (N, C, ...) against integer class targets (N, ...), or
    against class probabilities of the logits' shape; see ``functional.cross_entropy``."""

    def __init__(self, ignore_index=-100, label_smoothing=0.0, reduction="mean", *, weight=None):
        super().__init__(ignore_index, reduction, weight)
        self.label_smoothing = check_label_smoothing("CrossEntropyLoss", label_smoothing)

    def forward(self, input, target):
        return F.cross_entropy(
            input, target, weight=self.weight, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing, reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        extra = super().extra_repr()
        return extra + f", label_smoothing={self.label_smoothing}" if self.label_smoothing else extra


class NLLLoss(_ClassLoss):
    """Negative log-likelihood of log-probabilities (N, C, ...) against integer class targets."""

    def __init__(self, ignore_index=-100, reduction="mean", *, weight=None):
        super().__init__(ignore_index, reduction, weight)

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)
