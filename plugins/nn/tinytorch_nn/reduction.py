"""How a loss turns per-element values into what it returns, shared by every loss op.

``reduction`` is ``"mean"`` (the default), ``"sum"`` or ``"none"`` (the per-element losses).
The backward of a reduced loss multiplies each per-element gradient by ``grad_scale``: the
incoming gradient itself for ``"sum"``, divided by the number of elements for ``"mean"``.
"""

from __future__ import annotations

import numpy as np

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(where: str, reduction) -> None:
    if not isinstance(reduction, str):  # PyTorch's third positional argument of the losses is a weight
        raise TypeError(f"{where}: reduction must be one of {REDUCTIONS}, got a {type(reduction).__name__}; "
                        "pass weights as weight=...")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def reduce_loss(loss: np.ndarray, reduction: str, count=None):
    """``loss`` summed, averaged over ``count`` entries (all of them by default; or a sum of
    class weights), or as it is.

    The mean of no entries is NaN, as in PyTorch (without NumPy's warning for an empty mean).
    """
    if reduction == "none":
        return loss
    if loss.dtype.char == "e":  # float16 adds up in float32 (checks.computed_in_float32)
        return reduce_loss(loss.astype(np.float32), reduction, count).astype(loss.dtype)
    total = loss.sum()
    if reduction == "sum":
        return total
    count = loss.size if count is None else count
    return total / count if count else np.array(np.nan, dtype=loss.dtype)


def grad_scale(grad, reduction: str, count):
    """The factor each per-element gradient is multiplied by: ``grad`` (0-d, or one per element
    for ``"none"``), divided by ``count`` for ``"mean"`` (a number of elements, or a sum of class
    weights, which may be below 1). A mean over a count of 0 is NaN, and so is its gradient, as
    in PyTorch (class weights summing to 0); an empty input has no gradient entries to scale."""
    if reduction == "mean":
        return grad / count if count else grad * np.nan
    return grad
